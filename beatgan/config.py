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
import math
from pathlib import Path
from typing import Any

from .fileio import atomic_write_bytes

#: Slice lengths the WaveGAN architecture supports (samples per channel).
SLICE_LENGTHS = (16384, 32768, 65536)
DECIMATION_METHODS = ("polyphase", "naive")
TEMPO_METHODS = ("resample", "stretch", "slice")
#: The generator's upsampling (``beatgan.upsampling``, which imports Keras; kept here so config stays light).
UPSAMPLE_METHODS = ("transposed", "nearest", "linear")
#: Phase shuffle's draws: one shift per batch (WaveGAN's code) or one per example.
PHASE_SHUFFLE_PER = ("batch", "example")
#: Fewest kernel taps each method needs at stride 4: the interpolation filter's length.
_UPSAMPLE_MIN_TAPS = {"transposed": 1, "nearest": 4, "linear": 7}
#: The four-bar structures of BeatGAN (2018): the demo pack's loops and the DAW loop export.
STRUCTURES = ("AAAA", "AAAB", "AABB", "ABAB")
#: Sample rates DAW projects run at: the rates a DAW loop file may have (``beatgan loop --rate``).
DAW_RATES_HZ = (44100, 48000, 88200, 96000)
#: How a DAW loop is brought to another tempo (``loop_export.retime_loop``, ``beatgan loop
#: --tempo-method``); ``"auto"`` chooses by the size of the change.
LOOP_TEMPO_METHODS = ("auto", "slice", "resample")
#: The folder of training loops everything reads by default; only this folder, missing or
#: empty, is stood in for by the synthetic demo pack (``workflows.load_training_loops``).
DEFAULT_DATA_DIR = "ULTIMATE_DRUM_LOOPS"


#: Largest seed, of training and of generated beats: one 32-bit word. NumPy splits a bigger
#: seed into words, so ``2**64 + 7`` would draw the stream ``[7, 0, 1]``, which warm starts,
#: rollbacks and loop variations use.
MAX_SEED = 2 ** 32 - 1


def is_default_data_dir(folder: str | Path) -> bool:
    """Whether ``folder`` names ``DEFAULT_DATA_DIR``, however it is spelled ("./X", "X/")."""
    return Path(folder) == Path(DEFAULT_DATA_DIR)


#: 24-bit full scale: samples are integers in [-2^23, 2^23 - 1], floats are those / 2^23.
FULL_SCALE_24 = 2 ** 23
#: Largest float below 1.0 on the 24-bit grid: audio is kept in [-1, MAX_SAMPLE_24].
MAX_SAMPLE_24 = 1.0 - 1.0 / FULL_SCALE_24


def _described(default: Any, description: str) -> Any:
    """A Config field with its one-line description (what it is and its unit), read by
    ``describe`` and the CLI's help."""
    return dataclasses.field(default=default, metadata={"description": description})


@dataclasses.dataclass(frozen=True)
class Config:
    """Hyperparameters of data, model and training.

    Each field says what it is, and in what unit, where it is declared (``describe(name)``).
    Notes beyond one line:

    * decimation "naive" is the seed's method, ``x[::3]``, aliasing included; ``beatgan.data``
      says which tempo_method suits drums.
    * Model and training numbers follow WaveGAN (Donahue et al. 2018, appendix A) and WGAN-GP.
    * The moving average of the generator (Karras et al. 2018; Yazici et al. 2019) is the
      generator that ``generate`` uses; early in a run its decay is
      ``min(ema_decay, (1 + step) / (10 + step))``, so short runs are not dominated by the
      initial weights.

    Config files written before a field existed load with that field's default.
    """

    # audio and data
    source_rate_hz: int = _described(44100, "rate the loops are brought to before decimation (Hz)")
    sample_rate_hz: int = _described(14700, "rate the model works at (Hz); must divide "
                                            "source_rate_hz")
    slice_len: int = _described(16384, "model input and output length (samples per channel: "
                                       "16384, 32768 or 65536)")
    channels: int = _described(2, "audio channels (1 mono, 2 stereo)")
    beats: float = _described(2, "length of the segment cut from each loop (beats)")
    bpm: float = _described(125.0, "tempo the generator works at; sets the length of generated "
                                    "segments and of the similarity score (beats per minute)")
    decimation: str = _described("polyphase", "how audio goes from source to model rate: "
                                               "polyphase (anti-aliased) or naive (every n-th "
                                               "sample)")
    detect_tempo: bool = _described(False, "estimate the tempo with librosa when neither the file "
                                           "name nor an ACID chunk gives one, instead of "
                                           "skipping the file")
    target_bpm: float | None = _described(None, "bring every loop to this tempo before its segment "
                                                "is cut (beats per minute; unset: each file's own)")
    tempo_method: str = _described("resample", "how a loop changes tempo: resample (varispeed), "
                                               "stretch (phase vocoder) or slice (cut at onsets)")
    noise_copies: int = _described(5, "noisy copies made of each loop by augmentation (count)")
    noise_amplitude: int = _described(10000, "bound of the augmentation's uniform white noise "
                                             "(24-bit integer units)")
    # model
    latent_dim: int = _described(100, "length of the latent vector z, drawn uniform in [-1, 1] "
                                      "(values)")
    model_dim: int = _described(64, "the WaveGAN paper's d: layer widths are multiples of it "
                                    "(channels)")
    kernel_len: int = _described(25, "convolution kernel length (taps)")
    upsample: str = _described("transposed", "generator upsampling: transposed (the seed's) or "
                                             "nearest/linear (interpolate first: no checkerboard "
                                             "buzz)")
    phase_shuffle: int = _described(2, "the paper's n: the discriminator shifts activations by a "
                                       "random amount in [-n, n] (samples; 0 disables it)")
    phase_shuffle_per: str = _described("batch", "phase shuffle draws one shift per batch (the "
                                                 "seed's, as WaveGAN's code) or per example")
    # training
    batch_size: int = _described(64, "loops per training step (count)")
    d_updates_per_g: int = _described(5, "discriminator updates per generator update (count)")
    gp_weight: float = _described(10.0, "weight of the WGAN-GP gradient penalty, the paper's "
                                        "lambda (unitless)")
    drift_weight: float = _described(0.0, "weight of a drift term on the critic, times mean D(x)^2 "
                                          "over real loops (0: the seed's loss; ProGAN: 0.001)")
    learning_rate: float = _described(1e-4, "Adam step size of both networks (per update)")
    beta_1: float = _described(0.5, "Adam decay of the gradient average (unitless, 0-1)")
    beta_2: float = _described(0.9, "Adam decay of the squared-gradient average (unitless, 0-1)")
    mixed_precision: bool = _described(False, "compute in bfloat16, keep the weights in float32")
    ema: bool = _described(True, "export a moving average of the generator's weights as the "
                                 "generator")
    ema_decay: float = _described(0.999, "decay of the generator's weight average per generator "
                                          "update (unitless, 0-1; lower early in a run)")
    seed: int = _described(0, "random seed of data order, latent draws and phase shuffle")

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(f"Config: {message}")

        floats = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if isinstance(getattr(self, f.name), float)}
        need(all(math.isfinite(v) for v in floats.values()),
             "numbers must be finite, got " + ", ".join(
                 f"{k}={v}" for k, v in floats.items() if not math.isfinite(v)))
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
        # Loops brought to one tempo are cut, generated and scored at it: one number for both.
        need(self.target_bpm is None or self.target_bpm == self.bpm,
             f"target_bpm ({self.target_bpm:g}) must equal bpm ({self.bpm:g}), the tempo the "
             f"generator works at; set both" if self.target_bpm else "")
        need(self.decimation in DECIMATION_METHODS,
             f"decimation must be one of {DECIMATION_METHODS}, got {self.decimation!r}")
        need(self.tempo_method in TEMPO_METHODS,
             f"tempo_method must be one of {TEMPO_METHODS}, got {self.tempo_method!r}")
        need(self.noise_copies >= 1, "noise_copies must be at least 1")
        need(0 <= self.noise_amplitude < FULL_SCALE_24, "noise_amplitude must be in [0, 2**23)")
        need(self.latent_dim >= 1 and self.model_dim >= 1, "latent_dim and model_dim must be >= 1")
        need(self.kernel_len >= 1, "kernel_len must be >= 1")
        need(self.upsample in UPSAMPLE_METHODS,
             f"upsample must be one of {UPSAMPLE_METHODS}, got {self.upsample!r}")
        need(self.kernel_len >= _UPSAMPLE_MIN_TAPS.get(self.upsample, 1),
             f"{self.upsample} upsampling needs kernel_len >= "
             f"{_UPSAMPLE_MIN_TAPS.get(self.upsample)}, got {self.kernel_len}")
        need(self.phase_shuffle >= 0, "phase_shuffle must be >= 0")
        need(self.phase_shuffle_per in PHASE_SHUFFLE_PER,
             f"phase_shuffle_per must be one of {PHASE_SHUFFLE_PER}, got {self.phase_shuffle_per!r}")
        need(self.batch_size >= 1 and self.d_updates_per_g >= 1,
             "batch_size and d_updates_per_g must be >= 1")
        need(self.gp_weight >= 0 and self.learning_rate > 0, "gp_weight >= 0 and learning_rate > 0")
        need(self.drift_weight >= 0, f"drift_weight must be >= 0, got {self.drift_weight}")
        need(0.0 < self.ema_decay < 1.0, f"ema_decay must be in (0, 1), got {self.ema_decay}")
        need(0 <= self.seed <= MAX_SEED, f"seed must be 0-{MAX_SEED}, got {self.seed}")
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
        try:
            values = json.loads(path.read_text())
        except ValueError as error:  # not JSON, or not UTF-8 text
            raise ValueError(f"{path}: not a readable config ({error}); expected the config.json "
                             f"that beatgan train writes") from error
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a JSON object of Config fields, got "
                             f"{type(values).__name__}")
        try:
            return cls.from_dict(values)
        except (TypeError, ValueError) as error:  # an unknown field, a missing or bad value
            raise ValueError(f"{path}: {error}") from error


def describe(name: str) -> str:
    """The one-line description of Config field ``name`` (what it is and its unit)."""
    fields = {f.name: f for f in dataclasses.fields(Config)}
    if name not in fields:
        raise ValueError(f"Config has no field {name!r}; known: {sorted(fields)}")
    return fields[name].metadata["description"]


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
