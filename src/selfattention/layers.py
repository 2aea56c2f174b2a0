"""Attention as Keras 3 layers (TensorFlow backend): the same math as :mod:`selfattention.core`.

Shape legend: ``B`` batch, ``T`` query length, ``S`` key/value length, ``h`` heads,
``d_k`` key depth, ``d_v`` value depth, ``d_model`` model width.

The conventions are those of the NumPy module: boolean masks with True = may attend, the masked
fill value taken from the dtype, and a query row with nothing to attend to gets weights 0 and
output 0, with or without dropout and whether or not the scores are returned.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from .core import positional_encoding

__all__ = [
    "MultiHeadAttention",
    "PositionalEmbedding",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
    "chunked_attention",
    "scaled_dot_product_attention",
]


def _check_positive_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


def _check_dropout(rate) -> None:
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
        raise ValueError(f"`dropout` must be a number in [0, 1). Received: dropout={rate!r}")


def _as_float_tensor(x, name: str) -> tf.Tensor:
    x = tf.convert_to_tensor(x) if not isinstance(x, np.ndarray) else tf.constant(x)
    if not (x.dtype.is_floating or x.dtype.is_integer):
        raise TypeError(f"`{name}` must be a real numeric tensor. Received: dtype={x.dtype.name}")
    if x.dtype.is_integer:
        x = tf.cast(x, tf.float64)
    if x.shape.rank is not None and x.shape.rank < 2:
        raise ValueError(
            f"`{name}` must have rank >= 2 (shape (..., length, depth)). "
            f"Received: {name}.shape={tuple(x.shape)}"
        )
    return x


def _as_bool_mask(mask, scores_shape: tf.TensorShape) -> tf.Tensor:
    mask = tf.convert_to_tensor(mask)
    if mask.dtype != tf.bool:
        if not (mask.dtype.is_integer or mask.dtype.is_floating):
            raise ValueError(f"`mask` must be boolean or hold only 0 and 1. Received: {mask.dtype}")
        zero_or_one = tf.reduce_all((mask == 0) | (mask == 1))
        if tf.executing_eagerly() and not bool(zero_or_one):
            raise ValueError(
                "`mask` must be boolean (True = may attend) or hold only 0 and 1. "
                f"Received: values={np.unique(mask.numpy())[:5]}"
            )
        mask = mask != 0
    try:
        broadcast = tf.broadcast_static_shape(mask.shape, scores_shape)
        ok = broadcast.rank is None or broadcast.rank == scores_shape.rank
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"`mask` must broadcast to the scores' shape (..., T, S) = {tuple(scores_shape)}. "
            f"Received: mask.shape={tuple(mask.shape)}"
        )
    return mask


def _check_attention_inputs(query, key, value, scale):
    """Checked tensors in the dtype the softmax runs in, the scale and the result dtype."""
    query = _as_float_tensor(query, "query")
    key = _as_float_tensor(key, "key")
    value = _as_float_tensor(value, "value")
    d_k = query.shape[-1]
    if key.shape[-1] != d_k:
        raise ValueError(
            f"`key` must have the same last dimension as `query` (d_k), expected {d_k}. "
            f"Received: query.shape={tuple(query.shape)}, key.shape={tuple(key.shape)}"
        )
    if value.shape[-2] is not None and value.shape[-2] != key.shape[-2]:
        raise ValueError(
            f"`value` must have as many positions as `key` (S), expected {key.shape[-2]}. "
            f"Received: key.shape={tuple(key.shape)}, value.shape={tuple(value.shape)}"
        )
    if scale is None:
        scale = 1.0 / math.sqrt(d_k)
    elif isinstance(scale, bool) or not isinstance(scale, int | float) or scale <= 0:
        raise ValueError(f"`scale` must be a positive number. Received: scale={scale!r}")
    dtype = query.dtype
    work = tf.float32 if dtype in (tf.float16, tf.bfloat16) else dtype
    q, k, v = (tf.cast(x, work) for x in (query, key, value))
    return q, k, v, scale, dtype


def _scores_shape(q, k) -> tf.TensorShape:
    """The static shape `(..., T, S)` of `q @ k^T`."""
    batch = tf.broadcast_static_shape(q.shape[:-2], k.shape[:-2])
    return batch.concatenate([q.shape[-2], k.shape[-2]])


def scaled_dot_product_attention(
    query, key, value, mask=None, scale=None, dropout=0.0, training=False, seed=None
):
    r"""softmax(Q K^T / sqrt(d_k)) V on tensors; the contract of
    :func:`selfattention.scaled_dot_product_attention`.

    Args:
        query: `(..., T, d_k)`; key: `(..., S, d_k)`; value: `(..., S, d_v)`.
        mask: optional boolean, broadcastable to `(..., T, S)`; True = may attend.
        scale: positive number; default `1 / sqrt(d_k)`.
        dropout: rate applied to the weights when `training` is True.
        seed: optional `keras.random.SeedGenerator` for the dropout.

    Returns:
        `(output, weights)`: `(..., T, d_v)` and `(..., T, S)`. A fully masked row gives 0s.
    """
    q, k, v, scale, dtype = _check_attention_inputs(query, key, value, scale)
    if mask is not None:
        mask = _as_bool_mask(mask, _scores_shape(q, k))
    scores = tf.matmul(q * scale, k, transpose_b=True)  # (..., T, S)
    if mask is not None:
        scores = tf.where(mask, scores, scores.dtype.min)
    weights = tf.nn.softmax(scores)  # (..., T, S), one fused kernel: max, exp, sum, divide
    dropped = weights
    if training and dropout > 0:
        dropped = keras.random.dropout(weights, rate=dropout, seed=seed)
    output = tf.matmul(dropped, v)  # (..., T, d_v)
    if mask is not None:  # softmax gives a fully masked row uniform weights: set them to 0
        attends = tf.cast(tf.reduce_any(mask, axis=-1, keepdims=True), weights.dtype)  # (..., T, 1)
        weights, output = weights * attends, output * attends
    return tf.cast(output, dtype), tf.cast(weights, dtype)


def chunked_attention(
    query, key, value, mask=None, scale=None, chunk_size=512, use_causal_mask=False
):
    r"""Exact attention over blocks of `chunk_size` keys with the online softmax, on tensors:
    the contract of :func:`selfattention.chunked_attention`. Only a `(..., T, chunk_size)`
    block of scores exists at a time (a `tf.while_loop`, one block after the other).

    Args:
        query: `(..., T, d_k)`; key: `(..., S, d_k)`; value: `(..., S, d_v)`.
        mask: optional boolean, broadcastable to `(..., T, S)`; True = may attend.
        scale: positive number; default `1 / sqrt(d_k)`.
        chunk_size: number of keys per block; positive, need not divide `S`.
        use_causal_mask: also forbid key `j > t` for query `t`, built block by block.

    Returns:
        `output` `(..., T, d_v)`; 0 in a row that may attend to nothing.
    """
    q, k, v, scale, dtype = _check_attention_inputs(query, key, value, scale)
    _check_positive_int(chunk_size, "chunk_size")
    if mask is not None:
        mask = _as_bool_mask(mask, _scores_shape(q, k))
    return tf.cast(_chunked(q * scale, k, v, mask, use_causal_mask, chunk_size), dtype)


def _chunked(q, k, v, mask, causal, chunk_size):
    """The online softmax of `selfattention.chunked_attention`, with `q` already scaled."""
    T, S = tf.shape(q)[-2], tf.shape(k)[-2]
    batch = tf.broadcast_dynamic_shape(tf.shape(q)[:-2], tf.shape(k)[:-2])
    batch = tf.broadcast_dynamic_shape(batch, tf.shape(v)[:-2])
    fill = q.dtype.min

    def step(start, m, total, acc):
        k_c = k[..., start : start + chunk_size, :]  # (..., c, d_k)
        v_c = v[..., start : start + chunk_size, :]  # (..., c, d_v)
        scores = tf.matmul(q, k_c, transpose_b=True)  # (..., T, c)
        keep = _block_mask(mask, causal, start, tf.shape(k_c)[-2], T)
        if keep is not None:
            scores = tf.where(keep, scores, fill)
        m_new = tf.maximum(m, tf.reduce_max(scores, axis=-1, keepdims=True))  # (..., T, 1)
        correction = tf.exp(m - m_new)  # rescales what was accumulated under the old max
        p = tf.exp(scores - m_new)  # (..., T, c)
        total = total * correction + tf.reduce_sum(p, axis=-1, keepdims=True)
        acc = acc * correction + tf.matmul(p, v_c)  # (..., T, d_v)
        return start + chunk_size, m_new, total, acc

    m = tf.fill(tf.concat([batch, [T, 1]], 0), tf.constant(-np.inf, q.dtype))  # running max
    total = tf.zeros_like(m)  # running sum of exp(score - m)
    acc = tf.zeros(tf.concat([batch, [T, tf.shape(v)[-1]]], 0), q.dtype)  # sum of exp(...) V
    _, m, total, acc = tf.while_loop(
        lambda start, *_: start < S, step, (tf.constant(0), m, total, acc), parallel_iterations=1
    )
    attends = m > fill  # the running max is still the fill value only if no key was allowed
    return tf.where(attends, acc / total, tf.zeros_like(acc))  # (..., T, d_v)


def _block_mask(mask, causal, start, width, T):
    """The mask of keys `start .. start + width` (None if nothing is masked)."""
    keep = None
    if mask is not None:
        keep = mask if mask.shape[-1] == 1 else mask[..., start : start + width]
    if causal:
        allowed = tf.range(T)[:, None] >= start + tf.range(width)[None, :]  # (T, c)
        keep = allowed if keep is None else tf.logical_and(keep, allowed)
    return keep


@keras.saving.register_keras_serializable(package="selfattention")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention written from scratch, a drop-in for `keras.layers.MultiHeadAttention`.

    Same constructor and call arguments for the core case, same weight shapes and the same
    `get_weights()` order (query kernel, query bias, key kernel, key bias, value kernel,
    value bias, output kernel, output bias), so ``ours.set_weights(theirs.get_weights())``
    reproduces Keras's outputs. Unlike Keras, a fully masked query row always gives weights 0
    (Keras gives uniform weights on its fast path and zeros on its explicit path).

    With `chunk_size` set, a call that returns no scores and applies no dropout runs
    :func:`chunked_attention` instead: the same output (to float rounding) from one
    `(B, h, T, chunk_size)` block of scores at a time instead of the full `(B, h, T, S)`.
    That saves memory at inference; under a `tf.GradientTape` TensorFlow keeps every block
    for the backward pass, so training memory is not reduced.

    Args:
        num_heads: number of heads `h`.
        key_dim: depth `d_k` of each query/key head.
        value_dim: depth `d_v` of each value head; defaults to `key_dim`.
        dropout: dropout rate on the attention weights, in [0, 1).
        use_bias: whether the four projections have biases.
        output_shape: last dimension of the output; defaults to the query's `d_model`.
        kernel_initializer, bias_initializer: as in Keras.
        chunk_size: optional positive int, keys per block for the memory-saving path.

    Call arguments:
        query: `(B, T, d_model)`. value: `(B, S, d_model_v)`. key: `(B, S, d_model_k)`,
        defaults to `value`. attention_mask: boolean `(B, T, S)` or `(T, S)`, True = may attend.
        return_attention_scores: also return the weights `(B, h, T, S)`.
        training: apply dropout. use_causal_mask: also forbid attending to later positions.
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_shape=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        seed=None,
        chunk_size=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_positive_int(num_heads, "num_heads")
        _check_positive_int(key_dim, "key_dim")
        if value_dim is not None:
            _check_positive_int(value_dim, "value_dim")
        _check_dropout(dropout)
        if isinstance(output_shape, list | tuple):
            if len(output_shape) != 1:
                raise ValueError(
                    "`output_shape` must be an int or a 1-tuple. "
                    f"Received: output_shape={output_shape!r}"
                )
            output_shape = output_shape[0]
        if output_shape is not None:
            _check_positive_int(output_shape, "output_shape")
        if chunk_size is not None:
            _check_positive_int(chunk_size, "chunk_size")
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim or key_dim
        self.dropout = dropout
        self.use_bias = use_bias
        self._output_dim = output_shape
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.chunk_size = chunk_size

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        h = self.num_heads
        d_out = self._output_dim or query_shape[-1]

        def projection(name, d_in, *shape):
            kernel = self.add_weight(
                name=f"{name}_kernel", shape=(d_in, *shape), initializer=self.kernel_initializer
            )
            bias = None
            if self.use_bias:
                bias = self.add_weight(
                    name=f"{name}_bias",
                    shape=shape[-2:] if name != "output" else shape[-1:],
                    initializer=self.bias_initializer,
                )
            return kernel, bias

        self.w_q, self.b_q = projection("query", query_shape[-1], h, self.key_dim)
        self.w_k, self.b_k = projection("key", key_shape[-1], h, self.key_dim)
        self.w_v, self.b_v = projection("value", value_shape[-1], h, self.value_dim)
        self.w_o, self.b_o = projection("output", h, self.value_dim, d_out)

    def _project(self, x, kernel, bias):  # (B, L, d_model) -> (B, h, L, d)
        y = tf.einsum("bld,dhk->bhlk", x, kernel)
        return y if bias is None else y + bias[:, None, :]

    def call(
        self,
        query,
        value,
        key=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
    ):
        key = value if key is None else key
        q = self._project(query, self.w_q, self.b_q)  # (B, h, T, d_k)
        k = self._project(key, self.w_k, self.b_k)  # (B, h, S, d_k)
        v = self._project(value, self.w_v, self.b_v)  # (B, h, S, d_v)

        mask = None
        if attention_mask is not None:
            mask = tf.convert_to_tensor(attention_mask)
            if mask.dtype != tf.bool:
                mask = mask != 0
            if mask.shape.rank == 3:
                mask = mask[:, None, :, :]  # (B, 1, T, S): the same mask for every head
        dropout = self.dropout if training else 0.0
        if self.chunk_size and not return_attention_scores and not dropout:
            heads = chunked_attention(
                q, k, v, mask=mask, chunk_size=self.chunk_size, use_causal_mask=use_causal_mask
            )  # (B, h, T, d_v)
        else:
            if use_causal_mask:
                T, S = tf.shape(q)[-2], tf.shape(k)[-2]
                causal = tf.linalg.band_part(tf.ones((T, S), tf.bool), -1, 0)  # (T, S)
                mask = causal if mask is None else tf.logical_and(mask, causal)
            heads, weights = scaled_dot_product_attention(
                q, k, v, mask=mask, dropout=dropout, training=training, seed=self.seed_generator
            )  # (B, h, T, d_v), (B, h, T, S)
        output = tf.einsum("bhtv,hvo->bto", heads, self.w_o)  # (B, T, d_out)
        if self.b_o is not None:
            output += self.b_o
        return (output, weights) if return_attention_scores else output

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        return (*query_shape[:-1], self._output_dim or query_shape[-1])

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "output_shape": self._output_dim,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "seed": self.seed,
            "chunk_size": self.chunk_size,
        }


@keras.saving.register_keras_serializable(package="selfattention")
class PositionalEmbedding(keras.layers.Layer):
    """Token embedding times `sqrt(d_model)` plus the sinusoidal encoding (Vaswani et al., 3.4-3.5).

    Call: integer tokens `(B, T)` -> `(B, T, d_model)`, with `T <= max_length`.
    """

    def __init__(self, vocab_size, d_model, max_length=2048, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("vocab_size", vocab_size), ("d_model", d_model)):
            _check_positive_int(value, name)
        _check_positive_int(max_length, "max_length")
        self.vocab_size, self.d_model, self.max_length = vocab_size, d_model, max_length
        self.embedding = keras.layers.Embedding(vocab_size, d_model)
        self.encoding = tf.constant(positional_encoding(max_length, d_model))  # (max_length, d)

    def call(self, tokens):
        length = tf.shape(tokens)[-1]
        x = self.embedding(tokens) * math.sqrt(self.d_model)  # (B, T, d_model)
        return x + tf.cast(self.encoding[:length], x.dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "d_model": self.d_model,
            "max_length": self.max_length,
        }


class _Block(keras.layers.Layer):
    """What both Transformer blocks share: sizes, checks, the feed-forward net and residuals."""

    def __init__(self, d_model, num_heads, d_ff, dropout=0.0, norm_first=False, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("d_model", d_model), ("num_heads", num_heads), ("d_ff", d_ff)):
            _check_positive_int(value, name)
        if d_model % num_heads:
            raise ValueError(
                "`d_model` must be divisible by `num_heads`. "
                f"Received: d_model={d_model}, num_heads={num_heads}"
            )
        _check_dropout(dropout)
        self.d_model, self.num_heads, self.d_ff = d_model, num_heads, d_ff
        self.dropout, self.norm_first = dropout, norm_first
        self.ffn = keras.Sequential(
            [keras.layers.Dense(d_ff, activation="relu"), keras.layers.Dense(d_model)]
        )
        self.drop = keras.layers.Dropout(dropout)

    def _attention(self):
        return MultiHeadAttention(
            self.num_heads, self.d_model // self.num_heads, dropout=self.dropout
        )

    def _residual(self, x, norm, sublayer, training):
        """Post-norm (the paper): norm(x + f(x)). Pre-norm (`norm_first`): x + f(norm(x))."""
        if self.norm_first:
            return x + self.drop(sublayer(norm(x)), training=training)
        return norm(x + self.drop(sublayer(x), training=training))

    def get_config(self):
        return {
            **super().get_config(),
            "d_model": self.d_model,
            "num_heads": self.num_heads,
            "d_ff": self.d_ff,
            "dropout": self.dropout,
            "norm_first": self.norm_first,
        }


@keras.saving.register_keras_serializable(package="selfattention")
class TransformerEncoderBlock(_Block):
    """Self-attention and a feed-forward net, each wrapped in a residual and a LayerNorm.

    `norm_first=False` is the post-norm block of Vaswani et al. (2017); `norm_first=True` is the
    pre-norm variant (Xiong et al., 2020). Call: `x` `(B, T, d_model)`, optional
    `attention_mask` `(B, T, T)`, `use_causal_mask` -> `(B, T, d_model)`.
    """

    def __init__(self, d_model, num_heads, d_ff, dropout=0.0, norm_first=False, **kwargs):
        super().__init__(d_model, num_heads, d_ff, dropout, norm_first, **kwargs)
        self.attention = self._attention()
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-6)

    def call(self, x, attention_mask=None, training=None, use_causal_mask=False):
        def attend(y):
            return self.attention(
                y,
                y,
                attention_mask=attention_mask,
                training=training,
                use_causal_mask=use_causal_mask,
            )

        x = self._residual(x, self.norm1, attend, training)
        return self._residual(x, self.norm2, self.ffn, training)


@keras.saving.register_keras_serializable(package="selfattention")
class TransformerDecoderBlock(_Block):
    """Causal self-attention, cross-attention to the encoder's output, then a feed-forward net.

    Call: `x` `(B, T, d_model)`, `context` `(B, S, d_model)`, optional `self_mask` `(B, T, T)`
    and `context_mask` `(B, T, S)`. With `return_attention_scores=True` it also returns the
    cross-attention weights `(B, h, T, S)`, the alignment between output and input.
    """

    def __init__(self, d_model, num_heads, d_ff, dropout=0.0, norm_first=False, **kwargs):
        super().__init__(d_model, num_heads, d_ff, dropout, norm_first, **kwargs)
        self.self_attention = self._attention()
        self.cross_attention = self._attention()
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.norm3 = keras.layers.LayerNormalization(epsilon=1e-6)

    def call(
        self,
        x,
        context,
        self_mask=None,
        context_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        scores = []

        def attend_self(y):
            return self.self_attention(
                y, y, attention_mask=self_mask, training=training, use_causal_mask=True
            )

        def attend_context(y):
            out, weights = self.cross_attention(
                y,
                context,
                attention_mask=context_mask,
                training=training,
                return_attention_scores=True,
            )
            scores.append(weights)
            return out

        x = self._residual(x, self.norm1, attend_self, training)
        x = self._residual(x, self.norm2, attend_context, training)
        x = self._residual(x, self.norm3, self.ffn, training)
        return (x, scores[0]) if return_attention_scores else x
