"""Attention in NumPy: the reference implementation the book reads next to its equations.

Shape legend, used in every docstring and comment of the package:
``B`` batch, ``T`` query length, ``S`` key/value length, ``h`` heads, ``d_k`` key depth,
``d_v`` value depth, ``d_model`` model width. ``...`` stands for any leading batch dimensions.

Conventions shared by every function here:

* A mask is boolean, ``True`` means *may attend*. It must broadcast to ``(..., T, S)``.
* A masked score is replaced by the most negative number of the dtype (``np.finfo(dtype).min``),
  and its weight is then set to exactly zero. A query row whose mask allows nothing therefore gets
  weights 0 and output 0 (not a uniform average, not NaN).
* Computation stays in the input's floating dtype (integers become float64). float16 input is
  computed in float32 inside the softmax and returned as float16.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "KERAS_WEIGHT_NAMES",
    "causal_mask",
    "chunked_attention",
    "multi_head_attention",
    "padding_mask",
    "positional_encoding",
    "scaled_dot_product_attention",
    "softmax",
]

# The order of `keras.layers.MultiHeadAttention(...).get_weights()`, named as in the book.
KERAS_WEIGHT_NAMES = ("w_q", "b_q", "w_k", "b_k", "w_v", "b_v", "w_o", "b_o")


# --------------------------------------------------------------------------------------------
# Input checks. Each raises with the argument's name, what was expected and what was received.
# --------------------------------------------------------------------------------------------
def _as_float_array(x, name: str) -> np.ndarray:
    """Return `x` as a floating array; integers and booleans become float64."""
    array = np.asarray(x)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must be a real numeric array. Received: dtype={array.dtype}")
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    return array


def _check_rank(x: np.ndarray, name: str, minimum: int = 2) -> None:
    if x.ndim < minimum:
        raise ValueError(
            f"`{name}` must have rank >= {minimum} (shape (..., length, depth)). "
            f"Received: {name}.shape={x.shape}"
        )


def _check_positive(value, name: str) -> None:
    if isinstance(value, bool) or not np.isscalar(value) or not value > 0:
        raise ValueError(f"`{name}` must be a positive number. Received: {name}={value!r}")


def _check_positive_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


def _compute_dtype(*arrays: np.ndarray) -> tuple[np.dtype, np.dtype]:
    """The dtype of the result and the (at least float32) dtype the softmax runs in."""
    dtype = np.result_type(*arrays)
    return dtype, np.promote_types(dtype, np.float32)


def _check_qkv(query, key, value):
    query = _as_float_array(query, "query")
    key = _as_float_array(key, "key")
    value = _as_float_array(value, "value")
    for name, x in (("query", query), ("key", key), ("value", value)):
        _check_rank(x, name)
    if key.shape[-1] != query.shape[-1]:
        raise ValueError(
            "`key` must have the same last dimension as `query` (d_k), expected "
            f"{query.shape[-1]}. Received: query.shape={query.shape}, key.shape={key.shape}"
        )
    if value.shape[-2] != key.shape[-2]:
        raise ValueError(
            "`value` must have as many positions as `key` (S), expected "
            f"{key.shape[-2]}. Received: key.shape={key.shape}, value.shape={value.shape}"
        )
    try:
        np.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    except ValueError:
        raise ValueError(
            "The leading (batch) dimensions of `query`, `key` and `value` must broadcast. "
            f"Received: query.shape={query.shape}, key.shape={key.shape}, value.shape={value.shape}"
        ) from None
    return query, key, value


def _check_mask(mask, scores_shape: tuple[int, ...]) -> np.ndarray | None:
    """Return `mask` as a boolean array that broadcasts to `scores_shape` `(..., T, S)`."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        if mask.dtype.kind not in "iuf" or not np.isin(mask, (0, 1)).all():
            raise ValueError(
                "`mask` must be boolean (True = may attend) or hold only 0 and 1. "
                f"Received: dtype={mask.dtype}, values={np.unique(mask)[:5]}"
            )
        mask = mask.astype(bool)
    try:
        broadcast = np.broadcast_shapes(mask.shape, scores_shape)
    except ValueError:
        broadcast = None
    if broadcast != tuple(scores_shape):
        raise ValueError(
            f"`mask` must broadcast to the scores' shape (..., T, S) = {tuple(scores_shape)}. "
            f"Received: mask.shape={mask.shape}"
        )
    return mask


def _check_scale(scale, d_k: int) -> float:
    if scale is None:
        return 1.0 / np.sqrt(d_k)
    _check_positive(scale, "scale")
    return float(scale)


# --------------------------------------------------------------------------------------------
# The formulas.
# --------------------------------------------------------------------------------------------
def softmax(x, axis: int = -1) -> np.ndarray:
    r"""Numerically stable softmax: :math:`e^{x_i - m} / \sum_j e^{x_j - m}` with `m = max(x)`.

    Subtracting the maximum :math:`m` changes nothing mathematically and keeps every exponent
    :math:`\le 0`, so nothing overflows however large `x` is.

    Args:
        x: array of any shape. ``-inf`` entries get probability 0; a slice that is all ``-inf``
            gets all zeros.
        axis: the axis that sums to one.

    Returns:
        An array of the shape and floating dtype of `x` (float16 is computed in float32).
    """
    x = _as_float_array(x, "x")
    dtype, work = _compute_dtype(x)
    x = x.astype(work, copy=False)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)  # an all -inf slice: avoid (-inf) - (-inf) = NaN
    e = np.exp(x - m)
    total = np.sum(e, axis=axis, keepdims=True)
    out = np.divide(e, total, out=np.zeros_like(e), where=total > 0)
    return out.astype(dtype, copy=False)


def scaled_dot_product_attention(query, key, value, mask=None, scale=None):
    r"""Scaled dot-product attention, equation (1) of Vaswani et al. (2017):

    .. math:: \mathrm{Attention}(Q, K, V) = \mathrm{softmax}(QK^\top / \sqrt{d_k})\, V

    Args:
        query: `(..., T, d_k)`.
        key: `(..., S, d_k)`.
        value: `(..., S, d_v)`.
        mask: optional boolean, broadcastable to `(..., T, S)`; True = may attend.
            A query row with no True gets weights 0 and output 0.
        scale: positive number multiplying the scores; default `1 / sqrt(d_k)`.

    Returns:
        `(output, weights)`: `output` `(..., T, d_v)`, `weights` `(..., T, S)`; every row of
        `weights` sums to 1 (or is all 0 for a fully masked row).
    """
    query, key, value = _check_qkv(query, key, value)
    scale = _check_scale(scale, query.shape[-1])
    dtype, work = _compute_dtype(query, key, value)
    batch = np.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    mask = _check_mask(mask, (*batch, query.shape[-2], key.shape[-2]))

    q = np.multiply(query, scale, dtype=work)  # (..., T, d_k): scaling Q is cheaper than the scores
    scores = q @ np.swapaxes(key, -1, -2).astype(work, copy=False)  # (..., T, S)
    weights = _softmax_rows_in_place(scores, mask)  # (..., T, S)
    output = weights @ value.astype(work, copy=False)  # (..., T, d_v)
    return output.astype(dtype, copy=False), weights.astype(dtype, copy=False)


def chunked_attention(query, key, value, mask=None, scale=None, chunk_size: int = 512):
    """Exact attention computed over blocks of `chunk_size` keys, never holding `(T, S)` scores.

    The softmax is accumulated online (Milakov & Gimelshein 2018; Rabe & Staats 2021; the idea
    behind FlashAttention): for each block we keep the running maximum `m` of the scores, the
    running sum `l` of `exp(score - m)` and the running unnormalised output `acc`; when `m`
    grows, `l` and `acc` are rescaled by `exp(m_old - m_new)`. The result equals
    :func:`scaled_dot_product_attention` up to float rounding, for any `chunk_size`.
    Memory beyond the inputs and the output: one `(..., T, chunk_size)` block of scores.

    Args:
        query, key, value, mask, scale: as in :func:`scaled_dot_product_attention`.
        chunk_size: number of keys per block; positive, need not divide `S`.

    Returns:
        `output` `(..., T, d_v)` (the weights are never formed).
    """
    query, key, value = _check_qkv(query, key, value)
    _check_positive_int(chunk_size, "chunk_size")
    scale = _check_scale(scale, query.shape[-1])
    dtype, work = _compute_dtype(query, key, value)
    T, S = query.shape[-2], key.shape[-2]
    batch = np.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    mask = _check_mask(mask, (*batch, T, S))
    keep = None if mask is None else np.broadcast_to(mask, (*batch, T, S))

    q = query.astype(work, copy=False)  # (..., T, d_k): no copy of Q (K is scaled block by block)
    m = np.full((*batch, T, 1), -np.inf, dtype=work)  # running max of the scores
    total = np.zeros((*batch, T, 1), dtype=work)  # running sum of exp(score - m)
    acc = np.zeros((*batch, T, value.shape[-1]), dtype=work)  # running sum of exp(...) @ V
    n_rows = int(np.prod(batch)) * T
    buffer = np.empty(n_rows * min(chunk_size, S), dtype=work)  # one block of scores, reused

    for start in range(0, S, chunk_size):
        block = slice(start, start + chunk_size)
        k = np.multiply(key[..., block, :], scale, dtype=work)  # (..., c, d_k): scale K, not scores
        v = value[..., block, :].astype(work, copy=False)  # (..., c, d_v)
        scores = buffer[: n_rows * k.shape[-2]].reshape(*batch, T, k.shape[-2])
        np.matmul(q, np.swapaxes(k, -1, -2), out=scores)  # (..., T, c)
        for rows in _row_blocks(scores.shape):
            drop = None if keep is None else ~keep[..., block][rows]
            _online_softmax_step(scores[rows], v, drop, m[rows], total[rows], acc[rows])

    output = np.divide(acc, total, out=acc, where=total > 0)  # (..., T, d_v); 0 if fully masked
    return output.astype(dtype, copy=False)


# --------------------------------------------------------------------------------------------
# The softmax, in place and one cache-sized block of query rows at a time. A long sequence's
# `(T, S)` scores do not fit in the CPU cache; a block of rows does, so the four passes of the
# softmax (max, exp, sum, normalise) read main memory once instead of four times. Same result.
# --------------------------------------------------------------------------------------------
_BLOCK_ELEMENTS = 2**18  # 1 MiB of float32 scores per block


def _row_blocks(shape: tuple[int, ...]) -> list:
    """Index expressions selecting consecutive blocks of rows `T` of an array `(..., T, S)`."""
    *batch, T, S = shape
    rows = max(1, _BLOCK_ELEMENTS // max(1, int(np.prod(batch)) * S))
    return [np.s_[..., start : start + rows, :] for start in range(0, T, rows)]


def _softmax_rows_in_place(scores: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Overwrite `scores` `(..., T, S)` with softmax over its last axis; masked entries and
    fully masked rows become 0."""
    keep = None if mask is None else np.broadcast_to(mask, scores.shape)
    for rows in _row_blocks(scores.shape):
        block = scores[rows]  # (..., r, S), a view
        drop = None if keep is None else ~keep[rows]
        if drop is not None:
            np.copyto(block, np.finfo(block.dtype).min, where=drop)
        block -= block.max(axis=-1, keepdims=True)
        np.exp(block, out=block)
        if drop is not None:
            np.copyto(block, 0, where=drop)
        total = block.sum(axis=-1, keepdims=True)  # (..., r, 1)
        np.divide(1, total, out=total, where=total > 0)  # a fully masked row keeps 0: all 0s
        block *= total
    return scores


def _online_softmax_step(scores, v, drop, m, total, acc) -> None:
    """One tile of the online softmax, in place: `scores` `(..., r, c)` of `c` new keys with
    values `v` `(..., c, d_v)` update the running max `m`, sum `total` `(..., r, 1)` and
    unnormalised output `acc` `(..., r, d_v)` of `r` query rows."""
    if drop is not None:
        np.copyto(scores, np.finfo(scores.dtype).min, where=drop)
    m_new = np.maximum(m, scores.max(axis=-1, keepdims=True))  # (..., r, 1)
    correction = np.exp(m - m_new)  # rescales what was accumulated under the old max
    scores -= m_new
    p = np.exp(scores, out=scores)  # (..., r, c)
    if drop is not None:
        np.copyto(p, 0, where=drop)
    total *= correction
    total += p.sum(axis=-1, keepdims=True)
    acc *= correction
    acc += p @ v  # (..., r, d_v)
    m[...] = m_new


# --------------------------------------------------------------------------------------------
# Masks and positions.
# --------------------------------------------------------------------------------------------
def causal_mask(length: int) -> np.ndarray:
    """`(T, T)` boolean mask, True on and below the diagonal: position `t` sees `0..t`."""
    _check_positive_int(length, "length")
    return np.tril(np.ones((length, length), dtype=bool))


def padding_mask(tokens, pad_id: int = 0) -> np.ndarray:
    """`(B, 1, S)` boolean mask from token ids `(B, S)`: True where the key is not padding.

    It broadcasts to the `(B, T, S)` masks taken by :func:`scaled_dot_product_attention` and
    :func:`multi_head_attention` (combine with ``&``, e.g. with :func:`causal_mask`).
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or tokens.dtype.kind not in "iu":
        raise ValueError(
            "`tokens` must be a 2-D integer array of shape (B, S). "
            f"Received: shape={tokens.shape}, dtype={tokens.dtype}"
        )
    return (tokens != pad_id)[:, None, :]


def positional_encoding(length: int, depth: int, dtype="float32") -> np.ndarray:
    r"""Sinusoidal positional encoding of Vaswani et al. (2017), section 3.5, `(length, depth)`.

    .. math:: PE_{(pos, 2i)} = \sin(pos / 10000^{2i/d}), \quad
              PE_{(pos, 2i+1)} = \cos(pos / 10000^{2i/d})
    """
    _check_positive_int(length, "length")
    _check_positive_int(depth, "depth")
    pos = np.arange(length)[:, None]  # (length, 1)
    two_i = np.arange(0, depth, 2)  # (ceil(depth / 2),)
    angles = pos / np.power(10000.0, two_i / depth)  # (length, ceil(depth / 2))
    pe = np.zeros((length, depth))
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles[:, : depth // 2])
    return pe.astype(dtype)


# --------------------------------------------------------------------------------------------
# Multi-head attention from explicit weights (the Keras layout).
# --------------------------------------------------------------------------------------------
def multi_head_attention(
    query,
    value,
    key=None,
    *,
    w_q,
    w_k,
    w_v,
    w_o,
    b_q=None,
    b_k=None,
    b_v=None,
    b_o=None,
    mask=None,
    use_causal_mask=False,
):
    r"""Multi-head attention, section 3.2.2 of Vaswani et al. (2017), from explicit weights.

    .. math:: \mathrm{head}_i = \mathrm{Attention}(X_q W^Q_i, X_k W^K_i, X_v W^V_i), \quad
              \mathrm{MultiHead} = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_h) W^O

    The weights use the layout of `keras.layers.MultiHeadAttention`, so
    ``multi_head_attention(x, x, **dict(zip(KERAS_WEIGHT_NAMES, layer.get_weights())))``
    reproduces a Keras layer.

    Args:
        query: `(B, T, d_model)`.
        value: `(B, S, d_model_v)`.
        key: `(B, S, d_model_k)`; defaults to `value`.
        w_q, w_k: `(d_model, h, d_k)`; w_v: `(d_model_v, h, d_v)`; w_o: `(h, d_v, d_out)`.
        b_q, b_k: `(h, d_k)`; b_v: `(h, d_v)`; b_o: `(d_out,)`; optional.
        mask: boolean, broadcastable to `(B, T, S)`, True = may attend (the same mask for
            every head, as in Keras).
        use_causal_mask: also forbid attending to later positions.

    Returns:
        `(output, weights)`: `(B, T, d_out)` and the per-head weights `(B, h, T, S)`.
    """
    key = value if key is None else key
    query = _as_float_array(query, "query")
    key = _as_float_array(key, "key")
    value = _as_float_array(value, "value")
    kernels = {"w_q": w_q, "w_k": w_k, "w_v": w_v, "w_o": w_o}
    w_q, w_k, w_v, w_o = (_as_float_array(w, name) for name, w in kernels.items())
    for name, w in zip(kernels, (w_q, w_k, w_v, w_o), strict=True):
        if w.ndim != 3:
            raise ValueError(f"`{name}` must have rank 3. Received: {name}.shape={w.shape}")
    for name, x, w in (("query", query, w_q), ("key", key, w_k), ("value", value, w_v)):
        _check_rank(x, name, 3)
        if x.shape[-1] != w.shape[0]:
            raise ValueError(
                f"The last dimension of `{name}` must equal the first of its kernel, expected "
                f"{w.shape[0]}. Received: {name}.shape={x.shape}"
            )

    def project(x, w, b):  # (B, L, d_model) x (d_model, h, d) -> (B, h, L, d)
        y = np.einsum("bld,dhk->bhlk", x, w, optimize=True)
        return y if b is None else y + np.asarray(b)[:, None, :]  # bias (h, d) per head

    q = project(query, w_q, b_q)  # (B, h, T, d_k)
    k = project(key, w_k, b_k)  # (B, h, S, d_k)
    v = project(value, w_v, b_v)  # (B, h, S, d_v)

    T, S = q.shape[-2], k.shape[-2]
    if mask is not None:
        mask = _check_mask(mask, (query.shape[0], T, S))[..., None, :, :]  # (B, 1, T, S)
    if use_causal_mask:
        causal = np.tril(np.ones((T, S), dtype=bool))  # (T, S)
        mask = causal if mask is None else mask & causal
    heads, weights = scaled_dot_product_attention(q, k, v, mask=mask)  # (B, h, T, d_v)
    output = np.einsum("bhtv,hvo->bto", heads, w_o, optimize=True)  # (B, T, d_out)
    if b_o is not None:
        output = output + b_o
    return output, weights
