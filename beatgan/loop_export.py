"""DAW-ready loops from generated segments: bar structure, 44.1 kHz, a seamless wrap.

BeatGAN's generator draws one *segment*: ``Config.beats`` beats (2 by default, 14112 samples at
14.7 kHz and 125 bpm), which is half of a 4/4 bar. Here a **bar** is always four beats, so with
the default config a bar is the same segment played twice (exactly what ``write_beats`` writes),
and a loop of N bars holds ``N * 4 / beats`` segments.

Most drum patterns follow a 4-bar structure, AAAA, AAAB, AABB or ABAB (BeatGAN 2018, "Data"):
each letter is one bar and each distinct letter gets its own segment. A loop of ``bars`` bars
repeats the structure ``bars / len(structure)`` times.

Making it loop cleanly (no click where the DAW wraps from the last sample to the first):

1. Each segment gets short raised-cosine fades (``fade_ms``) at both ends, so every segment
   boundary, the wrap included, goes through zero instead of jumping between two arbitrary
   sample values. A generated segment's last sample has no relation to its first one, so
   without this every bar line would click, as the 2018 outputs did.
2. The loop is upsampled *periodically*: padded with its own end before and its own start
   after, so the anti-imaging filter sees the loop as if it were already repeating, and the
   padding is cut away again. The result is exactly ``up/down`` times longer and its wrap is as
   smooth as any other point. Where that length is not a whole number of samples (4 bars at
   126 bpm are 365,714.3 samples at 48 kHz), the loop is resampled through its spectrum to the
   nearest whole length instead: periodic by construction, and off by less than half a sample
   per loop (the 14.7 kHz slots already round the bars to the nearest sample there).

All arrays are ``(time, channels)`` float, time on axis 0; the signal is the only positional
argument.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction
from pathlib import Path
from typing import Mapping

import numpy as np

from . import audio
from .config import FULL_SCALE_24, LOOP_TEMPO_METHODS, MAX_SAMPLE_24, STRUCTURES, Config

#: Beats in a bar (4/4 time).
BEATS_PER_BAR = 4
#: Default declick fade at each end of a segment (milliseconds): 15 samples at 14.7 kHz,
#: short against a drum's attack, long enough that the wrap no longer jumps.
FADE_MS = 1.0
#: ``"auto"`` varispeeds changes up to this many semitones (about +-6 % in tempo) and slices
#: larger ones: ``tempo_change`` found resampling best for drums within about a semitone.
AUTO_RESAMPLE_SEMITONES = 1.0


def check_structure(structure: str) -> str:
    """Upper-cased ``structure`` if it is a non-empty string of letters A-Z, else ValueError."""
    text = structure.upper() if isinstance(structure, str) else ""  # not None -> "NONE"
    if not text or not text.isalpha() or not text.isascii():
        raise ValueError(f"structure must be letters such as {', '.join(STRUCTURES)}, got {structure!r}")
    return text


def structure_letters(structure: str) -> list[str]:
    """The distinct letters of a structure in order of first appearance: "ABAB" -> ["A", "B"]."""
    return list(dict.fromkeys(check_structure(structure)))


def segments_per_bar(config: Config, *, beats_per_bar: int = BEATS_PER_BAR) -> int:
    """Segments in one bar: ``beats_per_bar / config.beats`` (2 for the seed's 2-beat segments)."""
    ratio = Fraction(beats_per_bar) / Fraction(config.beats).limit_denominator(1000)
    if ratio.denominator != 1 or ratio < 1:
        raise ValueError(f"a bar of {beats_per_bar} beats must hold a whole number of "
                         f"{config.beats}-beat segments")
    return int(ratio)


def bar_pattern(structure: str, *, bars: int) -> str:
    """The letter of each bar: the structure repeated to ``bars`` bars ("AAAB", 8 -> "AAABAAAB")."""
    structure = check_structure(structure)
    if bars < 1 or bars % len(structure):
        raise ValueError(f"bars must be a positive multiple of len({structure!r}) = "
                         f"{len(structure)}, got {bars}")
    return structure * (bars // len(structure))


def fade_edges(segment: np.ndarray, *, fade_samples: int) -> np.ndarray:
    """A copy of ``segment`` (time, channels) with raised-cosine fades in and out.

    The first and last samples become exactly 0, so two faded segments meet without a jump.
    ``fade_samples = 0`` returns an unchanged copy.
    """
    x = np.array(segment, dtype=np.float64 if segment.dtype == np.float64 else np.float32)
    if fade_samples <= 0:
        return x
    if 2 * fade_samples > x.shape[0]:
        raise ValueError(f"fades of {fade_samples} samples do not fit in {x.shape[0]} samples")
    # 0.5 - 0.5 cos: zero value and zero slope at the silent end.
    ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(fade_samples) / fade_samples)).astype(x.dtype)
    shape = (-1,) + (1,) * (x.ndim - 1)
    x[:fade_samples] *= ramp.reshape(shape)
    x[-fade_samples:] *= ramp[::-1].reshape(shape)
    return x


def arrange(segments: Mapping[str, np.ndarray], *, structure: str, bars: int,
            per_bar: int) -> np.ndarray:
    """Stack segments into a loop: each bar is ``per_bar`` copies of its letter's segment.

    Args:
        segments: letter -> segment ``(n_samples, channels)``; all the same shape.
        structure: bar letters, e.g. "AAAB"; repeated to ``bars`` bars.
        bars: bars in the loop (a multiple of ``len(structure)``).
        per_bar: segments per bar (``segments_per_bar(config)``).

    Returns ``(bars * per_bar * n_samples, channels)``.
    """
    pattern = bar_pattern(structure, bars=bars)
    missing = sorted(set(pattern) - set(segments))
    if missing:
        raise ValueError(f"no segment for letter(s) {missing} of structure {structure!r}")
    shapes = {np.shape(segments[letter]) for letter in set(pattern)}
    if len(shapes) != 1:
        raise ValueError(f"segments must share one shape, got {sorted(shapes)}")
    return np.concatenate([segments[letter] for letter in pattern for _ in range(per_bar)], axis=0)


def upsample_periodic(loop: np.ndarray, *, orig_rate_hz: int, target_rate_hz: int) -> np.ndarray:
    """Resample a loop as if it repeated forever, so that its wrap stays seamless.

    Output length ``round(len(loop) * target / orig)``. When that product is whole:
    ``beatgan.audio.resample`` (polyphase, Kaiser anti-imaging filter) on the loop padded with
    its own tail in front and its own head behind, the padding then cut. Otherwise
    ``resample_periodic`` to the nearest whole length.
    """
    ratio = Fraction(int(target_rate_hz), int(orig_rate_hz))
    n_out = Fraction(loop.shape[0]) * ratio
    if n_out.denominator != 1:
        return resample_periodic(loop, n_out=round(n_out))
    if ratio == 1:
        return np.array(loop)
    margin = audio.resample_margin(orig_rate_hz=orig_rate_hz, target_rate_hz=target_rate_hz)
    margin = min(margin, loop.shape[0])
    # Pad a whole multiple of ``down`` input samples so the output grid lines up with the loop's.
    margin = -(-margin // ratio.denominator) * ratio.denominator
    reps = -(-margin // loop.shape[0])  # a loop shorter than the filter wraps more than once
    tiled = np.concatenate([loop] * (2 * reps + 1), axis=0)
    start = reps * loop.shape[0] - margin
    padded = tiled[start:start + loop.shape[0] + 2 * margin]
    out = audio.resample(padded, orig_rate_hz=orig_rate_hz, target_rate_hz=target_rate_hz)
    lead = int(margin * ratio)
    return out[lead:lead + int(n_out)]


def resample_periodic(loop: np.ndarray, *, n_out: int) -> np.ndarray:
    """One period of ``loop`` (time, channels) as ``n_out`` samples: band-limited interpolation.

    ``scipy.signal.resample`` works on the spectrum, which treats the input as one period of a
    periodic signal, exactly what a loop is; upsampling adds no content above the input's
    Nyquist frequency. Float input keeps its dtype.
    """
    from scipy import signal

    out = signal.resample(loop, int(n_out), axis=0)
    return out.astype(loop.dtype) if np.issubdtype(loop.dtype, np.floating) else out


def slot_lengths(config: Config, n_slots: int) -> list[int]:
    """Samples at ``config.sample_rate_hz`` of each of ``n_slots`` segments played in a row.

    Slot k ends at ``round((k + 1) * exact)``, ``exact`` being one segment's length at
    ``config.bpm``, so the row lasts its true time to the nearest sample. Every slot is
    ``config.score_len`` long when a segment is a whole number of samples (the seed's 14112 at
    125 bpm); at 124 bpm (14226.29) rounding each one alone would add 2.3 samples every 4 bars.
    """
    exact = (Fraction(config.sample_rate_hz * 60) * Fraction(config.beats).limit_denominator(1000)
             / Fraction(config.bpm).limit_denominator(1000))
    ends = [round(exact * (k + 1)) for k in range(n_slots)]
    return [end - start for start, end in zip([0, *ends[:-1]], ends)]


def _loop_samples(config: Config, *, bars: int) -> int:
    """Samples of a loop of ``bars`` bars at ``config.sample_rate_hz`` (``slot_lengths``)."""
    return sum(slot_lengths(config, bars * segments_per_bar(config)))


def check_tempo_method(method: str) -> str:
    """``method`` when it is one of ``LOOP_TEMPO_METHODS``, else ValueError naming them."""
    if method not in LOOP_TEMPO_METHODS:
        raise ValueError(f"the tempo method is one of {', '.join(LOOP_TEMPO_METHODS)}, "
                         f"got {method!r}")
    return method


def tempo_method(from_bpm: float, to_bpm: float, method: str = "auto") -> str:
    """The method ``retime_loop`` uses: ``method`` itself, or for ``"auto"`` ``"resample"``
    when the change is at most ``AUTO_RESAMPLE_SEMITONES`` of varispeed, else ``"slice"``."""
    if check_tempo_method(method) != "auto":
        return method
    return ("resample" if abs(12 * math.log2(to_bpm / from_bpm)) <= AUTO_RESAMPLE_SEMITONES
            else "slice")


def check_loop_bpm(bpm: float) -> float:
    """A loop's tempo to 0.001 bpm (what the ACID chunk and the file name keep, so neither
    tells apart two tempi the other cannot); ValueError outside ``tempo.BPM_RANGE`` or NaN."""
    from .tempo import BPM_RANGE

    bpm = round(float(bpm), 3)
    if not BPM_RANGE[0] <= bpm <= BPM_RANGE[1]:  # NaN included
        raise ValueError(f"a loop's tempo lies in {BPM_RANGE[0]:g}-{BPM_RANGE[1]:g} bpm, "
                         f"got {bpm:g}")
    return bpm


def file_frames(config: Config, *, bars: int, out_rate_hz: int | None = None,
                bpm: float | None = None) -> int:
    """Frames of the loop file ``make_loop`` writes: ``loop_frames`` at the model's tempo,
    ``retimed_frames`` when ``bpm`` is another."""
    if bpm is None or bpm == config.bpm:
        return loop_frames(config, bars=bars, out_rate_hz=out_rate_hz)
    return retimed_frames(bars=bars, bpm=bpm, rate_hz=out_rate_hz or config.source_rate_hz)


def retimed_frames(*, bars: int, bpm: float, rate_hz: int) -> int:
    """Frames of ``bars`` 4/4 bars at ``bpm`` and ``rate_hz``, to the nearest frame."""
    beats = bars * BEATS_PER_BAR
    return round(Fraction(beats * 60 * int(rate_hz)) / Fraction(bpm))


def retime_loop(loop: np.ndarray, *, from_bpm: float, to_bpm: float, n_out: int,
                sample_rate_hz: int, method: str = "auto") -> np.ndarray:
    """A loop (time, channels) at ``from_bpm`` brought to ``to_bpm`` as exactly ``n_out``
    frames (``retimed_frames``) that still loop seamlessly.

    ``"resample"``: varispeed, ``resample_periodic`` to ``n_out`` (pitch moves with tempo, 12 x
    log2(to / from) semitones). ``"slice"``: ``tempo_change.slice_stretch`` with ``wrap``, every
    hit moved unchanged to its new time (pitch kept, tails cut or looped). ``"auto"``:
    ``tempo_method`` chooses (``tempo_change`` has the measurements behind it).
    """
    from . import tempo_change

    if tempo_method(from_bpm, to_bpm, method) == "resample":
        return resample_periodic(loop, n_out=n_out)
    # The slices land on the loop's own grid: the speed is the exact length ratio.
    return tempo_change.slice_stretch(loop, speed=loop.shape[0] / n_out, n_out=n_out,
                                      sample_rate_hz=sample_rate_hz, wrap=True)


def loop_frames(config: Config, *, bars: int, out_rate_hz: int | None = None) -> int:
    """Frames of the file of a loop of ``bars`` bars at ``out_rate_hz`` (default
    ``config.source_rate_hz``): the bars' samples at ``config.sample_rate_hz`` times the rate
    ratio, to the nearest whole frame (``upsample_periodic``). At 126 bpm 4 bars last
    7.619 s: 336,000 frames at 44.1 kHz, 365,714 at 48 kHz."""
    rate = config.source_rate_hz if out_rate_hz is None else out_rate_hz
    if not isinstance(rate, numbers.Integral) or rate <= 0:
        raise ValueError(f"a loop's sample rate must be a positive whole number of Hz, got "
                         f"{rate!r}")
    return round(Fraction(_loop_samples(config, bars=bars) * rate, config.sample_rate_hz))


def build_loop(segments: Mapping[str, np.ndarray], *, structure: str, bars: int, config: Config,
               fade_ms: float = FADE_MS, out_rate_hz: int | None = None) -> np.ndarray:
    """Segments (letter -> ``(n_samples, channels)`` at ``config.sample_rate_hz``) -> a loop.

    Each segment is cut to its slot (``slot_lengths``: ``config.score_len`` samples, give or
    take one at tempi where a segment is not a whole number of samples), faded
    at both ends by ``fade_ms``, arranged by ``structure`` into ``bars`` four-beat bars and
    upsampled periodically to ``out_rate_hz`` (default ``config.source_rate_hz``, 44.1 kHz).
    Returns float32 ``(bars * 4 beats, channels)`` clipped to the 24-bit range.
    """
    out_rate_hz = out_rate_hz or config.source_rate_hz
    fade = int(round(fade_ms * 1e-3 * config.sample_rate_hz))
    pattern = bar_pattern(structure, bars=bars)
    missing = sorted(set(pattern) - set(segments))
    if missing:
        raise ValueError(f"no segment for letter(s) {missing} of structure {structure!r}")
    letters = [letter for letter in pattern for _ in range(segments_per_bar(config))]
    lengths = slot_lengths(config, len(letters))
    for letter in set(pattern):
        shape = np.shape(segments[letter])
        if len(shape) != 2 or shape[0] < max(lengths):
            raise ValueError(f"segment {letter}: expected shape (>= {max(lengths)}, channels), "
                             f"got {shape}")
    loop = np.concatenate([fade_edges(np.asarray(segments[letter])[:m].astype(np.float32),
                                      fade_samples=fade) for letter, m in zip(letters, lengths)])
    loop = upsample_periodic(loop, orig_rate_hz=config.sample_rate_hz, target_rate_hz=out_rate_hz)
    return np.clip(loop, -1.0, MAX_SAMPLE_24).astype(np.float32)


def daw_loop_file_name(*, bpm: float, structure: str, bars: int, seed: int, index: int,
                       tags: tuple[str, ...] = ()) -> str:
    """``beatgan_125bpm_AAAB_4bars_seed0_a000.wav``: tempo and structure first, for DAW browsers.

    ``tags`` (``("var0.1", "48000hz")``) are appended, ``_``-joined, for loops that differ from
    the default one of the same seed in something else, so that neither overwrites the other.
    """
    tail = "".join(f"_{tag}" for tag in tags)
    return (f"beatgan_{bpm:g}bpm_{check_structure(structure)}_{bars}bars_seed{seed}_"
            f"a{index:03d}{tail}.wav")


def float_to_pcm24(x: np.ndarray) -> np.ndarray:
    """Float audio -> int32 holding 24-bit samples in the top bits (what libsndfile expects).

    Sample ``round(x * 2**23)``, clipped to the 24-bit range: the inverse of reading with
    ``soundfile`` as float (24-bit PCM / 2**23), so a write/read round trip is exact on the grid.
    ValueError for NaN or infinite samples (a diverged generator's), which would be written as
    silence or full-scale clicks.
    """
    x = np.asarray(x)
    if not np.isfinite(x).all():
        raise ValueError("audio holds NaN or infinite samples: the model that made it has "
                         "diverged")
    q = np.clip(np.rint(np.asarray(x, dtype=np.float64) * FULL_SCALE_24), -FULL_SCALE_24, FULL_SCALE_24 - 1)
    return q.astype(np.int32) << 8


def write_wav24(x: np.ndarray, path: str | Path, *, sample_rate_hz: int) -> Path:
    """Write ``x`` (time, channels) float as 24-bit PCM WAV, atomically; returns the path."""
    from .fileio import atomic_write_bytes, wav_bytes

    return atomic_write_bytes(path, wav_bytes(float_to_pcm24(x), sample_rate_hz=sample_rate_hz),
                              what=f"writing {Path(path).name}")


def loop_wav_bytes(loop: np.ndarray, *, sample_rate_hz: int, bpm: float, bars: int) -> bytes:
    """A DAW loop's WAV file: ``loop`` (time, channels) float as 24-bit PCM, tagged as a loop of
    ``bars`` 4/4 bars at ``bpm`` (``wav_loop_info``: the ``acid`` tempo and a ``smpl`` loop
    over the whole file), so a DAW stretches it to the project's tempo without guessing."""
    from .fileio import wav_bytes
    from .wav_loop_info import add_loop_chunks

    return add_loop_chunks(wav_bytes(float_to_pcm24(loop), sample_rate_hz=sample_rate_hz),
                           bpm=bpm, beats=bars * BEATS_PER_BAR, beats_per_bar=BEATS_PER_BAR)
