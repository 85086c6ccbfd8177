"""WGAN-GP losses, written once with ``keras.ops`` for every backend.

Gulrajani et al., "Improved Training of Wasserstein GANs" (NeurIPS 2017),
algorithm 1, as used by WaveGAN (Donahue et al., ICLR 2019):

    x_hat  = x + alpha * (G(z) - x),              alpha ~ U[0, 1] per example
    L_D    = mean D(G(z)) - mean D(x) + lambda * mean_i (||grad_x_hat D(x_hat_i)|| - 1)^2
             + epsilon * mean D(x)^2                   (epsilon: drift_weight, 0 by default)
    L_G    = -mean D(G(z))

The drift term (Karras et al., "Progressive Growing of GANs", ICLR 2018) is not in WaveGAN: the
WGAN losses do not change when every score moves by the same amount, so nothing else holds the
critic's scores near 0, and a small epsilon (they use 0.001) does.

The gradient norm is taken per example over time and channels (the 2018
notebook took one norm over the whole batch, which is a different penalty).
The gradients themselves are taken by the backend modules beside this one.

``batch_size``: when a replica of a data-parallel step holds only its shard
of the global batch, every mean over the batch becomes the shard's sum
divided by the global ``batch_size``; summing the replicas' losses (and
their gradients) then gives the global means exactly. None: the mean over
the examples given.
"""

from __future__ import annotations

import keras
from keras import ops

#: Added under the square root of the gradient norm: sqrt is not differentiable
#: at 0, and a zero input gradient (a dead critic) would otherwise give NaN.
NORM_EPSILON = 1e-12


def _at_least_float32(x):
    """Losses in float32 even when the model computes in bfloat16; float64 stays float64."""
    if keras.backend.standardize_dtype(x.dtype) in ("float16", "bfloat16"):
        return ops.cast(x, "float32")
    return x


def batch_mean(x, *, batch_size: int | None = None):
    """Mean over the batch of per-example values (B,) or (B, 1); a shard's share of it if
    ``batch_size`` (the global batch) is given: sum(x) / batch_size."""
    return ops.mean(x) if batch_size is None else ops.sum(x) / batch_size


def interpolate(real, fake, alpha):
    """x_hat = real + alpha * (fake - real); real, fake (B, T, C), alpha (B,) -> (B, T, C)."""
    alpha = ops.cast(ops.reshape(alpha, (-1, 1, 1)), real.dtype)
    return real + alpha * (fake - real)


def safe_norm(grads):
    """Per-example L2 norm over every axis but the first: (B, T, C) -> (B,), finite gradient at 0."""
    axes = tuple(range(1, len(grads.shape)))
    return ops.sqrt(ops.sum(ops.square(grads), axis=axes) + NORM_EPSILON)


def gradient_penalty(input_grads, *, weight: float, batch_size: int | None = None):
    """lambda * mean_i (||g_i|| - 1)^2 for input gradients g (B, T, C) -> scalar."""
    return weight * batch_mean(ops.square(safe_norm(input_grads) - 1.0), batch_size=batch_size)


def critic_losses(d_real, d_fake, input_grads, *, gp_weight: float, drift_weight: float = 0.0,
                  batch_size: int | None = None) -> dict:
    """Critic loss and its parts from scores (B, 1) and input gradients at x_hat (B, T, C).

    Returns scalars: ``d_loss`` (what D minimises: the drift term included when
    ``drift_weight`` > 0), ``gp`` (the weighted penalty) and ``wasserstein``
    (mean D(x) - mean D(G(z)), the critic's estimate of the Wasserstein-1
    distance, up to the Lipschitz constant).
    """
    d_real, d_fake, input_grads = (_at_least_float32(t) for t in (d_real, d_fake, input_grads))
    wasserstein = (batch_mean(d_real, batch_size=batch_size)
                   - batch_mean(d_fake, batch_size=batch_size))
    gp = gradient_penalty(input_grads, weight=gp_weight, batch_size=batch_size)
    d_loss = gp - wasserstein
    if drift_weight:
        d_loss = d_loss + drift_weight * batch_mean(ops.square(d_real), batch_size=batch_size)
    return {"d_loss": d_loss, "gp": gp, "wasserstein": wasserstein}


def generator_loss(d_fake, *, batch_size: int | None = None):
    """-mean D(G(z)) for scores (B, 1) -> scalar."""
    return -batch_mean(_at_least_float32(d_fake), batch_size=batch_size)
