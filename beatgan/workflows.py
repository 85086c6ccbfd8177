"""The workflows the CLI, the notebook and the web app share, each written once over the library.

Training loops with the demo-pack fallback, generated beats read back from a folder, a folder
scored against the training loops (with example folders), and the beat metrics against a
reference fitted on the augmented training loops.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .config import Config, is_default_data_dir
from .data import LoopSet, load_loops
from .novelty import NoveltyReport, score_novelty
from .similarity import SIMILAR_THRESHOLD
from .similarity_examples import choose_examples, write_similarity_examples
from .synth import PACK_SIZE, ensure_demo_pack

if TYPE_CHECKING:  # metrics loads scikit-learn and librosa: only the metrics workflows import it
    from .metrics import MetricsReport, TrainingReference


def load_training_loops(folder: str | Path, config: Config, *, n_demo: int = PACK_SIZE,
                        missing_ok: bool | None = None, empty_ok: bool | None = None,
                        progress: bool = False) -> LoopSet:
    """The loops of ``folder``, or the demo pack (``n_demo`` loops) standing in for it.

    The demo pack stands in for a missing ``folder`` only with ``missing_ok`` and for an empty
    one only with ``empty_ok`` (``synth.ensure_demo_pack``); each defaults to whether ``folder``
    is ``config.DEFAULT_DATA_DIR``, so a folder the user named is never replaced. A folder of
    unusable files is always an error.
    """
    default = is_default_data_dir(folder)
    folder = ensure_demo_pack(folder, n=n_demo,
                              missing_ok=default if missing_ok is None else missing_ok,
                              empty_ok=default if empty_ok is None else empty_ok)
    return load_loops(folder, config, progress=progress)


def natural_key(path: Path) -> tuple:
    """Sort key of a file name: digit runs compared as numbers, letters in any case (a few lines:
    not worth a dependency)."""
    return tuple(int(part) if part.isdigit() else part.lower()
                 for part in re.split(r"(\d+)", path.name))


def load_generated(folder: str | Path, *, config: Config,
                   pattern: str = "*.wav") -> tuple[np.ndarray, list[Path]]:
    """Read generated beats for scoring: ``(n, config.score_len, channels)`` float32 and paths.

    Files are taken in natural name order (``output999`` before ``output1000``). Each must be at ``config.sample_rate_hz`` with
    ``config.channels`` channels and at least ``config.score_len`` frames; only those frames
    are read. Raises ValueError (saying what was expected) otherwise, or for a folder with no
    WAV file.
    """
    import soundfile as sf

    folder = Path(folder)
    make = f"beatgan generate --out {folder} writes them"
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"generated beats: {folder}: a file, expected a folder of beats")
    if not folder.is_dir():
        raise ValueError(f"generated beats: {folder}: no such folder; {make}")
    # Any case (a DAW's OUTPUT001.WAV), hidden files aside, as glob leaves them out.
    paths = sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                    and fnmatch.fnmatch(p.name.lower(), pattern.lower())), key=natural_key)
    if not paths:
        raise ValueError(f"generated beats: no {pattern} files in {folder}; {make}")
    n = config.score_len
    audio = np.empty((len(paths), n, config.channels), dtype=np.float32)
    for i, path in enumerate(paths):
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError) as error:
            raise ValueError(f"{path}: not a readable audio file ({error})") from None
        if info.samplerate != config.sample_rate_hz:
            raise ValueError(f"{path}: sample rate {info.samplerate} Hz, expected "
                             f"{config.sample_rate_hz} Hz (the model's rate): --generated takes "
                             f"beats that beatgan generate wrote, not loops")
        if info.channels != config.channels:
            raise ValueError(f"{path}: {info.channels} channel(s), expected {config.channels}")
        if info.frames < n:
            raise ValueError(f"{path}: {info.frames} frames, expected at least {n} "
                             f"(one segment at {config.bpm:g} bpm)")
        audio[i] = sf.read(str(path), frames=n, dtype="float32", always_2d=True)[0]
    return audio, paths


def write_examples(out_dir: str | Path, *, report: NoveltyReport, generated_paths: Sequence[Path],
                   loops: LoopSet, config: Config, n: int = 3) -> list[Path]:
    """``n`` similarity example folders (``similarity_examples``), beats spread over the scores."""
    return write_similarity_examples(out_dir, report=report, generated_paths=generated_paths,
                                     train_audio=loops.audio, train_paths=loops.paths,
                                     config=config, which=choose_examples(report, n=n))


def score_folder(data_dir: str | Path, generated_dir: str | Path, *, config: Config,
                 threshold: float = SIMILAR_THRESHOLD, k: int = 3,
                 max_shift_ms: float | None = 20.0, examples_dir: str | Path | None = None,
                 examples: int = 3, progress: bool = True,
                 data_missing_ok: bool | None = None,
                 loops: LoopSet | None = None) -> NoveltyReport:
    """Score the WAVs of ``generated_dir`` against the clean loops of ``data_dir``.

    Training loops are read with ``config`` (so ``config.decimation="naive"`` and ``beats``
    reproduce the seed's way; the demo pack is used when ``data_dir`` holds no audio). With
    ``examples_dir``, also writes ``examples`` example folders (``write_examples``).
    ``data_missing_ok``: whether a ``data_dir`` that does not exist or is empty means the demo
    pack (default: only for ``config.DEFAULT_DATA_DIR``); otherwise it is an error naming what
    was found.
    ``loops``: the training ``LoopSet`` when the caller has loaded it already (then ``data_dir``
    is not read again).
    """
    generated, gen_paths = load_generated(generated_dir, config=config)
    if loops is None:
        loops = load_training_loops(data_dir, config, missing_ok=data_missing_ok,
                                    empty_ok=data_missing_ok, progress=progress)
    report = score_novelty(loops.audio, generated, train_names=[Path(p).name for p in loops.paths],
                           generated_names=[p.name for p in gen_paths], config=config,
                           threshold=threshold, k=k, max_shift_ms=max_shift_ms)
    if examples_dir is not None:
        write_examples(examples_dir, report=report, generated_paths=gen_paths, loops=loops,
                       config=config, n=examples)
    return report


def metrics_reference(loops: LoopSet, *, config: Config, seed: int,
                      augmented: np.ndarray | None = None,
                      n_held_out: int | None = None) -> TrainingReference:
    """The metrics' reference fitted on the augmented loops' first ``config.score_len`` samples.

    ``augmented``: ``loops.augment(...)`` when the caller has it already (the training tensor);
    else drawn here with ``seed``. A loop's noisy copies form one group, so no held-out loop has
    a copy in the reference. ``n_held_out``: loops in each reference set (default
    ``metrics.DEFAULT_HELD_OUT``); the size of the generated batches they are compared with.
    """
    from .metrics import DEFAULT_HELD_OUT, TrainingReference

    if augmented is None:
        augmented = loops.augment(rng=np.random.default_rng(seed))
    groups = np.repeat(np.arange(len(loops)), config.noise_copies)
    return TrainingReference.fit(augmented[:, :config.score_len], config=config, seed=seed,
                                 groups=groups, n_held_out=n_held_out or DEFAULT_HELD_OUT)


def folder_metrics(generated_dir: str | Path, loops: LoopSet, *, config: Config,
                   progress: bool = True) -> MetricsReport:
    """Offline beat metrics of the WAVs in ``generated_dir`` against the training ``loops``."""
    from tqdm.auto import tqdm

    from .metrics import evaluate

    # Three stages of several seconds each on the full pack: a bar shows which one runs.
    with tqdm(total=3, desc="metrics", unit="stage", disable=not progress,
              dynamic_ncols=True) as bar:
        bar.set_postfix_str("reading the generated beats")
        generated, _ = load_generated(generated_dir, config=config)
        bar.update()
        bar.set_postfix_str("augmenting the loops, fitting the reference (PCA, k-means, held-out loops)")
        reference = metrics_reference(loops, config=config, seed=config.seed)
        bar.update()
        bar.set_postfix_str("scoring the generated beats")
        report = evaluate(generated, reference)
        bar.update()
    return report


