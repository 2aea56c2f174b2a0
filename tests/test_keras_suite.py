"""Keras's own test file for `keras.layers.MultiHeadAttention`, run against our layer.

`keras_suite_shim` loads the file shipped in the keras wheel with `layers.MultiHeadAttention`
replaced by `selfattention.layers.MultiHeadAttention`; the tests that exercise Keras's
internals are skipped there, each with its reason (`EXCLUDED`). Every other test must pass:
that is what "drop-in" means here.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from keras_suite_shim import keras_test_case  # noqa: E402

KerasMultiHeadAttentionTestOnOurs = keras_test_case()
