"""The fast paths of attention in NumPy: the same results as :mod:`selfattention.reference`,
computed with less memory traffic.

Why this module exists: the reference's softmax makes several fresh `(..., T, S)` arrays (the
shifted scores, their exponentials, the quotient), and each fresh array of that size is
allocated and first touched page by page. Here the one score matrix is overwritten in place,
so attention costs little more than its two matrix products (chapter 8 and `benchmarks/`
measure it), and :func:`chunked_attention` never holds the `(T, S)` scores at all.
The tests hold both functions equal to the reference on every case they cover.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from . import _checks

__all__ = ["scaled_dot_product_attention", "chunked_attention"]  # source order

# The softmax works on blocks of query rows holding about this many scores (1 MiB of float32),
# so its row-wise temporaries (max, sum) and its masked copies stay small.
_BLOCK_ELEMENTS = 2**18


def scaled_dot_product_attention(
    query: ArrayLike,
    key: ArrayLike,
    value: ArrayLike,
    mask: ArrayLike | None = None,
    scale: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Scaled dot-product attention, :math:`\mathrm{softmax}(QK^\top / \sqrt{d_k})\, V`,
    with the softmax computed in place in the score matrix.

    Same arguments, results and edge cases as
    :func:`selfattention.reference.scaled_dot_product_attention`.

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
    query, key, value, mask, scale, dtype, work = _checks.attention(query, key, value, mask, scale)

    q = np.multiply(query, scale, dtype=work)  # (..., T, d_k): scaling Q is cheaper than the scores
    scores = q @ np.swapaxes(key, -1, -2).astype(work, copy=False)  # (..., T, S)
    weights = _softmax_rows_in_place(scores, mask)  # (..., T, S), the same array
    output = weights @ value.astype(work, copy=False)  # (..., T, d_v)
    return output.astype(dtype, copy=False), weights.astype(dtype, copy=False)


def chunked_attention(
    query: ArrayLike,
    key: ArrayLike,
    value: ArrayLike,
    mask: ArrayLike | None = None,
    scale: float | None = None,
    chunk_size: int = 512,
) -> np.ndarray:
    """Exact attention computed over blocks of `chunk_size` keys, never holding `(T, S)` scores.

    The softmax is accumulated online (Milakov & Gimelshein 2018; Rabe & Staats 2021; the idea
    behind FlashAttention): for each block we keep the running maximum `m` of the scores, the
    running sum `l` of `exp(score - m)` and the running unnormalised output `acc`; when `m`
    grows, `l` and `acc` are rescaled by `exp(m_old - m_new)`. The result equals
    :func:`selfattention.reference.scaled_dot_product_attention` up to float rounding, for any
    `chunk_size`. Memory beyond the inputs and the output: one `(..., T, chunk_size)` block of
    scores. Time is still proportional to `T * S`: only the memory is linear.

    Args:
        query, key, value, mask, scale: as in :func:`scaled_dot_product_attention`.
        chunk_size: number of keys per block; positive, need not divide `S`.

    Returns:
        `output` `(..., T, d_v)` (the weights are never formed).
    """
    query, key, value, mask, scale, dtype, work = _checks.attention(query, key, value, mask, scale)
    _checks.check_positive_int(chunk_size, "chunk_size")
    T, S = query.shape[-2], key.shape[-2]
    batch = _checks.batch_shape(query, key, value)
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


def _online_softmax_step(
    scores: np.ndarray,
    v: np.ndarray,
    drop: np.ndarray | None,
    m: np.ndarray,
    total: np.ndarray,
    acc: np.ndarray,
) -> None:
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
