r"""Incremental decoding with a key/value cache, in NumPy.

A causal model that generates one token at a time recomputes, without a cache, the keys and
values of every earlier position at every step: step `t` costs :math:`O(t \cdot d_{model}^2)`
for the projections and :math:`O(t^2 d)` for attention over all `t` queries, although only the
newest query is new. With a cache, step `t` projects one position and lets one query attend to
the `t` cached keys: :math:`O(d_{model}^2 + t\,d)`. The outputs are the same, because under a
causal mask an earlier position's keys, values and output never depend on later tokens.

Shapes follow the package's legend; `t` is the number of positions decoded so far.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from . import _checks
from .reference import scaled_dot_product_attention

__all__ = ["KVCache", "cached_self_attention_step"]


class KVCache:
    """The keys `(..., h, t, d_k)` and values `(..., h, t, d_v)` of the positions decoded so
    far, for one attention layer, in buffers allocated once for `capacity` positions.

    Args:
        capacity: the most positions the cache will hold (the longest sequence to decode).
        batch_shape: the leading dimensions, e.g. `(B, h)`.
        d_k: key depth.
        d_v: value depth.
        dtype: floating dtype of the buffers.
    """

    def __init__(
        self,
        capacity: int,
        batch_shape: tuple[int, ...],
        d_k: int,
        d_v: int,
        dtype: type = np.float32,
    ) -> None:
        _checks.check_positive_int(capacity, "capacity")
        _checks.check_positive_int(d_k, "d_k")
        _checks.check_positive_int(d_v, "d_v")
        self._keys: np.ndarray = np.zeros(
            (*batch_shape, capacity, d_k), dtype
        )  # (..., capacity, d_k)
        self._values: np.ndarray = np.zeros(
            (*batch_shape, capacity, d_v), dtype
        )  # (..., capacity, d_v)
        self.length = 0  # positions held so far: t

    @property
    def capacity(self) -> int:
        return self._keys.shape[-2]

    @property
    def keys(self) -> np.ndarray:
        """`(..., t, d_k)`, a view of the positions held so far."""
        return self._keys[..., : self.length, :]

    @property
    def values(self) -> np.ndarray:
        """`(..., t, d_v)`, a view of the positions held so far."""
        return self._values[..., : self.length, :]

    def append(self, key: ArrayLike, value: ArrayLike) -> None:
        """Add the keys `(..., n, d_k)` and values `(..., n, d_v)` of `n` new positions."""
        key, value = np.asarray(key), np.asarray(value)
        expected = self._keys.shape[:-2]
        if key.shape[:-2] != expected or key.shape[-1] != self._keys.shape[-1]:
            raise ValueError(
                f"`key` must have shape (*{expected}, n, {self._keys.shape[-1]}). "
                f"Received: key.shape={key.shape}"
            )
        if value.shape != (*expected, key.shape[-2], self._values.shape[-1]):
            raise ValueError(
                f"`value` must have shape (*{expected}, {key.shape[-2]}, "
                f"{self._values.shape[-1]}). Received: value.shape={value.shape}"
            )
        n = key.shape[-2]
        if self.length + n > self.capacity:
            raise ValueError(
                f"The cache holds at most `capacity`={self.capacity} positions; it has "
                f"{self.length}. Received: {n} more"
            )
        self._keys[..., self.length : self.length + n, :] = key
        self._values[..., self.length : self.length + n, :] = value
        self.length += n


def cached_self_attention_step(
    x: ArrayLike,
    cache: KVCache,
    *,
    w_q: ArrayLike,
    w_k: ArrayLike,
    w_v: ArrayLike,
    w_o: ArrayLike,
    b_q: ArrayLike | None = None,
    b_k: ArrayLike | None = None,
    b_v: ArrayLike | None = None,
    b_o: ArrayLike | None = None,
) -> np.ndarray:
    """Causal multi-head self-attention for the newest position only, using and filling `cache`.

    Equal, position by position, to ``multi_head_attention(x_all, x_all, use_causal_mask=True,
    ...)`` over the whole sequence (the weights use the same Keras layout, see
    :func:`selfattention.reference.multi_head_attention`).

    Args:
        x: `(B, 1, d_model)`, the newest position's input.
        cache: a :class:`KVCache` with batch shape `(B, h)`, holding the earlier positions.
        w_q, w_k: `(d_model, h, d_k)`; w_v: `(d_model, h, d_v)`; w_o: `(h, d_v, d_out)`.
        b_q, b_k: `(h, d_k)`; b_v: `(h, d_v)`; b_o: `(d_out,)`; optional.

    Returns:
        `(B, 1, d_out)`, the attention output of the newest position.
    """
    x = _checks.as_float_array(x, "x")
    if x.ndim != 3 or x.shape[1] != 1:
        raise ValueError(f"`x` must have shape (B, 1, d_model). Received: x.shape={x.shape}")

    def project(kernel: ArrayLike, bias: ArrayLike | None) -> np.ndarray:
        # (B, 1, d_model) x (d_model, h, d) -> (B, h, 1, d)
        y = np.einsum("bld,dhk->bhlk", x, np.asarray(kernel))
        return y if bias is None else y + np.asarray(bias)[:, None, :]

    q = project(w_q, b_q)  # (B, h, 1, d_k): only the newest query
    cache.append(project(w_k, b_k), project(w_v, b_v))  # one more key and value per head
    heads, _ = scaled_dot_product_attention(q, cache.keys, cache.values)  # (B, h, 1, d_v)
    output = np.einsum("bhtv,hvo->bto", heads, np.asarray(w_o))  # (B, 1, d_out)
    return output if b_o is None else output + np.asarray(b_o)
