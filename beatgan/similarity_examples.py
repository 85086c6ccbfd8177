"""``similarity_metric_examples/``: listen to a generated beat next to its nearest training loops.

BeatGAN (2018) shipped a folder per example beat holding the beat, the training loops it is
closest to and a README with their scores, so that a listener can check that "score <= 0.1"
really means "sounds like a copy". ``write_similarity_examples`` writes the same from a
``NoveltyReport``:

    similarity_metric_examples/
      README.md                          index: the summary and one line per example
      output007/
        README.md                        scores of the nearest training loops, verdict
        output007.wav                    the generated beat (as written by write_beats)
        nearest1_<loop>.wav              the training loop's original file (full rate)
        nearest1_<loop>_14700Hz.wav      the segment that was scored, at the model's rate,
        ...                              one 4/4 bar long, like the generated beat
        nearest_shifted_<loop>...        the shift-tolerant nearest loop, when not among them
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .config import Config
from .fileio import atomic_write_bytes
from .generation import segment_repeated
from .loop_export import segments_per_bar, write_wav24
from .novelty import BeatNovelty, Neighbour, NoveltyReport, format_score


def choose_examples(report: NoveltyReport, *, n: int = 3) -> list[int]:
    """Indices of ``n`` beats spread over the range of best scores: the closest to a training
    loop first, the most novel last, evenly spaced ranks between."""
    order = np.argsort(report.best_scores, kind="stable")
    n = max(0, min(n, len(order)))
    if n == 0:
        return []
    ranks = np.unique(np.round(np.linspace(0, len(order) - 1, n)).astype(int))
    return [int(order[r]) for r in ranks]


def _neighbours_to_show(beat: BeatNovelty) -> list[tuple[str, Neighbour]]:
    """The plain nearest loops, plus the shift-tolerant nearest when it is not among them."""
    rows = [(str(rank), n) for rank, n in enumerate(beat.nearest, start=1)]
    listed = {n.train_index for n in beat.nearest}
    if beat.nearest_shift_tolerant and beat.nearest_shift_tolerant[0].train_index not in listed:
        rows.append(("s", beat.nearest_shift_tolerant[0]))
    return rows


def _safe_stem(name: str) -> str:
    """A file-name-safe stem: path parts and odd characters replaced."""
    stem = Path(name).stem
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) or "loop"


def _beat_readme(beat: BeatNovelty, files: list[tuple[str, Neighbour, str, str]], *,
                 report: NoveltyReport, beat_file: str) -> str:
    shift = report.has_shift_tolerant
    similar = beat.similar(report.threshold)
    lines = [f"# {beat.name}", "",
             f"Generated beat: `{beat_file}`. {BEAT_README_MARK} over the first segment "
             f"(A = training loop, B = this beat); lower is closer, and "
             f"s <= {report.threshold:g} counts as similar.", "",
             f"**Verdict: {'similar to a training loop' if similar else 'novel'}** "
             f"(best score {format_score(beat.nearest[0].score)})."]
    if shift:
        lines[-1] += (f" Allowing shifts: "
                      f"{'similar' if beat.similar_shift_tolerant(report.threshold) else 'novel'}"
                      f" (best {format_score(beat.nearest_shift_tolerant[0].score_shift_tolerant)}).")
    header = "| rank | training loop | score |"
    rule = "| --- | --- | --- |"
    if shift:
        header += " shift-tolerant score | lag (ms) |"
        rule += " --- | --- |"
    header += " full rate | as scored |"
    rule += " --- | --- |"
    lines += ["", header, rule]
    for rank, n, full, low in files:
        row = f"| {rank} | {n.train_name} | {format_score(n.score)} |"
        if shift:
            lag = (f"{1e3 * n.lag_samples / report.sample_rate_hz:+.1f}"
                   if n.lag_samples is not None and report.sample_rate_hz else "")
            row += f" {format_score(n.score_shift_tolerant)} | {lag} |"
        row += f" `{full}` | `{low}` |"
        lines.append(row)
    if any(rank == "s" for rank, *_ in files):
        lines += ["", "Rank s: the nearest loop once small time shifts are allowed."]
    return "\n".join(lines) + "\n"


def write_similarity_examples(out_dir: str | Path, *, report: NoveltyReport, config: Config,
                              train_audio: np.ndarray, train_paths: Sequence[str | Path],
                              generated_paths: Sequence[str | Path] | None = None,
                              generated_audio: np.ndarray | None = None,
                              which: Sequence[int | str] | None = None) -> list[Path]:
    """Write one example folder per chosen beat (see the module docstring); returns the folders.

    Args:
        out_dir: e.g. ``similarity_metric_examples`` (created; existing files are overwritten).
        report: ``novelty_report``/``score_novelty`` output; its neighbours pick the loops.
        config: rates and the scored segment length (``score_len``).
        train_audio: the scored training segments, ``(n_train, >= score_len, channels)``
            (``LoopSet.audio``), in the report's row order.
        train_paths: their original files, same order; copied as they are (full rate).
        generated_paths: the generated WAVs in the report's column order (copied), or
        generated_audio: ``(n_generated, >= score_len, channels)`` (written like write_beats).
        which: beats by index or name; default ``choose_examples(report)``.
    """
    if generated_paths is None and generated_audio is None:
        raise ValueError("give generated_paths or generated_audio")
    if len(train_paths) != report.n_train or len(train_audio) != report.n_train:
        raise ValueError(f"the report scored {report.n_train} training loops; got "
                         f"{len(train_paths)} paths and {len(train_audio)} segments")
    chosen = choose_examples(report) if which is None else _chosen(report, which)
    out_dir = check_examples_folder(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)  # the index README is written even for no example
    earlier = _listed_folders(out_dir)
    folders = []
    shift = report.has_shift_tolerant
    index_lines = [INDEX_TITLE, "", report.summary(), "",
                   "| beat | best score | verdict |" + (" shift-tolerant |" if shift else "")
                   + " folder |",
                   "| --- | --- | --- |" + (" --- |" if shift else "") + " --- |"]
    for j in chosen:
        beat = report.beats[j]
        folder = out_dir / _safe_stem(beat.name)
        folder.mkdir(parents=True, exist_ok=True)
        beat_file = _write_beat(folder, j, name=beat.name, config=config,
                                generated_paths=generated_paths, generated_audio=generated_audio)
        files = []
        for rank, n in _neighbours_to_show(beat):
            source = Path(train_paths[n.train_index])
            stem = f"nearest{'_shifted' if rank == 's' else rank}_{_safe_stem(n.train_name)}"
            full = f"{stem}{source.suffix or '.wav'}"
            _copy(source, folder / full)
            low = f"{stem}_{config.sample_rate_hz}Hz.wav"
            segment = segment_repeated(np.asarray(train_audio[n.train_index]),
                                       n_samples=config.score_len,
                                       repeats=segments_per_bar(config))
            write_wav24(segment, folder / low, sample_rate_hz=config.sample_rate_hz)
            files.append((rank, n, full, low))
        _write_text(folder / "README.md", _beat_readme(beat, files, report=report,
                                                       beat_file=beat_file))
        verdict = "similar" if beat.similar(report.threshold) else "novel"
        if shift:
            verdict += " | " + ("similar" if beat.similar_shift_tolerant(report.threshold)
                                else "novel")
        index_lines.append(f"| {beat.name} | {format_score(beat.nearest[0].score)} | {verdict} | "
                           f"[{folder.name}/]({folder.name}/README.md) |")
        folders.append(folder)
    _write_text(out_dir / "README.md", "\n".join(index_lines) + "\n")
    # An earlier run's examples of other beats: the new index no longer lists them.
    for name in sorted(set(earlier) - {folder.name for folder in folders}):
        shutil.rmtree(out_dir / name, ignore_errors=True)
    return folders


def _chosen(report: Any, which: Sequence[int | str]) -> list[int]:
    """Indices of the beats ``which`` names (by index or name), each once, in order."""
    names = [beat.name for beat in report.beats]
    chosen: list[int] = []
    for w in which:
        j = names.index(w) if isinstance(w, str) and w in names else w
        if isinstance(j, str) or not 0 <= int(j) < len(names):
            raise ValueError(f"no beat {w!r} in the report: give an index 0-{len(names) - 1} or "
                             f"a name such as {names[0]!r}")
        if int(j) not in chosen:
            chosen.append(int(j))
    return chosen


#: First line of the index README that ``write_similarity_examples`` writes.
INDEX_TITLE = "# Similarity metric examples"
#: What a README names when it is meant to be replaced by the index (the repository's own
#: ``similarity_metric_examples/README.md`` says so).
REPLACEABLE_MARK = "beatgan score --examples"
#: What every example folder's README says (``_beat_readme``).
BEAT_README_MARK = "Similarity score s(A, B) = sum((A - B)^2) / sum(A^2)"


def check_examples_folder(out_dir: str | Path) -> Path:
    """``out_dir`` as a Path, or ValueError when writing examples there would replace a README.md
    that is neither an earlier index nor a page that names ``beatgan score --examples``
    (``--examples .`` in a project would otherwise overwrite the project's README)."""
    out_dir = Path(out_dir)
    readme = out_dir / "README.md"
    try:
        text = readme.read_text(errors="replace")
    except FileNotFoundError:
        return out_dir
    except OSError as error:
        raise ValueError(f"cannot read {readme} ({error.strerror or error}): similarity "
                         f"examples write their index there") from None
    if not (text.startswith(INDEX_TITLE) or REPLACEABLE_MARK in text):
        raise ValueError(f"{readme} is not an index of similarity examples, and writing "
                         f"examples there would replace it: choose a folder of its own, such as "
                         f"similarity_metric_examples")
    return out_dir


def _listed_folders(out_dir: Path) -> list[str]:
    """The example folders of an earlier run in ``out_dir``: those its index README links to
    that hold files only, one of them a README written by ``_beat_readme`` (so a folder of the
    user's that a README links to is never taken for one)."""
    try:
        text = (out_dir / "README.md").read_text(errors="replace")
    except OSError:
        return []
    if not text.startswith(INDEX_TITLE):
        return []
    return [name for name in re.findall(r"\]\(([^/()]+)/README\.md\)", text)
            if _is_example_folder(out_dir / name)]


def _is_example_folder(folder: Path) -> bool:
    try:
        entries = list(folder.iterdir())
        readme = (folder / "README.md").read_text(errors="replace")
    except OSError:
        return False
    return BEAT_README_MARK in readme and all(entry.is_file() for entry in entries)


def _copy(source: Path, target: Path) -> None:
    """Copy a WAV under a temporary name first: a full disk leaves no half file under ``target``."""
    atomic_write_bytes(target, Path(source).read_bytes(),
                       what=f"writing similarity examples to {target.parent}")


def _write_text(path: Path, text: str) -> None:
    """A README of the examples, written atomically."""
    atomic_write_bytes(path, text.encode(), what=f"writing similarity examples to {path.parent}")


def _write_beat(folder: Path, j: int, *, name: str, config: Config,
                generated_paths: Sequence[Any] | None, generated_audio: np.ndarray | None) -> str:
    """Put generated beat ``j`` in ``folder``; returns its file name."""
    if generated_paths is not None:
        source = Path(generated_paths[j])
        _copy(source, folder / source.name)
        return source.name
    file_name = f"{_safe_stem(name)}.wav"
    bar = segment_repeated(np.asarray(generated_audio[j]), n_samples=config.score_len,
                           repeats=segments_per_bar(config))
    write_wav24(bar, folder / file_name, sample_rate_hz=config.sample_rate_hz)
    return file_name
