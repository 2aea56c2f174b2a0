"""Inputs shared by the NumPy tests: random queries, keys and values, and multi-head weights in
the layout of `keras.layers.MultiHeadAttention` (the names of `sa.KERAS_WEIGHT_NAMES`)."""

import numpy as np


def random_qkv(B=2, T=4, S=6, d_k=8, d_v=3, dtype=np.float32, seed=0):
    """Standard-normal `query` `(B, T, d_k)`, `key` `(B, S, d_k)`, `value` `(B, S, d_v)`."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(B, T, d_k)).astype(dtype)
    k = rng.normal(size=(B, S, d_k)).astype(dtype)
    v = rng.normal(size=(B, S, d_v)).astype(dtype)
    return q, k, v


def multi_head_weights(d_model=8, h=2, d_k=3, d_v=4, d_out=5, rng=None):
    """Kernels and biases of multi-head attention, standard normal, in the Keras layout."""
    rng = np.random.default_rng(0) if rng is None else rng
    return {
        "w_q": rng.normal(size=(d_model, h, d_k)),
        "b_q": rng.normal(size=(h, d_k)),
        "w_k": rng.normal(size=(d_model, h, d_k)),
        "b_k": rng.normal(size=(h, d_k)),
        "w_v": rng.normal(size=(d_model, h, d_v)),
        "b_v": rng.normal(size=(h, d_v)),
        "w_o": rng.normal(size=(h, d_v, d_out)),
        "b_o": rng.normal(size=(d_out,)),
    }
