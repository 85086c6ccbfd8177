"""Is one weights folder better than another, beyond the luck of the beats drawn?

The model card's figures come from 200 beats of one seed, and at that size they move with the
seed: the shipped weights' tempo consistency reads 0.733 to 0.742 over seeds 0-5, and their
NDB/k 0 to 0.375, on both sides of its goal. This draws the same latents (seeds ``--seed`` ..
``--seed + --seeds - 1``) from both folders, scores each set as ``bench_quality.py`` does,
and prints per metric each folder's mean
and spread, the mean paired difference (B - A) and that difference in units of its standard
error (about 2 or more: a change the seeds do not explain), and at how many seeds each folder
meets issue 13's goal. It passes or fails nothing.

    python bench/compare_weights.py weights runs/more/best                 # 6 seeds x 200 beats
    python bench/compare_weights.py weights runs/more/best --seeds 3 --n 100 --json cmp.json
    python bench/compare_weights.py weights runs/retimed/best --target-bpm 125   # configs differ

About 16 s per folder and seed for 200 beats at d = 64 on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_quality  # noqa: E402  (the card's figures, computed one way)

from beatgan.config import Config  # noqa: E402

#: Config fields that decide which loops a folder's beats are scored against (its reference):
#: how they load, and the seed and noise of the augmented copies, held-out split and bins.
LOADING_FIELDS = ("sample_rate_hz", "slice_len", "channels", "decimation", "beats", "bpm",
                  "target_bpm", "tempo_method", "detect_tempo", "seed", "noise_copies",
                  "noise_amplitude")
#: The compared figures: the card's four metrics, then the fraction of similar beats.
FIGURES = ("tempo_consistency", "frechet", "ndb_fraction", "diversity_ratio", "fraction_similar")


def figure(summary: dict, key: str) -> float:
    return summary[key] if key == "fraction_similar" else summary["metrics"][key]["generated"]


def goal_count(summaries: list[dict], key: str) -> int | None:
    """At how many seeds the figure meets its goal; None for a figure without one."""
    if key == "fraction_similar":
        return None
    return sum(bool(s["metrics"][key]["meets_goal"]) for s in summaries)


def compare(a: list[dict], b: list[dict]) -> dict:
    """Per figure: both folders' values by seed, means, sample sd, the paired difference's mean
    and standard error, and the goal counts. ``a`` and ``b``: ``bench_quality.measure`` results
    of the same seeds (two or more, for a spread), in the same order."""
    if [s["seed"] for s in a] != [s["seed"] for s in b]:
        raise ValueError("the two folders must be measured at the same seeds")
    if len(a) < 2:
        raise ValueError("a spread needs at least 2 seeds")
    rows = {}
    for key in FIGURES:
        va = np.array([figure(s, key) for s in a], dtype=np.float64)
        vb = np.array([figure(s, key) for s in b], dtype=np.float64)
        diff = vb - va
        se = float(np.std(diff, ddof=1) / np.sqrt(len(diff)))
        mean_diff = float(diff.mean())
        rows[key] = {
            "a": va.tolist(), "b": vb.tolist(),
            "a_mean": float(va.mean()), "b_mean": float(vb.mean()),
            "a_sd": float(np.std(va, ddof=1)), "b_sd": float(np.std(vb, ddof=1)),
            "difference": mean_diff, "standard_error": se,
            # no spread in the difference: 0 when there is none, else infinitely many errors;
            # a NaN figure at some seed (a diverged draw) leaves it unknown, not infinite
            "in_standard_errors": (math.nan if not (math.isfinite(mean_diff) and
                                                    math.isfinite(se)) else
                                   mean_diff / se if se > 0 else
                                   math.copysign(math.inf, mean_diff) if mean_diff else 0.0),
            "a_meets": goal_count(a, key), "b_meets": goal_count(b, key),
        }
    return {"seeds": [s["seed"] for s in a], "n": a[0]["n_generated"], "figures": rows}


def _json_safe(value):
    """``value`` with NaN and infinities as None (JSON has no such numbers), and the sign of an
    infinite count of standard errors kept as a string ("inf", "-inf")."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def table(result: dict, name_a: str, name_b: str) -> str:
    k = len(result["seeds"])
    lines = [f"A = {name_a}, B = {name_b}; {result['n']} beats at each of seeds "
             f"{result['seeds'][0]}-{result['seeds'][-1]}, the same latents for both",
             f"{'figure':<18}{'A mean':>10}{'A sd':>8}{'B mean':>10}{'B sd':>8}"
             f"{'B - A':>10}{'/ s.e.':>8}  goal met (A, B)",
             "-" * 88]
    for key, row in result["figures"].items():
        goal = ("" if row["a_meets"] is None else
                f"{row['a_meets']}/{k}, {row['b_meets']}/{k}")
        lines.append(f"{key:<18}{row['a_mean']:10.3f}{row['a_sd']:8.3f}{row['b_mean']:10.3f}"
                     f"{row['b_sd']:8.3f}{row['difference']:+10.3f}"
                     f"{row['in_standard_errors']:+8.1f}  {goal}")
    lines.append("/ s.e.: the mean paired difference over its standard error; lower is better "
                 "for frechet and ndb_fraction, higher for tempo, nearer 1 for diversity.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="a weights folder (e.g. weights/, the shipped one)")
    parser.add_argument("b", help="the weights folder to compare with it (e.g. runs/x/best)")
    parser.add_argument("--data", default="ULTIMATE_DRUM_LOOPS",
                        help="training loops (the demo pack when the default folder holds no audio)")
    parser.add_argument("--n", type=int, default=200, help="beats per seed (default 200)")
    parser.add_argument("--seeds", type=int, default=6, help="how many seeds (default 6)")
    parser.add_argument("--seed", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--target-bpm", type=float, default=None,
                        help="score both against the loops brought to this tempo (default: each "
                             "folder's config; needed when their target_bpm differs)")
    parser.add_argument("--json", type=Path, default=None, dest="json_path",
                        help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    if args.seeds < 2 or args.n < 1:
        parser.error("--seeds must be at least 2 (for a spread) and --n at least 1")
    for folder in (args.a, args.b):
        if not (Path(folder) / "generator.weights.h5").is_file():
            parser.error(f"{folder} holds no generator.weights.h5")
    configs = [Config.load(folder) for folder in (args.a, args.b)]
    differ = [f"{name} {getattr(configs[0], name)} against {getattr(configs[1], name)}"
              for name in LOADING_FIELDS if getattr(configs[0], name) != getattr(configs[1], name)
              and not (name == "target_bpm" and args.target_bpm is not None)]
    if differ:
        remedy = ("give --target-bpm so that both are scored against the same loops"
                  if differ[0].startswith("target_bpm") and len(differ) == 1 else
                  "measure each with bench_quality.py instead")
        parser.error(f"{args.a} and {args.b} load the loops differently ({'; '.join(differ)}): {remedy}")

    measured: tuple[list[dict], list[dict]] = ([], [])
    for seed in range(args.seed, args.seed + args.seeds):
        for folder, summaries in zip((args.a, args.b), measured):
            summaries.append(bench_quality.measure(folder, data=args.data, n=args.n, seed=seed,
                                                   target_bpm=args.target_bpm))
            print(f"seed {seed}: {folder} measured", file=sys.stderr, flush=True)
    result = compare(*measured)
    print(table(result, args.a, args.b))
    if args.json_path is not None:
        result.update(a=args.a, b=args.b, data=args.data, target_bpm=args.target_bpm)
        args.json_path.write_text(json.dumps(_json_safe(result), indent=2, allow_nan=False)
                                  + "\n")
        print(f"wrote {args.json_path}")


if __name__ == "__main__":
    main()
