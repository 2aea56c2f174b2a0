"""The machine matrix: nbval over the book under settings that stand for other machines.

A stored output that encodes the rounding of one CPU fails on another. Three settings, read by
the libraries at start-up, change which code computes the numbers on this machine:

- ``OPENBLAS_CORETYPE``: the OpenBLAS kernels numpy uses (Prescott, SandyBridge, Haswell, Zen,
  SkylakeX); a kernel needs instructions the CPU may lack, and those combinations are skipped;
- ``OPENBLAS_NUM_THREADS``: 1 or 2 BLAS threads (how a matrix product is split);
- ``TF_NUM_INTRAOP_THREADS``: 1 or 2 TensorFlow intra-op threads (how a reduction is split).

Before each run a child process reports what it really got: the kernel numpy's OpenBLAS runs
(threadpoolctl) and the number of threads TensorFlow's first operation starts (one more per
intra-op thread). Then nbval runs over the notebooks with that environment, and a table gives
each combination, pass or fail, and seconds.

    python .ci/matrix.py               # covering set: every kernel with 1 and 2 BLAS threads,
                                       # and 1 and 2 TF threads (10 runs on a CPU with AVX-512)
    python .ci/matrix.py --full        # every combination (5 x 2 x 2)
    python .ci/matrix.py --ci          # the two that `make test` adds to the default run
    python .ci/matrix.py book/04_math.ipynb ...   # only these notebooks
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "_build" / "matrix"
NBVAL = [
    "--nbval",
    "--nbval-current-env",
    "--nbval-sanitize-with",
    "book/sanitize.cfg",
    "-p",
    "no:cacheprovider",
]

# The instructions each kernel needs, as /proc/cpuinfo names them ("pni" is SSE3).
KERNELS = {
    "Prescott": {"pni"},
    "SandyBridge": {"avx"},
    "Haswell": {"avx2", "fma"},
    "Zen": {"avx2", "fma"},
    "SkylakeX": {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"},
}
THREADS = (1, 2)

PROBE = """
import json, os
import numpy, threadpoolctl
blas = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"]
import tensorflow as tf
tasks = "/proc/self/task"
before = len(os.listdir(tasks)) if os.path.isdir(tasks) else None
x = tf.random.normal((256, 256))
tf.linalg.matmul(x, x).numpy()
after = len(os.listdir(tasks)) if before is not None else None
print(json.dumps({
    "kernel": blas[0]["architecture"] if blas else "not OpenBLAS",
    "blas_threads": blas[0]["num_threads"] if blas else None,
    "tf_threads_started": None if before is None else after - before,
}))
"""


@dataclass(frozen=True)
class Combo:
    """One stand-in machine; None leaves the library's own default."""

    kernel: str | None = None
    blas: int | None = None
    tf: int | None = None

    @property
    def name(self) -> str:
        if self.kernel is None and self.blas is None and self.tf is None:
            return "default"
        parts = [self.kernel or "auto", f"blas{self.blas or '-'}", f"tf{self.tf or '-'}"]
        return "-".join(parts)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for key in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
            env.pop(key, None)
        if self.kernel:
            env["OPENBLAS_CORETYPE"] = self.kernel
        if self.blas:
            env["OPENBLAS_NUM_THREADS"] = str(self.blas)
        if self.tf:
            env["TF_NUM_INTRAOP_THREADS"] = str(self.tf)
        # as conftest.py sets them for nbval: quiet TF logs, no oneDNN rewrites
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        env.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
        return env


def covering() -> list[Combo]:
    """Each kernel with 1 and with 2 BLAS threads; the TF thread count alternates so that
    every kernel also meets both TF settings: 10 runs instead of the 20 of --full."""
    combos = []
    for i, kernel in enumerate(KERNELS):
        combos.append(Combo(kernel, 1, 1 + i % 2))
        combos.append(Combo(kernel, 2, 2 - i % 2))
    return combos


def full() -> list[Combo]:
    return [Combo(k, b, t) for k, b, t in itertools.product(KERNELS, THREADS, THREADS)]


CI = [Combo("Prescott", 1, 1), Combo("Haswell", 2, 2)]


def cpu_flags() -> set[str] | None:
    """The CPU's instruction-set flags, or None where /proc/cpuinfo does not exist."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return None
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def probe(combo: Combo) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=combo.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        return {"kernel": "probe failed", "blas_threads": None, "tf_threads_started": None}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(combo: Combo, notebooks: list[str]) -> tuple[bool, float, Path]:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{combo.name}.log"
    start = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *NBVAL, "-q", *notebooks],
            cwd=ROOT,
            env=combo.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return done.returncode == 0, time.monotonic() - start, log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--full", action="store_true", help="every combination (20 runs)")
    group.add_argument("--ci", action="store_true", help="the two combinations make test adds")
    parser.add_argument("--default", action="store_true", help="also run with no setting")
    parser.add_argument("notebooks", nargs="*", help="notebooks (default: every one in book/)")
    args = parser.parse_args(argv)

    combos = CI if args.ci else full() if args.full else covering()
    if args.default:
        combos = [Combo(), *combos]
    notebooks = args.notebooks or sorted(
        str(p.relative_to(ROOT)) for p in ROOT.glob("book/*.ipynb")
    )

    flags = cpu_flags()
    if flags is None:
        print(f"no /proc/cpuinfo on {platform.system()}: cannot tell which kernels this CPU runs")
    runnable = []
    for combo in combos:
        missing = (
            KERNELS.get(combo.kernel, set()) - (flags or set()) if flags is not None else set()
        )
        if missing:
            print(f"skipped {combo.name}: this CPU lacks {', '.join(sorted(missing))}")
        else:
            runnable.append(combo)

    print(
        f"nbval over {len(notebooks)} notebook(s) under {len(runnable)} setting(s); logs in {LOGS}"
    )
    header = f"{'combination':<24} {'kernel in use':<14} {'BLAS thr':>8} {'TF thr started':>14}"
    print(f"{header} {'result':>6} {'seconds':>8}", flush=True)
    failed = []
    for combo in runnable:
        seen = probe(combo)
        ok, seconds, log = run(combo, notebooks)
        if not ok:
            failed.append((combo, log))
        started = seen["tf_threads_started"]
        print(
            f"{combo.name:<24} {seen['kernel']:<14} {seen['blas_threads'] or '?':>8} "
            f"{'?' if started is None else started:>14} {'pass' if ok else 'FAIL':>6} "
            f"{seconds:>8.0f}",
            flush=True,
        )
    for combo, log in failed:
        lines = log.read_text().splitlines()
        summary = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
        print(f"\n{combo.name} failed ({log}):", *(summary or lines[-20:]), sep="\n  ")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
