"""Tests of the Keras layers against keras.layers.MultiHeadAttention and the NumPy reference.

Tolerance: 1e-5 absolute in float32 (the two implementations sum in different orders).
The tests run on any Keras backend (``KERAS_BACKEND=jax`` too); those that use TensorFlow
itself (tf.function, GradientTape) take the `tf` fixture and are skipped on other backends.
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
ON_TENSORFLOW = keras.backend.backend() == "tensorflow"


@pytest.fixture
def tf():
    """TensorFlow, for the tests of TensorFlow-only behaviour (skipped on other backends)."""
    if not ON_TENSORFLOW:
        pytest.skip("uses TensorFlow itself (tf.function, GradientTape)")
    import tensorflow

    return tensorflow


def data(B=2, T=5, S=7, d_q=16, d_v=12, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(B, T, d_q)).astype("float32"),
        rng.normal(size=(B, S, d_v)).astype("float32"),
    )


def twins(num_heads=4, key_dim=8, query=None, value=None, **kwargs):
    """A Keras layer and ours with identical weights."""
    keras.utils.set_random_seed(1)
    theirs = keras.layers.MultiHeadAttention(num_heads, key_dim, **kwargs)
    ours = layers.MultiHeadAttention(num_heads, key_dim, **kwargs)
    theirs(query, value, return_attention_scores=True)  # Keras's explicit path (see below)
    ours(query, value)
    ours.set_weights(theirs.get_weights())
    return theirs, ours


def keras_fast_path(theirs, query, value, reference, **call):
    """Keras's output without scores (its fast path, `ops.dot_product_attention`). On JAX
    that path fails inside Keras when `value_dim != key_dim` (seen with Keras 3.15.1 and
    jax 0.10.2, "cannot reshape array"); there our fast output is held against Keras's
    explicit path instead, `reference`."""
    if keras.backend.backend() == "jax" and theirs.value_dim != theirs.key_dim:
        return reference
    return theirs(query, value, **call)


def random_mask(shape, seed=3, p=0.3):
    mask = np.random.default_rng(seed).random(shape) > p
    mask[..., 0] = True  # no fully masked row here (Keras differs there, tested separately)
    return mask


MASKS = {
    "none": lambda B, T, S: None,
    "padding": lambda B, T, S: np.broadcast_to(
        np.arange(S)[None, None, :] < np.array([S, S - 3])[:, None, None], (B, T, S)
    ),
    "random": lambda B, T, S: random_mask((B, T, S)),
    "2d": lambda B, T, S: random_mask((T, S)),
}


@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize(
    "config",
    [{}, {"value_dim": 6, "output_shape": 10}, {"use_bias": False}],
    ids=["default", "value_dim-output_shape", "no-bias"],
)
def test_equals_keras_cross_attention(mask_name, config):
    q, v = data()
    theirs, ours = twins(query=q, value=v, **config)
    mask = MASKS[mask_name](2, 5, 7)
    ref_out, ref_scores = theirs(q, v, attention_mask=mask, return_attention_scores=True)
    out, scores = ours(q, v, attention_mask=mask, return_attention_scores=True)
    np.testing.assert_allclose(out, ref_out, atol=ATOL)
    np.testing.assert_allclose(scores, ref_scores, atol=ATOL)
    assert scores.shape == (2, 4, 5, 7)
    # Keras's fast path (no scores returned) must agree too
    fast = ours(q, v, attention_mask=mask)
    expected = keras_fast_path(theirs, q, v, ref_out, attention_mask=mask)
    np.testing.assert_allclose(fast, expected, atol=ATOL)


@pytest.mark.parametrize("mask_name", ["none", "padding", "random"])
def test_equals_keras_causal_self_attention(mask_name):
    q, _ = data(T=6, S=6)
    theirs, ours = twins(query=q, value=q)
    mask = MASKS[mask_name](2, 6, 6)
    kwargs = {"attention_mask": mask, "use_causal_mask": True}
    ref_out, ref_scores = theirs(q, q, return_attention_scores=True, **kwargs)
    out, scores = ours(q, q, return_attention_scores=True, **kwargs)
    np.testing.assert_allclose(out, ref_out, atol=ATOL)
    np.testing.assert_allclose(scores, ref_scores, atol=ATOL)
    np.testing.assert_array_equal(np.triu(scores[0, 0], k=1), 0)


def test_equals_keras_with_separate_key_and_numpy():
    rng = np.random.default_rng(5)
    q, v = data()
    key = rng.normal(size=(2, 7, 9)).astype("float32")
    keras.utils.set_random_seed(2)
    theirs = keras.layers.MultiHeadAttention(3, 5)
    ours = layers.MultiHeadAttention(3, 5)
    theirs(q, v, key)
    ours(q, v, key)
    ours.set_weights(theirs.get_weights())
    mask = random_mask((2, 5, 7))
    ref = theirs(q, v, key, attention_mask=mask)
    np.testing.assert_allclose(ours(q, v, key, attention_mask=mask), ref, atol=ATOL)
    weights = dict(zip(sa.KERAS_WEIGHT_NAMES, theirs.get_weights(), strict=True))
    np_out, _ = sa.multi_head_attention(q, v, key, mask=mask, **weights)
    np.testing.assert_allclose(np_out, ref, atol=ATOL)


def test_numpy_tensorflow_and_chunked_agree():
    rng = np.random.default_rng(6)
    q, k, v = (rng.normal(size=(2, 3, 9, 8)).astype("float32") for _ in range(3))
    mask = sa.causal_mask(9)
    np_out, np_w = sa.scaled_dot_product_attention(q, k, v, mask=mask)
    tf_out, tf_w = layers.scaled_dot_product_attention(q, k, v, mask=mask)
    np.testing.assert_allclose(tf_out, np_out, atol=1e-6)
    np.testing.assert_allclose(tf_w, np_w, atol=1e-6)
    np.testing.assert_allclose(
        sa.chunked_attention(q, k, v, mask=mask, chunk_size=4), np_out, atol=1e-6
    )


def test_fully_masked_row_zero_on_every_path_unlike_keras():
    q, v = data()
    mask = np.ones((2, 5, 7), bool)
    mask[0, 2] = False
    theirs, ours = twins(query=q, value=v, dropout=0.5)
    theirs_fast, ours_fast = twins(query=q, value=v)
    _, scores = ours(q, v, attention_mask=mask, return_attention_scores=True)
    np.testing.assert_array_equal(scores[0, :, 2], 0)
    no_scores = ours_fast(q, v, attention_mask=mask)
    with_scores, _ = ours_fast(q, v, attention_mask=mask, return_attention_scores=True)
    np.testing.assert_array_equal(no_scores, with_scores)
    bias_only = ops.convert_to_numpy(
        ours_fast.b_o
    )  # zero attention output -> only the output bias remains
    np.testing.assert_allclose(no_scores[0, 2], bias_only, atol=1e-7)
    trained = ours(q, v, attention_mask=mask, training=True)
    np.testing.assert_allclose(trained[0, 2], ops.convert_to_numpy(ours.b_o), atol=1e-7)
    # Keras: uniform weights on its explicit path? zeros; fast path: mean of values. They differ.
    k_fast = theirs_fast(q, v, attention_mask=mask)
    k_scores_out, _ = theirs_fast(q, v, attention_mask=mask, return_attention_scores=True)
    assert not np.allclose(k_fast[0, 2], k_scores_out[0, 2], atol=1e-3)
    np.testing.assert_allclose(k_scores_out[0, 2], no_scores[0, 2], atol=ATOL)


def test_dropout_only_in_training():
    q, v = data()
    _, ours = twins(query=q, value=v, dropout=0.5)
    a = ours(q, v, training=False)
    b = ours(q, v)
    np.testing.assert_array_equal(a, b)
    c = ours(q, v, training=True)
    assert not np.allclose(a, c)


def test_causal_layer_past_is_independent_of_future_including_gradient(tf):
    rng = np.random.default_rng(7)
    x = tf.constant(rng.normal(size=(1, 6, 16)).astype("float32"))
    layer = layers.MultiHeadAttention(4, 4)
    out = layer(x, x, use_causal_mask=True)
    x2 = tf.concat([x[:, :4], x[:, 4:] + 5.0], axis=1)
    out2 = layer(x2, x2, use_causal_mask=True)
    np.testing.assert_allclose(out[:, :4], out2[:, :4], atol=1e-6)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, x, use_causal_mask=True)[:, :4]
    grad = tape.gradient(y, x).numpy()
    np.testing.assert_array_equal(grad[:, 4:], 0)
    assert np.abs(grad[:, :4]).sum() > 0


def test_float16_and_float64_keep_their_dtype():
    rng = np.random.default_rng(8)
    dtypes = ("float16", "float64") if ON_TENSORFLOW else ("float16",)  # JAX: no x64 by default
    for dtype in dtypes:
        q = ops.convert_to_tensor((rng.normal(size=(1, 3, 4)) * 50).astype(dtype))
        out, w = layers.scaled_dot_product_attention(q, q, q)
        assert keras.backend.standardize_dtype(out.dtype) == dtype
        assert keras.backend.standardize_dtype(w.dtype) == dtype
        assert np.isfinite(ops.convert_to_numpy(out)).all()
    big = np.full((1, 2, 4), 100.0, "float32")  # scores of 2e4
    out, _ = layers.scaled_dot_product_attention(big, big, big)
    assert np.isfinite(ops.convert_to_numpy(out)).all()


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_equals_keras(policy):
    # The projections run without their own Layer.__call__ (see MultiHeadAttention._project):
    # the outer call's autocast scope must still give them their kernels in the compute dtype.
    q, v = data()
    theirs, ours = twins(query=q, value=v, dtype=policy)
    compute = policy.removeprefix("mixed_")
    out_t = theirs(q, v, attention_mask=random_mask((2, 5, 7)))
    out_o = ours(q, v, attention_mask=random_mask((2, 5, 7)))
    assert keras.backend.standardize_dtype(out_o.dtype) == compute
    assert keras.backend.standardize_dtype(ours.query_dense.kernel.dtype) == "float32"
    tol = 2e-2 if compute == "float16" else 1e-1  # 11 and 8 significant bits
    np.testing.assert_allclose(
        ops.convert_to_numpy(ops.cast(out_o, "float32")),
        ops.convert_to_numpy(ops.cast(out_t, "float32")),
        atol=tol,
    )


def test_heads_first_projections_are_keras_layout_transposed():
    # The layer asks its projections for (B, h, T, d) directly (one einsum, no transpose);
    # called as Keras layers they keep Keras's (B, T, h, d).
    q, v = data()
    _, ours = twins(query=q, value=v, output_shape=10)
    x = ops.convert_to_tensor(q)
    keras_layout = ours.query_dense(x)  # (B, T, h, d_k)
    heads_first = ours.query_dense.call(x, heads_first=True)  # (B, h, T, d_k)
    np.testing.assert_allclose(heads_first, ops.transpose(keras_layout, (0, 2, 1, 3)), atol=1e-6)
    dense = ours.output_dense
    assert dense.compute_output_shape((2, 4, 5, 8), heads_first=True) == (2, 5, 10)
    assert ours.query_dense.compute_output_shape((2, 5, 16), heads_first=True) == (2, 4, 5, 8)
    back = dense.call(heads_first, heads_first=True)  # (B, T, 10)
    np.testing.assert_allclose(back, dense(keras_layout), atol=1e-6)


def test_inside_tf_function_matches_eager(tf):
    q, v = data()
    _, ours = twins(query=q, value=v)
    mask = random_mask((2, 5, 7))
    graph = tf.function(lambda a, b: ours(a, b, attention_mask=mask))
    np.testing.assert_allclose(graph(q, v), ours(q, v, attention_mask=mask), atol=1e-6)


def test_config_round_trip_and_saving(tmp_path):
    q, v = data()
    layer = layers.MultiHeadAttention(
        2, 3, value_dim=5, dropout=0.1, output_shape=(7,), use_bias=False
    )
    config = layer.get_config()
    clone = layers.MultiHeadAttention.from_config(config)
    assert clone.get_config() == config
    inputs = keras.Input((5, 16))
    context = keras.Input((7, 12))
    model = keras.Model([inputs, context], layer(inputs, context))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded([q, v]), model([q, v]), atol=1e-6)


def test_blocks_shapes_norms_and_configs():
    q, _ = data(d_q=16)
    for norm_first in (False, True):
        block = layers.TransformerEncoderBlock(16, 4, 32, norm_first=norm_first)
        y = block(q, use_causal_mask=True)
        assert y.shape == (2, 5, 16)
        assert layers.TransformerEncoderBlock.from_config(block.get_config()).get_config() == (
            block.get_config()
        )
    post = ops.convert_to_numpy(layers.TransformerEncoderBlock(16, 4, 32)(q))
    np.testing.assert_allclose(post.mean(-1), 0, atol=1e-5)  # post-norm ends with LayerNorm
    context = np.random.default_rng(12).normal(size=(2, 7, 16)).astype("float32")
    dec = layers.TransformerDecoderBlock(16, 4, 32)
    out, cross = dec(q, context, return_attention_scores=True)
    assert out.shape == (2, 5, 16) and cross.shape == (2, 4, 5, 7)
    np.testing.assert_allclose(ops.sum(cross, -1), 1, atol=1e-5)
    emb = layers.PositionalEmbedding(11, 16, max_length=20)
    assert emb(np.array([[1, 2, 3]])).shape == (1, 3, 16)


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"num_heads": 0},
            r"argument `num_heads` must be a positive integer. Received: num_heads=0",
        ),
        ({"key_dim": -2}, r"`key_dim` must be a positive integer. Received: key_dim=-2"),
        ({"value_dim": 0}, r"`value_dim` must be a positive integer"),
        ({"dropout": 1.0}, r"`dropout` must be a number in \[0, 1\). Received: dropout=1.0"),
        ({"dropout": -0.1}, r"`dropout` must be a number in \[0, 1\)"),
        ({"output_shape": 8.0}, r"Invalid `output_shape`: 8.0. When specified, `output_shape`"),
        ({"output_shape": (3, 0)}, r"Invalid `output_shape`: \(3, 0\)"),
        ({"attention_axes": "1"}, r"`attention_axes` must be an int, list, or tuple"),
        ({"sliding_window": 0}, r"`sliding_window` must be `None` or a positive integer"),
        ({"dropout": 0.1, "flash_attention": True}, r"Dropout is not supported when flash"),
    ],
    ids=[
        "num_heads",
        "key_dim",
        "value_dim",
        "dropout-one",
        "dropout-negative",
        "output_shape-float",
        "output_shape-zero",
        "attention_axes",
        "sliding_window",
        "flash-dropout",
    ],
)
def test_layer_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.MultiHeadAttention(**({"num_heads": 2, "key_dim": 4} | kwargs))


def test_block_errors():
    with pytest.raises(ValueError, match=r"`d_model` must be divisible by `num_heads`"):
        layers.TransformerEncoderBlock(10, 4, 32)
    with pytest.raises(ValueError, match=r"`d_ff` must be a positive integer"):
        layers.TransformerDecoderBlock(16, 4, 0)
    with pytest.raises(ValueError, match=r"`vocab_size` must be a positive integer"):
        layers.PositionalEmbedding(0, 16)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"key": np.zeros((2, 7, 3), "float32")}, ValueError, r"`key` must have the same last dim"),
        ({"value": np.zeros((2, 3, 8), "float32")}, ValueError, r"`value` must have as many"),
        ({"query": np.zeros((8,), "float32")}, ValueError, r"`query` must have rank >= 2"),
        pytest.param(
            {"query": np.array([["a"]])},
            TypeError,
            r"`query` must be a real numeric tensor",
            marks=pytest.mark.skipif(not ON_TENSORFLOW, reason="JAX has no string arrays"),
        ),
        ({"mask": np.ones((3, 3), bool)}, ValueError, r"`mask` must broadcast"),
        ({"mask": np.full((5, 7), 2)}, ValueError, r"`mask` must be boolean .* only 0 and 1"),
        ({"scale": 0.0}, ValueError, r"`scale` must be a positive number"),
    ],
    ids=["depth", "length", "rank", "nonnumeric", "mask-shape", "mask-values", "scale"],
)
@pytest.mark.parametrize(
    "attention",
    [layers.scaled_dot_product_attention, layers.chunked_attention],
    ids=["full", "chunked"],
)
def test_tf_attention_errors(attention, kwargs, error, match):
    rng = np.random.default_rng(9)
    args = {
        "query": rng.normal(size=(2, 5, 8)).astype("float32"),
        "key": rng.normal(size=(2, 7, 8)).astype("float32"),
        "value": rng.normal(size=(2, 7, 4)).astype("float32"),
    } | kwargs
    with pytest.raises(error, match=match):
        attention(**args)


# ---------------------------------------------------------------- the chunked path
def chunked_twins(chunk_size, query, value, **kwargs):
    """Our layer without and with `chunk_size`, identical weights."""
    keras.utils.set_random_seed(4)
    full = layers.MultiHeadAttention(4, 8, **kwargs)
    chunked = layers.MultiHeadAttention(4, 8, chunk_size=chunk_size, **kwargs)
    full(query, value)
    chunked(query, value)
    chunked.set_weights(full.get_weights())
    return full, chunked


def with_fully_masked_rows(mask):
    if mask is None:
        return None
    mask = np.array(mask)
    mask[..., 1, :] = False  # query 1 may attend to nothing (in every batch)
    return mask


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 64], ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("mask_name", list(MASKS))
def test_chunked_layer_equals_unchunked(chunk_size, mask_name):
    q, v = data()
    full, chunked = chunked_twins(chunk_size, q, v)
    mask = with_fully_masked_rows(MASKS[mask_name](2, 5, 7))
    expected = full(q, v, attention_mask=mask)
    np.testing.assert_allclose(chunked(q, v, attention_mask=mask), expected, atol=ATOL)
    if ON_TENSORFLOW:  # the while loop traced into a graph
        import tensorflow as tf

        graph = tf.function(lambda a, b: chunked(a, b, attention_mask=mask))
        np.testing.assert_allclose(graph(q, v), expected, atol=ATOL)
    if mask is not None:  # nothing to attend to: the attention output is 0, only the bias is left
        np.testing.assert_allclose(
            chunked(q, v, attention_mask=mask)[:, 1],
            np.broadcast_to(ops.convert_to_numpy(chunked.b_o), (2, 16)),
            atol=1e-7,
        )


@pytest.mark.parametrize("mask_name", ["none", "padding", "random"])
def test_chunked_layer_causal_equals_unchunked(mask_name):
    x, _ = data(T=9, S=9)
    full, chunked = chunked_twins(4, x, x)
    mask = MASKS[mask_name](2, 9, 9)
    kwargs = {"attention_mask": mask, "use_causal_mask": True}
    np.testing.assert_allclose(chunked(x, x, **kwargs), full(x, x, **kwargs), atol=ATOL)


def test_chunked_layer_gradients_equal_unchunked(tf):
    x, _ = data(T=6, S=6)
    x = tf.constant(x)
    full, chunked = chunked_twins(4, x, x)
    grads = []
    for layer in (full, chunked):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(layer(x, x, use_causal_mask=True) ** 2)
        grads.append(tape.gradient(y, [x, *layer.trainable_weights]))
    for g_full, g_chunked in zip(*grads, strict=True):
        np.testing.assert_allclose(g_chunked, g_full, atol=1e-4)


def test_chunked_layer_scores_and_dropout_use_the_full_path():
    q, v = data()
    full, chunked = chunked_twins(3, q, v, dropout=0.5)
    out, scores = chunked(q, v, return_attention_scores=True)
    ref_out, ref_scores = full(q, v, return_attention_scores=True)
    np.testing.assert_allclose(out, ref_out, atol=ATOL)
    np.testing.assert_allclose(scores, ref_scores, atol=ATOL)
    assert not np.allclose(chunked(q, v, training=True), out)  # dropout is applied


def test_chunked_layer_config_round_trip_and_saving(tmp_path):
    q, v = data()
    layer = layers.MultiHeadAttention(2, 3, chunk_size=4)
    config = layer.get_config()
    assert config["chunk_size"] == 4
    clone = layers.MultiHeadAttention.from_config(config)
    assert clone.chunk_size == 4 and clone.get_config() == config
    assert layers.MultiHeadAttention(2, 3).get_config()["chunk_size"] is None
    inputs, context = keras.Input((5, 16)), keras.Input((7, 12))
    model = keras.Model([inputs, context], layer(inputs, context))
    path = tmp_path / "chunked.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.layers[-1].chunk_size == 4
    np.testing.assert_allclose(loaded([q, v]), model([q, v]), atol=1e-6)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True], ids=["zero", "negative", "float", "bool"])
def test_chunk_size_must_be_a_positive_int(bad):
    match = f"`chunk_size` must be a positive integer. Received: chunk_size={bad!r}"
    with pytest.raises(ValueError, match=match):
        layers.MultiHeadAttention(2, 4, chunk_size=bad)
    rng = np.random.default_rng(10)
    x = rng.normal(size=(1, 3, 4)).astype("float32")
    with pytest.raises(ValueError, match=match):
        layers.chunked_attention(x, x, x, chunk_size=bad)


def test_tf_chunked_attention_equals_numpy_and_keeps_dtype():
    """The chunked function (keras.ops) equals the NumPy one, on any backend."""
    rng = np.random.default_rng(11)
    q, k, v = (rng.normal(size=(2, 3, 9, 8)).astype("float32") for _ in range(3))
    mask = rng.random((2, 1, 9, 9)) > 0.4
    mask[0, 0, 4] = False
    expected = sa.chunked_attention(q, k, v, mask=mask, chunk_size=2)
    out = layers.chunked_attention(q, k, v, mask=mask, chunk_size=2)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_array_equal(out[0, :, 4], 0)
    causal, _ = layers.scaled_dot_product_attention(q, k, v, mask=sa.causal_mask(9))
    np.testing.assert_allclose(
        layers.chunked_attention(q, k, v, chunk_size=4, use_causal_mask=True), causal, atol=1e-6
    )
    half = layers.chunked_attention(*(x.astype("float16") * 30 for x in (q, k, v)), chunk_size=4)
    assert keras.backend.standardize_dtype(half.dtype) == "float16"
    assert np.isfinite(ops.convert_to_numpy(half)).all()


# ---------------------------------------------------------------- drop-in: Keras's masks and API
# A batch of token ids with padding (0): row 0 has 3 real tokens, row 1 has 5, row 2 none padded.
TOKENS = np.array([[3, 5, 2, 0, 0, 0], [7, 1, 4, 4, 9, 0], [1, 2, 3, 4, 5, 6]])
REAL = TOKENS != 0  # (B, T)


def embedded_twins(use_causal_mask, tokens=TOKENS):
    """`Input -> Embedding(10, 8, mask_zero=True) -> MHA`, Keras's layer and ours side by side
    on the same embeddings, ours given Keras's weights; a masked mean pools each output."""
    keras.utils.set_random_seed(5)
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(10, 8, mask_zero=True)(ids)  # (B, T, 8), mask (B, T)
    theirs = keras.layers.MultiHeadAttention(2, 4)
    ours = layers.MultiHeadAttention(2, 4)
    outputs = [mha(x, x, use_causal_mask=use_causal_mask) for mha in (theirs, ours)]
    pooled = [keras.layers.GlobalAveragePooling1D()(y) for y in outputs]  # reads the mask
    model = keras.Model(ids, outputs + pooled)
    ours.set_weights(theirs.get_weights())
    return model, theirs, ours


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_implicit_padding_mask_from_embedding_equals_keras(causal, recwarn):
    model, _, _ = embedded_twins(causal)
    theirs, ours, theirs_pooled, ours_pooled = (ops.convert_to_numpy(y) for y in model(TOKENS))
    assert not [w for w in recwarn if "does not support masking" in str(w.message)]
    np.testing.assert_allclose(ours[REAL], theirs[REAL], atol=ATOL)  # on the real tokens
    # the query's mask reached the next layer: the masked means agree too
    np.testing.assert_allclose(ours_pooled, theirs_pooled, atol=ATOL)
    # a padded query has nothing to attend to: our convention gives the output bias only
    bias = ops.convert_to_numpy(_ours_of(model).b_o)
    np.testing.assert_allclose(ours[~REAL], np.broadcast_to(bias, ours[~REAL].shape), atol=1e-6)


def _ours_of(model):
    return next(layer for layer in model.layers if isinstance(layer, layers.MultiHeadAttention))


def test_implicit_mask_equals_explicit_masks_and_attention_mask():
    _, theirs, ours = embedded_twins(False)
    x = ops.convert_to_numpy(keras.layers.Embedding(10, 8)(TOKENS))  # plain tensor: no mask
    mask = REAL[:, None, :] & REAL[:, :, None]  # (B, T, S): real query and real key
    by_attention_mask = ops.convert_to_numpy(ours(x, x, attention_mask=mask))
    by_value_and_key = ops.convert_to_numpy(ours(x, x, value_mask=REAL, key_mask=REAL))
    by_query_and_value = ops.convert_to_numpy(ours(x, x, query_mask=REAL, value_mask=REAL))
    keras_out = ops.convert_to_numpy(theirs(x, x, value_mask=REAL, key_mask=REAL))
    np.testing.assert_allclose(by_value_and_key[REAL], by_attention_mask[REAL], atol=1e-6)
    np.testing.assert_allclose(by_query_and_value, by_attention_mask, atol=1e-6)
    np.testing.assert_allclose(by_value_and_key[REAL], keras_out[REAL], atol=ATOL)


def test_weights_file_of_a_keras_model_loads_into_ours(tmp_path):
    q, v = data()

    def model_with(attention):
        inputs, context = keras.Input((5, 16)), keras.Input((7, 12))
        return keras.Model([inputs, context], attention(2, 4)(inputs, context))

    theirs = model_with(keras.layers.MultiHeadAttention)
    ours = model_with(layers.MultiHeadAttention)
    path = tmp_path / "keras_mha.weights.h5"
    theirs.save_weights(path)
    ours.load_weights(path)
    np.testing.assert_allclose(ours([q, v]), theirs([q, v]), atol=ATOL)
    names = [w.path.split("/", 1)[1] for w in _ours_of(ours).weights]
    assert names == [w.path.split("/", 1)[1] for w in theirs.layers[-1].weights]
    assert names[:2] == ["query/kernel", "query/bias"]


def test_same_seed_same_initial_weights_and_dropout_as_keras():
    q, v = data()
    keras.utils.set_random_seed(11)
    theirs = keras.layers.MultiHeadAttention(4, 8, dropout=0.3, seed=7)
    theirs(q, v)
    keras.utils.set_random_seed(11)
    ours = layers.MultiHeadAttention(4, 8, dropout=0.3, seed=7)
    ours(q, v)
    for a, b in zip(theirs.get_weights(), ours.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    w_k, w_v = ops.convert_to_numpy(ours.w_k), ops.convert_to_numpy(ours.w_v)
    assert not np.allclose(w_k, w_v)  # each projection starts from its own draw
    out_t, scores_t = theirs(q, v, training=True, return_attention_scores=True)
    out_o, scores_o = ours(q, v, training=True, return_attention_scores=True)
    np.testing.assert_allclose(out_o, out_t, atol=ATOL)  # the same dropout mask
    np.testing.assert_allclose(scores_o, scores_t, atol=ATOL)


@pytest.mark.parametrize(
    ("config", "q_shape", "v_shape", "call"),
    [
        ({"sliding_window": 2}, (2, 6, 16), (2, 6, 16), {"use_causal_mask": True}),
        ({"sliding_window": 3}, (2, 6, 16), (2, 6, 16), {}),
        ({"use_gate": True, "value_dim": 3}, (2, 5, 16), (2, 7, 12), {}),
        ({"output_shape": (3, 2)}, (2, 5, 16), (2, 7, 12), {}),
        ({"attention_axes": (2,)}, (2, 3, 5, 16), (2, 3, 7, 12), {}),
        ({"attention_axes": (1, 2)}, (2, 3, 5, 16), (2, 2, 7, 12), {}),
        ({"attention_axes": 1}, (2, 4, 3, 16), (2, 4, 3, 12), {"use_causal_mask": True}),
    ],
    ids=[
        "sliding-causal",
        "sliding",
        "gate",
        "output_shape-tuple",
        "attention-axis-2",
        "attention-axes-1-2",
        "attention-axis-1-causal",
    ],
)
def test_rest_of_the_api_equals_keras(config, q_shape, v_shape, call):
    rng = np.random.default_rng(13)
    q = rng.normal(size=q_shape).astype("float32")
    v = rng.normal(size=v_shape).astype("float32")
    theirs, ours = twins(query=q, value=v, **config)
    out_t, scores_t = theirs(q, v, return_attention_scores=True, **call)
    out_o, scores_o = ours(q, v, return_attention_scores=True, **call)
    np.testing.assert_allclose(out_o, out_t, atol=ATOL)
    np.testing.assert_allclose(scores_o, scores_t, atol=ATOL)
    fast = ours(q, v, **call)
    np.testing.assert_allclose(fast, keras_fast_path(theirs, q, v, out_t, **call), atol=ATOL)
    assert ours.compute_output_shape(q_shape, v_shape) == tuple(out_t.shape)


def test_regularizers_and_constraints_as_keras():
    q, v = data()
    config = {
        "kernel_regularizer": "l2",
        "bias_regularizer": "l1",
        "activity_regularizer": "l2",
        "kernel_constraint": "non_neg",
    }
    theirs, ours = twins(query=q, value=v, **config)
    theirs(q, v)
    ours(q, v)
    assert len(ours.losses) == len(theirs.losses) == 4 + 4 + 4  # kernels, biases, activities
    np.testing.assert_allclose(sum(ours.losses), sum(theirs.losses), rtol=1e-5)
    assert isinstance(ours.key_dense.kernel.constraint, keras.constraints.NonNeg)


def test_symbolic_call_scores_have_the_key_length():
    query, value = keras.Input((5, 16)), keras.Input((7, 12))
    out, scores = layers.MultiHeadAttention(4, 8)(query, value, return_attention_scores=True)
    assert out.shape == (None, 5, 16) and scores.shape == (None, 4, 5, 7)


def test_flash_attention_is_accepted_and_changes_nothing():
    q, v = data()
    _, plain = twins(query=q, value=v)
    flash = layers.MultiHeadAttention(4, 8, flash_attention=True)
    flash(q, v)
    flash.set_weights(plain.get_weights())
    np.testing.assert_array_equal(flash(q, v), plain(q, v))
    assert flash.get_config() == flash.from_config(flash.get_config()).get_config()
    with pytest.raises(ValueError, match=r"Returning attention scores is not supported when"):
        flash(q, v, return_attention_scores=True)


@pytest.mark.parametrize(
    ("shapes", "match"),
    [
        (((2, 4, 8), (2, 2, 8), (2, 3, 8)), r"All dimensions of `value` and `key`, except the"),
        (((2, 4, 8), (2, 1, 2, 8), None), r"`query` and `value` must have the same rank"),
        (((2, 8), (2, 8), None), r"`query` must have rank >= 3"),
    ],
    ids=["key-value-positions", "ranks", "rank-2"],
)
def test_layer_shape_errors(shapes, match):
    layer = layers.MultiHeadAttention(2, 4)
    with pytest.raises(ValueError, match=match):
        layer.compute_output_shape(*shapes)
    with pytest.raises(ValueError, match=match):
        layer(*(None if s is None else np.ones(s, "float32") for s in shapes))


def test_attention_axes_out_of_range():
    layer = layers.MultiHeadAttention(2, 4, attention_axes=3)
    with pytest.raises(ValueError, match=r"`attention_axes` must be distinct axes in 1..1"):
        layer(np.ones((2, 5, 8), "float32"), np.ones((2, 5, 8), "float32"))
