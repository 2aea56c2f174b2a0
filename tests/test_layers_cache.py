"""Tests of incremental decoding with a key/value cache in `selfattention.layers`:
`MultiHeadAttention(..., cache=, cache_update_index=)` and the cached step of
`TransformerDecoderBlock`. At every step `t` of a decode, the cached output equals the full
recomputation of the first `t + 1` positions (1e-5 absolute, float32), with each position
encoding, and the cache is checked with clear errors.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from keras import ops  # noqa: E402

from selfattention import layers  # noqa: E402

ATOL = 1e-5
B, L, D, H = 2, 9, 16, 4  # batch, positions decoded, model width, heads


@pytest.fixture
def tf():
    """TensorFlow, for the test under tf.function (skipped on other backends)."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("uses TensorFlow itself (tf.function)")
    import tensorflow

    return tensorflow


def sequence(length=L, seed=0):
    return np.random.default_rng(seed).normal(size=(B, length, D)).astype("float32")


def attention(position_encoding=None, **kwargs):
    keras.utils.set_random_seed(0)
    layer = layers.MultiHeadAttention(H, D // H, position_encoding=position_encoding, **kwargs)
    layer(sequence(2), sequence(2))  # build
    rng = np.random.default_rng(1)  # non-zero biases too; outputs of order 1
    layer.set_weights(
        [0.3 * rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()]
    )
    return layer


def max_diff(a, b):
    return float(np.abs(ops.convert_to_numpy(a) - ops.convert_to_numpy(b)).max())


def one_step(layer, x, t, cache):
    """Decode position `t` of `x` alone, with the cache of positions `0..t-1`."""
    return layer(
        x[:, t : t + 1], x[:, t : t + 1], use_causal_mask=True, cache=cache, cache_update_index=t
    )


# ---------------------------------------------------------------- the attention layer
@pytest.mark.parametrize("position_encoding", [None, "rope", "alibi"])
@pytest.mark.parametrize("chunk_size", [None, 4])
def test_each_step_equals_full_recomputation(position_encoding, chunk_size):
    layer = attention(position_encoding, chunk_size=chunk_size)
    x = sequence()
    cache = layer.init_cache(B, L)
    assert tuple(cache.shape) == (B, 2, H, L, D // H)
    for t in range(L):
        step, cache = one_step(layer, x, t, cache)
        full = layer(x[:, : t + 1], x[:, : t + 1], use_causal_mask=True)  # (B, t + 1, D)
        assert max_diff(step[:, 0], full[:, t]) <= ATOL, t


@pytest.mark.parametrize("position_encoding", [None, "rope", "alibi"])
def test_prefill_then_steps(position_encoding):
    """A prompt of 4 positions written at once, then one position at a time; the weights
    returned with the cache are those of full recomputation, 0 on the slots not yet written."""
    layer = attention(position_encoding)
    x = sequence()
    cache = layer.init_cache(B, L)
    out, weights, cache = layer(
        x[:, :4],
        x[:, :4],
        use_causal_mask=True,
        cache=cache,
        cache_update_index=0,
        return_attention_scores=True,
    )
    full, full_weights = layer(
        x[:, :4], x[:, :4], use_causal_mask=True, return_attention_scores=True
    )
    assert max_diff(out, full) <= ATOL
    assert max_diff(weights[..., :4], full_weights) <= ATOL
    assert max_diff(weights[..., 4:], np.zeros((B, H, 4, L - 4))) == 0
    for t in range(4, L):
        step, cache = one_step(layer, x, t, cache)
        full = layer(x[:, : t + 1], x[:, : t + 1], use_causal_mask=True)
        assert max_diff(step[:, 0], full[:, t]) <= ATOL


def test_unwritten_slots_are_never_attended_without_a_causal_mask():
    """Without `use_causal_mask`, a new query sees every position written so far (itself
    included) and nothing after: the same as full attention over those positions."""
    layer = attention()
    x = sequence()
    cache = layer.init_cache(B, L) + 100.0  # garbage in the slots: must be ignored
    _, cache = layer(x[:, :3], x[:, :3], cache=cache, cache_update_index=0)
    step, cache = layer(x[:, 3:5], x[:, 3:5], cache=cache, cache_update_index=3)
    full = layer(x[:, 3:5], x[:, :5])  # queries 3, 4 against keys 0..4
    assert max_diff(step, full) <= ATOL


def test_the_cache_works_inside_tf_function(tf):
    layer = attention("rope")
    x = sequence()

    @tf.function
    def step(x_t, cache, t):
        return layer(x_t, x_t, use_causal_mask=True, cache=cache, cache_update_index=t)

    cache = layer.init_cache(B, L)
    for t in range(L):
        out, cache = step(x[:, t : t + 1], cache, tf.constant(t))
    full = layer(x, x, use_causal_mask=True)
    assert max_diff(out[:, 0], full[:, -1]) <= ATOL


def test_fixed_cache_for_cross_attention():
    layer = attention()
    query, context = sequence(3, seed=2), sequence(7, seed=3)
    cache = layer.compute_cache(context)
    assert tuple(cache.shape) == (B, 2, H, 7, D // H)
    out, weights, same = layer(query, context, cache=cache, return_attention_scores=True)
    full, full_weights = layer(query, context, return_attention_scores=True)
    assert max_diff(out, full) <= ATOL and max_diff(weights, full_weights) <= ATOL
    assert same is cache


# ---------------------------------------------------------------- the decoder block
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_block_step_equals_full_recomputation(norm_first):
    keras.utils.set_random_seed(0)
    block = layers.TransformerDecoderBlock(D, H, 32, norm_first=norm_first)
    x, context = sequence(), sequence(6, seed=4)
    context_mask = np.ones((B, 1, 6), bool)
    context_mask[1, :, 4:] = False  # the second example's input is 4 long (padding after)
    block(x, context, context_mask=context_mask)  # build
    cache = block.init_cache(context, L)
    for t in range(L):
        step, weights, cache = block(
            x[:, t : t + 1],
            context,
            context_mask=context_mask,
            cache=cache,
            cache_update_index=t,
            return_attention_scores=True,
        )
        full, full_weights = block(
            x[:, : t + 1], context, context_mask=context_mask, return_attention_scores=True
        )
        assert max_diff(step[:, 0], full[:, t]) <= ATOL, t
        assert max_diff(weights[:, :, 0], full_weights[:, :, t]) <= ATOL, t


def test_decoder_block_cross_cache_is_computed_once():
    """The cross-attention keys and values come from the cache: a changed `context` at a
    step does not change the output (the cache was computed from the original)."""
    keras.utils.set_random_seed(0)
    block = layers.TransformerDecoderBlock(D, H, 32)
    x, context = sequence(), sequence(6, seed=4)
    block(x, context)
    cache = block.init_cache(context, L)
    out, new_cache = block(x[:, :1], context * 0.0, cache=cache, cache_update_index=0)
    assert new_cache[1] is cache[1]
    assert max_diff(out[:, 0], block(x[:, :1], context)[:, 0]) <= ATOL


# ---------------------------------------------------------------- errors
def test_cache_shape_errors():
    layer = attention()
    x = sequence(1)
    for bad in (np.zeros((B, 2, H, L)), np.zeros((B, 3, H, L, 4)), np.zeros((B, 2, H + 1, L, 4))):
        with pytest.raises(ValueError, match=r"`cache` must have shape \(B, 2, h, S_max, d_k\)"):
            layer(x, x, cache=bad.astype("float32"), cache_update_index=0)
    with pytest.raises(ValueError, match=r"`cache` must have shape .*Received: cache.shape"):
        layer(x, x, cache=np.zeros((B + 1, 2, H, L, 4), "float32"), cache_update_index=0)


@pytest.mark.parametrize("index", [-1, L, L + 3])
def test_cache_index_out_of_range(index):
    layer = attention()
    x = sequence(1)
    with pytest.raises(
        ValueError, match=rf"`cache_update_index` must be in \[0, S_max - T\] = \[0, {L - 1}\]"
    ):
        layer(x, x, cache=layer.init_cache(B, L), cache_update_index=index)
    two = sequence(2)  # two new positions: at most L - 2
    with pytest.raises(ValueError, match=rf"= \[0, {L - 2}\] .*Received: cache_update_index="):
        layer(two, two, cache=layer.init_cache(B, L), cache_update_index=L - 1)


def test_other_cache_errors():
    layer = attention()
    x = sequence(1)
    cache = layer.init_cache(B, L)
    with pytest.raises(ValueError, match=r"`cache_update_index` must be an integer"):
        layer(x, x, cache=cache, cache_update_index=1.0)
    with pytest.raises(ValueError, match=r"`cache_update_index` needs a `cache`"):
        layer(x, x, cache_update_index=0)
    with pytest.raises(ValueError, match=r"`value_mask` and `key_mask` .*not supported"):
        layer(x, x, cache=cache, cache_update_index=0, value_mask=np.ones((B, 1), bool))
    with pytest.raises(ValueError, match=r"needs `value_dim == key_dim`.*value_dim=6"):
        layers.MultiHeadAttention(2, 4, value_dim=6).init_cache(B, L)
    with pytest.raises(ValueError, match=r"`max_length` must be a positive integer"):
        layer.init_cache(B, 0)
    with pytest.raises(ValueError, match=r"needs a built layer"):
        layers.MultiHeadAttention(2, 4).compute_cache(x)
    rope = attention("rope")
    with pytest.raises(ValueError, match=r"fixed cache .*position_encoding='rope'"):
        rope(x, x, cache=rope.init_cache(B, L))
    with pytest.raises(ValueError, match=r"A cache needs inputs \(B, T, d_model\)"):
        y = np.zeros((B, 3, 1, D), "float32")
        layers.MultiHeadAttention(H, 4, attention_axes=1)(y, y, cache=cache, cache_update_index=0)


def test_decoder_block_cache_errors():
    block = layers.TransformerDecoderBlock(D, H, 32)
    x, context = sequence(1), sequence(6)
    with pytest.raises(ValueError, match=r"needs a built block"):
        block.init_cache(context, L)
    block(x, context)
    cache = block.init_cache(context, L)
    with pytest.raises(ValueError, match=r"`cache` and `cache_update_index` go together"):
        block(x, context, cache=cache)
    with pytest.raises(ValueError, match=r"the pair \(self_cache, cross_cache\)"):
        block(x, context, cache=cache[0], cache_update_index=0)


# ---------------------------------------------------------------- positions of new tokens
def test_positional_embedding_start():
    """`start=t` embeds tokens at positions t.., as the full sequence's rows t.. are."""
    embed = layers.PositionalEmbedding(20, D, max_length=L)
    tokens = np.random.default_rng(0).integers(0, 20, size=(B, L))
    full = embed(tokens)
    for t in range(L):
        assert max_diff(embed(tokens[:, t : t + 1], start=t), full[:, t : t + 1]) == 0
    assert max_diff(embed(tokens[:, 3:6], start=3), full[:, 3:6]) == 0
    with pytest.raises(ValueError, match=r"`start` must be an integer in \[0, max_length - T\]"):
        embed(tokens[:, :2], start=L - 1)
    with pytest.raises(ValueError, match=r"Received: start=1.0"):
        embed(tokens[:, :1], start=1.0)
