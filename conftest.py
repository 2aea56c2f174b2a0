"""pytest configuration shared by the unit tests and nbval."""

import os

# Before TensorFlow is imported anywhere: quiet C++ logs and deterministic CPU kernels.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def pytest_collectstart(collector):
    """nbval: TensorFlow writes C++ log lines to stderr outside Python's control, so they appear
    in a notebook run by hand but not under pytest; stderr is therefore not compared. Every
    cell whose result matters prints it to stdout or asserts it."""
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)
