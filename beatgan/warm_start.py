"""Start a new training run from a weights folder: a warm start.

A run's checkpoints hold all it takes to resume it (the critic, both Adam states, the data
order), but at d = 64 they are about 0.5 GB each and stay in the run folder. A weights folder
(``weights/``, a run's ``export/``, ``beatgan select``'s output) is what travels: the generator,
its moving average when the run kept one, and the critic only when training exported it.
``train(..., init_from=folder)`` starts a *new* run from such a folder:

- the generator takes the folder's raw weights (``generator_raw.weights.h5``) when it has them,
  else its ``generator.weights.h5``; the moving average takes ``generator.weights.h5``, and its
  decay schedule goes on from the folder's step rather than starting over;
- the critic takes ``discriminator.weights.h5`` when the folder has it; otherwise it starts from
  its initialisation, and for ``critic_warmup`` iterations only the critic learns (the
  generator's learning rate is held at 0), so that the generator's first updates follow a
  critic that tells its output from the loops, not a random one;
- both Adam states start empty.

The model's shape (``MODEL_FIELDS``) must be the folder's; the training settings may differ
(precision, learning rate, batch size, drift term). ``record`` goes into every checkpoint and
into the export's ``weights.json`` as ``"started_from"``, so a model card can add up the D
updates behind the weights over every run in the chain.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from pathlib import Path
from typing import Any

from .config import Config
from .export import (DISCRIMINATOR_WEIGHTS, GENERATOR_WEIGHTS, RAW_GENERATOR_WEIGHTS,
                     file_sha256, read_export_info)

#: Config fields that shape the weights: a warm start's config must have the folder's values.
MODEL_FIELDS = ("slice_len", "channels", "latent_dim", "model_dim", "kernel_len", "upsample")
#: Iterations that train only a new critic before the generator moves (``critic_warmup=None``):
#: 2,500 critic updates, about 15-25 s of a d = 64 run on one H100 or H200.
DEFAULT_CRITIC_WARMUP = 500


@dataclasses.dataclass(frozen=True)
class WarmStart:
    """A checked weights folder to start a run from (``read_warm_start``).

    ``generator``: the file the trained generator starts from; ``average``: the file the moving
    average starts from (None: from ``generator``); ``discriminator``: None when the critic
    starts new. ``record``: the JSON-able lineage saved as ``"started_from"``, which the run
    reads too: ``critic_warmup`` (iterations during which only the critic learns) and
    ``ema_step`` (generator updates behind the folder's moving average, 0 without one, where its
    decay schedule goes on).
    """

    folder: Path
    generator: Path
    average: Path | None
    discriminator: Path | None
    record: dict[str, Any]


def read_warm_start(folder: str | Path, config: Config, *,
                    critic_warmup: int | None = None) -> WarmStart:
    """Check ``folder`` against the run's ``config`` and say what each part starts from.

    ``critic_warmup`` None: ``DEFAULT_CRITIC_WARMUP`` when the critic starts new, 0 when the
    folder has one. Raises FileNotFoundError for a folder without a generator or config.json,
    ValueError when a ``MODEL_FIELDS`` value differs or ``critic_warmup`` < 0.
    """
    folder = Path(folder)
    if not (folder / GENERATOR_WEIGHTS).is_file() or not (folder / "config.json").is_file():
        inside = [name for name in ("best", "export")
                  if (folder / name / GENERATOR_WEIGHTS).is_file()]
        hint = f"; a run folder's weights are in {folder / inside[0]}" if inside else ""
        raise FileNotFoundError(f"{folder}: a warm start needs a weights folder with "
                                f"{GENERATOR_WEIGHTS} and config.json (as training exports "
                                f"them){hint}")
    saved = Config.load(folder)
    differ = {name: (getattr(saved, name), getattr(config, name)) for name in MODEL_FIELDS
              if getattr(saved, name) != getattr(config, name)}
    if differ:
        shown = ", ".join(f"{k} {a!r} there, {b!r} here" for k, (a, b) in differ.items())
        raise ValueError(f"{folder} holds another model than this run's config describes: "
                         f"{shown}; start from weights of the same shape, or train from scratch")
    raw = folder / RAW_GENERATOR_WEIGHTS
    critic = folder / DISCRIMINATOR_WEIGHTS
    has_critic = critic.is_file()
    if critic_warmup is None:
        critic_warmup = 0 if has_critic else DEFAULT_CRITIC_WARMUP
    if critic_warmup < 0:
        raise ValueError(f"critic_warmup must be >= 0 iterations, got {critic_warmup}")
    info = read_export_info(folder)
    step = int(info.get("step") or 0)
    before = info.get("started_from") or {}
    iterations = step + int(before.get("iterations", 0))  # over every run in the chain
    d_updates = step * saved.d_updates_per_g + int(before.get("d_updates", 0))
    record = {"folder": str(folder), "generator_sha256": file_sha256(folder / GENERATOR_WEIGHTS),
              "step": step, "iterations": iterations, "d_updates": d_updates,
              "runs": int(before.get("runs", 0)) + 1,
              "critic": "loaded" if has_critic else "new", "critic_warmup": critic_warmup,
              # Older exports lack "ema_updates": every iteration then counts as one update.
              "ema_step": (int(info.get("ema_updates", iterations)) if info.get("ema") else 0)}
    return WarmStart(folder=folder, generator=raw if raw.is_file() else folder / GENERATOR_WEIGHTS,
                     average=folder / GENERATOR_WEIGHTS if raw.is_file() else None,
                     discriminator=critic if has_critic else None, record=record)


def ema_updates(step: int, started_from: dict[str, Any] | None) -> int:
    """Generator updates averaged into a run's moving average after its iteration ``step``,
    over the whole chain: the start folder's (``ema_step``), then one per iteration after the
    critic warm-up (the generator, and so its average, stands still during it). Exports record
    it as ``"ema_updates"``, and a warm start from them goes on from it."""
    start = started_from or {}
    return int(start.get("ema_step", 0)) + max(0, step - int(start.get("critic_warmup", 0)))


def apply_warm_start(start: WarmStart, generator: Any, discriminator: Any,
                     average: Any | None, config: Config) -> None:
    """Load the folder's weights into the run's freshly built models (``average``: the moving
    average's Keras model, or None when the run keeps none)."""
    from .generation import load_weights_checked

    load_weights_checked(generator, start.generator, config)
    if average is not None:
        load_weights_checked(average, start.average or start.generator, config)
    if start.discriminator is not None:
        load_weights_checked(discriminator, start.discriminator, config)


def describe_warm_start(record: dict[str, Any]) -> str:
    """One line for a log: where the run started and what its critic started from."""
    n = record["critic_warmup"]
    critic = ("its critic" if record["critic"] == "loaded" else
              f"a new critic, trained alone for {n:,} iteration{'' if n == 1 else 's'} first")
    return (f"starting from {record['folder']} ({record['iterations']:,} iterations, "
            f"{record['d_updates']:,} D updates behind it) with {critic}")


def learning_rate_note(folder: str | Path, config: Config) -> str | None:
    """A caution when the folder's run rolled back to a lower learning rate than ``config``'s.

    A rollback halves both rates (``--on-instability rollback``), and the halved rate is the
    run's state, not its config: ``config.json`` keeps the rate the run started with, so a warm
    start from it is back at the rate the run had to leave. None when nothing rolled back or the
    run starts at the rate the folder's ended at, or lower.
    """
    rollbacks = read_export_info(folder).get("rollbacks") or []
    if not rollbacks:
        return None
    ended = float(rollbacks[-1]["learning_rate"])
    if config.learning_rate <= ended * (1 + 1e-6):  # float32 halvings: 4.9999999e-05
        return None
    times = "once" if len(rollbacks) == 1 else f"{len(rollbacks)} times"
    return (f"the run that made {folder} rolled back {times} on instability and ended at "
            f"learning rate {ended:.3g}; this run starts at {config.learning_rate:.3g} "
            f"(--learning-rate {ended:.3g} to go on at the rate it ended at)")


#: Fewest history rows in a warm-up's second half for ``warmup_verdict`` to judge by: with 7
#: rows, all of them above 0 happens by chance 1/128 of the time.
MIN_VERDICT_ROWS = 7
#: The chance level below which ``warmup_verdict`` says the critic tells the two sets apart.
VERDICT_P = 0.01


def warmup_verdict(history: list[dict[str, float]], critic_warmup: int) -> str:
    """One line on whether a new critic had found a signal by the end of its warm-up.

    Reads the history rows of the warm-up's second half (``critic_warmup / 2`` < step <=
    ``critic_warmup``), whose ``wasserstein`` is the critic's estimate (its mean score of the
    loops minus that of the generated beats). A critic without a signal sits near 0, above it
    in about half the rows; a sign test (one-sided, rows taken as independent) says whether the
    rows above 0 are more than chance gives at ``VERDICT_P``. The first half is left out: a new
    critic's first scores swing while it finds its scale. The rows are the critic's training
    batches: a critic can raise its estimate there without an edge on clips scored apart from
    training (one that shifted each example did, docs/training-runs/, 2026-11-29).
    """
    rows = [row["wasserstein"] for row in history
            if critic_warmup / 2 < row["step"] <= critic_warmup]
    n = len(rows)
    if n < MIN_VERDICT_ROWS:
        return (f"critic warm-up over at iteration {critic_warmup:,}: its second half has {n} "
                f"history row{'' if n == 1 else 's'}, too few to say whether the critic tells "
                f"the generator's beats from the loops")
    above = sum(value > 0 for value in rows)
    p = sum(math.comb(n, k) for k in range(above, n + 1)) / 2 ** n
    median = statistics.median(rows)
    seen = (f"its estimate was above 0 in {above} of {n} rows of the warm-up's second half "
            f"(median {median:+.3g}; chance alone: p = {p:.2g})")
    if p < VERDICT_P:  # so most rows are above 0, and the median too
        return (f"critic warm-up over at iteration {critic_warmup:,}: the new critic tells the "
                f"generator's beats from the loops in its training batches; {seen}")
    return (f"critic warm-up over at iteration {critic_warmup:,}: the new critic has not yet "
            f"shown that it tells the generator's beats from the loops, so the generator's first "
            f"updates may follow no signal; {seen}. A longer --critic-warmup gives it more time")
