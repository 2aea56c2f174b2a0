"""selfattention: attention written to be read next to its equations.

``import selfattention as sa`` gives the NumPy reference (no TensorFlow import):
:func:`softmax`, :func:`scaled_dot_product_attention`, :func:`chunked_attention`,
:func:`multi_head_attention`, :func:`causal_mask`, :func:`padding_mask` and
:func:`positional_encoding`. ``from selfattention import layers`` gives the Keras 3 layers.

Shape legend: ``B`` batch, ``T`` query length, ``S`` key/value length, ``h`` heads,
``d_k`` key depth, ``d_v`` value depth, ``d_model`` model width.
"""

from .core import (
    KERAS_WEIGHT_NAMES,
    causal_mask,
    chunked_attention,
    multi_head_attention,
    padding_mask,
    positional_encoding,
    scaled_dot_product_attention,
    softmax,
)

__version__ = "0.1.0"

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
