"""Child of run.py: exact attention over 65,536 tokens in a fresh process, with its peak memory.

One head, d_k = d_v = 64, float32. The naive score matrix alone would take n^2 * 4 bytes
(16 GiB); `sa.chunked_attention` holds one `(n, chunk_size)` block of scores at a time.
The result is checked on sampled query rows against the formula computed directly in float64:
`softmax(q_t K^T / sqrt(d_k)) V` for each sampled `t`. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from common import D_K, MIB, emit, peak_rss_mib, reset_peak_rss, rss_mib

import selfattention as sa


def formula_rows(q, k, v, rows) -> np.ndarray:
    """Attention output of the query rows `rows`, straight from the formula, in float64."""
    scores = q[rows].astype(np.float64) @ k.T.astype(np.float64) / np.sqrt(q.shape[-1])
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))  # (r, S)
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v.astype(np.float64)  # (r, d_v)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=65536)
    parser.add_argument("--chunk", type=int, default=512)
    parser.add_argument("--rows", type=int, default=32, help="query rows checked")
    args = parser.parse_args()

    rng = np.random.default_rng(65536)
    q, k, v = (rng.standard_normal((args.n, D_K), dtype=np.float32) for _ in range(3))
    inputs_rss = rss_mib()
    reset_peak_rss()
    tracemalloc.start()
    start = time.perf_counter()
    out = sa.chunked_attention(q, k, v, chunk_size=args.chunk)  # (n, d_v)
    seconds = time.perf_counter() - start
    traced_peak = tracemalloc.get_traced_memory()[1] / MIB
    tracemalloc.stop()
    process_peak = peak_rss_mib()  # the whole process: interpreter, NumPy, inputs, work

    rows = np.sort(rng.choice(args.n, size=args.rows, replace=False))
    expected = formula_rows(q, k, v, rows)
    error = np.abs(out[rows] - expected).max()
    emit(
        {
            "n": args.n,
            "heads": 1,
            "chunk_size": args.chunk,
            "seconds": seconds,
            "rss_before_call_mib": inputs_rss,
            "peak_rss_mib": process_peak,
            "traced_peak_mib": traced_peak,
            "naive_scores_mib": args.n**2 * 4 / MIB,
            "rows_checked": rows.tolist(),
            "max_abs_error": float(error),
            "max_abs_output": float(np.abs(expected).max()),
        }
    )


if __name__ == "__main__":
    main()
