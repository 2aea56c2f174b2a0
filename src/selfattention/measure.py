"""How much memory a call allocates: the one probe shared by chapter 8, the tests and the
benchmarks."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

__all__ = ["traced_peak_mib"]


def traced_peak_mib(fn: Callable[[], object]) -> float:
    """Peak MiB allocated while `fn()` runs, its result included, as `tracemalloc` sees it.

    NumPy reports its array buffers to `tracemalloc`, so for NumPy code this is the memory the
    call needs beyond what existed before it (the inputs, allocated earlier, do not count).
    TensorFlow's allocations are not traced: measure those with the process's peak RSS.
    """
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
        del result
    finally:
        tracemalloc.stop()
    return (peak - before) / 2**20
