"""Benchmark: 40 beats from the full-size generator (d = 64, 19.1M parameters) on this CPU.

Prints figures; it passes or fails on nothing. The generator is freshly initialised (random
weights cost the same as trained ones). Steps, each timed (best and median of ``--repeats``
after one warm-up call, which builds the graph):

1. ``generate(model, n=40, seed=...)``: latents and the forward pass, one batch;
2. ``write_beats``: 40 WAVs of 28224 frames (24-bit) plus the sidecar.

    python bench/bench_generate.py [--n 40] [--repeats 5] [--model-dim 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import beatgan  # noqa: F401  (quiets TensorFlow's start-up lines before Keras loads it)

from beatgan.config import Config  # noqa: E402
from beatgan.generation import generate, write_beats  # noqa: E402
from beatgan.model import build_generator  # noqa: E402


def timed(fn, repeats: int) -> tuple[float, float]:
    """(best, median) seconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model-dim", type=int, default=64)
    args = parser.parse_args()

    import keras

    config = Config(model_dim=args.model_dim)
    start = time.perf_counter()
    model = build_generator(config)
    build_s = time.perf_counter() - start
    print(f"backend {keras.backend.backend()}, {os.cpu_count()} CPU(s); generator d={config.model_dim}: "
          f"{model.count_params():,} parameters, built in {build_s:.2f} s")

    start = time.perf_counter()
    audio, latents = generate(model, n=args.n, seed=0, config=config)
    print(f"first call (graph build + run): {time.perf_counter() - start:.2f} s")
    best, median = timed(lambda: generate(model, n=args.n, seed=0, config=config), args.repeats)
    print(f"generate {args.n} beats {audio.shape[1:]}: best {best:.3f} s, median {median:.3f} s "
          f"({1e3 * best / args.n:.1f} ms per beat; aim <= 3 s)")

    with tempfile.TemporaryDirectory() as tmp:
        best_w, median_w = timed(lambda: write_beats(audio, tmp, config=config, latents=latents,
                                                     seed=0), args.repeats)
    print(f"write_beats {args.n} WAVs (2 x {config.score_len} frames, 24-bit) + sidecar: "
          f"best {best_w:.3f} s, median {median_w:.3f} s")
    print(f"generate + write: best {best + best_w:.3f} s")


if __name__ == "__main__":
    main()
