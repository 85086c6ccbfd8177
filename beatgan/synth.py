"""The demo pack: procedural EDM drum loops standing in for the commercial Ultimate Drum Loops.

BeatGAN (2018) trained on 434 loops of a commercial pack that cannot ship. This module writes a
stand-in that the loader cannot tell apart by format: stereo, 44.1 kHz, 24-bit PCM WAV, 8 beats
(two bars of 4/4) at 124 or 125 bpm, with the tempo in the file name as in the pack
(``tr07_drlp_124_<Name>_Full.wav``).

Musically each loop is four 2-beat cells (the seed's "bars": its 1.11 s window holds 2 beats)
arranged as AAAA, AAAB, AABB or ABAB, on a 16th-note grid:

* four-on-the-floor kick: a sine swept down in pitch, with a noise click on top;
* clap and/or snare on beats 2 and 4;
* 16th closed hats (metallic square partials, high-passed) and off-beat open hats;
* one or two percussion voices (tom, rim, shaker, cowbell, conga) in a sparse pattern;
* in some loops a sub-bass line on the off-beats or rolling 16ths;
* humanisation: per-hit velocity and timing jitter, swing; stereo panning per voice.

Several kits (``N_KITS``) each render their one-shots once; a loop then only adds scaled copies
at its onsets, which is what makes the whole pack fast (numpy slices, no per-sample Python).
Everything is drawn from ``numpy.random.default_rng`` seeded by ``(seed, stream, index)``, so a
seed gives byte-identical files and loop ``i`` does not depend on how many loops are written.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
from pathlib import Path

import numpy as np
from scipy import signal

from .config import STRUCTURES
from .fileio import atomic_write_bytes, wav_bytes

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 44100
BEATS = 8
STEPS_PER_BEAT = 4  # 16th-note grid
CELL_STEPS = 2 * STEPS_PER_BEAT  # one 2-beat cell
PACK_BPMS = (124, 125)
PACK_SIZE = 434
N_KITS = 8
PERC_KINDS = ("tom", "rim", "shaker", "cowbell", "conga")

# Random streams of the pack: (seed, stream, index) seeds one generator each.
_KIT_STREAM, _LOOP_STREAM, _PLAN_STREAM = 0, 1, 2

_ADJECTIVES = (
    "Deep", "Dark", "Late", "Night", "Warm", "Raw", "Solid", "Tight", "Heavy", "Lazy", "Golden",
    "Hidden", "Electric", "Silver", "Urban", "Rough", "Smooth", "Broken", "Hyper", "Low",
    "Cold", "Bright", "Wild", "Lost",
)
_NOUNS = (
    "Motion", "Groove", "Believe", "Shuffle", "Pulse", "Rhythm", "Drive", "Tribe", "Jack",
    "Sunrise", "Tunnel", "Circuit", "Machine", "Basement", "Pressure", "Ritual", "Signal",
    "Drift", "Engine", "Voltage", "Garage", "Terrace", "Warehouse", "Roller",
)


# --- one-shots: pure functions of their parameters and a generator ----------------------------

def _time_s(length_s: float, sample_rate_hz: int) -> np.ndarray:
    return np.arange(int(round(length_s * sample_rate_hz))) / sample_rate_hz


def _fade_out(x: np.ndarray, *, sample_rate_hz: int, fade_s: float = 0.005) -> np.ndarray:
    # A short linear fade so a one-shot never ends on a click.
    n = min(len(x), int(fade_s * sample_rate_hz))
    x[len(x) - n:] *= np.linspace(1.0, 0.0, n)
    return x


#: Highest filter edge as a fraction of the sample rate (90 % of Nyquist). The voices are designed
#: at 44.1 kHz, where no edge comes near it; at lower rates (14.7 kHz: the hats' 6.5-9.5 kHz
#: high-pass) edges above it are clamped, so loops render at any rate from ``MIN_RATE_HZ`` up.
MAX_EDGE_FRACTION = 0.45
#: Lowest sample rate the synthesizer supports.
MIN_RATE_HZ = 8000


def clamp_cutoff(cutoff_hz, *, sample_rate_hz: int):
    """A filter edge (Hz) or band (low, high) moved below Nyquist: at most ``MAX_EDGE_FRACTION``
    of the rate, a band's low edge at most half its high edge. Unchanged when already below."""
    top = MAX_EDGE_FRACTION * sample_rate_hz
    if np.ndim(cutoff_hz) == 0:
        return min(float(cutoff_hz), top)
    low, high = cutoff_hz
    high = min(float(high), top)
    return (min(float(low), 0.5 * high), high)


def _filtered(x: np.ndarray, *, btype: str, cutoff_hz, sample_rate_hz: int, order: int = 2) -> np.ndarray:
    cutoff_hz = clamp_cutoff(cutoff_hz, sample_rate_hz=sample_rate_hz)
    sos = signal.butter(order, cutoff_hz, btype=btype, fs=sample_rate_hz, output="sos")
    return signal.sosfilt(sos, x)


def kick_hit(rng: np.random.Generator, *, sample_rate_hz: int, f_start_hz: float, f_end_hz: float,
             pitch_decay_s: float, decay_s: float, click: float, drive: float) -> np.ndarray:
    """A kick drum, mono (time,): a sine swept from ``f_start_hz`` down to ``f_end_hz`` plus a click."""
    t = _time_s(min(6 * decay_s, 0.6), sample_rate_hz)
    f_hz = f_end_hz + (f_start_hz - f_end_hz) * np.exp(-t / pitch_decay_s)
    body = np.sin(2 * np.pi * np.cumsum(f_hz) / sample_rate_hz) * np.exp(-t / decay_s)
    noise = _filtered(rng.standard_normal(t.size), btype="highpass", cutoff_hz=2000,
                      sample_rate_hz=sample_rate_hz)
    x = body + click * noise * np.exp(-t / 0.002)
    # Soft saturation: the rounded, loud body of a club kick.
    return _fade_out(np.tanh(drive * x) / np.tanh(drive), sample_rate_hz=sample_rate_hz)


def clap_hit(rng: np.random.Generator, *, sample_rate_hz: int, centre_hz: float, decay_s: float,
             bursts: int) -> np.ndarray:
    """A hand clap, mono (time,): a few 10 ms-spaced noise bursts and a tail, band-passed."""
    t = _time_s(0.03 + 6 * decay_s, sample_rate_hz)
    env = np.zeros_like(t)
    for k in range(bursts):
        start = 0.01 * k
        env += np.where(t >= start, np.exp(-(t - start) / 0.003), 0.0)
    tail_start = 0.01 * bursts
    env += 0.6 * np.where(t >= tail_start, np.exp(-(t - tail_start) / decay_s), 0.0)
    band = (centre_hz / 1.6, min(centre_hz * 1.6, 0.45 * sample_rate_hz))
    x = _filtered(rng.standard_normal(t.size), btype="bandpass", cutoff_hz=band,
                  sample_rate_hz=sample_rate_hz) * env
    return _fade_out(x / np.max(np.abs(x)), sample_rate_hz=sample_rate_hz)


def snare_hit(rng: np.random.Generator, *, sample_rate_hz: int, tone_hz: float, decay_s: float,
              snappy: float) -> np.ndarray:
    """A snare, mono (time,): two decaying drum-head tones and high-passed noise (the wires)."""
    t = _time_s(6 * decay_s, sample_rate_hz)
    head = (np.sin(2 * np.pi * tone_hz * t) + 0.5 * np.sin(2 * np.pi * 1.83 * tone_hz * t))
    head *= np.exp(-t / (0.5 * decay_s))
    wires = _filtered(rng.standard_normal(t.size), btype="highpass", cutoff_hz=1800,
                      sample_rate_hz=sample_rate_hz) * np.exp(-t / decay_s)
    x = head + snappy * wires
    return _fade_out(x / np.max(np.abs(x)), sample_rate_hz=sample_rate_hz)


def hat_hit(rng: np.random.Generator, *, sample_rate_hz: int, base_hz: float, decay_s: float,
            cutoff_hz: float, metal: float) -> np.ndarray:
    """A hi-hat, mono (time,): six inharmonic square waves (the 808 recipe) and noise, high-passed."""
    t = _time_s(min(6 * decay_s, 0.8), sample_rate_hz)
    ratios = np.array([1.0, 1.483, 1.800, 2.546, 2.630, 3.897])  # 808 oscillator ratios
    phases = rng.uniform(0, 2 * np.pi, ratios.size)
    squares = np.sign(np.sin(2 * np.pi * base_hz * ratios[:, None] * t + phases[:, None])).sum(axis=0)
    x = metal * squares / ratios.size + (1 - metal) * rng.standard_normal(t.size)
    x = _filtered(x, btype="highpass", cutoff_hz=cutoff_hz, sample_rate_hz=sample_rate_hz, order=4)
    x *= np.exp(-t / decay_s)
    return _fade_out(x / np.max(np.abs(x)), sample_rate_hz=sample_rate_hz)


def perc_hit(rng: np.random.Generator, *, sample_rate_hz: int, kind: str, pitch_hz: float) -> np.ndarray:
    """A percussion one-shot, mono (time,), of ``kind`` in ``PERC_KINDS``."""
    if kind in ("tom", "conga"):
        decay_s = 0.18 if kind == "tom" else 0.09
        t = _time_s(5 * decay_s, sample_rate_hz)
        f_hz = pitch_hz * (1 + 0.4 * np.exp(-t / 0.02))
        x = np.sin(2 * np.pi * np.cumsum(f_hz) / sample_rate_hz) * np.exp(-t / decay_s)
    elif kind == "rim":
        t = _time_s(0.06, sample_rate_hz)
        click = _filtered(rng.standard_normal(t.size), btype="bandpass",
                          cutoff_hz=(pitch_hz * 2, pitch_hz * 5), sample_rate_hz=sample_rate_hz)
        x = (np.sin(2 * np.pi * pitch_hz * t) + 2 * click) * np.exp(-t / 0.012)
    elif kind == "shaker":
        t = _time_s(0.12, sample_rate_hz)
        env = (1 - np.exp(-t / 0.008)) * np.exp(-t / 0.03)
        x = _filtered(rng.standard_normal(t.size), btype="bandpass",
                      cutoff_hz=(pitch_hz, min(2.5 * pitch_hz, 0.45 * sample_rate_hz)),
                      sample_rate_hz=sample_rate_hz) * env
    elif kind == "cowbell":
        t = _time_s(0.35, sample_rate_hz)
        x = np.sign(np.sin(2 * np.pi * pitch_hz * t)) + np.sign(np.sin(2 * np.pi * 1.48 * pitch_hz * t))
        x = _filtered(x, btype="bandpass", cutoff_hz=(pitch_hz * 0.8, pitch_hz * 4),
                      sample_rate_hz=sample_rate_hz) * np.exp(-t / 0.07)
    else:
        raise ValueError(f"kind must be one of {PERC_KINDS}, got {kind!r}")
    return _fade_out(x / np.max(np.abs(x)), sample_rate_hz=sample_rate_hz)


def bass_note(*, sample_rate_hz: int, f_hz: float, length_s: float) -> np.ndarray:
    """A sub-bass note, mono (time,): a sine with a little second harmonic, 3 ms attack."""
    t = _time_s(length_s, sample_rate_hz)
    env = (1 - np.exp(-t / 0.003)) * np.exp(-t / (0.6 * length_s))
    x = (np.sin(2 * np.pi * f_hz * t) + 0.25 * np.sin(4 * np.pi * f_hz * t)) * env
    return _fade_out(x, sample_rate_hz=sample_rate_hz, fade_s=0.01)


# --- kits -----------------------------------------------------------------------------------

def pan_gains(pan: float) -> np.ndarray:
    """Equal-power (left, right) gains for ``pan`` in [-1 (left), 1 (right)]; (1, 1) at centre."""
    angle = (np.clip(pan, -1.0, 1.0) + 1.0) * np.pi / 4
    return np.sqrt(2.0) * np.array([np.cos(angle), np.sin(angle)])


def _stereo(x: np.ndarray, *, pan: float, level: float) -> np.ndarray:
    return (level * x[:, None] * pan_gains(pan)[None, :]).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Kit:
    """Rendered one-shots of one drum kit: voice -> tuple of stereo variants, each (time, 2) float32.

    Voices: kick, clap, snare (either may be empty: kits clap, snare or layer both), hat, open_hat,
    perc1, perc2 (perc2 may be empty), bass (three pitches: root, fifth, octave).
    """

    name: str
    sounds: dict

    @property
    def max_len(self) -> int:
        """Longest one-shot in samples (how far a hit can ring past the loop's end)."""
        return max(s.shape[0] for variants in self.sounds.values() for s in variants)


@functools.lru_cache(maxsize=4 * N_KITS)
def make_kit(seed: int, index: int, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> Kit:
    """Kit ``index`` of the pack drawn with ``seed``: random sound-design parameters, rendered once."""
    rng = np.random.default_rng([seed, _KIT_STREAM, index])
    sr = sample_rate_hz
    u = rng.uniform
    sounds: dict[str, tuple[np.ndarray, ...]] = {}
    sounds["kick"] = (_stereo(kick_hit(rng, sample_rate_hz=sr, f_start_hz=u(120, 220), f_end_hz=u(42, 58),
                                       pitch_decay_s=u(0.02, 0.05), decay_s=u(0.12, 0.3),
                                       click=u(0.1, 0.5), drive=u(1.0, 3.0)), pan=0.0, level=1.0),)
    layer = rng.choice(["clap", "snare", "both"], p=[0.45, 0.25, 0.3])
    clap_pan, snare_pan = u(-0.1, 0.1), u(-0.05, 0.05)
    sounds["clap"] = () if layer == "snare" else tuple(
        _stereo(clap_hit(rng, sample_rate_hz=sr, centre_hz=u(900, 1800), decay_s=u(0.06, 0.15),
                         bursts=int(rng.integers(3, 5))), pan=clap_pan + 0.08 * side, level=0.55)
        for side in (-1, 1))  # two renderings, panned apart: a wider clap when they alternate
    sounds["snare"] = () if layer == "clap" else (
        _stereo(snare_hit(rng, sample_rate_hz=sr, tone_hz=u(170, 240), decay_s=u(0.06, 0.14),
                          snappy=u(0.5, 1.2)), pan=snare_pan, level=0.5),)
    hat_pan = u(-0.4, 0.4)
    hat_base, hat_cut = u(300, 450), u(6500, 9500)
    sounds["hat"] = tuple(
        _stereo(hat_hit(rng, sample_rate_hz=sr, base_hz=hat_base, decay_s=u(0.015, 0.04),
                        cutoff_hz=hat_cut, metal=u(0.3, 0.8)), pan=hat_pan, level=0.3)
        for _ in range(3))  # round-robin variants, so 16ths do not sound like a machine gun
    sounds["open_hat"] = (_stereo(hat_hit(rng, sample_rate_hz=sr, base_hz=hat_base, decay_s=u(0.07, 0.14),
                                          cutoff_hz=hat_cut, metal=u(0.3, 0.8)),
                                  pan=-0.5 * hat_pan, level=0.3),)
    kinds = rng.choice(PERC_KINDS, size=2, replace=False)
    pitches = {"tom": (110, 220), "rim": (400, 800), "shaker": (3000, 6000), "cowbell": (500, 650),
               "conga": (250, 420)}
    for slot, kind in zip(("perc1", "perc2"), kinds):
        sounds[slot] = (_stereo(perc_hit(rng, sample_rate_hz=sr, kind=str(kind), pitch_hz=u(*pitches[kind])),
                                pan=u(-0.7, 0.7), level=0.3),)
    if rng.random() < 0.4:
        sounds["perc2"] = ()
    root_hz = u(41, 62)  # E1 .. B1
    sounds["bass"] = tuple(_stereo(bass_note(sample_rate_hz=sr, f_hz=root_hz * ratio, length_s=0.11),
                                   pan=0.0, level=0.45) for ratio in (1.0, 1.5, 2.0))
    return Kit(name=f"kit{index}", sounds=sounds)


# --- patterns -------------------------------------------------------------------------------

_FILLS = ("pickup_kick", "ghost_backbeat", "hat_gaps", "open_hat_push", "perc_rewrite")


def _cell_patterns(rng: np.random.Generator, kit: Kit) -> dict[str, np.ndarray]:
    """Velocities (2, CELL_STEPS) per voice: row 0 is cell A, row 1 cell B.

    B is A with two or three of ``_FILLS``, so a B cell always differs audibly from A.
    """
    def both(row):
        return np.stack([np.asarray(row, dtype=float), np.asarray(row, dtype=float)])

    accent = rng.uniform(0.8, 1.0)
    pats = {
        "kick": both([1.0, 0, 0, 0, 1.0, 0, 0, 0]),  # four on the floor
        "clap": both([0, 0, 0, 0, 1.0, 0, 0, 0]),  # beats 2 and 4 of the bar
        "snare": both([0, 0, 0, 0, 1.0, 0, 0, 0]),
        "hat": both(np.array([0.9, 0.45, 0.0, 0.6, 0.9, 0.45, 0.0, 0.6]) * accent),  # 16ths
        "open_hat": both(np.array([0, 0, 1.0, 0, 0, 0, 1.0, 0]) * rng.uniform(0.7, 1.0)),  # off-beats
    }
    for slot in ("perc1", "perc2"):
        pats[slot] = both((rng.random(CELL_STEPS) < 0.3) * rng.uniform(0.5, 1.0, CELL_STEPS))
    if rng.random() < 0.5:
        offbeat = [0, 0, 1.0, 0, 0, 0, 1.0, 0]
        rolling = [0, 0.8, 1.0, 0.8, 0, 0.8, 1.0, 0.8]
        pats["bass"] = both(offbeat if rng.random() < 0.6 else rolling)
    else:
        pats["bass"] = np.zeros((2, CELL_STEPS))
    for fill in rng.choice(_FILLS, size=int(rng.integers(2, 4)), replace=False):
        if fill == "pickup_kick":
            pats["kick"][1, rng.choice([3, 6, 7])] = rng.uniform(0.45, 0.7)
        elif fill == "ghost_backbeat":
            step = rng.choice([6, 7])
            pats["clap"][1, step] = pats["snare"][1, step] = rng.uniform(0.25, 0.45)
        elif fill == "hat_gaps":
            pats["hat"][1, rng.choice([0, 1, 3, 4, 5, 7], size=2, replace=False)] = 0.0
        elif fill == "open_hat_push":
            pats["open_hat"][1, 7] = rng.uniform(0.6, 0.9)
        else:
            pats["perc1"][1] = (rng.random(CELL_STEPS) < 0.4) * rng.uniform(0.5, 1.0, CELL_STEPS)
    return {voice: p for voice, p in pats.items() if kit.sounds.get(voice)}


# Timing jitter (s, standard deviation) per voice: the kick and backbeat stay tight, the rest
# is looser, like a programmed loop with a groove template.
_JITTER_S = {"kick": 0.0005, "clap": 0.001, "snare": 0.001, "hat": 0.003, "open_hat": 0.003,
             "perc1": 0.004, "perc2": 0.004, "bass": 0.001}
_SWUNG = {"hat", "open_hat", "perc1", "perc2"}


@dataclasses.dataclass(frozen=True)
class LoopScore:
    """What a loop plays, before humanisation.

    grid: voice -> velocities (beats * STEPS_PER_BEAT,) on the 16th grid, 0 where it is silent.
    bass_pitch: (beats * STEPS_PER_BEAT,) 0 root, 1 fifth, 2 octave. swing: delay of odd 16ths
    as a fraction of a 16th. structure: which 2-beat cells are A and which B.
    """

    kit: Kit
    structure: str
    grid: dict
    bass_pitch: np.ndarray
    swing: float


def _draw_score(rng: np.random.Generator, *, seed: int, kit, structure: str | None, beats: int,
                sample_rate_hz: int) -> LoopScore:
    if beats < 2 or beats % 2:
        raise ValueError(f"beats must be an even number >= 2 (2-beat cells), got {beats}")
    kit_index = int(rng.integers(N_KITS))
    if kit is None or isinstance(kit, (int, np.integer)):
        kit = make_kit(seed, kit_index if kit is None else int(kit), sample_rate_hz=sample_rate_hz)
    drawn = str(rng.choice(STRUCTURES))  # drawn even when given, so the rest stays the same
    structure = structure or drawn
    if structure not in STRUCTURES:
        raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")
    rows = np.array([0 if structure[c % 4] == "A" else 1 for c in range(beats // 2)])
    swing = float(rng.uniform(0.0, 0.12))
    pats = _cell_patterns(rng, kit)
    bass_pitch = rng.choice(3, size=(2, CELL_STEPS), p=[0.7, 0.15, 0.15])
    bass_pitch[0] = 0  # cell A stays on the root, B may move to the fifth or octave
    grid = {voice: pat[rows].ravel() for voice, pat in pats.items()}
    return LoopScore(kit=kit, structure=structure, grid=grid, bass_pitch=bass_pitch[rows].ravel(),
                     swing=swing)


def loop_score(*, seed: int = 0, index: int = 0, kit: Kit | int | None = None,
               structure: str | None = None, beats: int = BEATS,
               sample_rate_hz: int = SAMPLE_RATE_HZ) -> LoopScore:
    """The ``LoopScore`` that ``synthesize_loop`` with the same arguments plays."""
    rng = np.random.default_rng([seed, _LOOP_STREAM, index])
    return _draw_score(rng, seed=seed, kit=kit, structure=structure, beats=beats,
                       sample_rate_hz=sample_rate_hz)


def fold_tail(buf: np.ndarray, n_frames: int) -> np.ndarray:
    """``buf[:n_frames]`` (a view, added to in place) with every later stretch of ``n_frames``
    added onto it: a sound that outlasts the loop, even several times over, wraps round it as
    it would played in a loop."""
    loop = buf[:n_frames]
    for start in range(n_frames, buf.shape[0], n_frames):
        tail = buf[start:start + n_frames]
        loop[:tail.shape[0]] += tail
    return loop


def synthesize_loop(*, bpm: float = 125.0, seed: int = 0, index: int = 0, kit: Kit | int | None = None,
                    structure: str | None = None, beats: int = BEATS,
                    sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """One drum loop as float32 of shape (round(sample_rate_hz * 60 / bpm * beats), 2), peak < 1.

    ``sample_rate_hz``: any rate from ``MIN_RATE_HZ`` (8 kHz) up; filter edges above 90 % of
    Nyquist are clamped (``clamp_cutoff``). The kit's noise is drawn sample by sample, so another
    rate draws another kit (other voices and lengths), not this loop band-limited.
    ``seed`` and ``index`` pick the random stream: ``write_demo_pack(seed=s)`` writes loop ``i``
    as ``synthesize_loop(bpm=<its bpm>, seed=s, index=i)`` quantised to 24 bits. ``kit``: a
    ``Kit``, a kit number, or None (drawn). ``structure``: one of ``STRUCTURES`` or None (drawn).
    The loop is seamless: hits ringing past the end continue at its start.
    """
    if not bpm > 0:
        raise ValueError(f"bpm must be positive, got {bpm}")
    if not sample_rate_hz >= MIN_RATE_HZ:
        raise ValueError(f"sample_rate_hz must be at least {MIN_RATE_HZ} Hz, got {sample_rate_hz}")
    rng = np.random.default_rng([seed, _LOOP_STREAM, index])
    score = _draw_score(rng, seed=seed, kit=kit, structure=structure, beats=beats,
                        sample_rate_hz=sample_rate_hz)
    kit = score.kit
    step_s = 60.0 / bpm / STEPS_PER_BEAT
    n_frames = int(round(sample_rate_hz * 60.0 / bpm * beats))
    buf = np.zeros((n_frames + kit.max_len, 2), np.float32)
    for voice, grid in score.grid.items():
        steps = np.flatnonzero(grid)
        # 1. humanise: velocity +-8 %, timing jitter, swing on odd 16ths
        vel = grid[steps] * np.clip(1 + 0.08 * rng.standard_normal(steps.size), 0.6, 1.2)
        onset_s = steps * step_s + _JITTER_S[voice] * rng.standard_normal(steps.size)
        if voice in _SWUNG:
            onset_s += score.swing * step_s * (steps % 2)
        # 2. wrap onsets into the loop (an early first hit belongs at the end)
        onsets = np.round(onset_s * sample_rate_hz).astype(np.int64) % n_frames
        variants = kit.sounds[voice]
        for k, (pos, v) in enumerate(zip(onsets, vel)):
            # bass: the note's pitch; others: round-robin over the kit's variants
            sound = variants[score.bass_pitch[steps[k]] if voice == "bass" else k % len(variants)]
            buf[pos:pos + sound.shape[0]] += np.float32(v) * sound
    # 3. fold the tail ringing past the end back onto the start: a seamless loop
    loop = fold_tail(buf, n_frames)
    # 4. master: peak-normalise to between -3 and -0.5 dBFS, as the pack's mastered loops are
    peak_db = rng.uniform(-3.0, -0.5)
    loop *= np.float32(10 ** (peak_db / 20) / np.max(np.abs(loop)))
    return loop


# --- the pack on disk -----------------------------------------------------------------------

def _loop_names(seed: int, n: int) -> list[str]:
    rng = np.random.default_rng([seed, _PLAN_STREAM])
    names = [a + b for a in _ADJECTIVES for b in _NOUNS]
    names = [names[i] for i in rng.permutation(len(names))]
    # More loops than word pairs: number the second round and later ones.
    return [names[i % len(names)] + (str(i // len(names) + 1) if i >= len(names) else "") for i in range(n)]


def _loop_bpm(seed: int, index: int, bpm) -> float:
    rng = np.random.default_rng([seed, _PLAN_STREAM, index])
    if bpm is None:
        return float(rng.choice(PACK_BPMS))
    if np.ndim(bpm) == 0:
        if not bpm > 0:
            raise ValueError(f"bpm must be positive, got {bpm}")
        return float(bpm)
    low, high = bpm
    if not 0 < low <= high:
        raise ValueError(f"bpm range must satisfy 0 < low <= high, got {bpm}")
    if np.ceil(low) > np.floor(high):
        raise ValueError(f"bpm range {low:g}-{high:g} holds no whole-number tempo (loops are drawn "
                         f"at whole tempi, as their names say)")
    # Whole numbers, so the tempo written in the name is exactly the loop's tempo.
    return float(rng.integers(int(np.ceil(low)), int(np.floor(high)) + 1))


def demo_pack_file_name(*, bpm: float, name: str) -> str:
    """The pack's naming scheme: ``tr07_drlp_<bpm>_<Name>_Full.wav``."""
    bpm_text = f"{bpm:g}"
    return f"tr07_drlp_{bpm_text}_{name}_Full.wav"


def write_demo_pack(out_dir: str | os.PathLike, *, n: int = PACK_SIZE, seed: int = 0,
                    bpm: float | tuple[float, float] | None = None) -> list[Path]:
    """Write ``n`` demo loops (stereo 44.1 kHz 24-bit PCM WAV, 8 beats) into ``out_dir``.

    ``bpm``: None for the pack's mix of 124 and 125 bpm; a number for one tempo; a
    ``(low, high)`` tuple for whole-number tempi drawn uniformly in that range. The same
    ``seed`` (and ``n``, ``bpm``) gives byte-identical files. Returns the paths, in loop order.
    ValueError, before anything is written, for a tempo outside ``tempo.BPM_RANGE`` (the names
    would not be read) or an ``out_dir`` holding audio files the pack would not replace.
    """
    from .audio_files import find_audio_files
    from .tempo import BPM_RANGE

    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    out_dir = Path(out_dir)
    tempi = [_loop_bpm(seed, i, bpm) for i in range(n)]
    if not all(BPM_RANGE[0] <= t <= BPM_RANGE[1] for t in tempi):  # names the loader reads
        raise ValueError(f"bpm must lie in {BPM_RANGE[0]:g}-{BPM_RANGE[1]:g}, the tempi a file "
                         f"name is read for, got {bpm}")
    paths = [out_dir / demo_pack_file_name(bpm=t, name=name)
             for t, name in zip(tempi, _loop_names(seed, n))]
    # Another pack (or the user's loops) beside this one would be trained on with it.
    ours = set(paths)
    others = [p for p in find_audio_files(out_dir) if p not in ours] if out_dir.is_dir() else []
    if others:
        raise ValueError(f"{out_dir} already holds {len(others)} audio file(s) this pack would "
                         f"not replace, such as {others[0]}: write it into an empty folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, (loop_bpm, path) in enumerate(zip(tempi, paths)):
        loop = synthesize_loop(bpm=loop_bpm, seed=seed, index=i)
        atomic_write_bytes(path, wav_bytes(loop, sample_rate_hz=SAMPLE_RATE_HZ),
                           what=f"writing the demo pack to {out_dir}")
    return paths


def default_cache_dir() -> Path:
    """``<repo>/.cache/demo_pack`` for a source checkout of beatgan, else the user's cache
    folder for beatgan (``~/.cache/beatgan/demo_pack`` on Linux), never the working folder."""
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").exists():
        return repo / ".cache" / "demo_pack"
    import platformdirs  # the platform's cache folder ($XDG_CACHE_HOME, ~/Library/Caches, ...)

    return Path(platformdirs.user_cache_dir("beatgan", appauthor=False)) / "demo_pack"


def _shown(path: Path) -> Path:
    """``path`` relative to the working folder when it lies inside it (a log line or a notebook
    output then reads the same on every machine), else as it is."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def ensure_demo_pack(folder: str | os.PathLike, *, n: int = PACK_SIZE, seed: int = 0,
                     cache_dir: str | os.PathLike | None = None, missing_ok: bool = False,
                     empty_ok: bool = True) -> Path:
    """``folder`` if it holds audio files; the demo pack's folder (written once) if it is empty.

    The demo pack never stands in for the user's files: a ``folder`` that does not exist is a
    ``FileNotFoundError`` (a mistyped path must not train on synthetic loops) unless
    ``missing_ok`` (a default folder the user did not name); an empty one (nothing but READMEs
    and hidden files) falls back only with ``empty_ok``; a folder that cannot be read, or holds
    files but no audio (``.m4a``, ``.txt``, ...), is a ``LoopError`` naming what was found.

    The pack goes to ``cache_dir / f"seed{seed}_n{n}"`` (``cache_dir`` defaults to
    ``default_cache_dir()``) and is reused on later calls. It is written to a staging folder of
    this process's own and renamed (``_fill_pack``), so neither an interrupted run nor two runs
    at once leave a half pack that looks complete.
    Logs one warning line when the demo pack stands in for ``folder``.
    """
    from .audio_files import LoopError, scan_folder

    folder = Path(folder)
    if not folder.exists() and not missing_ok:
        raise FileNotFoundError(f"{folder}: no such folder (the demo pack stands in only for "
                                f"the default folder)")
    if folder.exists():
        if not folder.is_dir():
            raise NotADirectoryError(f"{folder}: a file, expected a folder of drum loops")
        scan = scan_folder(folder)
        if scan.audio:
            return folder
        if not scan.empty:
            raise LoopError(f"{folder}: holds no audio files soundfile can read, found "
                            f"{scan.summary()}; expected WAV, AIFF or FLAC drum loops such as "
                            f"'tr07_drlp_124_Believe_Full.wav'")
        if not empty_ok:
            raise LoopError(f"{folder}: is empty; expected drum loops such as "
                            f"'tr07_drlp_124_Believe_Full.wav' (the demo pack stands in only "
                            f"for the default folder)")
    pack = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    pack = pack / f"seed{seed}_n{n}"
    log.warning("%s holds no audio files: using the synthetic demo pack (%d loops, seed %d) in %s",
                folder, n, seed, _shown(pack))
    if not _pack_complete(pack, n):
        _fill_pack(pack, n=n, seed=seed)
    return pack


def _pack_complete(pack: Path, n: int) -> bool:
    from .audio_files import find_audio_files

    return pack.is_dir() and len(find_audio_files(pack)) == n


def _fill_pack(pack: Path, *, n: int, seed: int) -> None:
    """Write the pack in a staging folder of this process's own, then rename it into place.

    Several processes may fill one cache at once (a notebook and a command): each writes its
    own copy, the first rename wins and the others discard theirs, so none reads a pack
    another is still writing or deleting. Staging folders of killed writers are removed.
    """
    from .fileio import remove_dead_temporaries, staging_folder

    pack.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(pack.parent)
    staging = staging_folder(pack.parent, name=pack.name)
    try:
        write_demo_pack(staging, n=n, seed=seed)
        if not _pack_complete(pack, n):
            if pack.exists():  # an incomplete pack from before staging folders: replace it
                shutil.rmtree(pack)
            try:
                staging.rename(pack)
            except OSError:
                if not _pack_complete(pack, n):  # not another writer's finished pack
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
