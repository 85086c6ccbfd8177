"""WGAN-GP steps on the TensorFlow backend: nested ``GradientTape`` in ``tf.function``.

The gradient penalty needs a second-order gradient (Gulrajani et al. 2017):
the inner tape takes grad_x_hat D(x_hat), the outer tape, which recorded the
inner computation, differentiates the penalty on it w.r.t. the weights.

``MirroredSteps`` runs the same step on every replica of a
``tf.distribute.MirroredStrategy``, each on its shard of the global batch
(``beatgan.backends.parallel``).
"""

from __future__ import annotations

import tensorflow as tf

from . import losses


class TensorFlowSteps:
    """D and G updates compiled with ``tf.function`` (XLA when ``jit_compile``)."""

    def __init__(self, generator, discriminator, g_optimizer, d_optimizer, data, *,
                 gp_weight: float, drift_weight: float = 0.0, jit_compile: bool = False):
        self.generator = generator
        self.discriminator = discriminator
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.gp_weight = float(gp_weight)
        self.drift_weight = float(drift_weight)
        self.loss_batch_size = None  # the global batch when a replica holds only a shard
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
            out = losses.critic_losses(d_real, d_fake, input_grads, gp_weight=self.gp_weight,
                                       drift_weight=self.drift_weight,
                                       batch_size=self.loss_batch_size)
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
            g_loss = losses.generator_loss(d_fake, batch_size=self.loss_batch_size)
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

    def reload_from_models(self) -> None:
        """Nothing to do: the Keras variables are the state (a restore has written them)."""


class MirroredSteps(TensorFlowSteps):
    """The same D and G updates, each global batch split over a ``MirroredStrategy``'s replicas.

    Replica r takes examples [r * b, (r + 1) * b) of the global batch (b = the
    per-replica batch) and computes its losses as sums over them divided by the
    global batch; the optimizer all-reduces (sums) the gradients, so every
    replica applies the gradient of the global mean. The returned losses are
    the replicas' sums: the global means. The models and optimizers must have
    been built (and the optimizers created) inside ``strategy.scope()``.
    """

    def __init__(self, generator, discriminator, g_optimizer, d_optimizer, data, *,
                 gp_weight: float, strategy: tf.distribute.Strategy, batch_size: int,
                 drift_weight: float = 0.0):
        self.generator = generator
        self.discriminator = discriminator
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.gp_weight = float(gp_weight)
        self.drift_weight = float(drift_weight)
        self.strategy = strategy
        self.loss_batch_size = int(batch_size)
        self.replica_batch = self.loss_batch_size // strategy.num_replicas_in_sync
        with strategy.scope():  # a mirrored variable: one copy of the data on every device
            self.data = tf.Variable(tf.convert_to_tensor(data, tf.float32), trainable=False,
                                    name="training_data")
        self._d_step = tf.function(self._d_step_replicated)
        self._g_step = tf.function(self._g_step_replicated)

    def _shard(self, x):
        """This replica's consecutive share of a global-batch tensor (inside ``strategy.run``)."""
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        start = tf.cast(replica, tf.int32) * self.replica_batch
        return x[start:start + self.replica_batch]

    def _sum_over_replicas(self, per_replica: dict) -> dict:
        return {key: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for key, value in per_replica.items()}

    def _d_step_replicated(self, indices, z, alpha):
        def replica_step(indices, z, alpha):
            return self._d_step_eager(self.data, self._shard(indices), self._shard(z),
                                      self._shard(alpha))
        return self._sum_over_replicas(self.strategy.run(replica_step, args=(indices, z, alpha)))

    def _g_step_replicated(self, z):
        def replica_step(z):
            return self._g_step_eager(self._shard(z))
        return self._sum_over_replicas(self.strategy.run(replica_step, args=(z,)))

    def d_step(self, indices, z, alpha) -> dict:
        return self._d_step(tf.convert_to_tensor(indices, tf.int32),
                            tf.convert_to_tensor(z, tf.float32),
                            tf.convert_to_tensor(alpha, tf.float32))
