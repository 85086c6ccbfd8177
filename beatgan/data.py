"""From a folder of drum loops to the training tensor: read, tempo, decimate, cut, pad, augment.

The pipeline per file (``load_loops``), as in BeatGAN (2018) but without its temporary files:

1. open it with soundfile (any format and bit depth soundfile reads) and read only the frames
   the segment needs, plus the few the anti-aliasing filters reach past it;
2. tempo from the file name (``bpm_from_name``), else estimated with librosa when
   ``Config.detect_tempo`` is set, else the file is skipped;
3. mono -> two equal channels; another rate -> ``Config.source_rate_hz`` (44.1 kHz) with a
   Kaiser-window polyphase filter; optionally brought to ``Config.target_bpm``;
4. decimate to ``Config.sample_rate_hz`` (14.7 kHz): ``"polyphase"`` (anti-aliased, default) or
   ``"naive"`` (``x[::3]``, the seed's way, bit for bit);
5. keep the first segment, ``Config.segment_len(bpm)`` samples (14112 at 125 bpm, 14226 at 124),
   and zero-pad it to ``Config.slice_len`` (16384).

A bad file (unreadable, not audio, 5.1, silent, NaN/Inf, no tempo, a tempo whose segment does not
fit) is skipped with a ``LoopWarning`` naming it and saying what was expected; with
``strict=True`` it raises ``LoopError`` instead. Every file gets a ``LoopReport``.

``augment`` is the seed's augmentation: noisy copies of each loop at 24-bit integer scale.

Loops at any tempo (``Config.target_bpm``, ``Config.tempo_method``), and which method suits drums.
Measured on demo loops at 100, 110 and 140 bpm brought to 125 bpm (``tests/test_tempo.py``,
whole 8-beat loops): librosa reads 126.05 bpm for every method (its tempo grid; within 1 %), but
the kicks differ:

* ``"resample"`` (varispeed, the default) plays the loop faster or slower like a turntable: every
  transient keeps its shape and lands exactly where the new tempo puts it (all kicks within one
  3.3 ms analysis hop of the grid), but pitch moves with tempo: 12 x log2(new / old) semitones
  (+0.14 for 124 -> 125, +3.9 for 100 -> 125). Best for drums whenever the change is small
  (within about +-6 %, a semitone), which covers most loop packs.
* ``"slice"`` cuts the loop at its onsets and moves each slice to its new time (what a DAW's
  beat-slicing mode does): pitch kept and transients untouched, so kicks stay on the grid (all
  within 10 ms speeding up; slowing down, a looped bass tail can read as an onset up to 25 ms
  early, 1 kick in 46); the cost is shortened tails (faster) or looped tails (slower). Best for
  drums across large changes.
* ``"stretch"`` (librosa's phase vocoder, 2048-sample frames) keeps pitch but smears each hit
  over its 46 ms frames: 15-45 % of kicks land more than 10 ms off the grid (up to 35 ms) and
  attacks soften. Fine for sustained sounds, the worst of the three for drums.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

from . import audio
from .config import FULL_SCALE_24, MAX_SAMPLE_24, Config

#: A segment whose peak is below this (-90 dBFS) counts as silent.
SILENCE_PEAK = 10 ** (-90 / 20)
#: Tempi a number in a file name may have to count as its bpm.
BPM_RANGE = (40.0, 300.0)
#: Seconds of audio read to estimate a tempo (librosa's autocorrelation looks at 8 s).
TEMPO_READ_S = 8.0
#: Fade-out at the end of each slice of ``slice_stretch`` (ms): no click where a slice is cut.
SLICE_FADE_MS = 5.0


class LoopError(ValueError):
    """A loop file that cannot be used, with the file named and what was expected."""


class LoopWarning(UserWarning):
    """A loop file skipped or changed on the way in (padded, resampled, ...)."""


# --- file names and tempo -------------------------------------------------------------------

# "..._124_...", "124bpm", "124 BPM", "124.5" between separators; the explicit "bpm" form wins.
_BPM_WORD = re.compile(r"(?i)(\d{2,3}(?:\.\d+)?)\s*-?\s*bpm")
_BPM_FIELD = re.compile(r"(?:^|[_\-\s.(\[])(\d{2,3}(?:\.\d+)?)(?=$|[_\-\s.)\]])")


def bpm_from_name(name: str | os.PathLike) -> float | None:
    """The tempo written in a file name, or None.

    ``"tr07_drlp_124_Believe_Full.wav"`` -> 124.0; ``"Groove 126bpm.wav"`` -> 126.0. A number
    counts when it stands alone between separators (``_ - . space``) or is followed by "bpm",
    and lies in ``BPM_RANGE``; "bpm"-marked numbers win, then the first field.
    """
    base = Path(name).name
    # Strip an audio suffix only: in "loop_124.5" the ".5" belongs to the tempo.
    stem = Path(base).stem if Path(base).suffix.lower() in _AUDIO_SUFFIXES else base
    for pattern in (_BPM_WORD, _BPM_FIELD):
        for match in pattern.finditer(stem):
            value = float(match.group(1))
            if BPM_RANGE[0] <= value <= BPM_RANGE[1]:
                return value
    return None


def detect_bpm(x: np.ndarray, *, sample_rate_hz: int, start_bpm: float = 125.0,
               std_bpm: float = 0.5) -> float:
    """Tempo of a loop (time,) or (time, channels) in bpm, estimated with librosa.

    librosa weights the onset autocorrelation with a log-normal prior around ``start_bpm``,
    ``std_bpm`` octaves wide. Its default width, one octave, leaves the half tempo 61 % of the
    weight of the true one, and loops whose claps on 2 and 4 flux harder than their kick (the
    kick sits in a few low mel bands) then read as 62 bpm: 4 % of the demo pack did. Half an
    octave (half tempo: 14 %) fixes that while loops from 95 to 150 bpm still read right with
    the prior at 125. The loop is tiled to at least 8 s (loops are seamless) so the
    autocorrelation sees several bars; hop 256 at 22.05 kHz gives a tempo grid of about 0.8 %
    near 125 bpm.
    """
    import librosa  # slow to import; only needed when a name holds no tempo

    mono = np.asarray(x, dtype=np.float32)
    mono = mono.mean(axis=1) if mono.ndim == 2 else mono
    mono = audio.resample(mono, orig_rate_hz=sample_rate_hz, target_rate_hz=22050)
    reps = max(1, math.ceil(TEMPO_READ_S * 22050 / max(mono.size, 1)))
    mono = np.tile(mono, reps)
    onset_env = librosa.onset.onset_strength(y=mono, sr=22050, hop_length=256)
    tempo = librosa.feature.tempo(onset_envelope=onset_env, sr=22050, hop_length=256,
                                  start_bpm=start_bpm, std_bpm=std_bpm)
    return float(np.atleast_1d(tempo)[0])


# --- finding files --------------------------------------------------------------------------

def _audio_suffixes() -> tuple[str, ...]:
    suffixes = {"." + ext.lower() for ext in sf.available_formats()}
    suffixes |= {".aif", ".wave", ".oga", ".mp3"}
    return tuple(sorted(suffixes))


_AUDIO_SUFFIXES = _audio_suffixes()


@dataclasses.dataclass
class FolderScan:
    """What a folder of loops holds.

    audio: audio files by suffix, sorted by relative path. other: how many other files per
    suffix (READMEs and hidden files not counted). unreadable: (subfolder, reason) for every
    folder that could not be listed.
    """

    folder: Path
    audio: list[Path]
    other: dict[str, int]
    unreadable: list[tuple[Path, str]]

    @property
    def empty(self) -> bool:
        """Nothing of the user's: no file but READMEs and hidden ones, nothing unreadable."""
        return not (self.audio or self.other or self.unreadable)

    def summary(self) -> str:
        """``3 .m4a files, 1 unreadable subfolder (a: Permission denied)``."""
        parts = [f"{n} {suffix or 'suffix-less'} file{'s' if n > 1 else ''}"
                 for suffix, n in sorted(self.other.items(), key=lambda kv: -kv[1])]
        if self.unreadable:
            first, reason = self.unreadable[0]
            parts.append(f"{len(self.unreadable)} unreadable subfolder"
                         f"{'s' if len(self.unreadable) > 1 else ''} ({first}: {reason})")
        return ", ".join(parts) or "nothing"


def _ignored(name: str) -> bool:
    # Hidden files include the ``._name.wav`` resource forks macOS leaves in zip files.
    return name.startswith(".") or name.upper().startswith("README")


def scan_folder(folder: str | os.PathLike) -> FolderScan:
    """Walk ``folder`` recursively; raise ``LoopError`` if ``folder`` itself cannot be listed.

    A file counts as audio by its suffix (what soundfile reads: .wav, .aiff, .flac, .ogg, ...).
    """
    folder = Path(folder)
    unreadable: list[tuple[Path, str]] = []
    audio_files: list[Path] = []
    other: dict[str, int] = {}

    def failed(error: OSError) -> None:
        unreadable.append((Path(error.filename or folder), error.strerror or str(error)))

    for root, dirs, names in os.walk(folder, onerror=failed):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if _ignored(name):
                continue
            path = Path(root) / name
            suffix = path.suffix.lower()
            if suffix in _AUDIO_SUFFIXES:
                audio_files.append(path)
            else:
                other[suffix] = other.get(suffix, 0) + 1
    if unreadable and unreadable[0][0] == folder:
        raise LoopError(f"{folder}: cannot be read ({unreadable[0][1]}); expected a folder of "
                        f"drum loops")
    unreadable = [(p.relative_to(folder) if p.is_relative_to(folder) else p, why)
                  for p, why in unreadable]
    audio_files.sort(key=lambda p: p.relative_to(folder).as_posix())
    return FolderScan(folder=folder, audio=audio_files, other=other, unreadable=unreadable)


def find_audio_files(folder: str | os.PathLike) -> list[Path]:
    """Audio files under ``folder`` (recursively), sorted by relative path.

    Hidden files are ignored. Subfolders that cannot be read are reported with a
    ``LoopWarning`` (their loops are missing from the list), never dropped silently.
    """
    # Kept by hand (scan_folder): librosa.util.find_files misses "B.Wav" and .aiff, walks into
    # hidden folders and cannot report a subfolder it fails to read.
    scan = scan_folder(folder)
    for path, reason in scan.unreadable:
        warnings.warn(LoopWarning(f"{Path(folder) / path}: subfolder cannot be read ({reason}); "
                                  f"its loops are left out"), stacklevel=2)
    return scan.audio


# --- per-file records -----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LoopReport:
    """What happened to one file.

    status: "loaded" or "skipped"; reason: why it was skipped ("" when loaded).
    bpm: tempo used (None if unknown); bpm_source: "name", "detected" or "".
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
        for r in self.report:
            done = "; ".join(r.notes) if r.status == "loaded" else r.reason
            rows.append((Path(r.path).name, r.status, "" if r.bpm is None else f"{r.bpm:g}",
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
        n = math.ceil(n * speed) + _tempo_margin(config, speed)
    n = math.ceil(n * rate_hz / config.source_rate_hz)
    return n + audio.resample_margin(orig_rate_hz=rate_hz, target_rate_hz=config.source_rate_hz)


def _tempo_margin(config: Config, speed: Fraction) -> int:
    if config.tempo_method in ("stretch", "slice"):
        return 4096  # two STFT frames of librosa's phase vocoder / onset detector (n_fft = 2048)
    return audio.filter_margin(up=speed.denominator, down=speed.numerator)


def change_tempo(x: np.ndarray, *, from_bpm: float, to_bpm: float, method: str = "resample",
                 sample_rate_hz: int = 44100) -> np.ndarray:
    """Bring a loop (time, channels) at ``sample_rate_hz`` from ``from_bpm`` to ``to_bpm``.

    ``"resample"``: varispeed, pitch moves with tempo (a 1 % change is a sixth of a semitone),
    done by polyphase resampling at the ratio ``from_bpm / to_bpm`` (limited to /1000).
    ``"stretch"``: librosa's phase vocoder, pitch kept, transients smeared (see the module
    docstring for measured figures).
    ``"slice"``: ``slice_stretch``: cut at onsets, each slice moved to its new time, pitch and
    transients kept; tails are shortened (faster) or looped (slower).
    """
    speed = _speed(from_bpm, to_bpm)
    if speed == 1:
        return x
    if method == "resample":
        # Faster tempo = fewer samples: resample by down=speed.numerator, up=speed.denominator.
        return audio.resample(x, orig_rate_hz=speed.numerator, target_rate_hz=speed.denominator)
    if method == "stretch":
        import librosa

        stretched = librosa.effects.time_stretch(np.ascontiguousarray(x.T), rate=float(speed))
        return np.ascontiguousarray(stretched.T).astype(x.dtype, copy=False)
    if method == "slice":
        return slice_stretch(x, speed=float(speed), sample_rate_hz=sample_rate_hz)
    raise ValueError(f"method must be 'resample', 'stretch' or 'slice', got {method!r}")


def slice_stretch(x: np.ndarray, *, speed: float, sample_rate_hz: int = 44100,
                  fade_ms: float = SLICE_FADE_MS) -> np.ndarray:
    """Change the tempo of a drum loop (time, channels) by ``speed`` without touching its hits.

    What a DAW's beat-slicing mode does (ReCycle; Ableton's "Beats"): 1. find the onsets with
    librosa (backtracked to the energy minimum before each hit); 2. cut the loop there; 3. put
    slice k at ``onset_k / speed``, unchanged, at full gain, so every transient is sample-exact
    and nothing is pitch-shifted; 4. a slice longer than its new slot (speed > 1) is cut
    ``fade_ms`` after the slot ends and faded out over the next slice's start; a shorter one
    (speed < 1) is followed by its own tail looped (the part past its hit, crossfaded over
    ``fade_ms``), or by silence when the slice is too short for that. Output length
    ``ceil(len(x) / speed)``, same dtype.
    """
    import librosa

    x = np.asarray(x)
    if not speed > 0:
        raise ValueError(f"speed must be positive, got {speed}")
    n_out = math.ceil(x.shape[0] / speed)
    mono = x.mean(axis=1) if x.ndim == 2 else x
    onsets = librosa.onset.onset_detect(y=np.ascontiguousarray(mono, dtype=np.float32),
                                        sr=sample_rate_hz, hop_length=256, backtrack=True,
                                        delta=0.03, units="samples")
    starts = np.unique(np.concatenate([[0], onsets]).astype(np.int64))
    ends = np.append(starts[1:], x.shape[0])
    fade = max(1, int(round(fade_ms * 1e-3 * sample_rate_hz)))
    out = np.zeros((n_out + fade,) + x.shape[1:], dtype=x.dtype)
    for a, b in zip(starts, ends):
        a_out = int(round(a / speed))
        slot = (int(round(b / speed)) if b < x.shape[0] else n_out) - a_out
        piece = x[a: a + min(slot + fade, b - a)]
        need = slot + fade - piece.shape[0]  # samples to fill after the slice (slower tempo)
        if need > 0 and b - need - fade >= (a + b) // 2:
            # Loop the slice's own tail (its second half: past the hit) with a crossfade of ``fade``.
            _add_faded(out, a_out, piece, fade_in=0, fade_out=fade)
            _add_faded(out, a_out + piece.shape[0] - fade, x[b - need - fade: b],
                       fade_in=fade, fade_out=fade)
        else:
            _add_faded(out, a_out, piece, fade_in=0, fade_out=fade)
    return out[:n_out]


def _add_faded(out: np.ndarray, start: int, piece: np.ndarray, *, fade_in: int, fade_out: int) -> None:
    """out[start:start + len(piece)] += piece with linear fades at its ends (in place)."""
    piece = piece.copy()
    n_in, n_out = min(fade_in, piece.shape[0]), min(fade_out, piece.shape[0])
    shape = (-1,) + (1,) * (piece.ndim - 1)
    piece[:n_in] *= np.linspace(0.0, 1.0, n_in, dtype=piece.dtype).reshape(shape)
    piece[piece.shape[0] - n_out:] *= np.linspace(1.0, 0.0, n_out, dtype=piece.dtype).reshape(shape)
    out[start: start + piece.shape[0]] += piece


def _speed(from_bpm: float, to_bpm: float) -> Fraction:
    return Fraction(to_bpm / from_bpm).limit_denominator(1000)


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

    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
    except OSError:
        return None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    block_align, pos = None, 12
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if chunk == b"fmt " and pos + 22 <= len(head):
            block_align = struct.unpack_from("<H", head, pos + 20)[0]
        elif chunk == b"data":
            unknown = size in (0, 0xFFFFFFFF)  # streaming writers leave it unset
            return None if unknown or not block_align else size // block_align
        pos += 8 + size + (size & 1)
    return None


def read_loop(path: str | os.PathLike, config: Config = Config()) -> tuple[np.ndarray, LoopReport]:
    """One loop's segment, float32 (length, config.channels) in [-1, 1) unpadded, and its report.

    Raises ``LoopError`` (naming the file and what was expected) for a file that cannot be used;
    warns with ``LoopWarning`` for one that was padded or resampled from a low rate.
    """
    path = Path(path)
    notes: list[str] = []
    try:
        f = sf.SoundFile(path)
    except (RuntimeError, ValueError, OSError, TypeError) as err:
        raise LoopError(f"{path}: not a readable audio file ({err}); expected a WAV/AIFF/FLAC "
                        f"loop, e.g. stereo 44.1 kHz 24-bit") from err
    with f:
        rate_hz, channels = f.samplerate, f.channels
        if channels not in (1, 2):
            raise LoopError(f"{path}: {channels} channels; expected mono or stereo (mix a "
                            f"surround file down to stereo first)")
        if f.frames <= 0:
            raise LoopError(f"{path}: holds no audio frames; expected a loop of "
                            f"{config.beats:g}+ beats")
        # 1. tempo: the name, else librosa on the first seconds, else give up on this file
        bpm, bpm_source = bpm_from_name(path.name), "name"
        if bpm is None:
            if not config.detect_tempo:
                raise LoopError(f"{path}: no tempo in the file name (expected a number like "
                                f"'_124_' or '124bpm'); rename it or set detect_tempo=True")
            head = _read(path, f, int(TEMPO_READ_S * rate_hz))
            _check_finite(path, head)
            bpm, bpm_source = round(detect_bpm(head, sample_rate_hz=rate_hz, start_bpm=config.bpm), 2), "detected"
            f.seek(0)
        # 2. how many frames the segment needs, and read exactly those
        out_bpm = config.target_bpm or bpm
        segment_len = config.segment_len(out_bpm)
        if segment_len > config.slice_len:
            raise LoopError(f"{path}: {config.beats:g} beats at {out_bpm:g} bpm are {segment_len} "
                            f"samples at {config.sample_rate_hz} Hz, more than slice_len="
                            f"{config.slice_len}; expected a tempo of at least "
                            f"{60 * config.sample_rate_hz * config.beats / config.slice_len:.1f} bpm")
        speed = _speed(bpm, out_bpm)
        wanted = _frames_needed(config, segment_len=segment_len, rate_hz=rate_hz, speed=speed)
        x = _read(path, f, wanted)
        promised = wav_declared_frames(path) or f.frames
    _check_finite(path, x)
    if x.shape[0] < min(wanted, promised):
        # The header promises more frames than the data holds: a cut-off download or copy.
        warnings.warn(LoopWarning(
            f"{path}: truncated: its header promises {promised} frames, the data ends after "
            f"{x.shape[0]}; the missing audio is zero-padded"), stacklevel=3)
        notes.append(f"truncated at {x.shape[0]} of {promised} frames")
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 1.0:
        # Only float files can exceed full scale; clipping would square off every hit, so the
        # loop is scaled down to full scale instead, and said so.
        warnings.warn(LoopWarning(
            f"{path}: peaks at {peak:.4g}, above full scale (1.0); scaled down by "
            f"{20 * math.log10(peak):.1f} dB"), stacklevel=3)
        x = x / peak
        notes.append(f"scaled down from peak {peak:.4g}")
    # Real audio ends where the data does (a truncated file may promise more frames than it has).
    source_frames = math.ceil(x.shape[0] * config.source_rate_hz / rate_hz / float(speed))
    length = min(segment_len, math.ceil(source_frames / config.decimation_factor))
    # 3. channels, rate, tempo
    if channels == 1 and config.channels == 2:
        x = np.repeat(x, 2, axis=1)
        notes.append("mono -> stereo")
    elif channels == 2 and config.channels == 1:
        x = x.mean(axis=1, keepdims=True)
        notes.append("stereo -> mono")
    if rate_hz != config.source_rate_hz:
        if rate_hz < config.source_rate_hz / 2:
            warnings.warn(LoopWarning(
                f"{path}: sample rate {rate_hz} Hz, expected {config.source_rate_hz} Hz; resampled, "
                f"but it holds nothing above {rate_hz / 2:g} Hz"), stacklevel=3)
        x = audio.resample(x, orig_rate_hz=rate_hz, target_rate_hz=config.source_rate_hz)
        notes.append(f"resampled from {rate_hz} Hz")
    if speed != 1:
        x = change_tempo(x, from_bpm=bpm, to_bpm=out_bpm, method=config.tempo_method,
                         sample_rate_hz=config.source_rate_hz)
        notes.append(f"tempo {bpm:g} -> {out_bpm:g} bpm ({config.tempo_method})")
    # 4. decimate and cut
    seg = audio.decimate(x, factor=config.decimation_factor, method=config.decimation)[:length]
    seg = np.clip(seg, -1.0, MAX_SAMPLE_24).astype(np.float32, copy=False)
    if np.max(np.abs(seg)) < SILENCE_PEAK:
        raise LoopError(f"{path}: silent (peak below -90 dBFS in its first {length} samples); "
                        f"expected a drum loop")
    if length < segment_len:
        warnings.warn(LoopWarning(
            f"{path}: {length} samples at {config.sample_rate_hz} Hz, shorter than its "
            f"{config.beats:g}-beat segment at {out_bpm:g} bpm ({segment_len}); zero-padded"),
            stacklevel=3)
        notes.append(f"padded from {length} to {segment_len} samples")
    report = LoopReport(path=path, status="loaded", bpm=float(bpm), bpm_source=bpm_source,
                        length=length, rate_hz=rate_hz, channels=channels, notes=tuple(notes))
    return seg, report


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


# --- augmentation ---------------------------------------------------------------------------

def augment(audio_rows: np.ndarray, *, copies: int = 5, rng: np.random.Generator,
            amplitude: int = 10000, lengths: np.ndarray | None = None) -> np.ndarray:
    """BeatGAN's augmentation: ``copies`` noisy copies of each loop, float32 (n * copies, time, ch).

    Each row is taken to 24-bit integers (round(x * 2^23)), integer noise uniform in
    [-amplitude, amplitude) is added, the sum is clipped to [-2^23, 2^23 - 1] and divided by
    2^23, as the seed did. Order: loop-major, rows ``i * copies ... i * copies + copies - 1`` are
    the copies of loop ``i`` (like ``np.repeat(audio, copies, axis=0)``). The noise of loop ``i``
    is drawn as one (copies, length, ch) int32 block, loop after loop, so a seed fixes the result.
    ``lengths`` (n,): add noise only to each row's first ``lengths[i]`` samples (the zero padding
    stays zero); None: the whole row. Memory: the output plus one loop's noise.
    """
    x = np.asarray(audio_rows, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"expected audio of shape (n, time, channels), got {x.shape}")
    if copies < 1:
        raise ValueError(f"copies must be at least 1, got {copies}")
    if not 0 <= amplitude < FULL_SCALE_24:
        raise ValueError(f"amplitude must be in [0, 2^23), got {amplitude}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng)}")
    n, n_time, n_ch = x.shape
    lengths = np.full(n, n_time) if lengths is None else np.asarray(lengths)
    if lengths.shape != (n,) or np.any(lengths < 0) or np.any(lengths > n_time):
        raise ValueError(f"lengths must be {n} values in [0, {n_time}], got shape {lengths.shape}")
    out = np.zeros((n * copies, n_time, n_ch), np.float32)
    scale, inv = np.float32(FULL_SCALE_24), np.float32(1.0 / FULL_SCALE_24)
    for i in range(n):
        m = int(lengths[i])
        block = out[i * copies:(i + 1) * copies]
        # float32 holds every integer below 2^24 exactly, so this integer arithmetic is exact.
        ints = np.round(x[i] * scale)
        block[:] = ints
        if amplitude and m:
            noise = rng.integers(-amplitude, amplitude, size=(copies, m, n_ch), dtype=np.int32)
            block[:, :m] += noise
        np.clip(block, -scale, scale - 1, out=block)
        block *= inv
    return out
