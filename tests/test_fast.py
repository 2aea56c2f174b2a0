"""Tests of the fast paths (`selfattention.fast`): equal to the reference on random cases with
masks, batches, broadcasting and block boundaries; the inputs untouched; the memory they save.
(Every hand-computed case, edge and error of `tests/test_reference.py` also runs on them.)"""

import numpy as np
import pytest
from helpers import random_qkv
from hypothesis import given, settings
from hypothesis import strategies as st

import selfattention as sa
from selfattention import fast, reference
from selfattention.measure import traced_peak_mib


def naive_formula(q, k, v, mask=None):
    """The reference, as the tests compare against it."""
    return reference.scaled_dot_product_attention(q, k, v, mask=mask)


def test_the_package_exports_the_fast_paths():
    assert sa.scaled_dot_product_attention is fast.scaled_dot_product_attention
    assert sa.chunked_attention is fast.chunked_attention


shapes = st.tuples(
    st.integers(1, 3), st.integers(1, 7), st.integers(1, 9), st.integers(1, 6), st.integers(1, 5)
)


@settings(max_examples=60, deadline=None)
@given(shapes, st.integers(0, 2**16), st.floats(0.0, 1.0), st.integers(1, 10))
def test_fast_paths_equal_the_reference(shape, seed, masked_share, chunk_size):
    B, T, S, d_k, d_v = shape
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(B, T, d_k)) * 3
    k = rng.normal(size=(B, S, d_k))
    v = rng.normal(size=(B, S, d_v))
    mask = rng.random((B, T, S)) >= masked_share  # some rows may be fully masked
    ref_out, ref_w = reference.scaled_dot_product_attention(q, k, v, mask=mask)
    out, w = fast.scaled_dot_product_attention(q, k, v, mask=mask)
    np.testing.assert_allclose(out, ref_out, atol=1e-12)
    np.testing.assert_allclose(w, ref_w, atol=1e-12)
    chunked = fast.chunked_attention(q, k, v, mask=mask, chunk_size=chunk_size)
    np.testing.assert_allclose(chunked, ref_out, atol=1e-12)


# ---------------------------------------------------------------- block boundaries
@pytest.fixture
def tiny_blocks(monkeypatch):
    """Blocks of a single score row: every block boundary case is exercised on small inputs."""
    monkeypatch.setattr(fast, "_BLOCK_ELEMENTS", 1)


@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_row_blocks_do_not_change_the_result(tiny_blocks, masked):
    q, k, v = random_qkv(B=2, T=5, S=6, dtype=np.float64)
    mask = None
    if masked:
        mask = np.random.default_rng(5).random((2, 5, 6)) > 0.4
        mask[1, 3] = False  # one fully masked row
    out, w = sa.scaled_dot_product_attention(q, k, v, mask=mask)
    ref_out, ref_w = naive_formula(q, k, v, mask)
    np.testing.assert_allclose(out, ref_out, atol=1e-13)
    np.testing.assert_allclose(w, ref_w, atol=1e-13)
    np.testing.assert_allclose(
        sa.chunked_attention(q, k, v, mask, chunk_size=4), ref_out, atol=1e-13
    )


def test_inputs_are_not_modified():
    q, k, v = random_qkv()
    mask = np.random.default_rng(6).random((2, 4, 6)) > 0.3
    copies = [x.copy() for x in (q, k, v, mask)]
    sa.scaled_dot_product_attention(q, k, v, mask=mask)
    sa.chunked_attention(q, k, v, mask=mask, chunk_size=4)
    for original, copy in zip((q, k, v, mask), copies, strict=True):
        np.testing.assert_array_equal(original, copy)


def test_broadcast_batch_mask_columns_and_strided_inputs():
    q, k, v = random_qkv(B=3, T=5, S=7, dtype=np.float64)
    k1, v1 = k[:1], v[:1]  # one key/value set shared by the 3 query batches
    q_strided = np.ascontiguousarray(np.swapaxes(q, -1, -2)).swapaxes(-1, -2)  # not C-contiguous
    mask = np.ones((5, 1), bool)  # (T, 1): broadcast over keys
    mask[2] = False
    out, w = sa.scaled_dot_product_attention(q_strided, k1, v1, mask=mask)
    ref_out, ref_w = naive_formula(
        q, np.broadcast_to(k1, k.shape), np.broadcast_to(v1, v.shape), mask
    )
    np.testing.assert_allclose(out, ref_out, atol=1e-13)
    np.testing.assert_array_equal(out[:, 2], 0)
    np.testing.assert_allclose(
        sa.chunked_attention(q_strided, k1, v1, mask, chunk_size=3), ref_out, atol=1e-13
    )


def test_naive_allocates_little_beyond_its_scores():
    q, k, v = random_qkv(B=2, T=512, S=512, d_k=16, d_v=16)
    scores_mib = 2 * 512 * 512 * 4 / 2**20
    assert traced_peak_mib(lambda: sa.scaled_dot_product_attention(q, k, v)) < 1.2 * scores_mib


def test_chunked_memory_is_one_block_of_scores():
    q, k, v = random_qkv(B=1, T=1024, S=1024, d_k=16, d_v=16)
    naive = traced_peak_mib(lambda: sa.scaled_dot_product_attention(q, k, v))
    chunked = traced_peak_mib(lambda: sa.chunked_attention(q, k, v, chunk_size=64))
    assert chunked < 0.15 * naive  # a (T, 64) block instead of (T, S), plus (T, d_v) state
