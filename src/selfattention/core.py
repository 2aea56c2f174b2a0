"""Deprecated location of the NumPy functions: see :mod:`selfattention.reference` (the formulas)
and :mod:`selfattention.fast` (the fast paths). Kept only until every importer has moved."""

from .fast import chunked_attention, scaled_dot_product_attention  # noqa: F401
from .reference import (  # noqa: F401
    KERAS_WEIGHT_NAMES,
    causal_mask,
    multi_head_attention,
    padding_mask,
    positional_encoding,
    softmax,
)
