"""Strided and transposed 1D convolutions as stride-1 convolutions over a polyphase reshape.

A stride-s convolution with a K-tap kernel reads each output's input window
from s interleaved phases. Folding the time axis by s (``(T, C) -> (T/s, s*C)``,
space-to-depth) turns it into a stride-1 convolution of ceil(K/s) taps over
s*C channels; a stride-s transposed convolution likewise becomes a stride-1
convolution to s*C_out channels followed by the inverse fold. The weights are
the layer's own kernel, zero-padded to s*ceil(K/s) taps and reshaped inside the
computation, so weight tensors and files do not change.

Why: XLA lowers a transposed convolution (and the input gradient of a strided
one) to a convolution over an input dilated with s - 1 zeros between samples,
and the weight gradients of strided convolutions to window-dilated ones; the
gradient penalty differentiates all of them twice. Stride-1 convolutions have
stride-1 derivatives only, dense problems the matrix units run well, for
s*ceil(K/s)/K more multiply-adds (28/25 at K = 25, s = 4) instead of up to s
times more in the dilated forms.

Shapes are ``(batch, time, channels)`` (Keras channels_last). Padding follows
Keras "same" under JAX: XLA's SAME rule for the convolution, and Keras'
``conv_transpose`` rule (output length ``time * stride``) for the transposed one.
"""

from __future__ import annotations

from keras import ops


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def strided_conv1d_same(x, kernel, *, stride: int):
    """Keras ``Conv1D(padding="same", strides=stride)`` without bias: (B, T, C) -> (B, T/s, C_out).

    kernel (K, C, C_out). T must be a multiple of ``stride``.
    """
    _, time, channels = x.shape
    taps, _, filters = kernel.shape
    if time % stride:
        raise ValueError(f"time length {time} is not a multiple of stride {stride}")
    out_len = time // stride
    folded_taps = _ceil_div(taps, stride)  # J
    left = max((out_len - 1) * stride + taps - time, 0) // 2  # XLA SAME puts the odd sample right
    right = stride * (out_len + folded_taps - 1) - time - left
    x = ops.pad(x, ((0, 0), (left, right), (0, 0)))
    # (B, s * (out + J - 1), C) -> (B, out + J - 1, s * C): frame o holds samples s*o .. s*o + s - 1.
    frames = ops.reshape(x, (-1, out_len + folded_taps - 1, stride * channels))
    # (K, C, C_out) -> (s * J, C, C_out) -> (J, s * C, C_out): tap k = s * q + r goes to (q, r).
    kernel = ops.pad(kernel, ((0, stride * folded_taps - taps), (0, 0), (0, 0)))
    kernel = ops.reshape(kernel, (folded_taps, stride * channels, filters))
    return ops.conv(frames, kernel, strides=1, padding="valid")


def transposed_conv1d_same(x, kernel, *, stride: int):
    """Keras ``Conv1DTranspose(padding="same", strides=stride)`` without bias: (B, T, C) -> (B, s*T, C_out).

    kernel (K, C_out, C), Keras' transposed-kernel layout. Output sample
    t = s*i + k - p receives x[i] * kernel[k], with p = K - 1 - left and
    left = Keras' left padding of the zero-dilated input.
    """
    _, time, _ = x.shape
    taps, filters, channels = kernel.shape
    pad_len = stride + taps - 2  # Keras: the total padding that makes the output s * T long
    left = min(pad_len // 2 + pad_len % 2, taps - 1)
    offset = taps - 1 - left  # p
    # Output t = s*m + r takes x[m - q] * kernel[s*q + r + p] over the q where that tap exists.
    q_min = -((stride - 1 + offset) // stride)  # ceil((-(s - 1) - p) / s)
    q_max = (taps - 1 - offset) // stride
    folded_taps = q_max - q_min + 1  # J
    first = stride * q_min + offset  # the kernel index of (q_min, r = 0); may be negative
    last = stride * q_max + stride - 1 + offset
    kernel = ops.pad(kernel, ((max(-first, 0), max(last - (taps - 1), 0)), (0, 0), (0, 0)))
    if first > 0:
        kernel = kernel[first:]
    # (s * J, C_out, C) -> (J, s, C_out, C), reversed over q (a correlation reads x[m + j]),
    # -> (J, C, s * C_out): output channel r * C_out + o is phase r of channel o.
    kernel = ops.flip(ops.reshape(kernel, (folded_taps, stride, filters, channels)), axis=0)
    kernel = ops.reshape(ops.transpose(kernel, (0, 3, 1, 2)), (folded_taps, channels, stride * filters))
    x = ops.pad(x, ((0, 0), (q_max, -q_min), (0, 0)))
    y = ops.conv(x, kernel, strides=1, padding="valid")  # (B, T, s * C_out)
    return ops.reshape(y, (-1, time * stride, filters))
