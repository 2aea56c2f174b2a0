"""Tests of incremental decoding with a key/value cache: equal to full recomputation with a
causal mask at every step; the cache's errors name the argument."""

import numpy as np
import pytest
from helpers import multi_head_weights

import selfattention as sa
from selfattention.kv_cache import KVCache, cached_self_attention_step


def weights(d_model=8, h=2, d_k=3, d_v=4, d_out=5, seed=0):
    return multi_head_weights(d_model, h, d_k, d_v, d_out, rng=np.random.default_rng(seed))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_every_step_equals_full_recomputation(dtype):
    B, T, d_model, h = 2, 9, 8, 2
    w = {k: v.astype(dtype) for k, v in weights(d_model, h).items()}
    x = np.random.default_rng(1).normal(size=(B, T, d_model)).astype(dtype)
    cache = KVCache(T, (B, h), d_k=3, d_v=4, dtype=dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for t in range(T):
        step = cached_self_attention_step(x[:, t : t + 1], cache, **w)  # (B, 1, d_out)
        full, _ = sa.multi_head_attention(
            x[:, : t + 1], x[:, : t + 1], use_causal_mask=True, **w
        )  # (B, t + 1, d_out), recomputed from scratch
        np.testing.assert_allclose(step[:, 0], full[:, t], atol=tol, rtol=tol)
    assert cache.length == T


def test_the_cache_holds_the_projected_keys_and_values():
    w = weights()
    x = np.random.default_rng(2).normal(size=(1, 4, 8))
    cache = KVCache(4, (1, 2), d_k=3, d_v=4, dtype=np.float64)
    for t in range(4):
        cached_self_attention_step(x[:, t : t + 1], cache, **w)
    expected_k = np.einsum("bld,dhk->bhlk", x, w["w_k"]) + w["b_k"][:, None, :]
    np.testing.assert_allclose(cache.keys, expected_k, atol=1e-12)
    assert cache.values.shape == (1, 2, 4, 4)


def test_errors_name_the_argument():
    cache = KVCache(2, (1, 2), d_k=3, d_v=4)
    with pytest.raises(ValueError, match=r"`key` must have shape .*Received: key.shape"):
        cache.append(np.zeros((1, 2, 1, 5)), np.zeros((1, 2, 1, 4)))
    with pytest.raises(ValueError, match=r"`value` must have shape .*Received: value.shape"):
        cache.append(np.zeros((1, 2, 1, 3)), np.zeros((1, 2, 2, 4)))
    cache.append(np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2, 4)))
    with pytest.raises(ValueError, match=r"at most `capacity`=2 positions; it has 2"):
        cache.append(np.zeros((1, 2, 1, 3)), np.zeros((1, 2, 1, 4)))
    with pytest.raises(ValueError, match=r"`capacity` must be a positive integer"):
        KVCache(0, (1,), 3, 4)
    with pytest.raises(ValueError, match=r"`x` must have shape \(B, 1, d_model\)"):
        cached_self_attention_step(np.zeros((1, 2, 8)), KVCache(4, (1, 2), 3, 4), **weights())
