"""Backend-specific WGAN-GP update steps, chosen by the active Keras backend.

Everything that differs between TensorFlow and JAX lives in this package: how
gradients are taken (``tf.GradientTape`` versus ``jax.grad``), how the step is
compiled (``tf.function`` versus ``jax.jit``) and where the weights live
between steps (Keras variables versus a JAX state tuple). The losses are
written once, in ``losses.py``, with ``keras.ops``.

Both backends return a steps object with the same interface:

``d_step(indices, z, alpha) -> dict``
    one critic update on the batch ``data[indices]`` (indices int32 (B,),
    z float32 (B, latent_dim) uniform [-1, 1], alpha float32 (B,) uniform
    [0, 1]); returns scalar tensors ``d_loss``, ``gp``, ``wasserstein``
    measured before the update.
``g_step(z) -> dict``
    one generator update; returns ``g_loss`` before the update.
``iteration(indices, z, alpha, z_g) -> (dict, dict)`` (fused JAX steps only)
    all critic updates and the generator update at once, draws stacked per
    update; ``run_iteration`` calls it, or the two steps above in turn.
``sync_to_models()``
    make the Keras models and optimizers hold the current weights (needed
    before saving or sampling; a no-op on TensorFlow).
``reload_from_models()``
    the reverse, after a checkpoint was restored into the Keras variables
    (a no-op on TensorFlow).

``generator_weights(steps)`` (a function here, not a method) returns G's
trainable weights as the steps hold them now, without a host round trip.

Data parallelism over several devices (``parallel.py``) keeps this
interface: the inputs are still the global batch, the outputs the global means.
"""

from __future__ import annotations

import keras

from ..config import Config
from .parallel import DataParallelPlan


def make_steps(generator: keras.Model, discriminator: keras.Model,
               g_optimizer: keras.optimizers.Optimizer, d_optimizer: keras.optimizers.Optimizer,
               data, *, config: Config, jit_compile: bool = False,
               parallel: DataParallelPlan | None = None, fused: bool = True):
    """Compiled D and G steps for the active backend.

    ``data`` (n, slice_len, channels) float32 is moved to the device once; each
    step gathers its batch there from the indices, so that only indices and
    noise cross from the host. Optimizers must be built before this call.
    ``jit_compile`` asks TensorFlow for XLA; JAX always compiles with XLA.
    ``parallel`` (``parallel.data_parallel``) splits each batch over its devices;
    the models and optimizers must then have been created inside ``parallel.scope()``.
    ``fused`` (JAX): one compiled program per iteration with the fast kernels
    (``FusedJaxSteps``); False gives the reference ``JaxSteps``. TensorFlow ignores it.
    """
    backend = keras.backend.backend()
    kwargs = dict(gp_weight=config.gp_weight, drift_weight=config.drift_weight)
    if backend == "tensorflow":
        from .tf_steps import MirroredSteps, TensorFlowSteps
        if parallel is None:
            return TensorFlowSteps(generator, discriminator, g_optimizer, d_optimizer, data,
                                   jit_compile=jit_compile, **kwargs)
        if jit_compile:
            raise ValueError("jit_compile (XLA) is not available with several TensorFlow "
                             "devices: MirroredStrategy steps run as plain tf.function")
        return MirroredSteps(generator, discriminator, g_optimizer, d_optimizer, data,
                             strategy=parallel.strategy, batch_size=parallel.batch_size, **kwargs)
    if backend == "jax":
        from .jax_steps import FusedJaxSteps, JaxSteps
        steps_class = FusedJaxSteps if fused else JaxSteps
        return steps_class(generator, discriminator, g_optimizer, d_optimizer, data,
                           distribution=None if parallel is None else parallel.strategy, **kwargs)
    raise NotImplementedError(
        f"training runs on the tensorflow and jax Keras backends, not {backend!r}; "
        "set KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax before importing keras")


def generator_weights(steps) -> list:
    """G's current trainable weights, in ``generator.trainable_variables`` order, on the device.

    TensorFlow steps update the Keras variables in place; JAX steps keep the weights in their
    state tuple, whose first member is G's trainable weights (``sync_to_models`` would copy
    every variable of both models, which is too much to do after each G update).
    """
    state = getattr(steps, "state", None)
    if state is not None:
        return list(state[0])
    return [variable.value for variable in steps.generator.trainable_variables]


def run_iteration(steps, indices, z, alpha, z_g) -> tuple[list[dict] | dict, dict]:
    """One iteration's critic updates then its generator update, with the given draws.

    indices (n_d, B), z (n_d, B, latent_dim), alpha (n_d, B): row i is critic
    update i's batch; z_g (B, latent_dim). Returns (the critic updates' losses:
    a list of dicts, or one dict of arrays stacked (n_d,) from a fused step;
    the generator's losses). Outputs stay on the device.
    """
    if hasattr(steps, "iteration"):
        return steps.iteration(indices, z, alpha, z_g)
    d_outs = [steps.d_step(i, zi, a) for i, zi, a in zip(indices, z, alpha)]
    return d_outs, steps.g_step(z_g)
