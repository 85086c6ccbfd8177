"""An exponential moving average (EMA) of the generator's weights.

Averaging G's weights over its recent updates smooths the oscillation of GAN
training; it is the cheapest known quality gain for short runs (Karras et al.,
"Progressive Growing of GANs", ICLR 2018; Yazici et al., "The Unusual
Effectiveness of Averaging in GAN Training", ICLR 2019). After generator
update ``t`` (1, 2, ...)::

    decay_t = min(ema_decay, (1 + t) / (10 + t))
    ema    <- decay_t * ema + (1 - decay_t) * w

starting from the initial weights. The warm-up term keeps a short run (a few
hundred updates) from averaging mostly over its random start, as TensorFlow's
``ExponentialMovingAverage(num_updates=...)`` does.

The average lives in a second generator built from the same config, so it is
checkpointed, exported and loaded like any generator. Each update is one
compiled program over all of G's weights on the device: no host round trip.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
from keras import ops

from .config import Config
from .model import build_generator

#: The warm-up term's constants: decay_t = (1 + t) / (WARMUP + t) until it reaches ema_decay.
WARMUP = 10.0


def decay_at(step: int, *, decay: float) -> float:
    """The decay applied at generator update ``step`` (1-based): min(decay, (1 + t) / (10 + t))."""
    return min(decay, (1.0 + step) / (WARMUP + step))


def _blend(averages, weights, decay):
    """decay * a + (1 - decay) * w for each pair, written as w + decay * (a - w)."""
    return [ops.add(w, ops.multiply(decay, ops.subtract(a, w))) for a, w in zip(averages, weights)]


def _compiled_blend():
    """``_blend`` compiled for the active backend (one program for all the weights)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        return jax.jit(_blend)
    if backend == "tensorflow":
        import tensorflow as tf
        return tf.function(_blend)
    return _blend


class GeneratorEMA:
    """The moving average of a generator's trainable weights, held in a generator of its own.

    ``model``: the averaged generator, built from the same config as the trained one (inside
    the same distribution scope); it holds the average after ``sync_to_model``. Between syncs
    the average is kept as device arrays, so an update assigns no Keras variables.
    """

    def __init__(self, generator: keras.Model, config: Config):
        self.decay = float(config.ema_decay)
        self.model = build_generator(config)
        self._averages = None  # None: the model's variables hold the average
        self._blend = _compiled_blend()
        self.copy_from(generator)

    def copy_from(self, generator: keras.Model) -> None:
        """Set the average to ``generator``'s current weights (a fresh start)."""
        for average, variable in zip(self.model.variables, generator.variables):
            average.assign(variable.value)
        self._averages = None

    def reload_from_model(self) -> None:
        """Take the average from ``model``'s variables again (after they were restored)."""
        self._averages = None

    def sync_to_model(self) -> None:
        """Write the average into ``model``'s variables (before saving, exporting or sampling)."""
        if self._averages is not None:
            for variable, value in zip(self.model.trainable_variables, self._averages):
                variable.assign(value)

    def update(self, weights: Sequence, *, step: int) -> None:
        """Fold G's trainable weights after generator update ``step`` (1-based) into the average.

        ``weights``: G's trainable weights in ``generator.trainable_variables`` order, as the
        backend holds them (``beatgan.backends.generator_weights``).
        """
        averages = self._averages
        if averages is None:
            averages = [variable.value for variable in self.model.trainable_variables]
        decay = np.float32(decay_at(step, decay=self.decay))  # an array: no retrace per value
        self._averages = self._blend(averages, list(weights), decay)
