"""WGAN-GP steps on the TensorFlow backend: nested ``GradientTape`` in ``tf.function``.

The gradient penalty needs a second-order gradient (Gulrajani et al. 2017):
the inner tape takes grad_x_hat D(x_hat), the outer tape, which recorded the
inner computation, differentiates the penalty on it w.r.t. the weights.
"""

from __future__ import annotations

import tensorflow as tf

from . import losses


class TensorFlowSteps:
    """D and G updates compiled with ``tf.function`` (XLA when ``jit_compile``)."""

    def __init__(self, generator, discriminator, g_optimizer, d_optimizer, data, *,
                 gp_weight: float, jit_compile: bool = False):
        self.generator = generator
        self.discriminator = discriminator
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.gp_weight = float(gp_weight)
        self.data = tf.convert_to_tensor(data, dtype=tf.float32)
        self._d_step = tf.function(self._d_step_eager, jit_compile=jit_compile)
        self._g_step = tf.function(self._g_step_eager, jit_compile=jit_compile)

    def input_gradients(self, x_hat):
        """grad_x D(x) at x_hat (B, T, C); each example's score depends only on its own input."""
        with tf.GradientTape() as tape:
            tape.watch(x_hat)
            scores = self.discriminator(x_hat, training=True)
        return tape.gradient(scores, x_hat)

    def critic_loss_and_grads(self, real, fake, alpha) -> tuple[dict, list]:
        """Critic losses and d(d_loss)/d(D's trainable weights) at the current weights.

        real, fake (B, T, C); alpha (B,). Runs eagerly when called directly.
        """
        x_hat = losses.interpolate(real, fake, alpha)
        weights = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            input_grads = self.input_gradients(x_hat)  # recorded: the penalty is second order
            d_real = self.discriminator(real, training=True)
            d_fake = self.discriminator(fake, training=True)
            out = losses.critic_losses(d_real, d_fake, input_grads, gp_weight=self.gp_weight)
        return out, tape.gradient(out["d_loss"], weights)

    def _d_step_eager(self, data, indices, z, alpha):
        real = tf.gather(data, indices)
        fake = self.generator(z, training=True)  # G is held fixed: outside the tape
        out, grads = self.critic_loss_and_grads(real, fake, alpha)
        self.d_optimizer.apply(grads, self.discriminator.trainable_variables)
        return out

    def _g_step_eager(self, z):
        weights = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            d_fake = self.discriminator(self.generator(z, training=True), training=True)
            g_loss = losses.generator_loss(d_fake)
        self.g_optimizer.apply(tape.gradient(g_loss, weights), weights)
        return {"g_loss": g_loss}

    def d_step(self, indices, z, alpha) -> dict:
        return self._d_step(self.data, tf.convert_to_tensor(indices, tf.int32),
                            tf.convert_to_tensor(z, tf.float32),
                            tf.convert_to_tensor(alpha, tf.float32))

    def g_step(self, z) -> dict:
        return self._g_step(tf.convert_to_tensor(z, tf.float32))

    def sync_to_models(self) -> None:
        """Nothing to do: the steps update the Keras variables in place."""
