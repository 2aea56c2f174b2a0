"""Input checks of the NumPy functions, kept apart so that the formulas read like the equations.

Each check raises with the argument's name, what was expected and what was received, and
returns its input converted to what the formulas need: floating arrays (integers and booleans
become float64; float16 is computed in float32 and returned as float16), boolean masks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike


def as_float_array(x: ArrayLike, name: str) -> np.ndarray:
    """Return `x` as a floating array; integers and booleans become float64."""
    array = np.asarray(x)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must be a real numeric array. Received: dtype={array.dtype}")
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    return array


def check_rank(x: np.ndarray, name: str, minimum: int = 2) -> None:
    if x.ndim < minimum:
        raise ValueError(
            f"`{name}` must have rank >= {minimum} (shape (..., length, depth)). "
            f"Received: {name}.shape={x.shape}"
        )


def check_positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


def result_dtypes(*arrays: np.ndarray) -> tuple[np.dtype, np.dtype]:
    """The dtype of the result and the (at least float32) dtype the computation runs in."""
    dtype = np.result_type(*arrays)
    return dtype, np.promote_types(dtype, np.float32)


def qkv(query: ArrayLike, key: ArrayLike, value: ArrayLike) -> tuple[np.ndarray, ...]:
    """`query` `(..., T, d_k)`, `key` `(..., S, d_k)`, `value` `(..., S, d_v)` as float arrays."""
    query = as_float_array(query, "query")
    key = as_float_array(key, "key")
    value = as_float_array(value, "value")
    for name, x in (("query", query), ("key", key), ("value", value)):
        check_rank(x, name)
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
    return query, key, value


def batch_shape(query: np.ndarray, key: np.ndarray, value: np.ndarray) -> tuple[int, ...]:
    """The broadcast leading (batch) dimensions `...` of query, key and value."""
    try:
        return np.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    except ValueError:
        raise ValueError(
            "The leading (batch) dimensions of `query`, `key` and `value` must broadcast. "
            f"Received: query.shape={query.shape}, key.shape={key.shape}, value.shape={value.shape}"
        ) from None


def mask(mask: ArrayLike | None, scores_shape: tuple[int, ...]) -> np.ndarray | None:
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


def scale(scale: float | None, d_k: int) -> float:
    """The factor that multiplies the scores: `1 / sqrt(d_k)` unless given."""
    if scale is None:
        return 1.0 / d_k**0.5  # a Python float: it does not promote float32 arrays to float64
    if isinstance(scale, bool) or not isinstance(scale, int | float | np.integer | np.floating):
        raise ValueError(f"`scale` must be a positive number. Received: scale={scale!r}")
    if not scale > 0:
        raise ValueError(f"`scale` must be a positive number. Received: scale={scale!r}")
    return float(scale)


def attention(
    query: ArrayLike,
    key: ArrayLike,
    value: ArrayLike,
    mask_: ArrayLike | None,
    scale_: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, float, np.dtype, np.dtype]:
    """Every check of an attention call. Returns `(query, key, value, mask, scale, dtype,
    work)`: the inputs as floating arrays, the mask as booleans (or None), the scale, the
    dtype of the result and the dtype to compute in."""
    query, key, value = qkv(query, key, value)
    batch = batch_shape(query, key, value)
    checked_mask = mask(mask_, (*batch, query.shape[-2], key.shape[-2]))
    dtype, work = result_dtypes(query, key, value)
    return query, key, value, checked_mask, scale(scale_, query.shape[-1]), dtype, work


def additive(
    query: ArrayLike,
    key: ArrayLike,
    value: ArrayLike,
    w_q: ArrayLike,
    w_k: ArrayLike,
    v_a: ArrayLike,
    mask_: ArrayLike | None,
) -> tuple[
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray | None,
    np.dtype,
    np.dtype,
]:
    """The checks of `additive_attention`: inputs as float arrays, the mask as booleans."""
    query = as_float_array(query, "query")
    key = as_float_array(key, "key")
    value = as_float_array(value, "value")
    for name, x in (("query", query), ("key", key), ("value", value)):
        check_rank(x, name)
    if value.shape[-2] != key.shape[-2]:
        raise ValueError(
            "`value` must have as many positions as `key` (S), expected "
            f"{key.shape[-2]}. Received: key.shape={key.shape}, value.shape={value.shape}"
        )
    weights = {}
    for name, w, rank in (("w_q", w_q, 2), ("w_k", w_k, 2), ("v_a", v_a, 1)):
        weights[name] = as_float_array(w, name)
        if weights[name].ndim != rank:
            raise ValueError(
                f"`{name}` must have rank {rank}. Received: {name}.shape={weights[name].shape}"
            )
    for name, x, w in (("query", query, "w_q"), ("key", key, "w_k")):
        if weights[w].shape[0] != x.shape[-1]:
            raise ValueError(
                f"`{w}` must have as many rows as `{name}` has features, expected "
                f"{x.shape[-1]}. Received: {name}.shape={x.shape}, {w}.shape={weights[w].shape}"
            )
    d_a = weights["v_a"].shape[0]
    for name in ("w_q", "w_k"):
        if weights[name].shape[1] != d_a:
            raise ValueError(
                f"`{name}` must have as many columns as `v_a` has entries (d_a), expected "
                f"{d_a}. Received: {name}.shape={weights[name].shape}, v_a.shape=({d_a},)"
            )
    batch = batch_shape(query, key, value)
    checked_mask = mask(mask_, (*batch, query.shape[-2], key.shape[-2]))
    dtype, work = result_dtypes(query, key, value)
    w_q, w_k, v_a = (weights[name].astype(work) for name in ("w_q", "w_k", "v_a"))
    return query, key, value, w_q, w_k, v_a, checked_mask, dtype, work


def tokens(tokens: ArrayLike) -> np.ndarray:
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or tokens.dtype.kind not in "iu":
        raise ValueError(
            "`tokens` must be a 2-D integer array of shape (B, S). "
            f"Received: shape={tokens.shape}, dtype={tokens.dtype}"
        )
    return tokens


def multi_head(
    query: ArrayLike, key: ArrayLike, value: ArrayLike, kernels: dict[str, ArrayLike]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Inputs `(B, L, d_model)` and kernels (the Keras layout) of multi-head attention."""
    query = as_float_array(query, "query")
    key = as_float_array(key, "key")
    value = as_float_array(value, "value")
    checked = {name: as_float_array(w, name) for name, w in kernels.items()}
    for name, w in checked.items():
        if w.ndim != 3:
            raise ValueError(f"`{name}` must have rank 3. Received: {name}.shape={w.shape}")
    for name, x, w in (
        ("query", query, checked["w_q"]),
        ("key", key, checked["w_k"]),
        ("value", value, checked["w_v"]),
    ):
        check_rank(x, name, 3)
        if x.shape[-1] != w.shape[0]:
            raise ValueError(
                f"The last dimension of `{name}` must equal the first of its kernel, expected "
                f"{w.shape[0]}. Received: {name}.shape={x.shape}"
            )
    return query, key, value, checked
