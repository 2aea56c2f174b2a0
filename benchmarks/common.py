"""Helpers shared by the benchmark scripts: interleaved timing, paired ratios, log-log fits,
memory probes (tracemalloc for NumPy, the process's peak RSS for TensorFlow), and the names
and settings every script shares.

Sizes follow the package's shape legend: `B` batch, `h` heads, `T` = `S` = `n` tokens, `d_k`.
"""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Callable

import numpy as np

from selfattention.measure import traced_peak_mib  # noqa: F401  (re-exported for the children)

HEADS, D_K = 8, 64  # the transformer-base head shape: 8 heads of depth 64 (d_model = 512)
SIZES = (256, 512, 1024, 2048, 4096)  # n for the main tables
CHUNKS = (256, 512, 1024)  # chunk sizes of the online-softmax path
REPEATS = 7  # timed repetitions after one warm-up call of each contender
FIT_FROM = 1024  # exponents are fitted on n >= FIT_FROM, where overheads no longer dominate
MIB = 2**20
KERAS_IMPLS = ("keras", "ours", "ours_chunked")  # Keras's layer, ours, ours with chunk_size
MODES = ("eager", "graph")  # a layer called eagerly, or inside tf.function
# As in the book's notebooks: quiet TensorFlow, and no oneDNN kernels (their results vary).
TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}


def quiet_tensorflow() -> None:
    """Set `TF_ENV` in this process, unless already set; call it before importing TensorFlow."""
    for name, value in TF_ENV.items():
        os.environ.setdefault(name, value)


def qkv(n: int, heads: int = HEADS, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Random float32 query, key and value `(1, h, n, d_k)`."""
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal((1, heads, n, D_K), dtype=np.float32) for _ in range(3))


def interleaved(contenders: dict[str, Callable], repeats: int = REPEATS) -> dict[str, list]:
    """Seconds per call of each contender: one warm-up call each, then `repeats` rounds in which
    every contender runs once, the order rotating from round to round. Contenders measured in
    the same round see the same machine load, so their ratio is meaningful on a shared machine
    even when absolute times drift."""
    for fn in contenders.values():
        fn()
    names = list(contenders)
    times = {name: [] for name in names}
    gc.disable()
    try:
        for r in range(repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                start = time.perf_counter()
                contenders[name]()
                times[name].append(time.perf_counter() - start)
    finally:
        gc.enable()
    return times


def median(values) -> float:
    return float(np.median(values))


def paired_ratio(numerator: list, denominator: list) -> float:
    """Median over rounds of the ratio of two contenders' times in the same round."""
    return float(np.median(np.asarray(numerator) / np.asarray(denominator)))


def fit_exponent(ns, values, n_min: int = FIT_FROM) -> float | None:
    """Slope `p` of the least-squares line `log v = p log n + c` on the points `n >= n_min`."""
    points = [(n, v) for n, v in zip(ns, values, strict=True) if n >= n_min and v and v > 0]
    if len(points) < 2:
        return None
    x, y = np.log([p[0] for p in points]), np.log([p[1] for p in points])
    return float(np.polyfit(x, y, 1)[0])


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_mib() -> float:
    """Resident set size of this process now."""
    return _status_mib("VmRSS")


def peak_rss_mib() -> float:
    """Peak resident set size of this process since start or the last `reset_peak_rss()`."""
    return _status_mib("VmHWM")


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS counter of this process (Linux: `clear_refs` value 5)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def emit(result: dict) -> None:
    """A child script's only output on stdout: one JSON line for `run.py`."""
    print(json.dumps(result), flush=True)
