"""Do the critic's estimate swings follow its phase-shuffle shifts?

A run's ``history.csv`` logs the critic's Wasserstein estimate, averaged over each logging
interval; it swings from row to row. This asks how much of that swing the discriminator's
phase-shuffle draws decide, for runs trained with the JAX backend (the draws are JAX's):

- per window of ``--window`` iterations, R^2 of a linear fit of the estimate, less its running
  median, on the shifts the interval's real and generated batches got (per layer, the share of
  each shift), against the same fit on the shifts of rows 37 apart (the control: what a fit with
  that many terms finds in noise);
- with ``--other``, a second run of the same seed: the correlation of the two estimates at the
  same iteration, against the correlation one row apart.

    python bench/critic_swings.py --history runs/more/history.csv --other weights/history.csv

The shifts are the ones a critic starting from its layers' seeds draws: a run from scratch, or
a warm start or rollback made before they drew streams of their own (``--stream`` gives the
stream of a later warm start). Each iteration draws three shifts per critic update (the
penalty's interpolates, the real batch, the generated batch, in that order) and one for the
generator's update, during a critic warm-up too. Only critics that draw one shift per batch
(``phase_shuffle_per`` "batch", the default) are modelled. It passes or fails nothing; a JSON
line with every figure comes last.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402

#: Phase-shuffle draws per critic update: the penalty's interpolates, the real batch, the fake one.
DRAWS_PER_CRITIC_UPDATE = 3
#: Rows between an interval and its control's (any offset well past the median filter's reach).
CONTROL_OFFSET = 37
#: Rows in the running median taken off the estimate (its slow drift is not the shifts').
MEDIAN_ROWS = 51


def read_history(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(steps int (R,), Wasserstein estimates float (R,)) from a history.csv."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "wasserstein" not in rows[0]:
        raise SystemExit(f"error: {path} has no wasserstein column (a beatgan history.csv?)")
    return (np.array([int(float(r["step"])) for r in rows]),
            np.array([float(r["wasserstein"]) for r in rows]))


def layer_seeds(config, stream: list[int] | None = None) -> list[np.ndarray]:
    """Each phase-shuffle layer's seed-generator state (uint32 (2,)) at its first draw."""
    from beatgan.model import PhaseShuffle, build_discriminator, reseed_phase_shuffle

    critic = build_discriminator(dataclasses.replace(config, model_dim=1))  # seeds only
    if stream:
        reseed_phase_shuffle(critic, stream)
    return [np.asarray(layer.seed_generator.state.value).astype(np.uint32)
            for layer in critic.layers if isinstance(layer, PhaseShuffle)]


def shifts(state: np.ndarray, count: int, n: int) -> np.ndarray:
    """The next ``count`` shifts in [-n, n] (int (count,)) from a seed-generator ``state``, as
    ``keras.random.randint`` draws them under JAX: one key [seed, counter] per draw."""
    import jax
    import jax.numpy as jnp

    keys = np.stack([np.full(count, state[0], np.uint32),
                     state[1] + np.arange(count, dtype=np.uint32)], axis=1)
    draw = jax.vmap(lambda key: jax.random.randint(key, (), -n, n + 1, dtype=jnp.int32))
    return np.asarray(draw(jnp.asarray(keys)))


def shift_features(draws: np.ndarray, steps: np.ndarray, *, interval: int, n_d: int,
                   n: int) -> np.ndarray:
    """Per history row, the share of each nonzero shift among its interval's real and fake draws,
    per layer: float (R, layers * 2 * 2n). ``draws`` int (layers, D): each layer's shifts."""
    per_iteration = DRAWS_PER_CRITIC_UPDATE * n_d + 1
    values = [v for v in range(-n, n + 1) if v != 0]
    features = []
    for step in steps:
        iterations = np.arange(step - interval + 1, step + 1)  # 1-based
        first = (((iterations - 1) * per_iteration)[:, None]
                 + DRAWS_PER_CRITIC_UPDATE * np.arange(n_d))  # each critic update's first draw
        row = []
        for layer in draws:
            for offset in (1, 2):  # real, fake
                got = layer[(first + offset).ravel()]
                row += [np.mean(got == v) for v in values]
        features.append(row)
    return np.array(features)


def explained(y: np.ndarray, x: np.ndarray) -> float:
    """R^2 of the least-squares fit of y on x with an intercept."""
    design = np.c_[x, np.ones(len(x))]
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(1 - np.sum((y - design @ coef) ** 2) / np.sum((y - y.mean()) ** 2))


def analyse(steps: np.ndarray, w: np.ndarray, config, *, window: int,
            stream: list[int] | None = None, other: tuple[np.ndarray, np.ndarray] | None = None
            ) -> list[dict]:
    """One dict per window of ``window`` iterations: its rows, R^2 aligned and control, and
    with ``other`` the correlations at the same iteration and one row apart."""
    from scipy.ndimage import median_filter

    interval = int(np.median(np.diff(steps)))
    n_d, n = config.d_updates_per_g, config.phase_shuffle
    if n == 0:
        raise SystemExit("error: this run's critic does not shuffle phase (phase_shuffle 0)")
    # A per-example critic draws a shift per example per call; the model here is one per batch.
    if config.phase_shuffle_per != "batch":
        raise SystemExit(f"error: this run's critic draws its shifts per "
                         f"{config.phase_shuffle_per} (phase_shuffle_per); only runs with one "
                         f"shift per batch are modelled")
    count = (int(steps.max()) + 1) * (DRAWS_PER_CRITIC_UPDATE * n_d + 1)
    draws = np.stack([shifts(state, count, n) for state in layer_seeds(config, stream)])
    keep = steps >= interval  # rows whose interval lies inside the run
    steps, w = steps[keep], w[keep]
    other_w = dict(zip(*other)) if other is not None else {}
    results = []
    for start in range(0, int(steps.max()), window):
        rows = (steps > start) & (steps <= start + window)
        if rows.sum() < 4 * CONTROL_OFFSET:
            continue
        y = w[rows] - median_filter(w[rows], MEDIAN_ROWS, mode="nearest")
        at = steps[rows]
        row = {"from": start, "to": start + window, "rows": int(rows.sum()),
               "r2": explained(y, shift_features(draws, at, interval=interval, n_d=n_d, n=n)),
               "r2_control": explained(y, shift_features(draws, np.roll(at, CONTROL_OFFSET),
                                                         interval=interval, n_d=n_d, n=n))}
        if other_w:
            pairs = [(a, other_w[s], other_w.get(s + interval)) for a, s in zip(w[rows], at)
                     if s in other_w]
            same = np.array([(a, b) for a, b, _ in pairs])
            later = np.array([(a, c) for a, _, c in pairs if c is not None])
            row["corr"] = float(np.corrcoef(same.T)[0, 1]) if len(same) > 2 else None
            row["corr_next_row"] = float(np.corrcoef(later.T)[0, 1]) if len(later) > 2 else None
        results.append(row)
    return results


def _cell(value: float | None, width: int) -> str:
    """A correlation right-aligned in ``width`` characters; '-' where there was none."""
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.2f}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", required=True, type=Path, help="a run's history.csv")
    parser.add_argument("--config", type=Path, default=None,
                        help="its config.json (default: beside the history)")
    parser.add_argument("--other", type=Path, default=None,
                        help="another run's history.csv, same seed: correlate the estimates")
    parser.add_argument("--window", type=int, default=2000, help="iterations per window (2000)")
    parser.add_argument("--stream", default=None,
                        help="the run's draw stream, e.g. 0,2 (default: the layers' own seeds)")
    args = parser.parse_args(argv)
    from beatgan.config import Config

    import keras
    if keras.backend.backend() != "jax":
        raise SystemExit("error: the shifts are JAX's; run with KERAS_BACKEND=jax")
    steps, w = read_history(args.history)
    config_path = args.config or args.history.with_name("config.json")
    if not config_path.is_file():
        raise SystemExit(f"error: no config at {config_path}; give --config")
    config = Config.load(config_path)
    stream = [int(s) for s in args.stream.split(",")] if args.stream else None
    other = read_history(args.other) if args.other else None
    results = analyse(steps, w, config, window=args.window, stream=stream, other=other)
    print(f"{args.history}: the critic's estimate against its phase-shuffle shifts "
          f"(R^2; control: shifts of rows {CONTROL_OFFSET} away)")
    head = f"{'iterations':>14} {'rows':>5} {'R^2':>6} {'control':>8}"
    if other is not None:
        head += f" {'corr':>6} {'next row':>9}"
    print(head)
    for r in results:
        line = (f"{r['from']:>6}-{r['to']:<7} {r['rows']:>5} {r['r2']:>6.2f} "
                f"{r['r2_control']:>8.2f}")
        if other is not None:
            line += f" {_cell(r['corr'], 6)} {_cell(r['corr_next_row'], 9)}"
        print(line)
    summary = {"history": str(args.history), "other": str(args.other) if args.other else None,
               "windows": results}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
