"""Tests of RoPE (`rotary_embedding`) and ALiBi (`alibi_slopes`, `alibi_bias`) in
`selfattention.reference`: literal values, the defining properties (RoPE: scores depend on
positions only through their offset, norms are kept; ALiBi: the paper's slopes and per-head
linear biases), a peer implementation where one is installed, and every error message.

The peer for RoPE is `keras_hub.layers.RotaryEmbedding`. keras-hub is not a dependency of the
book, so that test is skipped unless keras-hub is installed (it resolves next to Keras 3.15.1
and TensorFlow 2.21 in a separate environment, where this test was run).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import selfattention as sa


# ---------------------------------------------------------------- RoPE: literal values
def test_rope_one_pair_is_a_rotation_by_the_position():
    # d = 2: theta_0 = 1, so position m rotates (1, 0) to (cos m, sin m).
    x = np.tile([1.0, 0.0], (4, 1))  # (T, 2)
    out = sa.rotary_embedding(x)
    m = np.arange(4)
    np.testing.assert_allclose(out, np.stack([np.cos(m), np.sin(m)], axis=1), atol=1e-15)


def test_rope_frequencies():
    # d = 4, base 10000: theta = (1, 10000^(-1/2)) = (1, 0.01); position 3.
    x = np.array([[0.0, 1.0, 0.0, 1.0]])  # (1, 4)
    out = sa.rotary_embedding(x, positions=[3])
    expected = [-np.sin(3), np.cos(3), -np.sin(0.03), np.cos(0.03)]
    np.testing.assert_allclose(out[0], expected, atol=1e-15)


def test_rope_is_the_block_diagonal_rotation_matrix():
    """The paper's matrix form R_m x, built entry by entry."""
    rng = np.random.default_rng(0)
    d, base = 6, 100.0
    x = rng.normal(size=(5, d))  # (T, d)
    positions = np.array([0, 1, 2, 7, 30])
    out = sa.rotary_embedding(x, positions, base=base)
    for t, m in enumerate(positions):
        R = np.zeros((d, d))
        for i in range(d // 2):
            a = m * base ** (-2 * i / d)
            R[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [
                [np.cos(a), -np.sin(a)],
                [np.sin(a), np.cos(a)],
            ]
        np.testing.assert_allclose(out[t], R @ x[t], atol=1e-12)


def test_rope_position_zero_is_the_identity_and_dtypes():
    x = np.random.default_rng(1).normal(size=(2, 1, 8)).astype(np.float32)
    out = sa.rotary_embedding(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x)
    assert sa.rotary_embedding(x.astype(np.float16)).dtype == np.float16


# ---------------------------------------------------------------- RoPE: properties
@settings(max_examples=50, deadline=None)
@given(
    m=st.integers(0, 500),
    n=st.integers(0, 500),
    shift=st.integers(-200, 2000),
    half_d=st.integers(1, 16),
    seed=st.integers(0, 2**16),
)
def test_rope_scores_depend_only_on_the_offset(m, n, shift, half_d, seed):
    rng = np.random.default_rng(seed)
    q, k = rng.normal(size=(2, 1, 2 * half_d))  # one query, one key, (1, d) each
    score = (sa.rotary_embedding(q, [m]) @ sa.rotary_embedding(k, [n]).T).item()
    shifted = (sa.rotary_embedding(q, [m + shift]) @ sa.rotary_embedding(k, [n + shift]).T).item()
    assert shifted == pytest.approx(score, abs=1e-9 * (1 + abs(shift)))


@settings(max_examples=30, deadline=None)
@given(T=st.integers(1, 20), half_d=st.integers(1, 16), seed=st.integers(0, 2**16))
def test_rope_keeps_norms(T, half_d, seed):
    x = np.random.default_rng(seed).normal(size=(2, T, 2 * half_d))
    np.testing.assert_allclose(
        np.linalg.norm(sa.rotary_embedding(x), axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-12
    )


def test_rope_score_matrix_is_constant_along_diagonals():
    rng = np.random.default_rng(2)
    q1, k1 = rng.normal(size=(2, 1, 16))
    T = 12
    q = sa.rotary_embedding(np.repeat(q1, T, 0))  # the same query at positions 0..T-1
    k = sa.rotary_embedding(np.repeat(k1, T, 0))  # the same key at positions 0..T-1
    scores = q @ k.T  # (T, T)
    for offset in range(-T + 1, T):
        diagonal = np.diagonal(scores, offset)
        np.testing.assert_allclose(diagonal, diagonal[0], atol=1e-12)


def test_rope_batched_positions_broadcast():
    x = np.random.default_rng(3).normal(size=(2, 3, 4))  # (B, T, d)
    positions = np.array([[0, 1, 2], [5, 6, 7]])  # (B, T)
    out = sa.rotary_embedding(x, positions)
    np.testing.assert_allclose(out[1], sa.rotary_embedding(x[1], [5, 6, 7]), atol=1e-15)


# ---------------------------------------------------------------- RoPE: a peer
def test_rope_equals_keras_hub_rotary_embedding():
    """keras_hub rotates the pairs (x_i, x_{i + d/2}) (the "rotate half" layout of GPT-NeoX),
    the paper the pairs (x_{2i}, x_{2i+1}): the same rotation after reordering the features."""
    keras_hub = pytest.importorskip("keras_hub")
    rng = np.random.default_rng(4)
    B, T, d = 2, 9, 16
    x = rng.normal(size=(B, T, d)).astype(np.float32)
    half = np.concatenate([np.arange(0, d, 2), np.arange(1, d, 2)])  # pair i -> (i, i + d/2)
    theirs = np.asarray(keras_hub.layers.RotaryEmbedding(max_wavelength=10000)(x[..., half]))
    ours = sa.rotary_embedding(x)[..., half]
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


# ---------------------------------------------------------------- ALiBi
def test_alibi_slopes_for_8_heads_are_the_papers():
    np.testing.assert_array_equal(sa.alibi_slopes(8), [1 / 2**i for i in range(1, 9)])


def test_alibi_slopes_for_16_heads_interleave_the_8():
    # "1/2^0.5, 1/2^1, ..., 1/2^8": the geometric mean of each consecutive pair of the 8.
    np.testing.assert_allclose(sa.alibi_slopes(16), 2.0 ** (-0.5 * np.arange(1, 17)), rtol=1e-15)
    np.testing.assert_allclose(sa.alibi_slopes(16)[1::2], sa.alibi_slopes(8), rtol=1e-15)


@pytest.mark.parametrize(
    ("h", "expected_exponents"),
    [
        (1, [8]),
        (2, [4, 8]),
        (3, [4, 8, 2]),  # p = 2: 2^-4, 2^-8; then the 1st of the 4-head sequence (2^-2)
        (6, [2, 4, 6, 8, 1, 3]),  # p = 4; then the 1st and 3rd of the 8-head sequence
        (12, [1, 2, 3, 4, 5, 6, 7, 8, 0.5, 1.5, 2.5, 3.5]),
    ],
    ids=lambda v: str(v) if isinstance(v, int) else "",
)
def test_alibi_slopes_when_heads_are_not_a_power_of_two(h, expected_exponents):
    np.testing.assert_allclose(sa.alibi_slopes(h), 2.0 ** -np.array(expected_exponents), rtol=1e-15)


def test_alibi_bias_is_minus_slope_times_distance_per_head():
    bias = sa.alibi_bias(4, 5, 5)  # (h, T, S)
    assert bias.shape == (4, 5, 5)
    slopes = sa.alibi_slopes(4)
    for h, i, j in np.ndindex(4, 5, 5):
        assert bias[h, i, j] == -slopes[h] * abs(i - j)
    # the paper's figure: row i of a causal head is m * [-(i), ..., -2, -1, 0]
    np.testing.assert_array_equal(bias[0, 3, :4], -slopes[0] * np.array([3, 2, 1, 0]))


def test_alibi_queries_are_the_last_positions():
    bias = sa.alibi_bias(2, 2, 5)  # T = 2 queries at positions 3 and 4 of S = 5
    np.testing.assert_array_equal(bias, sa.alibi_bias(2, 5, 5)[:, 3:])


def test_alibi_under_a_causal_mask_equals_the_authors_row_form():
    """The authors' code adds m * j (the same row for every query) instead of -m (i - j): the two
    differ by m * i, a constant within each row, so the causal softmax is the same."""
    rng = np.random.default_rng(5)
    h, T = 4, 6
    scores = rng.normal(size=(h, T, T))  # (h, T, S)
    causal = sa.causal_mask(T)
    ours = sa.softmax(np.where(causal, scores + sa.alibi_bias(h, T, T), -np.inf))
    row_form = sa.alibi_slopes(h)[:, None, None] * np.arange(T)  # (h, 1, S)
    theirs = sa.softmax(np.where(causal, scores + row_form, -np.inf))
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


# ---------------------------------------------------------------- errors
def test_rope_errors():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"last dimension of `x` \(d\) must be even.*\(3, 5\)"):
        sa.rotary_embedding(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"`x` must have rank >= 2"):
        sa.rotary_embedding(np.zeros(4))
    with pytest.raises(ValueError, match=r"`base` must be a positive number. Received: base=0"):
        sa.rotary_embedding(x, base=0)
    with pytest.raises(ValueError, match=r"`positions` must broadcast to \(\.\.\., T\) = \(3,\)"):
        sa.rotary_embedding(x, positions=[0, 1])
    with pytest.raises(TypeError, match=r"`positions` must be a real numeric array"):
        sa.rotary_embedding(x, positions=["a", "b", "c"])


def test_alibi_errors():
    with pytest.raises(ValueError, match=r"`num_heads` must be a positive integer"):
        sa.alibi_slopes(0)
    with pytest.raises(ValueError, match=r"`num_heads` must be a positive integer"):
        sa.alibi_bias(2.0, 3, 3)
    with pytest.raises(ValueError, match=r"`key_length` must be a positive integer"):
        sa.alibi_bias(2, 3, 0)
    with pytest.raises(ValueError, match=r"`query_length` \(T\) must be at most `key_length`"):
        sa.alibi_bias(2, 4, 3)
