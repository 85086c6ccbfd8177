"""One frozen dataclass holding every number BeatGAN depends on.

The defaults are the 2018 BeatGAN numbers (``Config()`` is the ``seed`` preset):
WaveGAN (Donahue et al. 2018, appendix A) with two channels, audio at 14.7 kHz
(44.1 kHz / 3), a "first bar" of 2 beats cut from each loop, zero-padded to
16384 samples, and the WGAN-GP schedule of the paper.

A config is saved as JSON beside every checkpoint and exported weight file, so
that a weight file always rebuilds its own model (``Config.load``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from .fileio import atomic_write_bytes

#: Slice lengths the WaveGAN architecture supports (samples per channel).
SLICE_LENGTHS = (16384, 32768, 65536)
DECIMATION_METHODS = ("polyphase", "naive")
TEMPO_METHODS = ("resample", "stretch", "slice")
#: The four-bar structures of BeatGAN (2018): the demo pack's loops and the DAW loop export.
STRUCTURES = ("AAAA", "AAAB", "AABB", "ABAB")
#: 24-bit full scale: samples are integers in [-2^23, 2^23 - 1], floats are those / 2^23.
FULL_SCALE_24 = 2 ** 23
#: Largest float below 1.0 on the 24-bit grid: audio is kept in [-1, MAX_SAMPLE_24].
MAX_SAMPLE_24 = 1.0 - 1.0 / FULL_SCALE_24


@dataclasses.dataclass(frozen=True)
class Config:
    """Hyperparameters of data, model and training.

    Audio and data
        source_rate_hz: rate the loops are brought to before decimation (Hz).
        sample_rate_hz: rate the model works at (Hz); must divide source_rate_hz.
        slice_len: model input/output length in samples per channel.
        channels: audio channels (2: stereo).
        beats: how many beats of each loop form the training segment.
        bpm: tempo the generator works at; generated segments are
            ``segment_len(bpm)`` samples long and similarity is scored over
            that many samples.
        decimation: "polyphase" (anti-aliased, default) or "naive" (``x[::3]``,
            the seed's method, aliasing included).
        detect_tempo: when a file name holds no bpm, estimate it with librosa
            instead of skipping the file.
        target_bpm: when set, every loop is brought to this tempo before its
            segment is cut (loops at any tempo); ``None`` keeps each file's own.
        tempo_method: "resample" (varispeed), "stretch" (phase vocoder) or "slice" (cut at
            onsets, slices moved to the new tempo); see ``beatgan.data`` for which suits drums.
        noise_copies: noisy copies made of each loop by ``augment``.
        noise_amplitude: white-noise bound in 24-bit integer units; noise is
            uniform in [-noise_amplitude, noise_amplitude).

    Model (WaveGAN)
        latent_dim: length of z, drawn uniform in [-1, 1].
        model_dim: the paper's d; channel widths are multiples of it.
        kernel_len: convolution kernel length (taps).
        phase_shuffle: the paper's n: the discriminator shifts activations by a
            random integer in [-n, n] samples (0 disables it).

    Training (WGAN-GP)
        batch_size, d_updates_per_g, gp_weight (lambda), learning_rate,
        beta_1, beta_2: as in the WaveGAN paper.
        mixed_precision: bfloat16 compute with float32 variables.
        ema: keep an exponential moving average of the generator's weights (Karras et
            al. 2018; Yazici et al. 2019), exported as the generator that ``generate`` uses.
        ema_decay: its decay per generator update; early in a run the decay is
            ``min(ema_decay, (1 + step) / (10 + step))``, so short runs are not dominated by
            the initial weights.
        seed: seeds data order, latent draws and phase shuffle.

    Config files written before a field existed load with that field's default.
    """

    # audio and data
    source_rate_hz: int = 44100
    sample_rate_hz: int = 14700
    slice_len: int = 16384
    channels: int = 2
    beats: float = 2
    bpm: float = 125.0
    decimation: str = "polyphase"
    detect_tempo: bool = False
    target_bpm: float | None = None
    tempo_method: str = "resample"
    noise_copies: int = 5
    noise_amplitude: int = 10000
    # model
    latent_dim: int = 100
    model_dim: int = 64
    kernel_len: int = 25
    phase_shuffle: int = 2
    # training
    batch_size: int = 64
    d_updates_per_g: int = 5
    gp_weight: float = 10.0
    learning_rate: float = 1e-4
    beta_1: float = 0.5
    beta_2: float = 0.9
    mixed_precision: bool = False
    ema: bool = True
    ema_decay: float = 0.999
    seed: int = 0

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(f"Config: {message}")

        need(self.slice_len in SLICE_LENGTHS,
             f"slice_len must be one of {SLICE_LENGTHS}, got {self.slice_len}")
        need(self.sample_rate_hz > 0 and self.source_rate_hz > 0,
             "sample rates must be positive")
        need(self.source_rate_hz % self.sample_rate_hz == 0,
             f"sample_rate_hz ({self.sample_rate_hz}) must divide "
             f"source_rate_hz ({self.source_rate_hz}) by a whole number")
        need(self.channels in (1, 2), f"channels must be 1 or 2, got {self.channels}")
        need(self.beats > 0, f"beats must be positive, got {self.beats}")
        need(self.bpm > 0, f"bpm must be positive, got {self.bpm}")
        need(self.target_bpm is None or self.target_bpm > 0,
             f"target_bpm must be positive or None, got {self.target_bpm}")
        need(self.decimation in DECIMATION_METHODS,
             f"decimation must be one of {DECIMATION_METHODS}, got {self.decimation!r}")
        need(self.tempo_method in TEMPO_METHODS,
             f"tempo_method must be one of {TEMPO_METHODS}, got {self.tempo_method!r}")
        need(self.noise_copies >= 1, "noise_copies must be at least 1")
        need(0 <= self.noise_amplitude < FULL_SCALE_24, "noise_amplitude must be in [0, 2**23)")
        need(self.latent_dim >= 1 and self.model_dim >= 1, "latent_dim and model_dim must be >= 1")
        need(self.kernel_len >= 1, "kernel_len must be >= 1")
        need(self.phase_shuffle >= 0, "phase_shuffle must be >= 0")
        need(self.batch_size >= 1 and self.d_updates_per_g >= 1,
             "batch_size and d_updates_per_g must be >= 1")
        need(self.gp_weight >= 0 and self.learning_rate > 0, "gp_weight >= 0 and learning_rate > 0")
        need(0.0 < self.ema_decay < 1.0, f"ema_decay must be in (0, 1), got {self.ema_decay}")
        need(self.segment_len(self.bpm) <= self.slice_len,
             f"{self.beats} beats at {self.bpm} bpm is {self.segment_len(self.bpm)} samples "
             f"at {self.sample_rate_hz} Hz, more than slice_len={self.slice_len}")

    # --- derived quantities -------------------------------------------------
    @property
    def decimation_factor(self) -> int:
        """Whole-number ratio source_rate_hz / sample_rate_hz (3 for 44.1 -> 14.7 kHz)."""
        return self.source_rate_hz // self.sample_rate_hz

    def segment_len(self, bpm: float) -> int:
        """Samples at sample_rate_hz in ``beats`` beats at ``bpm``: round(rate * 60 / bpm * beats).

        14112 at 125 bpm and 14226 at 124 bpm for the seed's numbers.
        """
        if not bpm > 0:
            raise ValueError(f"bpm must be positive, got {bpm}")
        return int(round(self.sample_rate_hz * 60.0 / bpm * self.beats))

    @property
    def score_len(self) -> int:
        """Samples compared by the similarity score: one segment at ``bpm`` (14112)."""
        return self.segment_len(self.bpm)

    @property
    def slice_seconds(self) -> float:
        """Length of one generated slice in seconds (1.11 s for the seed)."""
        return self.slice_len / self.sample_rate_hz

    # --- (de)serialisation --------------------------------------------------
    def replace(self, **changes: Any) -> "Config":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Config":
        """Build from a dict; unknown keys are an error so that typos do not pass silently."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Config: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    def save(self, path: str | Path) -> Path:
        """Write as indented JSON to ``path`` (a file, or a folder: ``path/config.json``).

        Written under a temporary name and renamed, so a reader never sees half a file.
        """
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        atomic_write_bytes(path, text.encode(), what=f"writing {path.name}")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Config":
        """Read JSON written by ``save`` (a file, or a folder holding ``config.json``)."""
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        if not path.exists():
            raise FileNotFoundError(f"no config at {path}: weights need their config.json beside them")
        return cls.from_dict(json.loads(path.read_text()))


#: Named presets: the seed's further work, longer and higher-rate output (WaveGAN v2 slices).
#:
#: ``seed``  the 2018 BeatGAN: 16384 samples at 14.7 kHz holding 2 beats (14112 at 125 bpm).
#: ``bar``   32768 samples at 14.7 kHz holding a whole 4/4 bar (28224 at 125 bpm, 2.23 s slice).
#: ``hifi``  65536 samples at 22.05 kHz (44.1 kHz / 2) holding a whole bar (42336 at 125 bpm).
PRESETS: dict[str, Config] = {
    "seed": Config(),
    "bar": Config(slice_len=32768, beats=4),
    "hifi": Config(sample_rate_hz=22050, slice_len=65536, beats=4),
}


def preset(name: str, **changes: Any) -> Config:
    """A named preset, optionally with some fields changed: ``preset("seed", model_dim=16)``."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name].replace(**changes)
