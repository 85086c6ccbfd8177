"""Which checkpoint to ship: score a run's kept checkpoints with the beat metrics, export the best.

A GAN's last weights are not always its best: a critic that loses its Lipschitz bound late in a
run can leave a final generator worse than one checkpointed earlier. ``select_checkpoint``
restores the generator of every checkpoint in ``RUN/checkpoints`` (its moving average when the
run kept one, else the raw weights), draws ``n`` beats from the same latent vectors
(``generation.sample_latents(n, seed=seed)``, the beats ``beatgan generate --seed`` draws), scores
them with ``metrics.evaluate`` against one reference fitted once on the training loops, and picks
one checkpoint by one metric, or by the shipping goals (``beatgan.goals``):

    frechet, ndb_fraction, js    lowest
    tempo_consistency            highest
    diversity_ratio              closest to 1
    goals                        most goals met, judged beside the held-out loops; of those,
                                 the lowest Frechet distance

By one metric, the reference holds out ``n`` loops, as many as the beats drawn. By the goals, it
holds out ``metrics.DEFAULT_HELD_OUT`` (40), as ``beatgan score --metrics`` and the model card
do: the Frechet distance of a held-out set falls as the set grows (318 at 200 loops, 961 at 40,
on the demo pack), so "3x held-out" means what the card means only at the card's set size.

With ``seeds=K`` each checkpoint draws K sets of ``n`` beats and its row holds their means:
neighbouring checkpoints of a long run differ by about as much as two draws of 200 beats do, so
one draw can pick a checkpoint by luck. Ties go to the later step.

``export_selection`` writes the chosen checkpoint as a weights folder with
``export.export_weights`` (the files ``train`` exports), the choice added to
``weights.json`` and every row in ``selection.json``, all written as one batch.

Nothing in the run folder is changed: an unreadable checkpoint is reported and skipped (not set
aside as a resuming ``train`` does), and ``RUN/export`` is never written.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from . import checkpoint as ckpt
from .config import Config
from .goals import GOALS, count_met, goals_met

if TYPE_CHECKING:  # metrics loads scikit-learn and librosa; data is only a type here
    from .data import LoopSet
    from .metrics import TrainingReference

#: Selection criteria and which way each is better: ``metrics.DIRECTIONS``, written out here so
#: that the command's help does not load the metrics' libraries (tests/test_selection.py checks
#: that the two agree).
CRITERIA = {
    "frechet": "lower",
    "ndb_fraction": "lower",
    "js": "lower",
    "tempo_consistency": "higher",
    "diversity_ratio": "closer to 1",
}
#: What else ``--metric`` takes: the checkpoint that meets the most of ``beatgan.goals.GOALS``.
GOALS_CRITERION = "goals"
#: Every choice ``select_checkpoint`` takes, and which way is better.
CHOICES = {**CRITERIA, GOALS_CRITERION: "most met, then lower frechet"}
#: The folder ``beatgan select`` exports to inside the run folder, and the table written there.
SELECTION_DIR = "best"
SELECTION_JSON = "selection.json"
#: The table's columns: metric key -> heading, the goals' short names (also in the help).
COLUMN_NAMES = {key: goal.name for key, goal in GOALS.items()}


class SkippedCheckpointWarning(UserWarning):
    """A checkpoint could not be read or restored; selection went on without it."""


def min_beats(metric: str) -> int:
    """The fewest generated beats that make ``metric`` meaningful.

    Frechet: one more than the PCA components (16), else the covariance of the beats is
    singular. NDB/k and JS: about 5 beats per k-means bin (8), else an empty bin is never
    significant and a collapse goes unseen. Diversity: a pair. Tempo: one beat. The goals: what
    the four metrics they judge need.
    """
    from .metrics import DEFAULT_CLUSTERS, DEFAULT_COMPONENTS

    if metric == GOALS_CRITERION:
        return max(min_beats(key) for key in GOALS)
    if metric not in CRITERIA:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(CHOICES)}")
    return {"frechet": DEFAULT_COMPONENTS + 1, "ndb_fraction": 5 * DEFAULT_CLUSTERS,
            "js": 5 * DEFAULT_CLUSTERS, "diversity_ratio": 2, "tempo_consistency": 1}[metric]


def draws_text(seed: int, seeds: int = 1) -> str:
    """The latent draws of a selection in words: 'seed 0', or 'mean of 3 draws, seeds 0-2'."""
    if seeds == 1:
        return f"seed {seed}"
    return f"mean of {seeds} draws, seeds {seed}-{seed + seeds - 1}"


def badness(metric: str, value: float) -> float:
    """``value`` of ``metric`` as a number to minimise (its direction in ``CRITERIA``)."""
    direction = CRITERIA[metric]
    if direction == "higher":
        return -value
    if direction == "closer to 1":
        return abs(value - 1.0)
    return value


def _json_numbers(values: dict[str, float]) -> dict[str, float | None]:
    """Metric values as floats, NaN and infinities as None (JSON has no NaN)."""
    return {k: float(v) if math.isfinite(v) else None for k, v in values.items()}


@dataclasses.dataclass(frozen=True)
class CheckpointScore:
    """One checkpoint's row: its step, file, which generator was scored, and its metrics.

    ``metrics``: ``metrics.DIRECTIONS`` key -> value, the mean over the draws when there were
    several (``select_checkpoint(seeds=K)``); empty when the generator's output was not finite
    (a diverged run), with the reason in ``note``. ``sd``: the sample standard deviation of each
    metric over the draws; empty for one draw.
    """

    step: int
    path: Path
    ema: bool
    metrics: dict[str, float]
    note: str = ""
    sd: dict[str, float] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        row = {"step": self.step, "checkpoint": self.path.name, "ema": self.ema,
               "metrics": _json_numbers(self.metrics), "note": self.note}
        if self.sd:
            row["sd"] = _json_numbers(self.sd)
        return row


def choose(rows: Sequence[CheckpointScore], metric: str,
           held_out: dict[str, float] | None = None) -> CheckpointScore:
    """The row best by ``metric`` (direction from ``CHOICES``); ties go to the later step.

    Rows without a finite value of ``metric`` cannot be chosen; ValueError when no row has one.
    ``metric="goals"``: the row meeting the most goals beside ``held_out`` (the held-out loops'
    metrics, required), of those the lowest Frechet distance; rows without a finite Frechet
    distance (a diverged generator's) are not chosen.
    """
    if metric == GOALS_CRITERION:
        if not held_out:
            raise ValueError("choosing by the goals needs the held-out loops' metrics")
        candidates = [row for row in rows if math.isfinite(row.metrics.get("frechet", math.nan))]
        if not candidates:
            raise ValueError(f"no checkpoint has metrics to judge by the goals: every "
                             f"generator's output was unusable "
                             f"({'; '.join(f'step {r.step}: {r.note}' for r in rows)})")
        return min(candidates, key=lambda row: (-count_met(row.metrics, held_out),
                                                row.metrics["frechet"], -row.step))
    candidates = [row for row in rows if math.isfinite(row.metrics.get(metric, math.nan))]
    if not candidates:
        raise ValueError(f"no checkpoint has a finite {metric}: every generator's output was "
                         f"unusable ({'; '.join(f'step {r.step}: {r.note}' for r in rows)})")
    return min(candidates, key=lambda row: (badness(metric, row.metrics[metric]), -row.step))


@dataclasses.dataclass(frozen=True)
class Selection:
    """The scores of a run's checkpoints and the one chosen.

    ``rows``: one per checkpoint that could be read, oldest first. ``skipped``: (file name,
    reason) of the others. ``reference_points``: ``metrics.TrainingReference.points`` (the
    held-out real loops and the other reference sets, ``n_reference`` clips each). ``seeds``:
    draws of ``n`` beats per checkpoint, at seeds ``seed`` to ``seed + seeds - 1``; the rows'
    metrics are their means. ``start``: for a warm-started run, the weights it went on from,
    scored on the same beats (step 0; not a candidate), or None with ``start_note`` saying why
    they could not be (empty for a run from scratch).
    """

    run_dir: Path
    config: Config
    metric: str
    n: int
    seed: int
    rows: list[CheckpointScore]
    skipped: list[tuple[str, str]]
    reference_points: dict[str, dict[str, float]]
    n_reference: int
    chosen: CheckpointScore
    seeds: int = 1
    start: CheckpointScore | None = None
    start_note: str = ""

    @property
    def start_better(self) -> bool:
        """True when the weights a warm-started run went on from beat the chosen checkpoint by
        the same criterion and draws (ties go to the checkpoint): the run has not improved on
        them."""
        if self.start is None or not self.start.metrics:
            return False
        held_out = self.reference_points.get("held_out")
        return choose([self.start, self.chosen], self.metric, held_out=held_out) is self.start

    def goals_met(self, row: CheckpointScore) -> dict[str, bool | None]:
        """``beatgan.goals.goals_met`` of ``row`` beside the held-out loops."""
        return goals_met(row.metrics, self.reference_points.get("held_out"))

    def chosen_value(self) -> float:
        """The chosen row's figure that chose it: its metric, or the number of goals it met."""
        if self.metric == GOALS_CRITERION:
            return float(count_met(self.chosen.metrics, self.reference_points.get("held_out")))
        return self.chosen.metrics[self.metric]

    def record(self) -> dict[str, Any]:
        """What ``weights.json`` adds about the choice (under ``"selection"``)."""
        record = {"metric": self.metric, "direction": CHOICES[self.metric],
                  "value": self.chosen_value(), "n": self.n, "seed": self.seed,
                  "seeds": self.seeds, "checkpoint": self.chosen.path.name,
                  "run": str(self.run_dir), "candidates": len(self.rows)}
        if self.metric == GOALS_CRITERION:
            record["goals_met"] = self.goals_met(self.chosen)
        if self.start is not None:
            record["start"] = {"weights": str(self.start.path),
                               "metrics": _json_numbers(self.start.metrics),
                               "better": self.start_better}
        return record

    def to_dict(self) -> dict[str, Any]:
        """Every row, the reference points and the choice; plain JSON types (no NaN)."""
        return {"run": str(self.run_dir), "metric": self.metric,
                "direction": CHOICES[self.metric], "n": self.n, "seed": self.seed,
                "seeds": self.seeds, "chosen_step": self.chosen.step,
                "rows": [row.to_dict() for row in self.rows],
                "skipped": [{"checkpoint": name, "reason": why} for name, why in self.skipped],
                "reference_points": {name: _json_numbers(values)
                                     for name, values in self.reference_points.items()},
                "n_reference": self.n_reference,
                "start": None if self.start is None else {**self.start.to_dict(),
                                                          "better": self.start_better},
                "start_note": self.start_note}

    def table(self) -> str:
        """Step and metrics of every checkpoint, the held-out loops above; '*' marks the choice."""
        scored = "EMA generator" if all(r.ema for r in self.rows) else (
            "raw generator" if not any(r.ema for r in self.rows) else "EMA generator where kept")
        plural = "" if len(self.rows) == 1 else "s"
        lines = [f"{len(self.rows)} checkpoint{plural} of {self.run_dir}, {self.n} beats each ("
                 f"{draws_text(self.seed, self.seeds)}, {scored}); chosen by {self.metric} ({CHOICES[self.metric]})"]
        held_out = self.reference_points.get("held_out")
        # Goals met, by the goals only: their Frechet goal is set at the card's held-out size.
        by_goals = self.metric == GOALS_CRITERION
        # The four goals' metrics, and the chosen one when it is none of them (js).
        columns = {**COLUMN_NAMES, **({} if by_goals or self.metric in COLUMN_NAMES
                                      else {self.metric: self.metric})}
        header = f"  {'step':>10}" + "".join(f"{name:>11}" for name in columns.values())
        if by_goals:
            header += f"{'goals':>7}"
        lines += [header, "-" * len(header)]

        def goals(row: CheckpointScore) -> str:
            """Goals met of the four, e.g. '    3/4'; nothing unless choosing by them."""
            if not by_goals:
                return ""
            return f"{count_met(row.metrics, held_out)}/{len(GOALS)}".rjust(7)

        def cells(values: dict[str, float]) -> str:
            return "".join(f"{values[key]:>11.3f}" if key in values else f"{'-':>11}"
                           for key in columns)

        if held_out is not None:
            pad = " " * 7 if by_goals else ""
            lines.append(f"  {'held-out':>10}{cells(held_out)}{pad}   {self.n_reference} real "
                         f"loops kept out of the fit")
        if self.start is not None:
            lines.append(f"  {'start':>10}{cells(self.start.metrics)}{goals(self.start)}   "
                         f"{self.start.note}")
        for row in self.rows:
            mark = "*" if row is self.chosen else " "
            note = f"   {row.note}" if row.note else ""
            lines.append(f"{mark} {row.step:>10}{cells(row.metrics)}{goals(row)}{note}")
        if by_goals:
            met = self.goals_met(self.chosen)
            short = [COLUMN_NAMES[key] for key, ok in met.items() if ok is not True]
            lines.append(f"* chosen: step {self.chosen.step} (meets {len(met) - len(short)} of "
                         f"{len(met)} goals" + (f"; short: {', '.join(short)}" if short else "")
                         + f"; Frechet {self.chosen.metrics['frechet']:,.0f})")
        else:
            lines.append(f"* chosen: step {self.chosen.step} ({self.metric} "
                         f"{self.chosen.metrics[self.metric]:.4g})")
        if self.start_better:
            lines.append(f"! the start ({self.start.path.parent}) scores better by "
                         f"{self.metric} on the same beats: this run has not improved on it")
        if self.start_note:
            lines.append(f"start not scored: {self.start_note}")
        lines += [f"skipped {name}: {why}" for name, why in self.skipped]
        return "\n".join(lines)


# --- the run ---------------------------------------------------------------------------------
def run_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of the run's checkpoints, oldest first; errors say what is missing.

    FileNotFoundError when ``run_dir`` is not a folder; ValueError when it holds no checkpoint.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no run folder {run_dir} (give the --out folder of a "
                                f"beatgan train run)")
    found = ckpt.list_checkpoints(run_dir / ckpt.CHECKPOINT_DIR)
    if not found:
        raise ValueError(f"{run_dir / ckpt.CHECKPOINT_DIR} holds no checkpoint (ckpt-*.npz): "
                         f"nothing to select from; train keeps the newest --keep-checkpoints")
    return found


def check_request(run_dir: str | Path, *, metric: str, n: int) -> list[tuple[int, Path]]:
    """The run's checkpoints (``run_checkpoints``) after checking that ``n`` beats suffice for
    ``metric``: what can be refused before the loops are loaded."""
    if n < min_beats(metric):
        raise ValueError(f"n = {n} beats are too few for {metric}: it needs at least "
                         f"{min_beats(metric)}")
    return run_checkpoints(run_dir)


def run_config(run_dir: str | Path) -> Config:
    """The run's Config: ``RUN/config.json``, else the newest readable checkpoint's record."""
    run_dir = Path(run_dir)
    if (run_dir / "config.json").is_file():
        return Config.load(run_dir)
    for _, path in reversed(run_checkpoints(run_dir)):
        try:
            return Config.from_dict(ckpt.load_checkpoint(path)[1]["config"])
        except (ValueError, KeyError):
            continue
    raise ValueError(f"{run_dir} has no config.json and no readable checkpoint records one")


def _generator_group(arrays: dict[str, np.ndarray]) -> tuple[str, bool]:
    """The checkpoint group to sample from: the moving average when kept, else G itself."""
    if ckpt.has_group(arrays, ckpt.EMA_GROUP):
        return ckpt.EMA_GROUP, True
    return "generator", False


def _read(path: Path, config: Config) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A checkpoint's (arrays, meta); ValueError when it is unreadable or from another config."""
    arrays, meta = ckpt.load_checkpoint(path)
    if "config" in meta and Config.from_dict(meta["config"]) != config:
        raise ValueError(f"{path.name} was written with another config than the run's")
    return arrays, meta


def score_checkpoint(path: Path, step: int, *, generator: Any,
                     latents: Sequence[np.ndarray], reference: TrainingReference,
                     config: Config) -> CheckpointScore:
    """Restore the checkpoint's generator into ``generator``, draw beats from each
    ``(n, latent_dim)`` array of ``latents`` and score each draw against ``reference``.

    The row's metrics are the means over the draws, ``sd`` their spread (several draws only).
    ValueError when the checkpoint cannot be read.
    """
    arrays, _ = _read(path, config)
    group, ema = _generator_group(arrays)
    ckpt.restore_group(arrays, group, generator.variables)
    del arrays  # a d = 64 checkpoint is 0.5 GB: free it before generating
    return _score_draws(generator, latents, reference, step=step, path=path, ema=ema)


def _score_draws(generator: Any, latents: Sequence[np.ndarray], reference: TrainingReference,
                 *, step: int, path: Path, ema: bool, note: str = "") -> CheckpointScore:
    """The row of ``generator`` as it stands: each draw scored, then their means and spread."""
    from .generation import run_generator
    from .metrics import evaluate

    draws = []
    for vectors in latents:
        audio = run_generator(generator, vectors)
        if not np.all(np.isfinite(audio)):
            return CheckpointScore(step=step, path=path, ema=ema, metrics={},
                                   note="output not finite (diverged)")
        draws.append(evaluate(audio, reference).metrics)
    values = {key: np.array([draw[key] for draw in draws], dtype=np.float64) for key in draws[0]}
    sd = {key: float(v.std(ddof=1)) for key, v in values.items()} if len(draws) > 1 else {}
    return CheckpointScore(step=step, path=path, ema=ema, note=note, sd=sd,
                           metrics={key: float(v.mean()) for key, v in values.items()})


def run_start(run_dir: str | Path) -> tuple[Path | None, str]:
    """The generator file a warm-started run went on from, as the run recorded it (its export,
    or before the first export its newest checkpoint): (path, "") while it is where the run
    found it and unchanged, (None, why not) when it has gone or changed, (None, "") for a run
    from scratch. A relative folder is taken from the working directory, as ``train
    --init-from`` took it. ValueError for a record that is not one."""
    from .export import GENERATOR_WEIGHTS, file_sha256, read_export_info
    from .training import EXPORT_DIR

    start = read_export_info(Path(run_dir) / EXPORT_DIR).get("started_from")
    if start is None:  # no export yet (a run still training, or cut short)
        start = _checkpoint_started_from(Path(run_dir) / ckpt.CHECKPOINT_DIR)
    start = start or {}
    if not isinstance(start, dict) or not isinstance(start.get("folder", ""), str) or \
            not isinstance(start.get("generator_sha256", ""), str):
        raise ValueError(f"{Path(run_dir) / EXPORT_DIR}: its record of the warm start "
                         f"(started_from) is not one: {start!r}")
    if not start.get("folder"):
        return None, ""
    path = Path(start["folder"]) / GENERATOR_WEIGHTS
    if not path.is_file():
        where = "" if path.is_absolute() else f" (looked for from {Path.cwd()}, as the run " \
                                              f"recorded the folder relative to where it ran)"
        return None, f"{path} is not there any more{where}"
    if start.get("generator_sha256") and file_sha256(path) != start["generator_sha256"]:
        return None, (f"{path} has changed since the run started from it (sha256 "
                      f"{start['generator_sha256'][:16]}... then)")
    return path, ""


def _checkpoint_started_from(directory: Path) -> dict[str, Any] | None:
    """The warm-start record of the newest checkpoint whose record can be read, or None."""
    for _, path in reversed(ckpt.list_checkpoints(directory)):
        try:
            return ckpt.read_meta(path).get("started_from")
        except (ValueError, FileNotFoundError):
            continue
    return None


def _start_file(start_path: Path, *, ema: bool) -> tuple[Path, bool]:
    """What to score of the start folder beside rows of the moving average (``ema``) or of the
    raw generator: its ``generator.weights.h5`` or its raw weights, and whether that is an
    average (as the folder's ``weights.json`` says)."""
    from .export import RAW_GENERATOR_WEIGHTS, read_export_info

    averaged = bool(read_export_info(start_path.parent).get("ema"))
    raw = start_path.parent / RAW_GENERATOR_WEIGHTS
    if not ema and raw.is_file():
        return raw, False
    return start_path, averaged


def select_checkpoint(run_dir: str | Path, loops: LoopSet, *, metric: str = "frechet",
                      n: int = 64, seed: int = 0, seeds: int = 1,
                      config: Config | None = None, progress: bool = True) -> Selection:
    """Score every checkpoint of ``run_dir`` against ``loops`` and choose one by ``metric``.

    Args:
        run_dir: a training run folder (``RUN/checkpoints/ckpt-*.npz``).
        loops: the training loops (``workflows.load_training_loops``), loaded with the run's
            config; the metrics' reference is fitted on them once, with ``n`` held-out loops
            (by the goals: ``metrics.DEFAULT_HELD_OUT``, as the model card's figures).
        metric: a key of ``CHOICES``: a metric, or ``"goals"``.
        n: beats drawn from each checkpoint, at least ``min_beats(metric)``.
        seed: seeds the latent vectors, the same for every checkpoint.
        seeds: draws of ``n`` beats per checkpoint (seeds ``seed``, ``seed + 1``, ...); each
            row holds the metrics' means. One draw of 200 beats moves tempo consistency by
            about 0.005 (sd, the shipped weights), as much as neighbouring checkpoints differ.
        config: the run's config (default ``run_config(run_dir)``).
        progress: a tqdm bar over the checkpoints.

    A warm-started run's start (``run_start``) is scored on the same beats as ``Selection.start``,
    beside the checkpoints but not among them, so a run that only lost ground says so.

    An unreadable checkpoint (or one from another config) is reported
    (``SkippedCheckpointWarning``) and skipped; ValueError when none is left, or ``n`` is too
    small for ``metric``.
    """
    from tqdm.auto import tqdm

    from .generation import inference_config, load_weights_checked, sample_latents
    from .model import build_generator
    from .workflows import metrics_reference

    run_dir = Path(run_dir)
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    found = check_request(run_dir, metric=metric, n=n)
    config = run_config(run_dir) if config is None else config
    # By the goals: the held-out set of `beatgan score --metrics`, which the goals were set by.
    n_held_out = None if metric == GOALS_CRITERION else n
    latents = [sample_latents(n, latent_dim=config.latent_dim, seed=seed + k)
               for k in range(seeds)]  # before the reference's fit: a bad seed fails at once
    start_path, start_note = run_start(run_dir)  # a bad record fails before the scoring
    reference = metrics_reference(loops, config=config, seed=config.seed, n_held_out=n_held_out)
    if metric == GOALS_CRITERION and not reference.points.get("held_out"):
        raise ValueError(f"choosing by the goals needs held-out loops to judge by, and "
                         f"{len(loops)} loops leave none out: use more loops or another --metric")
    generator = build_generator(inference_config(config))  # as `generate` will draw them
    rows, skipped = [], []
    for step, path in tqdm(found, desc="checkpoints", unit="ckpt", disable=not progress,
                           dynamic_ncols=True):
        try:
            rows.append(score_checkpoint(path, step, generator=generator, latents=latents,
                                         reference=reference, config=config))
        except (ValueError, FileNotFoundError) as error:  # torn, foreign, other shapes, or
            skipped.append((path.name, str(error)))             # pruned by a running train
            warnings.warn(SkippedCheckpointWarning(f"skipped {path.name}: {error}"), stacklevel=2)
    if not rows:
        raise ValueError(f"none of the {len(found)} checkpoints in {run_dir / ckpt.CHECKPOINT_DIR}"
                         f" is readable: {'; '.join(why for _, why in skipped)}")
    start = None
    if start_path is not None:  # a warm start: the weights it went on from, on the same beats
        start_path, start_ema = _start_file(start_path, ema=rows[0].ema)
        try:
            load_weights_checked(generator, start_path, config)
            start = _score_draws(generator, latents, reference, step=0, path=start_path,
                                 ema=start_ema, note=f"the run's start: {start_path.parent}")
        except ValueError as error:  # unreadable: the checkpoints' table still stands
            start_note = str(error)
    return Selection(run_dir=run_dir, config=config, metric=metric, n=n, seed=seed, seeds=seeds,
                     rows=rows, skipped=skipped, start=start, start_note=start_note,
                     reference_points={k: dict(v) for k, v in reference.points.items()},
                     n_reference=reference.n_reference,
                     chosen=choose(rows, metric, held_out=reference.points.get("held_out")))


# --- export ----------------------------------------------------------------------------------
def check_out_folder(run_dir: str | Path, out_dir: str | Path) -> Path:
    """``out_dir``, refused when it is the run folder itself or the run's training export."""
    from .training import EXPORT_DIR

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if out_dir.resolve() in (run_dir.resolve(), (run_dir / EXPORT_DIR).resolve()):
        raise ValueError(f"--out {out_dir}: the run folder and its {EXPORT_DIR}/ belong to "
                         f"train; export the selection to a folder of its own "
                         f"(default {run_dir / SELECTION_DIR})")
    return out_dir


def export_selection(selection: Selection, out_dir: str | Path, *,
                     dtype: str = "float32") -> Path:
    """Write the chosen checkpoint as a weights folder in ``out_dir``; returns it.

    The files of ``train``'s export (``export.export_weights``: the generator, its raw weights
    when an EMA was kept, the discriminator, ``config.json``, ``weights.json``) with
    ``selection.record()`` under ``"selection"`` in ``weights.json`` (and the run export's
    ``"trained_on"`` and ``"rollbacks"``, when it has them, and the checkpoint's warm start,
    ``"started_from"``) and
    ``selection.to_dict()`` as ``selection.json``, all renamed into place together.
    """
    from .export import export_weights, read_export_info
    from .model import build_discriminator, build_generator
    from .training import EXPORT_DIR

    out_dir = check_out_folder(selection.run_dir, out_dir)
    # Where the run trained and how often it rolled back, as its own export recorded them
    # (not where the selection runs).
    run_info = read_export_info(selection.run_dir / EXPORT_DIR)
    carried = {key: run_info[key] for key in ("trained_on", "rollbacks") if run_info.get(key)}
    config, chosen = selection.config, selection.chosen
    arrays, meta = _read(chosen.path, config)
    started_from = meta.get("started_from")
    if started_from:  # a warm-started run: what its weights went on from
        carried["started_from"] = started_from
    generator, discriminator = build_generator(config), build_discriminator(config)
    ckpt.restore_group(arrays, "generator", generator.variables)
    ckpt.restore_group(arrays, "discriminator", discriminator.variables)
    ema_generator = None
    if chosen.ema:
        from .warm_start import ema_updates

        ema_generator = build_generator(config)
        ckpt.restore_group(arrays, ckpt.EMA_GROUP, ema_generator.variables)
        carried["ema_updates"] = ema_updates(chosen.step, started_from)
    table = json.dumps(selection.to_dict(), indent=2, allow_nan=False) + "\n"
    return export_weights(generator, discriminator, config=config, folder=out_dir,
                          ema_generator=ema_generator, step=chosen.step, dtype=dtype,
                          extra_info={"selection": selection.record(), **carried},
                          extra_files={SELECTION_JSON: table.encode()})

