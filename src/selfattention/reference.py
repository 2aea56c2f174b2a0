r"""Attention in NumPy, written to be read next to its equations.

Every function here is the plainest correct NumPy for one formula of the book: the formula is
the code, with a shape comment on every line that makes a tensor. The input checks live in
``selfattention._checks``, one call at the top of each function. The faster versions of
attention that the package exports as ``sa.scaled_dot_product_attention`` and
``sa.chunked_attention`` live in :mod:`selfattention.fast`, and the tests hold them equal to
these.

Shape legend, used in every docstring and comment of the package:
``B`` batch, ``T`` query length, ``S`` key/value length, ``h`` heads, ``d_k`` key depth,
``d_v`` value depth, ``d_model`` model width. ``...`` stands for any leading batch dimensions.

Conventions shared by every function of the package:

* A mask is boolean, ``True`` means *may attend*. It must broadcast to ``(..., T, S)``.
* A masked score becomes :math:`-\infty`, so its weight is exactly zero. A query row whose mask
  allows nothing gets weights 0 and output 0 (not a uniform average, not NaN).
* Computation runs in the input's floating dtype, at least float32 (integers become float64;
  float16 is computed in float32 and returned as float16).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _checks

__all__ = [  # in the order of the source, which the book's API reference follows
    "KERAS_WEIGHT_NAMES",
    "softmax",
    "scaled_dot_product_attention",
    "causal_mask",
    "padding_mask",
    "positional_encoding",
    "multi_head_attention",
    "additive_attention",
    "rotary_embedding",
    "alibi_slopes",
    "alibi_bias",
]

# The order of `keras.layers.MultiHeadAttention(...).get_weights()`, named as in the book.
KERAS_WEIGHT_NAMES = ("w_q", "b_q", "w_k", "b_k", "w_v", "b_v", "w_o", "b_o")


def softmax(x: ArrayLike, axis: int = -1) -> np.ndarray:
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
    x = _checks.as_float_array(x, "x")
    dtype, work = _checks.result_dtypes(x)
    x = x.astype(work)
    m = np.max(x, axis=axis, keepdims=True)
    m[~np.isfinite(m)] = 0  # an all -inf slice: avoid (-inf) - (-inf) = NaN
    e = np.exp(x - m)  # every exponent <= 0
    total = np.sum(e, axis=axis, keepdims=True)
    total[total == 0] = 1  # an all -inf slice: 0 / 1 = 0
    return (e / total).astype(dtype)


def scaled_dot_product_attention(
    query: ArrayLike,
    key: ArrayLike,
    value: ArrayLike,
    mask: ArrayLike | None = None,
    scale: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
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
    query, key, value, mask, scale, dtype, work = _checks.attention(query, key, value, mask, scale)
    q, k, v = query.astype(work), key.astype(work), value.astype(work)

    scores = q @ np.swapaxes(k, -1, -2) * scale  # (..., T, S)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)  # (..., T, S): a masked key gets weight 0
    weights = softmax(scores, axis=-1)  # (..., T, S): each row sums to 1
    output = weights @ v  # (..., T, d_v)
    return output.astype(dtype), weights.astype(dtype)


def causal_mask(length: int) -> np.ndarray:
    """`(T, T)` boolean mask, True on and below the diagonal: position `t` sees `0..t`."""
    _checks.check_positive_int(length, "length")
    return np.tril(np.ones((length, length), dtype=bool))


def padding_mask(tokens: ArrayLike, pad_id: int = 0) -> np.ndarray:
    """`(B, 1, S)` boolean mask from token ids `(B, S)`: True where the key is not padding.

    It broadcasts to the `(B, T, S)` masks taken by :func:`scaled_dot_product_attention` and
    :func:`multi_head_attention` (combine with ``&``, e.g. with :func:`causal_mask`).
    """
    tokens = _checks.tokens(tokens)
    return (tokens != pad_id)[:, None, :]  # (B, 1, S)


def positional_encoding(length: int, depth: int, dtype: DTypeLike = "float32") -> np.ndarray:
    r"""Sinusoidal positional encoding of Vaswani et al. (2017), section 3.5, `(length, depth)`.

    .. math:: PE_{(pos, 2i)} = \sin(pos / 10000^{2i/d}), \quad
              PE_{(pos, 2i+1)} = \cos(pos / 10000^{2i/d})
    """
    _checks.check_positive_int(length, "length")
    _checks.check_positive_int(depth, "depth")
    pos = np.arange(length)[:, None]  # (length, 1)
    two_i = np.arange(0, depth, 2)  # (ceil(depth / 2),)
    angles = pos / np.power(10000.0, two_i / depth)  # (length, ceil(depth / 2))
    pe = np.zeros((length, depth))
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles[:, : depth // 2])
    return pe.astype(dtype)


def multi_head_attention(
    query: ArrayLike,
    value: ArrayLike,
    key: ArrayLike | None = None,
    *,
    w_q: ArrayLike,
    w_k: ArrayLike,
    w_v: ArrayLike,
    w_o: ArrayLike,
    b_q: ArrayLike | None = None,
    b_k: ArrayLike | None = None,
    b_v: ArrayLike | None = None,
    b_o: ArrayLike | None = None,
    mask: ArrayLike | None = None,
    use_causal_mask: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
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
    kernels = {"w_q": w_q, "w_k": w_k, "w_v": w_v, "w_o": w_o}
    key = value if key is None else key
    query, key, value, w = _checks.multi_head(query, key, value, kernels)

    def project(x: np.ndarray, kernel: np.ndarray, bias: ArrayLike | None) -> np.ndarray:
        # (B, L, d_model) x (d_model, h, d) -> (B, h, L, d)
        y = np.einsum("bld,dhk->bhlk", x, kernel, optimize=True)
        return y if bias is None else y + np.asarray(bias)[:, None, :]  # bias (h, d) per head

    q = project(query, w["w_q"], b_q)  # (B, h, T, d_k)
    k = project(key, w["w_k"], b_k)  # (B, h, S, d_k)
    v = project(value, w["w_v"], b_v)  # (B, h, S, d_v)

    T, S = q.shape[-2], k.shape[-2]
    keep = _checks.mask(mask, (query.shape[0], T, S))  # (B, T, S) or None
    keep = None if keep is None else keep[:, None]  # (B, 1, T, S): the same for every head
    if use_causal_mask:
        causal = np.tril(np.ones((T, S), dtype=bool))  # (T, S)
        keep = causal if keep is None else keep & causal
    heads, weights = scaled_dot_product_attention(q, k, v, mask=keep)  # (B, h, T, d_v)
    output = np.einsum("bhtv,hvo->bto", heads, w["w_o"], optimize=True)  # (B, T, d_out)
    if b_o is not None:
        output = output + b_o
    return output, weights


# ------------------------------------------------------------------ additive attention
def additive_attention(
    query: ArrayLike,
    key: ArrayLike,
    value: ArrayLike,
    w_q: ArrayLike,
    w_k: ArrayLike,
    v_a: ArrayLike,
    mask: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Additive attention of Bahdanau et al. (2015), whose score is a one-hidden-layer network:

    .. math:: \mathrm{score}(q, k) = v_a^\top \tanh(W_q q + W_k k)

    (their equation for :math:`e_{ij}`, with the decoder state as query and the annotations as
    keys). The weights are the softmax of the scores over the keys, the output their average
    of the values, exactly as in :func:`scaled_dot_product_attention`. Written with row
    vectors, :math:`W_q q` is ``query @ w_q``.

    Args:
        query: `(..., T, d_q)`.
        key: `(..., S, d_k)`.
        value: `(..., S, d_v)`.
        w_q: `(d_q, d_a)`, the query projection into the hidden layer of width `d_a`.
        w_k: `(d_k, d_a)`, the key projection.
        v_a: `(d_a,)`, the output vector of the hidden layer.
        mask: optional boolean, broadcastable to `(..., T, S)`; True = may attend.
            A query row with no True gets weights 0 and output 0.

    Returns:
        `(output, weights)`: `output` `(..., T, d_v)`, `weights` `(..., T, S)`. The plain form
        holds a `(..., T, S, d_a)` array of hidden activations.
    """
    query, key, value, w_q, w_k, v_a, mask, dtype, work = _checks.additive(
        query, key, value, w_q, w_k, v_a, mask
    )
    q, k, v = query.astype(work), key.astype(work), value.astype(work)

    hidden = np.tanh(
        (q @ w_q)[..., :, None, :] + (k @ w_k)[..., None, :, :]
    )  # (..., T, S, d_a): tanh(W_q q_i + W_k k_j) for every pair
    scores = hidden @ v_a  # (..., T, S)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)  # (..., T, S): a masked key gets weight 0
    weights = softmax(scores, axis=-1)  # (..., T, S)
    output = weights @ v  # (..., T, d_v)
    return output.astype(dtype), weights.astype(dtype)


# ------------------------------------------------------------------ positions: RoPE and ALiBi
def rotary_embedding(
    x: ArrayLike, positions: ArrayLike | None = None, base: float = 10000.0
) -> np.ndarray:
    r"""Rotary position embedding (RoPE) of Su et al. (RoFormer), section 3.4.2.

    Features are taken in pairs :math:`(x_{2i}, x_{2i+1})`, and the pair of a vector at
    position :math:`m` is rotated by the angle :math:`m\,\theta_i`, with
    :math:`\theta_i = \mathrm{base}^{-2i/d}`:

    .. math:: \begin{pmatrix} x'_{2i} \\ x'_{2i+1} \end{pmatrix} =
              \begin{pmatrix} \cos m\theta_i & -\sin m\theta_i \\
                              \sin m\theta_i & \cos m\theta_i \end{pmatrix}
              \begin{pmatrix} x_{2i} \\ x_{2i+1} \end{pmatrix}

    Applied to queries and keys (not values), it makes the score
    :math:`q'_m \cdot k'_n` depend on the positions only through :math:`m - n`, because
    :math:`R_m^\top R_n = R_{n-m}`. Rotations keep every norm.

    Args:
        x: `(..., T, d)` with `d` even (queries or keys of one head).
        positions: the position of each of the `T` vectors, broadcastable to `(..., T)`;
            default `0, 1, ..., T - 1`. Need not be integers.
        base: positive; the longest wavelength is about `2 pi base`.

    Returns:
        The rotated `x`, of its shape and floating dtype (float16 is computed in float32).
    """
    x = _checks.as_float_array(x, "x")
    _checks.check_rank(x, "x")
    if x.shape[-1] % 2:
        raise ValueError(
            f"The last dimension of `x` (d) must be even: features are rotated in pairs. "
            f"Received: x.shape={x.shape}"
        )
    if isinstance(base, bool) or not isinstance(base, int | float | np.number) or not base > 0:
        raise ValueError(f"`base` must be a positive number. Received: base={base!r}")
    T, d = x.shape[-2], x.shape[-1]
    if positions is None:
        positions = np.arange(T)
    positions = _checks.as_float_array(positions, "positions")
    try:
        np.broadcast_shapes(positions.shape, x.shape[:-1])
    except ValueError:
        raise ValueError(
            f"`positions` must broadcast to (..., T) = {x.shape[:-1]}. "
            f"Received: positions.shape={positions.shape}"
        ) from None
    dtype, work = _checks.result_dtypes(x)
    x = x.astype(work)

    theta = float(base) ** (-np.arange(0, d, 2) / d)  # (d / 2,): theta_i = base^(-2i/d)
    angles = positions.astype(work)[..., None] * theta  # (..., T, d / 2): m theta_i
    cos, sin = np.cos(angles), np.sin(angles)  # (..., T, d / 2)
    x_even, x_odd = x[..., 0::2], x[..., 1::2]  # (..., T, d / 2) each: the pairs
    out = np.empty(np.broadcast_shapes(x.shape, (*angles.shape[:-1], d)), dtype=work)
    out[..., 0::2] = x_even * cos - x_odd * sin  # (..., T, d / 2)
    out[..., 1::2] = x_even * sin + x_odd * cos  # (..., T, d / 2)
    return out.astype(dtype)


def alibi_slopes(num_heads: int) -> np.ndarray:
    r"""The head-specific slopes of ALiBi (Press et al. 2022), `(h,)` float64.

    For `h` a power of two, the geometric sequence that starts at :math:`2^{-8/h}` and has
    that ratio: :math:`m_i = 2^{-8 i / h}`, `i = 1..h` (for 8 heads: 1/2, 1/4, ..., 1/256),
    as in section 3 of the paper. For other `h` (the paper trains only powers of two), the
    rule of the authors' code: the slopes of the largest power of two `p < h`, followed by
    every other slope of the sequence for `2p` (its 1st, 3rd, ...), `h - p` of them.
    """
    _checks.check_positive_int(num_heads, "num_heads")

    def power_of_two(n: int) -> np.ndarray:
        return 2.0 ** (-8.0 * np.arange(1, n + 1) / n)  # (n,)

    p = 2 ** int(np.floor(np.log2(num_heads)))  # the largest power of two <= num_heads
    if p == num_heads:
        return power_of_two(p)
    return np.concatenate([power_of_two(p), power_of_two(2 * p)[0::2][: num_heads - p]])


def alibi_bias(num_heads: int, query_length: int, key_length: int) -> np.ndarray:
    r"""ALiBi's linear biases, `(h, T, S)`, to add to the scores before the softmax.

    .. math:: \mathrm{bias}_{h, i, j} = -m_h \, |\,p_i - j\,|

    with :math:`m_h` from :func:`alibi_slopes`, key `j` at position `j` and query `i` at
    position :math:`p_i = i + S - T` (the queries are the last `T` of the `S` positions, as
    when a decoder extends a sequence; :math:`p_i = i` when `T = S`). For the keys a causal
    mask keeps (:math:`j \le p_i`) this is the paper's :math:`-m_h (p_i - j)`; keys after the
    query, seen only without a causal mask, get the symmetric penalty.

    Args:
        num_heads: `h`.
        query_length: `T`, at most `key_length`.
        key_length: `S`.
    """
    _checks.check_positive_int(num_heads, "num_heads")
    _checks.check_positive_int(query_length, "query_length")
    _checks.check_positive_int(key_length, "key_length")
    if query_length > key_length:
        raise ValueError(
            "`query_length` (T) must be at most `key_length` (S): the queries are the last T "
            f"of the S positions. Received: query_length={query_length}, key_length={key_length}"
        )
    query_positions = np.arange(query_length) + key_length - query_length  # (T,)
    distance = np.abs(query_positions[:, None] - np.arange(key_length))  # (T, S)
    return -alibi_slopes(num_heads)[:, None, None] * distance  # (h, T, S)
