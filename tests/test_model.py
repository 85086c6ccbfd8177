"""WaveGAN models: parameter counts, shapes, ranges, and the phase-shuffle layer."""

import numpy as np
import pytest

from beatgan.config import Config


@pytest.fixture(scope="module")
def models_module():
    from beatgan import model
    return model


def test_parameter_counts_match_wavegan_at_d64(models_module):
    config = Config()  # d = 64, c = 2, slice 16384: the seed's model
    assert models_module.build_generator(config).count_params() == 19_066_946
    assert models_module.build_discriminator(config).count_params() == 17_429_569


@pytest.mark.parametrize("slice_len", [16384, 32768, 65536])
def test_shapes_and_output_range(models_module, slice_len, rng):
    config = Config(model_dim=2, slice_len=slice_len)
    generator = models_module.build_generator(config)
    discriminator = models_module.build_discriminator(config)
    z = rng.uniform(-1, 1, (3, config.latent_dim)).astype("float32")
    audio = np.asarray(generator(z))
    assert audio.shape == (3, slice_len, config.channels)
    assert audio.dtype == np.float32
    assert np.all(np.abs(audio) <= 1.0)
    assert np.asarray(discriminator(audio)).shape == (3, 1)


def test_longer_slices_add_one_layer_and_double_widths(models_module):
    assert models_module.layer_strides(16384) == (4, 4, 4, 4, 4)
    assert models_module.layer_strides(32768) == (4, 4, 4, 4, 4, 2)
    assert models_module.layer_strides(65536) == (4, 4, 4, 4, 4, 4)
    assert models_module.layer_widths(Config(model_dim=1)) == (16, 8, 4, 2, 1)
    assert models_module.layer_widths(Config(model_dim=1, slice_len=32768)) == (32, 16, 8, 4, 2, 1)


def test_phase_shuffle_shifts_time_axis_with_reflection(models_module):
    n = 2
    layer = models_module.PhaseShuffle(n, seed=3)
    x = np.tile(np.arange(10, dtype="float32"), (2, 1))[:, :, None] + np.array([0, 100])[:, None, None]
    seen = set()
    for _ in range(40):
        y = np.asarray(layer(x, training=True))
        # Recover the shift from the middle, which is untouched by the padding.
        shift = int(x[0, 5, 0] - y[0, 5, 0])
        assert -n <= shift <= n
        seen.add(shift)
        # The whole batch moves by the same shift (per batch, as WaveGAN's code does).
        np.testing.assert_array_equal(y[1] - y[0], np.full((10, 1), 100.0))
        # out[t] = x[t - shift], reflected at the edges.
        t = np.arange(10)
        src = np.abs(t - shift)
        src = np.where(src > 9, 18 - src, src)
        np.testing.assert_array_equal(y[0, :, 0], x[0, src, 0])
    assert seen == set(range(-n, n + 1)), "every shift in [-n, n] should appear"


@pytest.mark.parametrize("fast", [False, True], ids=["keras ops", "fast kernels"])
def test_phase_shuffle_per_example_shifts_each_example_by_its_own_draw(models_module, fast):
    import contextlib

    n, batch, time = 2, 64, 10
    layer = models_module.PhaseShuffle(n, seed=3, per="example")
    # Example b holds 100 b + t in both channels: its shift is readable at any inner t.
    x = np.repeat(np.arange(time, dtype="float32")[None, :, None]
                  + 100 * np.arange(batch, dtype="float32")[:, None, None], 2, axis=2)
    with models_module.fast_jax_kernels() if fast else contextlib.nullcontext():
        y = np.asarray(layer(x, training=True))
    shifts = (x[:, 5, 0] - y[:, 5, 0]).astype(int)
    assert set(shifts.tolist()) == set(range(-n, n + 1))  # 64 draws of 5 values: all seen
    t = np.arange(time)
    for b, shift in enumerate(shifts):  # out[b, t] = x[b, t - shift_b], reflected at the edges
        source = np.abs(t - shift)
        source = np.where(source > time - 1, 2 * (time - 1) - source, source)
        np.testing.assert_array_equal(y[b], x[b, source])
    # The next call draws anew, from the layer's own stream, reproducibly.
    again = models_module.PhaseShuffle(n, seed=3, per="example")
    np.testing.assert_array_equal(np.asarray(again(x, training=True)), y)
    assert not np.array_equal(np.asarray(layer(x, training=True)), y)


def test_phase_shuffle_per_example_gradient_moves_each_example_back(models_module):
    """The input gradient of sum(w * out) is w shifted back, example by example: the
    transpose the gradient penalty differentiates."""
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the gradient is taken with TensorFlow here; the JAX step's is compared "
                    "with the reference step in test_fused_steps.py")
    import tensorflow as tf

    n, batch, time = 2, 16, 12
    layer = models_module.PhaseShuffle(n, seed=5, per="example")
    ramp = (np.arange(time, dtype="float32")[None, :, None]
            + 100 * np.arange(batch, dtype="float32")[:, None, None])
    weights = np.random.default_rng(0).normal(size=(batch, time, 1)).astype("float32")
    x = tf.constant(ramp)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * weights)
    grad = tape.gradient(loss, x).numpy()
    shifts = (ramp[:, 5, 0] - y.numpy()[:, 5, 0]).astype(int)
    t = np.arange(time)
    for b, shift in enumerate(shifts):
        source = np.abs(t - shift)
        source = np.where(source > time - 1, 2 * (time - 1) - source, source)
        expected = np.zeros(time, dtype="float32")
        np.add.at(expected, source, weights[b, :, 0])
        np.testing.assert_allclose(grad[b, :, 0], expected, rtol=1e-6)


def test_a_critic_shifts_per_example_as_its_config_says(models_module):
    for per in ("batch", "example"):
        critic = models_module.build_discriminator(Config(model_dim=1, phase_shuffle_per=per))
        assert [layer.per for layer in critic.layers
                if isinstance(layer, models_module.PhaseShuffle)] == [per] * 4
    with pytest.raises(ValueError, match="phase_shuffle_per must be one of"):
        Config(phase_shuffle_per="channel")
    with pytest.raises(ValueError, match="per must be one of"):
        models_module.PhaseShuffle(2, per="channel")


def test_phase_shuffle_is_identity_at_inference_and_n0(models_module, rng):
    x = rng.normal(size=(2, 32, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(models_module.PhaseShuffle(2, seed=0)(x)), x)
    np.testing.assert_array_equal(
        np.asarray(models_module.PhaseShuffle(0, seed=0)(x, training=True)), x)


def test_phase_shuffle_reproducible_from_seed(models_module, rng):
    x = rng.normal(size=(1, 64, 1)).astype("float32")

    def shifts(seed):
        layer = models_module.PhaseShuffle(2, seed=seed)
        return [np.asarray(layer(x, training=True)) for _ in range(6)]

    for a, b in zip(shifts(7), shifts(7)):
        np.testing.assert_array_equal(a, b)


def _shuffle_draws(discriminator, count=12):
    """Each phase-shuffle layer's next ``count`` shifts, drawn from a copy of its state."""
    import keras

    from beatgan.model import PhaseShuffle

    draws = []
    for layer in discriminator.layers:
        if isinstance(layer, PhaseShuffle):
            probe = keras.random.SeedGenerator(0)
            probe.state.assign(layer.seed_generator.state.value)
            draws.append([int(keras.random.randint((), -2, 3, seed=probe)) for _ in range(count)])
    return draws


def test_reseeding_gives_each_critic_layer_a_stream_of_the_run(models_module):
    config = Config(model_dim=1, seed=11)
    build = models_module.build_discriminator
    a, b, c = build(config), build(config), build(config)
    states = [np.asarray(layer.seed_generator.state.value) for layer in a.layers
              if isinstance(layer, models_module.PhaseShuffle)]
    assert [s.tolist() for s in states] == [[11_000 + 200 + i, 0] for i in range(4)]
    models_module.reseed_phase_shuffle(a, [11, 1])
    models_module.reseed_phase_shuffle(b, [11, 1])
    models_module.reseed_phase_shuffle(c, [11, 1, 1])  # rollback 1 of that run
    want = [int(np.random.SeedSequence([11, 1, i]).generate_state(1, np.uint32)[0]) >> 1
            for i in range(4)]
    assert [np.asarray(layer.seed_generator.state.value).tolist() for layer in a.layers
            if isinstance(layer, models_module.PhaseShuffle)] == [[w, 0] for w in want]
    assert _shuffle_draws(a) == _shuffle_draws(b)  # a stream is reproducible
    fresh = _shuffle_draws(build(config))
    for layer_draws in (_shuffle_draws(a), _shuffle_draws(c)):  # and not the seed's, nor another's
        assert all(x != y for x, y in zip(layer_draws, fresh))
    assert all(x != y for x, y in zip(_shuffle_draws(a), _shuffle_draws(c)))


def test_mixed_precision_models_keep_float32_io(models_module, rng):
    config = Config(model_dim=2, mixed_precision=True)
    generator = models_module.build_generator(config)
    discriminator = models_module.build_discriminator(config)
    assert all(v.dtype == "float32" for v in generator.weights)
    audio = generator(rng.uniform(-1, 1, (2, config.latent_dim)).astype("float32"))
    import keras
    assert keras.backend.standardize_dtype(audio.dtype) == "float32"
    assert keras.backend.standardize_dtype(discriminator(audio).dtype) == "float32"


def test_the_critic_leaks_a_fifth_of_negative_activations(models_module):
    # WaveGAN's critic (as DCGAN's): LeakyReLU(0.2) after each convolution, the score dense after.
    critic = models_module.build_discriminator(Config(model_dim=1))
    x = np.array([[-2.0, -0.5, 0.0, 1.5]], "float32")
    leaky = [layer for layer in critic.layers if "lrelu" in layer.name]
    assert len(leaky) == 5
    for layer in leaky:
        np.testing.assert_allclose(np.asarray(layer(x)), [[-0.4, -0.1, 0.0, 1.5]], rtol=1e-6)
