r"""The backward pass of scaled dot-product attention in NumPy, written next to its equations.

For one query block the forward pass is

.. math:: S = \mathrm{scale} \cdot QK^\top + M, \quad P = \mathrm{softmax}_\mathrm{row}(S),
          \quad O = PV,

with :math:`M` 0 where the mask allows and :math:`-\infty` where it forbids. Given the gradient
of a loss with respect to the output, :math:`dO = \partial L / \partial O`, the chain rule gives
(chapter 4's page on the backward pass derives each line)

.. math:: dV = P^\top dO, \quad dP = dO\, V^\top, \quad
          dS = P \circ \bigl(dP - \mathrm{rowsum}(dP \circ P)\bigr), \quad
          dQ = \mathrm{scale} \cdot dS\, K, \quad dK = \mathrm{scale} \cdot dS^\top Q,

and :math:`\mathrm{rowsum}(dP \circ P) = \mathrm{rowsum}(dO \circ O)`.

:func:`attention_backward` is that list of formulas, holding the `(..., T, S)` matrices `P`,
`dP` and `dS`. :func:`chunked_attention_backward` is the recomputation of memory-efficient
attention (Rabe & Staats 2021; Dao et al. 2022, FlashAttention): the forward pass
(:func:`chunked_attention_forward`) keeps only the output `O` and the log-sum-exp `L` of each
row of scores; the backward pass recomputes `P` block by block of keys as `exp(S - L)`, so it
never holds a `(T, S)` matrix.

Shape legend: ``B`` batch, ``T`` query length, ``S`` key/value length, ``d_k`` key depth,
``d_v`` value depth; ``...`` any leading batch dimensions (they broadcast; a gradient has the
shape of its input). A fully masked query row has output 0 and contributes no gradient.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from . import _checks
from .reference import softmax

__all__ = [  # source order
    "attention_backward",
    "chunked_attention_forward",
    "chunked_attention_backward",
]


def attention_backward(
    query: ArrayLike,
    key: ArrayLike,
    value: ArrayLike,
    grad_output: ArrayLike,
    mask: ArrayLike | None = None,
    scale: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradients of :math:`O = \mathrm{softmax}(\mathrm{scale} \cdot QK^\top + M)\,V` with
    respect to `query`, `key` and `value`, given `grad_output` :math:`= \partial L / \partial O`.

    The forward pass is recomputed here (the plain way: it holds the `(..., T, S)` weights).

    Args:
        query: `(..., T, d_k)`.
        key: `(..., S, d_k)`.
        value: `(..., S, d_v)`.
        grad_output: `(..., T, d_v)`, the gradient of the loss with respect to the output.
        mask: optional boolean, broadcastable to `(..., T, S)`; True = may attend. A fully
            masked query row has output 0 and sends no gradient to anything.
        scale: positive number multiplying the scores; default `1 / sqrt(d_k)`.

    Returns:
        `(d_query, d_key, d_value)`, each of the shape and floating dtype of its input.
    """
    query, key, value, mask, scale, dtype, work = _checks.attention(query, key, value, mask, scale)
    scale = float(scale)  # a Python float: float32 inputs stay float32 (NumPy 2 promotion)
    batch = _checks.batch_shape(query, key, value)
    d_out = _grad_output(grad_output, (*batch, query.shape[-2], value.shape[-1]))
    q, k, v, d_out = (x.astype(work) for x in (query, key, value, d_out))

    scores = q @ np.swapaxes(k, -1, -2) * scale  # (..., T, S)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)  # (..., T, S)
    p = softmax(scores, axis=-1)  # (..., T, S); a fully masked row is all 0

    d_value = np.swapaxes(p, -1, -2) @ d_out  # (..., S, d_v): dV = P^T dO
    d_p = d_out @ np.swapaxes(v, -1, -2)  # (..., T, S): dP = dO V^T
    d_s = p * (d_p - np.sum(d_p * p, axis=-1, keepdims=True))  # (..., T, S): the softmax step
    d_query = d_s @ k * scale  # (..., T, d_k): dQ = scale dS K
    d_key = np.swapaxes(d_s, -1, -2) @ q * scale  # (..., S, d_k): dK = scale dS^T Q

    return (
        _sum_to_shape(d_query, query.shape).astype(dtype),
        _sum_to_shape(d_key, key.shape).astype(dtype),
        _sum_to_shape(d_value, value.shape).astype(dtype),
    )


def chunked_attention_forward(
    query: ArrayLike,
    key: ArrayLike,
    value: ArrayLike,
    mask: ArrayLike | None = None,
    scale: float | None = None,
    chunk_size: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Attention over blocks of `chunk_size` keys, returning what the backward pass needs.

    The online softmax of :func:`selfattention.fast.chunked_attention`, which in addition returns
    the log-sum-exp of every row of scores,
    :math:`L_i = \log \sum_j \exp(S_{ij}) = m_i + \log \ell_i` (running maximum `m`, running
    sum `l`). With `L`, any weight is recomputed from its score alone:
    :math:`P_{ij} = \exp(S_{ij} - L_i)`.

    Args:
        query, key, value, mask, scale: as in :func:`attention_backward`.
        chunk_size: number of keys per block; positive, need not divide `S`.

    Returns:
        `(output, logsumexp)`: `output` `(..., T, d_v)` and `logsumexp` `(..., T)`, in the
        computation dtype (at least float32); `logsumexp` is `-inf` for a fully masked row.
    """
    query, key, value, mask, scale, dtype, work = _checks.attention(query, key, value, mask, scale)
    scale = float(scale)  # a Python float: float32 inputs stay float32 (NumPy 2 promotion)
    _checks.check_positive_int(chunk_size, "chunk_size")
    batch = _checks.batch_shape(query, key, value)
    T, S = query.shape[-2], key.shape[-2]
    keep = None if mask is None else np.broadcast_to(mask, (*batch, T, S))
    q = query.astype(work)  # (..., T, d_k)

    m = np.full((*batch, T, 1), -np.inf, dtype=work)  # running max of the scores
    total = np.zeros((*batch, T, 1), dtype=work)  # running sum of exp(score - m)
    acc = np.zeros((*batch, T, value.shape[-1]), dtype=work)  # running sum of exp(...) V
    for start in range(0, S, chunk_size):
        block = slice(start, start + chunk_size)
        k = key[..., block, :].astype(work)  # (..., c, d_k)
        v = value[..., block, :].astype(work)  # (..., c, d_v)
        scores = q @ np.swapaxes(k, -1, -2) * scale  # (..., T, c)
        if keep is not None:
            scores = np.where(keep[..., block], scores, -np.inf)  # (..., T, c)
        m_new = np.maximum(m, scores.max(axis=-1, keepdims=True))  # (..., T, 1)
        m_safe = np.where(np.isfinite(m_new), m_new, 0)  # a row with nothing allowed yet
        correction = np.exp(m - m_safe)  # (..., T, 1): rescales the old sums
        p = np.exp(scores - m_safe)  # (..., T, c): exp(-inf) = 0 for masked keys
        total = total * correction + p.sum(axis=-1, keepdims=True)  # (..., T, 1)
        acc = acc * correction + p @ v  # (..., T, d_v)
        m = m_new

    output = np.divide(acc, total, out=np.zeros_like(acc), where=total > 0)  # (..., T, d_v)
    with np.errstate(divide="ignore"):
        logsumexp = (m + np.log(total))[..., 0]  # (..., T); -inf + log 0 = -inf if fully masked
    return output, logsumexp


def chunked_attention_backward(
    query: ArrayLike,
    key: ArrayLike,
    value: ArrayLike,
    output: ArrayLike,
    logsumexp: ArrayLike,
    grad_output: ArrayLike,
    mask: ArrayLike | None = None,
    scale: float | None = None,
    chunk_size: int = 512,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The gradients of :func:`attention_backward`, recomputing the weights block by block.

    Uses only what :func:`chunked_attention_forward` kept: the output `O` and the row
    log-sum-exp `L`. First :math:`D = \mathrm{rowsum}(dO \circ O)`, which equals the
    :math:`\mathrm{rowsum}(dP \circ P)` of the softmax step; then, for each block `c` of keys,

    .. math:: P_c = \exp(S_c - L), \quad dV_c = P_c^\top dO, \quad dP_c = dO\, V_c^\top, \quad
              dS_c = P_c \circ (dP_c - D), \quad dK_c = \mathrm{scale} \cdot dS_c^\top Q, \quad
              dQ \mathrel{+}= \mathrm{scale} \cdot dS_c K_c .

    Memory beyond the inputs and the gradients: a few `(..., T, chunk_size)` blocks.

    Args:
        query, key, value, mask, scale: as in :func:`attention_backward`.
        output: `(..., T, d_v)`, the forward output `O`.
        logsumexp: `(..., T)`, the forward row log-sum-exp `L` (`-inf` for a fully masked row).
        grad_output: `(..., T, d_v)`.
        chunk_size: number of keys per block; positive, need not divide `S`.

    Returns:
        `(d_query, d_key, d_value)`, each of the shape and floating dtype of its input.
    """
    query, key, value, mask, scale, dtype, work = _checks.attention(query, key, value, mask, scale)
    scale = float(scale)  # a Python float: float32 inputs stay float32 (NumPy 2 promotion)
    _checks.check_positive_int(chunk_size, "chunk_size")
    batch = _checks.batch_shape(query, key, value)
    T, S = query.shape[-2], key.shape[-2]
    d_out = _grad_output(grad_output, (*batch, T, value.shape[-1])).astype(work)  # (..., T, d_v)
    o = _grad_output(output, (*batch, T, value.shape[-1]), "output").astype(work)
    lse = _checks.as_float_array(logsumexp, "logsumexp")
    try:
        fits = np.broadcast_shapes(lse.shape, (*batch, T)) == (*batch, T)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"`logsumexp` must broadcast to (..., T) = {(*batch, T)}. "
            f"Received: logsumexp.shape={lse.shape}"
        )
    keep = None if mask is None else np.broadcast_to(mask, (*batch, T, S))
    q = query.astype(work)  # (..., T, d_k)

    lse = np.broadcast_to(lse.astype(work), (*batch, T))[..., None]  # (..., T, 1)
    lse = np.where(np.isfinite(lse), lse, np.inf)  # a fully masked row: exp(s - inf) = 0
    d_sum = np.sum(d_out * o, axis=-1, keepdims=True)  # (..., T, 1): D = rowsum(dO o O)
    d_query = np.zeros((*batch, T, query.shape[-1]), dtype=work)  # (..., T, d_k)
    d_key = np.zeros((*batch, S, key.shape[-1]), dtype=work)  # (..., S, d_k)
    d_value = np.zeros((*batch, S, value.shape[-1]), dtype=work)  # (..., S, d_v)
    for start in range(0, S, chunk_size):
        block = slice(start, start + chunk_size)
        k = key[..., block, :].astype(work)  # (..., c, d_k)
        v = value[..., block, :].astype(work)  # (..., c, d_v)
        scores = q @ np.swapaxes(k, -1, -2) * scale  # (..., T, c)
        if keep is not None:
            scores = np.where(keep[..., block], scores, -np.inf)  # (..., T, c)
        scores -= lse  # in place, as below: only two (..., T, c) blocks are alive at a time
        p = np.exp(scores, out=scores)  # (..., T, c): the weights, recomputed
        d_value[..., block, :] = np.swapaxes(p, -1, -2) @ d_out  # (..., c, d_v)
        d_p = d_out @ np.swapaxes(v, -1, -2)  # (..., T, c)
        d_p -= d_sum
        d_s = np.multiply(p, d_p, out=d_p)  # (..., T, c): P_c o (dP_c - D)
        d_key[..., block, :] = np.swapaxes(d_s, -1, -2) @ q * scale  # (..., c, d_k)
        d_query += d_s @ k * scale  # (..., T, d_k)

    return (
        _sum_to_shape(d_query, query.shape).astype(dtype),
        _sum_to_shape(d_key, key.shape).astype(dtype),
        _sum_to_shape(d_value, value.shape).astype(dtype),
    )


def _grad_output(x: ArrayLike, shape: tuple[int, ...], name: str = "grad_output") -> np.ndarray:
    """`x` as a float array of exactly the output's shape `(..., T, d_v)`."""
    x = _checks.as_float_array(x, name)
    if x.shape != tuple(shape):
        raise ValueError(
            f"`{name}` must have the shape of the attention output (..., T, d_v) = "
            f"{tuple(shape)}. Received: {name}.shape={x.shape}"
        )
    return x


def _sum_to_shape(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` over the batch dimensions that broadcasting added or stretched, so that the
    gradient of an input has that input's `shape`."""
    extra = grad.ndim - len(shape)
    grad = grad.sum(axis=tuple(range(extra))) if extra else grad
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=stretched, keepdims=True) if stretched else grad
