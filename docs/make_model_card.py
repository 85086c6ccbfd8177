"""Write weights/README.md, the shipped model's card, from the files in the weights folder.

    python docs/make_model_card.py --weights weights \\
        --reproduce "KERAS_BACKEND=jax beatgan train --out runs/shipped ..." \\
        --reproduce "beatgan select --run runs/shipped --n 200 --export-dtype float16" \\
        --notes "drift_weight 0.001: the bf16 runs' critic scores drifted to +500"

Reads, from ``--weights``: ``config.json`` (preset values and what departs from the ``seed``
preset), ``weights.json`` (trained step, EMA, storage dtype, how ``beatgan select`` chose it,
where it trained), ``history.json`` or ``history.csv`` (iterations, D updates, minutes) and
``quality.json`` (``python bench/bench_quality.py --weights weights --n 200 --seeds 6 --json
weights/quality.json``: the metrics, their held-out reference points, the nearest-loop scores,
and how the metrics spread over seeds 0-5).
What the files cannot know comes as flags (``--reproduce``, ``--card`` when ``weights.json`` does
not record the device, ``--notes``). Every goal of issue 13 is judged from the figures, and one
not met is said so. Every input is read and checked (the checksums of ``weights.json`` and
``quality.json`` must be the generator's) before anything is written; the card is written in
one atomic step and its checksum line is verified (``beatgan.export.verify_model_card``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from beatgan.goals import GOALS, goals_met
from beatgan.selection import draws_text

ROOT = Path(__file__).resolve().parents[1]
HISTORY_FILES = ("history.json", "history.csv")
QUALITY = "quality.json"
DEMO_DATA = ("the 434-loop synthetic demo pack (`beatgan.synth.write_demo_pack(seed=0)`, what "
             "`ULTIMATE_DRUM_LOOPS/` falls back to when it holds no audio)")
LICENCE = ("Trained on synthesized loops only (`beatgan.synth`): no commercial or third-party "
           "audio went into it.")
#: Table rows of the Metrics section: quality.json key -> (name, format of a figure).
METRIC_ROWS = {"tempo_consistency": ("tempo consistency", "{:.3f}"),
               "frechet": ("Frechet distance", "{:,.0f}"),
               "ndb_fraction": ("NDB/k", "{:.3f}"),
               "diversity_ratio": ("diversity ratio", "{:.3f}")}


class CardError(ValueError):
    """An input of the card is missing or does not belong to the shipped generator."""


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise CardError(f"{path}: missing ({what})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CardError(f"{path}: not JSON ({error})") from None


def read_history(folder: Path) -> list[dict[str, float]]:
    """The run's history rows (history.json, else history.csv), numbers as floats."""
    from beatgan.training import load_history

    if not any((folder / name).is_file() for name in HISTORY_FILES):
        raise CardError(f"{folder}: holds neither {' nor '.join(HISTORY_FILES)} (copy the run "
                        f"folder's history.* beside the weights)")
    rows = load_history(folder)
    if not rows or not all(k in rows[-1] for k in ("step", "d_updates", "wall_s")):
        raise CardError(f"{folder}: the history's last row lacks step, d_updates or wall_s")
    return rows


@dataclasses.dataclass
class Inputs:
    """Everything the card says, read from a weights folder and the flags."""

    folder: Path
    config: Any
    info: dict[str, Any]
    history: list[dict[str, float]]
    quality: dict[str, Any]
    sha256: str
    sizes: dict[str, int]
    reproduce: list[str]
    card: str | None = None
    notes: str | None = None
    data: str = DEMO_DATA
    licence: str = LICENCE


def read_inputs(folder: str | Path, *, reproduce: list[str], card: str | None = None,
                notes: str | None = None, data: str = DEMO_DATA, licence: str = LICENCE,
                quality: str | Path | None = None) -> Inputs:
    """Read and cross-check the card's inputs; raises CardError naming what is missing or wrong."""
    from beatgan import export
    from beatgan.config import Config

    folder = Path(folder)
    generator = folder / export.GENERATOR_WEIGHTS
    if not generator.is_file():
        raise CardError(f"{generator}: missing (the shipped generator)")
    if not (folder / "config.json").is_file():
        raise CardError(f"{folder / 'config.json'}: missing (the Config that rebuilds it)")
    config = Config.load(folder)
    info = _read_json(folder / export.EXPORT_INFO, "trained step, EMA, dtype, sha256")
    history = read_history(folder)
    quality_path = Path(quality) if quality is not None else folder / QUALITY
    figures = _read_json(quality_path, f"the quality figures: python bench/bench_quality.py "
                                       f"--weights {folder} --n 200 --json {quality_path}")
    sha256 = export.file_sha256(generator)
    if info.get("generator_sha256") != sha256:
        raise CardError(f"{folder / export.EXPORT_INFO} belongs to another generator (sha256 "
                        f"{info.get('generator_sha256')}, the file's is {sha256})")
    measured = figures.get("weights", {}).get("sha256")
    if measured != sha256:
        raise CardError(f"{quality_path} measured another generator (sha256 {measured}, the "
                        f"file's is {sha256}): run bench/bench_quality.py again")
    if card is None and not info.get("trained_on"):
        raise CardError(f"{folder / export.EXPORT_INFO} does not record the device it trained "
                        f"on (exported before weights.json had 'trained_on'): give --card")
    if not reproduce:
        raise CardError("give the command that reproduces the weights (--reproduce)")
    sizes = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
    return Inputs(folder=folder, config=config, info=info, history=history, quality=figures,
                  sha256=sha256, sizes=sizes, reproduce=list(reproduce), card=card, notes=notes,
                  data=data, licence=licence)


# --- the card's parts ------------------------------------------------------------------------
def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MiB" if n_bytes >= 2**20 else f"{n_bytes / 1024:.1f} KiB"


def folder_section(inputs: Inputs) -> str:
    """What each file is and how the folder is made (the part that is not the card)."""
    info = inputs.info
    generator = ("the generator's moving average (EMA)" if info.get("ema")
                 else "the generator's last weights (no moving average was kept)")
    what = {
        "generator.weights.h5": f"{generator}, Keras `.weights.h5`, {info.get('dtype')} storage "
                                f"(loads as float32 under TensorFlow and JAX)",
        "discriminator.weights.h5": f"the critic of the same checkpoint, {info.get('dtype')} "
                                    f"storage: `beatgan train --init-from weights` goes on with "
                                    f"it instead of training a new one first",
        "config.json": "the `Config` that rebuilds it (`beatgan.generation.load_generator`)",
        "weights.json": "trained step, EMA flag and decay, storage dtype, sha256 of the "
                        "generator, how `beatgan select` chose it, where it trained",
        "history.json": "the run's losses, a row per log interval",
        "history.csv": "the same rows as CSV",
        "selection.json": "every checkpoint `beatgan select` scored",
        QUALITY: "the figures of the Metrics table below (`bench/bench_quality.py --json`)",
        "README.md": "this model card (`docs/make_model_card.py`)",
    }
    order = list(what) + sorted(set(inputs.sizes) - set(what))
    rows = [f"| `{name}` | {what.get(name, '')} | {_size(inputs.sizes[name])} |"
            for name in order if name in inputs.sizes and name != "README.md"]
    critic = "discriminator.weights.h5" in inputs.sizes
    stays = ("The raw generator stays in the run folder: it is not needed to generate or to go "
             "on training." if critic else
             "The discriminator and the raw generator of this run stayed in its run folder: "
             "they are not needed to generate. The recipe below copies the critic too, so that "
             "a warm start from the next weights shipped finds it.")
    return "\n".join([
        "## What is here", "",
        "| file | what | size |", "| --- | --- | --- |", *rows, "",
        stays,
        "Made from a run folder with", "",
        "    beatgan train ... --out runs/shipped --export-dtype float16 --keep-checkpoints 20",
        "    beatgan select --run runs/shipped --n 200 --metric goals --seed 10 --seeds 3 "
        "--export-dtype float16    # the best checkpoint, not the last",
        "    python bench/compare_weights.py weights runs/shipped/best    "
        "# better than these, beyond the seeds' spread?",
        "    cp runs/shipped/best/{generator.weights.h5,discriminator.weights.h5,config.json,"
        "weights.json} runs/shipped/history.* weights/",
        "    python bench/bench_quality.py --weights weights --n 200 --seeds 6 --json weights/quality.json",
        "    python docs/make_model_card.py --weights weights --reproduce \"...\" --notes \"...\"",
        "",
        "then the README's picture and gallery from them: `python docs/make_figure.py --weights "
        "weights`",
        "and `python docs/make_gallery.py --weights weights` (a few 4-bar loops in "
        "`docs/gallery/`).",
    ])


def departures(config: Any) -> list[str]:
    """One line per Config value that differs from the ``seed`` preset's."""
    from beatgan.config import PRESETS, describe

    seed = PRESETS["seed"]
    return [f"`{f.name}` {getattr(config, f.name)!r} (the `seed` preset: "
            f"{getattr(seed, f.name)!r}; {describe(f.name)})"
            for f in dataclasses.fields(config) if getattr(config, f.name) != getattr(seed, f.name)]


def hyperparameters_section(inputs: Inputs) -> str:
    c = inputs.config
    away = departures(c)
    lines = ["### Preset and hyperparameters",
             f"{c.slice_len} samples at {c.sample_rate_hz} Hz, "
             f"{c.channels} channels, {c.beats:g} beats at {c.bpm:g} bpm. d = {c.model_dim}, batch "
             f"{c.batch_size}, Adam {c.learning_rate:g} (beta {c.beta_1:g}/{c.beta_2:g}) for both "
             f"networks, gradient penalty {c.gp_weight:g}, drift weight {c.drift_weight:g}, "
             f"{c.d_updates_per_g} D updates per G update, phase shuffle {c.phase_shuffle}, "
             f"seed {c.seed} (`config.json` holds every value).", ""]
    if away:
        lines += ["Departures from the `seed` preset:", ""] + [f"- {line}" for line in away]
    else:
        lines.append("Departures from the `seed` preset: none.")
    if inputs.notes:
        lines += ["", f"Why: {inputs.notes}"]
    return "\n".join(lines)


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def steps_section(inputs: Inputs) -> str:
    last = inputs.history[-1]
    iterations, d_updates, seconds = int(last["step"]), int(last["d_updates"]), last["wall_s"]
    rate = d_updates / seconds if seconds > 0 else float("nan")
    step = inputs.info.get("step")
    selection = inputs.info.get("selection")
    if selection:  # a weights.json from before `select --seeds` drew once
        drawn = draws_text(selection["seed"], selection.get("seeds", 1))
    if selection and selection["metric"] == "goals":
        chosen = (f"the generator at iteration {step:,}, chosen by `beatgan select --metric "
                  f"goals` from {selection['candidates']} checkpoints: it met "
                  f"{selection['value']:.0f} of {len(selection['goals_met'])} goals over "
                  f"{selection['n']} beats ({drawn}), the most any met, with "
                  f"the lowest Frechet distance of those ({selection['checkpoint']})")
    elif selection:
        metric = METRIC_ROWS.get(selection["metric"], (selection["metric"],))[0]
        chosen = (f"the generator at iteration {step:,}, chosen by `beatgan select` from "
                  f"{selection['candidates']} checkpoints by {metric} ({selection['direction']} "
                  f"is better; {selection['value']:.4g} over {selection['n']} beats, "
                  f"{drawn}; {selection['checkpoint']})")
    else:
        chosen = (f"the run's export at iteration {step:,} (not chosen by `beatgan select`)"
                  if step is not None else "weights of an unrecorded step")
    lines = [
        "### Steps and minutes",
        f"{iterations:,} iterations ({d_updates:,} D updates, {inputs.config.d_updates_per_g} per "
        f"iteration) in {seconds / 60:.1f} minutes of training (the history's `wall_s`: the "
        f"training loop, compiling included), {rate:.0f} D updates/s.",
        f"Shipped: {chosen}."]
    before = inputs.info.get("started_from")
    if before:
        runs = before.get("runs", 1)
        critic = ("its critic" if before.get("critic") == "loaded" else
                  f"a new critic that trained alone for the first "
                  f"{before.get('critic_warmup', 0):,} iterations")
        lines.append(
            f"This run started from earlier weights (`--init-from`, sha256 "
            f"{before['generator_sha256'][:16]}...: {before['iterations']:,} iterations, "
            f"{before['d_updates']:,} D updates, over {runs} earlier "
            f"run{'s' if runs != 1 else ''}) "
            f"with {critic}; the figures above are this run's alone. In all, "
            f"{before['iterations'] + iterations:,} iterations and "
            f"{before['d_updates'] + d_updates:,} D updates are behind these weights.")
    rollbacks = inputs.info.get("rollbacks") or []
    if rollbacks:
        moves = ", ".join(f"{r['at_step']:,} to {r['to_step']:,}" for r in rollbacks)
        lines.append(
            f"The run rolled back {_times(len(rollbacks))} on instability "
            f"(`--on-instability rollback`; from iteration {moves}), each halving both learning "
            f"rates (last: {rollbacks[-1]['learning_rate']:.3g}); the iterations above count "
            f"only the kept ones, the minutes include the discarded stretches.")
    return "\n".join(lines)


def card_section(inputs: Inputs) -> str:
    trained_on = inputs.info.get("trained_on") or {}
    if inputs.card:
        card = inputs.card
    else:
        count = trained_on.get("devices", 1)
        card = f"{trained_on['device']}{f' x {count}' if count and count > 1 else ''}"
    backend = trained_on.get("backend") or inputs.info.get("backend")
    precision = ("mixed bfloat16 (bfloat16 compute, float32 weights)"
                 if inputs.config.mixed_precision else "float32")
    return "\n".join([
        "### Card and precision",
        f"{card}{f', Keras backend {backend}' if backend else ''}. Trained in {precision}; "
        f"`generator.weights.h5` stores {inputs.info.get('dtype')}."])


def ema_section(inputs: Inputs) -> str:
    if inputs.info.get("ema"):
        text = (f"On, decay {inputs.info.get('ema_decay')} per generator update (lower early "
                f"in a run: min(decay, (1 + step) / (10 + step))): `generator.weights.h5` is the "
                f"average.")
    else:
        text = "Off: `generator.weights.h5` holds the raw generator's weights."
    return "### EMA\n" + text


def verdicts(quality: dict[str, Any]) -> dict[str, bool | None]:
    """Metric -> goal met (None: no held-out point to judge by), by ``beatgan.goals``."""
    metrics = quality["metrics"]
    met = goals_met({key: metrics[key]["generated"] for key in METRIC_ROWS},
                    {key: metrics[key]["held_out"] for key in METRIC_ROWS})
    return {key: met[key] for key in METRIC_ROWS}


def metrics_section(inputs: Inputs) -> str:
    q = inputs.quality
    met = verdicts(q)
    rows = []
    for key, (name, fmt) in METRIC_ROWS.items():
        row = q["metrics"][key]
        held = "" if row.get("held_out") is None else fmt.format(row["held_out"])
        verdict = {True: "yes", False: "**no**", None: "unknown"}[met[key]]
        rows.append(f"| {name} | {fmt.format(row['generated'])} | {held} | {GOALS[key].text} "
                    f"| {verdict} |")
    shift = q.get("fraction_similar_shift_tolerant")
    similar = f"{q['fraction_similar']:.3f}" + ("" if shift is None else
                                                f" (shift-tolerant {shift:.3f})")
    rows.append(f"| fraction similar (best score <= {q['threshold']:g}) | {similar} | | "
                f"reported | |")
    def figures(judged: bool | None) -> list[str]:
        return [f"{METRIC_ROWS[k][0]} {METRIC_ROWS[k][1].format(q['metrics'][k]['generated'])} "
                f"(goal {GOALS[k].text})" for k, ok in met.items() if ok is judged]

    short, unknown = figures(False), figures(None)
    said = []
    if short:
        said.append(f"**Goal not met**: {len(short)} of {len(met)} figures "
                    f"{'falls' if len(short) == 1 else 'fall'} short of issue "
                    f"13's goal: " + "; ".join(short) + ".")
    if unknown:
        said.append("Not judged (no held-out reference point): " + "; ".join(unknown) + ".")
    verdict = " ".join(said) or f"**All {len(met)} goals of issue 13 are met.**"
    n_reference = q.get("n_reference")
    if n_reference and n_reference != q["n_generated"]:
        # The smaller set's distance is the one biased upwards.
        smaller, other = (("held-out", "generated") if n_reference < q["n_generated"]
                          else ("generated", "held-out"))
        verdict += (f" The held-out points come from {n_reference} loops, the generated figures "
                    f"from {q['n_generated']} beats. The Frechet distance, NDB/k and JS depend on "
                    f"the set size; the Frechet distance of a smaller set is biased upwards, so "
                    f"the {smaller} distance is larger than it would be at the {other} set's "
                    f"size.")
    percentiles = q["nearest_score_percentiles"]
    spread = q.get("across_seeds")
    flags = measured_flags(q)
    n_train = f" ({q['n_train']} loops)" if q.get("n_train") else ""
    if q.get("target_bpm"):
        n_train += f", each brought to {q['target_bpm']:g} bpm"
    return "\n".join([
        "### Metrics",
        f"{q['n_generated']} generated beats (seed {q.get('seed', 0)}) against the training "
        f"pack{n_train}, recomputed by `python bench/bench_quality.py --weights weights --n "
        f"{q['n_generated']}{flags} --json weights/quality.json`, beside the held-out "
        f"reference point that `beatgan score --metrics` prints:", "",
        "| metric | generated | held-out loops | goal | met |",
        "| --- | --- | --- | --- | --- |", *rows, "",
        verdict, "", *(spread_lines(spread) if spread else []),
        "Nearest-loop score distribution (each beat's best score; percentiles "
        f"{', '.join(k[1:] for k in percentiles)}): "
        + ", ".join(f"{v:.3f}" for v in percentiles.values()) + "."])


def measured_flags(q: dict[str, Any]) -> str:
    """The ``bench_quality.py`` flags beyond ``--weights`` and ``--n`` that ``quality.json``
    records: ``--data``, ``--seed``, ``--seeds``, ``--target-bpm`` and ``--raw``, as set."""
    from beatgan import export

    flags = []
    if q.get("data") not in (None, "ULTIMATE_DRUM_LOOPS"):
        flags.append(f"--data {q['data']}")
    if q.get("seed", 0) != 0:
        flags.append(f"--seed {q['seed']}")
    if q.get("across_seeds"):
        flags.append(f"--seeds {len(q['across_seeds']['seeds'])}")
    if q.get("target_bpm"):
        flags.append(f"--target-bpm {q['target_bpm']:g}")
    if str(q.get("weights", {}).get("path", "")).endswith(export.RAW_GENERATOR_WEIGHTS):
        flags.append("--raw")
    return "".join(f" {flag}" for flag in flags)


def spread_lines(spread: dict[str, Any]) -> list[str]:
    """The Metrics section's paragraph on other draws: ``quality.json``'s ``across_seeds``
    (``bench_quality.py --seeds K``), a table and which goals lie within the spread."""
    seeds, k = spread["seeds"], len(spread["seeds"])
    rows, mixed = [], []
    for key, (name, fmt) in METRIC_ROWS.items():
        row = spread["metrics"].get(key)
        if row is None:
            continue
        rows.append(f"| {name} | {fmt.format(row['mean'])} | {fmt.format(row['sd'])} | "
                    f"{fmt.format(row['min'])} - {fmt.format(row['max'])} | "
                    f"{row['met_at']} of {k} |")
        if 0 < row["met_at"] < k:
            mixed.append(f"{name} at {row['met_at']} of {k}")
    said = (f"Some goals are met at some seeds only ({'; '.join(mixed)}): they lie within the "
            f"spread between draws, so one draw can fall either side." if mixed else
            "Each goal is met at every seed or at none.")
    return [f"The table above is one draw of {spread['n']} beats. The same command at seeds "
            f"{seeds[0]}-{seeds[-1]}, {k} draws of {spread['n']} beats against the same "
            f"reference:", "",
            "| metric | mean | sd | lowest - highest | goal met at (seeds) |",
            "| --- | --- | --- | --- | --- |", *rows, "", said, ""]


def model_card(inputs: Inputs) -> str:
    """The whole README.md of a weights folder holding a trained generator (markdown)."""
    c = inputs.config
    parts = [
        "# weights/",
        "",
        "The trained BeatGAN generator that `beatgan generate`, `beatgan loop` and the notebook "
        "load by default.",
        "",
        folder_section(inputs),
        "",
        "## Model card",
        "",
        "Written by `python docs/make_model_card.py` from the files above.",
        "",
        "### Data",
        f"{inputs.data[0].upper() + inputs.data[1:]}: the first {c.beats:g} beats of each loop at "
        f"{c.sample_rate_hz} Hz ({c.decimation} decimation), {c.noise_copies} noisy copies of "
        f"each (uniform noise up to {c.noise_amplitude} in 24-bit units).",
        "",
        hyperparameters_section(inputs),
        "",
        steps_section(inputs),
        "",
        card_section(inputs),
        "",
        ema_section(inputs),
        "",
        metrics_section(inputs),
        "",
        "### Reproduce",
        "",
        *[f"    {line}" for line in inputs.reproduce],
        "",
        "### Checksum",
        f"sha256 of generator.weights.h5: `{inputs.sha256}` (`tests/test_shipped_weights.py` "
        f"checks the file against this line)",
        "",
        "### Licence note",
        inputs.licence,
        "",
    ]
    return "\n".join(parts)


def write_card(inputs: Inputs, out: str | Path | None = None) -> Path:
    """Write the card of ``inputs`` (``read_inputs``) to ``out`` (default ``README.md`` in the
    weights folder) atomically, then check its checksum line there."""
    from beatgan import export
    from beatgan.fileio import atomic_write_bytes

    out = Path(out) if out is not None else inputs.folder / export.MODEL_CARD
    atomic_write_bytes(out, model_card(inputs).encode(), what=f"writing {out}")
    if out == inputs.folder / export.MODEL_CARD:
        export.verify_model_card(inputs.folder)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="weights",
                        help="the weights folder (default weights/)")
    parser.add_argument("--out", default=None, help="where to write (default WEIGHTS/README.md)")
    parser.add_argument("--quality", default=None,
                        help=f"bench/bench_quality.py's JSON (default WEIGHTS/{QUALITY})")
    parser.add_argument("--reproduce", action="append", default=[], required=True,
                        help="a command that reproduces the weights, exactly as run (repeat for "
                             "several, e.g. train then select)")
    parser.add_argument("--card", default=None,
                        help="the GPU, e.g. 'NVIDIA H200 141 GB' (default: weights.json's "
                             "trained_on record)")
    parser.add_argument("--notes", default=None,
                        help="free text: the departures from the seed preset and why")
    parser.add_argument("--data", default=DEMO_DATA, help="what the loops were (default: the "
                                                          "demo pack)")
    parser.add_argument("--licence", default=LICENCE, help="the licence note")
    args = parser.parse_args(argv)
    try:
        inputs = read_inputs(args.weights, reproduce=args.reproduce, card=args.card,
                             notes=args.notes, data=args.data, licence=args.licence,
                             quality=args.quality)
    except (CardError, FileNotFoundError) as error:
        print(f"make_model_card: error: {error}; nothing written", file=sys.stderr)
        return 2
    out = write_card(inputs, args.out)
    met = verdicts(inputs.quality)
    print(f"wrote {out}: {sum(v is True for v in met.values())} of {len(met)} goals met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
