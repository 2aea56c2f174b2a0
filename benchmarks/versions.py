"""Child of run.py: versions and the location of the package being measured (one JSON line)."""

import os

from common import emit, quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import selfattention  # noqa: E402

emit(
    {
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "selfattention": os.path.dirname(selfattention.__file__),
        "tf_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
    }
)
