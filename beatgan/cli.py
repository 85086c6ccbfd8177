"""The ``beatgan`` command: a thin layer of flags over the library's functions.

    beatgan demo-data OUT_DIR [--n 434] [--seed 0] [--bpm 90-140]
    beatgan train --data DIR --out RUN_DIR [--iterations N] [--model-dim D] ...
    beatgan generate --weights DIR --n 40 --out generated_output [--seed S]
    beatgan loop --weights DIR --out DIR [--structure AAAB] [--bars 4]
    beatgan score --data DIR --generated DIR [--threshold 0.1] [--json]
    beatgan select --run RUN_DIR [--metric frechet] [--n 64] [--seeds 1] [--out RUN_DIR/best]
    beatgan app [--weights DIR] [--port 7860]
    beatgan run-notebook beat_gan.ipynb [--output OUT] [-p NAME=VALUE ...]

Flags named after Config fields (``--model-dim`` -> ``model_dim``) override the
chosen ``--preset``; nothing else reaches the config.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import traceback
from pathlib import Path
from typing import Callable, Sequence

from . import __version__
from .config import (DAW_RATES_HZ, DECIMATION_METHODS, DEFAULT_DATA_DIR, LOOP_TEMPO_METHODS,
                     MAX_SEED, PHASE_SHUFFLE_PER, PRESETS, TEMPO_METHODS, UPSAMPLE_METHODS, Config,
                     describe, preset)
from .fileio import describe_os_error

DEFAULT_DATA = DEFAULT_DATA_DIR
#: Bar structures ``loop`` accepts (``beatgan.config.STRUCTURES``; not imported: --help stays light).
LOOP_STRUCTURES = ("AAAA", "AAAB", "AABB", "ABAB")


# --- config flags -----------------------------------------------------------
def _flag(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _add_config_flags(parser: argparse.ArgumentParser, names: Sequence[str], *,
                      preset_help: str = "seed, the 2018 numbers") -> None:
    """Add ``--preset`` and one flag per named Config field, typed from the dataclass default."""
    fields = {f.name: f for f in dataclasses.fields(Config)}
    group = parser.add_argument_group("configuration (overrides the preset)")
    group.add_argument("--preset", default=None, choices=sorted(PRESETS),
                       help=f"named configuration to start from (default: {preset_help})")
    choices = {"decimation": DECIMATION_METHODS, "tempo_method": TEMPO_METHODS,
               "upsample": UPSAMPLE_METHODS, "phase_shuffle_per": PHASE_SHUFFLE_PER}
    for name in names:
        default = fields[name].default
        help_text = f"{describe(name)} (default {'unset' if default is None else default})"
        if isinstance(default, bool):
            group.add_argument(_flag(name), dest=name, action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
        else:
            # Numbers are checked as they are parsed, so an error names the flag: counts whole
            # and >= 0, the rest finite (Config checks the ranges).
            kind = (_finite if name == "target_bpm" or isinstance(default, float) else
                    _count if isinstance(default, int) else type(default))
            group.add_argument(_flag(name), dest=name, type=kind, default=None,
                               choices=choices.get(name), help=help_text)


def _config_from_args(args: argparse.Namespace, *, base: Config | None = None) -> Config:
    """``base`` (default: the ``--preset``, else seed) with every config flag given applied on top."""
    names = {f.name for f in dataclasses.fields(Config)}
    changes = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if changes.get("target_bpm") is not None and "bpm" not in changes:
        changes["bpm"] = changes["target_bpm"]  # the generator works at the loops' new tempo
    if base is None:
        base = preset(args.preset or "seed")
    try:
        return base.replace(**changes)
    except ValueError as error:  # Config names its fields; say which flags the user gave
        given = " ".join(("--" if v else "--no-") + _flag(k)[2:] if isinstance(v, bool)
                         else f"{_flag(k)} {v}" for k, v in changes.items())
        raise ValueError(f"{error} (given: {given})" if given else str(error)) from error


def _set_backend(name: str | None) -> None:
    """Choose the Keras backend; must happen before anything imports keras."""
    if name:
        if "keras" in sys.modules:  # loaded already: its backend is fixed for this process
            loaded = sys.modules["keras"].backend.backend()
            if loaded != name:
                raise ValueError(f"Keras is already loaded with the {loaded} backend; cannot "
                                 f"switch to {name}")
        os.environ["KERAS_BACKEND"] = name


def _count(text: str) -> int:
    """A whole number >= 0 (seeds, indices, counts)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _finite(text: str) -> float:
    """A finite number (NaN and infinities would make every comparison false)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    """A finite number > 0 (minutes)."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _json_safe(value):
    """``value`` with every NaN/Inf float replaced by None, so the JSON printed is valid."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _parse_bpm(text: str) -> float | tuple[float, float]:
    """``"125"`` -> 125.0; ``"90-140"`` -> (90.0, 140.0)."""
    from .tempo import BPM_RANGE

    low, sep, high = text.partition("-")
    try:
        values = (float(low), float(high)) if sep else (float(low),)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bpm takes a number or a range LOW-HIGH, got {text!r}")
    if not all(BPM_RANGE[0] <= v <= BPM_RANGE[1] for v in values) or values[0] > values[-1]:
        raise argparse.ArgumentTypeError(
            f"--bpm takes tempos from {BPM_RANGE[0]:g} to {BPM_RANGE[1]:g} (a range LOW-HIGH "
            f"with LOW <= HIGH), got {text!r}")
    if sep and math.ceil(values[0]) > math.floor(values[1]):
        raise argparse.ArgumentTypeError(f"--bpm range {text!r} holds no whole-number tempo (the "
                                         f"demo loops are drawn at whole tempi)")
    return values if sep else values[0]


def _loop_bpm(text: str) -> float:
    """A loop's tempo: a finite number, ``loop_export.check_loop_bpm``'s."""
    from .loop_export import check_loop_bpm
    from .tempo import BPM_RANGE

    try:
        return check_loop_bpm(_finite(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a tempo from {BPM_RANGE[0]:g} to "
                                         f"{BPM_RANGE[1]:g} bpm, got {text!r}") from None


def _positive(text: str) -> int:
    """A whole number >= 1 (iterations, bars, intervals)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _non_negative(text: str) -> float:
    """A finite number >= 0 (thresholds, lags; 0 switches a lag bound off)."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _at_most(limit: int, *, low: int = 1) -> Callable[[str], int]:
    """A whole number from ``low`` to ``limit`` (bounds that keep a request in memory)."""
    def parse(text: str) -> int:
        value = _count(text)
        if not low <= value <= limit:
            raise argparse.ArgumentTypeError(f"expected a whole number {low}-{limit}, got {text!r}")
        return value
    return parse


#: Bounds of ``loop``: 1024 bars is 33 minutes at 125 bpm; index N draws N + 1 latent vectors.
MAX_BARS, MAX_INDEX = 1024, 99_999
#: ``loop --count``: a 4-bar loop is 2 MB, so 1000 loops are 2 GB (the free space is checked).
MAX_COUNT = 1000
#: Bytes of a loop's files beyond its 24-bit frames: WAV header and tags (about 150), the .json
#: sidecar (about 6 KiB with its latent vectors), rounded up.
LOOP_EXTRA_BYTES = 16 * 1024


def _weights_folder(given: str | Path | None) -> Path:
    """``--weights``, else ``export.default_weights_dir()`` (said on stderr when it is not
    ./weights); fails fast, before Keras loads, when the folder holds no trained generator."""
    from .export import LOCAL_WEIGHTS, default_weights_dir, has_weights

    folder = Path(given) if given is not None else default_weights_dir()
    if not has_weights(folder):
        shipped = "" if given is not None else " and this install of beatgan ships no model"
        raise FileNotFoundError(
            f"no trained weights in {folder} (generator.weights.h5 and config.json){shipped}. "
            f"Train a model first: beatgan train --out runs/a, then pass --weights runs/a/export")
    if given is None and folder != LOCAL_WEIGHTS:
        print(f"weights: the model that ships with beatgan, {folder} (no trained weights in "
              f"./{LOCAL_WEIGHTS}; --weights chooses others)", file=sys.stderr)
    return folder


def _duration(seconds: float) -> str:
    """``75.2`` -> ``"1 min 15 s"``."""
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def train_summary(result) -> str:
    """One line saying what ``train`` did and the command to run next."""
    last = result.history[-1] if result.history else {}
    losses = ", ".join(f"{k} {last[k]:.3g}" for k in ("d_loss", "g_loss") if k in last)
    weights = result.export_dir or result.run_dir
    if result.step == result.resumed_from and result.stop_reason == "iterations":
        return (f"already at iteration {result.step}: nothing to train (a higher --iterations "
                f"goes on); weights in {weights}. Next: beatgan generate --weights {weights}")
    start = f" (resumed at {result.resumed_from})" if result.resumed_from else ""
    if result.stop_reason == "interrupted":
        return (f"interrupted at iteration {result.step}{start}; checkpoint and weights saved in "
                f"{result.run_dir}; the same command resumes")
    if result.started_from:
        before = result.started_from
        start += (f" (from {before['folder']}, {before['iterations']:,} iterations before this "
                  f"run)")
    if result.stop_reason == "time limit":
        start += ", stopped at the time limit"
    unstable = ""
    from .stability import INSTABILITY_LOG

    rollbacks = result.rollbacks
    if result.stop_reason == "unstable":
        start += (f", stopped: still unstable after {len(rollbacks) - 1} rollback(s), so the "
                  f"weights are the last healthy state")
    if rollbacks:
        moves = ", ".join(f"{r['at_step']}->{r['to_step']}" for r in rollbacks)
        unstable = (f"; rolled back {len(rollbacks)}x on instability (iterations {moves}; "
                    f"learning rates now {rollbacks[-1]['learning_rate']:.3g}; "
                    f"{result.run_dir / INSTABILITY_LOG})")
    elif result.unstable_at is not None:
        unstable = (f"; the critic became unstable at iteration {result.unstable_at} (the last "
                    f"checkpoint before it is kept: beatgan select --run {result.run_dir} "
                    f"exports the best checkpoint; --on-instability rollback goes back to it "
                    f"by itself)")
    warmup = int((result.started_from or {}).get("critic_warmup", 0))
    if result.step <= warmup and result.stop_reason != "unstable":
        # Stopped inside a warm start's critic warm-up: the generator is still the folder's.
        then = (f"The generator has not trained yet (its critic warm-up ends at iteration "
                f"{warmup:,}): the same command with a higher --iterations, or a --max-minutes, "
                f"goes on")
    else:
        then = f"Next: beatgan generate --weights {weights}"
    return (f"trained to iteration {result.step}{start} in {_duration(result.seconds)}"
            f"{'; ' + losses if losses else ''}{unstable}; weights in {weights}. {then}")


# --- commands ---------------------------------------------------------------
def _cmd_demo_data(args: argparse.Namespace) -> int:
    from .fileio import output_folder
    from .synth import write_demo_pack

    with output_folder(args.out_dir, what=f"writing the demo pack to {args.out_dir}"):
        paths = write_demo_pack(args.out_dir, n=args.n, seed=args.seed, bpm=args.bpm)
    print(f"wrote {len(paths)} demo loop{'' if len(paths) == 1 else 's'} to {args.out_dir}")
    return 0


def _load_training_data(folder: str, config: Config, *, progress: bool = True):
    from .workflows import load_training_loops

    # The demo pack stands in only for the default folder, missing or empty.
    return load_training_loops(folder, config, progress=progress)


def _train_config(args: argparse.Namespace) -> Config:
    """Without ``--preset``: the run's own config (``OUT/config.json``) when resuming, else the
    ``--init-from`` folder's; otherwise the preset (default seed); config flags on top. A resumed
    run must keep its config, so a flag that changes it is then refused by ``train``."""
    saved = Path(args.out) / "config.json"
    if args.preset is None and saved.is_file():
        return _config_from_args(args, base=Config.load(saved))
    if args.preset is None and args.init_from is not None and \
            (args.init_from / "config.json").is_file():
        return _config_from_args(args, base=Config.load(args.init_from))
    return _config_from_args(args)


def _cmd_train(args: argparse.Namespace) -> int:
    _set_backend(args.backend)
    from .training import check_generable, check_resume_config, refuse_weights_folder

    refuse_weights_folder(args.out)  # before its config.json is read as a run's
    config = _train_config(args)
    check_generable(config)  # before minutes of loading
    check_resume_config(args.out, config)  # a changed config cannot resume: say so now
    import numpy as np

    from .backends.compile_cache import use_run_compile_cache
    from .backends.parallel import check_devices
    from .fileio import folder_lock, output_folder
    from .training import train

    # Before minutes of loading: the devices must exist, the weights to start from must fit,
    # and the run folder must take files and be this process's alone.
    check_devices(args.devices, batch_size=config.batch_size)
    if args.critic_warmup is not None and args.init_from is None:
        raise ValueError("--critic-warmup only applies with --init-from (a run from scratch "
                         "trains both networks from the start)")
    if args.init_from is not None:
        from .checkpoint import CHECKPOINT_DIR, latest_checkpoint
        from .warm_start import describe_warm_start, learning_rate_note, read_warm_start

        start = read_warm_start(args.init_from, config, critic_warmup=args.critic_warmup)
        if latest_checkpoint(Path(args.out) / CHECKPOINT_DIR) is None:
            print(f"beatgan train: {describe_warm_start(start.record)}")
            note = learning_rate_note(args.init_from, config)
            if note:
                print(f"beatgan train: note: {note}")
    with output_folder(args.out, what="preparing the run folder"), folder_lock(args.out):
        use_run_compile_cache(args.out)  # JAX: a resumed run reuses the compiled step
        loops = _load_training_data(args.data, config)
        # Noise over each loop's real audio only, as the notebook does: padding stays silent.
        data = loops.augment(rng=np.random.default_rng(config.seed))
        print(f"training on {len(loops.paths)} loops x {config.noise_copies} noisy copies = "
              f"{len(data)} segments of shape {data.shape[1:]}")
        # With only a time limit there is no iteration target; with neither, 1000 iterations.
        iterations = (args.iterations if args.iterations is not None or args.max_minutes is not None
                      else 1000)
        max_seconds = None if args.max_minutes is None else 60.0 * args.max_minutes
        result = train(data, config, run_dir=args.out, iterations=iterations,
                       checkpoint_every=args.checkpoint_every,
                       checkpoint_minutes=args.checkpoint_minutes, jit_compile=args.jit_compile,
                       devices=args.devices, preview_every=args.preview_every,
                       max_seconds=max_seconds, export_dtype=args.export_dtype,
                       jax_step=args.jax_step, keep=args.keep_checkpoints,
                       on_instability=args.on_instability, max_rollbacks=args.max_rollbacks,
                       init_from=args.init_from, critic_warmup=args.critic_warmup)
    if result.stop_reason == "interrupted":  # Ctrl-C or SIGTERM: stopped cleanly, all saved
        print(f"beatgan train: {train_summary(result)}", file=sys.stderr)
        return 130
    print(train_summary(result))
    return 0


def _require_raw_weights(folder: str | Path) -> None:
    """``--raw`` on a folder that holds only the moving average is an error, not the average."""
    from .export import RAW_GENERATOR_WEIGHTS, read_export_info

    if not (Path(folder) / RAW_GENERATOR_WEIGHTS).is_file() and read_export_info(folder).get("ema"):
        raise FileNotFoundError(
            f"--raw: {folder} holds only the generator's moving average (no "
            f"{RAW_GENERATOR_WEIGHTS}); leave --raw out, or point --weights at a run's export/")


def _cmd_generate(args: argparse.Namespace) -> int:
    weights_dir = _weights_folder(args.weights)
    if args.raw:
        _require_raw_weights(weights_dir)
    _set_backend(args.backend)
    from .export import weights_provenance
    from .fileio import output_folder
    from .generation import generate_to_folder, load_generator

    with output_folder(args.out, what=f"writing beats to {args.out}"):
        model, config = load_generator(weights_dir, raw=args.raw)
        # A chunk at a time: memory stays bounded for any --n.
        paths = generate_to_folder(model, args.out, n=args.n, seed=args.seed, config=config,
                                   weights=weights_provenance(weights_dir, raw=args.raw))
    print(f"wrote {len(paths)} beat{'' if len(paths) == 1 else 's'} to {args.out}")
    return 0


def _cmd_loop(args: argparse.Namespace) -> int:
    if args.tempo_method is not None and args.bpm is None:
        raise ValueError("--tempo-method says how to reach a --bpm; give the tempo too")
    weights_dir = _weights_folder(args.weights)
    _set_backend(args.backend)
    from tqdm.auto import tqdm

    from .export import weights_provenance
    from .fileio import check_free_space, output_folder
    from .generation import load_generator, make_loop
    from .loop_export import file_frames

    last = args.index + args.count - 1
    if last > MAX_INDEX:
        raise ValueError(f"--index {args.index} --count {args.count} reaches beat {last}; the "
                         f"last index is {MAX_INDEX}")
    indices = range(args.index, last + 1)
    with output_folder(args.out, what=f"writing a loop to {args.out}"):
        model, config = load_generator(weights_dir)
        weights = weights_provenance(weights_dir)
        # The whole pack against the free space first: 24-bit frames, plus headers, tags and
        # the .json sidecar.
        frames = file_frames(config, bars=args.bars, out_rate_hz=args.rate, bpm=args.bpm)
        check_free_space(args.out, len(indices) * (frames * config.channels * 3 + LOOP_EXTRA_BYTES),
                         what=f"writing {len(indices)} loop{'s' if len(indices) > 1 else ''} to "
                              f"{args.out}")
        # Each loop is written whole before the next is made: an error keeps the ones before it.
        paths = [make_loop(model, config=config, out_dir=args.out, structure=args.structure,
                           bars=args.bars, seed=args.seed, index=index, weights=weights,
                           out_rate_hz=args.rate, bpm=args.bpm,
                           tempo_method=args.tempo_method or "auto")
                 for index in tqdm(indices, desc="loops", unit="loop", dynamic_ncols=True,
                                   disable=len(indices) == 1 or None)]
    print(f"wrote {paths[0]}" if len(paths) == 1 else
          f"wrote {len(paths)} loops to {args.out} ({paths[0].name} ... {paths[-1].name})")
    return 0


def _score_config(args: argparse.Namespace) -> Config:
    """The config the beats were written with (``GENERATED/beats.json``) unless ``--preset`` is
    given, else the seed preset; config flags on top."""
    sidecar = Path(args.generated) / "beats.json"
    if args.preset is None and sidecar.is_file():
        try:
            base = Config.from_dict(json.loads(sidecar.read_text())["config"])
        except (KeyError, TypeError, ValueError) as error:  # not JSON, no config, a bad field
            raise ValueError(f"{sidecar}: holds no readable config ({error!r}); give --preset "
                             f"(e.g. --preset seed) to score without it") from error
        return _config_from_args(args, base=base)
    return _config_from_args(args)


def _cmd_score(args: argparse.Namespace) -> int:
    config = _score_config(args)
    from contextlib import nullcontext

    from .fileio import output_folder
    from .similarity import ms_to_samples
    from .similarity_examples import check_examples_folder
    from .workflows import folder_metrics, score_folder

    if args.examples is not None:
        check_examples_folder(args.examples)  # before the scoring, not after it
    examples = (nullcontext() if args.examples is None else
                output_folder(args.examples, what=f"writing similarity examples to {args.examples}"))
    max_shift_ms = args.max_shift_ms if args.max_shift_ms > 0 else None
    # The longest lag that rounds to fewer samples than the beat has, floored to 0.1 ms.
    longest_ms = math.floor(1e4 * (config.score_len - 0.5) / config.sample_rate_hz - 1e-9) / 10
    if max_shift_ms is not None and \
            ms_to_samples(max_shift_ms, sample_rate_hz=config.sample_rate_hz) >= config.score_len:
        raise ValueError(f"--max-shift-ms {args.max_shift_ms:g} is longer than the scored beat: "
                         f"at most {longest_ms:.1f} ms ({config.score_len} samples at "
                         f"{config.sample_rate_hz} Hz)")
    with examples:
        # Loaded once here when the metrics need them too; score_folder loads them otherwise.
        loops = (_load_training_data(args.data, config, progress=not args.json) if args.metrics
                 else None)
        report = score_folder(args.data, args.generated, config=config, threshold=args.threshold,
                              max_shift_ms=max_shift_ms, examples_dir=args.examples,
                              examples=args.example_count, progress=not args.json,
                              loops=loops)
        metrics = (folder_metrics(args.generated, loops, config=config, progress=not args.json)
                   if args.metrics else None)
    output = report.to_dict()
    if args.json:
        if metrics is not None:
            output["metrics"] = metrics.to_dict()
        print(json.dumps(_json_safe(output), indent=2, allow_nan=False))
    else:
        print(report.table())
        if metrics is not None:
            print()
            print(metrics.summary())
        if args.examples is not None:
            print(f"similarity examples written to {args.examples}")
    return 0


def _cmd_select(args: argparse.Namespace) -> int:
    _set_backend(args.backend)
    from .fileio import output_folder
    from .selection import (SELECTION_DIR, check_out_folder, check_request, export_selection,
                            run_config, select_checkpoint)

    # Before the loops are loaded: a missing run, no checkpoint, too few beats, a bad --out.
    check_request(args.run, metric=args.metric, n=args.n)
    if args.seed + args.seeds - 1 > MAX_SEED:
        raise ValueError(f"--seed {args.seed} with --seeds {args.seeds} draws seeds up to "
                         f"{args.seed + args.seeds - 1}, past the largest, {MAX_SEED}")
    out = check_out_folder(args.run, args.out or Path(args.run) / SELECTION_DIR)
    with output_folder(out, what=f"exporting the chosen checkpoint to {out}"):
        config = run_config(args.run)
        loops = _load_training_data(args.data, config, progress=not args.json)
        selection = select_checkpoint(args.run, loops, metric=args.metric, n=args.n,
                                      seed=args.seed, seeds=args.seeds, config=config,
                                      progress=not args.json)
        export_selection(selection, out, dtype=args.export_dtype)
    if args.json:
        print(json.dumps({**selection.to_dict(), "out": str(out)}, indent=2, allow_nan=False))
    else:
        print(selection.table())
        print(f"exported step {selection.chosen.step} to {out}. "
              f"Next: beatgan generate --weights {out}")
    return 0


def _cmd_app(args: argparse.Namespace) -> int:
    weights_dir = _weights_folder(args.weights)
    _set_backend(args.backend)
    from .app import launch

    launch(weights_dir, data_dir=args.data, host=args.host, port=args.port, share=args.share)
    return 0


def _cmd_run_notebook(args: argparse.Namespace) -> int:
    from .notebook import parse_parameter, run_notebook, training_size

    parameters = dict(parse_parameter(p) for p in args.parameters)
    parameters, note = training_size(args.notebook, parameters)  # no GPU: the CPU model size
    if note:
        print(note)
    run_notebook(args.notebook, output=args.output, parameters=parameters, light=args.light)
    return 0


# --- parser -----------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    summary = __doc__.split("\n\n")[0].replace("``", "")
    parser = argparse.ArgumentParser(prog="beatgan", description=summary)
    parser.add_argument("--version", action="version", version=f"beatgan {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also BEATGAN_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int], help_text: str):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        # Also accepted after the command; SUPPRESS keeps it from hiding the top-level flag.
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error (also BEATGAN_DEBUG=1)")
        return p

    backend_help = "Keras backend (default: $KERAS_BACKEND, else tensorflow)"

    p = command("demo-data", _cmd_demo_data,
                "write the synthetic stand-in for the Ultimate Drum Loops pack")
    p.add_argument("out_dir", type=Path, help="folder to write the loops into (created if needed)")
    p.add_argument("--n", type=_positive, default=434, help="number of loops (default 434, like the pack)")
    p.add_argument("--seed", type=_count, default=0, help="seed of the synthesizer (default 0)")
    p.add_argument("--bpm", type=_parse_bpm, default=None,
                   help="a tempo or a range LOW-HIGH (default: the pack's 124/125 bpm)")

    p = command("train", _cmd_train, "train the WaveGAN (resumes from RUN_DIR's latest checkpoint)")
    p.add_argument("--data", default=DEFAULT_DATA,
                   help="folder of loops (default ULTIMATE_DRUM_LOOPS; the demo pack when it holds no audio)")
    p.add_argument("--out", required=True, type=Path, help="run folder: checkpoints, logs, exported weights")
    p.add_argument("--iterations", type=_positive, default=None,
                   help="target number of G updates, each after d_updates_per_g D updates "
                        "(default 1000, or no target when --max-minutes is given)")
    p.add_argument("--max-minutes", type=_positive_float, default=None,
                   help="time limit in minutes, counted once the loops are loaded and "
                        "augmented (building and compiling count): no iteration is started that "
                        "would end past it; then checkpoint and export; the same command resumes "
                        "(default: none)")
    p.add_argument("--export-dtype", choices=("float32", "float16"), default="float32",
                   help="storage of the exported weights, generator and critic (float16: half "
                        "the size, loads as float32)")
    p.add_argument("--backend", choices=("tensorflow", "jax"), default=None, help=backend_help)
    p.add_argument("--checkpoint-every", type=_positive, default=5000,
                   help="iterations between checkpoints (default 5000; a d = 64 checkpoint is "
                        "about 0.5 GB, a few seconds to write)")
    p.add_argument("--checkpoint-minutes", type=_positive_float, default=None,
                   help="minutes between checkpoints, whichever comes first (default 5: a crash "
                        "loses at most that much training; 1 with --on-instability rollback)")
    p.add_argument("--keep-checkpoints", type=_positive, default=3,
                   help="how many of the newest checkpoints to keep (default 3); keep more to "
                        "choose among them afterwards with beatgan select")
    p.add_argument("--on-instability", choices=("warn", "rollback"), default="warn",
                   help="when the critic's estimate jumps (a WGAN-GP run losing its footing): "
                        "warn and keep the checkpoint before it (default), or roll back to that "
                        "checkpoint with both learning rates halved and go on (NaN losses too; "
                        "checkpoints then come every minute by default)")
    p.add_argument("--max-rollbacks", type=_count, default=3,
                   help="with --on-instability rollback: rollbacks allowed before the next one "
                        "stops the run at its last healthy state (default 3)")
    p.add_argument("--preview-every", type=_positive, default=500,
                   help="iterations between TensorBoard audio previews of 4 fixed latent vectors "
                        "(default 500; lower it for a short run)")
    p.add_argument("--jit-compile", action="store_true", help="compile the steps with XLA (TensorFlow)")
    p.add_argument("--jax-step", choices=("fused", "plain"), default="fused",
                   help="JAX: one compiled program per iteration (fused, default) or the plain "
                        "reference step, one per update (same training; a fallback)")
    p.add_argument("--devices", default=None, metavar="N|all",
                   help="split each batch over N devices (or all GPUs) with the framework's data "
                        "parallelism; the batch size must divide by N (default: one device)")
    p.add_argument("--init-from", type=Path, default=None, metavar="WEIGHTS",
                   help="start a new run from a weights folder (weights/, a run's export/): its "
                        "generator, moving average and critic when it has one; the config flags "
                        "default to its config.json (default: train from scratch)")
    p.add_argument("--critic-warmup", type=_count, default=None, metavar="ITERATIONS",
                   help="with --init-from: iterations that train only the critic before the "
                        "generator learns (default 500 when the folder has no critic, else 0); "
                        "on a resumed run, a new end for a warm-up that has not ended yet")
    _add_config_flags(p, ["model_dim", "batch_size", "mixed_precision", "seed", "decimation",
                          "beats", "phase_shuffle", "phase_shuffle_per", "learning_rate",
                          "d_updates_per_g",
                          "slice_len", "target_bpm", "tempo_method", "detect_tempo", "ema",
                          "ema_decay", "drift_weight", "upsample"])

    p = command("generate", _cmd_generate, "write generated beats as WAV files")
    weights_help = ("folder with generator.weights.h5 and config.json (default: weights/ when it "
                    "holds them, else the model that ships with beatgan)")
    p.add_argument("--weights", help=weights_help)
    p.add_argument("--n", type=_positive, default=40, help="number of beats (default 40)")
    p.add_argument("--out", type=Path, default=Path("generated_output"),
                   help="folder for outputNNN.wav, beats.json and latents.npy (default "
                        "generated_output); beats an earlier run listed in beats.json are "
                        "replaced, other files are left alone")
    p.add_argument("--seed", type=_at_most(MAX_SEED, low=0), default=0,
                   help="seed of the latent vectors (default 0)")
    p.add_argument("--backend", choices=("tensorflow", "jax"), default=None, help=backend_help)
    p.add_argument("--raw", action="store_true",
                   help="use the last raw generator weights instead of their moving average")

    p = command("loop", _cmd_loop, "export a DAW-ready loop (44.1 kHz, 24-bit, tempo tagged) from "
                "generated bars")
    p.add_argument("--weights", help=weights_help)
    p.add_argument("--out", type=Path, default=Path("generated_output/loops"),
                   help="folder for the loop WAV and its .json (default generated_output/loops)")
    p.add_argument("--structure", default="AAAB", choices=LOOP_STRUCTURES,
                   help="one letter per bar, each letter its own segment (default AAAB)")
    p.add_argument("--bars", type=_at_most(MAX_BARS), default=4,
                   help=f"bars in the loop, a multiple of the structure's length, at most {MAX_BARS} "
                        f"(default 4)")
    p.add_argument("--seed", type=_at_most(MAX_SEED, low=0), default=0,
                   help="seed of the latent vectors (default 0)")
    p.add_argument("--index", type=_at_most(MAX_INDEX, low=0), default=0,
                   help="which of the seed's latent vectors is A: beat outputNNN of generate "
                        "(default 0)")
    p.add_argument("--rate", type=int, choices=DAW_RATES_HZ, default=None, metavar="HZ",
                   help="sample rate of the loop file, one of "
                        f"{', '.join(map(str, DAW_RATES_HZ))} (default: the weights' source "
                        "rate, 44100); other than the default, it is in the file name")
    p.add_argument("--bpm", type=_loop_bpm, default=None,
                   help="bring the loop to this tempo (default: the model's, 125 for the seed "
                        "preset); the tempo and the method are in the file name")
    p.add_argument("--tempo-method", choices=LOOP_TEMPO_METHODS, default=None,
                   help="with --bpm: slice (each hit moved unchanged, pitch kept), resample "
                        "(varispeed: pitch moves with tempo, a semitone per 6 %%) or auto: "
                        "resample within a semitone, else slice (default auto)")
    p.add_argument("--count", type=_at_most(MAX_COUNT), default=1,
                   help=f"loops to write, one per beat from --index on (INDEX, INDEX + 1, ...), "
                        f"at most {MAX_COUNT} (default 1)")
    p.add_argument("--backend", choices=("tensorflow", "jax"), default=None, help=backend_help)

    p = command("score", _cmd_score, "score generated beats for similarity to the training loops")
    p.add_argument("--data", default=DEFAULT_DATA, help="training loops (default ULTIMATE_DRUM_LOOPS / demo pack)")
    p.add_argument("--generated", default="generated_output",
                   help="folder of generated WAVs (default generated_output)")
    p.add_argument("--threshold", type=_non_negative, default=0.1,
                   help="similar when the score is at most this (default 0.1)")
    p.add_argument("--max-shift-ms", type=_non_negative, default=20.0,
                   help="lag bound of the shift-tolerant score, 0 disables it (default 20)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--examples", type=Path, default=None,
                   help="also write similarity examples (beat, nearest loops, README) into this folder")
    p.add_argument("--example-count", type=_count, default=3,
                   help="how many beats get an example folder, 0 for the index README only (default 3)")
    p.add_argument("--metrics", action="store_true",
                   help="also compute tempo consistency, Frechet distance, NDB/JS and diversity")
    _add_config_flags(p, ["decimation", "beats", "bpm", "target_bpm", "tempo_method", "detect_tempo"],
                      preset_help="the config in GENERATED/beats.json, else seed")

    from .goals import GOALS
    from .selection import CHOICES, GOALS_CRITERION

    p = command("select", _cmd_select,
                "score a run's checkpoints with the beat metrics and export the best one")
    p.add_argument("--run", required=True, type=Path, help="run folder of beatgan train (--out)")
    p.add_argument("--data", default=DEFAULT_DATA,
                   help="training loops the metrics compare with (default ULTIMATE_DRUM_LOOPS / "
                        "demo pack)")
    p.add_argument("--metric", default="frechet", choices=list(CHOICES),
                   help="what chooses: " + ", ".join(f"{k} ({v})" for k, v in CHOICES.items()
                                                     if k != GOALS_CRITERION)
                        + f"; or {GOALS_CRITERION}: the most of the shipping goals met ("
                        + ", ".join(f"{goal.name} {goal.text}" for goal in GOALS.values())
                        + "), then the lowest Frechet; ties go to the later step (default "
                          "frechet)")
    p.add_argument("--n", type=_positive, default=64,
                   help="beats drawn from each checkpoint, the same latent vectors for all "
                        "(default 64; fewer than the metric needs is refused, naming its minimum)")
    p.add_argument("--seed", type=_at_most(MAX_SEED, low=0), default=0,
                   help="seed of the latent vectors (default 0)")
    p.add_argument("--seeds", type=_positive, default=1,
                   help="draws of --n beats per checkpoint, at seeds --seed, --seed + 1, ...; "
                        "each checkpoint is judged by their means (default 1; 3 steadies a "
                        "choice between close checkpoints at 3x the scoring time)")
    p.add_argument("--out", type=Path, default=None,
                   help="weights folder for the chosen checkpoint, with selection.json "
                        "(default RUN/best; never RUN/export)")
    p.add_argument("--export-dtype", choices=("float32", "float16"), default="float32",
                   help="storage of the exported weights, generator and critic (float16: half "
                        "the size, loads as float32)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--backend", choices=("tensorflow", "jax"), default=None, help=backend_help)

    p = command("app", _cmd_app, "a web page to make, hear and download loops (needs the [app] extra)")
    p.add_argument("--weights", help=weights_help)
    p.add_argument("--data", default=DEFAULT_DATA,
                   help="training loops for the nearest-loop table (default ULTIMATE_DRUM_LOOPS / demo pack)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to serve on (default 127.0.0.1; 0.0.0.0 for the network)")
    p.add_argument("--port", type=_at_most(65535), default=None,
                   help="port (default: the first free one from 7860)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    p.add_argument("--backend", choices=("tensorflow", "jax"), default=None, help=backend_help)

    p = command("run-notebook", _cmd_run_notebook, "execute a notebook top to bottom, headless")
    p.add_argument("notebook", type=Path, help="the .ipynb to execute (in its own folder)")
    p.add_argument("--output", type=Path, default=None, help="where to save it (default: in place)")
    p.add_argument("--light", action="store_true",
                   help="drop the embedded audio players from the saved outputs, but for the "
                        "beat grid's small previews")
    p.add_argument("-p", "--param", dest="parameters", action="append", default=[], metavar="NAME=VALUE",
                   help="set a notebook parameter (repeatable), e.g. -p iterations=200")
    return parser


#: The extra that installs an optional package the command needs.
_EXTRA_OF = {"gradio": "app", "papermill": "notebook", "nbformat": "notebook",
             "nbclient": "notebook", "ipykernel": "notebook", "jax": "jax", "tensorboard": "tensorboard"}

#: What each command writes, for an OSError that does not say: "while <this>".
_ACTIVITY = {"demo-data": "writing the demo pack", "train": "training", "generate": "writing beats",
             "loop": "writing a loop", "score": "scoring", "select": "selecting a checkpoint",
             "run-notebook": "running the notebook"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every error it raises becomes one line on stderr and an exit code.

    2: bad input or a file-system error (read-only, full, no permission, a file in the way,
    a run folder in use); 1: a run that started and then failed (diverged, or the disk failed
    mid-run); 130: interrupted (training first finishes its iteration and saves, unless
    interrupted twice). ``--debug`` or ``BEATGAN_DEBUG=1`` also print the traceback.
    """
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("BEATGAN_DEBUG", "") not in ("", "0")
    prefix = f"beatgan {args.command}"
    try:
        return args.func(args)
    except OSError as error:
        # Also the FileNotFoundError/NotADirectoryError of bad paths. Errors raised with a
        # message only (no errno) are printed as they are.
        if debug:
            traceback.print_exc()
        failed_run = getattr(error, "beatgan_failed_run", False)
        text = (describe_os_error(error, default_what=_ACTIVITY.get(args.command, args.command))
                if error.errno is not None else str(error))
        print(f"{prefix}: {'stopped' if failed_run else 'error'}: {text}", file=sys.stderr)
        return 1 if failed_run else 2
    except ValueError as error:
        # Bad input: one line that says what was expected, no traceback.
        if debug:
            traceback.print_exc()
        print(f"{prefix}: error: {_first_line(error)}", file=sys.stderr)
        return 2
    except FloatingPointError as error:  # training.NonFiniteLossError: the run diverged
        if debug:
            traceback.print_exc()
        print(f"{prefix}: stopped: {error}", file=sys.stderr)
        return 1
    except MemoryError as error:  # numpy's "Unable to allocate 84.1 GiB ..." for a huge request
        if debug:
            traceback.print_exc()
        print(f"{prefix}: error: not enough memory: {_first_line(error)}; ask for less "
              f"(fewer beats or bars)", file=sys.stderr)
        return 2
    except ImportError as error:  # an optional extra that is not installed
        if debug:
            traceback.print_exc()
        missing = error.name or "a package"
        extra = _EXTRA_OF.get(missing.split(".")[0])
        hint = f'pip install "beatgan[{extra}]"' if extra else f"pip install {missing}"
        print(f"{prefix}: error: {missing} is not installed ({hint})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if type(error).__name__ != "PapermillExecutionError":
            raise
        # A notebook cell failed: the partly executed notebook was saved; say which cell.
        if debug:
            traceback.print_exc()
        print(f"{prefix}: stopped: In [{error.exec_count}] raised {error.ename}: "
              f"{_first_line(error.evalue)} (the executed notebook is saved)", file=sys.stderr)
        return 1


def _first_line(error: BaseException | str) -> str:
    """The message's first line: some libraries append pages of detail."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else (type(error).__name__ if isinstance(error, BaseException) else "")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line a user reads ("beatgan: warning: ..."), not Python's two; written
    through tqdm so that a progress bar on the terminal is not broken by it."""
    from tqdm import tqdm

    tqdm.write(f"beatgan: warning: {message}", file=file or sys.stderr)


def run() -> int:
    """The console entry point: ``main`` with warnings printed as one line each."""
    import warnings

    warnings.showwarning = _show_warning
    return main()


if __name__ == "__main__":
    raise SystemExit(run())
