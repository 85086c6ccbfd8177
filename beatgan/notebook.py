"""Running ``beat_gan.ipynb`` headless with papermill, and the small helpers its cells call.

``run_notebook`` executes a notebook top to bottom; ``beatgan run-notebook -p NAME=VALUE``
overrides the defaults of its cell tagged ``parameters``, so they stay readable in the notebook.
"""

from __future__ import annotations

import ast
import base64
import io
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .export import has_weights
from .quiet import drop_absl_lines

#: Marks the beat grid's HTML, which ``lighten_outputs`` keeps (its players are small previews).
GRID_MARK = "beatgan-beat-grid"
#: Rate of the grid's previews: a quarter of 29.4 kHz, enough to tell kick, snare and hats apart;
#: 40 mono players at this rate are about 0.9 MB of the executed notebook (the grid's
#: thumbnails about 1.1 MB more).
PREVIEW_RATE_HZ = 7350


def parse_parameter(text: str) -> tuple[str, Any]:
    """``"iterations=200"`` -> ``("iterations", 200)``; values are Python literals, else strings."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise ValueError(f"a notebook parameter is NAME=VALUE, got {text!r}")
    try:
        value = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError):
        value = raw.strip()
    return name, value


def check_parameters(path: str | Path, parameters: dict[str, Any]) -> None:
    """Raise ValueError when a parameter is not set in the notebook's cell tagged ``parameters``,
    or is given a value of another type than the cell's (``-p iterations=abc``), before a kernel
    starts.

    papermill only logs a warning for an unknown one, so a typo would be ignored silently. The cell is read
    with ``ast``: papermill's own parser gives up on lines whose comment holds ``=``.
    """
    declared = parameter_defaults(path)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ValueError(f"unknown notebook parameter(s) {unknown}; the parameters cell sets "
                         f"{sorted(declared)}")
    for name, value in parameters.items():
        default = declared[name]
        # An int for a float (-p threshold=1) is fine; a bool is not an int here.
        if default is None or type(value) is type(default) or (type(default), type(value)) == (float, int):
            continue
        hint = (f'; quote a text value: -p {name}=\'"{value}"\'' if isinstance(default, str)
                else "")
        raise ValueError(f"notebook parameter {name}={value!r} has type {type(value).__name__}; "
                         f"the parameters cell sets {name} = {default!r} "
                         f"({type(default).__name__}){hint}")


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def parameter_defaults(path: str | Path) -> dict[str, Any]:
    """Name -> value of each assignment in the notebook's cell tagged ``parameters`` (None for a
    value that is not a Python literal). Raises ValueError when no cell is tagged so."""
    import nbformat

    try:
        notebook = nbformat.read(path, as_version=4)
    except (ValueError, TypeError, AttributeError, KeyError, nbformat.ValidationError) as error:
        # What nbformat raises for a file that is not UTF-8, not JSON, or JSON of another shape.
        raise ValueError(f"{path}: not a Jupyter notebook ({_first_line(error)}); expected an "
                         f".ipynb file such as beat_gan.ipynb") from error
    cells = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ValueError(f"{path} has no cell tagged 'parameters'")
    from IPython.core.inputtransformer2 import TransformerManager

    # As the kernel reads it: %magics and !commands become Python calls first.
    source = TransformerManager().transform_cell(cells[0].source)
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise ValueError(f"{path}: the cell tagged 'parameters' is not valid Python "
                         f"({error.msg}, line {error.lineno})") from None
    defaults: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            try:
                value = ast.literal_eval(node.value) if node.value is not None else None
            except ValueError:
                value = None
            defaults.update((t.id, value) for t in targets if isinstance(t, ast.Name))
    return defaults


#: Asked in a child process (see ``gpu_visible``): how many GPUs the Keras backend sees.
_GPU_PROBE = """
import keras
backend = keras.backend.backend()
if backend == "tensorflow":
    import tensorflow as tf
    print(len(tf.config.list_physical_devices("GPU")))
elif backend == "jax":
    import jax
    print(sum(d.platform != "cpu" for d in jax.devices()))
else:
    print(0)
"""


#: How long the GPU probe may take: starting a backend takes seconds, a hung driver forever.
GPU_PROBE_TIMEOUT_S = 120


def gpu_visible() -> bool | None:
    """Whether the Keras backend a notebook kernel started from here would see a GPU; None if
    the probe failed.

    Asked in a child process with this environment: a backend that starts on a GPU takes its
    memory (JAX preallocates most of it), which the kernel will need.
    """
    import os
    import subprocess
    import sys

    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        done = subprocess.run([sys.executable, "-c", _GPU_PROBE], capture_output=True, text=True,
                              env=env, timeout=GPU_PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:  # a driver that hangs: no answer, as for a failed probe
        return None
    last = done.stdout.strip().splitlines()[-1:] if done.returncode == 0 else []
    return int(last[0]) > 0 if last and last[0].isdigit() else None


def training_size(path: str | Path, parameters: dict[str, Any], *,
                  gpu: bool | None = None) -> tuple[dict[str, Any], str | None]:
    """The parameters to run the notebook at ``path`` with, and a line saying what was chosen.

    When the run trains (``iterations`` > 0), gives neither ``model_dim`` nor ``batch_size``,
    and no GPU is visible, the preset's size (d = 64) would take hours on the CPU: the notebook
    then trains the size of its CPU fallback (``fallback_model_dim``, ``fallback_batch_size``,
    as given or as the parameters cell sets them), and the line says so and how to override it.
    With ``continue_training`` the weights keep their own d, and only the batch is the
    fallback's.
    Otherwise ``parameters`` are returned unchanged with None. ``gpu``: None asks
    ``gpu_visible`` (only when the other conditions hold; an unanswered probe keeps the preset).
    A notebook that cannot be read is left to ``run_notebook`` to report, after its own checks.
    """
    try:
        defaults = parameter_defaults(path)
    except (OSError, ValueError):
        return parameters, None
    merged = {**defaults, **parameters}
    iterations = merged.get("iterations")
    trains = isinstance(iterations, int) and not isinstance(iterations, bool) and iterations > 0
    cpu_size = ("fallback_model_dim", "fallback_batch_size", "model_dim", "batch_size")
    if (not trains or "model_dim" in parameters or "batch_size" in parameters
            or not all(isinstance(merged.get(k), int) for k in cpu_size)):
        return parameters, None
    if gpu is None:
        gpu = gpu_visible()
    if gpu is None or gpu:
        return parameters, None
    if merged.get("continue_training") is True:  # the weights' own d; only the batch is ours
        size = {"batch_size": merged["fallback_batch_size"]}
        note = (f"beatgan: no GPU visible: going on from {merged.get('weights_dir')}'s weights "
                f"at their own size with the notebook's CPU batch, {size['batch_size']}; "
                f"-p batch_size=N sets another")
        return {**parameters, **size}, note
    size = {"model_dim": merged["fallback_model_dim"], "batch_size": merged["fallback_batch_size"]}
    note = (f"beatgan: no GPU visible: training the notebook's CPU size, d = {size['model_dim']}, "
            f"batch {size['batch_size']} (d = {merged['model_dim']} would take hours on the CPU); "
            f"-p model_dim={merged['model_dim']} -p batch_size={merged['batch_size']} trains "
            f"the preset's size")
    return {**parameters, **size}, note


def lighten_outputs(notebook: Any) -> Any:
    """Make a notebook light for committing (in place): audio players dropped, TF's C++ log
    lines removed, papermill's per-cell metadata dropped."""
    notebook.metadata.pop("papermill", None)
    for cell in notebook.cells:
        cell.get("metadata", {}).pop("papermill", None)
        if cell.get("metadata", {}).get("tags") == []:  # papermill adds an empty list to every cell
            del cell["metadata"]["tags"]
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                output["text"] = drop_absl_lines(output["text"])
                if not output["text"].strip():
                    continue
            html = output.get("data", {}).get("text/html", "")
            html = "".join(html) if isinstance(html, list) else html
            if "<audio" in html and GRID_MARK not in html:
                output["data"] = {"text/plain": "[audio player removed to keep the notebook light]"}
            kept.append(output)
        cell["outputs"] = kept
    return notebook


def _kernel_config():
    """How the runner starts the kernel.

    Over local socket files (ipc) rather than TCP ports: no port opens, and ipykernel has no
    reason to warn about unencrypted TCP. With the kernel's own log at CRITICAL: jupyter_client
    interrupts every kernel as it shuts it down, and a kernel still answering a message then logs
    "KeyboardInterrupt caught in kernel" (a failing cell is reported by papermill, not this log).
    """
    from traitlets.config import Config as TraitletsConfig

    return TraitletsConfig({"KernelManager": {"transport": "ipc"},
                            "NotebookClient": {"extra_arguments": ["--IPKernelApp.log_level=CRITICAL"]}})


def run_notebook(path: str | Path, *, output: str | Path | None = None,
                 parameters: dict[str, Any] | None = None, light: bool = False,
                 timeout_s: int | None = None, kernel_name: str = "python3") -> Path:
    """Execute the notebook at ``path`` top to bottom in its own folder with papermill.

    ``parameters`` go in a cell papermill places after the cell tagged ``parameters``. The
    executed notebook is saved to ``output`` (``path`` itself when None), in one atomic write,
    lightened first when ``light``. Returns the path written. A failing cell raises papermill's
    PapermillExecutionError after the partly executed notebook is saved.
    """
    import nbformat
    import papermill

    from .fileio import atomic_write_bytes, check_writable

    path = Path(path)
    output = Path(output) if output is not None else path
    # Before minutes of running: where the notebook writes its beats, and where it is saved.
    check_writable(path.parent, what=f"running {path.name} (it writes beside itself)")
    check_writable(output.parent, what=f"saving the executed notebook to {output}")
    if output.is_dir():
        raise ValueError(f"{output} is a folder: name the executed notebook's file, such as "
                         f"{output / path.name}")
    parameters = parameters or {}
    check_parameters(path, parameters)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="beatgan-notebook-") as scratch:
        executed = Path(scratch) / path.name
        try:
            papermill.execute_notebook(str(path), str(executed), parameters=parameters,
                                       kernel_name=kernel_name, cwd=str(path.parent.resolve()),
                                       execution_timeout=timeout_s, progress_bar=False,
                                       config=_kernel_config())
        finally:
            if executed.is_file():
                notebook = nbformat.read(executed, as_version=4)
                if light:
                    lighten_outputs(notebook)
                text = nbformat.writes(notebook)
                atomic_write_bytes(output, (text if text.endswith("\n") else text + "\n").encode(),
                                   what=f"saving the executed notebook to {output}")
    print(f"beatgan: executed {path} in {time.perf_counter() - start:.0f} s -> {output}")
    return output


def play(audio: np.ndarray, *, sample_rate_hz: int, normalize: bool = False) -> Any:
    """An inline audio player for a (time,), (time, channels) float array in [-1, 1].

    Built from a 16-bit WAV in memory, so it plays in any browser.
    """
    import soundfile as sf
    from IPython.display import HTML

    audio = np.asarray(audio, dtype=np.float32)
    if normalize and np.max(np.abs(audio)) > 0:
        audio = audio / np.max(np.abs(audio)) * 0.9
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0), sample_rate_hz, format="WAV", subtype="PCM_16")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return HTML(f'<audio controls preload="none" src="data:audio/wav;base64,{data}"></audio>')


# --- the notebook's cells ---------------------------------------------------
def choose_mode(*, weights_dir: str | Path, iterations: int, preset_name: str = "seed",
                model_dim: int = 64, batch_size: int = 64, seed: int = 0,
                fallback_model_dim: int = 8, fallback_batch_size: int = 16,
                continue_training: bool = False):
    """Decide what the "Train or load" section does and with which config: ``(mode, config)``.

    mode "load": ``iterations == 0`` and ``weights_dir`` holds weights (config read from there).
    mode "continue": ``iterations > 0`` and ``continue_training``: a new run that goes on from
    the weights in ``weights_dir`` (``beatgan.warm_start``), with their config and ``batch_size``,
    in float32 as mode "train" is, whatever precision they trained in (bfloat16 is slow on a
    CPU; ``beatgan train --init-from`` keeps theirs).
    mode "train": ``iterations > 0``: the preset with ``model_dim``, ``batch_size`` and ``seed``.
    mode "fallback": ``iterations == 0`` but no weights: a small model (``fallback_model_dim``,
    ``fallback_batch_size``) trained briefly, so the notebook still ends with beats.
    """
    import dataclasses

    from .config import Config, preset

    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if iterations == 0 and has_weights(weights_dir):
        return "load", Config.load(weights_dir)
    if iterations > 0 and continue_training:
        if not has_weights(weights_dir):
            raise FileNotFoundError(f"continue_training: {weights_dir} holds no trained weights "
                                    f"(generator.weights.h5 and config.json) to go on from")
        return "continue", dataclasses.replace(Config.load(weights_dir), batch_size=batch_size,
                                               mixed_precision=False)
    if iterations > 0:
        return "train", preset(preset_name, model_dim=model_dim, batch_size=batch_size, seed=seed)
    return "fallback", preset(preset_name, model_dim=fallback_model_dim,
                              batch_size=fallback_batch_size, seed=seed)


def run_folder(run_dir: str | Path, config: Any, *, fallback: bool = False,
               warm: bool = False) -> Path:
    """Where the "Train or load" section trains: one folder per model shape and seed under ``run_dir``.

    A run folder resumes only a run of the same config, so changing ``model_dim``, the batch,
    the seed or the preset starts a folder of its own instead of an error; so does going on
    from trained weights (``warm``), which a run from scratch cannot resume.
    """
    prefix = "cpu-fallback-" if fallback else "from-weights-" if warm else ""
    name = (f"{prefix}d{config.model_dim}-b{config.batch_size}"
            f"-seed{config.seed}-{config.slice_len}at{config.sample_rate_hz}Hz")
    return Path(run_dir) / name


def describe_setup(mode: str, config: Any) -> str:
    """Lines saying the backend, whether a GPU is visible, and what "Train or load" will do."""
    import keras

    from .backends.parallel import available_devices

    backend = keras.backend.backend()
    gpus = [d for d in available_devices() if "cpu" not in d.lower()]
    plan = {
        "load": "Train or load: loads the trained weights",
        "train": "Train or load: trains (resuming from the run folder if it holds checkpoints)",
        "continue": ("Train or load: goes on training from the trained weights (a new critic "
                     "learns alone first; resuming from the run folder if it holds checkpoints)"),
        "fallback": (f"NO TRAINED WEIGHTS FOUND: Train or load trains a small model (d = {config.model_dim}) "
                     "briefly on this machine instead; its beats will sound like noise, not loops"),
    }[mode]
    return (f"Keras {keras.__version__}, backend {backend}; "
            f"GPU: {', '.join(gpus) if gpus else 'none visible, running on the CPU'}\n{plan}")


def describe_loops(loops: Any) -> str:
    """How many loops were loaded and skipped, their tempi, and the segment lengths."""
    from collections import Counter

    tempi = Counter(float(b) for b in loops.bpm)
    lengths = Counter(int(n) for n in loops.lengths)
    import os

    # The folder holding them all (the pack's, when its loops sit in subfolders).
    folder = Path(os.path.commonpath([Path(p).parent for p in loops.paths])) if len(loops) else None
    lines = [f"{len(loops)} loops loaded from {_relative(folder)}" if len(loops) else "no loops",
             "tempi: " + ", ".join(f"{n} at {b:g} bpm" for b, n in sorted(tempi.items())),
             "segment lengths (samples at %d Hz): " % loops.config.sample_rate_hz
             + ", ".join(f"{n} x {length}" for length, n in sorted(lengths.items())),
             f"tensor {loops.audio.shape} {loops.audio.dtype}"]
    if loops.skipped:
        lines.append(f"skipped {len(loops.skipped)} file(s): "
                     + "; ".join(f"{Path(r.path).name}: {r.reason}" for r in loops.skipped[:5]))
    return "\n".join(lines)


def _relative(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it, else as it is."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def history_columns(history: list[dict[str, float]]) -> dict[str, list[float]]:
    """Rows of a training history -> one list per column (what ``plots.loss_curves`` takes)."""
    keys = list(history[0]) if history else []
    return {k: [row[k] for row in history] for k in keys}


def save_scores(report: Any, out_dir: str | Path, *, weights: dict[str, Any] | None = None) -> Path:
    """Write the novelty report beside the generated beats: ``scores.json`` and ``scores.txt`` (the table).

    ``weights`` (``export.weights_provenance``): which weights made the beats, recorded in both
    (the table's last line says so plainly when a briefly trained CPU fallback made them).
    """
    import json

    from .export import describe_provenance
    from .fileio import write_files_atomically

    out_dir = Path(out_dir)
    table = report.table() + ("\n" + describe_provenance(weights) if weights else "")
    path = out_dir / "scores.json"
    write_files_atomically({  # a full disk leaves the previous pair, never half a file
        out_dir / "scores.txt": (table + "\n").encode(),
        path: (json.dumps({**report.to_dict(), "weights": weights}, indent=2) + "\n").encode()},
        what=f"writing scores to {out_dir}")
    return path


def shift_best_scores(report: Any) -> np.ndarray | None:
    """Each beat's best shift-tolerant score, or None when it was not computed."""
    if not report.has_shift_tolerant:
        return None
    return np.array([b.nearest_shift_tolerant[0].score_shift_tolerant for b in report.beats])


def nearest_train_index(report: Any, beat: int) -> int:
    """Row (in the training set the report was scored against) of the loop nearest to ``beat``."""
    return int(report.beats[beat].nearest[0].train_index)


def read_audio(path: str | Path) -> np.ndarray:
    """A whole WAV as float32 (time, channels)."""
    import soundfile as sf

    return sf.read(str(path), dtype="float32", always_2d=True)[0]


def _wav_data_uri(audio: np.ndarray, *, sample_rate_hz: int) -> str:
    """A ``data:audio/wav;base64,...`` URI of a 16-bit WAV."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0), sample_rate_hz, format="WAV", subtype="PCM_16")
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _thumbnail_uri(audio: np.ndarray, *, sample_rate_hz: int, vmax_db: float) -> str:
    """A small spectrogram PNG (160 x 64 px) as a data URI; dB range ``vmax_db - 80 .. vmax_db``."""
    import matplotlib.image

    from .plots import log_spectrogram_db

    db = log_spectrogram_db(audio, sample_rate_hz=sample_rate_hz)[0][::-1]
    rows = np.linspace(0, db.shape[0] - 1, 64).astype(int)
    cols = np.linspace(0, db.shape[1] - 1, 160).astype(int)
    buffer = io.BytesIO()
    matplotlib.image.imsave(buffer, db[np.ix_(rows, cols)], vmin=vmax_db - 80.0, vmax=vmax_db,
                            cmap="magma", format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def beat_grid(audio: np.ndarray, *, names: list[str], scores: np.ndarray, sample_rate_hz: int,
              columns: int = 8, preview_rate_hz: int = PREVIEW_RATE_HZ) -> Any:
    """Every beat as a spectrogram thumbnail, its name and best score, and a small player.

    ``audio`` is ``(n, time, channels)`` at ``sample_rate_hz``. Thumbnails share one dB scale
    (as ``plots.spectrogram_grid``), so a quiet beat looks quiet. Players are mono previews at
    ``preview_rate_hz`` (the files in the output folder are full quality).
    """
    import html

    from IPython.display import HTML

    from .audio import resample
    from .plots import log_spectrogram_db

    audio = np.asarray(audio, dtype=np.float32)
    vmax_db = max(float(log_spectrogram_db(a, sample_rate_hz=sample_rate_hz)[0].max()) for a in audio)
    # (time, n): resample works on axis 0.
    mono = resample(audio.mean(axis=2).T, orig_rate_hz=sample_rate_hz,
                    target_rate_hz=preview_rate_hz).T
    cells = []
    for i, name in enumerate(names):
        thumb = _thumbnail_uri(audio[i], sample_rate_hz=sample_rate_hz, vmax_db=vmax_db)
        wav = _wav_data_uri(mono[i], sample_rate_hz=preview_rate_hz)
        cells.append(f'<div style="text-align:center;font:11px monospace">'
                     f'<img src="{thumb}" style="width:100%;image-rendering:pixelated"><br>'
                     f'{html.escape(Path(name).stem)} s={float(scores[i]):.2f}<br>'
                     f'<audio controls preload="none" style="width:100%;height:24px" src="{wav}"></audio></div>')
    return HTML(f'<div class="{GRID_MARK}" style="display:grid;grid-template-columns:repeat({columns},1fr);'
                f'gap:6px">{"".join(cells)}</div>')


def closest_beats_table(report: Any, *, rows: int = 5) -> str:
    """The ``rows`` beats closest to some training loop, closest first: one line each (text)."""
    order = np.argsort(report.best_scores, kind="stable")[:rows]
    lines = [f"{'beat':<15}{'best score':>11}{'shifted':>9}  nearest training loop", "-" * 66]
    for i in order:
        beat = report.beats[int(i)]
        shifted = (f"{beat.nearest_shift_tolerant[0].score_shift_tolerant:9.4f}"
                   if beat.nearest_shift_tolerant else f"{'-':>9}")
        lines.append(f"{beat.name:<15}{beat.nearest[0].score:11.4f}{shifted}  {beat.nearest[0].train_name}")
    return "\n".join(lines)
