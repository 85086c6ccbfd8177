"""The ``beatgan`` command: a thin layer of flags over the library's functions.

    beatgan demo-data OUT_DIR [--n 434] [--seed 0] [--bpm 90-140]
    beatgan train --data DIR --out RUN_DIR [--iterations N] [--model-dim D] ...
    beatgan generate --weights DIR --n 40 --out generated_output [--seed S]
    beatgan loop --weights DIR --out DIR [--structure AAAB] [--bars 4]
    beatgan score --data DIR --generated DIR [--threshold 0.1] [--json]
    beatgan run-notebook beat_gan.ipynb [--output OUT] [-p NAME=VALUE ...]

Flags named after Config fields (``--model-dim`` -> ``model_dim``) override the
chosen ``--preset``; nothing else reaches the config.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from .config import DECIMATION_METHODS, PRESETS, TEMPO_METHODS, Config, preset

DEFAULT_WEIGHTS = "weights"
DEFAULT_DATA = "ULTIMATE_DRUM_LOOPS"


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
    choices = {"decimation": DECIMATION_METHODS, "tempo_method": TEMPO_METHODS}
    for name in names:
        default = fields[name].default
        if isinstance(default, bool):
            group.add_argument(_flag(name), dest=name, action=argparse.BooleanOptionalAction,
                               default=None, help=f"(default {default})")
        else:
            kind = float if name == "target_bpm" or isinstance(default, float) else type(default)
            group.add_argument(_flag(name), dest=name, type=kind, default=None,
                               choices=choices.get(name), help=f"(default {default})")


def _config_from_args(args: argparse.Namespace, *, base: Config | None = None) -> Config:
    """``base`` (default: the ``--preset``, else seed) with every config flag given applied on top."""
    names = {f.name for f in dataclasses.fields(Config)}
    changes = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if base is None:
        base = preset(args.preset or "seed")
    return base.replace(**changes)


def _set_backend(name: str | None) -> None:
    """Choose the Keras backend; must happen before anything imports keras."""
    if name:
        if "keras" in sys.modules and os.environ.get("KERAS_BACKEND") != name:
            raise ValueError(f"Keras is already loaded with another backend; cannot switch to {name}")
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


def _parse_bpm(text: str) -> float | tuple[float, float]:
    """``"125"`` -> 125.0; ``"90-140"`` -> (90.0, 140.0)."""
    low, sep, high = text.partition("-")
    try:
        return (float(low), float(high)) if sep else float(low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bpm takes a number or a range LOW-HIGH, got {text!r}")


# --- commands ---------------------------------------------------------------
def _cmd_demo_data(args: argparse.Namespace) -> int:
    from .synth import write_demo_pack

    paths = write_demo_pack(args.out_dir, n=args.n, seed=args.seed, bpm=args.bpm)
    print(f"wrote {len(paths)} demo loops to {args.out_dir}")
    return 0


def _load_training_data(folder: str, config: Config, *, progress: bool = True):
    from .data import load_loops
    from .synth import ensure_demo_pack

    folder = ensure_demo_pack(folder, missing_ok=folder == DEFAULT_DATA)
    return load_loops(folder, config, progress=progress)


def _cmd_train(args: argparse.Namespace) -> int:
    _set_backend(args.backend)
    config = _config_from_args(args)
    import numpy as np

    from .training import train

    loops = _load_training_data(args.data, config)
    # Noise over each loop's real audio only, as the notebook does: padding stays silent.
    data = loops.augment(rng=np.random.default_rng(config.seed))
    print(f"training on {len(loops.paths)} loops x {config.noise_copies} noisy copies = "
          f"{len(data)} segments of shape {data.shape[1:]}")
    # With only a time limit there is no iteration target; with neither, 1000 iterations.
    iterations = args.iterations if args.iterations or args.max_minutes else 1000
    max_seconds = None if args.max_minutes is None else 60.0 * args.max_minutes
    result = train(data, config, run_dir=args.out, iterations=iterations,
                   checkpoint_every=args.checkpoint_every,
                   checkpoint_minutes=args.checkpoint_minutes, jit_compile=args.jit_compile,
                   devices=args.devices, max_seconds=max_seconds,
                   export_dtype=args.export_dtype)
    print(f"done: {result}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    _set_backend(args.backend)
    from .export import weights_provenance
    from .generation import generate, load_generator, write_beats

    model, config = load_generator(args.weights, raw=args.raw)
    audio, latents = generate(model, n=args.n, seed=args.seed, config=config)
    paths = write_beats(audio, args.out, config=config, latents=latents, seed=args.seed,
                        weights=weights_provenance(args.weights, raw=args.raw))
    print(f"wrote {len(paths)} beats to {args.out}")
    return 0


def _cmd_loop(args: argparse.Namespace) -> int:
    _set_backend(args.backend)
    from .generation import load_generator, make_loop

    model, config = load_generator(args.weights)
    path = make_loop(model, config=config, out_dir=args.out, structure=args.structure,
                     bars=args.bars, seed=args.seed, index=args.index)
    print(f"wrote {path}")
    return 0


def _score_config(args: argparse.Namespace) -> Config:
    """The config the beats were written with (``GENERATED/beats.json``) unless ``--preset`` is
    given, else the seed preset; config flags on top."""
    sidecar = Path(args.generated) / "beats.json"
    if args.preset is None and sidecar.is_file():
        return _config_from_args(args, base=Config.from_dict(json.loads(sidecar.read_text())["config"]))
    return _config_from_args(args)


def _cmd_score(args: argparse.Namespace) -> int:
    config = _score_config(args)
    from .similarity import score_folder

    max_shift_ms = args.max_shift_ms if args.max_shift_ms > 0 else None
    # Loaded once here when the metrics need them too; score_folder loads them otherwise.
    loops = _load_training_data(args.data, config, progress=not args.json) if args.metrics else None
    report = score_folder(args.data, args.generated, config=config, threshold=args.threshold,
                          max_shift_ms=max_shift_ms, examples_dir=args.examples,
                          examples=args.example_count, progress=not args.json,
                          data_missing_ok=args.data == DEFAULT_DATA, loops=loops)
    output = report.to_dict()
    metrics = _beat_metrics(args, config, loops) if args.metrics else None
    if args.json:
        if metrics is not None:
            output["metrics"] = metrics.to_dict()
        print(json.dumps(output, indent=2))
    else:
        print(report.table())
        if metrics is not None:
            print()
            print(metrics.summary())
        if args.examples is not None:
            print(f"similarity examples written to {args.examples}")
    return 0


def _beat_metrics(args: argparse.Namespace, config: Config, loops):
    """Offline beat metrics of the generated folder against the augmented training ``loops``."""
    import numpy as np

    from .metrics import TrainingReference, evaluate
    from .similarity import load_generated

    generated, _ = load_generated(args.generated, config=config)
    train = loops.augment(rng=np.random.default_rng(config.seed))[:, :config.score_len]
    groups = np.repeat(np.arange(len(loops)), config.noise_copies)
    reference = TrainingReference.fit(train, config=config, seed=config.seed, groups=groups)
    return evaluate(generated, reference)


def _cmd_run_notebook(args: argparse.Namespace) -> int:
    from .notebook import parse_parameter, run_notebook

    parameters = dict(parse_parameter(p) for p in args.parameters)
    run_notebook(args.notebook, output=args.output, parameters=parameters, light=args.light)
    return 0


# --- parser -----------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beatgan", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int], help_text: str):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    backend_help = "Keras backend (default: $KERAS_BACKEND, else tensorflow)"

    p = command("demo-data", _cmd_demo_data,
                "write the synthetic stand-in for the Ultimate Drum Loops pack")
    p.add_argument("out_dir", type=Path)
    p.add_argument("--n", type=_count, default=434, help="number of loops (default 434, like the pack)")
    p.add_argument("--seed", type=_count, default=0)
    p.add_argument("--bpm", type=_parse_bpm, default=None,
                   help="a tempo or a range LOW-HIGH (default: the pack's 124/125 bpm)")

    p = command("train", _cmd_train, "train the WaveGAN (resumes from RUN_DIR's latest checkpoint)")
    p.add_argument("--data", default=DEFAULT_DATA,
                   help="folder of loops (default ULTIMATE_DRUM_LOOPS; the demo pack when it holds no audio)")
    p.add_argument("--out", required=True, type=Path, help="run folder: checkpoints, logs, exported weights")
    p.add_argument("--iterations", type=int, default=None,
                   help="target number of G updates, each after d_updates_per_g D updates "
                        "(default 1000, or no target when --max-minutes is given)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop after this many minutes of this command, compiling included: "
                        "finish the iteration, checkpoint, export (resume with the same command)")
    p.add_argument("--export-dtype", choices=("float32", "float16"), default="float32",
                   help="storage of the exported generator (float16: half the size, loads as float32)")
    p.add_argument("--backend", choices=("tensorflow", "jax"), default=None, help=backend_help)
    p.add_argument("--checkpoint-every", type=int, default=500, help="iterations between checkpoints")
    p.add_argument("--checkpoint-minutes", type=float, default=10.0, help="minutes between checkpoints")
    p.add_argument("--jit-compile", action="store_true", help="compile the steps with XLA (TensorFlow)")
    p.add_argument("--devices", default=None, metavar="N|all",
                   help="split each batch over N devices (or all GPUs) with the framework's data "
                        "parallelism; the batch size must divide by N (default: one device)")
    _add_config_flags(p, ["model_dim", "batch_size", "mixed_precision", "seed", "decimation",
                          "beats", "phase_shuffle", "learning_rate", "d_updates_per_g",
                          "slice_len", "target_bpm", "tempo_method", "detect_tempo", "ema",
                          "ema_decay"])

    p = command("generate", _cmd_generate, "write generated beats as WAV files")
    p.add_argument("--weights", default=DEFAULT_WEIGHTS, help="folder with generator.weights.h5 and config.json")
    p.add_argument("--n", type=_count, default=40)
    p.add_argument("--out", type=Path, default=Path("generated_output"))
    p.add_argument("--seed", type=_count, default=0)
    p.add_argument("--backend", choices=("tensorflow", "jax"), default=None, help=backend_help)
    p.add_argument("--raw", action="store_true",
                   help="use the last raw generator weights instead of their moving average")

    p = command("loop", _cmd_loop, "export a DAW-ready loop (44.1 kHz, 24-bit) from generated bars")
    p.add_argument("--weights", default=DEFAULT_WEIGHTS)
    p.add_argument("--out", type=Path, default=Path("generated_output/loops"))
    p.add_argument("--structure", default="AAAB", help="AAAA, AAAB, AABB or ABAB")
    p.add_argument("--bars", type=int, default=4, help="bars in the loop")
    p.add_argument("--seed", type=_count, default=0)
    p.add_argument("--index", type=_count, default=0, help="which of the seed's latent vectors is A")
    p.add_argument("--backend", choices=("tensorflow", "jax"), default=None, help=backend_help)

    p = command("score", _cmd_score, "score generated beats for similarity to the training loops")
    p.add_argument("--data", default=DEFAULT_DATA, help="training loops (default ULTIMATE_DRUM_LOOPS / demo pack)")
    p.add_argument("--generated", default="generated_output", help="folder of generated WAVs")
    p.add_argument("--threshold", type=float, default=0.1, help="similar when the score is at most this")
    p.add_argument("--max-shift-ms", type=float, default=20.0,
                   help="lag bound of the shift-tolerant score (0 disables it)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--examples", type=Path, default=None,
                   help="also write similarity examples (beat, nearest loops, README) into this folder")
    p.add_argument("--example-count", type=int, default=3, help="how many beats get an example folder")
    p.add_argument("--metrics", action="store_true",
                   help="also compute tempo consistency, Frechet distance, NDB/JS and diversity")
    _add_config_flags(p, ["decimation", "beats", "bpm", "target_bpm", "tempo_method", "detect_tempo"],
                      preset_help="the config in GENERATED/beats.json, else seed")

    p = command("run-notebook", _cmd_run_notebook, "execute a notebook top to bottom, headless")
    p.add_argument("notebook", type=Path)
    p.add_argument("--output", type=Path, default=None, help="where to save it (default: in place)")
    p.add_argument("--light", action="store_true", help="drop embedded audio players from the saved outputs")
    p.add_argument("-p", "--param", dest="parameters", action="append", default=[], metavar="NAME=VALUE",
                   help="set a notebook parameter (repeatable), e.g. -p iterations=200")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, NotADirectoryError) as error:
        # Bad input: one line that says what was expected, no traceback.
        print(f"beatgan {args.command}: error: {error}", file=sys.stderr)
        return 2
    except FloatingPointError as error:  # training.NonFiniteLossError: the run diverged
        print(f"beatgan {args.command}: stopped: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"beatgan {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
