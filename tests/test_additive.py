"""Tests of additive (Bahdanau) attention, `selfattention.reference.additive_attention`:
a hand-computed case, the literal formula pair by pair, equality with
`keras.layers.AdditiveAttention` (the same score with the projections applied first), masks
and every error message."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import selfattention as sa  # noqa: E402


def random_problem(B=2, T=3, S=5, d_q=4, d_k=6, d_v=2, d_a=7, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    shapes = [(B, T, d_q), (B, S, d_k), (B, S, d_v), (d_q, d_a), (d_k, d_a), (d_a,)]
    return [rng.normal(size=shape).astype(dtype) for shape in shapes]


def test_hand_computed():
    # d_a = 1, W_q = W_k = [[1]], query 0: the scores are v_a tanh(k_j).
    # k = [0, atanh(1/2)], v_a = 2 ln 3: scores [0, ln 3], weights [1/4, 3/4].
    q = np.array([[0.0]])
    k = np.array([[0.0], [np.arctanh(0.5)]])
    v = np.array([[4.0], [8.0]])
    out, w = sa.additive_attention(q, k, v, [[1.0]], [[1.0]], [2 * np.log(3.0)])
    np.testing.assert_allclose(w, [[0.25, 0.75]], rtol=1e-12)
    np.testing.assert_allclose(out, [[7.0]], rtol=1e-12)


def test_literal_formula_pair_by_pair():
    q, k, v, w_q, w_k, v_a = random_problem()
    mask = np.random.default_rng(1).random((2, 3, 5)) < 0.7
    mask[..., 0] = True
    out, w = sa.additive_attention(q, k, v, w_q, w_k, v_a, mask=mask)
    for b, i in np.ndindex(2, 3):
        scores = np.array(
            [v_a @ np.tanh(w_q.T @ q[b, i] + w_k.T @ k[b, j]) for j in range(5)]
        )  # score(q, k) = v_a^T tanh(W_q q + W_k k), column vectors as in the paper
        scores[~mask[b, i]] = -np.inf
        expected = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
        np.testing.assert_allclose(w[b, i], expected, atol=1e-12)
        np.testing.assert_allclose(out[b, i], expected @ v[b], atol=1e-12)


def test_fully_masked_row_gives_zeros():
    q, k, v, w_q, w_k, v_a = random_problem()
    mask = np.ones((2, 3, 5), dtype=bool)
    mask[1, 0] = False
    out, w = sa.additive_attention(q, k, v, w_q, w_k, v_a, mask=mask)
    np.testing.assert_array_equal(w[1, 0], 0)
    np.testing.assert_array_equal(out[1, 0], 0)
    np.testing.assert_allclose(w.sum(-1)[mask.any(-1)], 1, atol=1e-12)


def test_float32_stays_float32():
    out, w = sa.additive_attention(*random_problem(dtype=np.float32))
    assert out.dtype == w.dtype == np.float32


@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "key-padding-mask"])
def test_equals_keras_additive_attention(masked):
    """`keras.layers.AdditiveAttention` computes `sum(scale * tanh(q + k))` on inputs already
    projected: with `q @ w_q`, `k @ w_k` and `scale = v_a` it is the same attention."""
    import keras

    q, k, v, w_q, w_k, v_a = random_problem(d_v=7, dtype=np.float32)  # Keras: d_v = d_a
    key_mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)  # (B, S)
    layer = keras.layers.AdditiveAttention(use_scale=True)
    inputs = [q @ w_q, v, k @ w_k]  # Keras's order: query, value, key
    layer(inputs)
    layer.set_weights([v_a])
    mask = [None, key_mask] if masked else None
    theirs, theirs_w = layer(inputs, mask=mask, return_attention_scores=True)
    ours, ours_w = sa.additive_attention(
        q, k, v, w_q, w_k, v_a, mask=key_mask[:, None, :] if masked else None
    )
    np.testing.assert_allclose(ours_w, np.asarray(theirs_w), atol=1e-5)
    np.testing.assert_allclose(ours, np.asarray(theirs), atol=1e-5)


@pytest.mark.parametrize(
    ("index", "bad", "message"),
    [
        (3, np.zeros((5, 7)), r"`w_q` must have as many rows as `query` has features, expected 4"),
        (4, np.zeros((4, 7)), r"`w_k` must have as many rows as `key` has features, expected 6"),
        (3, np.zeros((4, 3)), r"`w_q` must have as many columns as `v_a` has entries \(d_a\)"),
        (4, np.zeros((6, 3)), r"`w_k` must have as many columns as `v_a` has entries \(d_a\)"),
        (5, np.zeros((7, 1)), r"`v_a` must have rank 1. Received: v_a.shape=\(7, 1\)"),
        (3, np.zeros(7), r"`w_q` must have rank 2"),
        (2, np.zeros((2, 4, 2)), r"`value` must have as many positions as `key` \(S\)"),
        (0, np.zeros(4), r"`query` must have rank >= 2"),
        (1, np.zeros((2, 5, 6), dtype=complex), r"`key` must be a real numeric array"),
    ],
    ids=["w_q-rows", "w_k-rows", "w_q-cols", "w_k-cols", "v_a-rank", "w_q-rank", "value-S",
         "query-rank", "key-dtype"],
)  # fmt: skip
def test_errors(index, bad, message):
    args = random_problem()
    args[index] = bad
    with pytest.raises((ValueError, TypeError), match=message):
        sa.additive_attention(*args)


def test_mask_error():
    with pytest.raises(ValueError, match=r"`mask` must broadcast to the scores' shape"):
        sa.additive_attention(*random_problem(), mask=np.ones((3, 4), dtype=bool))
