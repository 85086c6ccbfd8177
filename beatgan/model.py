"""WaveGAN generator and discriminator, and the phase-shuffle layer.

WaveGAN is DCGAN flattened to one dimension (Donahue, McAuley and Puckette,
"Adversarial Audio Synthesis", ICLR 2019, appendix A, table 3 and 4): every
2D 5x5 stride-2 convolution becomes a 1D length-25 stride-4 convolution, so
16 latent "frames" grow to 16384 samples in five transposed convolutions.
BeatGAN (2018) uses it unchanged with two audio channels.

Shapes are written ``(time, channels)`` per example; ``d`` is
``config.model_dim``, ``c`` is ``config.channels``. At d = 64, c = 2 the
generator has 19,066,946 parameters and the discriminator 17,429,569.

Longer slices (32768 and 65536 samples) follow WaveGAN v2 (chrisdonahue/wavegan
``wavegan.py``): one more layer with stride 2 or 4; the generator's widths all
double, so that its dense layer is (16, 32d), while the discriminator keeps d-16d
and adds a 32d layer. The extra layer is the generator's last
(upsampling to full length) and the discriminator's last convolution (32 or 64
frames down to 16), and phase shuffle stays after the first four
discriminator layers only.

Kernels are Glorot-uniform (WaveGAN's TensorFlow default), seeded per layer
from ``config.seed``, so building a model twice gives the same weights on one
backend. Layers carry explicit names so that weight files and checkpoints line up
across processes and across the TensorFlow and JAX backends.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Sequence

import keras
import numpy as np
from keras import layers, ops

from . import polyphase, upsampling
from .config import PHASE_SHUFFLE_PER, Config

#: Time steps after the generator's dense layer (and before the discriminator's).
DENSE_STEPS = 16
#: Convolution stride of the five layers every slice length shares.
STRIDE = 4
#: Extra layer's stride for the longer WaveGAN v2 slices.
EXTRA_STRIDE = {16384: None, 32768: 2, 65536: 4}
#: Slope of the discriminator's LeakyReLU (WaveGAN, as DCGAN).
LEAKY_SLOPE = 0.2
#: Discriminator layers followed by phase shuffle (WaveGAN: the first four, for every slice length).
SHUFFLED_LAYERS = 4


#: Set while a JAX training step is traced with the fast kernels (``fast_jax_kernels``).
_FAST_JAX_KERNELS = contextvars.ContextVar("beatgan_fast_jax_kernels", default=False)


@contextlib.contextmanager
def fast_jax_kernels():
    """Trace the models with the fast JAX kernels inside this block.

    Under the JAX backend, strided and transposed convolutions then run as
    stride-1 convolutions over a polyphase reshape (``beatgan.polyphase``) and
    phase shuffle as a reflect pad plus one dynamic slice instead of a gather;
    the outputs are the same (to float rounding) and the weights untouched.
    Elsewhere (TensorFlow, or outside the block) the layers run Keras' own ops,
    which ``beatgan.backends`` keeps as the reference step.
    """
    token = _FAST_JAX_KERNELS.set(True)
    try:
        yield
    finally:
        _FAST_JAX_KERNELS.reset(token)


def _fast_kernels_on() -> bool:
    return _FAST_JAX_KERNELS.get() and keras.backend.backend() == "jax"


#: How many independent inputs one discriminator call holds, stacked on the batch axis
#: (``stacked_inputs``): phase shuffle draws one shift for each.
_STACKED_INPUTS = contextvars.ContextVar("beatgan_stacked_inputs", default=1)


@contextlib.contextmanager
def stacked_inputs(count: int):
    """Call the models inside this block on ``count`` inputs stacked on the batch axis.

    Phase shuffle then splits the batch into ``count`` equal parts and draws one shift for
    each, in order, from its seed generator: the same draws and outputs as ``count`` calls
    one after the other, in one call over a batch ``count`` times larger (wider matrix
    products, fewer kernels). Read while the layers run or are traced.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    token = _STACKED_INPUTS.set(int(count))
    try:
        yield
    finally:
        _STACKED_INPUTS.reset(token)


def layer_strides(slice_len: int) -> tuple[int, ...]:
    """Strides of the convolution stack, generator order: (4, 4, 4, 4, 4[, 2 or 4])."""
    if slice_len not in EXTRA_STRIDE:
        raise ValueError(f"slice_len must be one of {sorted(EXTRA_STRIDE)}, got {slice_len}")
    extra = EXTRA_STRIDE[slice_len]
    return (STRIDE,) * 5 + (() if extra is None else (extra,))


def layer_widths(config: Config) -> tuple[int, ...]:
    """Channel widths from the dense layer down to the last hidden layer, generator order.

    16384 samples: (16d, 8d, 4d, 2d, d); longer slices: (32d, 16d, 8d, 4d, 2d, d).
    """
    n_layers = len(layer_strides(config.slice_len))
    return tuple(config.model_dim * 2 ** (n_layers - 1 - i) for i in range(n_layers))


def _seed(config: Config, offset: int) -> int:
    """A seed for one layer: distinct per layer (offset < 1000) and per ``config.seed``."""
    return config.seed * 1000 + offset


def _glorot(config: Config, offset: int) -> keras.initializers.Initializer:
    """Seeded Glorot-uniform kernels (the TF default WaveGAN used), so a config rebuilds its weights."""
    return keras.initializers.GlorotUniform(seed=_seed(config, offset))


def _policy(config: Config) -> str:
    """Dtype policy of the hidden layers: bfloat16 compute, float32 variables when mixed."""
    return "mixed_bfloat16" if config.mixed_precision else "float32"


class PhaseShuffle(layers.Layer):
    """Shift the time axis by a random integer in [-n, n], reflect-padded (WaveGAN sec. 3.3).

    Needs a static time length greater than n.

    Input and output are ``(batch, time, channels)``. ``per="batch"`` draws one
    shift for the whole batch on every training call, as WaveGAN's reference code
    does; ``per="example"`` draws one for each example, so that no shift is shared
    by a whole batch and the critic's estimate does not swing with it. A critic
    trained that way looked at the sub-bass again, with no edge to show for it
    (docs/training-runs/, 2026-11-29): batch is the default. At inference
    (``training`` false) or with ``n = 0`` the layer is the identity.

    The shift comes from ``keras.random`` with a ``SeedGenerator`` owned by the
    layer, so it is reproducible from ``seed``, its state is one of the
    layer's variables (checkpointed with the model), and it advances inside
    ``tf.function`` and inside jitted JAX (``stateless_call`` carries it).
    With the batch split over devices the shift stays one draw for the global
    batch: under JAX the jitted step is one SPMD program, and under a
    TensorFlow ``MirroredStrategy`` the state is a mirrored variable and the
    draw stateless, so every replica draws the same shift and advances its copy alike
    (per example: the same shifts for the examples of each replica's part of the batch).
    """

    def __init__(self, n: int, *, seed: int | None = None, per: str = "batch", **kwargs):
        super().__init__(**kwargs)
        if n < 0:
            raise ValueError(f"phase shuffle n must be >= 0, got {n}")
        if per not in PHASE_SHUFFLE_PER:
            raise ValueError(f"phase shuffle per must be one of {PHASE_SHUFFLE_PER}, got {per!r}")
        self.n = int(n)
        self.seed = seed
        self.per = per
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.n == 0:
            return inputs
        count = _STACKED_INPUTS.get()
        parts = [inputs] if count == 1 else ops.split(inputs, count, axis=0)
        # Drawn part by part, in order, as separate calls would draw them.
        shifted = [self._shifted(part, self._draw()) if self.per == "batch"
                   else self._shifted_each(part, self._draw(ops.shape(part)[0])) for part in parts]
        return shifted[0] if count == 1 else ops.concatenate(shifted, axis=0)

    def _draw(self, count: int | None = None):
        """The next shift in [-n, n] (``count`` None), or ``count`` of them, from the layer's seed
        generator (advances it)."""
        shape = () if count is None else (count,)
        return keras.random.randint(shape, minval=-self.n, maxval=self.n + 1, dtype="int32",
                                    seed=self.seed_generator)

    def _shifted_each(self, inputs, shifts):
        """Example b shifted by ``shifts[b]`` (int32, shape (batch,)), reflected at the edges."""
        if _fast_kernels_on():
            # The 2n + 1 shifted copies, each example taken from its own by a one-hot weight:
            # slices and products, whose derivatives need no scatter (as ``_shifted``'s).
            choice = ops.one_hot(shifts + self.n, 2 * self.n + 1, dtype=inputs.dtype)
            out = 0
            for k, shift in enumerate(range(-self.n, self.n + 1)):
                out = out + choice[:, k, None, None] * self._shifted(inputs, shift)
            return out
        source = _reflected_sources(inputs.shape[1], shifts[:, None])  # (batch, time)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf
            # One gather per example's row: on a 2-core CPU about 5x faster with the gradient
            # penalty's second derivative than Keras' take_along_axis (a gather_nd) or the select.
            return tf.gather(inputs, source, axis=1, batch_dims=1)
        return ops.take_along_axis(inputs, source[:, :, None], axis=1)

    def _shifted(self, inputs, shift):
        n = self.n
        time = inputs.shape[1]
        # out[t] = x[reflect(t - shift)]: one gather with reflected indices. (A pad and a
        # dynamic slice would do the same, but TF's XLA has no second derivative of a
        # dynamic slice, and the gradient penalty needs one.)
        if _fast_kernels_on():  # JAX differentiates a slice twice; its gradients need no scatter
            padded = ops.pad(inputs, ((0, 0), (n, n), (0, 0)), mode="reflect")
            return ops.slice(padded, (0, n - shift, 0), (inputs.shape[0], time, inputs.shape[2]))
        return ops.take(inputs, _reflected_sources(time, shift), axis=1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "n": self.n, "seed": self.seed, "per": self.per}


def _reflected_sources(time: int, shift):
    """Source index of each output step t, ``reflect(t - shift)`` within [0, time): ``(time,)``
    for a scalar shift, ``(batch, time)`` for shifts of shape ``(batch, 1)``."""
    source = ops.abs(ops.arange(time, dtype="int32") - shift)  # reflect at the start
    return (time - 1) - ops.abs((time - 1) - source)  # reflect at the end


def reseed_phase_shuffle(discriminator: keras.Model, stream: Sequence[int]) -> None:
    """Start each phase-shuffle layer of ``discriminator`` on a shift stream of ``stream``'s own.

    A new critic's shifts follow ``config.seed`` alone, so every critic built for a seed draws
    the same shift at the same iteration, and a rollback, which restores the layers' state with
    the checkpoint, replays them. The critic's estimate swings with those shifts: in two runs of
    different batches its swings correlated 0.69-0.93 iteration by iteration (docs/training-runs/,
    2026-11-28). Layer i gets the seed ``SeedSequence([*stream, i])`` (below 2**31) and a fresh
    counter; ``stream`` is a run's sampler stream (``training.draw_stream``).
    """
    shufflers = [layer for layer in discriminator.layers if isinstance(layer, PhaseShuffle)]
    for i, layer in enumerate(shufflers):
        seed = int(np.random.SeedSequence([*stream, i]).generate_state(1, np.uint32)[0] >> 1)
        state = layer.seed_generator.state
        state.assign(ops.convert_to_tensor(np.array([seed, 0]), dtype=state.dtype))


# These keep Keras' class names on purpose: Keras names the entries of a .weights.h5 file
# after each layer's class, so files written with the stock layers load unchanged.
class Conv1D(layers.Conv1D):
    """``keras.layers.Conv1D``; inside ``fast_jax_kernels`` a stride > 1 "same" convolution
    runs as a polyphase stride-1 one (same weights, same output)."""

    def call(self, inputs):
        stride = self.strides[0]
        if not (_fast_kernels_on() and stride > 1 and self.padding == "same"
                and self.dilation_rate == (1,) and self.groups == 1
                and self.data_format == "channels_last"):
            return super().call(inputs)
        outputs = polyphase.strided_conv1d_same(inputs, self.kernel, stride=stride)
        if self.use_bias:
            outputs = ops.add(outputs, ops.reshape(self.bias, (1, 1, self.filters)))
        return outputs if self.activation is None else self.activation(outputs)


class Conv1DTranspose(layers.Conv1DTranspose):
    """``keras.layers.Conv1DTranspose``; inside ``fast_jax_kernels`` a "same" transposed
    convolution runs as a polyphase stride-1 one (same weights, same output).

    ``upsample`` "nearest" or "linear" interpolates before the learned kernel: the layer
    convolves with ``upsampling.fold_filter(kernel, h)``, ``len(h) - 1`` taps longer than the
    learned kernel (``beatgan.upsampling``). "transposed" (default) is the plain layer.
    """

    def __init__(self, *args, upsample: str = "transposed", **kwargs):
        super().__init__(*args, **kwargs)
        self.upsample = upsample
        self._filter = upsampling.interpolation_filter(upsample, self.strides[0])

    def get_config(self):
        return {**super().get_config(), "upsample": self.upsample}

    def folded_kernel(self):
        """The kernel the layer convolves with ``(taps, C_out, C_in)``: the learned one, with
        the interpolation filter folded in unless ``upsample`` is "transposed"."""
        return self.kernel if self._filter is None else upsampling.fold_filter(self.kernel, self._filter)

    def call(self, inputs):
        fast = (_fast_kernels_on() and self.padding == "same" and self.output_padding is None
                and self.dilation_rate == (1,) and self.data_format == "channels_last")
        if self._filter is None and not fast:
            return super().call(inputs)
        if fast:
            outputs = polyphase.transposed_conv1d_same(inputs, self.folded_kernel(),
                                                       stride=self.strides[0])
        else:  # Keras' own op, as super().call, on the folded kernel
            outputs = ops.conv_transpose(inputs, self.folded_kernel(), strides=list(self.strides),
                                         padding=self.padding, output_padding=self.output_padding,
                                         data_format=self.data_format,
                                         dilation_rate=self.dilation_rate)
        if self.use_bias:
            outputs = ops.add(outputs, ops.reshape(self.bias, (1, 1, self.filters)))
        return outputs if self.activation is None else self.activation(outputs)


def build_generator(config: Config) -> keras.Model:
    """WaveGAN generator: z of shape (latent_dim,) in [-1, 1] -> audio (slice_len, c) in [-1, 1].

    Dense to (16, 16d), ReLU, then transposed convolutions (kernel
    ``kernel_len``, stride 4) halving the width each time, ReLU between, tanh
    last; with ``config.upsample`` "nearest" or "linear" each one interpolates
    first (``beatgan.upsampling``). For d = 64, c = 2, slice 16384::

        (100,) -> (16, 1024) -> (64, 512) -> (256, 256) -> (1024, 128)
               -> (4096, 64) -> (16384, 2)
    """
    policy = _policy(config)
    strides = layer_strides(config.slice_len)
    widths = layer_widths(config)
    z = keras.Input((config.latent_dim,), name="z")
    # (latent_dim,) -> (16 * 16d,) -> (16, 16d)
    x = layers.Dense(DENSE_STEPS * widths[0], kernel_initializer=_glorot(config, 0),
                     dtype=policy, name="g_dense")(z)
    x = layers.Reshape((DENSE_STEPS, widths[0]), name="g_reshape")(x)
    x = layers.ReLU(dtype=policy, name="g_dense_relu")(x)
    # Each layer: (t, w) -> (t * stride, w / 2); the last one -> (slice_len, c).
    out_widths = widths[1:] + (config.channels,)
    for i, (stride, width) in enumerate(zip(strides, out_widths)):
        last = i == len(strides) - 1
        taps = upsampling.learned_taps(config.upsample, stride, config.kernel_len)
        # The seed's layer is built with the stock layer's arguments only (tests swap it in).
        interpolate = {} if config.upsample == "transposed" else {"upsample": config.upsample}
        x = Conv1DTranspose(width, taps, strides=stride, padding="same",
                            kernel_initializer=_glorot(config, 1 + i),
                            dtype=policy, name=f"g_upconv{i}", **interpolate)(x)
        if not last:
            x = layers.ReLU(dtype=policy, name=f"g_relu{i}")(x)
    # tanh in float32 so that the audio leaves the model as float32 even in mixed precision.
    audio = layers.Activation("tanh", dtype="float32", name="g_tanh")(x)
    return keras.Model(z, audio, name="generator")


def build_discriminator(config: Config) -> keras.Model:
    """WaveGAN discriminator: audio (slice_len, c) -> one unbounded critic score (1,).

    Convolutions (kernel ``kernel_len``, stride 4, doubling the width),
    LeakyReLU(0.2), phase shuffle (n = ``config.phase_shuffle``) after the
    first four convolutions, then a dense layer. For d = 64, c = 2::

        (16384, 2) -> (4096, 64) -> (1024, 128) -> (256, 256) -> (64, 512)
                   -> (16, 1024) -> (16384,) -> (1,)

    Longer slices add a last convolution of stride 2 (32768) or 4 (65536) to
    32d, as WaveGAN v2: (32768, 2) -> (8192, 64) -> ... -> (32, 1024) -> (16, 2048).

    Each phase-shuffle layer has its own seed, derived from ``config.seed``, and draws one
    shift per batch or per example (``config.phase_shuffle_per``).
    """
    policy = _policy(config)
    strides = layer_strides(config.slice_len)  # (4, 4, 4, 4, 4[, 2 or 4]): extra layer last
    widths = layer_widths(config)[::-1]  # (d, 2d, 4d, 8d, 16d[, 32d])
    audio = keras.Input((config.slice_len, config.channels), name="audio")
    x = audio
    # Each layer: (t, w) -> (t / stride, 2w); the first one (slice_len, c) -> (slice_len / 4, d).
    # (WaveGAN v2 adds the extra stride-2/4 layer at the end, where it costs least.)
    for i, (stride, width) in enumerate(zip(strides, widths)):
        x = Conv1D(width, config.kernel_len, strides=stride, padding="same",
                          kernel_initializer=_glorot(config, 100 + i),
                          dtype=policy, name=f"d_conv{i}")(x)
        x = layers.LeakyReLU(negative_slope=LEAKY_SLOPE, dtype=policy, name=f"d_lrelu{i}")(x)
        if i < SHUFFLED_LAYERS:
            x = PhaseShuffle(config.phase_shuffle, seed=_seed(config, 200 + i),
                             per=config.phase_shuffle_per, dtype=policy,
                             name=f"d_phase_shuffle{i}")(x)
    # (16, 16d) -> (256d,) -> (1,) (or (16, 32d) -> (512d,)); the score in float32 so that losses are float32.
    x = layers.Flatten(name="d_flatten")(x)
    score = layers.Dense(1, kernel_initializer=_glorot(config, 150), dtype="float32",
                         name="d_score")(x)
    return keras.Model(audio, score, name="discriminator")
