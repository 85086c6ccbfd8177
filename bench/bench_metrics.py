"""Benchmark of beatgan.metrics: time for 40 generated beats against 2170 training segments,
and the reference points on demo-pack loops. Prints figures; it passes or fails nothing.

The training set is built as the notebook builds it from the demo pack: 434 synthesized loops
(``beatgan.synth``) at 44.1 kHz, decimated to 14.7 kHz (``beatgan.audio``), first segment
zero-padded to 16384 samples, 5 noisy copies each (``beatgan.data.augment``). The "generated"
beats are 40 unseen demo loops (another seed): what a perfect generator would draw.

    python bench/bench_metrics.py [--loops 434] [--copies 5] [--generated 40] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from beatgan import metrics
from beatgan.audio import decimate
from beatgan.config import Config
from beatgan.data import augment
from beatgan.synth import synthesize_loop


def demo_segments(n: int, *, seed: int, config: Config) -> np.ndarray:
    """``(n, slice_len, 2)`` first segments of demo loops at ``config.sample_rate_hz``."""
    out = np.zeros((n, config.slice_len, config.channels), np.float32)
    for i in range(n):
        loop = synthesize_loop(bpm=config.bpm, seed=seed, index=i, sample_rate_hz=config.source_rate_hz)
        low_rate = decimate(loop, factor=config.decimation_factor, method=config.decimation)
        out[i, : config.score_len] = low_rate[: config.score_len]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loops", type=int, default=434)
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--generated", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=2, help="timed runs (the first is cold)")
    args = parser.parse_args()
    config = Config()

    t = time.perf_counter()
    loops = demo_segments(args.loops, seed=0, config=config)
    train = augment(loops, copies=args.copies, rng=np.random.default_rng(0), amplitude=config.noise_amplitude)
    generated = demo_segments(args.generated, seed=1, config=config)
    groups = np.repeat(np.arange(args.loops), args.copies)  # augment is loop-major
    print(f"data: {train.shape} training, {generated.shape} generated, built in {time.perf_counter() - t:.1f} s")

    for run in range(args.repeat):
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        reference = metrics.TrainingReference.fit(train, config=config, seed=0)  # groups inferred
        t1 = time.perf_counter()
        report = metrics.evaluate(generated, reference)
        t2 = time.perf_counter()
        print(f"run {run + 1} ({'cold: first use of librosa filters' if run == 0 else 'warm'}; "
              f"load average {load:.1f} on {os.cpu_count()} cores): fit + reference points "
              f"{t1 - t0:.2f} s, evaluate {args.generated} beats {t2 - t1:.2f} s, total {t2 - t0:.2f} s")

    inferred_held_out = reference.n_train
    given = metrics.TrainingReference.fit(train, config=config, seed=0, groups=groups)
    print(f"groups inferred from near-duplicates: fit on {inferred_held_out} segments; "
          f"with the true loop ids: {given.n_train} (should match)")

    clicks = np.zeros((1, config.score_len, 2), np.float32)
    clicks[0, [0, int(round(config.sample_rate_hz * 60 / config.bpm))]] = 1.0
    print(f"tempo consistency of a click on each beat: {metrics.tempo_consistency(clicks, config=config)[0]:.3f}")
    print()
    print(report.summary())
    print()
    print(json.dumps(report.to_dict()["reference_points"], indent=1))


if __name__ == "__main__":
    main()
