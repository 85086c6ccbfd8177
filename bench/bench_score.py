"""Benchmark: score 40 generated beats against 2170 training segments, ours against the seed's.

Prints figures; it passes or fails on nothing. The data are synthetic: Gaussian noise
(std 0.3, float32) shaped like ``LoopSet.audio``, (2170, 16384, 2) and (40, 16384, 2); the
cost of the score does not depend on the content (except for near-copies, which ours
recomputes directly: none occur here). Steps:

1. ours: ``similarity_matrix`` (float64 accumulation, row chunks), best of ``--repeats``;
2. the bare matrix product the expansion rests on, on prepared contiguous (n, 28224)
   matrices, in float64 (what ours computes) and float32 (for reference), best of repeats;
3. the seed's way: a Python double loop over pairs, ``np.sum((A - B)**2) / np.sum(A**2)``
   per pair, timed on ``--seed-beats`` generated beats against all 2170 segments and
   extrapolated linearly to 40 (said so in the output); its values are checked against ours;
4. ``shift_tolerant_similarity`` with lags up to ``--max-shift-ms``, once.

    python bench/bench_score.py [--train 2170] [--generated 40] [--seed-beats 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from beatgan.config import Config
from beatgan.similarity import ms_to_samples, shift_tolerant_similarity, similarity_matrix


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def seed_loop(train: np.ndarray, generated: np.ndarray, n_samples: int) -> np.ndarray:
    """The 2018 notebook's way: every pair in Python, on (n_samples, 2) slices."""
    out = np.empty((len(train), len(generated)))
    for j, b in enumerate(generated):
        b = b[:n_samples]
        for i, a in enumerate(train):
            a = a[:n_samples]
            out[i, j] = np.sum((a - b) ** 2) / np.sum(a ** 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=2170)
    parser.add_argument("--generated", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed-beats", type=int, default=2,
                        help="generated beats the seed's loop is timed on (then extrapolated)")
    parser.add_argument("--max-shift-ms", type=float, default=20.0)
    args = parser.parse_args()

    config = Config()
    n = config.score_len
    rng = np.random.default_rng(0)
    train = (0.3 * rng.standard_normal((args.train, config.slice_len, 2))).astype(np.float32)
    generated = (0.3 * rng.standard_normal((args.generated, config.slice_len, 2))).astype(np.float32)
    print(f"synthetic Gaussian data: train {train.shape}, generated {generated.shape} float32; "
          f"score over the first {n} samples x 2 channels = {2 * n} values per segment")

    ours_s, matrix = best_of(lambda: similarity_matrix(train, generated, config=config), args.repeats)
    print(f"ours, similarity_matrix: {ours_s:.3f} s (best of {args.repeats}; aim < 0.5 s)")

    a64 = np.ascontiguousarray(train[:, :n].reshape(args.train, -1), dtype=np.float64)
    b64 = np.ascontiguousarray(generated[:, :n].reshape(args.generated, -1), dtype=np.float64)
    mm64_s, _ = best_of(lambda: a64 @ b64.T, args.repeats)
    a32, b32 = a64.astype(np.float32), b64.astype(np.float32)
    mm32_s, _ = best_of(lambda: a32 @ b32.T, args.repeats)
    del a64, b64, a32, b32
    print(f"bare matrix product ({args.train} x {2 * n}) @ ({2 * n} x {args.generated}): "
          f"float64 {mm64_s:.3f} s, float32 {mm32_s:.3f} s")
    print(f"ours / float64 product: {ours_s / mm64_s:.2f}x; ours / float32 product: "
          f"{ours_s / mm32_s:.2f}x (aim: within 3x)")

    k = max(1, min(args.seed_beats, args.generated))
    start = time.perf_counter()
    seed_part = seed_loop(train, generated[:k], n)
    seed_part_s = time.perf_counter() - start
    seed_s = seed_part_s * args.generated / k
    extrapolated = k < args.generated
    rel = np.abs(seed_part - matrix[:, :k]) / np.abs(seed_part)
    print(f"seed's per-pair loop: {seed_part_s:.2f} s for {k} x {args.train} pairs"
          + (f", extrapolated to {args.generated} beats: {seed_s:.1f} s" if extrapolated else ""))
    print(f"speed-up, seed / ours: {seed_s / ours_s:.0f}x"
          + (" (seed time extrapolated)" if extrapolated else ""))
    print(f"largest relative difference to the seed's float32 loop: {rel.max():.1e} "
          f"(the seed sums in float32; ours in float64)")

    max_shift = ms_to_samples(args.max_shift_ms, sample_rate_hz=config.sample_rate_hz)
    start = time.perf_counter()
    shift_tolerant_similarity(train, generated, config=config, max_shift_samples=max_shift)
    shift_s = time.perf_counter() - start
    print(f"shift-tolerant score, lags up to +/-{args.max_shift_ms:g} ms ({max_shift} samples): "
          f"{shift_s:.2f} s ({1e3 * shift_s / args.generated:.0f} ms per generated beat)")


if __name__ == "__main__":
    main()
