"""Tests of the backward pass of attention (`selfattention.backward`): a hand-computed case,
equality with `tf.GradientTape` (an implementation nobody here wrote) with and without masks,
fully masked rows included, finite differences, the chunked recomputation equal to the plain
backward pass, broadcasting, and every error message.

Tolerances: 1e-5 absolute against TensorFlow in float32, 1e-12 in float64.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import selfattention as sa  # noqa: E402
from selfattention import backward  # noqa: E402

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


def random_inputs(B=2, T=5, S=7, d_k=4, d_v=3, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    q, k, v, d_out = (
        rng.normal(size=shape).astype(dtype)
        for shape in [(B, T, d_k), (B, S, d_k), (B, S, d_v), (B, T, d_v)]
    )
    return q, k, v, d_out


def random_mask(B=2, T=5, S=7, seed=0, fully_masked_row=True):
    mask = np.random.default_rng(seed + 1).random((B, T, S)) < 0.6  # (B, T, S)
    mask[:, :, 0] = True
    if fully_masked_row:
        mask[0, 2] = False  # query 2 of batch 0 may attend to nothing
    return mask


def tape_gradients(q, k, v, d_out, mask=None, scale=None):
    """Gradients of sum(O * dO), i.e. with dL/dO = dO, by TensorFlow's autodiff. The forward
    pass follows the package's convention: masked scores get the dtype's minimum and masked
    weights are then multiplied by 0, so a fully masked row has weights 0 and output 0."""
    q, k, v = (tf.constant(x) for x in (q, k, v))
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    with tf.GradientTape() as tape:
        tape.watch([q, k, v])
        scores = tf.matmul(q, k, transpose_b=True) * scale  # (B, T, S)
        if mask is None:
            weights = tf.nn.softmax(scores, axis=-1)
        else:
            keep = tf.broadcast_to(tf.constant(mask), scores.shape)
            scores = tf.where(keep, scores, scores.dtype.min)
            weights = tf.nn.softmax(scores, axis=-1) * tf.cast(keep, scores.dtype)
        output = tf.matmul(weights, v)  # (B, T, d_v)
        loss = tf.reduce_sum(output * d_out)
    return [g.numpy() for g in tape.gradient(loss, [q, k, v])]


def chunked(q, k, v, d_out, mask=None, scale=None, chunk_size=3):
    output, lse = backward.chunked_attention_forward(q, k, v, mask, scale, chunk_size)
    return backward.chunked_attention_backward(
        q, k, v, output, lse, d_out, mask=mask, scale=scale, chunk_size=chunk_size
    )


# ---------------------------------------------------------------- hand-computed case
def test_hand_computed_tie():
    # q = 0: both scores are 0, P = [1/2, 1/2], O = (1 + 3) / 2 = 2.
    # dV = P^T dO = [1/2, 1/2]; dP = dO V^T = [1, 3]; rowsum(dP o P) = 2;
    # dS = P o (dP - 2) = [-1/2, 1/2]; dQ = dS K = [-1/2, 1/2] (K = I, scale 1); dK = dS^T q = 0.
    q = np.zeros((1, 2))
    k = np.eye(2)
    v = np.array([[1.0], [3.0]])
    d_q, d_k, d_v = sa.attention_backward(q, k, v, np.ones((1, 1)), scale=1.0)
    np.testing.assert_array_equal(d_q, [[-0.5, 0.5]])
    np.testing.assert_array_equal(d_k, np.zeros((2, 2)))
    np.testing.assert_array_equal(d_v, [[0.5], [0.5]])


# ---------------------------------------------------------------- against tf.GradientTape
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask-with-empty-row"])
@pytest.mark.parametrize(
    "implementation", [sa.attention_backward, chunked], ids=["plain", "chunked"]
)
def test_equals_gradient_tape(implementation, masked, dtype):
    q, k, v, d_out = random_inputs(dtype=dtype)
    mask = random_mask() if masked else None
    ours = implementation(q, k, v, d_out, mask=mask)
    theirs = tape_gradients(q, k, v, d_out, mask=mask)
    for name, a, b in zip(("d_query", "d_key", "d_value"), ours, theirs, strict=True):
        assert a.dtype == dtype, name
        np.testing.assert_allclose(a, b, atol=TOLERANCE[dtype], rtol=0, err_msg=name)


def test_equals_gradient_tape_with_a_scale_and_a_causal_mask():
    q, k, v, d_out = random_inputs(T=6, S=6, d_k=8)
    mask = sa.causal_mask(6)
    ours = sa.attention_backward(q, k, v, d_out, mask=mask, scale=0.7)
    theirs = tape_gradients(q, k, v, d_out, mask=mask, scale=0.7)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12, rtol=0)


# ---------------------------------------------------------------- properties
def test_finite_differences():
    q, k, v, d_out = random_inputs(B=1, T=3, S=4)
    mask = random_mask(B=1, T=3, S=4, fully_masked_row=False)

    def loss(q, k, v):
        output, _ = sa.reference.scaled_dot_product_attention(q, k, v, mask=mask)
        return np.sum(output * d_out)

    grads = sa.attention_backward(q, k, v, d_out, mask=mask)
    eps = 1e-6
    for i, x in enumerate((q, k, v)):
        numeric = np.zeros_like(x)
        for index in np.ndindex(x.shape):
            up, down = [a.copy() for a in (q, k, v)], [a.copy() for a in (q, k, v)]
            up[i][index] += eps
            down[i][index] -= eps
            numeric[index] = (loss(*up) - loss(*down)) / (2 * eps)
        np.testing.assert_allclose(grads[i], numeric, atol=1e-7)


def test_fully_masked_row_sends_no_gradient():
    q, k, v, d_out = random_inputs()
    mask = random_mask()
    d_q, _, _ = sa.attention_backward(q, k, v, d_out, mask=mask)
    np.testing.assert_array_equal(d_q[0, 2], 0)
    # the row's dO does not matter either
    d_out_changed = d_out.copy()
    d_out_changed[0, 2] += 100
    for a, b in zip(
        sa.attention_backward(q, k, v, d_out, mask=mask),
        sa.attention_backward(q, k, v, d_out_changed, mask=mask),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


def test_masked_keys_get_no_gradient():
    q, k, v, d_out = random_inputs()
    mask = np.ones((5, 7), dtype=bool)
    mask[:, 4] = False  # no query may attend to key 4
    _, d_k, d_v = sa.attention_backward(q, k, v, d_out, mask=mask)
    np.testing.assert_array_equal(d_k[:, 4], 0)
    np.testing.assert_array_equal(d_v[:, 4], 0)


@settings(max_examples=30, deadline=None)
@given(
    T=st.integers(1, 6),
    S=st.integers(1, 9),
    chunk_size=st.integers(1, 10),
    seed=st.integers(0, 2**16),
    masked=st.booleans(),
)
def test_chunked_equals_plain(T, S, chunk_size, seed, masked):
    q, k, v, d_out = random_inputs(B=2, T=T, S=S, seed=seed)
    mask = np.random.default_rng(seed).random((2, T, S)) < 0.5 if masked else None
    plain = sa.attention_backward(q, k, v, d_out, mask=mask)
    for a, b in zip(chunked(q, k, v, d_out, mask, chunk_size=chunk_size), plain, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12, rtol=0)


def test_chunked_forward_equals_the_package_forward():
    q, k, v, _ = random_inputs()
    mask = random_mask()
    output, lse = backward.chunked_attention_forward(q, k, v, mask=mask, chunk_size=2)
    expected, weights = sa.reference.scaled_dot_product_attention(q, k, v, mask=mask)
    np.testing.assert_allclose(output, expected, atol=1e-12)
    assert lse.shape == (2, 5)
    assert lse[0, 2] == -np.inf  # the fully masked row
    scores = np.where(mask, q @ np.swapaxes(k, -1, -2) / 2, -np.inf)  # d_k = 4: scale 1/2
    recomputed = np.exp(scores - np.where(np.isfinite(lse), lse, np.inf)[..., None])
    np.testing.assert_allclose(recomputed, weights, atol=1e-12)


def test_broadcast_batch_dimensions_sum_the_gradient():
    q, k, v, d_out = random_inputs(B=3)
    k1, v1 = k[:1], v[:1]  # one key/value set shared by 3 query sets
    d_q, d_k, d_v = sa.attention_backward(q, k1, v1, d_out)
    assert d_k.shape == k1.shape and d_v.shape == v1.shape
    full = sa.attention_backward(q, np.repeat(k1, 3, 0), np.repeat(v1, 3, 0), d_out)
    np.testing.assert_allclose(d_q, full[0], atol=1e-12)
    np.testing.assert_allclose(d_k, full[1].sum(0, keepdims=True), atol=1e-12)
    np.testing.assert_allclose(d_v, full[2].sum(0, keepdims=True), atol=1e-12)
    for a, b in zip(chunked(q, k1, v1, d_out), (d_q, d_k, d_v), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_float16_is_computed_in_float32_and_returned_as_float16():
    q, k, v, d_out = random_inputs(dtype=np.float16)
    grads = sa.attention_backward(q, k, v, d_out)
    expected = sa.attention_backward(*(x.astype(np.float32) for x in (q, k, v, d_out)))
    for a, b in zip(grads, expected, strict=True):
        assert a.dtype == np.float16
        np.testing.assert_allclose(a, b, atol=1e-2)


# ---------------------------------------------------------------- errors
def test_grad_output_of_the_wrong_shape():
    q, k, v, d_out = random_inputs()
    with pytest.raises(ValueError, match=r"`grad_output` must have the shape .* \(2, 5, 3\)"):
        sa.attention_backward(q, k, v, d_out[:, :4])


def test_errors_of_the_attention_inputs_are_the_forward_ones():
    q, k, v, d_out = random_inputs()
    with pytest.raises(ValueError, match="`key` must have the same last dimension as `query`"):
        sa.attention_backward(q, k[..., :2], v, d_out)
    with pytest.raises(ValueError, match="`scale` must be a positive number"):
        sa.attention_backward(q, k, v, d_out, scale=0)
    with pytest.raises(ValueError, match="`mask` must broadcast"):
        sa.attention_backward(q, k, v, d_out, mask=np.ones((4, 4), bool))


def test_chunked_errors():
    q, k, v, d_out = random_inputs()
    output, lse = backward.chunked_attention_forward(q, k, v)
    with pytest.raises(ValueError, match="`chunk_size` must be a positive integer"):
        backward.chunked_attention_forward(q, k, v, chunk_size=0)
    with pytest.raises(ValueError, match="`chunk_size` must be a positive integer"):
        backward.chunked_attention_backward(q, k, v, output, lse, d_out, chunk_size=1.5)
    with pytest.raises(ValueError, match=r"`logsumexp` must broadcast to \(\.\.\., T\)"):
        backward.chunked_attention_backward(q, k, v, output, lse[:, :3], d_out)
    with pytest.raises(ValueError, match=r"`output` must have the shape"):
        backward.chunked_attention_backward(q, k, v, output[..., :2], lse, d_out)
    with pytest.raises(TypeError, match="`grad_output` must be a real numeric array"):
        backward.chunked_attention_backward(q, k, v, output, lse, d_out.astype(complex))
