"""Recompute a model card's quality figures: generate beats, then ``beatgan score --metrics``.

Generates ``--n`` beats (200 for the model card) from ``--weights`` with ``beatgan generate``
and scores them against the training loops with ``beatgan score --metrics --json``, the very
commands a user runs, so the figures are the command's own. Prints a table (each metric beside
the held-out reference point and the goal of issue 13), the fraction of beats within the
similarity threshold of some training loop, the distribution of each beat's nearest-loop score,
and one JSON line. It passes or fails nothing.

    python bench/bench_quality.py --weights weights --n 200           # the model card's figures
    python bench/bench_quality.py --weights runs/x/export --n 20      # a quick look on a CPU
    python bench/bench_quality.py --weights weights --markdown        # + the card's table rows
    python bench/bench_quality.py --weights weights --json weights/quality.json   # for the card
    python bench/bench_quality.py --weights weights --target-bpm 125  # against loops retimed to 125
    python bench/bench_quality.py --weights runs/x/export --raw       # the raw weights, not the EMA
    python bench/bench_quality.py --weights weights --seeds 6 --json weights/quality.json
                                           # + how the figures spread over seeds 0-5 (the card's)

One draw of 200 beats is one sample: the shipped weights' tempo consistency reads 0.733-0.742
over seeds 0-5 (weights/quality.json). ``--seeds K`` measures seeds ``--seed`` ..
``--seed + K - 1``; the figures stay those of ``--seed``, and ``across_seeds`` adds each
metric's mean, spread and how many seeds meet its goal.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from beatgan.cli import main as beatgan
from beatgan.goals import GOALS, goals_met

#: The figures reported, in the table's order: the shipping goals' four (``beatgan.goals``,
#: issue 13) and the JS divergence, which has no goal.
FIGURES = ("tempo_consistency", "frechet", "ndb_fraction", "js", "diversity_ratio")
PERCENTILES = (0, 10, 25, 50, 75, 90, 100)


def run_json(argv: list[str]) -> dict:
    """Run a ``beatgan`` command that prints one JSON object; return it."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = beatgan(argv)
    if code != 0:
        raise SystemExit(f"beatgan {' '.join(argv)} failed with exit code {code}")
    return json.loads(out.getvalue())


def summarise(score: dict) -> dict:
    """The model card's figures from ``beatgan score --metrics --json`` output."""
    metrics = score["metrics"]
    held_out = metrics["reference_points"].get("held_out", {})
    best = np.array([f["nearest"][0]["score"] if f["nearest"][0]["score"] is not None else np.inf
                     for f in score["files"]])
    met = goals_met(metrics["metrics"], held_out)
    rows = {key: {"generated": metrics["metrics"][key], "held_out": held_out.get(key),
                  "goal": GOALS[key].text if key in GOALS else "", "meets_goal": met.get(key)}
            for key in FIGURES}
    return {"n_generated": score["n_generated"], "n_train": score.get("n_train"),
            "n_reference": metrics.get("n_reference"), "threshold": score["threshold"],
            "fraction_similar": score["fraction_similar"],
            "fraction_similar_shift_tolerant": score.get("fraction_similar_shift_tolerant"),
            "nearest_score_percentiles": {f"p{p}": float(np.percentile(best, p)) for p in PERCENTILES},
            "metrics": rows}


def measure(weights: str | Path, *, data: str | Path, n: int, seed: int,
            out: Path | None = None, target_bpm: float | None = None, raw: bool = False) -> dict:
    """Generate ``n`` beats (latents of ``seed``) from ``weights`` into ``out`` (default: a
    temporary folder) and score them against ``data``: the figures that ``--json`` writes.

    The loops are loaded as the weights' config says, or brought to ``target_bpm``, which must be
    the bpm the weights generate at (SystemExit otherwise); the summary's ``target_bpm`` says
    which (None: each loop at its own tempo). ``raw``: draw from the folder's
    last raw weights instead of their moving average (``beatgan generate --raw``).
    """
    with tempfile.TemporaryDirectory() as scratch:
        out = out or Path(scratch) / "beats"
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = beatgan(["generate", "--weights", str(weights), "--n", str(n),
                            "--out", str(out), "--seed", str(seed), *(["--raw"] if raw else [])])
        if code != 0:
            raise SystemExit(f"beatgan generate failed with exit code {code}")
        generated_s = time.perf_counter() - start
        sidecar = json.loads((out / "beats.json").read_text())
        bpm = sidecar["config"]["bpm"]
        # score's --target-bpm also sets the grid it scores on: beats of another tempo miss it.
        if target_bpm is not None and target_bpm != bpm:
            raise SystemExit(f"--target-bpm {target_bpm:g} differs from the {bpm:g} bpm that "
                             f"{weights} generates at: give --target-bpm {bpm:g} or leave it out")
        retime = [] if target_bpm is None else ["--target-bpm", str(target_bpm)]
        score = run_json(["score", "--data", str(data), "--generated", str(out), "--metrics",
                          "--json", *retime])
        made_by = sidecar["weights"]
        if target_bpm is None:
            target_bpm = sidecar["config"].get("target_bpm")
    summary = summarise(score)
    summary.update(weights=made_by, seed=seed, data=str(data), target_bpm=target_bpm,
                   generate_s=round(generated_s, 2),
                   score_s=round(time.perf_counter() - start - generated_s, 2))
    return summary


def across_seeds(summaries: list[dict]) -> dict:
    """Each goal metric over ``summaries`` (``measure`` results at different seeds): its values by
    seed, mean, sample sd, lowest, highest, and at how many seeds it meets its goal."""
    seeds = [s["seed"] for s in summaries]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"each seed once, got {seeds}")
    out: dict = {"seeds": seeds, "n": summaries[0]["n_generated"], "metrics": {}}
    for key, goal in GOALS.items():
        values = np.array([s["metrics"][key]["generated"] for s in summaries], dtype=np.float64)
        out["metrics"][key] = {
            "values": values.tolist(), "mean": float(values.mean()),
            "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "min": float(values.min()), "max": float(values.max()), "goal": goal.text,
            "met_at": sum(s["metrics"][key]["meets_goal"] is True for s in summaries)}
    return out


def spread_table(spread: dict) -> str:
    """``across_seeds``'s figures, one line a metric."""
    seeds = spread["seeds"]
    lines = [f"over {len(seeds)} seeds ({seeds[0]}-{seeds[-1]}), {spread['n']} beats each:",
             f"{'metric':<20}{'mean':>12}{'sd':>10}{'lowest':>12}{'highest':>12}  goal met at",
             "-" * 80]
    for key, row in spread["metrics"].items():
        lines.append(f"{key:<20}{row['mean']:12.3f}{row['sd']:10.3f}{row['min']:12.3f}"
                     f"{row['max']:12.3f}  {row['met_at']} of {len(seeds)}")
    return "\n".join(lines)


def table(summary: dict) -> str:
    lines = [f"{'metric':<20}{'generated':>12}{'held-out':>12}  {'goal':<16}meets",
             "-" * 68]
    for key, row in summary["metrics"].items():
        held = "" if row["held_out"] is None else f"{row['held_out']:12.3f}"
        meets = {None: "", True: "yes", False: "NO"}[row["meets_goal"]]
        lines.append(f"{key:<20}{row['generated']:12.3f}{held:>12}  {row['goal']:<16}{meets}")
    lines.append(f"similar (best score <= {summary['threshold']}): "
                 f"{summary['fraction_similar']:.3f} of {summary['n_generated']} beats"
                 + ("" if summary["fraction_similar_shift_tolerant"] is None else
                    f"; shift-tolerant {summary['fraction_similar_shift_tolerant']:.3f}"))
    lines.append("nearest-loop score, percentiles: " + ", ".join(
        f"{name} {value:.3f}" for name, value in summary["nearest_score_percentiles"].items()))
    return "\n".join(lines)


#: The model card's names of the metrics (weights/README.md, "Metrics").
CARD_NAMES = {"tempo_consistency": "tempo consistency", "frechet": "Frechet distance",
              "ndb_fraction": "NDB/k", "diversity_ratio": "diversity ratio"}


def markdown(summary: dict) -> str:
    """The model card's metric table and percentile line, filled in (weights/README.md's format)."""
    lines = ["| metric | generated | held-out loops | goal |", "| --- | --- | --- | --- |"]
    for key, name in CARD_NAMES.items():
        row = summary["metrics"][key]
        held = "" if row["held_out"] is None else f"{row['held_out']:.3f}"
        verdict = {None: "", True: " (met)", False: " (**not met**)"}[row["meets_goal"]]
        lines.append(f"| {name} | {row['generated']:.3f} | {held} | {row['goal']}{verdict} |")
    lines.append(f"| fraction similar (best score <= {summary['threshold']}) | "
                 f"{summary['fraction_similar']:.3f} | | reported, with the distribution below |")
    lines += ["", "Nearest-loop score distribution (percentiles 0, 10, 25, 50, 75, 90, 100): "
              + ", ".join(f"{value:.3f}" for value in summary["nearest_score_percentiles"].values())
              + "."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="weights", help="weights folder (default weights/)")
    parser.add_argument("--data", default="ULTIMATE_DRUM_LOOPS",
                        help="training loops (the demo pack when the default folder holds no audio)")
    parser.add_argument("--n", type=int, default=200, help="beats to generate (200 for the model card)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1,
                        help="also measure the next seeds, --seed .. --seed + SEEDS - 1, and "
                             "report how the figures spread (default 1: --seed alone)")
    parser.add_argument("--out", type=Path, default=None,
                        help="keep the generated beats here (default: a temporary folder)")
    parser.add_argument("--target-bpm", type=float, default=None,
                        help="bring the loops to this tempo before scoring: the bpm the "
                             "weights generate at (default: as the weights' config says)")
    parser.add_argument("--raw", action="store_true",
                        help="draw from the last raw weights instead of their moving average "
                             "(a run's export/ has both)")
    parser.add_argument("--markdown", action="store_true",
                        help="also print the model card's metric table, filled in")
    parser.add_argument("--json", type=Path, default=None, dest="json_path",
                        help="also write the figures to this JSON file (what "
                             "docs/make_model_card.py reads: weights/quality.json)")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")

    summary = measure(args.weights, data=args.data, n=args.n, seed=args.seed, out=args.out,
                      target_bpm=args.target_bpm, raw=args.raw)
    if args.seeds > 1:
        others = [measure(args.weights, data=args.data, n=args.n, seed=seed,
                          target_bpm=args.target_bpm, raw=args.raw)
                  for seed in range(args.seed + 1, args.seed + args.seeds)]
        summary["across_seeds"] = across_seeds([summary, *others])
    weights = summary["weights"]
    print(f"{args.n} beats from {weights['path']} (sha256 {weights['sha256'][:16]}..., "
          f"step {weights['step']}) against {args.data}")
    print(table(summary))
    if "across_seeds" in summary:
        print("\n" + spread_table(summary["across_seeds"]) + "\n")
    if args.markdown:
        print("\n" + markdown(summary) + "\n")
    print(json.dumps(summary))
    if args.json_path is not None:
        args.json_path.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"wrote {args.json_path}")


if __name__ == "__main__":
    main()
