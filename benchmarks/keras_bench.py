"""Child of run.py: our Keras layer against keras.layers.MultiHeadAttention, same weights.

`--time`: seconds per call of the three layers (Keras's, ours, ours with `chunk_size`), eager
and inside `tf.function`, all six interleaved in every round. Prints one JSON line.
`--memory IMPL MODE N`: peak RSS added by one call, in this fresh process. Prints one JSON line.
"""

from __future__ import annotations

import argparse

from common import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from common import (  # noqa: E402
    D_K,
    HEADS,
    KERAS_IMPLS,
    MODES,
    REPEATS,
    SIZES,
    emit,
    interleaved,
    peak_rss_mib,
    reset_peak_rss,
    rss_mib,
)

from selfattention import layers  # noqa: E402

D_MODEL = HEADS * D_K
LAYER_CHUNK = 512  # chunk_size of our layer's memory-saving path


def build() -> dict:
    """The three layers, built, with Keras's weights copied into ours."""
    keras.utils.set_random_seed(0)
    x = tf.zeros((1, 8, D_MODEL))
    built = {
        "keras": keras.layers.MultiHeadAttention(HEADS, D_K),
        "ours": layers.MultiHeadAttention(HEADS, D_K),
        "ours_chunked": layers.MultiHeadAttention(HEADS, D_K, chunk_size=LAYER_CHUNK),
    }
    for layer in built.values():
        layer(x, x)
    for name in ("ours", "ours_chunked"):
        built[name].set_weights(built["keras"].get_weights())
    return built


def self_attention(layer, mode: str):
    """`x -> layer(x, x)`, run eagerly or as a `tf.function`."""

    def call(x):
        return layer(x, x)

    return call if mode == "eager" else tf.function(call, autograph=False)


def tokens(n: int) -> tf.Tensor:
    rng = np.random.default_rng(n)
    return tf.constant(rng.standard_normal((1, n, D_MODEL), dtype=np.float32))


def time_all(sizes, repeats) -> dict:
    built = build()
    calls = {(i, m): self_attention(built[i], m) for i in KERAS_IMPLS for m in MODES}
    times = {}
    for n in sizes:
        x = tokens(n)
        fns = {f"{i}/{m}": (lambda f=f, x=x: f(x).numpy()) for (i, m), f in calls.items()}
        for name, runs in interleaved(fns, repeats).items():
            times.setdefault(name, {})[n] = runs
    return {"sizes": sizes, "repeats": repeats, "time_s": times}


def memory_one(impl: str, mode: str, n: int) -> dict:
    layer = build()[impl]
    call = self_attention(layer, mode)
    call(tokens(64)).numpy()  # start TensorFlow's runtime and thread pools
    x = tokens(n)
    if mode == "graph":
        call.get_concrete_function(x)  # trace now: tracing is not the call's memory
    baseline = rss_mib()
    reset_peak_rss()
    call(x).numpy()
    return {"impl": impl, "mode": mode, "n": n, "peak_mib": peak_rss_mib() - baseline}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--time", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--memory", nargs=3, metavar=("IMPL", "MODE", "N"))
    args = parser.parse_args()
    if args.memory:
        impl, mode, n = args.memory
        emit(memory_one(impl, mode, int(n)))
    else:
        emit(time_all(args.sizes, args.repeats))


if __name__ == "__main__":
    main()
