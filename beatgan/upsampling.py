"""Interpolating upsampling for the generator, folded into its transposed convolutions.

A stride-s transposed convolution inserts s - 1 zeros between input samples and convolves
with a K-tap kernel. Unless each of the kernel's s phases (taps k, k + s, k + 2s, ...)
sums to the same weights, a constant or slowly varying input comes out multiplied by a
period-s pattern: the "checkerboard" artefact (Odena, Dumoulin and Olah, "Deconvolution
and Checkerboard Artifacts", Distill 2016). In audio it is a buzz at multiples of each
layer's sample rate (57, 230, 919 and 3675 Hz at 14.7 kHz), riding on every loud hit.

Interpolating first (nearest or linear) and then convolving with a learned kernel removes
it by construction: interpolation is a zero-insert followed by a fixed filter ``h`` whose
phases each sum to the same value, so the whole layer is a transposed convolution with the
kernel ``h * k`` (full convolution over taps), whose phases all sum to ``sum(k)`` times that
value. Folding ``h`` into the kernel keeps the layer a transposed convolution, so the fast
polyphase kernels and weight files work unchanged; the learned kernel gets
``kernel_len - (len(h) - 1)`` taps so that the folded one has ``kernel_len``: the same cost
and the same "same"-padding alignment as the plain layer.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from .config import UPSAMPLE_METHODS


def interpolation_filter(method: str, stride: int) -> np.ndarray | None:
    """The fixed filter ``(taps,)`` of ``method`` at ``stride``, scaled to unit energy; None
    for "transposed".

    nearest: ``s`` ones (each sample held ``s`` times); linear: the triangle
    ``1 - |n - (s - 1)| / s``, ``2s - 1`` taps. Unit energy (sum of squares 1) keeps the
    folded kernel's scale at initialisation near the learned one's.
    """
    if method == "transposed":
        return None
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if method == "nearest":
        h = np.ones(stride)
    elif method == "linear":
        h = 1.0 - np.abs(np.arange(2 * stride - 1) - (stride - 1)) / stride
    else:
        raise ValueError(f"upsample must be one of {UPSAMPLE_METHODS}, got {method!r}")
    return h / np.sqrt(np.sum(h ** 2))


def learned_taps(method: str, stride: int, kernel_len: int) -> int:
    """Taps of the learned kernel so that the folded kernel has ``kernel_len`` taps."""
    h = interpolation_filter(method, stride)
    taps = kernel_len - (0 if h is None else len(h) - 1)
    if taps < 1:
        raise ValueError(f"kernel_len {kernel_len} is too short for {method} upsampling at "
                         f"stride {stride}: it needs at least {kernel_len - taps + 1} taps")
    return taps


def fold_filter(kernel, h: np.ndarray):
    """Full convolution of ``h`` ``(L,)`` with ``kernel`` ``(K, C_out, C_in)`` over taps:
    ``(K + L - 1, C_out, C_in)``. Differentiable (keras ops), in the kernel's dtype."""
    length = len(h)
    # L shifted, weighted copies of the kernel: out[j] = sum_m h[m] kernel[j - m]. L is at most 7.
    return sum(float(h[m]) * ops.pad(kernel, ((m, length - 1 - m), (0, 0), (0, 0)))
               for m in range(length))


def phase_sum_spread(kernel: np.ndarray, stride: int) -> float:
    """How far a transposed-convolution kernel ``(K, C_out, C_in)`` is from checkerboard-free.

    The root-mean-square difference of its ``stride`` phase sums from their mean, over the
    norm of that mean: 0 when a constant input gives a constant output; about 1.7 for a
    Glorot-initialised plain kernel.
    """
    w = np.asarray(kernel, dtype=np.float64)
    sums = np.stack([w[p::stride].sum(axis=0) for p in range(stride)])
    mean = sums.mean(axis=0)
    return float(np.sqrt(((sums - mean) ** 2).sum(axis=(1, 2)).mean() / (mean ** 2).sum()))
