"""Tests of the NumPy formulas (`selfattention.reference`): hand-computed cases, properties,
edges and error messages. Every test of attention runs on the reference and on the fast path
(`selfattention.fast`, what `sa.scaled_dot_product_attention` is), so the two are held to the
same cases."""

import numpy as np
import pytest
from helpers import multi_head_weights, random_qkv
from hypothesis import given, settings
from hypothesis import strategies as st

import selfattention as sa
from selfattention import fast, reference

RNG = np.random.default_rng(0)


ATTENTION = pytest.mark.parametrize(
    "attention",
    [reference.scaled_dot_product_attention, fast.scaled_dot_product_attention],
    ids=["reference", "fast"],
)


# ---------------------------------------------------------------- hand-computed cases
def test_softmax_hand_computed():
    # softmax([0, ln 3]) = [1/4, 3/4]
    np.testing.assert_allclose(sa.softmax([0.0, np.log(3.0)]), [0.25, 0.75], rtol=1e-12)


def test_softmax_is_stable_for_huge_inputs():
    out = sa.softmax(np.array([1e4, 1e4 - np.log(3.0)], np.float32))
    np.testing.assert_allclose(out, [0.75, 0.25], rtol=1e-3)
    assert np.isfinite(out).all()


def test_softmax_all_minus_inf_gives_zeros():
    np.testing.assert_array_equal(sa.softmax([-np.inf, -np.inf]), [0.0, 0.0])


@ATTENTION
def test_attention_hand_computed_2x2(attention):
    # q = k = I, d_k = 2: scores = I / sqrt(2); row 0 weights = softmax([1/sqrt2, 0]).
    q = k = np.eye(2)
    v = np.array([[1.0, 0.0], [0.0, 10.0]])
    out, w = attention(q, k, v)
    a = np.exp(1 / np.sqrt(2)) / (np.exp(1 / np.sqrt(2)) + 1)  # 0.66976...
    np.testing.assert_allclose(w, [[a, 1 - a], [1 - a, a]], rtol=1e-12)
    np.testing.assert_allclose(out, [[a, 10 * (1 - a)], [1 - a, 10 * a]], rtol=1e-12)
    assert round(a, 5) == 0.66976


@ATTENTION
def test_attention_hand_computed_with_mask_and_scale(attention):
    q = np.array([[1.0, 1.0]])
    k = np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    v = np.array([[2.0], [4.0], [100.0]])
    out, w = attention(q, k, v, mask=[[True, True, False]], scale=1.0)
    # the masked third key is ignored; the first two tie: weights 1/2, 1/2, 0
    np.testing.assert_array_equal(w, [[0.5, 0.5, 0.0]])
    np.testing.assert_array_equal(out, [[3.0]])


def test_positional_encoding_literal_values():
    pe = sa.positional_encoding(3, 4)
    # pos 1: sin(1), cos(1), sin(1/100), cos(1/100)
    np.testing.assert_allclose(pe[1], [np.sin(1), np.cos(1), np.sin(0.01), np.cos(0.01)], rtol=1e-6)
    np.testing.assert_array_equal(pe[0], [0, 1, 0, 1])
    assert pe.dtype == np.float32


def test_positional_encoding_odd_depth():
    pe = sa.positional_encoding(5, 5, dtype="float64")
    assert pe.shape == (5, 5)
    np.testing.assert_allclose(pe[2, 4], np.sin(2 / 10000 ** (4 / 5)))


def test_causal_and_padding_masks():
    np.testing.assert_array_equal(
        sa.causal_mask(3), [[True, False, False], [True, True, False], [True, True, True]]
    )
    m = sa.padding_mask(np.array([[5, 6, 0], [7, 0, 0]]))
    assert m.shape == (2, 1, 3)
    np.testing.assert_array_equal(m[:, 0], [[True, True, False], [True, False, False]])


# ---------------------------------------------------------------- against the formula
def naive_formula(q, k, v, mask=None):
    """Equation (1) of Vaswani et al. written in float64 with no tricks."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    e = np.exp(scores - scores.max(-1, keepdims=True))
    if mask is not None:
        e = e * mask
    s = e.sum(-1, keepdims=True)
    w = np.where(s > 0, e / np.where(s > 0, s, 1), 0)
    return w @ v, w


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@ATTENTION
def test_attention_matches_formula(dtype, attention):
    q, k, v = random_qkv(dtype=dtype)
    out, w = attention(q, k, v)
    ref_out, ref_w = naive_formula(q, k, v)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(out, ref_out, atol=tol)
    np.testing.assert_allclose(w, ref_w, atol=tol)
    assert out.dtype == dtype and w.dtype == dtype


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 6, 7, 512], ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@ATTENTION
def test_chunked_equals_naive(chunk_size, masked, attention):
    q, k, v = random_qkv(T=5, S=6)
    mask = None
    if masked:
        mask = np.random.default_rng(1).random((2, 5, 6)) > 0.4
        mask[0, 1] = False  # one fully masked row
    out, _ = attention(q, k, v, mask=mask)
    chunked = sa.chunked_attention(q, k, v, mask=mask, chunk_size=chunk_size)
    np.testing.assert_allclose(chunked, out, atol=1e-6)
    assert chunked.dtype == np.float32


@ATTENTION
def test_chunked_float64_and_causal_long(attention):
    q, k, v = random_qkv(B=1, T=300, S=300, dtype=np.float64, seed=3)
    mask = sa.causal_mask(300)
    out, _ = attention(q, k, v, mask=mask)
    np.testing.assert_allclose(
        sa.chunked_attention(q, k, v, mask=mask, chunk_size=64), out, atol=1e-13
    )


# ---------------------------------------------------------------- edges
@ATTENTION
def test_fully_masked_row_gives_zeros_everywhere(attention):
    q, k, v = random_qkv()
    mask = np.ones((2, 4, 6), bool)
    mask[1, 2] = False
    out, w = attention(q, k, v, mask=mask)
    np.testing.assert_array_equal(w[1, 2], 0)
    np.testing.assert_array_equal(out[1, 2], 0)
    np.testing.assert_array_equal(sa.chunked_attention(q, k, v, mask=mask, chunk_size=4)[1, 2], 0)
    np.testing.assert_allclose(w.sum(-1)[mask.any(-1)], 1, rtol=1e-6)


@ATTENTION
def test_mask_polarity_true_means_attend(attention):
    q, k, v = random_qkv(B=1, T=1, S=3)
    _, w = attention(q, k, v, mask=np.array([[[True, False, False]]]))
    np.testing.assert_allclose(w[0, 0], [1.0, 0.0, 0.0])


@ATTENTION
def test_integer_mask_of_zeros_and_ones_is_accepted(attention):
    q, k, v = random_qkv()
    m = np.random.default_rng(2).random((4, 6)) > 0.5
    a, _ = attention(q, k, v, mask=m)
    b, _ = attention(q, k, v, mask=m.astype(int))
    np.testing.assert_array_equal(a, b)


@ATTENTION
def test_huge_scores_stay_finite_float32(attention):
    q = np.full((1, 3, 4), 100.0, np.float32)  # scores of 1e4 * 4 / 2 = 2e4
    k = np.array([[[100.0] * 4, [99.0] * 4, [-100.0] * 4]], np.float32)
    v = np.array([[[1.0], [2.0], [3.0]]], np.float32)
    out, w = attention(q, k, v)
    assert np.isfinite(out).all() and np.isfinite(w).all()
    np.testing.assert_allclose(w[0, 0], [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(sa.chunked_attention(q, k, v, chunk_size=1), out)


@ATTENTION
def test_float16_is_computed_in_float32_and_returned_as_float16(attention):
    q, k, v = random_qkv(dtype=np.float16)
    q = q * 60  # float16 scores that would overflow exp() if computed in float16
    out, w = attention(q, k, v)
    assert out.dtype == np.float16 and w.dtype == np.float16
    ref_out, _ = naive_formula(q, k, v)
    np.testing.assert_allclose(out.astype(np.float64), ref_out, atol=2e-2)
    assert sa.chunked_attention(q, k, v).dtype == np.float16
    assert sa.softmax(np.array([60000.0, 0.0], np.float16)).dtype == np.float16


@ATTENTION
def test_integer_inputs_become_float64(attention):
    out, w = attention(np.eye(2, dtype=int), np.eye(2, dtype=int), np.eye(2))
    assert out.dtype == np.float64 and w.dtype == np.float64


# ---------------------------------------------------------------- properties
shapes = st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.integers(1, 5))


@ATTENTION
@settings(max_examples=40, deadline=None)
@given(shapes, st.integers(0, 2**16), st.floats(0.1, 30.0))
def test_properties_rows_sum_to_one_and_output_in_value_range(attention, shape, seed, spread):
    B, T, S, d = shape
    q, k, v = random_qkv(B, T, S, d, d, dtype=np.float64, seed=seed)
    out, w = attention(q * spread, k, v)
    np.testing.assert_allclose(w.sum(-1), 1, rtol=1e-12)
    assert (w >= 0).all()
    lo, hi = v.min(axis=-2, keepdims=True), v.max(axis=-2, keepdims=True)
    assert (out >= lo - 1e-9).all() and (out <= hi + 1e-9).all()
    np.testing.assert_allclose(
        sa.chunked_attention(q * spread, k, v, chunk_size=2), out, atol=1e-12
    )


@ATTENTION
@settings(max_examples=25, deadline=None)
@given(st.integers(2, 8), st.integers(0, 2**16))
def test_self_attention_without_positions_is_permutation_equivariant(attention, T, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, 4))
    perm = rng.permutation(T)
    out, _ = attention(x, x, x)
    out_perm, _ = attention(x[perm], x[perm], x[perm])
    np.testing.assert_allclose(out_perm, out[perm], atol=1e-12)


@ATTENTION
def test_causal_outputs_do_not_depend_on_the_future(attention):
    q, k, v = random_qkv(B=1, T=6, S=6, d_k=4, d_v=4, dtype=np.float64)
    mask = sa.causal_mask(6)
    out, _ = attention(q, k, v, mask=mask)
    k2, v2 = k.copy(), v.copy()
    k2[:, 4:] += 10
    v2[:, 4:] -= 10
    out2, _ = attention(q, k2, v2, mask=mask)
    np.testing.assert_array_equal(out[:, :4], out2[:, :4])
    assert not np.allclose(out[:, 4:], out2[:, 4:])


def test_multi_head_attention_matches_per_head_formula():
    rng = np.random.default_rng(4)
    B, T, S, d_model, h, d_k, d_v, d_out = 2, 3, 4, 6, 2, 5, 3, 7
    x_q = rng.normal(size=(B, T, d_model))
    x_v = rng.normal(size=(B, S, d_model))
    w = multi_head_weights(d_model, h, d_k, d_v, d_out, rng=rng)
    out, weights = sa.multi_head_attention(x_q, x_v, **w)
    heads = []
    for i in range(h):  # head_i = Attention(X W^Q_i + b, X W^K_i + b, X W^V_i + b)
        qi = x_q @ w["w_q"][:, i] + w["b_q"][i]
        ki = x_v @ w["w_k"][:, i] + w["b_k"][i]
        vi = x_v @ w["w_v"][:, i] + w["b_v"][i]
        heads.append(naive_formula(qi, ki, vi)[0])
    concat = np.concatenate(heads, axis=-1)  # (B, T, h * d_v)
    expected = concat @ w["w_o"].reshape(h * d_v, d_out) + w["b_o"]
    np.testing.assert_allclose(out, expected, atol=1e-10)
    assert weights.shape == (B, h, T, S)


# ---------------------------------------------------------------- errors
Q, K, V = random_qkv()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"key": K[..., :3]}, ValueError, r"`key` must have the same last dimension .*d_k"),
        ({"value": V[:, :2]}, ValueError, r"`value` must have as many positions as `key`"),
        (
            {"query": Q[0, 0]},
            ValueError,
            r"`query` must have rank >= 2.*Received: query.shape=\(8,\)",
        ),
        ({"query": np.array([["a"]])}, TypeError, r"`query` must be a real numeric array"),
        ({"mask": np.ones((3, 3), bool)}, ValueError, r"`mask` must broadcast to .*\(2, 4, 6\)"),
        ({"mask": np.full((4, 6), 2)}, ValueError, r"`mask` must be boolean .* only 0 and 1"),
        ({"mask": np.ones((1, 1, 1, 6), bool)}, ValueError, r"`mask` must broadcast"),
        ({"scale": 0}, ValueError, r"`scale` must be a positive number. Received: scale=0"),
        ({"scale": -1.0}, ValueError, r"`scale` must be a positive number"),
        ({"key": K[:1].repeat(3, 0)}, ValueError, r"leading \(batch\) dimensions"),
    ],
    ids=[
        "depth",
        "length",
        "rank",
        "nonnumeric",
        "mask-shape",
        "mask-values",
        "mask-rank",
        "scale-zero",
        "scale-negative",
        "batch",
    ],
)
@pytest.mark.parametrize("fn", ["naive", "chunked"])
@ATTENTION
def test_errors_name_the_argument(kwargs, error, match, fn, attention):
    args = {"query": Q, "key": K, "value": V} | kwargs
    func = attention if fn == "naive" else sa.chunked_attention
    with pytest.raises(error, match=match):
        func(**args)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True], ids=["zero", "negative", "float", "bool"])
def test_chunk_size_must_be_positive_int(bad):
    with pytest.raises(
        ValueError, match=f"`chunk_size` must be a positive integer. Received: chunk_size={bad!r}"
    ):
        sa.chunked_attention(Q, K, V, chunk_size=bad)


@pytest.mark.parametrize("bad", [0, -1], ids=["zero", "negative"])
def test_length_and_depth_must_be_positive(bad):
    with pytest.raises(ValueError, match="`length` must be a positive integer"):
        sa.positional_encoding(bad, 4)
    with pytest.raises(ValueError, match="`depth` must be a positive integer"):
        sa.positional_encoding(4, bad)
    with pytest.raises(ValueError, match="`length` must be a positive integer"):
        sa.causal_mask(bad)


def test_softmax_rejects_non_numeric():
    with pytest.raises(TypeError, match="`x` must be a real numeric array"):
        sa.softmax(["a", "b"])


def test_padding_mask_rejects_floats():
    with pytest.raises(ValueError, match=r"`tokens` must be a 2-D integer array"):
        sa.padding_mask(np.zeros((2, 3)))


def test_multi_head_attention_errors():
    x = np.zeros((1, 2, 4))
    good = {
        "w_q": np.zeros((4, 2, 3)),
        "w_k": np.zeros((4, 2, 3)),
        "w_v": np.zeros((4, 2, 3)),
        "w_o": np.zeros((2, 3, 4)),
    }
    with pytest.raises(ValueError, match=r"`w_q` must have rank 3"):
        sa.multi_head_attention(x, x, **(good | {"w_q": np.zeros((4, 6))}))
    with pytest.raises(ValueError, match=r"last dimension of `key` must equal .* expected 4"):
        sa.multi_head_attention(x, np.zeros((1, 2, 5)), **good)
    with pytest.raises(ValueError, match=r"`mask` must broadcast"):
        sa.multi_head_attention(x, x, mask=np.ones((3, 3), bool), **good)


def test_import_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, selfattention; print('tensorflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
