"""Tests of `MultiHeadAttention(position_encoding="rope" | "alibi")` in `selfattention.layers`.

Each encoding is held against a NumPy computation built from `selfattention.reference` on the
layer's own weights (RoPE: `rotary_embedding` of the projected queries and keys; ALiBi:
`alibi_bias` added to the scores), on the plain and the chunked path, and checked through the
layer on its defining property. Tolerance: 1e-5 absolute in float32.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from keras import ops  # noqa: E402

import selfattention as sa  # noqa: E402
from selfattention import layers  # noqa: E402

ATOL = 1e-5


def data(B=2, T=6, S=6, d=16, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(B, T, d)).astype("float32"),
        rng.normal(size=(B, S, d)).astype("float32"),
    )


def built(position_encoding, query, value, num_heads=4, key_dim=8, **kwargs):
    keras.utils.set_random_seed(3)
    layer = layers.MultiHeadAttention(
        num_heads, key_dim, position_encoding=position_encoding, **kwargs
    )
    layer(query, value)
    # Non-zero biases, so that they are part of what is checked.
    rng = np.random.default_rng(5)
    layer.set_weights(
        [
            w if w.ndim > 1 else rng.normal(size=w.shape).astype("float32")
            for w in layer.get_weights()
        ]
    )
    return layer


def numpy_attention(layer, query, value, position_encoding, use_causal_mask=False):
    """The layer's computation in NumPy from `selfattention.reference`, on its weights."""
    w = dict(zip(sa.KERAS_WEIGHT_NAMES, layer.get_weights(), strict=True))
    q = np.einsum("btd,dhk->bhtk", query, w["w_q"]) + w["b_q"][:, None]  # (B, h, T, d_k)
    k = np.einsum("bsd,dhk->bhsk", value, w["w_k"]) + w["b_k"][:, None]  # (B, h, S, d_k)
    v = np.einsum("bsd,dhk->bhsk", value, w["w_v"]) + w["b_v"][:, None]  # (B, h, S, d_v)
    T, S, h, d_k = q.shape[2], k.shape[2], q.shape[1], q.shape[3]
    if position_encoding == "rope":  # queries at 0..T-1, keys at 0..S-1
        q, k = sa.rotary_embedding(q), sa.rotary_embedding(k)
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(d_k)  # (B, h, T, S)
    if position_encoding == "alibi":
        scores = scores + sa.alibi_bias(h, T, S)  # (h, T, S)
    if use_causal_mask:
        scores = np.where(np.tril(np.ones((T, S), bool)), scores, -np.inf)
    weights = sa.softmax(scores)  # (B, h, T, S)
    heads = weights @ v  # (B, h, T, d_v)
    output = np.einsum("bhtv,hvo->bto", heads, w["w_o"]) + w["b_o"]
    return output, weights


# ---------------------------------------------------------------- against NumPy
@pytest.mark.parametrize("position_encoding", ["rope", "alibi"])
@pytest.mark.parametrize("use_causal_mask", [False, True])
@pytest.mark.parametrize("lengths", [(6, 6), (4, 9)])
def test_layer_equals_numpy(position_encoding, use_causal_mask, lengths):
    query, value = data(T=lengths[0], S=lengths[1])
    layer = built(position_encoding, query, value)
    out, weights = layer(
        query, value, return_attention_scores=True, use_causal_mask=use_causal_mask
    )
    expected_out, expected_weights = numpy_attention(
        layer, query, value, position_encoding, use_causal_mask
    )
    np.testing.assert_allclose(ops.convert_to_numpy(weights), expected_weights, atol=ATOL)
    np.testing.assert_allclose(ops.convert_to_numpy(out), expected_out, atol=ATOL)
    # Without scores the layer takes its fast path: the same output.
    fast = layer(query, value, use_causal_mask=use_causal_mask)
    np.testing.assert_allclose(ops.convert_to_numpy(fast), expected_out, atol=ATOL)


@pytest.mark.parametrize("position_encoding", ["rope", "alibi"])
@pytest.mark.parametrize("use_causal_mask", [False, True])
@pytest.mark.parametrize("lengths", [(7, 7), (3, 10)])
def test_chunked_path_equals_numpy(position_encoding, use_causal_mask, lengths):
    query, value = data(T=lengths[0], S=lengths[1], seed=1)
    layer = built(position_encoding, query, value, chunk_size=3)
    out = layer(query, value, use_causal_mask=use_causal_mask)  # the chunked path
    expected, _ = numpy_attention(layer, query, value, position_encoding, use_causal_mask)
    np.testing.assert_allclose(ops.convert_to_numpy(out), expected, atol=ATOL)


def test_none_is_the_default_and_unchanged():
    query, value = data()
    default = built(None, query, value)
    assert default.position_encoding is None
    out = default(query, value)
    expected, _ = numpy_attention(default, query, value, None)
    np.testing.assert_allclose(ops.convert_to_numpy(out), expected, atol=ATOL)


# ---------------------------------------------------------------- defining properties
def identity_layer(position_encoding, d=8):
    """One head whose projections are the identity: the scores are x_m . x_n / sqrt(d),
    rotated by RoPE or biased by ALiBi."""
    layer = layers.MultiHeadAttention(1, d, use_bias=False, position_encoding=position_encoding)
    x = np.zeros((1, 2, d), "float32")
    layer(x, x)
    eye = np.eye(d, dtype="float32")
    layer.set_weights([eye[:, None], eye[:, None], eye[:, None], eye[None]])
    return layer


def test_rope_scores_depend_only_on_offsets():
    """The same 5 vectors at positions 0..4 and, after 7 other vectors, at 7..11 (attending
    only among themselves): the same weights, although the weights do depend on positions."""
    rng = np.random.default_rng(0)
    d, T, P = 8, 5, 7
    x = rng.normal(size=(1, T, d)).astype("float32")
    shifted = np.concatenate([rng.normal(size=(1, P, d)).astype("float32"), x], axis=1)
    block = np.zeros((P + T, P + T), bool)
    block[P:, P:] = True  # positions P.. attend to positions P.. only
    rope = identity_layer("rope")
    _, alone = rope(x, x, return_attention_scores=True)
    _, after = rope(shifted, shifted, attention_mask=block[None], return_attention_scores=True)
    alone, after = ops.convert_to_numpy(alone), ops.convert_to_numpy(after)
    np.testing.assert_allclose(after[..., P:, P:], alone, atol=ATOL)
    # Positions matter: without RoPE the same vectors get other weights.
    _, plain = identity_layer(None)(x, x, return_attention_scores=True)
    assert np.abs(ops.convert_to_numpy(plain) - alone).max() > 0.01


def test_rope_keeps_the_score_of_a_vector_with_itself():
    """R_m q . R_m k = q . k: on the diagonal, RoPE leaves the scores of the plain layer."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 6, 8)).astype("float32")
    diagonal = np.eye(6, dtype=bool)[None]  # each position attends only to itself ...
    both = np.eye(6, dtype=bool) | np.eye(6, k=-1, dtype=bool)  # ... or itself and the previous
    _, rope = identity_layer("rope")(x, x, attention_mask=diagonal, return_attention_scores=True)
    np.testing.assert_allclose(ops.convert_to_numpy(rope)[0, 0], np.eye(6), atol=ATOL)
    _, rope = identity_layer("rope")(x, x, attention_mask=both[None], return_attention_scores=True)
    _, plain = identity_layer(None)(x, x, attention_mask=both[None], return_attention_scores=True)
    assert np.abs(ops.convert_to_numpy(rope) - ops.convert_to_numpy(plain)).max() > 1e-3


@pytest.mark.parametrize("num_heads", [4, 6, 8])
def test_alibi_is_the_per_head_linear_bias_with_the_papers_slopes(num_heads):
    """With zero query and key kernels the scores are ALiBi's bias alone: under a causal mask,
    the weight ratio of two neighbouring keys is exp(m_h) for head h, and m_h are the paper's
    slopes 2^(-8 i / h) (for 8 heads: 1/2, 1/4, ..., 1/256)."""
    T = 7
    layer = layers.MultiHeadAttention(num_heads, 4, position_encoding="alibi")
    x = np.random.default_rng(2).normal(size=(1, T, 8)).astype("float32")
    layer(x, x)
    layer.set_weights([np.zeros_like(w) if i < 4 else w for i, w in enumerate(layer.get_weights())])
    _, weights = layer(x, x, use_causal_mask=True, return_attention_scores=True)
    weights = ops.convert_to_numpy(weights)[0]  # (h, T, T)
    rows, cols = np.tril_indices(T, -1)  # keys j < i, whose right neighbour j + 1 <= i
    ratio = np.log(weights[:, rows, cols + 1] / weights[:, rows, cols])  # (h, n): m_h each
    slopes = sa.alibi_slopes(num_heads)
    np.testing.assert_allclose(ratio, np.broadcast_to(slopes[:, None], ratio.shape), atol=1e-4)
    if num_heads == 8:
        np.testing.assert_allclose(slopes, 2.0 ** -np.arange(1, 9))


# ---------------------------------------------------------------- config and errors
@pytest.mark.parametrize("position_encoding", [None, "rope", "alibi"])
def test_config_round_trip(position_encoding):
    query, value = data()
    layer = built(position_encoding, query, value)
    config = layer.get_config()
    assert config["position_encoding"] == position_encoding
    twin = layers.MultiHeadAttention.from_config(config)
    twin(query, value)
    twin.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        ops.convert_to_numpy(twin(query, value)), ops.convert_to_numpy(layer(query, value))
    )


@pytest.mark.parametrize("bad", ["RoPE", "sinusoidal", 1, True])
def test_unknown_position_encoding(bad):
    with pytest.raises(ValueError, match=r"`position_encoding` must be one of .*Received"):
        layers.MultiHeadAttention(2, 8, position_encoding=bad)


def test_rope_needs_an_even_key_dim():
    with pytest.raises(ValueError, match=r"`key_dim` must be even .*Received: key_dim=7"):
        layers.MultiHeadAttention(2, 7, position_encoding="rope")
    layers.MultiHeadAttention(2, 7, position_encoding="alibi")  # ALiBi does not care


@pytest.mark.parametrize("position_encoding", ["rope", "alibi"])
def test_positions_need_one_attention_axis(position_encoding):
    with pytest.raises(ValueError, match=r"one attention axis .*attention_axes=\(1, 2\)"):
        layers.MultiHeadAttention(2, 8, attention_axes=(1, 2), position_encoding=position_encoding)
    layer = layers.MultiHeadAttention(2, 8, position_encoding=position_encoding)
    x = np.zeros((1, 3, 4, 8), "float32")  # two position axes by default
    with pytest.raises(ValueError, match=r"one attention axis .*axes \(1, 2\)"):
        layer(x, x)
    # One explicit axis of a rank-4 input is a sequence: allowed.
    one = layers.MultiHeadAttention(2, 8, attention_axes=2, position_encoding=position_encoding)
    assert tuple(one(x, x).shape) == (1, 3, 4, 8)
