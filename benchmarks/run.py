"""Benchmark of the package's attention: one command, about 6 minutes on a 2-core machine.

    .venv/bin/python benchmarks/run.py          # or: make benchmark
    .venv/bin/python benchmarks/run.py --quick  # small sizes, a smoke test in under a minute

Every measurement runs in a fresh child process (the scripts next to this file), so one part's
memory cannot leak into another's. Prints the tables, writes benchmarks/results/benchmark.json
and the figures, and copies both to book/figures/ for chapter 8. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import CHUNKS, KERAS_IMPLS, MODES, SIZES, TF_ENV
from report import plot_all, print_tables, summarise

HERE = Path(__file__).resolve().parent

RESULTS = HERE / "results"
BOOK_FIGURES = HERE.parent / "book" / "figures"
LONG_SIZES = (4096, 8192, 16384)  # one head, the chunked path's longer range
KERAS_MEMORY_SIZES = (1024, 2048, 4096)
KERAS_CHUNKED_EXTRA = (8192,)  # our chunked layer only: Keras would need 4 GiB here


def child(script: str, *args, env: dict | None = None) -> dict:
    """Run `script` with `args` in a fresh Python process; return the JSON it prints."""
    command = [sys.executable, str(HERE / script), *map(str, args)]
    done = subprocess.run(
        command, capture_output=True, text=True, env={**TF_ENV, **os.environ, **(env or {})}
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def provenance(blas_threads: int) -> dict:
    versions = child("versions.py")
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "blas_threads": blas_threads,
        "load_average_start": os.getloadavg()[0],
        **versions,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 rounds")
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="OpenBLAS threads for NumPy (default 1: steady on a shared machine; see README)",
    )
    parser.add_argument("--no-book", action="store_true", help="do not copy to book/figures")
    parser.add_argument(
        "--from-json", type=Path, help="only redo the tables and figures from a saved run"
    )
    return parser.parse_args()


def measure(quick: bool, blas_threads: int) -> dict:
    """Every measurement, each part in fresh child processes; the raw results."""
    sizes, repeats = (SIZES[:3], 3) if quick else (SIZES, 7)
    long_sizes, exact_n = ((1024, 2048), 8192) if quick else (LONG_SIZES, 65536)
    keras_sizes = (256, 512) if quick else KERAS_MEMORY_SIZES
    chunked_extra = (1024,) if quick else KERAS_CHUNKED_EXTRA
    blas = {"OPENBLAS_NUM_THREADS": str(blas_threads), "OMP_NUM_THREADS": "1"}

    results = {"meta": provenance(blas_threads)}
    print("NumPy, 8 heads ...", flush=True)
    results["numpy"] = child(
        "numpy_bench.py", "--sizes", *sizes, "--repeats", repeats, "--chunks", *CHUNKS, env=blas
    )
    print("NumPy, 1 head, longer range ...", flush=True)
    results["numpy_long"] = child(
        "numpy_bench.py",
        *("--sizes", *long_sizes, "--heads", 1, "--repeats", repeats),
        *("--chunks", *CHUNKS),
        env=blas,
    )
    print(f"Exact attention, n = {exact_n:,}, fresh process ...", flush=True)
    results["exact_long"] = child("long_exact.py", "--n", exact_n, env=blas)
    print("Keras layers, time ...", flush=True)
    results["keras"] = child("keras_bench.py", "--time", "--sizes", *sizes, "--repeats", repeats)
    print("Keras layers, peak memory, one fresh process per point ...", flush=True)
    jobs = [(i, m, n) for n in keras_sizes for i in KERAS_IMPLS for m in MODES]
    jobs += [("ours_chunked", m, n) for n in chunked_extra for m in MODES]
    with ThreadPoolExecutor(2) as pool:  # two at a time: memory, unlike time, does not mind
        points = list(pool.map(lambda job: child("keras_bench.py", "--memory", *job), jobs))
    results["keras_memory"] = points
    results["meta"]["load_average_end"] = os.getloadavg()[0]
    return results


def publish(results: dict, to_book: bool) -> None:
    """Write the JSON and the figures, and copy them to book/figures/ for chapter 8."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "benchmark.json").write_text(json.dumps(results, indent=1))
    figures = plot_all(results, RESULTS)
    print(f"\nwrote {RESULTS / 'benchmark.json'} and {len(figures)} figures in {RESULTS}")
    if to_book:
        BOOK_FIGURES.mkdir(exist_ok=True)
        for path in [RESULTS / "benchmark.json", *figures]:
            shutil.copy(path, BOOK_FIGURES / path.name)
        print(f"copied them to {BOOK_FIGURES}")


def main() -> None:
    args = parse_args()
    if args.from_json:
        results = json.loads(args.from_json.read_text())
        results["summary"] = summarise(results)
        print_tables(results)
        args.from_json.write_text(json.dumps(results, indent=1))
        plot_all(results, args.from_json.parent)
        return

    started = time.perf_counter()
    results = measure(args.quick, args.blas_threads)
    results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    results["summary"] = summarise(results)
    print_tables(results)
    publish(results, to_book=not (args.quick or args.no_book))


if __name__ == "__main__":
    main()
