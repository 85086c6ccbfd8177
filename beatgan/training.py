"""Train a WaveGAN as a WGAN-GP: resumable, reproducible, observable.

The algorithm is WGAN-GP (Gulrajani et al., "Improved Training of
Wasserstein GANs", NeurIPS 2017, algorithm 1) with WaveGAN's settings
(Donahue et al., "Adversarial Audio Synthesis", ICLR 2019): lambda = 10,
5 critic updates per generator update, batch 64, Adam(1e-4, 0.5, 0.9) for
both networks, z uniform in [-1, 1]. One *iteration* (the unit of ``step``
and ``iterations``) is ``config.d_updates_per_g`` critic updates followed by
one generator update. The data are reshuffled every epoch; a batch never
spans two epochs (the tail of a permutation is dropped).

Randomness. The data order, z and alpha are drawn on the host from one
``numpy.random.Generator`` seeded by ``config.seed``; its state is saved in
every checkpoint. Phase shuffle draws inside the compiled step from the
discriminator's seed generators, whose state is a model variable and is
checkpointed too. Weights are initialised from seeds derived from
``config.seed`` (``beatgan.model``). So a run resumed from a checkpoint
continues exactly as the uninterrupted run would have (to float rounding).

Several devices (``devices``): each global batch of ``config.batch_size`` is
split over them with the framework's own data parallelism (JAX:
``keras.distribution.DataParallel``; TensorFlow: ``tf.distribute.MirroredStrategy``;
see ``beatgan.backends.parallel``). The draws above are the same global
draws, the losses are means over the global batch and the penalty stays per
example, so it is the same training as on one device (to float rounding), and
checkpoints (plain numpy arrays) resume on any number of devices. One exception: under
TensorFlow, ``phase_shuffle_per="example"`` draws each replica's shifts from the same state,
so the examples of one replica's slot shift alike across replicas (``model.PhaseShuffle``).

Run folder layout (``run_dir``)::

    config.json                       the Config (a resumed run must match it)
    checkpoints/ckpt-00001000.npz     atomic checkpoints, the newest ``keep`` kept; written on
                                      a worker thread while training goes on
                                      (``checkpoint.BackgroundWriter``), the last one waited for
    history.csv, history.json         one row per log interval (plot these)
    tensorboard/events.out.tfevents.* scalars and audio previews
    export/generator.weights.h5       final weights in Keras format (the generator's
    export/generator_raw.weights.h5   moving average and its raw weights when
    export/discriminator.weights.h5   ``config.ema``), with config.json and
    export/config.json                weights.json beside them: what
    export/weights.json               ``beatgan generate`` loads (``beatgan.export``)
    compile_cache/                    JAX's compiled programs, when ``beatgan train`` runs it

Time limit (``max_seconds``): counted from the start of the ``train`` call, model
building and compiling included. Before each iteration the loop checks whether the
last iteration's duration would carry it past the limit; if so it stops there, and
writes the history, a checkpoint and the export as at the end of any run.

Instability: each history row goes through ``stability.InstabilityMonitor``. What happens at a
jump of the critic's Wasserstein estimate depends on ``on_instability``:

- "warn" (the default): a ``TrainingInstabilityWarning``, and the newest checkpoint saved before
  the jump is pinned (``checkpoint.pin_checkpoint``), so the last healthy state survives pruning;
  training goes on (runs sometimes recover, and the time is paid for). A NaN/Inf loss stops the
  run (``NonFiniteLossError``).
- "rollback": the run goes back to the newest checkpoint saved at or before the monitor's last
  calm row, multiplies both learning rates by ``rollback_lr_factor`` and goes on from there with
  new draws (``BatchSampler.draw_anew``: not the batches that led into the trouble) and new
  phase-shuffle shifts (``model.reseed_phase_shuffle``); a
  NaN/Inf loss is treated the same way. The rolled-back state is saved at once (same step, lower
  learning rates, the event in its meta) and pinned; newer checkpoints, which hold the diverged
  state, are deleted; ``instability.json`` keeps every event with the history rows it discarded.
  After ``max_rollbacks`` rollbacks the next one restores the healthy state and stops the run
  there (``stop_reason`` "unstable"), so the export is never a diverged model. TensorBoard is
  told of each rollback (``EventWriter.start_session``) and drops the discarded steps' points.

Warm start (``init_from``): a new run can start from a weights folder instead of from its
initialisation (``beatgan.warm_start``): the generator, its average and the critic when the
folder has one, then ``critic_warmup`` iterations that train a new critic alone. Its batches,
z, alphas and phase-shuffle shifts come from a stream of its own (``draw_stream``). The
instability monitor leaves the warm-up unjudged, as it leaves a new run's first 1,000
iterations: a new critic's estimate rises while it learns. The folder's
record is saved with every checkpoint and export as ``"started_from"``; ``step`` and the history
count this run's iterations only.

Interrupts: while the loop runs, a first Ctrl-C (SIGINT) or SIGTERM lets the current
iteration finish, then the loop stops and saves as at the time limit (``stop_reason``
"interrupted"); a second one during that wrap-up raises KeyboardInterrupt at once
(``beatgan.interrupts``). The same call resumes from there.

The backend-specific gradient code is in ``beatgan.backends``; the losses in
``beatgan.backends.losses``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np

from . import checkpoint as ckpt
from . import fileio
from . import interrupts
from .backends import generator_weights, make_steps, run_iteration
from .backends.parallel import DataParallelPlan, data_parallel, device_kind
from .backends.parallel import scope as parallel_scope
from .config import Config
from .ema import GeneratorEMA
from .export import GENERATOR_WEIGHTS, export_weights  # noqa: F401  (training.export_weights too)
from .fileio import atomic_write_bytes
from .model import build_discriminator, build_generator, reseed_phase_shuffle
from .stability import INSTABILITY_LOG, InstabilityMonitor, TrainingInstabilityWarning
from .tensorboard_log import EventWriter
from .warm_start import (WarmStart, apply_warm_start, ema_updates, read_warm_start,
                         warmup_verdict)

#: Columns of history.csv, in order. ``step`` counts iterations, ``wall_s`` training seconds.
HISTORY_FIELDS = ("step", "d_updates", "d_loss", "g_loss", "gp", "wasserstein", "wall_s")
EXPORT_DIR = "export"
INSTABILITY_ACTIONS = ("warn", "rollback")
#: Default minutes between checkpoints by ``on_instability``: a crash loses at most that much;
#: a rollback goes back at most that much further than the trouble began.
CHECKPOINT_MINUTES = {"warn": 5.0, "rollback": 1.0}
PREVIEW_COUNT = 4


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or Inf; training stopped and the last good checkpoint was kept."""


@dataclasses.dataclass
class TrainResult:
    """What ``train`` returns.

    step: iterations done (the ``iterations`` asked for, unless the time limit came first).
    resumed_from: the iteration the run started from (0 for a fresh run).
    history: one dict per log interval with HISTORY_FIELDS (losses are means over the interval).
    run_dir, export_dir: where the run and the exported weights are.
    checkpoint: the newest checkpoint file.
    generator, discriminator: the trained Keras models.
    seconds: wall-clock seconds of this call: building, restoring, compiling, training, export.
    ema_generator: the moving average of the generator (None when ``config.ema`` is off);
        the generator to sample from.
    stop_reason: "iterations" (the target was reached), "time limit" (``max_seconds``),
        "interrupted" (SIGINT or SIGTERM; checkpoint and export written as at a time limit) or
        "unstable" (``on_instability="rollback"`` ran out of rollbacks: stopped at the last
        healthy state, which is what is exported).
    unstable_at: the iteration where the critic's Wasserstein estimate first jumped
        (``stability.InstabilityMonitor``) or a loss first became NaN/Inf under "rollback", over
        the whole run, resumed calls included; None if it never did. The checkpoint saved
        before that jump is pinned (never pruned).
    rollbacks: one dict per rollback of the run, resumed calls included: ``at_step`` (where the
        trouble was seen), ``to_step`` (the checkpoint returned to), ``reason``,
        ``learning_rate`` (both networks' rate from then on), ``wall_s``.
    started_from: a warm start's record (``beatgan.warm_start``), None for a run from scratch.
    """

    step: int
    resumed_from: int
    history: list[dict[str, float]]
    run_dir: Path
    export_dir: Path | None
    checkpoint: Path | None
    generator: keras.Model
    discriminator: keras.Model
    seconds: float
    ema_generator: keras.Model | None = None
    stop_reason: str = "iterations"
    unstable_at: int | None = None
    rollbacks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    started_from: dict[str, Any] | None = None

    def __repr__(self) -> str:  # short: the history and models would flood a log line
        last = self.history[-1] if self.history else {}
        losses = ", ".join(f"{k}={last[k]:.4g}" for k in ("d_loss", "g_loss", "gp", "wasserstein")
                           if k in last)
        return (f"TrainResult(step={self.step}, resumed_from={self.resumed_from}, {losses}, "
                f"seconds={self.seconds:.1f}, stop_reason={self.stop_reason!r}, "
                f"run_dir={str(self.run_dir)!r}, "
                f"export_dir={str(self.export_dir) if self.export_dir else None!r})")


# --- host-side randomness -------------------------------------------------------------
class BatchSampler:
    """Data order, z and alpha from one numpy Generator, with a state that can be saved.

    Batches are taken in order from a fresh permutation each epoch (the
    seed's per-epoch reshuffle); when fewer than ``batch_size`` examples are
    left the permutation is redrawn. ``seed``: an int, or a sequence of ints
    (``np.random.default_rng``) for a stream of its own.
    """

    def __init__(self, n_examples: int, *, batch_size: int, latent_dim: int,
                 seed: int | Sequence[int]):
        if n_examples < batch_size:
            raise ValueError(f"need at least batch_size={batch_size} examples, got {n_examples}")
        self.n_examples = n_examples
        self.batch_size = batch_size
        self.latent_dim = latent_dim
        self.rng = np.random.default_rng(seed)
        self.order = np.zeros(0, dtype=np.int64)
        self.position = 0
        self.epoch = 0

    def indices(self) -> np.ndarray:
        """The next batch's example indices, int32 (B,)."""
        if self.position + self.batch_size > len(self.order):
            self.order = self.rng.permutation(self.n_examples)
            self.position = 0
            self.epoch += 1
        batch = self.order[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        return batch.astype(np.int32)

    def draw_anew(self, seed: Sequence[int]) -> None:
        """Switch to the stream of ``seed`` and start a new permutation at the next batch (the
        epoch count goes on): after a rollback, so the run does not replay the draws that led
        into the trouble."""
        self.rng = np.random.default_rng(seed)
        self.position = len(self.order)

    def latents(self) -> np.ndarray:
        """z uniform in [-1, 1], float32 (B, latent_dim)."""
        return self.rng.uniform(-1.0, 1.0, (self.batch_size, self.latent_dim)).astype(np.float32)

    def alphas(self) -> np.ndarray:
        """Interpolation weights uniform in [0, 1], one per example, float32 (B,)."""
        return self.rng.uniform(0.0, 1.0, self.batch_size).astype(np.float32)

    def get_state(self) -> tuple[dict[str, Any], np.ndarray]:
        """(JSON-able state, current permutation)."""
        return ({"bit_generator": self.rng.bit_generator.state, "position": self.position,
                 "epoch": self.epoch}, self.order.copy())

    def set_state(self, state: dict[str, Any], order: np.ndarray) -> None:
        self.rng.bit_generator.state = state["bit_generator"]
        self.position = int(state["position"])
        self.epoch = int(state["epoch"])
        self.order = np.asarray(order, dtype=np.int64)


def draw_stream(config: Config, started_from: dict[str, Any] | None) -> list[int]:
    """The ``BatchSampler`` seed of a run: ``[seed]`` from scratch (``default_rng(seed)``'s
    stream), ``[seed, runs]`` for a run that goes on from ``runs`` earlier ones (a warm start's
    record), so that no run of a chain replays the draws another saw at the same iterations.
    A warm start's critic shuffles phase from the same stream (``model.reseed_phase_shuffle``)."""
    return [config.seed] if not started_from else [config.seed, int(started_from["runs"])]


def rollback_stream(config: Config, started_from: dict[str, Any] | None, k: int) -> list[int]:
    """The stream a run draws from after its rollback ``k`` (1, 2, ...): ``[seed, runs, k]``,
    ``runs`` 0 for a run from scratch. Three numbers, so it is never a warm start's
    ``[seed, runs]``: the first warm start from a run does not replay that run's rollback."""
    return [config.seed, int(started_from["runs"]) if started_from else 0, k]


# --- models, optimizers, export -------------------------------------------------------
def build_optimizer(config: Config, *, name: str) -> keras.optimizers.Adam:
    """Adam(learning_rate, beta_1, beta_2) as the WaveGAN paper trains both networks."""
    return keras.optimizers.Adam(learning_rate=config.learning_rate, beta_1=config.beta_1,
                                 beta_2=config.beta_2, name=name)


def check_generable(config: Config) -> None:
    """ValueError when a model of ``config`` could be trained but not generate: its beats are
    written as whole 4-beat bars, so a bar must hold a whole number of its segments."""
    from .loop_export import segments_per_bar

    try:
        segments_per_bar(config)
    except ValueError as error:
        raise ValueError(f"beats={config.beats:g} cannot be generated: {error} (beats 1, 2 or "
                         f"4)") from error


def refuse_weights_folder(run_dir: str | Path) -> None:
    """ValueError when ``run_dir`` is a weights folder (``generator.weights.h5`` at its top and
    no checkpoints): training there would replace its ``config.json`` and history."""
    run_dir = Path(run_dir)
    if (run_dir / GENERATOR_WEIGHTS).is_file() and not (run_dir / ckpt.CHECKPOINT_DIR).is_dir():
        raise ValueError(f"{run_dir} holds trained weights ({GENERATOR_WEIGHTS}), not a run: "
                         f"training there would replace its config.json and history. To go on "
                         f"from them, start a new run folder from them (--init-from {run_dir} "
                         f"--out NEW_FOLDER)")


def check_resume_config(run_dir: str | Path, config: Config) -> bool:
    """Whether ``run_dir`` holds a run to resume (a checkpoint beside its ``config.json``);
    ValueError when that run's config is not ``config``. Writes nothing, so the command line can
    ask before minutes of loading loops."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not (path.exists() and ckpt.latest_checkpoint(run_dir / ckpt.CHECKPOINT_DIR) is not None):
        return False
    stored = Config.load(path)
    if stored != config:
        changed = {k: (v, getattr(config, k)) for k, v in stored.to_dict().items()
                   if getattr(config, k) != v}
        raise ValueError(f"{run_dir} holds a run with another config; changed (run, now): "
                         f"{changed}. Use a new run_dir or the run's own config.")
    return True


def _check_run_config(run_dir: Path, config: Config) -> None:
    """Write run_dir/config.json, or check that a run being resumed used the same config.

    A folder without checkpoints holds nothing to resume: its config is simply replaced.
    """
    if not check_resume_config(run_dir, config):
        config.save(run_dir / "config.json")


def _check_data(data: np.ndarray, config: Config) -> np.ndarray:
    data = np.asarray(data)
    want = (config.slice_len, config.channels)
    if data.ndim != 3 or data.shape[1:] != want:
        raise ValueError(f"data must have shape (n, {want[0]}, {want[1]}), got {data.shape}")
    if len(data) < config.batch_size:
        raise ValueError(f"{len(data)} training examples, fewer than one batch of "
                         f"{config.batch_size}: lower batch_size or add loops")
    return data.astype(np.float32, copy=False)


# --- history ---------------------------------------------------------------------------
def _mean_losses(pending: list[dict]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Fetch step outputs from the device: (mean of each loss, all its values)."""
    fetched: dict[str, list[float]] = {}
    for out in pending:
        for key, value in out.items():
            fetched.setdefault(key, []).extend(np.asarray(value, np.float64).ravel().tolist())
    return {key: float(np.mean(values)) for key, values in fetched.items()}, fetched


def write_history(run_dir: Path, history: list[dict[str, float]]) -> None:
    """history.json and history.csv (HISTORY_FIELDS columns), both written atomically."""
    atomic_write_bytes(run_dir / "history.json", json.dumps(history).encode())
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(run_dir / "history.csv", text.getvalue().encode())


def load_history(run_dir: str | Path) -> list[dict[str, float]]:
    """The history a run (or a weights folder beside it) holds: its history.json, else its
    history.csv; empty if neither."""
    for name in ("history.json", "history.csv"):
        if (Path(run_dir) / name).is_file():
            return read_history_file(Path(run_dir) / name)
    return []


def read_history_file(path: str | Path) -> list[dict[str, float]]:
    """The rows of one ``history.json`` or ``history.csv`` (numbers as floats, empty cells left
    out)."""
    path = Path(path)
    if path.suffix == ".json":
        return json.loads(path.read_text())
    with path.open(newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)}
                for row in csv.DictReader(f)]


# --- the loop ----------------------------------------------------------------------------
class _TrainingState:
    """State of one ``train`` call; methods are the loop's steps, in order of use."""

    def __init__(self, data, config: Config, run_dir: Path, *, jit_compile: bool,
                 parallel: DataParallelPlan | None = None, jax_step: str = "fused",
                 on_instability: str = "warn", max_rollbacks: int = 3,
                 rollback_lr_factor: float = 0.5, warm_start: WarmStart | None = None,
                 warmup_asked: int | None = None):
        self.config = config
        self.on_instability = on_instability
        self.max_rollbacks, self.rollback_lr_factor = max_rollbacks, rollback_lr_factor
        self.rollbacks: list[dict[str, Any]] = []  # this run's, resumed calls included
        self.rollback_due: tuple[str, int, Exception | None] | None = None
        self.run_dir = run_dir
        self.ckpt_dir = run_dir / ckpt.CHECKPOINT_DIR
        self.n_devices = 1 if parallel is None else parallel.n_devices
        with parallel_scope(parallel):  # several devices: a copy of every variable on each
            self.generator = build_generator(config)
            self.discriminator = build_discriminator(config)
            self.g_opt = build_optimizer(config, name="g_adam")
            self.d_opt = build_optimizer(config, name="d_adam")
            # Built up front: a checkpoint restores into them, and compiled steps must not
            # create them.
            self.g_opt.build(self.generator.trainable_variables)
            self.d_opt.build(self.discriminator.trainable_variables)
            self.ema = GeneratorEMA(self.generator, config) if config.ema else None
        self.sampler = BatchSampler(
            len(data), batch_size=config.batch_size, latent_dim=config.latent_dim,
            seed=draw_stream(config, None if warm_start is None else warm_start.record))
        self.step = 0
        self.elapsed = 0.0  # training seconds over all calls, for history["wall_s"]
        self.history: list[dict[str, float]] = []
        # The newest readable checkpoint; unreadable newer ones are reported and set aside.
        found = ckpt.latest_good_checkpoint(self.ckpt_dir)
        self.writer = ckpt.BackgroundWriter(None if found is None else found[0])
        self.started_from: dict[str, Any] | None = None  # the warm start's record, if any
        self.warmup_changed: tuple[int, int] | None = None  # (was, now) when a resume changed it
        if found is not None:
            self._restore(*found[1:])
            _check_same_start(run_dir, self.started_from, warm_start)
            # A kill between the checkpoint and the history files written after it left them
            # behind: the checkpoint's history is the run's.
            write_history(run_dir, self.history)
            if warmup_asked is not None:
                self._change_warmup(warmup_asked)
        elif warm_start is not None:
            apply_warm_start(warm_start, self.generator, self.discriminator,
                             None if self.ema is None else self.ema.model, config)
            reseed_phase_shuffle(self.discriminator, draw_stream(config, warm_start.record))
            if self.ema is not None:
                self.ema.reload_from_model()
            self.started_from = dict(warm_start.record)
        self.saved_step = self.step if found is not None else -1
        start = self.started_from or {}
        self.critic_warmup = int(start.get("critic_warmup", 0))
        # A new critic learns alone first: at rate 0 Adam moves nothing (checkpoints keep the rate).
        self.generator_frozen = self.generator_unreleased
        if self.generator_frozen:
            self.g_opt.learning_rate = 0.0
        self.stability = self._new_monitor()
        # After the restore: the JAX steps copy the variables' values when they are made.
        self.steps = make_steps(self.generator, self.discriminator, self.g_opt, self.d_opt, data,
                                config=config, jit_compile=jit_compile, parallel=parallel,
                                fused=jax_step == "fused")

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        order = arrays.pop("sampler/order")
        has_ema = any(key.startswith(f"{ckpt.EMA_GROUP}/") for key in arrays)
        ckpt.restore_state(arrays, self.generator, self.discriminator, self.g_opt, self.d_opt,
                           ema_generator=self.ema.model if self.ema and has_ema else None)
        if self.ema is not None and not has_ema:
            # A run checkpointed without an average: it starts from the weights resumed here.
            self.ema.copy_from(self.generator)
        elif self.ema is not None:
            self.ema.reload_from_model()
        self.sampler.set_state(meta["sampler"], order)
        self.step = int(meta["step"])
        self.elapsed = float(meta["elapsed_s"])
        self.history = list(meta["history"])
        self.rollbacks = list(meta.get("rollbacks", []))
        self.started_from = meta.get("started_from")

    def _new_monitor(self) -> InstabilityMonitor:
        """An instability monitor that has seen the history so far. A new critic's estimate
        rises while it learns, which is no blow-up: the monitor's allowance for that
        (``min_step``, 1,000 iterations) is stretched to cover a warm start's critic warm-up."""
        monitor = InstabilityMonitor(min_step=max(InstabilityMonitor.DEFAULT_MIN_STEP,
                                                  self.critic_warmup))
        monitor.observe_all(self.history)
        return monitor

    @property
    def generator_held(self) -> bool:
        """True while a warm start's critic warm-up lasts (``step`` < ``critic_warmup``)."""
        return self.step < self.critic_warmup

    @property
    def generator_unreleased(self) -> bool:
        """True until the warm-up's end has released the generator. Release comes at the start
        of iteration ``critic_warmup + 1``, so a checkpoint of the warm-up's last iteration
        (``step == critic_warmup``) still holds the generator at rate 0."""
        return 0 < self.critic_warmup and self.step <= self.critic_warmup

    def _change_warmup(self, asked: int) -> None:
        """Resuming a warm start with another ``critic_warmup``: lengthen or shorten the warm-up
        while the generator has not moved (a critic that cannot tell the beats from the loops
        yet gets longer). ValueError once the generator has trained, or for an end before the
        run's step."""
        recorded = int(self.started_from.get("critic_warmup", 0))
        if asked == recorded:
            return
        if self.step > recorded:
            raise ValueError(
                f"{self.run_dir} is at iteration {self.step:,} and its generator has trained "
                f"since iteration {recorded:,}, where its critic warm-up ended: a warm-up can "
                f"change only before it ends (resume without --critic-warmup, or with "
                f"{recorded})")
        if asked < self.step:
            raise ValueError(
                f"{self.run_dir} is at iteration {self.step:,} of its critic warm-up: it can end "
                f"there or later, not at {asked:,}")
        self.started_from = {**self.started_from, "critic_warmup": asked}
        self.warmup_changed = (recorded, asked)

    def release_generator(self) -> None:
        """End the critic warm-up: the generator learns at the critic's rate from here (both
        rates are the config's, or lower after rollbacks)."""
        self.sync_to_models()
        self.g_opt.learning_rate = float(self.d_opt.learning_rate)
        self.steps.reload_from_models()
        self.generator_frozen = False

    def sync_to_models(self) -> None:
        """Make the Keras models hold the current weights and average."""
        self.steps.sync_to_models()
        if self.ema is not None:
            self.ema.sync_to_model()

    @property
    def last_checkpoint(self) -> Path | None:
        """The newest checkpoint complete on disk (a write in progress is not counted)."""
        return self.writer.last_written

    def save_checkpoint(self, *, keep: int, wait: bool = True) -> None:
        """Checkpoint the current state, then write the history beside it. ``wait=False``:
        return once the state is copied to the host and write it on ``self.writer``'s thread
        (``self.writer.wait()`` before reading or pinning checkpoints)."""
        self.sync_to_models()
        arrays = ckpt.collect_state(self.generator, self.discriminator, self.g_opt, self.d_opt,
                                    ema_generator=None if self.ema is None else self.ema.model)
        sampler_state, order = self.sampler.get_state()
        arrays["sampler/order"] = order
        history = [dict(row) for row in self.history]  # the loop goes on adding to its own
        meta = {"sampler": sampler_state, "elapsed_s": self.elapsed, "history": history,
                "rollbacks": list(self.rollbacks),
                **({"started_from": self.started_from} if self.started_from else {}),
                "config": self.config.to_dict(), "backend": keras.backend.backend(),
                "devices": self.n_devices}  # informative: any device count can resume it
        self.saved_step = self.step
        # Under "rollback", pruning spares where a rollback would go back to (the newest
        # checkpoint at or before the last calm row), however long ago that is.
        spare = self.stability.calm_step if self.on_instability == "rollback" else None
        self.writer.submit(self.ckpt_dir, step=self.step, arrays=arrays, meta=meta, keep=keep,
                           spare=spare,
                           then=lambda: write_history(self.run_dir, history))
        if wait:
            self.writer.wait()

    def iteration(self) -> dict:
        """d_updates_per_g critic updates then one generator update; outputs stay on device."""
        # Drawn in the order of the updates (indices, z, alpha each, then G's z), as always.
        draws = [(self.sampler.indices(), self.sampler.latents(), self.sampler.alphas())
                 for _ in range(self.config.d_updates_per_g)]
        indices, z, alpha = (np.stack(column) for column in zip(*draws))
        outs, g_out = run_iteration(self.steps, indices, z, alpha, self.sampler.latents())
        if self.ema is not None and not self.generator_held:  # after G update number step + 1
            # (a warm start: counted on from the folder's updates, after the critic's warm-up)
            self.ema.update(generator_weights(self.steps),
                            step=ema_updates(self.step + 1, self.started_from))
        # Critic losses: the mean over this iteration's critic updates (a fused step stacks them).
        return {"outs": outs if isinstance(outs, list) else [outs], "g": g_out}

    @staticmethod
    def wait(output: dict) -> None:
        """Block until the device has finished the iteration that gave ``output``."""
        keras.ops.convert_to_numpy(output["g"]["g_loss"])

    def record(self, pending: list[dict]) -> dict[str, float] | None:
        """Average the pending outputs into one history row and watch it for a jump.

        A NaN/Inf loss raises ``NonFiniteLossError``, or under "rollback" sets
        ``rollback_due`` and returns None (no row). A jump sets ``rollback_due`` under
        "rollback", else pins the checkpoint before it and warns.
        """
        flat = [o for item in pending for o in item["outs"]] + [item["g"] for item in pending]
        means, values = _mean_losses(flat)
        bad = sorted(k for k, vs in values.items() if not all(math.isfinite(v) for v in vs))
        if bad:
            what = (f"{', '.join(bad)} became NaN or Inf between iterations "
                    f"{self.step - len(pending) + 1} and {self.step}")
            where = self.last_checkpoint or "none yet"
            error = NonFiniteLossError(
                f"{what} (interval means: {means}). Training stopped; the last good checkpoint "
                f"({where}) is untouched. Check the data for NaN/Inf, or lower the learning rate.")
            if self.on_instability != "rollback":
                raise error
            self.rollback_due = (what, self.step, error)
            return None
        row = {"step": self.step, "d_updates": self.step * self.config.d_updates_per_g,
               **{k: means[k] for k in ("d_loss", "g_loss", "gp", "wasserstein")},
               "wall_s": self.elapsed}
        self.history.append(row)
        if self.stability.observe(row):
            if self.on_instability == "rollback":
                self.rollback_due = (self.stability.message(), self.step, None)
            else:
                self._keep_last_stable_checkpoint()
        return row

    @property
    def unstable_at(self) -> int | None:
        """The run's first jump (or NaN under "rollback"), rolled-back stretches included."""
        return self.rollbacks[0]["at_step"] if self.rollbacks else self.stability.unstable_at

    def roll_back(self, *, keep: int) -> bool:
        """Go back to the last healthy checkpoint (``rollback_due`` says why); False when the
        run should stop there, having used its ``max_rollbacks``.

        Without a checkpoint to go back to, a NaN/Inf raises its ``NonFiniteLossError`` and a
        jump is handled as under "warn".
        """
        reason, at_step, error = self.rollback_due
        self.rollback_due = None
        self.writer.wait()  # every checkpoint on disk before choosing one
        calm = self.stability.calm_step
        limit = at_step - 1 if calm is None else min(calm, at_step - 1)
        before = [(s, p) for s, p in ckpt.list_checkpoints(self.ckpt_dir) if s <= limit]
        # Losses are computed before an iteration's updates, so the checkpoint of the iteration
        # before the first NaN loss may already hold the NaN weights: go back past any such.
        found = None
        for target_step, target in reversed(before):
            arrays, meta = ckpt.load_checkpoint(target)
            if all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f"):
                found = arrays, meta
                break
        if found is None:
            if error is not None:
                raise error
            self._keep_last_stable_checkpoint()
            return True
        arrays, meta = found
        discarded = [row for row in self.history if row["step"] > target_step]
        elapsed, rollbacks, started_from = self.elapsed, self.rollbacks, self.started_from
        self._restore(arrays, meta)  # weights, Adam states, average, draws, step, history
        # The discarded time was spent; a warm-up this call lengthened stays lengthened.
        self.elapsed, self.rollbacks, self.started_from = elapsed, rollbacks, started_from
        self.generator_frozen = self.generator_unreleased  # back into a warm-up: its rate 0 too
        go_on = len(self.rollbacks) < self.max_rollbacks
        if go_on:
            for optimizer in (self.g_opt, self.d_opt):
                optimizer.learning_rate = float(optimizer.learning_rate) * self.rollback_lr_factor
            # New draws from here: replayed, the same batches, z, alphas and phase-shuffle shifts
            # met the same trouble again (docs/training-runs/, 2026-11-28).
            stream = rollback_stream(self.config, self.started_from, len(self.rollbacks) + 1)
            self.sampler.draw_anew(stream)
            reseed_phase_shuffle(self.discriminator, stream)
        self.steps.reload_from_models()
        for step, path in ckpt.list_checkpoints(self.ckpt_dir):
            if step > target_step:  # the diverged stretch: a resume must not start there
                path.unlink()
                path.with_name(path.name + ckpt.PIN_SUFFIX).unlink(missing_ok=True)
        event = {"at_step": at_step, "to_step": target_step, "reason": reason,
                 # The critic's: the generator's is 0 while a warm-up holds it.
                 "learning_rate": float(self.d_opt.learning_rate), "wall_s": self.elapsed,
                 "stopped": not go_on}
        self.rollbacks = [*self.rollbacks, event]
        self.stability = self._new_monitor()
        self.save_checkpoint(keep=keep)  # the lower rates and the event, at once
        ckpt.pin_checkpoint(self.last_checkpoint, reason=f"returned to after: {reason}")
        log = json.loads((self.run_dir / INSTABILITY_LOG).read_text()) \
            if (self.run_dir / INSTABILITY_LOG).is_file() else []
        log.append({**event, "discarded_history": discarded})
        atomic_write_bytes(self.run_dir / INSTABILITY_LOG, json.dumps(log, indent=1).encode())
        then = (f"learning rates now {event['learning_rate']:.3g}" if go_on else
                f"stopping there: {self.max_rollbacks} rollbacks used")
        warnings.warn(f"{reason}; rolled back to iteration {target_step} ({target.name}), "
                      f"{then}", TrainingInstabilityWarning, stacklevel=2)
        return go_on

    def _keep_last_stable_checkpoint(self) -> None:
        """Pin the newest checkpoint saved before the jump and say so, once per run."""
        note = ""
        self.writer.wait()
        if self.last_checkpoint is not None and self.saved_step < self.stability.unstable_at:
            ckpt.pin_checkpoint(self.last_checkpoint, reason=self.stability.message())
            note = f"; {self.last_checkpoint.name}, saved before it, is kept (never pruned)"
        warnings.warn(f"{self.stability.message()}{note}", TrainingInstabilityWarning,
                      stacklevel=2)

    def preview(self, latents: np.ndarray) -> np.ndarray:
        """Output (k, slice_len, channels) for fixed latents, inference mode, of the generator
        the export holds and ``beatgan generate`` draws from: the moving average when kept."""
        self.sync_to_models()
        model = self.generator if self.ema is None else self.ema.model
        return np.asarray(model(latents, training=False))


def _log_scalars(events: EventWriter, row: dict[str, float]) -> None:
    """A history row's losses as TensorBoard scalars at its step."""
    events.scalars(int(row["step"]), {"d_loss": row["d_loss"], "g_loss": row["g_loss"],
                                      "gradient_penalty": row["gp"],
                                      "wasserstein": row["wasserstein"]})


def _progress_bar(*, total: int, initial: int, enabled: bool):
    """tqdm counting D updates, so its rate is D updates/s and its ETA is to the target."""
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, unit="D upd", disable=not enabled,
                dynamic_ncols=True, smoothing=0.1)


def train(data: np.ndarray, config: Config, *, run_dir: str | Path, iterations: int | None,
          checkpoint_every: int = 5000, checkpoint_minutes: float | None = None, keep: int = 3,
          log_every: int = 10, preview_every: int = 500, tensorboard: bool = True,
          export: bool = True, jit_compile: bool = False,
          progress: bool = True, devices: int | str | None = None,
          max_seconds: float | None = None, export_dtype: str = "float32",
          jax_step: str = "fused", on_instability: str = "warn", max_rollbacks: int = 3,
          rollback_lr_factor: float = 0.5, init_from: str | Path | None = None,
          critic_warmup: int | None = None) -> TrainResult:
    """Train G and D on ``data`` until ``iterations`` iterations are done or ``max_seconds``
    have passed, resuming if possible.

    Args:
        data: augmented training examples, float32 (n, slice_len, channels) in [-1, 1].
        config: model and training hyperparameters (saved as run_dir/config.json; a
            resumed run must use the same config).
        run_dir: the run folder (layout in the module docstring). If it holds
            checkpoints, training resumes from the newest one.
        iterations: the target number of iterations (each ``d_updates_per_g`` D
            updates + 1 G update) counted from the start of the run, not of this call;
            None: no target, ``max_seconds`` ends the call.
        checkpoint_every: save a checkpoint every this many iterations ...
        checkpoint_minutes: ... and whenever this many minutes passed since the last one;
            always at the end. Time is the rule that matters on a GPU: at d = 64 a checkpoint
            is about 0.5 GB (weights, Adam moments, the average) and takes seconds to gather
            and write, which every 500 iterations would cost a fast GPU run 10-20 %. None:
            ``CHECKPOINT_MINUTES`` for the ``on_instability`` given (5, or 1 under "rollback",
            which can only go back as far as the newest checkpoint before the trouble).
        keep: how many checkpoints to keep.
        log_every: iterations per history row, TensorBoard scalar and NaN check.
        preview_every: iterations between TensorBoard audio previews of 4 fixed latents (drawn
            by the moving average when ``config.ema``, as the export draws them).
        tensorboard: write TensorBoard events under run_dir/tensorboard.
        export: write the final weights to run_dir/export (``export_weights``).
        export_dtype: "float32" or "float16" storage of the exported weights (critic included).
        jit_compile: TensorFlow only: compile the steps with XLA (default: off, faster on CPU).
        jax_step: JAX only: "fused" (one compiled program per iteration, the default) or
            "plain" (the reference step, one program per update: a fallback should the
            fused program fail to compile on some device). Same training either way.
        progress: show a tqdm progress bar (D updates/s, ETA).
        devices: split each batch over this many devices (an int, or "all": every GPU,
            else every CPU device the backend sees). None or 1: one device. The batch
            (``config.batch_size``, the global batch) must divide by the count.
        max_seconds: wall-clock limit of this call in seconds, model building and compiling
            included: the loop stops before an iteration that would end past it, then
            checkpoints and exports as at the end of any run (``stop_reason`` "time limit").
        on_instability: "warn" or "rollback": what a jump of the critic's estimate (or, for
            "rollback", a NaN/Inf loss) does (module docstring). "rollback" can only go back to
            a checkpoint saved before the trouble began, hence its shorter default
            ``checkpoint_minutes`` (a GPU run at 20 iterations/s passes the monitor's first
            judged iteration, 1000, in a minute).
        max_rollbacks: rollbacks allowed over the whole run before the next one stops it.
        rollback_lr_factor: each rollback multiplies both learning rates by this, in (0, 1].
        init_from: a weights folder to start a new run from (``beatgan.warm_start``); a run
            folder that holds checkpoints resumes them instead, and must have started from
            the same weights.
        critic_warmup: with ``init_from``: iterations that train only the critic first (None:
            ``warm_start.DEFAULT_CRITIC_WARMUP`` when the folder has no critic, else 0). A
            resumed run keeps the warm-up it started with unless this is given: then the
            warm-up ends here instead, if the generator has not trained yet (ValueError else).
            A call that stops where the warm-up ends prints its verdict; the next one releases
            the generator.

    A first SIGINT (Ctrl-C, a notebook's interrupt) or SIGTERM during the loop stops it after
    the current iteration with the same checkpoint and export (``stop_reason`` "interrupted");
    a second one during that wrap-up raises KeyboardInterrupt. Handlers are set in the main
    thread only, and the previous ones are restored when the call ends; a signal that came
    after the last iteration is passed on to them once all is saved.

    Raises:
        NonFiniteLossError: a loss became NaN/Inf (the last good checkpoint is kept); under
            "rollback" only when no checkpoint before it is there to go back to.
        ValueError: bad data shape, a run_dir holding a run with another config (or started
            from other weights), an ``init_from`` model of another shape, or a device count
            that is not available or does not divide the batch.
        OSError: run_dir cannot be written or lacks room for two checkpoints (before training),
            or a write failed during training (``beatgan_failed_run`` set; the last
            checkpoint is kept). ``fileio.FolderLocked`` when another process trains in run_dir.
    """
    start = time.perf_counter()  # the time limit counts building and compiling too
    if iterations is None and max_seconds is None:
        raise ValueError("give iterations, max_seconds or both")
    for name, value in (("iterations", 1 if iterations is None else iterations),
                        ("checkpoint_every", checkpoint_every),
                        ("log_every", log_every), ("preview_every", preview_every)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    if export_dtype not in ("float32", "float16"):
        raise ValueError(f"export_dtype must be 'float32' or 'float16', got {export_dtype!r}")
    if jax_step not in ("fused", "plain"):
        raise ValueError(f"jax_step must be 'fused' or 'plain', got {jax_step!r}")
    if on_instability not in INSTABILITY_ACTIONS:
        raise ValueError(f"on_instability must be one of {INSTABILITY_ACTIONS}, "
                         f"got {on_instability!r}")
    check_generable(config)
    if critic_warmup is not None and init_from is None:
        raise ValueError("critic_warmup only applies with init_from (a run from scratch trains "
                         "both networks from the start)")
    if max_rollbacks < 0 or not 0.0 < rollback_lr_factor <= 1.0:
        raise ValueError(f"need max_rollbacks >= 0 and 0 < rollback_lr_factor <= 1, got "
                         f"{max_rollbacks} and {rollback_lr_factor}")
    if checkpoint_minutes is None:
        checkpoint_minutes = CHECKPOINT_MINUTES[on_instability]
    if checkpoint_minutes < 0:
        raise ValueError(f"checkpoint_minutes must be >= 0, got {checkpoint_minutes}")
    run_dir = Path(run_dir)
    refuse_weights_folder(run_dir)
    fileio.check_writable(run_dir, what="preparing the run folder")
    with fileio.folder_lock(run_dir):  # one writer per run folder, until this call ends
        for folder in (run_dir, run_dir / EXPORT_DIR):  # a killed call's half-written files
            fileio.remove_dead_temporaries(folder)
        data = _check_data(data, config)
        parallel = data_parallel(devices, batch_size=config.batch_size)  # None for one device
        warm_start = None if init_from is None else read_warm_start(
            init_from, config, critic_warmup=critic_warmup)
        _check_run_config(run_dir, config)
        run = _TrainingState(data, config, run_dir, jit_compile=jit_compile, parallel=parallel,
                             jax_step=jax_step, on_instability=on_instability,
                             max_rollbacks=max_rollbacks, rollback_lr_factor=rollback_lr_factor,
                             warm_start=warm_start, warmup_asked=critic_warmup)
        if run.warmup_changed is not None:
            was, now = run.warmup_changed
            print(f"the critic warm-up now ends at iteration {now:,} (it was {was:,}); the "
                  f"generator is held until then")
            run.save_checkpoint(keep=keep)  # a call that stops before iterating keeps it too
        # Room for two checkpoints (one being written beside the last) before hours of work.
        parts = [run.generator, run.discriminator, run.g_opt, run.d_opt]
        parts += [] if run.ema is None else [run.ema.model]
        state_bytes = sum(4 * math.prod(v.shape) for part in parts for v in part.variables)
        fileio.check_free_space(run.ckpt_dir, 2 * state_bytes, what="checkpointing the run")
        resumed_from = run.step
        try:
            with interrupts.deferred_stop() as stop:  # the wrap-up (save, export) included
                stop_reason = _loop(run, iterations=iterations,
                                    deadline=None if max_seconds is None else start + max_seconds,
                                    checkpoint_every=checkpoint_every,
                                    checkpoint_minutes=checkpoint_minutes, keep=keep,
                                    log_every=log_every, preview_every=preview_every,
                                    tensorboard=tensorboard, progress=progress, stop=stop)
                run.sync_to_models()
                export_dir = None
                if export:
                    export_dir = export_weights(
                        run.generator, run.discriminator, config=config,
                        folder=run_dir / EXPORT_DIR,
                        ema_generator=None if run.ema is None else run.ema.model, step=run.step,
                        dtype=export_dtype,
                        extra_info={"trained_on": trained_on(run),
                                    **({"ema_updates": ema_updates(run.step, run.started_from)}
                                       if run.ema is not None else {}),
                                    **({"rollbacks": run.rollbacks} if run.rollbacks else {}),
                                    **({"started_from": run.started_from}
                                       if run.started_from else {})})
        except OSError as error:  # a full or failing disk: the atomic checkpoints keep the last one
            kept = f"the last checkpoint, {run.last_checkpoint}, is kept" if run.last_checkpoint \
                else "no checkpoint was written yet"
            raise fileio.annotate(error, what="training", note=kept, failed_run=True)
    return TrainResult(step=run.step, resumed_from=resumed_from, history=run.history,
                       run_dir=run_dir, export_dir=export_dir, checkpoint=run.last_checkpoint,
                       generator=run.generator, discriminator=run.discriminator,
                       seconds=time.perf_counter() - start,
                       ema_generator=None if run.ema is None else run.ema.model,
                       stop_reason=stop_reason, unstable_at=run.unstable_at,
                       rollbacks=run.rollbacks, started_from=run.started_from)


def _check_same_start(run_dir: Path, recorded: dict[str, Any] | None,
                      asked: WarmStart | None) -> None:
    """A resumed run goes on from its checkpoints; an ``init_from`` given again must be the
    weights it started from (ValueError otherwise). No ``init_from``: nothing to check."""
    if asked is None:
        return
    wanted = asked.record["generator_sha256"]
    if recorded is None or recorded.get("generator_sha256") != wanted:
        sha = "" if recorded is None else str(recorded.get("generator_sha256", ""))[:16]
        began = ("from scratch" if recorded is None else
                 f"from {recorded.get('folder')} (sha256 {sha}...)")
        raise ValueError(f"{run_dir} holds a run that started {began}, not from {asked.folder} "
                         f"(sha256 {wanted[:16]}...): resume it without init_from, or use a new "
                         f"run folder")


def trained_on(run: _TrainingState) -> dict[str, Any]:
    """What ``weights.json`` records about where the weights were trained (the model card reads
    it): backend, device model (``device_kind``), device count, precision policy. A run resumed
    elsewhere records the machine of its last call."""
    return {"backend": keras.backend.backend(), "device": device_kind(),
            "devices": run.n_devices,
            "precision": "mixed_bfloat16" if run.config.mixed_precision else "float32"}


def _loop(run: _TrainingState, *, iterations: int | None, deadline: float | None,
          checkpoint_every: int, checkpoint_minutes: float, keep: int, log_every: int,
          preview_every: int, tensorboard: bool, progress: bool,
          stop: interrupts.StopRequest | None = None) -> str:
    """Iterate until ``iterations``, the ``deadline`` (a ``time.perf_counter`` value) or a
    ``stop`` request; log, preview and checkpoint on the way (and roll back, under
    "rollback"). Returns the stop reason: "iterations", "time limit", "interrupted" or
    "unstable".

    The device runs ahead of the host (JAX dispatches asynchronously), so the time an iteration
    takes is measured between two points where the host waited for the device: every logged
    iteration and, with a deadline, every iteration until the first measurement and once the
    deadline is within ``log_every + 1`` iterations.
    """
    config = run.config
    resumed_from = run.step
    # Preview latents: their own stream, so previews do not disturb the training draws.
    preview_z = np.random.default_rng([config.seed, 1]).uniform(
        -1.0, 1.0, (PREVIEW_COUNT, config.latent_dim)).astype(np.float32)
    events = EventWriter(run.run_dir / "tensorboard") if tensorboard else None
    if events is not None:  # a resumed run: what a crashed session logged past here is dropped
        events.start_session(run.step + 1)
    n_d = config.d_updates_per_g
    bar = _progress_bar(total=None if iterations is None else iterations * n_d,
                        initial=(run.step if iterations is None else min(run.step, iterations)) * n_d,
                        enabled=progress)
    iteration_s = 0.0  # seconds per iteration on the device; 0 until measured after compiling
    synced_at, synced_step = None, run.step  # the last point where the host waited for the device
    stop_reason = "iterations"
    last_save = time.monotonic()
    pending: list[dict] = []
    try:
        while iterations is None or run.step < iterations:
            tick = time.perf_counter()
            if deadline is not None and tick + iteration_s >= deadline:
                stop_reason = "time limit"
                break
            if stop is not None and stop.requested:
                stop.acted_on = True
                stop_reason = "interrupted"
                break
            first = run.step == resumed_from  # compiles the steps: not a duration to plan by
            if run.generator_frozen and not run.generator_held:
                run.release_generator()  # the warm start's critic warm-up is over
                bar.write(warmup_verdict(run.history, run.critic_warmup))
            out = run.iteration()
            pending.append(out)
            run.step += 1
            bar.update(n_d)
            due_log = run.step % log_every == 0
            due_preview = events is not None and run.step % preview_every == 0
            due_ckpt = (run.step % checkpoint_every == 0 or run.step == iterations
                        or time.monotonic() - last_save >= 60.0 * checkpoint_minutes)
            # Unmeasured, or within log_every + 1 iterations of the deadline: wait for the device.
            near_deadline = deadline is not None and (
                iteration_s == 0.0
                or time.perf_counter() + (log_every + 1) * iteration_s >= deadline)
            time_up = False
            if first or due_log or due_preview or due_ckpt or near_deadline:
                run.wait(out)
                now = time.perf_counter()
                if synced_at is not None and run.step > synced_step:
                    iteration_s = (now - synced_at) / (run.step - synced_step)
                time_up = deadline is not None and now + iteration_s >= deadline
            if due_log or due_preview or due_ckpt or time_up:
                row = run.record(pending)  # raises on NaN/Inf, unless rolling back
                pending = []
                run.elapsed += time.perf_counter() - tick
                if run.rollback_due is not None:
                    seen_at = run.step
                    if not run.roll_back(keep=keep):
                        stop_reason = "unstable"
                        if events is not None and run.step != seen_at:  # restored: drop the
                            events.start_session(run.step + 1)         # discarded points too
                        break
                    if run.step != seen_at:  # went back: this row was discarded with the rest
                        if events is not None:
                            events.start_session(run.step + 1)
                        bar.n = run.step * n_d
                        bar.refresh()
                        synced_at, synced_step = time.perf_counter(), run.step
                        last_save = time.monotonic()
                        continue
                row["wall_s"] = run.elapsed
                bar.set_postfix(d_loss=f"{row['d_loss']:.3g}", g_loss=f"{row['g_loss']:.3g}",
                                w=f"{row['wasserstein']:.3g}", refresh=False)
                if events is not None:
                    _log_scalars(events, row)
                if due_preview:
                    events.audio(run.step, "preview", run.preview(preview_z),
                                 sample_rate_hz=config.sample_rate_hz)
                if events is not None:
                    events.flush()
                if due_ckpt or time_up:
                    # Written while the next iterations run; the end of the loop waits for it.
                    run.save_checkpoint(keep=keep, wait=False)
                    last_save = time.monotonic()
            else:
                run.elapsed += time.perf_counter() - tick
            if first or due_log or due_preview or due_ckpt or near_deadline:
                # Logging, previews and checkpoints are not iteration time.
                synced_at, synced_step = time.perf_counter(), run.step
            if time_up and run.step != iterations:
                stop_reason = "time limit"
                break
        if stop_reason in ("time limit", "interrupted") and run.saved_step != run.step:
            # Stopped early: what ran is saved, its last losses logged.
            if pending:
                seen_at = run.step
                row = run.record(pending)
                # Its last stretch went bad: end at the healthy state, not save the bad one.
                if run.rollback_due is not None and not run.roll_back(keep=keep):
                    stop_reason = "unstable"
                if events is not None and row is not None and run.step == seen_at:
                    _log_scalars(events, row)
                elif events is not None and run.step != seen_at:  # rolled back: drop the rest
                    events.start_session(run.step + 1)
            if run.saved_step != run.step:
                run.save_checkpoint(keep=keep)
        run.writer.wait()  # a stop after a checkpoint still being written
        if run.generator_frozen and run.step == run.critic_warmup:
            # Stopped where the warm-up ends: judged now, released when the run resumes.
            bar.write(warmup_verdict(run.history, run.critic_warmup))
    finally:
        run.writer.join()  # an error on the way out: the write in progress still ends
        bar.close()
        if events is not None:
            events.close()
    return stop_reason
