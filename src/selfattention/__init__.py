"""selfattention: attention written to be read next to its equations.

``import selfattention as sa`` gives the NumPy functions (no TensorFlow import):
:func:`softmax`, :func:`scaled_dot_product_attention`, :func:`chunked_attention`,
:func:`multi_head_attention`, :func:`causal_mask`, :func:`padding_mask` and
:func:`positional_encoding`. Their plain form, written to be read next to the equations, is
:mod:`selfattention.reference`; the two attention functions exported here are the faster,
equal versions of :mod:`selfattention.fast`. ``from selfattention import layers`` gives the
Keras 3 layers.

Shape legend: ``B`` batch, ``T`` query length, ``S`` key/value length, ``h`` heads,
``d_k`` key depth, ``d_v`` value depth, ``d_model`` model width.
"""

from . import backward, fast, reference
from .backward import attention_backward, chunked_attention_backward, chunked_attention_forward
from .fast import chunked_attention, scaled_dot_product_attention
from .reference import (
    KERAS_WEIGHT_NAMES,
    additive_attention,
    alibi_bias,
    alibi_slopes,
    causal_mask,
    multi_head_attention,
    padding_mask,
    positional_encoding,
    rotary_embedding,
    softmax,
)

__version__ = "0.1.0"

__all__ = [
    "KERAS_WEIGHT_NAMES",
    "additive_attention",
    "alibi_bias",
    "alibi_slopes",
    "attention_backward",
    "chunked_attention_backward",
    "chunked_attention_forward",
    "rotary_embedding",
    "backward",
    "causal_mask",
    "chunked_attention",
    "multi_head_attention",
    "padding_mask",
    "positional_encoding",
    "scaled_dot_product_attention",
    "softmax",
    "fast",
    "reference",
]
