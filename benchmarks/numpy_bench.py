"""Child of run.py: NumPy attention against its two matmuls, time and peak memory.

Prints one JSON line. The BLAS thread count is fixed by run.py through the environment
(OPENBLAS_NUM_THREADS) before NumPy is imported, so it is reported, not chosen, here.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from common import CHUNKS, HEADS, REPEATS, SIZES, emit, interleaved, qkv, traced_peak_mib

import selfattention as sa


def contenders(n: int, heads: int, chunks, with_naive: bool) -> dict:
    q, k, v = qkv(n, heads)
    k_t = np.swapaxes(k, -1, -2)
    scores = np.empty((1, heads, n, n), np.float32)
    out = np.empty((1, heads, n, v.shape[-1]), np.float32)

    def matmuls():  # the practical limit: Q K^T and P V, results freshly allocated
        return (q @ k_t) @ v

    def matmuls_out():  # the same two products written into buffers allocated once
        np.matmul(q, k_t, out=scores)
        return np.matmul(scores, v, out=out)

    fns = {"matmuls": matmuls, "matmuls_out": matmuls_out}
    if with_naive:
        fns["naive"] = lambda: sa.scaled_dot_product_attention(q, k, v)
    for c in chunks:
        fns[f"chunked_{c}"] = lambda c=c: sa.chunked_attention(q, k, v, chunk_size=c)
    return fns


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--heads", type=int, default=HEADS)
    parser.add_argument("--chunks", type=int, nargs="*", default=list(CHUNKS))
    parser.add_argument("--naive-up-to", type=int, default=10**9)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args()

    times, memory = {}, {}
    for n in args.sizes:
        fns = contenders(n, args.heads, args.chunks, with_naive=n <= args.naive_up_to)
        for name, runs in interleaved(fns, args.repeats).items():
            times.setdefault(name, {})[n] = runs
        if not args.no_memory:
            for name, fn in fns.items():
                if name != "matmuls_out":  # its buffers are allocated outside the call
                    memory.setdefault(name, {})[n] = traced_peak_mib(fn)
        del fns
    emit(
        {
            "sizes": args.sizes,
            "heads": args.heads,
            "repeats": args.repeats,
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
            "time_s": times,
            "memory_mib": memory,
        }
    )


if __name__ == "__main__":
    main()
