"""Attention as Keras 3 layers, written in `keras.ops`: the math of :mod:`selfattention.reference`.

Every tensor operation is a `keras.ops` call, so the layers run on the Keras backends those ops
cover; the tests run them on TensorFlow (the book's backend) and on JAX.

Shape legend: ``B`` batch, ``T`` query length, ``S`` key/value length, ``h`` heads,
``d_k`` key depth, ``d_v`` value depth, ``d_model`` model width.

The conventions are those of the NumPy module: boolean masks with True = may attend, the masked
fill value taken from the dtype, and a query row with nothing to attend to gets weights 0 and
output 0, with or without dropout and whether or not the scores are returned.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import keras
import numpy as np
from keras import ops

from .reference import alibi_slopes, positional_encoding

__all__ = [  # in the order of the source, which the book's API reference follows
    "scaled_dot_product_attention",
    "chunked_attention",
    "MultiHeadAttention",
    "PositionalEmbedding",
    "TransformerEncoderBlock",
    "TransformerDecoderBlock",
]

#: A backend tensor (``tf.Tensor``, ``jax.Array``), a symbolic ``keras.KerasTensor``, or
#: anything `keras.ops` accepts (NumPy arrays, nested lists, Python numbers). Keras 3 ships no
#: type information, so this is `Any` to a type checker; the name says what is expected.
Tensor: TypeAlias = Any
#: A static shape: ints, `None` for a dimension unknown until the call.
Shape: TypeAlias = Sequence[int | None]
#: What `keras.initializers.get` accepts: a name, a config dict, an instance or a callable.
InitializerLike: TypeAlias = (
    str | dict[str, Any] | keras.initializers.Initializer | Callable[..., Any]
)
#: What `keras.regularizers.get` accepts, or None for no regularizer.
RegularizerLike: TypeAlias = (
    str | dict[str, Any] | keras.regularizers.Regularizer | Callable[..., Any] | None
)
#: What `keras.constraints.get` accepts, or None for no constraint.
ConstraintLike: TypeAlias = (
    str | dict[str, Any] | keras.constraints.Constraint | Callable[..., Any] | None
)
#: A seed for dropout: an int, a `keras.random.SeedGenerator`, or None for a fresh one.
SeedLike: TypeAlias = int | keras.random.SeedGenerator | None


# ---------------------------------------------------------------- input checks
def _check_positive_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(
            f"The argument `{name}` must be a positive integer. Received: {name}={value!r}"
        )


def _check_dropout(rate: object) -> None:
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
        raise ValueError(f"`dropout` must be a number in [0, 1). Received: dropout={rate!r}")


def _dtype(x: Tensor) -> str:
    return keras.backend.standardize_dtype(x.dtype)


def _shape(x: Tensor) -> tuple[Any, ...]:
    """`ops.shape(x)`, without the shape op TensorFlow's `ops.shape` always runs when every
    dimension is already known (as in every eager call)."""
    shape = tuple(x.shape)
    return shape if None not in shape else ops.shape(x)


def _is_real(dtype: str) -> bool:
    return keras.backend.is_float_dtype(dtype) or keras.backend.is_int_dtype(dtype)


def _fill_value(dtype: Any) -> float:
    """The most negative finite number of `dtype`: exp(fill - max) is exactly 0."""
    return float(np.finfo(keras.backend.standardize_dtype(dtype)).min)


def _concrete_values(x: Tensor) -> np.ndarray | None:
    """The values of tensor `x` as a NumPy array, or None while a function is being traced."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return x.numpy() if tf.executing_eagerly() else None
    if backend == "jax":
        import jax

        return None if isinstance(x, jax.core.Tracer) else np.asarray(x)
    return ops.convert_to_numpy(x)


def _broadcast_shape(a: Shape, b: Shape) -> tuple[int | None, ...]:
    """numpy's broadcasting rule on static shapes, `None` for an unknown dimension."""
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    return tuple(None if x is None or y is None else max(x, y) for x, y in zip(a, b, strict=True))


def _broadcasts_to(shape: Shape, target: Shape) -> bool:
    pairs = zip(reversed(tuple(shape)), reversed(tuple(target)), strict=False)
    return len(shape) <= len(target) and all(
        a is None or b is None or a == b or 1 in (a, b) for a, b in pairs
    )


def _as_float_tensor(x: Tensor, name: str) -> Tensor:
    x = ops.convert_to_tensor(x)
    dtype = _dtype(x)
    if not _is_real(dtype):
        raise TypeError(f"`{name}` must be a real numeric tensor. Received: dtype={dtype}")
    if keras.backend.is_int_dtype(dtype):
        x = ops.cast(x, "float64")
    if len(x.shape) < 2:
        raise ValueError(
            f"`{name}` must have rank >= 2 (shape (..., length, depth)). "
            f"Received: {name}.shape={tuple(x.shape)}"
        )
    return x


def _as_bool_mask(mask: Tensor, scores_shape: Shape) -> Tensor:
    mask = ops.convert_to_tensor(mask)
    dtype = _dtype(mask)
    if dtype != "bool":
        if not _is_real(dtype):
            raise ValueError(f"`mask` must be boolean or hold only 0 and 1. Received: {dtype}")
        values = _concrete_values(mask)  # None while tracing: nothing to check then
        if values is not None and not np.isin(values, (0, 1)).all():
            raise ValueError(
                "`mask` must be boolean (True = may attend) or hold only 0 and 1. "
                f"Received: values={np.unique(values)[:5]}"
            )
        mask = ops.not_equal(mask, 0)
    if not _broadcasts_to(mask.shape, scores_shape):
        raise ValueError(
            f"`mask` must broadcast to the scores' shape (..., T, S) = {tuple(scores_shape)}. "
            f"Received: mask.shape={tuple(mask.shape)}"
        )
    return mask


def _check_attention_inputs(
    query: Tensor, key: Tensor, value: Tensor, scale: float | None
) -> tuple[Tensor, Tensor, Tensor, float, str]:
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
    dtype = _dtype(query)
    work = "float32" if dtype in ("float16", "bfloat16") else dtype
    q, k, v = (ops.cast(x, work) for x in (query, key, value))
    return q, k, v, scale, dtype


def _scores_shape(q: Tensor, k: Tensor) -> tuple[int | None, ...]:
    """The static shape `(..., T, S)` of `q @ k^T`."""
    return (*_broadcast_shape(q.shape[:-2], k.shape[:-2]), q.shape[-2], k.shape[-2])


# ---------------------------------------------------------------- the formula
def _attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    dropout: float = 0.0,
    seed: SeedLike = None,
    bias: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """softmax(q k^T + bias) v on checked tensors, `q` already scaled; returns
    `(output, weights)`. `bias`, if given, broadcasts to the scores `(..., T, S)`."""
    scores = ops.einsum("...td,...sd->...ts", q, k)  # (..., T, S): q k^T, no transpose
    if bias is not None:
        scores = scores + bias
    if mask is not None:
        scores = ops.where(mask, scores, _fill_value(scores.dtype))
    weights = ops.softmax(scores, axis=-1)  # (..., T, S)
    dropped = weights
    if dropout > 0:
        dropped = keras.random.dropout(weights, rate=dropout, seed=seed)
    output = ops.matmul(dropped, v)  # (..., T, d_v)
    if mask is not None:  # softmax gives a fully masked row uniform weights: set them to 0
        attends = ops.cast(ops.any(mask, axis=-1, keepdims=True), weights.dtype)  # (..., T, 1)
        weights, output = weights * attends, output * attends
    return output, weights


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    mask: Tensor | None = None,
    scale: float | None = None,
    dropout: float = 0.0,
    training: bool = False,
    seed: SeedLike = None,
) -> tuple[Tensor, Tensor]:
    r"""softmax(Q K^T / sqrt(d_k)) V on tensors; the contract of
    :func:`selfattention.fast.scaled_dot_product_attention`.

    Args:
        query: `(..., T, d_k)`; key: `(..., S, d_k)`; value: `(..., S, d_v)`.
        mask: optional boolean, broadcastable to `(..., T, S)`; True = may attend.
        scale: positive number; default `1 / sqrt(d_k)`.
        dropout: rate applied to the weights when `training` is True.
        seed: optional `keras.random.SeedGenerator` for the dropout.

    Returns:
        `(output, weights)`: `(..., T, d_v)` and `(..., T, S)`. A fully masked row gives 0s.
        float16 and bfloat16 inputs are computed in float32 and returned in their own dtype.
    """
    q, k, v, scale, dtype = _check_attention_inputs(query, key, value, scale)
    if mask is not None:
        mask = _as_bool_mask(mask, _scores_shape(q, k))
    rate = dropout if training else 0.0
    output, weights = _attention(q * scale, k, v, mask, rate, seed)
    return ops.cast(output, dtype), ops.cast(weights, dtype)


def chunked_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    mask: Tensor | None = None,
    scale: float | None = None,
    chunk_size: int = 512,
    use_causal_mask: bool = False,
) -> Tensor:
    r"""Exact attention over blocks of `chunk_size` keys with the online softmax, on tensors:
    the contract of :func:`selfattention.fast.chunked_attention`. Only a `(..., T, chunk_size)`
    block of scores exists at a time (a while loop, one block after the other).

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
    return ops.cast(_chunked(q * scale, k, v, mask, use_causal_mask, chunk_size), dtype)


def _in_blocks(
    x: Tensor, axis: int, n_blocks: Tensor, chunk_size: int, padding: Tensor, fill: float = 0
) -> Tensor:
    """Split axis `axis` (negative) of `x` into `n_blocks` blocks of `chunk_size`, padding the
    end with `fill`: `(..., S, ...) -> (..., n_blocks, chunk_size, ...)`."""
    if not (isinstance(padding, int) and padding == 0):
        widths = [[0, 0] for _ in x.shape]
        widths[axis] = [0, padding]
        x = ops.pad(x, widths, constant_values=fill)
    shape = list(ops.shape(x))
    shape[axis : len(shape) + axis + 1] = [n_blocks, chunk_size]
    return ops.reshape(x, shape)


def _one_block_at_a_time(
    cond: Callable[..., Any], body: Callable[..., Any], loop_vars: tuple[Tensor, ...]
) -> tuple[Tensor, ...]:
    """`keras.ops.while_loop`; on TensorFlow with `parallel_iterations=1` (an argument
    `keras.ops` does not expose), since blocks run in parallel would hold several blocks of
    scores at once and lose the memory saving."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.while_loop(cond, body, loop_vars, parallel_iterations=1)
    return ops.while_loop(cond, body, loop_vars)


def _chunked(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None,
    causal: bool,
    chunk_size: int,
    query_start: Tensor | int = 0,
    bias: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """The online softmax of `selfattention.chunked_attention`, with `q` already scaled.

    `query_start`: the position of the first query, for the causal mask (queries at
    `query_start + 0..T-1`, keys at `0..S-1`). `bias`: optional function of a block's key
    positions `(c,)` returning a bias that broadcasts to that block's scores `(..., T, c)`.
    """
    T, S = ops.shape(q)[-2], ops.shape(k)[-2]
    n_blocks = (S + chunk_size - 1) // chunk_size
    padding = n_blocks * chunk_size - S  # keys added at the end to fill the last block
    k_blocks = _in_blocks(k, -2, n_blocks, chunk_size, padding)  # (..., n, c, d_k)
    v_blocks = _in_blocks(v, -2, n_blocks, chunk_size, padding)  # (..., n, c, d_v)
    mask_blocks = None
    if mask is not None and mask.shape[-1] != 1:
        mask_blocks = _in_blocks(mask, -1, n_blocks, chunk_size, padding, False)  # (..., T, n, c)
    fill = _fill_value(q.dtype)

    def step(
        i: Tensor, m: Tensor, total: Tensor, acc: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        k_c = ops.take(k_blocks, i, axis=-3)  # (..., c, d_k)
        v_c = ops.take(v_blocks, i, axis=-3)  # (..., c, d_v)
        scores = ops.einsum("...td,...sd->...ts", q, k_c)  # (..., T, c): q k_c^T
        keys = i * chunk_size + ops.arange(chunk_size)  # (c,) positions of this block's keys
        if bias is not None:
            scores = scores + bias(keys)  # (..., T, c)
        keep = None if isinstance(padding, int) and padding == 0 else keys < S  # (c,)
        if causal:
            allowed = ops.expand_dims(query_start + ops.arange(T), -1) >= keys  # (T, c)
            keep = allowed if keep is None else ops.logical_and(keep, allowed)
        if mask is not None:
            block = mask if mask_blocks is None else ops.take(mask_blocks, i, axis=-2)
            keep = block if keep is None else ops.logical_and(keep, block)  # (..., T, c)
        if keep is not None:
            scores = ops.where(keep, scores, fill)
        m_new = ops.maximum(m, ops.max(scores, axis=-1, keepdims=True))  # (..., T, 1)
        correction = ops.exp(m - m_new)  # rescales what was accumulated under the old max
        p = ops.exp(scores - m_new)  # (..., T, c)
        total = total * correction + ops.sum(p, axis=-1, keepdims=True)
        acc = acc * correction + ops.matmul(p, v_c)  # (..., T, d_v)
        return i + 1, m_new, total, acc

    # The zeros below only broadcast the batch dimensions of q, k and v together.
    zeros = ops.zeros_like(q[..., :1]) + ops.zeros_like(k[..., :1, :1])  # (..., T, 1)
    zeros = zeros + ops.zeros_like(v[..., :1, :1])
    m = zeros - np.inf  # running max
    total = zeros  # running sum of exp(score - m)
    acc = zeros + ops.zeros_like(v[..., :1, :])  # (..., T, d_v), sum of exp(...) V
    start = ops.convert_to_tensor(0, "int32")
    _, m, total, acc = _one_block_at_a_time(
        lambda i, *_: i < n_blocks, step, (start, m, total, acc)
    )
    attends = m > fill  # the running max is still the fill value only if no key was allowed
    return ops.where(attends, acc / total, ops.zeros_like(acc))  # (..., T, d_v)


# ---------------------------------------------------------------- positions
#: The values of `MultiHeadAttention(position_encoding=...)`.
POSITION_ENCODINGS = (None, "rope", "alibi")


def _rotary(x: Tensor, positions: Tensor, base: float = 10000.0) -> Tensor:
    """:func:`selfattention.reference.rotary_embedding` in `keras.ops`: the feature pair
    `(x_2i, x_2i+1)` of the vector at position `m` rotated by the angle `m base^(-2i/d)`.

    `x` `(..., L, d)` with `d` even, `positions` `(L,)`; returns the rotated `x`, same shape.
    """
    d = x.shape[-1]
    theta = ops.convert_to_tensor(base ** (-np.arange(0, d, 2) / d), x.dtype)  # (d / 2,)
    angles = ops.expand_dims(ops.cast(positions, x.dtype), -1) * theta  # (L, d / 2)
    cos, sin = ops.cos(angles), ops.sin(angles)  # (L, d / 2)
    pairs = ops.reshape(x, (*ops.shape(x)[:-1], d // 2, 2))  # (..., L, d / 2, 2)
    even, odd = pairs[..., 0], pairs[..., 1]  # (..., L, d / 2) each
    rotated = ops.stack([even * cos - odd * sin, even * sin + odd * cos], axis=-1)
    return ops.reshape(rotated, ops.shape(x))  # (..., L, d)


def _alibi(slopes: Tensor, query_positions: Tensor, key_positions: Tensor) -> Tensor:
    """:func:`selfattention.reference.alibi_bias` in `keras.ops`: `-m_h |p_i - j|`, `(h, T, S)`
    for `slopes` `(h,)`, `query_positions` `(T,)` and `key_positions` `(S,)`."""
    distance = ops.expand_dims(query_positions, -1) - ops.expand_dims(key_positions, 0)  # (T, S)
    distance = ops.cast(ops.abs(distance), slopes.dtype)
    return -ops.reshape(slopes, (-1, 1, 1)) * distance  # (h, T, S)


# ---------------------------------------------------------------- the layer
class _Projection(keras.layers.Layer):
    """`x @ kernel + bias` over the last `len(in_shape)` axes: `(..., *in) -> (..., *out)`.

    One of the four (five with the gate) projections of multi-head attention; its kernel and
    bias have the shapes of Keras's `EinsumDense` sublayers, under the same names.
    """

    def __init__(
        self,
        in_shape: Shape,
        out_shape: Shape,
        use_bias: bool,
        kernel_initializer: InitializerLike,
        bias_initializer: InitializerLike,
        kernel_regularizer: RegularizerLike = None,
        bias_regularizer: RegularizerLike = None,
        kernel_constraint: ConstraintLike = None,
        bias_constraint: ConstraintLike = None,
        activation: str | Callable[[Tensor], Tensor] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True  # position by position: a mask passes through unchanged
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        self.kernel = self.add_weight(
            name="kernel",
            shape=self.in_shape + self.out_shape,
            initializer=_with_fans(kernel_initializer, len(self.in_shape), len(self.out_shape)),
            regularizer=kernel_regularizer,
            constraint=kernel_constraint,
        )
        self.bias = None
        if use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=self.out_shape,
                initializer=bias_initializer,
                regularizer=bias_regularizer,
                constraint=bias_constraint,
            )
        self.activation = keras.activations.get(activation)
        self.built = True

    def call(self, x: Tensor, heads_first: bool = False) -> Tensor:
        # Keras's EinsumDense equation, "abc,cde->abde" for (B, T, d_model) -> (B, T, h, d_k):
        # Keras runs it on TensorFlow as a reshape, a matmul and a reshape, with far less
        # Python per call than `ops.tensordot` (what eager calls spend their time on at small n).
        # heads_first (inputs (B, T, d_model) only): the heads side is (B, h, T, d) instead of
        # Keras's (B, T, h, d), put there by the einsum itself, with no transpose.
        batch = "abcdefghij"[: len(x.shape) - len(self.in_shape)]
        into, out = "klmnop"[: len(self.in_shape)], "qrstuvwxyz"[: len(self.out_shape)]
        x_axes, y_axes, bias = batch + into, batch + out, self.bias
        if heads_first and len(self.in_shape) == 2:  # (B, h, T, d_v) -> (B, T, d_model)
            x_axes = batch[0] + into[0] + batch[1:] + into[1:]
        elif heads_first:  # (B, T, d_model) -> (B, h, T, d_k)
            y_axes = batch[0] + out[0] + batch[1:] + out[1:]
            bias = None if bias is None else ops.expand_dims(bias, 1)  # (h, 1, d_k)
        y = ops.einsum(f"{x_axes},{into}{out}->{y_axes}", x, self.kernel)
        if bias is not None:
            y = y + bias
        return self.activation(y)

    def compute_output_shape(
        self, input_shape: Shape, heads_first: bool = False
    ) -> tuple[int | None, ...]:
        shape = tuple(input_shape)
        if heads_first and len(self.in_shape) == 2:  # (B, h, T, d_v) -> (B, T, *out)
            return (shape[0], *shape[2:-1], *self.out_shape)
        batch = shape[: len(shape) - len(self.in_shape)]
        if heads_first:  # (B, T, d_model) -> (B, h, T, d_k)
            return (batch[0], self.out_shape[0], *batch[1:], *self.out_shape[1:])
        return batch + self.out_shape


def _fresh(initializer: keras.initializers.Initializer) -> keras.initializers.Initializer:
    """A new instance of `initializer`. An unseeded Keras initializer draws its seed when it is
    created and returns the same values at every call: one instance per weight keeps the
    query, key and value kernels from starting equal."""
    return initializer.__class__.from_config(initializer.get_config())


def _with_fans(
    initializer: keras.initializers.Initializer, n_in: int, n_out: int
) -> keras.initializers.Initializer:
    """`initializer` told which kernel axes are inputs and outputs. Glorot, He and LeCun
    (VarianceScaling) then take fan-in = d_model and fan-out = h * d_k for a `(d_model, h, d_k)`
    kernel, as Keras's EinsumDense does, instead of reading the first axis as a receptive field."""
    if not isinstance(initializer, keras.initializers.VarianceScaling) or (
        getattr(initializer, "input_axes", 0) is not None  # 0: a Keras without the option
        and getattr(initializer, "output_axes", 0) is not None
    ):
        return initializer
    config = initializer.get_config() | {
        "seed": initializer.seed,  # the seed this instance drew: no new draw
        "input_axes": list(range(n_in)),
        "output_axes": list(range(n_in, n_in + n_out)),
    }
    return initializer.__class__.from_config(config)


def _normalized_output_shape(
    output_shape: int | Sequence[int] | None,
) -> tuple[int, ...] | None:
    if not output_shape:
        return None
    if isinstance(output_shape, int | np.integer) and not isinstance(output_shape, bool):
        output_shape = (output_shape,)
    if not isinstance(output_shape, list | tuple) or not all(
        isinstance(d, int | np.integer) and not isinstance(d, bool) and d > 0 for d in output_shape
    ):
        raise ValueError(
            f"Invalid `output_shape`: {output_shape!r}. When specified, `output_shape` must be "
            "a positive int or a tuple (or list) of positive ints."
        )
    return tuple(int(d) for d in output_shape)


@keras.saving.register_keras_serializable(package="selfattention")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention written from scratch, a drop-in for `keras.layers.MultiHeadAttention`.

    "Drop-in" is checked, not claimed: Keras's own test file for its layer (shipped in the keras
    wheel) runs against this class in ``tests/test_keras_suite.py``, and the tests compare the
    outputs with Keras's given the same weights. Same constructor and call arguments as Keras
    3.15, same sublayer and weight names (``multi_head_attention/query/kernel``, ...), the same
    `get_weights()` order (query kernel, query bias, key kernel, key bias, [gate kernel, gate
    bias,] value kernel, value bias, output kernel, output bias) and the same initial weights
    and dropout for the same seed, so ``ours.set_weights(theirs.get_weights())`` reproduces
    Keras's outputs and a weights file saved from one loads into the other.

    Masks, as in Keras: the implicit masks Keras attaches to tensors (e.g. by
    ``Embedding(mask_zero=True)``) or the explicit `query_mask` `(B, T)`, `value_mask` and
    `key_mask` `(B, S)` forbid attending to padded keys and padded queries; they are ANDed
    with `attention_mask`, `use_causal_mask` and `sliding_window`, and the query's mask is
    attached to the output for the next layer.

    Where this layer differs from Keras's:

    - A query row with nothing to attend to (e.g. a padded query) always gets weights 0 and
      attention output 0, so its output is the output bias. Keras gives uniform weights on its
      fast path (output = projection of the mean value) and zeros when dropout is on or the
      scores are returned.
    - An explicit `query_mask` is honoured; Keras replaces it by the query's implicit mask
      (none, for a plain tensor). The inputs' implicit masks are read, not deleted from the
      input tensors as Keras does.
    - `flash_attention` is accepted and validated as Keras does (no dropout, no returned
      scores with it), but it changes nothing: the computation is always the plain formula
      below (on CPU neither TensorFlow nor JAX has a flash kernel).
    - The symbolic scores of a functional call have the shape `(B, h, T, S)` (Keras gives
      `(B, h, T, T)`).

    With `chunk_size` set, a call that returns no scores and applies no dropout runs
    :func:`chunked_attention` instead: the same output (to float rounding) from one
    `(B, h, T, chunk_size)` block of scores at a time instead of the full `(B, h, T, S)`.
    That saves memory at inference; for training, the backward pass keeps every block.

    Positions (`position_encoding`, inputs with one sequence axis only): `"rope"` rotates each
    head's projected queries and keys by their positions before the dot product, as
    :func:`selfattention.reference.rotary_embedding` does (queries at `0..T-1`, keys at
    `0..S-1`); `"alibi"` adds :func:`selfattention.reference.alibi_bias` to the scores before
    the softmax (the queries are the last `T` of the `S` positions, slopes
    :func:`selfattention.reference.alibi_slopes`). With a cache, the new queries and keys are
    at positions `cache_update_index..cache_update_index+T-1`.

    Incremental decoding (a key/value cache, for inputs `(B, T, d_model)` and
    `value_dim == key_dim`): `cache = layer.init_cache(B, max_length)` gives zeros
    `(B, 2, h, max_length, d_k)`, `cache[:, 0]` the keys and `cache[:, 1]` the values of each
    head (keys already rotated by RoPE). ``out, cache = layer(x_new, x_new, cache=cache,
    cache_update_index=t, use_causal_mask=True)`` projects only the new positions `t..t+T-1`,
    writes their keys and values into those slots and lets the new queries attend to the
    slots written so far (never to later ones): step `t` costs O(t) instead of recomputing
    O(t^2) scores. `cache_update_index=None` uses a fixed cache, e.g. the cross-attention's
    keys and values of an encoder's output from `compute_cache` (no positions then).

    Args:
        num_heads: number of heads `h`.
        key_dim: depth `d_k` of each query/key head.
        value_dim: depth `d_v` of each value head; defaults to `key_dim`.
        dropout: dropout rate on the attention weights, in [0, 1).
        use_bias: whether the projections have biases.
        output_shape: shape of each output position: an int or a tuple of ints; defaults to
            the query's last dimension `d_model`.
        attention_axes: the axes of the inputs attended over (an int or a tuple; negative
            counts from the end); default: every axis but the batch and the last one. With
            several axes, the positions of those axes are attended to jointly.
        sliding_window: optional positive int `w`: query `t` may attend only to keys `j` with
            `|t - j| < w` (with `use_causal_mask`, the `w` most recent keys).
        flash_attention: accepted for compatibility; no effect (see above).
        kernel_initializer: initializer of every projection's kernel, as in Keras.
        bias_initializer: initializer of every projection's bias.
        kernel_regularizer: optional regularizer of every projection's kernel.
        bias_regularizer: optional regularizer of every projection's bias.
        activity_regularizer: optional regularizer of each projection's output.
        kernel_constraint: optional constraint on every projection's kernel.
        bias_constraint: optional constraint on every projection's bias.
        use_gate: multiply each head's output by `sigmoid(query projection)` before the output
            projection (gated attention, Qiu et al., 2025, as in Keras).
        seed: optional int seed of the dropout.
        chunk_size: optional positive int, keys per block for the memory-saving path.
        position_encoding: None (the default: no positions inside the layer), `"rope"` (needs
            an even `key_dim`) or `"alibi"`.

    Call arguments:

    - `query` `(B, T, d_model)`, `value` `(B, S, d_model_v)`, `key` `(B, S, d_model_k)`
      (defaults to `value`). Inputs of higher rank `(B, ..., d_model)` attend over
      `attention_axes`.
    - `query_mask`: optional boolean `(B, T)`; defaults to the query's implicit Keras mask.
    - `value_mask`, `key_mask`: optional boolean `(B, S)`; default to the implicit masks.
    - `attention_mask`: boolean `(T, S)`, `(B, T, S)` or `(B, h, T, S)`, True = may attend
      (1/0 accepted).
    - `return_attention_scores`: also return the weights `(B, h, T, S)`.
    - `training`: apply dropout.
    - `use_causal_mask`: also forbid attending to later positions.
    - `cache`: optional `(B, 2, h, S_max, d_k)`, see above; `value_mask` and `key_mask` are
      then not supported (an `attention_mask` is `(B, T, S_max)`).
    - `cache_update_index`: int or scalar tensor, the position of the first new query, in
      `[0, S_max - T]`; None with a cache: the cache is fixed and not written.

    Returns:
        `output` `(B, T, *output_shape)`, with the query's mask attached; and with
        `return_attention_scores`, the weights `(B, h, T, S)` (`S = S_max` with a cache); and
        with a cache, the updated cache last: `(output, [weights,] cache)`.
    """

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape: int | Sequence[int] | None = None,
        attention_axes: int | Sequence[int] | None = None,
        sliding_window: int | None = None,
        flash_attention: bool | None = None,
        kernel_initializer: InitializerLike = "glorot_uniform",
        bias_initializer: InitializerLike = "zeros",
        kernel_regularizer: RegularizerLike = None,
        bias_regularizer: RegularizerLike = None,
        activity_regularizer: RegularizerLike = None,
        kernel_constraint: ConstraintLike = None,
        bias_constraint: ConstraintLike = None,
        use_gate: bool = False,
        seed: int | None = None,
        chunk_size: int | None = None,
        position_encoding: str | None = None,
        **kwargs: Any,
    ) -> None:
        _check_positive_int(num_heads, "num_heads")
        _check_positive_int(key_dim, "key_dim")
        if position_encoding not in POSITION_ENCODINGS:
            raise ValueError(
                f"`position_encoding` must be one of {POSITION_ENCODINGS}. "
                f"Received: position_encoding={position_encoding!r}"
            )
        if position_encoding == "rope" and key_dim % 2:
            raise ValueError(
                "`key_dim` must be even with position_encoding='rope': query and key features "
                f"are rotated in pairs. Received: key_dim={key_dim}"
            )
        if value_dim is not None:
            _check_positive_int(value_dim, "value_dim")
        _check_dropout(dropout)
        if isinstance(attention_axes, int):
            attention_axes = (attention_axes,)
        if attention_axes is not None and not isinstance(attention_axes, list | tuple):
            raise ValueError(
                "`attention_axes` must be an int, list, or tuple. "
                f"Received: attention_axes={attention_axes!r}"
            )
        if sliding_window is not None and (
            isinstance(sliding_window, bool)
            or not isinstance(sliding_window, int)
            or sliding_window <= 0
        ):
            raise ValueError(
                "`sliding_window` must be `None` or a positive integer. "
                f"Received: sliding_window={sliding_window!r}"
            )
        if chunk_size is not None:
            _check_positive_int(chunk_size, "chunk_size")
        if position_encoding is not None and attention_axes is not None and len(attention_axes) > 1:
            raise ValueError(
                f"position_encoding={position_encoding!r} needs one attention axis (a sequence): "
                f"positions along several axes are not defined. Received: "
                f"attention_axes={tuple(attention_axes)}"
            )
        flash = flash_attention or keras.config.is_flash_attention_enabled()
        if flash and dropout > 0:
            raise ValueError(
                "Dropout is not supported when flash attention is enabled. "
                f"Please set dropout to 0.0 to use flash attention. Received: dropout={dropout}"
            )
        super().__init__(**kwargs)
        self.supports_masking = True
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim or key_dim
        self.dropout = dropout
        self.use_bias = use_bias
        self._output_shape = _normalized_output_shape(output_shape)
        self.attention_axes = None if attention_axes is None else tuple(attention_axes)
        self._sliding_window = sliding_window
        self._flash_attention = flash
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.projection_activity_regularizer = keras.regularizers.get(activity_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.use_gate = use_gate
        self.seed = seed
        self.chunk_size = chunk_size
        self.position_encoding = position_encoding

    @property
    def sliding_window(self) -> int | None:
        return self._sliding_window

    # Keras's names for the sublayers, read by code written for Keras's layer.
    @property
    def query_dense(self) -> keras.layers.Layer:
        return self._query_dense

    @property
    def key_dense(self) -> keras.layers.Layer:
        return self._key_dense

    @property
    def value_dense(self) -> keras.layers.Layer:
        return self._value_dense

    @property
    def output_dense(self) -> keras.layers.Layer:
        return self._output_dense

    # The package's own short names for the kernels and biases.
    w_q = property(lambda self: self._query_dense.kernel)
    b_q = property(lambda self: self._query_dense.bias)
    w_k = property(lambda self: self._key_dense.kernel)
    b_k = property(lambda self: self._key_dense.bias)
    w_v = property(lambda self: self._value_dense.kernel)
    b_v = property(lambda self: self._value_dense.bias)
    w_o = property(lambda self: self._output_dense.kernel)
    b_o = property(lambda self: self._output_dense.bias)

    def _projection(
        self,
        name: str,
        in_shape: Shape,
        out_shape: Shape,
        activation: str | None = None,
    ) -> _Projection:
        return _Projection(
            in_shape,
            out_shape,
            self.use_bias,
            _fresh(self.kernel_initializer),
            _fresh(self.bias_initializer),
            self.kernel_regularizer,
            self.bias_regularizer,
            self.kernel_constraint,
            self.bias_constraint,
            activation=activation,
            activity_regularizer=self.projection_activity_regularizer,
            dtype=self.dtype_policy,
            name=name,
        )

    def _check_shapes(self, query_shape: Shape, value_shape: Shape, key_shape: Shape) -> None:
        if tuple(value_shape[1:-1]) != tuple(key_shape[1:-1]):
            raise ValueError(
                "All dimensions of `value` and `key`, except the last one, must be equal "
                "(they hold the same S positions). "
                f"Received: value_shape={tuple(value_shape)} and key_shape={tuple(key_shape)}"
            )
        if len(query_shape) != len(value_shape):
            raise ValueError(
                "`query` and `value` must have the same rank. "
                f"Received: query_shape={tuple(query_shape)}, value_shape={tuple(value_shape)}"
            )
        if len(query_shape) < 3:
            raise ValueError(
                "`query` must have rank >= 3 (shape (B, T, d_model)). "
                f"Received: query_shape={tuple(query_shape)}"
            )

    def _axes(self, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The attention axes and the batch-like axes of inputs of rank `rank`."""
        positions = range(1, rank - 1)  # every axis but the batch and the features
        axes = tuple(positions) if self.attention_axes is None else self.attention_axes
        normalized = tuple(axis + rank if axis < 0 else axis for axis in axes)
        if not all(axis in positions for axis in normalized) or len(set(normalized)) < len(axes):
            raise ValueError(
                f"`attention_axes` must be distinct axes in 1..{rank - 2} (or -{rank - 1}..-2) "
                f"of inputs of rank {rank}. Received: attention_axes={self.attention_axes}"
            )
        if self.position_encoding is not None and len(normalized) > 1:
            raise ValueError(
                f"position_encoding={self.position_encoding!r} needs one attention axis (a "
                f"sequence), but inputs of rank {rank} attend over the axes {normalized}. Pass "
                "inputs (B, T, d_model) or a single `attention_axes`."
            )
        batch = tuple(axis for axis in range(rank - 1) if axis not in normalized)
        return normalized, batch

    def build(self, query_shape: Shape, value_shape: Shape, key_shape: Shape | None = None) -> None:
        key_shape = value_shape if key_shape is None else key_shape
        self._check_shapes(query_shape, value_shape, key_shape)
        self._axes(len(query_shape))
        h = self.num_heads
        d_out = self._output_shape or (query_shape[-1],)
        # The order of creation is Keras's: it fixes the get_weights() order, and which seed
        # each unseeded initializer draws (so the same seed gives Keras's initial weights).
        self._query_dense = self._projection("query", query_shape[-1:], (h, self.key_dim))
        self._key_dense = self._projection("key", key_shape[-1:], (h, self.key_dim))
        if self.use_gate:
            self._gate_dense = self._projection(
                "gate", query_shape[-1:], (h, self.value_dim), activation="sigmoid"
            )
        self._value_dense = self._projection("value", value_shape[-1:], (h, self.value_dim))
        self.seed_generator = None
        if self.dropout > 0:
            self.seed_generator = keras.random.SeedGenerator(self.seed)
        self._output_dense = self._projection("attention_output", (h, self.value_dim), d_out)

    # -------------------------------------------------------- masks
    def _combined_mask(
        self,
        query: Tensor,
        value: Tensor,
        query_mask: Tensor | None,
        value_mask: Tensor | None,
        key_mask: Tensor | None,
        attention_mask: Tensor | None,
        use_causal_mask: bool,
        scores_rank: int,
        query_start: Tensor | int = 0,
        cache_length: Tensor | None = None,
        written_only: bool = False,
    ) -> Tensor | None:
        """Every mask ANDed into one boolean tensor that broadcasts to the scores, or None.

        Each is first given the rank of the scores (for `(B, T, d_model)` inputs,
        `(B, h, T, S)`) the way Keras does: missing axes are inserted just before the
        query's attention axes, i.e. where the heads are. With a cache, the queries are at
        positions `query_start + 0..T-1` and the keys are the cache's `cache_length` slots;
        `written_only` masks the slots after the newest query's position (not yet written).
        """
        n_attention = len(self._axes(len(query.shape))[0])
        masks = []
        if query_mask is not None:
            masks.append(ops.expand_dims(ops.cast(query_mask, "bool"), -1))  # (B, T, 1)
        for mask in (value_mask, key_mask):
            if mask is not None:
                masks.append(ops.expand_dims(ops.cast(mask, "bool"), -2))  # (B, 1, S)
        windowed = self._sliding_window is not None
        if use_causal_mask or written_only or windowed:  # positions only when a mask uses them
            T, S = _shape(query)[1], _shape(value)[1]
            if cache_length is not None:
                S = cache_length
            rows = ops.expand_dims(query_start + ops.arange(T), -1)  # (T, 1) query positions
            cols = ops.expand_dims(ops.arange(S), 0)  # (1, S) key positions
            if use_causal_mask:
                masks.append(rows >= cols)  # (T, S)
            if written_only:
                masks.append(cols < query_start + T)  # (1, S): the slots written so far
            if windowed:
                masks.append(ops.abs(rows - cols) < self._sliding_window)  # (T, S)
        if attention_mask is not None:
            attention_mask = ops.convert_to_tensor(attention_mask)
            masks.append(ops.cast(attention_mask, "bool"))
        combined = None
        for mask in masks:
            while len(mask.shape) < scores_rank:
                mask = ops.expand_dims(mask, -2 * n_attention - 1)
            combined = mask if combined is None else ops.logical_and(combined, mask)
        return combined

    # -------------------------------------------------------- layout
    def _project(self, dense: _Projection, x: Tensor, heads_first: bool = False) -> Tensor:
        """`dense(x, heads_first=heads_first)`, without a second `Layer.__call__`.

        Keras's `Layer.__call__` (input conversion, masks, autocast and name scopes) costs
        about 0.2 ms per eager call on a 2-core CPU, four (with the gate five) times per
        attention call, and this layer's own `__call__` has already done all of it for these
        inputs; so the projection's `call` runs directly, unless the projection has an activity
        regularizer, which only `__call__` records.
        """
        if dense.activity_regularizer is not None:
            return dense(x, heads_first=heads_first)
        return dense.call(x, heads_first=heads_first)

    def _to_heads(
        self, dense: _Projection, x: Tensor, axes: tuple[int, ...], batch: tuple[int, ...]
    ) -> Tensor:
        """Project `x` `(B, *positions, d_model)` with `dense` into `(*batch, h, L, d)`: heads
        first, the attended positions flattened into one axis `L` (T for the query, S for key
        and value)."""
        if len(x.shape) == 3:  # (B, T, d_model): the projection puts the heads first itself
            return self._project(dense, x, heads_first=True)
        x = self._project(dense, x)  # (B, *positions, h, d)
        rank = len(x.shape)
        x = ops.transpose(x, (*batch, rank - 2, *axes, rank - 1))
        if len(axes) == 1:
            return x
        shape = ops.shape(x)
        return ops.reshape(x, (*shape[: len(batch) + 1], -1, shape[-1]))

    def _flat_mask(
        self, mask: Tensor | None, axes: tuple[int, ...], query_shape: Shape, key_shape: Shape
    ) -> Tensor | None:
        """A mask in Keras's layout `(*batch, h, *T_axes, *S_axes)` flattened to `(..., T, S)`."""
        n = len(axes)
        if mask is None or n == 1:
            return mask
        t_dims = [query_shape[a] for a in axes]
        s_dims = [key_shape[a] for a in axes]
        mask = ops.broadcast_to(mask, (*ops.shape(mask)[: -2 * n], *t_dims, *s_dims))
        shape = ops.shape(mask)
        return ops.reshape(mask, (*shape[: -2 * n], math.prod(t_dims), math.prod(s_dims)))

    # -------------------------------------------------------- cache
    def init_cache(self, batch_size: int, max_length: int, dtype: Any = None) -> Tensor:
        """An empty cache for incremental decoding: zeros `(B, 2, h, max_length, d_k)`.

        `cache[:, 0]` holds the keys and `cache[:, 1]` the values of each head, slot `j` for
        position `j` (keys already rotated by RoPE if `position_encoding="rope"`). Pass it to
        `call(..., cache=cache, cache_update_index=t)`, which writes the new positions and
        returns the updated cache. Needs `value_dim == key_dim`.
        """
        _check_positive_int(batch_size, "batch_size")
        _check_positive_int(max_length, "max_length")
        self._check_cache_dims()
        shape = (batch_size, 2, self.num_heads, max_length, self.key_dim)
        return ops.zeros(shape, dtype or self.compute_dtype)

    def compute_cache(self, value: Tensor, key: Tensor | None = None) -> Tensor:
        """The projected keys and values of a whole `value` `(B, S, d_model)` (and `key`,
        default `value`), `(B, 2, h, S, d_k)`: a fixed cache, e.g. of the encoder's output for
        cross-attention, to pass with `cache_update_index=None`. The layer must be built."""
        if not self.built:
            raise ValueError(
                "`compute_cache` needs a built layer (call it once first, or build it) to "
                "know its projections. Received: an unbuilt layer"
            )
        self._check_cache_dims()
        key = value if key is None else key
        if len(value.shape) != 3 or len(key.shape) != 3:
            raise ValueError(
                "`value` and `key` must have shape (B, S, d_model) to make a cache. "
                f"Received: value.shape={tuple(value.shape)}, key.shape={tuple(key.shape)}"
            )
        k = self._project(self._key_dense, key, heads_first=True)  # (B, h, S, d_k)
        v = self._project(self._value_dense, value, heads_first=True)  # (B, h, S, d_v)
        return ops.stack([k, v], axis=1)  # (B, 2, h, S, d_k)

    def _check_cache_dims(self) -> None:
        if self.value_dim != self.key_dim:
            raise ValueError(
                "A cache holds keys and values in one tensor (B, 2, h, S_max, d): it needs "
                f"`value_dim == key_dim`. Received: key_dim={self.key_dim}, "
                f"value_dim={self.value_dim}"
            )

    def _check_cache(
        self,
        cache: Tensor,
        cache_update_index: Tensor | int | None,
        query: Tensor,
        value_mask: Tensor | None,
        key_mask: Tensor | None,
    ) -> None:
        self._check_cache_dims()
        if len(query.shape) != 3:
            raise ValueError(
                "A cache needs inputs (B, T, d_model) (one sequence axis). "
                f"Received: query.shape={tuple(query.shape)}"
            )
        expected = (query.shape[0], 2, self.num_heads, None, self.key_dim)
        if len(cache.shape) != 5 or not all(
            e is None or c is None or c == e for c, e in zip(cache.shape, expected, strict=True)
        ):
            raise ValueError(
                "`cache` must have shape (B, 2, h, S_max, d_k) = "
                f"({expected[0]}, 2, {self.num_heads}, S_max, {self.key_dim}), as made by "
                f"`init_cache` or `compute_cache`. Received: cache.shape={tuple(cache.shape)}"
            )
        if value_mask is not None or key_mask is not None:
            raise ValueError(
                "`value_mask` and `key_mask` (and the implicit masks of `value` and `key`) "
                "are not supported with a cache: pass an `attention_mask` (B, T, S_max). "
                f"Received: value_mask={value_mask is not None}, key_mask={key_mask is not None}"
            )
        if cache_update_index is None:
            if self.position_encoding is not None:
                raise ValueError(
                    "A fixed cache (`cache_update_index=None`, e.g. cross-attention to an "
                    f"encoder's output) has no query positions: it cannot be used with "
                    f"position_encoding={self.position_encoding!r}. Received: "
                    "cache_update_index=None"
                )
            return
        if isinstance(cache_update_index, bool | float):
            raise ValueError(
                "`cache_update_index` must be an integer (the position of the first new "
                f"query). Received: cache_update_index={cache_update_index!r}"
            )
        index = cache_update_index
        if not isinstance(index, int | np.integer):
            values = _concrete_values(ops.convert_to_tensor(index))
            index = None if values is None or values.ndim else int(values)
        T, S_max = query.shape[1], cache.shape[3]
        if index is not None and T is not None and S_max is not None:
            if not 0 <= index <= S_max - T:
                raise ValueError(
                    f"`cache_update_index` must be in [0, S_max - T] = [0, {S_max - T}] so "
                    f"that the {T} new positions fit in the cache's {S_max} slots. "
                    f"Received: cache_update_index={index}"
                )

    # -------------------------------------------------------- call
    def call(
        self,
        query: Tensor,
        value: Tensor,
        key: Tensor | None = None,
        query_mask: Tensor | None = None,
        value_mask: Tensor | None = None,
        key_mask: Tensor | None = None,
        attention_mask: Tensor | None = None,
        return_attention_scores: bool = False,
        training: bool | None = None,
        use_causal_mask: bool = False,
        cache: Tensor | None = None,
        cache_update_index: Tensor | int | None = None,
    ) -> Tensor | tuple[Tensor, ...]:
        if self._flash_attention and return_attention_scores:
            raise ValueError(
                "Returning attention scores is not supported when flash attention is enabled. "
                "Please disable flash attention to access attention scores."
            )
        # Keras's Layer.__call__ has already filled query_mask, value_mask and key_mask from
        # the implicit masks of query, value and key (unless they were given explicitly).
        key = value if key is None else key
        rank = len(query.shape)
        axes, batch = self._axes(rank)
        query_shape, key_shape = _shape(query), _shape(key)
        if cache is not None:
            self._check_cache(cache, cache_update_index, query, value_mask, key_mask)
        elif cache_update_index is not None:
            raise ValueError(
                "`cache_update_index` needs a `cache`. "
                f"Received: cache=None, cache_update_index={cache_update_index!r}"
            )
        fixed_cache = cache is not None and cache_update_index is None

        q = self._to_heads(self._query_dense, query, axes, batch)  # (B, h, T, d_k)
        dtype = _dtype(q)
        work = "float32" if dtype in ("float16", "bfloat16") else dtype
        q = ops.cast(q, work) * (1.0 / math.sqrt(self.key_dim))
        T = _shape(q)[-2]
        # With a cache, the T queries (and new keys) are at positions index..index+T-1.
        start = 0 if cache_update_index is None else ops.cast(cache_update_index, "int32")
        if not fixed_cache:  # the keys and values of the inputs
            k = self._to_heads(self._key_dense, key, axes, batch)  # (B, h, S or T, d_k)
            v = self._to_heads(self._value_dense, value, axes, batch)  # (B, h, S or T, d_v)
            k, v = ops.cast(k, work), ops.cast(v, work)
        if self.position_encoding == "rope":  # queries at start.., keys at start.. (or 0..S-1)
            q = _rotary(q, start + ops.arange(T))
            k = _rotary(k, start + ops.arange(_shape(k)[-2]))
        if cache is not None:
            if not fixed_cache:  # write the new positions into their slots
                new = ops.cast(ops.stack([k, v], axis=1), cache.dtype)  # (B, 2, h, T, d_k)
                cache = ops.slice_update(cache, (0, 0, 0, start, 0), new)
            k, v = ops.cast(cache[:, 0], work), ops.cast(cache[:, 1], work)  # (B, h, S_max, d)
        S = _shape(k)[-2]

        dropout = self.dropout if training else 0.0
        # The memory-saving path needs no returned scores and no dropout; None: the plain path.
        chunk_size = None if return_attention_scores or dropout else self.chunk_size
        scores_rank = len(batch) + 1 + 2 * len(axes)  # Keras's (*batch, h, *T_axes, *S_axes)
        mask = self._combined_mask(
            query,
            value,
            query_mask,
            value_mask,
            key_mask,
            attention_mask,
            use_causal_mask and not chunk_size,  # the chunked path builds it block by block
            scores_rank,
            start,
            None if cache is None else S,
            written_only=cache is not None and not fixed_cache,
        )
        mask = self._flat_mask(mask, axes, query_shape, key_shape)  # (B, 1 or h, T, S)

        bias = None
        if self.position_encoding == "alibi":
            slopes = ops.convert_to_tensor(alibi_slopes(self.num_heads), work)  # (h,)
            # Without a cache the queries are the last T of the S positions (as in
            # reference.alibi_bias); with one, at start..start+T-1.
            query_positions = (S - T if cache is None else start) + ops.arange(T)  # (T,)

            def bias(keys: Tensor) -> Tensor:
                return _alibi(slopes, query_positions, keys)  # (h, T, len(keys))

        if chunk_size:
            heads = _chunked(q, k, v, mask, use_causal_mask, chunk_size, start, bias)
        else:
            scores_bias = None if bias is None else bias(ops.arange(S))  # (h, T, S)
            heads, weights = _attention(
                q, k, v, mask, dropout, self.seed_generator, scores_bias
            )  # (B, h, T, d_v), (B, h, T, S)
            weights = ops.cast(weights, dtype)
        heads = ops.cast(heads, dtype)

        if self.use_gate:
            heads = heads * self._to_heads(self._gate_dense, query, axes, batch)  # (B, h, T, d_v)
        output = self._output_projection(heads, axes, batch, query_shape)  # (B, T, *output_shape)
        # With supports_masking, Keras's Layer.__call__ then attaches the query's implicit mask.
        results = [output]
        if return_attention_scores:
            if len(axes) > 1:  # back to Keras's layout (*batch, h, *T_axes, *S_axes)
                shape = ops.shape(weights)
                t_dims = [query_shape[a] for a in axes]
                s_dims = [key_shape[a] for a in axes]
                weights = ops.reshape(weights, (*shape[:-2], *t_dims, *s_dims))
            results.append(weights)
        if cache is not None:
            results.append(cache)
        return results[0] if len(results) == 1 else tuple(results)

    def _output_projection(
        self, x: Tensor, axes: tuple[int, ...], batch: tuple[int, ...], query_shape: Shape
    ) -> Tensor:
        """The output projection of the heads `(*batch, h, T, d_v)` (from `_to_heads`):
        `(B, *positions, *output_shape)`."""
        if len(query_shape) == 3:  # (B, h, T, d_v): one einsum, no transpose
            return self._project(self._output_dense, x, heads_first=True)
        if len(axes) > 1:
            shape = ops.shape(x)
            x = ops.reshape(x, (*shape[:-2], *[query_shape[a] for a in axes], shape[-1]))
        order = (*batch, len(query_shape) - 1, *axes, len(query_shape))  # where each axis went
        x = ops.transpose(x, tuple(int(i) for i in np.argsort(order)))  # (B, *positions, h, d)
        return self._project(self._output_dense, x)

    # -------------------------------------------------------- shapes and config
    def compute_output_shape(
        self, query_shape: Shape, value_shape: Shape, key_shape: Shape | None = None
    ) -> tuple[int | None, ...]:
        query_shape, value_shape = tuple(query_shape), tuple(value_shape)
        key_shape = value_shape if key_shape is None else tuple(key_shape)
        self._check_shapes(query_shape, value_shape, key_shape)
        return query_shape[:-1] + (self._output_shape or query_shape[-1:])

    def compute_output_spec(
        self,
        query: keras.KerasTensor,
        value: keras.KerasTensor,
        key: keras.KerasTensor | None = None,
        return_attention_scores: bool = False,
        cache: keras.KerasTensor | None = None,
        **_: Any,
    ) -> keras.KerasTensor | tuple[keras.KerasTensor, ...]:
        key_shape = value.shape if key is None else key.shape
        shape = self.compute_output_shape(query.shape, value.shape, key_shape)
        results = [keras.KerasTensor(shape, dtype=self.compute_dtype)]
        if return_attention_scores:
            axes, batch = self._axes(len(query.shape))
            key_positions = [value.shape[a] for a in axes] if cache is None else [cache.shape[3]]
            scores_shape = (
                *[query.shape[a] for a in batch],
                self.num_heads,
                *[query.shape[a] for a in axes],
                *key_positions,
            )
            results.append(keras.KerasTensor(scores_shape, dtype=self.compute_dtype))
        if cache is not None:
            results.append(keras.KerasTensor(cache.shape, dtype=cache.dtype))
        return results[0] if len(results) == 1 else tuple(results)

    def get_config(self) -> dict[str, Any]:
        serialize = keras.saving.serialize_keras_object
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "use_gate": self.use_gate,
            "output_shape": self._output_shape,
            "attention_axes": self.attention_axes,
            "sliding_window": self._sliding_window,
            "kernel_initializer": serialize(self.kernel_initializer),
            "bias_initializer": serialize(self.bias_initializer),
            "kernel_regularizer": serialize(self.kernel_regularizer),
            "bias_regularizer": serialize(self.bias_regularizer),
            "activity_regularizer": serialize(self.projection_activity_regularizer),
            "kernel_constraint": serialize(self.kernel_constraint),
            "bias_constraint": serialize(self.bias_constraint),
            "seed": self.seed,
            "chunk_size": self.chunk_size,
            "position_encoding": self.position_encoding,
        }


@keras.saving.register_keras_serializable(package="selfattention")
class PositionalEmbedding(keras.layers.Layer):
    """Token embedding times `sqrt(d_model)` plus the sinusoidal encoding (Vaswani et al., 3.4-3.5).

    Call: integer tokens `(B, T)` -> `(B, T, d_model)`, with `T <= max_length`; optional
    `start` (int or scalar tensor): the tokens are at positions `start..start+T-1` (for
    incremental decoding, one new token at position `start`), `start + T <= max_length`.
    """

    def __init__(
        self, vocab_size: int, d_model: int, max_length: int = 2048, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        for name, value in (("vocab_size", vocab_size), ("d_model", d_model)):
            _check_positive_int(value, name)
        _check_positive_int(max_length, "max_length")
        self.vocab_size, self.d_model, self.max_length = vocab_size, d_model, max_length
        self.embedding = keras.layers.Embedding(vocab_size, d_model)
        self.encoding = ops.convert_to_tensor(positional_encoding(max_length, d_model))  # (L, d)

    def call(self, tokens: Tensor, start: Tensor | int = 0) -> Tensor:
        length = ops.shape(tokens)[-1]
        x = self.embedding(tokens) * math.sqrt(self.d_model)  # (B, T, d_model)
        if isinstance(start, int) and start == 0:
            return x + ops.cast(self.encoding[:length], x.dtype)
        if isinstance(start, bool | float) or (
            isinstance(start, int)
            and isinstance(length, int)
            and not 0 <= start <= self.max_length - length
        ):
            raise ValueError(
                "`start` must be an integer in [0, max_length - T] = "
                f"[0, {self.max_length - length}]. Received: start={start!r}"
            )
        positions = ops.cast(start, "int32") + ops.arange(length)  # (T,)
        return x + ops.cast(ops.take(self.encoding, positions, axis=0), x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "d_model": self.d_model,
            "max_length": self.max_length,
        }


class _Block(keras.layers.Layer):
    """What both Transformer blocks share: sizes, checks, the feed-forward net and residuals."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        norm_first: bool = False,
        **kwargs: Any,
    ) -> None:
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

    def _attention(self) -> MultiHeadAttention:
        return MultiHeadAttention(
            self.num_heads, self.d_model // self.num_heads, dropout=self.dropout
        )

    def _residual(
        self,
        x: Tensor,
        norm: Callable[[Tensor], Tensor],
        sublayer: Callable[[Tensor], Tensor],
        training: bool | None,
    ) -> Tensor:
        """Post-norm (the paper): norm(x + f(x)). Pre-norm (`norm_first`): x + f(norm(x))."""
        if self.norm_first:
            return x + self.drop(sublayer(norm(x)), training=training)
        return norm(x + self.drop(sublayer(x), training=training))

    def get_config(self) -> dict[str, Any]:
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
    pre-norm variant (used by GPT-2, 2019; analysed by Xiong et al., 2020). Call: `x`
    `(B, T, d_model)`, optional `attention_mask` `(B, T, T)`, `use_causal_mask` ->
    `(B, T, d_model)`.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        norm_first: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(d_model, num_heads, d_ff, dropout, norm_first, **kwargs)
        self.attention = self._attention()
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-6)

    def call(
        self,
        x: Tensor,
        attention_mask: Tensor | None = None,
        training: bool | None = None,
        use_causal_mask: bool = False,
    ) -> Tensor:
        def attend(y: Tensor) -> Tensor:
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

    Incremental decoding: `cache = block.init_cache(context, max_length)`, then
    `x_t, cache = block(x_new, context, cache=cache, cache_update_index=t)` for the new
    positions `t..t+T-1` only (`self_mask`, if any, `(B, T, max_length)`). The cache is the
    pair `(self_cache, cross_cache)`: the self-attention's keys and values, written at each
    step, and the cross-attention's keys and values of `context`, computed once.
    With `return_attention_scores=True` the call returns `(x, weights, cache)`.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        norm_first: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(d_model, num_heads, d_ff, dropout, norm_first, **kwargs)
        self.self_attention = self._attention()
        self.cross_attention = self._attention()
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.norm3 = keras.layers.LayerNormalization(epsilon=1e-6)

    def call(
        self,
        x: Tensor,
        context: Tensor,
        self_mask: Tensor | None = None,
        context_mask: Tensor | None = None,
        training: bool | None = None,
        return_attention_scores: bool = False,
        cache: tuple[Tensor, Tensor] | None = None,
        cache_update_index: Tensor | int | None = None,
    ) -> Tensor | tuple[Any, ...]:
        if cache is not None and (not isinstance(cache, tuple | list) or len(cache) != 2):
            raise ValueError(
                "`cache` must be the pair (self_cache, cross_cache) made by `init_cache`. "
                f"Received: cache of type {type(cache).__name__}"
            )
        if (cache is None) != (cache_update_index is None):
            raise ValueError(
                "`cache` and `cache_update_index` go together (both or neither). Received: "
                f"cache={'None' if cache is None else 'a pair'}, "
                f"cache_update_index={cache_update_index!r}"
            )
        self_cache, cross_cache = (None, None) if cache is None else cache
        scores: list[Tensor] = []

        def attend_self(y: Tensor) -> Tensor:
            nonlocal self_cache
            if self_cache is None:
                return self.self_attention(
                    y, y, attention_mask=self_mask, training=training, use_causal_mask=True
                )
            out, self_cache = self.self_attention(
                y,
                y,
                attention_mask=self_mask,
                training=training,
                use_causal_mask=True,
                cache=self_cache,
                cache_update_index=cache_update_index,
            )
            return out

        def attend_context(y: Tensor) -> Tensor:
            out, weights, *_ = self.cross_attention(
                y,
                context,
                attention_mask=context_mask,
                training=training,
                return_attention_scores=True,
                cache=cross_cache,  # None, or the keys and values of `context`
            )
            scores.append(weights)
            return out

        x = self._residual(x, self.norm1, attend_self, training)
        x = self._residual(x, self.norm2, attend_context, training)
        x = self._residual(x, self.norm3, self.ffn, training)
        results = [x, scores[0]] if return_attention_scores else [x]
        if cache is not None:
            results.append((self_cache, cross_cache))
        return results[0] if len(results) == 1 else tuple(results)

    def init_cache(self, context: Tensor, max_length: int) -> tuple[Tensor, Tensor]:
        """The pair `(self_cache, cross_cache)` that starts incremental decoding: an empty
        self-attention cache `(B, 2, h, max_length, d_k)` and the cross-attention's keys and
        values of `context` `(B, S, d_model)`, `(B, 2, h, S, d_k)`, computed once here.
        The block must be built (called once)."""
        if not self.built:
            raise ValueError(
                "`init_cache` needs a built block (call it once first). Received: an unbuilt block"
            )
        context = ops.convert_to_tensor(context)
        batch_size = int(ops.shape(context)[0])
        self_cache = self.self_attention.init_cache(batch_size, max_length, context.dtype)
        return self_cache, self.cross_attention.compute_cache(context)
