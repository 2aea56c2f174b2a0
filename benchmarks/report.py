"""Turn the children's raw measurements into medians, paired ratios, fitted exponents, the
targets' verdicts, printed tables and figures."""

from __future__ import annotations

from pathlib import Path

from common import CHUNKS, FIT_FROM, KERAS_IMPLS, MODES, fit_exponent, median, paired_ratio

DEFAULT_CHUNK = 512  # the package's default chunk_size: the memory target is for it


# ------------------------------------------------------------------------------ summaries
def _by_n(table: dict) -> dict:
    """JSON turns the sizes into strings; give them back as ints, in increasing order."""
    return {int(n): value for n, value in sorted(table.items(), key=lambda item: int(item[0]))}


def _summarise_times(raw: dict, pairs: dict, fit_from: int) -> dict:
    times = {name: _by_n(table) for name, table in raw["time_s"].items()}
    memory = {name: _by_n(table) for name, table in raw.get("memory_mib", {}).items()}
    medians = {
        name: {n: 1e3 * median(t) for n, t in table.items()} for name, table in times.items()
    }
    ratios = {
        label: {n: paired_ratio(times[a][n], times[b][n]) for n in times[a] if n in times[b]}
        for label, (a, b) in pairs.items()
        if a in times and b in times
    }
    memory_ratios = {
        label: {n: memory[a][n] / memory[b][n] for n in memory[a] if n in memory[b]}
        for label, (a, b) in pairs.items()
        if a in memory and b in memory
    }
    exponents = {
        "time": {
            name: fit_exponent(list(t), list(t.values()), fit_from) for name, t in medians.items()
        },
        "memory": {
            name: fit_exponent(list(m), list(m.values()), fit_from) for name, m in memory.items()
        },
        "fitted_on": f"n >= {fit_from}",
    }
    return {
        "median_ms": medians,
        "ratio": ratios,
        "memory_mib": memory,
        "memory_ratio": memory_ratios,
        "exponents": exponents,
    }


def _numpy_pairs() -> dict:
    pairs = {"naive/matmuls": ("naive", "matmuls"), "naive/matmuls_out": ("naive", "matmuls_out")}
    pairs |= {f"chunked_{c}/naive": (f"chunked_{c}", "naive") for c in CHUNKS}
    return pairs


def _keras_memory(points: list) -> dict:
    memory = {}
    for p in points:
        memory.setdefault(f"{p['impl']}/{p['mode']}", {})[p["n"]] = p["peak_mib"]
    return {name: dict(sorted(table.items())) for name, table in memory.items()}


def summarise(results: dict) -> dict:
    numpy = _summarise_times(results["numpy"], _numpy_pairs(), FIT_FROM)
    long = _summarise_times(
        results["numpy_long"], _numpy_pairs(), min(results["numpy_long"]["sizes"])
    )
    keras_pairs = {
        f"{impl}/keras {mode}": (f"{impl}/{mode}", f"keras/{mode}")
        for impl in KERAS_IMPLS[1:]
        for mode in MODES
    }
    keras = _summarise_times(
        {**results["keras"], "memory_mib": _keras_memory(results["keras_memory"])},
        keras_pairs,
        FIT_FROM,
    )
    exact = results["exact_long"]
    chunked_long = dict(long["memory_mib"].get("chunked_512", {}))
    chunked_long[exact["n"]] = exact["traced_peak_mib"]
    long["exponents"]["memory"]["chunked_512 up to exact run"] = fit_exponent(
        list(chunked_long), list(chunked_long.values()), min(chunked_long)
    )
    summary = {"numpy": numpy, "numpy_long": long, "keras": keras}
    summary["targets"] = targets(summary, exact)
    return summary


def _verdict(name: str, values: dict, limit: float, below: bool = True) -> dict:
    ok = all((v <= limit) if below else (v >= limit) for v in values.values())
    shown = ", ".join(f"{k}: {v:.2f}" for k, v in values.items())
    return {"target": name, "measured": shown, "met": bool(ok and values)}


def targets(summary: dict, exact: dict) -> list:
    """The benchmark's own checklist: each target with what was measured and whether it holds
    (printed by `make benchmark`; chapter 8 shows the measurements, not this checklist)."""
    return [
        *_numpy_targets(summary["numpy"]),
        _linear_memory_target(summary["numpy"], summary["numpy_long"]),
        _exact_target(exact),
        *_keras_targets(summary["keras"]),
    ]


def _numpy_targets(numpy: dict) -> list:
    big = [n for n in numpy["ratio"]["naive/matmuls"] if n >= 1024]
    worst = {
        f"n={n}": max(numpy["ratio"]["naive/matmuls"][n], numpy["ratio"]["naive/matmuls_out"][n])
        for n in big
    }
    found = [
        _verdict("NumPy attention <= 2.0x its two matmuls (both baselines), n >= 1024", worst, 2.0)
    ]
    for c in CHUNKS:
        ratio = numpy["ratio"][f"chunked_{c}/naive"]
        found.append(
            _verdict(
                f"chunked (chunk {c}) <= 1.2x naive time, n >= 1024",
                {f"n={n}": ratio[n] for n in big},
                1.2,
            )
        )
    for c in CHUNKS:
        mem = numpy["memory_ratio"][f"chunked_{c}/naive"]
        n = max(mem)  # 4096 in a full run
        verdict = _verdict(
            f"chunked (chunk {c}) peak memory <= 0.15x naive, n = {n}", {f"n={n}": mem[n]}, 0.15
        )
        if c > DEFAULT_CHUNK:  # one block of c keys is c / n of the score matrix: shown, not judged
            verdict["target"] += f" (information only: a block of {c} keys is {c / n:.2f}x)"
            verdict["met"] = None
        found.append(verdict)
    return found


def _linear_memory_target(numpy: dict, long: dict) -> dict:
    slopes = {
        "8 heads, n >= 1024": numpy["exponents"]["memory"]["chunked_512"],
        "1 head, n >= 4096": long["exponents"]["memory"]["chunked_512"],
        "1 head, up to 65,536": long["exponents"]["memory"]["chunked_512 up to exact run"],
    }
    return {
        "target": "chunked (chunk 512) peak memory linear in n: exponent in [0.85, 1.15]",
        "measured": ", ".join(f"{k}: {_f(v, 2)}" for k, v in slopes.items()),
        "met": all(p is not None and 0.85 <= p <= 1.15 for p in slopes.values()),
    }


def _exact_target(exact: dict) -> dict:
    return {
        "target": f"exact attention at n = {exact['n']:,} in a fresh process, "
        "peak RSS < 512 MiB, sampled rows equal the formula (max abs error < 1e-5)",
        "measured": f"peak RSS {exact['peak_rss_mib']:.0f} MiB, "
        f"error {exact['max_abs_error']:.1e}, {exact['seconds']:.1f} s",
        "met": bool(exact["peak_rss_mib"] < 512 and exact["max_abs_error"] < 1e-5),
    }


def _keras_targets(keras: dict) -> list:
    found = []
    for mode in MODES:
        ratio = keras["ratio"][f"ours/keras {mode}"]
        found.append(
            _verdict(
                f"our layer <= 1.0x keras.layers.MultiHeadAttention time, {mode}",
                {f"n={n}": r for n, r in ratio.items()},
                1.0,
            )
        )
    for mode in MODES:
        mem = keras["memory_ratio"][f"ours_chunked/keras {mode}"]
        n = max(mem)  # 4096 in a full run
        found.append(
            _verdict(
                f"our chunked layer peak memory < 0.35x Keras's, {mode}, n = {n}",
                {f"n={n}": mem[n]},
                0.35,
            )
        )
    return found


# ------------------------------------------------------------------------------ tables
def _row(cells, widths) -> str:
    return "  ".join(str(c).rjust(w) for c, w in zip(cells, widths, strict=True))


def _table(title: str, header: list, rows: list) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    print(_row(header, widths))
    for row in rows:
        print(_row(row, widths))


def _f(x, digits=1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def print_tables(results: dict) -> None:
    meta, summary = results["meta"], results["summary"]
    print(
        f"\nSelf-attention benchmark, {meta['date']}: float32, batch 1, d_k = 64; medians of "
        f"{results['numpy']['repeats']} interleaved rounds after a warm-up; ratios are medians of "
        f"per-round ratios.\nnumpy {meta['numpy']} (BLAS threads: {meta['blas_threads']}), "
        f"tensorflow {meta['tensorflow']}, keras {meta['keras']}, {meta['cpus']} CPUs, load "
        f"average {meta['load_average_start']:.1f} -> {meta['load_average_end']:.1f}, "
        f"{meta['seconds']:.0f} s.\npackage measured: {meta['selfattention']}"
    )
    _numpy_tables("NumPy, 8 heads", summary["numpy"])
    _numpy_tables("NumPy, 1 head, longer range", summary["numpy_long"])
    _exact_table(results["exact_long"])
    _keras_tables(summary["keras"])
    _exponent_table(summary)
    print("\nTargets")
    for t in summary["targets"]:
        label = {True: "met", False: "NOT met", None: "info"}[t["met"]]
        print(f"  [{label}] {t['target']}\n        {t['measured']}")


def _numpy_tables(title: str, s: dict) -> None:
    ms, ratio, mem, mem_ratio = s["median_ms"], s["ratio"], s["memory_mib"], s["memory_ratio"]
    chunks = [f"chunked_{c}" for c in CHUNKS]
    header = ["n", "matmuls", "mm(out=)", "naive", "naive/mm", "naive/mm(out=)"]
    header += [f"c{c}" for c in CHUNKS] + [f"c{c}/naive" for c in CHUNKS]
    rows = []
    for n in ms["matmuls"]:
        naive = ms.get("naive", {}).get(n)
        row = [n, _f(ms["matmuls"][n]), _f(ms["matmuls_out"][n]), _f(naive)]
        row += [_f(ratio["naive/matmuls"].get(n), 2), _f(ratio["naive/matmuls_out"].get(n), 2)]
        row += [_f(ms[c][n]) for c in chunks]
        row += [_f(ratio[f"{c}/naive"].get(n), 2) for c in chunks]
        rows.append(row)
    _table(f"{title}: time per call (ms)", header, rows)
    header = ["n", "matmuls", "naive"] + [f"c{c}" for c in CHUNKS] + [f"c{c}/naive" for c in CHUNKS]
    rows = [
        [n, _f(mem["matmuls"][n]), _f(mem.get("naive", {}).get(n))]
        + [_f(mem[c][n]) for c in chunks]
        + [_f(mem_ratio[f"{c}/naive"].get(n), 3) for c in chunks]
        for n in mem["matmuls"]
    ]
    _table(f"{title}: peak memory allocated by one call (tracemalloc, MiB)", header, rows)


def _exact_table(e: dict) -> None:
    header = ["n", "heads", "chunk", "seconds", "peak RSS MiB", "traced MiB", "naive scores MiB"]
    header += ["rows checked", "max abs error"]
    row = [e["n"], e["heads"], e["chunk_size"], _f(e["seconds"]), _f(e["peak_rss_mib"])]
    row += [_f(e["traced_peak_mib"]), _f(e["naive_scores_mib"], 0), len(e["rows_checked"])]
    row += [f"{e['max_abs_error']:.1e}"]
    _table("Exact chunked attention in a fresh process (whole-process peak RSS)", header, [row])


def _keras_tables(s: dict) -> None:
    ms, ratio, mem, mem_ratio = s["median_ms"], s["ratio"], s["memory_mib"], s["memory_ratio"]
    header = ["n", "mode", "keras", "ours", "ours_chunked", "ours/keras", "chunked/keras"]
    rows = [
        [n, mode]
        + [_f(ms[f"{i}/{mode}"][n]) for i in KERAS_IMPLS]
        + [_f(ratio[f"{i}/keras {mode}"][n], 2) for i in KERAS_IMPLS[1:]]
        for n in ms["keras/eager"]
        for mode in MODES
    ]
    _table("Keras layers, d_model = 512, 8 heads: time per call (ms)", header, rows)
    sizes = sorted({n for table in mem.values() for n in table})
    rows = [
        [n, mode]
        + [_f(mem[f"{i}/{mode}"].get(n)) for i in KERAS_IMPLS]
        + [_f(mem_ratio[f"{i}/keras {mode}"].get(n), 2) for i in KERAS_IMPLS[1:]]
        for n in sizes
        for mode in MODES
    ]
    _table("Keras layers: peak RSS added by one call, fresh process per point (MiB)", header, rows)


def _exponent_table(summary: dict) -> None:
    rows = []
    for part in ("numpy", "numpy_long", "keras"):
        e = summary[part]["exponents"]
        for name in e["time"]:
            rows.append(
                [part, name, e["fitted_on"], _f(e["time"][name], 2), _f(e["memory"].get(name), 2)]
            )
        for name in set(e["memory"]) - set(e["time"]):
            rows.append([part, name, "", "-", _f(e["memory"][name], 2)])
    _table(
        "Fitted exponents p of time ~ n^p and memory ~ n^p (log-log least squares)",
        ["part", "contender", "fitted on", "time p", "memory p"],
        rows,
    )


# ------------------------------------------------------------------------------ figures
def plot_all(results: dict, folder: Path) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = results["summary"]
    paths = [
        _plot_numpy(plt, summary["numpy"], folder / "benchmark_numpy.png"),
        _plot_long(
            plt, summary["numpy_long"], results["exact_long"], folder / "benchmark_long.png"
        ),
        _plot_keras(plt, summary["keras"], folder / "benchmark_keras.png"),
    ]
    return paths


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _loglog(ax, title: str, ylabel: str) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_title(title)
    ax.set_xlabel("sequence length n (tokens, log scale)")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def _series(ax, table: dict, label: str, exponent, **style) -> None:
    if not table:
        return
    tag = "" if exponent is None else f" (slope {exponent:.2f})"
    ax.plot(list(table), list(table.values()), marker="o", label=label + tag, **style)


NUMPY_LABELS = {
    "matmuls": "two matmuls alone",
    "naive": "sa.scaled_dot_product_attention",
    **{f"chunked_{c}": f"sa.chunked_attention, chunk {c}" for c in CHUNKS},
}


def _plot_numpy(plt, s: dict, path: Path) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, label in NUMPY_LABELS.items():
        _series(left, s["median_ms"].get(name), label, s["exponents"]["time"].get(name))
        _series(right, s["memory_mib"].get(name), label, s["exponents"]["memory"].get(name))
    _loglog(left, "NumPy attention, 8 heads: time per call", "median time (ms, log scale)")
    _loglog(right, "NumPy attention, 8 heads: peak memory", "peak allocated (MiB, log scale)")
    return _save(plt, fig, path)


def _plot_long(plt, s: dict, exact: dict, path: Path) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name in ("naive", "chunked_512"):
        _series(
            left, s["median_ms"].get(name), NUMPY_LABELS[name], s["exponents"]["time"].get(name)
        )
        _series(
            right, s["memory_mib"].get(name), NUMPY_LABELS[name], s["exponents"]["memory"].get(name)
        )
    one_run = f"chunk {exact['chunk_size']}, one run"
    for ax, value in ((left, 1e3 * exact["seconds"]), (right, exact["traced_peak_mib"])):
        ax.plot([exact["n"]], [value], "k*", ms=12, label=one_run)
    right.plot(
        [exact["n"]],
        [exact["naive_scores_mib"]],
        "rx",
        ms=10,
        label="naive scores alone would need",
    )
    _loglog(left, "One head, long sequences: time per call", "time (ms, log scale)")
    _loglog(right, "One head, long sequences: peak memory", "peak allocated (MiB, log scale)")
    return _save(plt, fig, path)


def _plot_keras(plt, s: dict, path: Path) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = {
        "keras": "keras.layers.MultiHeadAttention",
        "ours": "ours",
        "ours_chunked": "ours, chunk_size=512",
    }
    colours = {"keras": "C3", "ours": "C0", "ours_chunked": "C2"}
    for impl in KERAS_IMPLS:
        for mode, line in (("eager", "-"), ("graph", "--")):
            name = f"{impl}/{mode}"
            style = {"color": colours[impl], "linestyle": line}
            label = f"{labels[impl]}, {mode}"
            _series(
                left, s["median_ms"].get(name), label, s["exponents"]["time"].get(name), **style
            )
            _series(
                right, s["memory_mib"].get(name), label, s["exponents"]["memory"].get(name), **style
            )
    _loglog(
        left, "Keras layers (d_model 512, 8 heads): time per call", "median time (ms, log scale)"
    )
    _loglog(right, "Keras layers: peak memory of one call", "peak RSS added (MiB, log scale)")
    return _save(plt, fig, path)
