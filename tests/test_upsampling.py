"""Interpolating upsampling (``Config.upsample``): checkerboard-free by construction, same cost."""

import os
import subprocess
import sys

import numpy as np
import pytest

from beatgan import Config
from beatgan.upsampling import (fold_filter, interpolation_filter, learned_taps,
                                phase_sum_spread)


@pytest.mark.parametrize("method", ["nearest", "linear"])
@pytest.mark.parametrize("stride", [2, 4])
def test_interpolation_filters_have_unit_energy_and_equal_phase_sums(method, stride):
    h = interpolation_filter(method, stride)
    assert len(h) == {"nearest": stride, "linear": 2 * stride - 1}[method]
    np.testing.assert_allclose(np.sum(h ** 2), 1.0)
    sums = [h[p::stride].sum() for p in range(stride)]
    np.testing.assert_allclose(sums, sums[0])  # what makes the folded kernels checkerboard-free
    # Linear interpolation: zero-insert then this filter puts the input samples back unchanged
    # (up to the unit-energy gain) and the straight line between them in the gaps.
    if method == "linear":
        x = np.array([0.0, 1.0, 3.0, 2.0])
        up = np.zeros(len(x) * stride)
        up[::stride] = x
        y = np.convolve(up, h / h.max())[stride - 1: stride - 1 + len(up)]
        np.testing.assert_allclose(y[::stride], x)
        np.testing.assert_allclose(y[stride // 2: 3 * stride: stride], [0.5, 2.0, 2.5])


def test_plain_transposed_has_no_filter_and_unknown_methods_are_refused():
    assert interpolation_filter("transposed", 4) is None
    assert learned_taps("transposed", 4, 25) == 25
    assert learned_taps("nearest", 4, 25) == 22
    assert learned_taps("linear", 4, 25) == 19
    with pytest.raises(ValueError, match="upsample must be one of"):
        interpolation_filter("cubic", 4)
    with pytest.raises(ValueError, match="too short for linear"):
        learned_taps("linear", 4, 6)


def test_folding_is_the_full_convolution_over_taps(rng):
    kernel = rng.normal(size=(5, 3, 2)).astype("float32")
    h = interpolation_filter("linear", 4)
    folded = np.asarray(fold_filter(kernel, h))
    assert folded.shape == (5 + 7 - 1, 3, 2)
    for o in range(3):
        for i in range(2):  # float64 reference
            np.testing.assert_allclose(folded[:, o, i], np.convolve(h, kernel[:, o, i].astype(float)),
                                       rtol=1e-5, atol=1e-6)


def test_config_refuses_bad_upsampling():
    assert Config().upsample == "transposed"  # the seed's layer stays the default
    with pytest.raises(ValueError, match="upsample must be one of"):
        Config(upsample="cubic")
    with pytest.raises(ValueError, match="linear upsampling needs kernel_len >= 7"):
        Config(upsample="linear", kernel_len=6)
    Config(upsample="linear", kernel_len=7)  # the shortest that leaves one learned tap


def _upconv_layers(generator):
    return [layer for layer in generator.layers if layer.name.startswith("g_upconv")]


@pytest.mark.parametrize("method", ["nearest", "linear"])
def test_generator_layers_fold_to_kernel_len_taps_and_are_checkerboard_free(method):
    from beatgan.model import build_generator

    plain = build_generator(Config(model_dim=4))
    interpolating = build_generator(Config(model_dim=4, upsample=method))
    for p, q in zip(_upconv_layers(plain), _upconv_layers(interpolating)):
        assert q.kernel.shape[0] == learned_taps(method, 4, 25)
        assert tuple(q.folded_kernel().shape) == tuple(p.kernel.shape)  # same cost, same padding
        assert phase_sum_spread(np.asarray(p.kernel), 4) > 0.5  # Glorot: about 1.7
        assert phase_sum_spread(np.asarray(q.folded_kernel()), 4) < 1e-6


@pytest.mark.parametrize("method", ["nearest", "linear"])
def test_a_constant_input_comes_out_constant_only_when_interpolating(method, rng):
    # The checkerboard itself: a transposed convolution of a constant input, away from the edges.
    import keras

    from beatgan.model import Conv1DTranspose

    x = np.ones((1, 32, 3), "float32")
    outputs = {}
    for name in ("transposed", method):
        # Over 40 seeds: 0.86-1.77 for the plain layer, at most 1.5e-6 when interpolating.
        layer = Conv1DTranspose(4, learned_taps(name, 4, 25), strides=4, padding="same",
                                upsample=name, kernel_initializer=keras.initializers.GlorotUniform(seed=7))
        y = np.asarray(layer(x))[0, 32:-32]  # (64, 4): clear of the zero padding at both ends
        # Each channel's ripple over time, against the output's overall level.
        outputs[name] = y.std(axis=0).max() / np.sqrt(np.mean(y ** 2))
    assert outputs["transposed"] > 0.1
    assert outputs[method] < 1e-5  # float32 rounding only


def test_interpolating_generator_round_trips_through_its_weights_folder(tmp_path, rng):
    from beatgan.generation import generate, load_generator
    from beatgan.model import build_discriminator, build_generator
    from beatgan.training import export_weights

    config = Config(model_dim=2, batch_size=2, upsample="linear")
    generator = build_generator(config)
    folder = export_weights(generator, build_discriminator(config), config=config, folder=tmp_path)
    loaded, loaded_config = load_generator(folder)
    assert loaded_config.upsample == "linear"
    z = rng.uniform(-1, 1, (3, config.latent_dim)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(z)), np.asarray(generator(z)), atol=1e-6)
    # The same file under the plain layer's config is refused by shape, not loaded wrongly.
    Config.load(folder).replace(upsample="transposed").save(folder)
    with pytest.raises(ValueError, match="does not fit its config.json.*upsample=transposed"):
        generate(folder, n=1)


_JAX_FAST_KERNELS = """
import sys
import numpy as np
from beatgan import Config
from beatgan.model import build_generator, fast_jax_kernels

z = np.load(sys.argv[1])
g = build_generator(Config(model_dim=2, upsample="linear"))
g.load_weights(sys.argv[2])
plain = np.asarray(g(z))
with fast_jax_kernels():
    fast = np.asarray(g(z))
np.savez(sys.argv[3], plain=plain, fast=fast)
"""


def test_jax_fast_kernels_and_tensorflow_give_the_same_interpolating_generator(tmp_path, rng):
    # One weight file: TensorFlow's Keras op, JAX's Keras op and JAX's polyphase kernels agree.
    pytest.importorskip("jax")
    from beatgan.model import build_generator

    generator = build_generator(Config(model_dim=2, upsample="linear"))
    z = rng.uniform(-1, 1, (2, 100)).astype("float32")
    np.save(tmp_path / "z.npy", z)
    generator.save_weights(tmp_path / "g.weights.h5")
    expected = np.asarray(generator(z))
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", _JAX_FAST_KERNELS, str(tmp_path / "z.npy"),
                             str(tmp_path / "g.weights.h5"), str(tmp_path / "out.npz")],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(tmp_path / "out.npz") as out:
        assert np.abs(expected).max() > 1e-4  # not trivially equal
        np.testing.assert_allclose(out["plain"], expected, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(out["fast"], expected, rtol=1e-4, atol=1e-6)
