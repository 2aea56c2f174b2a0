"""Cost per generated token of causal self-attention, with and without a key/value cache.

    .venv/bin/python benchmarks/kv_cache_bench.py [--quick]

At each length `t` the next token is produced twice: by recomputing multi-head attention over
all `t` positions with a causal mask (no cache), and by one cached step that projects the new
position and lets its query attend to the `t` cached keys. Both give the same output (checked
here, and position by position in tests/test_kv_cache.py). The two run interleaved in the same
rounds, so their ratio holds on a shared machine; the exponents are fitted on log-log points.
Writes benchmarks/results/kv_cache.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from common import fit_exponent, interleaved, median, paired_ratio

import selfattention as sa
from selfattention.kv_cache import KVCache, cached_self_attention_step

D_MODEL, HEADS = 256, 4
D_K = D_MODEL // HEADS
LENGTHS = (128, 256, 512, 1024, 2048)
RESULTS = Path(__file__).resolve().parent / "results"


def kernels(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    scale = D_MODEL**-0.5
    shapes = {
        "w_q": (D_MODEL, HEADS, D_K),
        "w_k": (D_MODEL, HEADS, D_K),
        "w_v": (D_MODEL, HEADS, D_K),
        "w_o": (HEADS, D_K, D_MODEL),
    }
    return {name: (rng.standard_normal(s) * scale).astype(np.float32) for name, s in shapes.items()}


def contenders(t: int, w: dict) -> dict:
    """Producing the output of position `t` (0-based) of a sequence, two ways."""
    x = np.random.default_rng(t).standard_normal((1, t + 1, D_MODEL)).astype(np.float32)
    cache = KVCache(t + 1, (1, HEADS), D_K, D_K)
    for i in range(t):  # the cache already holds positions 0 .. t-1
        cached_self_attention_step(x[:, i : i + 1], cache, **w)

    def recompute():
        out, _ = sa.multi_head_attention(x, x, use_causal_mask=True, **w)  # (1, t + 1, d_model)
        return out[:, -1]

    def cached():
        cache.length = t  # forget the newest position so that each call adds it again
        return cached_self_attention_step(x[:, t:], cache, **w)[:, 0]

    np.testing.assert_allclose(cached(), recompute(), atol=1e-4, rtol=1e-4)
    return {"no cache": recompute, "cache": cached}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short lengths, 3 rounds")
    args = parser.parse_args()
    lengths, repeats = (LENGTHS[:3], 3) if args.quick else (LENGTHS, 7)
    w = kernels()
    times = {"no cache": {}, "cache": {}}
    ratio = {}
    for t in lengths:
        runs = interleaved(contenders(t, w), repeats)
        for name, seconds in runs.items():
            times[name][t] = median(seconds)
        ratio[t] = paired_ratio(runs["no cache"], runs["cache"])
    exponents = {
        name: fit_exponent(lengths, [table[t] for t in lengths], n_min=lengths[1])
        for name, table in times.items()
    }
    print(f"Cost of one generated token (d_model {D_MODEL}, {HEADS} heads, float32, NumPy)")
    print(f"{'t':>6} | {'no cache (ms)':>13} | {'cache (ms)':>10} | {'no cache / cache':>16}")
    for t in lengths:
        row = f"{t:6d} | {times['no cache'][t] * 1e3:13.2f} | {times['cache'][t] * 1e3:10.3f}"
        print(f"{row} | {ratio[t]:16.1f}")
    print(
        f"fitted exponents (t >= {lengths[1]}): no cache {exponents['no cache']:.2f}, "
        f"cache {exponents['cache']:.2f}"
    )
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "kv_cache.json"
    record = {"lengths": lengths, "seconds": times, "ratio": ratio, "exponents": exponents}
    path.write_text(json.dumps(record, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
