"""WGAN-GP steps on the JAX backend: ``jax.grad`` of ``stateless_call`` under ``jax.jit``.

The weights live in a tuple of arrays that each jitted step takes and
returns; the Keras variables are only written back by ``sync_to_models``.
The gradient penalty's second-order gradient (Gulrajani et al. 2017) is
``jax.grad`` of a loss that itself contains ``jax.grad`` w.r.t. the input.
Non-trainable state (the phase-shuffle seeds) is threaded through every call.

With a ``keras.distribution.DataParallel`` (``beatgan.backends.parallel``) the
state and the data are replicated over its device mesh and the batch inputs
sharded on their first axis; the same jitted functions then compile to one
SPMD program over the devices, so the losses, the per-example penalty and the
phase-shuffle draws are exactly the single-device program's, partitioned.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from ..model import fast_jax_kernels, stacked_inputs
from . import losses


def _values(variables) -> list:
    return [v.value for v in variables]


class JaxSteps:
    """D and G updates as pure functions of a state tuple, compiled with ``jax.jit``."""

    def __init__(self, generator, discriminator, g_optimizer, d_optimizer, data, *,
                 gp_weight: float, drift_weight: float = 0.0, distribution=None):
        self.generator = generator
        self.discriminator = discriminator
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.gp_weight = float(gp_weight)
        self.drift_weight = float(drift_weight)
        if distribution is None:
            self._replicated = self._batch_sharded = None
            self.data = jnp.asarray(data, dtype=jnp.float32)
            self.state = self._read_state()
            self._d_step = jax.jit(self._d_step_pure)
            self._g_step = jax.jit(self._g_step_pure)
            return
        # Data parallel: weights, optimizer state and data on every device, batches split.
        mesh = distribution.device_mesh.backend_mesh
        self._replicated = NamedSharding(mesh, PartitionSpec())
        self._batch_sharded = NamedSharding(mesh, PartitionSpec(distribution.batch_dim_name))
        self.data = jax.device_put(jnp.asarray(data, dtype=jnp.float32), self._replicated)
        self.state = self._read_state()
        self._d_step = jax.jit(self._d_step_pure, out_shardings=self._replicated)
        self._g_step = jax.jit(self._g_step_pure, out_shardings=self._replicated)

    # --- state <-> Keras variables ---------------------------------------------
    def _groups(self):
        g, d = self.generator, self.discriminator
        return (g.trainable_variables, g.non_trainable_variables,
                d.trainable_variables, d.non_trainable_variables,
                self.g_optimizer.variables, self.d_optimizer.variables)

    def _read_state(self) -> tuple:
        state = tuple(_values(group) for group in self._groups())
        return state if self._replicated is None else jax.device_put(state, self._replicated)

    def sync_to_models(self) -> None:
        """Write the state tuple into the Keras variables (before saving or sampling)."""
        for group, values in zip(self._groups(), self.state):
            for variable, value in zip(group, values):
                variable.assign(value)

    def reload_from_models(self) -> None:
        """Read the state tuple from the Keras variables again (after a checkpoint was restored
        into them)."""
        self.state = self._read_state()

    # --- pure steps ------------------------------------------------------------
    def _critic(self, d_tr, d_nt, x):
        return self.discriminator.stateless_call(d_tr, d_nt, x, training=True)

    def _d_loss(self, d_tr, d_nt, real, fake, x_hat):
        def score_sum(x, nt):  # each example's score depends only on its own input
            scores, nt = self._critic(d_tr, nt, x)
            return jnp.sum(scores), nt  # the score layer is float32 (or float64)

        input_grads, d_nt = jax.grad(score_sum, has_aux=True)(x_hat, d_nt)
        d_real, d_fake, d_nt = self._real_and_fake_scores(d_tr, d_nt, real, fake)
        out = losses.critic_losses(d_real, d_fake, input_grads, gp_weight=self.gp_weight,
                                   drift_weight=self.drift_weight)
        return out["d_loss"], (out, d_nt)

    def _real_and_fake_scores(self, d_tr, d_nt, real, fake):
        """D(real), D(fake) (B, 1) and the advanced state: two critic calls, real first."""
        d_real, d_nt = self._critic(d_tr, d_nt, real)
        d_fake, d_nt = self._critic(d_tr, d_nt, fake)
        return d_real, d_fake, d_nt

    def _d_step_pure(self, state, data, indices, z, alpha):
        g_tr, g_nt, d_tr, d_nt, g_opt, d_opt = state
        real = data[indices]
        fake, g_nt = self.generator.stateless_call(g_tr, g_nt, z, training=True)
        x_hat = losses.interpolate(real, fake, alpha)
        grads, (out, d_nt) = jax.grad(self._d_loss, has_aux=True)(d_tr, d_nt, real, fake, x_hat)
        d_tr, d_opt = self.d_optimizer.stateless_apply(d_opt, grads, d_tr)
        return (g_tr, g_nt, d_tr, d_nt, g_opt, d_opt), out

    def _g_loss(self, g_tr, g_nt, d_tr, d_nt, z):
        fake, g_nt = self.generator.stateless_call(g_tr, g_nt, z, training=True)
        d_fake, d_nt = self._critic(d_tr, d_nt, fake)
        return losses.generator_loss(d_fake), (g_nt, d_nt)

    def _g_step_pure(self, state, z):
        g_tr, g_nt, d_tr, d_nt, g_opt, d_opt = state
        (g_loss, (g_nt, d_nt)), grads = jax.value_and_grad(self._g_loss, has_aux=True)(
            g_tr, g_nt, d_tr, d_nt, z)
        g_tr, g_opt = self.g_optimizer.stateless_apply(g_opt, grads, g_tr)
        return (g_tr, g_nt, d_tr, d_nt, g_opt, d_opt), {"g_loss": g_loss}

    # --- public steps ----------------------------------------------------------
    def critic_loss_and_grads(self, real, fake, alpha) -> tuple[dict, list]:
        """Critic losses and d(d_loss)/d(D's trainable weights) at the current state (not jitted).

        real, fake (B, T, C); alpha (B,). The phase-shuffle state is not advanced.
        """
        _, _, d_tr, d_nt, _, _ = self.state
        real, fake = jnp.asarray(real), jnp.asarray(fake)
        x_hat = losses.interpolate(real, fake, jnp.asarray(alpha))
        grads, (out, _) = jax.grad(self._d_loss, has_aux=True)(d_tr, d_nt, real, fake, x_hat)
        return out, grads

    # --- compiled steps ----------------------------------------------------------
    def _batch(self, x, dtype):
        """A global-batch input: on the default device, or split over the mesh's devices."""
        if self._batch_sharded is None:
            return jnp.asarray(x, dtype)
        return jax.device_put(np.asarray(x, dtype), self._batch_sharded)

    def d_step(self, indices, z, alpha) -> dict:
        self.state, out = self._d_step(self.state, self.data, self._batch(indices, jnp.int32),
                                       self._batch(z, jnp.float32), self._batch(alpha, jnp.float32))
        return out

    def g_step(self, z) -> dict:
        self.state, out = self._g_step(self.state, self._batch(z, jnp.float32))
        return out


#: ``unroll=None``: unroll the critic updates into straight-line code on the CPU, where XLA
#: ran the same updates as a loop about 3x slower; keep the loop elsewhere (compiled once).
UNROLL_PLATFORMS = ("cpu",)


class FusedJaxSteps(JaxSteps):
    """A whole iteration, the critic updates and the generator update, as one compiled program.

    The same updates as ``JaxSteps`` (the reference, kept for tests and
    ``fused=False``), and the same results to float rounding, with:

    - the critic updates under ``lax.scan``, all the iteration's draws passed in
      stacked, so one dispatch and no host round trip per iteration;
    - the state tuple donated to the program, which updates it in place;
    - the models traced inside ``beatgan.model.fast_jax_kernels``: polyphase
      stride-1 convolutions and slice-based phase shuffle;
    - with ``merge_critic_passes``, the critic's passes over the real and the generated batch
      as one call over both (``beatgan.model.stacked_inputs``: the same phase-shuffle draws as
      two calls; the penalty's pass over x_hat stays its own, its input gradient is per
      example). Off by default: on a CPU it bought nothing, and on a GPU it is unmeasured
      (``bench/bench_train.py --critic-passes merged``).

    ``d_step`` and ``g_step`` still run the reference kernels one update at a time.
    """

    def __init__(self, generator, discriminator, g_optimizer, d_optimizer, data, *,
                 gp_weight: float, drift_weight: float = 0.0, distribution=None,
                 unroll: bool | None = None, merge_critic_passes: bool = False):
        super().__init__(generator, discriminator, g_optimizer, d_optimizer, data,
                         gp_weight=gp_weight, drift_weight=drift_weight,
                         distribution=distribution)
        self.merge_critic_passes = bool(merge_critic_passes)
        if unroll is None:
            unroll = jax.default_backend() in UNROLL_PLATFORMS
        self.unroll = bool(unroll)
        # Donated buffers are consumed: keep none that a Keras variable also holds.
        self.state = jax.tree.map(jnp.copy, self.state)
        if distribution is None:
            self._stacked_sharded = None
            self._iteration = jax.jit(self._iteration_pure, donate_argnums=0)
        else:
            mesh = distribution.device_mesh.backend_mesh
            self._stacked_sharded = NamedSharding(
                mesh, PartitionSpec(None, distribution.batch_dim_name))
            self._iteration = jax.jit(self._iteration_pure, donate_argnums=0,
                                      out_shardings=self._replicated)

    def _real_and_fake_scores(self, d_tr, d_nt, real, fake):
        if not self.merge_critic_passes:
            return super()._real_and_fake_scores(d_tr, d_nt, real, fake)
        with stacked_inputs(2):  # phase shuffle draws for real, then fake, as two calls would
            scores, d_nt = self._critic(d_tr, d_nt, jnp.concatenate([real, fake], axis=0))
        d_real, d_fake = jnp.split(scores, 2, axis=0)
        return d_real, d_fake, d_nt

    def _iteration_pure(self, state, data, indices, z, alpha, z_g):
        with fast_jax_kernels():  # the layers read this while they are traced
            def critic_update(state, draws):
                return self._d_step_pure(state, data, *draws)

            state, d_out = jax.lax.scan(critic_update, state, (indices, z, alpha),
                                        unroll=self.unroll)
            state, g_out = self._g_step_pure(state, z_g)
        return state, d_out, g_out

    def _stacked(self, x, dtype):
        """Per-update draws stacked on a first axis: (n_d, B, ...); the batch axis split over devices."""
        if self._stacked_sharded is None:
            return jnp.asarray(x, dtype)
        return jax.device_put(np.asarray(x, dtype), self._stacked_sharded)

    def iteration(self, indices, z, alpha, z_g) -> tuple[dict, dict]:
        """n_d critic updates then one generator update, in one call.

        indices int32 (n_d, B), z float32 (n_d, B, latent_dim), alpha float32
        (n_d, B): update i's draws in row i; z_g float32 (B, latent_dim).
        Returns (critic losses, each stacked (n_d,); ``{"g_loss": scalar}``).
        """
        self.state, d_out, g_out = self._iteration(
            self.state, self.data, self._stacked(indices, jnp.int32),
            self._stacked(z, jnp.float32), self._stacked(alpha, jnp.float32),
            self._batch(z_g, jnp.float32))
        return d_out, g_out

    def sync_to_models(self) -> None:
        """Write copies of the state into the Keras variables: the next iteration consumes the state."""
        for group, values in zip(self._groups(), self.state):
            for variable, value in zip(group, values):
                variable.assign(jnp.copy(value))

    def reload_from_models(self) -> None:
        """Read copies of the Keras variables as the state: the next iteration donates them."""
        self.state = jax.tree.map(jnp.copy, self._read_state())
