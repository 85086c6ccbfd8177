"""beatgan: a WaveGAN that learns to draw drum loops as raw stereo waveforms.

A modern rebuild of BeatGAN (2018): WaveGAN (Donahue et al., "Adversarial Audio
Synthesis", ICLR 2019) trained as a WGAN-GP on the first two beats of EDM drum
loops at 14.7 kHz, with a similarity score for the novelty of what it draws.

The public names below are imported lazily, so ``import beatgan`` stays fast and
does not start Keras (its backend is chosen by ``KERAS_BACKEND`` before first use).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Config": "config",
    "PRESETS": "config",
    "preset": "config",
    "load_loops": "data",
    "LoopSet": "data",
    "augment": "data",
    "write_demo_pack": "synth",
    "build_generator": "model",
    "build_discriminator": "model",
    "PhaseShuffle": "model",
    "train": "training",
    "generate": "generation",
    "load_generator": "generation",
    "write_beats": "generation",
    "make_loop": "generation",
    "similarity_matrix": "similarity",
    "shift_tolerant_similarity": "similarity",
    "novelty_report": "similarity",
    "score_novelty": "similarity",
    "load_generated": "similarity",
    "TrainingReference": "metrics",
    "evaluate": "metrics",
}

# submodules reachable as attributes (``beatgan.synth``) without importing them all up front
_SUBMODULES = {"audio", "checkpoint", "cli", "config", "data", "ema", "examples", "export",
               "generation", "loops", "metrics", "model", "notebook", "plots", "similarity", "synth",
               "training"}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'beatgan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
