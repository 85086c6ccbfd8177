"""beatgan: a WaveGAN that learns to draw drum loops as raw stereo waveforms.

A modern rebuild of BeatGAN (2018): WaveGAN (Donahue et al., "Adversarial Audio
Synthesis", ICLR 2019) trained as a WGAN-GP on the first two beats of EDM drum
loops at 14.7 kHz, with a similarity score for the novelty of what it draws.

The public names below are imported lazily (``lazy_loader``), so ``import beatgan``
stays fast and does not start Keras (its backend is chosen by ``KERAS_BACKEND`` before first use).
Importing it quiets TensorFlow's C++ start-up lines before TensorFlow loads (``beatgan.quiet``).

Modules import only downward through three layers (``tests/test_layers.py`` holds the list):
core (data, model, training, generation, ...) -> evaluation (similarity, novelty, metrics,
plots) -> app (workflows, similarity_examples, cli, notebook, app).
"""

from __future__ import annotations

import lazy_loader

from .quiet import quiet_tensorflow

quiet_tensorflow()

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Config": "config",
    "PRESETS": "config",
    "preset": "config",
    "load_loops": "data",
    "LoopSet": "data",
    "augment": "augmentation",
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
    "novelty_report": "novelty",
    "score_novelty": "novelty",
    "load_generated": "workflows",
    "TrainingReference": "metrics",
    "evaluate": "metrics",
}

# submodules reachable as attributes (``beatgan.synth``) without importing them all up front
_SUBMODULES = {"app", "audio", "audio_files", "augmentation", "checkpoint", "cli", "config", "data",
               "ema", "export", "fileio", "generation", "loop_export", "metrics", "model", "notebook", "novelty",
               "plots", "quiet", "selection", "similarity", "stability", "similarity_examples", "synth", "tempo", "tempo_change",
               "training", "warm_start", "workflows"}

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__, submodules=_SUBMODULES,
    submod_attrs={module: [name for name, m in _EXPORTS.items() if m == module]
                  for module in set(_EXPORTS.values())})
__all__ = sorted(_EXPORTS) + ["__version__"]
