"""Reading a folder of drum loops into the training tensor: read, tempo, decimate, cut, pad.

The pipeline per file (``load_loops``), as in BeatGAN (2018) but without its temporary files:

1. open it with soundfile (any format and bit depth soundfile reads) and read only the frames
   the segment needs, plus the few the anti-aliasing filters reach past it;
2. tempo from the file name (``bpm_from_name``), else from the file's ACID chunk
   (``acid_tempo``: loop packs and beatgan's own loops carry one), else estimated with
   librosa when ``Config.detect_tempo`` is set, else the file is skipped;
3. mono -> two equal channels; another rate -> ``Config.source_rate_hz`` (44.1 kHz) with a
   Kaiser-window polyphase filter; optionally brought to ``Config.target_bpm``;
4. decimate to ``Config.sample_rate_hz`` (14.7 kHz): ``"polyphase"`` (anti-aliased, default) or
   ``"naive"`` (``x[::3]``, the seed's way, bit for bit);
5. keep the first segment, ``Config.segment_len(bpm)`` samples (14112 at 125 bpm, 14226 at 124),
   and zero-pad it to ``Config.slice_len`` (16384).

A bad file (unreadable, not audio, 5.1, silent, NaN/Inf, no tempo, a tempo whose segment does not
fit) is skipped with a ``LoopWarning`` naming it and saying what was expected; with
``strict=True`` it raises ``LoopError`` instead. Every file gets a ``LoopReport``.

Finding the files is ``beatgan.audio_files``, the tempo ``beatgan.tempo``, changing it
``beatgan.tempo_change`` (which also compares its methods for drums), the noisy copies
``beatgan.augmentation``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

from . import audio
from .audio_files import LoopError, LoopWarning, find_audio_files, scan_folder
from .augmentation import augment
from .config import MAX_SAMPLE_24, Config
from .tempo import TEMPO_READ_S, acid_tempo, bpm_from_name, detect_bpm
from .tempo_change import change_tempo, speed_ratio, tempo_change_margin

#: A segment whose peak is below this (-90 dBFS) counts as silent.
SILENCE_PEAK = 10 ** (-90 / 20)


# --- per-file records -----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LoopReport:
    """What happened to one file.

    status: "loaded" or "skipped"; reason: why it was skipped ("" when loaded).
    bpm: tempo used (None if unknown); bpm_source: "name", "acid", "detected" or "".
    length: samples of real audio in its segment at the model rate (0 when skipped).
    notes: what was done on the way, e.g. "resampled from 8000 Hz", "mono -> stereo", "padded".
    """

    path: Path
    status: str
    reason: str = ""
    bpm: float | None = None
    bpm_source: str = ""
    length: int = 0
    rate_hz: int | None = None
    channels: int | None = None
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["path"] = str(self.path)
        d["notes"] = list(self.notes)
        return d


@dataclasses.dataclass
class LoopSet:
    """Loops ready for WaveGAN.

    audio: float32 (n, config.slice_len, config.channels) in [-1, 1), each the first segment of a
        loop at config.sample_rate_hz, zero-padded at the end.
    paths: the n files, in row order. bpm: float (n,). lengths: int (n,), samples of real audio
        per row (the segment length, or less for a file shorter than its segment).
    report: one ``LoopReport`` per file found, loaded or skipped, in file order.
    config: the ``Config`` they were loaded with.
    """

    audio: np.ndarray
    paths: list[Path]
    bpm: np.ndarray
    lengths: np.ndarray
    report: list[LoopReport]
    config: Config

    def __len__(self) -> int:
        return len(self.paths)

    def report_table(self) -> str:
        """One line per file: status, tempo and where it came from, segment length, what was done.

        For example::

            file                              status   bpm     from      samples  done
            tr07_drlp_100_DeepGroove_Full.wav loaded   100     name      14112    tempo 100 -> 125 bpm (resample)
        """
        rows = [("file", "status", "bpm", "from", "samples", "done")]
        # Files by their path below the folder, so two of one name in two subfolders differ.
        top = os.path.commonpath([str(Path(r.path).parent) for r in self.report]) \
            if self.report else ""
        for r in self.report:
            done = "; ".join(r.notes) if r.status == "loaded" else r.reason
            rows.append((os.path.relpath(r.path, top), r.status,
                         "" if r.bpm is None else f"{r.bpm:g}",
                         r.bpm_source, str(r.length) if r.status == "loaded" else "", done or "-"))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        return "\n".join(" ".join(cell.ljust(w) for cell, w in zip(row[:5], widths)) + " " + row[5]
                         for row in rows)

    @property
    def skipped(self) -> list[LoopReport]:
        """Reports of the files that were skipped."""
        return [r for r in self.report if r.status == "skipped"]

    def segments(self, n_samples: int | None = None) -> np.ndarray:
        """The first ``n_samples`` of every row, (n, n_samples, channels), a view of ``audio``.

        Defaults to ``config.score_len`` (14112: the similarity score's window). Rows whose real
        audio is shorter (a padded file) get a ``LoopWarning``: their tail is padding.
        """
        n_samples = self.config.score_len if n_samples is None else int(n_samples)
        if not 0 < n_samples <= self.audio.shape[1]:
            raise ValueError(f"n_samples must be in [1, {self.audio.shape[1]}], got {n_samples}")
        short = [p.name for p, n in zip(self.paths, self.lengths) if n < n_samples]
        if short:
            warnings.warn(LoopWarning(
                f"{len(short)} loop(s) hold fewer than {n_samples} samples of audio, their segments "
                f"end in zero padding: {', '.join(short[:5])}{' ...' if len(short) > 5 else ''}"),
                stacklevel=2)
        return self.audio[:, :n_samples]

    def augment(self, *, rng: np.random.Generator, copies: int | None = None,
                amplitude: int | None = None) -> np.ndarray:
        """``augment`` of these loops, noise only over each row's real audio (padding stays zero).

        ``copies`` and ``amplitude`` default to ``config.noise_copies`` and ``config.noise_amplitude``.
        """
        return augment(self.audio, rng=rng, lengths=self.lengths,
                       copies=self.config.noise_copies if copies is None else copies,
                       amplitude=self.config.noise_amplitude if amplitude is None else amplitude)


# --- reading one file -----------------------------------------------------------------------

def _frames_needed(config: Config, *, segment_len: int, rate_hz: int, speed: Fraction) -> int:
    """Frames of a file at ``rate_hz`` that yield ``segment_len`` model-rate samples exactly.

    Works backwards through the pipeline: decimation needs factor * segment_len frames at the
    source rate plus its filter's reach; a tempo change at ``speed`` (output/input tempo) needs
    ``speed`` times as many, plus its filter's reach; resampling from ``rate_hz`` scales by the
    rate ratio, plus its filter's reach.
    """
    factor = config.decimation_factor
    n = factor * segment_len
    if config.decimation == "polyphase" and factor > 1:
        n += audio.filter_margin(down=factor)
    if speed != 1:
        n = math.ceil(n * speed) + tempo_change_margin(config.tempo_method, speed)
    n = math.ceil(n * rate_hz / config.source_rate_hz)
    return n + audio.resample_margin(orig_rate_hz=rate_hz, target_rate_hz=config.source_rate_hz)


def _read(path: Path, f: sf.SoundFile, frames: int) -> np.ndarray:
    try:
        return f.read(frames, dtype="float32", always_2d=True)
    except (RuntimeError, ValueError, OSError) as err:
        raise LoopError(f"{path}: the audio data cannot be read ({err}); the file may be "
                        f"truncated or corrupt") from err


def wav_declared_frames(path: str | os.PathLike) -> int | None:
    """Frames a RIFF/WAVE header says its data chunk holds, or None (not a WAV, size unknown).

    libsndfile counts the frames actually present, so a file cut off mid-data looks merely
    short; comparing with the header tells truncation apart from a short loop.
    """
    import struct

    from .wav_loop_info import UNSET_SIZES, walk_chunks

    block_align = None
    try:
        with open(path, "rb") as handle:
            for chunk_id, offset, size in walk_chunks(handle):
                if chunk_id == b"fmt " and size >= 16:
                    handle.seek(offset + 20)
                    block_align = struct.unpack("<H", handle.read(2))[0]
                elif chunk_id == b"data":
                    unknown = size in UNSET_SIZES  # streaming writers leave it unset
                    return None if unknown or not block_align else size // block_align
    except (OSError, ValueError, struct.error):  # unreadable, not RIFF/WAVE, cut inside 'fmt '
        return None
    return None


def read_loop(path: str | os.PathLike, config: Config = Config()) -> tuple[np.ndarray, LoopReport]:
    """One loop's segment, float32 (length, config.channels) in [-1, 1) unpadded, and its report.

    Raises ``LoopError`` (naming the file and what was expected) for a file that cannot be used;
    warns with ``LoopWarning`` for one that was padded or resampled from a low rate.
    """
    path = Path(path)
    notes: list[str] = []
    with _open_loop(path, config) as f:
        rate_hz, channels = f.samplerate, f.channels
        bpm, bpm_source = _loop_tempo(path, f, config)  # 1. tempo
        out_bpm = config.target_bpm or bpm
        segment_len = _segment_len(path, config, bpm=out_bpm)
        speed = speed_ratio(bpm, out_bpm)
        wanted = _frames_needed(config, segment_len=segment_len, rate_hz=rate_hz, speed=speed)
        x = _read(path, f, wanted)  # 2. only the frames the segment needs
        promised = wav_declared_frames(path) or f.frames
    _check_finite(path, x)
    _note_truncation(path, x, expected=min(wanted, promised), promised=promised, notes=notes)
    x = _below_full_scale(path, x, notes=notes)
    # Real audio ends where the data does (a truncated file may promise more frames than it has).
    source_frames = math.ceil(x.shape[0] * config.source_rate_hz / rate_hz / float(speed))
    length = min(segment_len, math.ceil(source_frames / config.decimation_factor))
    x = _to_channels(x, channels=config.channels, notes=notes)  # 3. channels, rate, tempo
    x = _to_source_rate(path, x, rate_hz=rate_hz, config=config, notes=notes)
    if speed != 1:
        x = change_tempo(x, from_bpm=bpm, to_bpm=out_bpm, method=config.tempo_method,
                         sample_rate_hz=config.source_rate_hz)
        notes.append(f"tempo {bpm:g} -> {out_bpm:g} bpm ({config.tempo_method})")
        # The phase vocoder rounds its length where the prediction rounds up: count what came out.
        length = min(length, math.ceil(x.shape[0] / config.decimation_factor))
    if length < segment_len / config.beats:
        raise LoopError(f"{path}: too short ({length} samples at {config.sample_rate_hz} Hz, less "
                        f"than one beat at {out_bpm:g} bpm); expected a loop of "
                        f"{config.beats:g}+ beats")
    seg = _decimated_segment(path, x, config=config, length=length,  # 4. decimate and cut
                             notes=notes)
    if length < segment_len:
        warnings.warn(LoopWarning(
            f"{path}: {length} samples at {config.sample_rate_hz} Hz, shorter than its "
            f"{config.beats:g}-beat segment at {out_bpm:g} bpm ({segment_len}); zero-padded"),
            stacklevel=3)
        notes.append(f"padded from {length} to {segment_len} samples")
    report = LoopReport(path=path, status="loaded", bpm=float(bpm), bpm_source=bpm_source,
                        length=length, rate_hz=rate_hz, channels=channels, notes=tuple(notes))
    return seg, report


def _open_loop(path: Path, config: Config) -> sf.SoundFile:
    """The file opened with soundfile, once it is known to hold mono or stereo frames."""
    try:
        f = sf.SoundFile(path)
    except (RuntimeError, ValueError, OSError, TypeError) as err:
        raise LoopError(f"{path}: not a readable audio file ({err}); expected a WAV/AIFF/FLAC "
                        f"loop, e.g. stereo 44.1 kHz 24-bit") from err
    problem = None
    if f.channels not in (1, 2):
        problem = (f"{f.channels} channels; expected mono or stereo (mix a surround file down "
                   f"to stereo first)")
    elif f.frames <= 0:
        problem = f"holds no audio frames; expected a loop of {config.beats:g}+ beats"
    if problem:
        f.close()
        raise LoopError(f"{path}: {problem}")
    return f


def _loop_tempo(path: Path, f: sf.SoundFile, config: Config) -> tuple[float, str]:
    """(bpm, "name") from the file name, else (bpm, "acid") from its ACID chunk, else
    (bpm, "detected") by librosa when allowed."""
    bpm = bpm_from_name(path.name)
    if bpm is not None:
        return bpm, "name"
    bpm, acid_problem = acid_tempo(path)
    if bpm is not None:
        return bpm, "acid"
    if not config.detect_tempo:
        raise LoopError(f"{path}: no tempo in the file name (expected a number like "
                        f"'_124_' or '124bpm') or in an ACID chunk"
                        f"{f' ({acid_problem})' if acid_problem else ''}; rename it, or detect "
                        f"tempos: --detect-tempo (Config.detect_tempo=True)")
    head = _read(path, f, int(TEMPO_READ_S * f.samplerate))
    _check_finite(path, head)
    f.seek(0)
    try:
        bpm = detect_bpm(head, sample_rate_hz=f.samplerate, start_bpm=config.bpm)
    except ValueError as error:  # silence: no tempo rather than the prior's
        raise LoopError(f"{path}: no tempo in the file name or an ACID chunk, and none "
                        f"detected ({error})") \
            from None
    return round(bpm, 2), "detected"


def _segment_len(path: Path, config: Config, *, bpm: float) -> int:
    """``config.segment_len(bpm)``, which must fit in ``config.slice_len``."""
    segment_len = config.segment_len(bpm)
    if segment_len > config.slice_len:
        raise LoopError(f"{path}: {config.beats:g} beats at {bpm:g} bpm are {segment_len} "
                        f"samples at {config.sample_rate_hz} Hz, more than slice_len="
                        f"{config.slice_len}; expected a tempo of at least "
                        f"{60 * config.sample_rate_hz * config.beats / config.slice_len:.1f} bpm")
    return segment_len


def _note_truncation(path: Path, x: np.ndarray, *, expected: int, promised: int,
                     notes: list[str]) -> None:
    """Warn when the data ends before its header says it does: a cut-off download or copy."""
    if x.shape[0] < expected:
        warnings.warn(LoopWarning(
            f"{path}: truncated: its header promises {promised} frames, the data ends after "
            f"{x.shape[0]}; the missing audio is zero-padded"), stacklevel=4)
        notes.append(f"truncated at {x.shape[0]} of {promised} frames")


def _below_full_scale(path: Path, x: np.ndarray, *, notes: list[str]) -> np.ndarray:
    """A float file peaking above 1.0, scaled down to full scale (clipping would square off hits)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 1.0:
        return x
    warnings.warn(LoopWarning(
        f"{path}: peaks at {peak:.4g}, above full scale (1.0); scaled down by "
        f"{20 * math.log10(peak):.1f} dB"), stacklevel=4)
    notes.append(f"scaled down from peak {peak:.4g}")
    return x / peak


def _to_channels(x: np.ndarray, *, channels: int, notes: list[str]) -> np.ndarray:
    """(time, 1) repeated to stereo, or (time, 2) averaged to mono, as ``channels`` asks."""
    if x.shape[1] == 1 and channels == 2:
        notes.append("mono -> stereo")
        return np.repeat(x, 2, axis=1)
    if x.shape[1] == 2 and channels == 1:
        notes.append("stereo -> mono")
        return x.mean(axis=1, keepdims=True)
    return x


def _to_source_rate(path: Path, x: np.ndarray, *, rate_hz: int, config: Config,
                    notes: list[str]) -> np.ndarray:
    """Resampled to ``config.source_rate_hz``; a file below half that rate is warned about."""
    if rate_hz == config.source_rate_hz:
        return x
    if rate_hz < config.source_rate_hz / 2:
        warnings.warn(LoopWarning(
            f"{path}: sample rate {rate_hz} Hz, expected {config.source_rate_hz} Hz; resampled, "
            f"but it holds nothing above {rate_hz / 2:g} Hz"), stacklevel=4)
    notes.append(f"resampled from {rate_hz} Hz")
    return audio.resample(x, orig_rate_hz=rate_hz, target_rate_hz=config.source_rate_hz)


def _decimated_segment(path: Path, x: np.ndarray, *, config: Config, length: int,
                       notes: list[str]) -> np.ndarray:
    """The first ``length`` samples at the model rate, float32 clipped to 24-bit full scale
    (a full-scale hit can overshoot it after the filter: the clipped samples are noted)."""
    seg = audio.decimate(x, factor=config.decimation_factor, method=config.decimation)[:length]
    clipped = int(np.count_nonzero((seg < -1.0) | (seg > MAX_SAMPLE_24)))
    if clipped:
        notes.append(f"{clipped} samples clipped (the filter's overshoot past full scale)")
    seg = np.clip(seg, -1.0, MAX_SAMPLE_24).astype(np.float32, copy=False)
    if np.max(np.abs(seg)) < SILENCE_PEAK:
        raise LoopError(f"{path}: silent (peak below -90 dBFS in its first {length} samples); "
                        f"expected a drum loop")
    return seg


def _check_finite(path: Path, x: np.ndarray) -> None:
    bad = np.count_nonzero(~np.isfinite(x))
    if bad:
        raise LoopError(f"{path}: {bad} samples are NaN or infinite; expected finite audio")


# --- the folder -----------------------------------------------------------------------------

def load_loops(folder: str | os.PathLike, config: Config = Config(), *, strict: bool = False,
               progress: bool = False) -> LoopSet:
    """Every usable loop under ``folder`` as a ``LoopSet`` (see the module docstring).

    strict: raise ``LoopError`` on the first file that cannot be used, instead of skipping it
        with a ``LoopWarning``. Padding and resampling stay warnings either way.
    progress: show a progress bar (tqdm; a widget in notebooks).
    Raises ``LoopError`` when ``folder`` is missing, holds no audio files, or none is usable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise LoopError(f"{folder}: no such folder; expected a folder of drum loops (WAV files)")
    files = find_audio_files(folder)
    if not files:
        raise LoopError(f"{folder}: holds no audio files (found {scan_folder(folder).summary()}); "
                        f"expected drum loops such as 'tr07_drlp_124_Believe_Full.wav' "
                        f"(WAV, AIFF or FLAC)")
    out = np.zeros((len(files), config.slice_len, config.channels), np.float32)
    rows: list[LoopReport] = []
    reports: list[LoopReport] = []
    from tqdm.auto import tqdm

    for path in tqdm(files, desc="loading loops", unit="loop", disable=not progress):
        try:
            seg, rep = read_loop(path, config)
        except LoopError as err:
            if strict:
                raise
            warnings.warn(LoopWarning(f"skipped {err}"), stacklevel=2)
            reports.append(LoopReport(path=path, status="skipped", reason=str(err)))
            continue
        out[len(rows), : seg.shape[0]] = seg
        rows.append(rep)
        reports.append(rep)
    if not rows:
        raise LoopError(f"{folder}: none of its {len(files)} audio files is usable; first problem: "
                        f"{reports[0].reason}")
    # Drop the rows of skipped files (a view of the first len(rows) rows when nothing was skipped).
    audio_rows = out if len(rows) == len(files) else out[: len(rows)].copy()
    return LoopSet(audio=audio_rows, paths=[r.path for r in rows],
                   bpm=np.array([r.bpm for r in rows], dtype=np.float64),
                   lengths=np.array([r.length for r in rows], dtype=np.int64),
                   report=reports, config=config)
