"""WGAN-GP losses and gradients: known answers, finite differences, TF == JAX.

The penalty is Gulrajani et al. 2017's lambda * mean_i (||grad D(x_hat_i)|| - 1)^2
with the norm per example over time and channels.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from beatgan.config import Config

HERE = Path(__file__).parent
TINY = dict(model_dim=2, batch_size=2, phase_shuffle=0, seed=5)


def _steps_for(critic, config, real):
    """TensorFlow steps around any critic (the generator is the tiny WaveGAN one)."""
    from beatgan.backends import make_steps
    from beatgan.model import build_generator
    from beatgan.training import build_optimizer

    generator = build_generator(config)
    g_opt, d_opt = build_optimizer(config, name="g"), build_optimizer(config, name="d")
    g_opt.build(generator.trainable_variables)
    d_opt.build(critic.trainable_variables)
    return make_steps(generator, critic, g_opt, d_opt, real, config=config)


def _linear_worker():
    sys.path.insert(0, str(HERE))
    import _backend_worker
    return _backend_worker


def _linear_case(rng, config, *, scale):
    """A linear critic's weights w (T, C) and three real, fake and alpha draws, float32."""
    shape = (config.slice_len, config.channels)
    w = rng.normal(scale=scale, size=shape).astype("float32")
    real = rng.uniform(-1, 1, (3,) + shape).astype("float32")
    fake = rng.uniform(-1, 1, (3,) + shape).astype("float32")
    return w, real, fake, rng.uniform(0, 1, 3).astype("float32")


def test_gradient_penalty_of_linear_critic_is_known(rng):
    # D(x) = sum(w * x): grad D = w for every x_hat, so GP = lambda * (||w|| - 1)^2.
    config = Config(**TINY)
    w, real, fake, alpha = _linear_case(rng, config, scale=0.01)
    critic = _linear_worker().linear_critic(w)
    losses, _ = _steps_for(critic, config, real).critic_loss_and_grads(real, fake, alpha)
    w64 = w.astype(np.float64)
    expected_gp = 10.0 * (np.sqrt(np.sum(w64 ** 2)) - 1.0) ** 2
    np.testing.assert_allclose(float(losses["gp"]), expected_gp, rtol=1e-5)
    expected_w = np.mean(np.sum(w64 * real, axis=(1, 2))) - np.mean(np.sum(w64 * fake, axis=(1, 2)))
    np.testing.assert_allclose(float(losses["wasserstein"]), expected_w, rtol=1e-4, atol=1e-6)


def _linear_loss64(w, real, fake, *, gp_weight=10.0, drift_weight=0.0):
    """The linear critic's d_loss in float64: gp - (mean D(x) - mean D(fake)) + eps mean D(x)^2."""
    w, real, fake = (np.asarray(a, np.float64) for a in (w, real, fake))
    d_real, d_fake = np.sum(w * real, axis=(1, 2)), np.sum(w * fake, axis=(1, 2))
    gp = gp_weight * (np.linalg.norm(w) - 1.0) ** 2
    return gp - (d_real.mean() - d_fake.mean()) + drift_weight * np.mean(d_real ** 2)


def test_the_drift_term_adds_eps_times_the_mean_squared_real_score(rng):
    config = Config(**TINY, drift_weight=0.25)
    w, real, fake, alpha = _linear_case(rng, config, scale=0.05)
    critic = _linear_worker().linear_critic(w)
    losses, grads = _steps_for(critic, config, real).critic_loss_and_grads(real, fake, alpha)
    expected = _linear_loss64(w, real, fake, drift_weight=0.25)
    assert abs(expected - _linear_loss64(w, real, fake)) > 0.01  # the term is not negligible here
    np.testing.assert_allclose(float(losses["d_loss"]), expected, rtol=1e-5)
    # Its gradient on the linear weights: 2 eps mean_i D(x_i) x_i on top of the WGAN-GP gradient.
    plain, plain_grads = _steps_for(_linear_worker().linear_critic(w), Config(**TINY),
                                    real).critic_loss_and_grads(real, fake, alpha)
    d_real = np.sum(w.astype(np.float64) * real, axis=(1, 2))
    extra = 2 * 0.25 * np.mean(d_real[:, None, None] * real, axis=0).reshape(-1, 1)
    np.testing.assert_allclose(np.asarray(grads[0]) - np.asarray(plain_grads[0]), extra,
                               rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="drift_weight"):
        Config(drift_weight=-1.0)


def test_zero_input_gradient_gives_finite_penalty_and_gradients(rng):
    config = Config(**TINY)
    shape = (config.slice_len, config.channels)
    critic = _linear_worker().linear_critic(np.zeros(shape, "float32"))
    x = rng.uniform(-1, 1, (2,) + shape).astype("float32")
    losses, grads = _steps_for(critic, config, x).critic_loss_and_grads(
        x, x[::-1], np.array([0.3, 0.7], "float32"))
    np.testing.assert_allclose(float(losses["gp"]), 10.0, rtol=1e-5)  # (0 - 1)^2 * lambda
    assert all(np.all(np.isfinite(np.asarray(g))) for g in grads)


def test_penalty_per_example_not_per_batch():
    from beatgan.backends.losses import gradient_penalty

    grads = np.zeros((2, 4, 2), "float32")
    grads[0, 0, 0] = 2.0  # norms 2 and 0: per example (1 + 1) / 2 = 1; a batch norm would give 1 too,
    grads[1, 0, 0] = 0.5  # so use 2 and 0.5: per example ((1)^2 + (0.5)^2) / 2 = 0.625
    np.testing.assert_allclose(float(gradient_penalty(grads, weight=1.0)), 0.625, rtol=1e-5)


def test_critic_gradients_match_float64_finite_differences(rng):
    # A small nonlinear float64 critic: the weight gradient of the penalised loss
    # (second order through the input gradient) against central differences.
    import keras

    config = Config(**TINY)
    shape = (8, 2)
    audio = keras.Input(shape, dtype="float64")
    flat = keras.layers.Flatten(dtype="float64")(audio)  # a float32 layer would round the input
    h = keras.layers.Dense(3, activation="tanh", dtype="float64")(flat)
    critic = keras.Model(audio, keras.layers.Dense(1, dtype="float64")(h))
    real = rng.normal(size=(3,) + shape)
    fake = rng.normal(size=(3,) + shape)
    alpha = rng.uniform(0, 1, 3)
    steps = _steps_for(critic, config, real.astype("float32"))
    losses, grads = steps.critic_loss_and_grads(real, fake, alpha)

    def loss_at():
        return float(steps.critic_loss_and_grads(real, fake, alpha)[0]["d_loss"])

    eps = 1e-6
    for variable, grad in zip(critic.trainable_variables, grads):
        value = variable.numpy()
        numeric = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            for sign in (1, -1):
                bumped = value.copy()
                bumped[idx] += sign * eps
                variable.assign(bumped)
                numeric[idx] += sign * loss_at() / (2 * eps)
        variable.assign(value)
        np.testing.assert_allclose(np.asarray(grad), numeric, rtol=1e-6, atol=1e-8)


@pytest.fixture(scope="module")
def shared_inputs(tmp_path_factory):
    """Tiny models' weights and one batch of inputs, written by the TensorFlow side."""
    from beatgan.model import build_discriminator, build_generator

    folder = tmp_path_factory.mktemp("backend_inputs")
    config = Config(**TINY, drift_weight=0.5)  # the drift term in both backends' steps
    config.save(folder / "config.json")
    build_generator(config).save_weights(folder / "generator.weights.h5")
    build_discriminator(config).save_weights(folder / "discriminator.weights.h5")
    rng = np.random.default_rng(99)
    shape = (config.batch_size, config.slice_len, config.channels)
    np.savez(folder / "inputs.npz",
             real=(0.5 * np.sin(np.linspace(0, 300, np.prod(shape)))).reshape(shape).astype("float32"),
             z_d=rng.uniform(-1, 1, (config.batch_size, config.latent_dim)).astype("float32"),
             z_g=rng.uniform(-1, 1, (config.batch_size, config.latent_dim)).astype("float32"),
             alpha=rng.uniform(0, 1, config.batch_size).astype("float32"),
             w_linear=rng.normal(scale=0.01, size=shape[1:]).astype("float32"))
    return folder


def _run_worker(backend: str, folder: Path, out: Path) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, str(HERE / "_backend_worker.py"), str(folder), str(out)],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(out) as archive:
        return {key: archive[key] for key in archive.files}


def test_tensorflow_and_jax_steps_agree(shared_inputs, tmp_path):
    pytest.importorskip("jax")
    sys.path.insert(0, str(HERE))
    import _backend_worker

    _backend_worker.run(str(shared_inputs), str(tmp_path / "tf.npz"))  # this process is TensorFlow
    with np.load(tmp_path / "tf.npz") as archive:
        tf_out = {key: archive[key] for key in archive.files}
    jax_out = _run_worker("jax", shared_inputs, tmp_path / "jax.npz")
    assert str(tf_out["backend"]) == "tensorflow" and str(jax_out["backend"]) == "jax"
    # The backends' convolutions sum in different orders: on a loaded CPU up to 2.4e-6 apart near
    # 0. The untrained fakes are about 1e-3 (largest 0.014), so 1e-5 is still under 1 % of them.
    np.testing.assert_allclose(jax_out["fake"], tf_out["fake"], rtol=1e-4, atol=1e-5)
    for key in ("d_d_loss", "d_gp", "d_wasserstein", "g_loss", "linear_gp", "linear_d_loss"):
        np.testing.assert_allclose(jax_out[key], tf_out[key], rtol=1e-4, err_msg=key)
    # One Adam step from the same state lands on the same critic weights.
    for key in (k for k in tf_out if k.startswith("d_weight_")):
        np.testing.assert_allclose(jax_out[key], tf_out[key], rtol=1e-4, atol=1e-6, err_msg=key)
    # And the JAX linear-critic penalty has the known value too.
    w = np.load(shared_inputs / "inputs.npz")["w_linear"].astype(np.float64)
    np.testing.assert_allclose(jax_out["linear_gp"], 10 * (np.linalg.norm(w) - 1) ** 2, rtol=1e-5)
    inputs = np.load(shared_inputs / "inputs.npz")
    np.testing.assert_allclose(jax_out["linear_d_loss"],
                               _linear_loss64(w, inputs["real"], jax_out["fake"], drift_weight=0.5),
                               rtol=1e-5)


def _squares_critic(w):
    """D(x) = sum(w * x^2): its input gradient 2 w x depends on where it is taken."""
    import keras

    audio = keras.Input(w.shape)
    squares = keras.layers.Multiply()([audio, audio])
    score = keras.layers.Dense(1, name="linear")(keras.layers.Flatten()(squares))
    model = keras.Model(audio, score)
    model.get_layer("linear").set_weights([w.reshape(-1, 1), np.zeros(1, w.dtype)])
    return model


def test_penalty_is_taken_at_each_examples_own_interpolate(rng):
    # x_hat_i = x_i + alpha_i (G(z_i) - x_i), one alpha per example: with D(x) = sum(w x^2) the
    # penalty reads ||2 w x_hat_i|| per example, so a shared alpha, alpha and 1 - alpha swapped or
    # the gradient taken elsewhere all change it (a linear critic's gradient is w everywhere).
    config = Config(**TINY)
    shape = (config.slice_len, config.channels)
    w = rng.uniform(0.0, 0.05, shape).astype("float32")
    real = rng.uniform(-1, 1, (3,) + shape).astype("float32")
    fake = rng.uniform(-0.2, 0.2, (3,) + shape).astype("float32")
    alpha = np.array([0.1, 0.5, 0.9], "float32")
    losses, _ = _steps_for(_squares_critic(w), config, real).critic_loss_and_grads(real, fake, alpha)
    w64, real64, fake64 = (a.astype(np.float64) for a in (w, real, fake))
    x_hat = real64 + alpha.astype(np.float64)[:, None, None] * (fake64 - real64)
    norms = np.sqrt(np.sum((2 * w64 * x_hat) ** 2, axis=(1, 2)))
    assert np.ptp(norms) > 0.5  # the examples' norms differ: a wrong x_hat shows
    np.testing.assert_allclose(float(losses["gp"]), 10.0 * np.mean((norms - 1.0) ** 2), rtol=1e-5)
    d_real, d_fake = np.sum(w64 * real64 ** 2, axis=(1, 2)), np.sum(w64 * fake64 ** 2, axis=(1, 2))
    np.testing.assert_allclose(float(losses["wasserstein"]), d_real.mean() - d_fake.mean(), rtol=1e-5)


def test_generator_loss_is_minus_the_mean_fake_score_and_its_step_raises_that_score(rng):
    # L_G = -mean D(G(z)): a G update must make the critic score G's output higher, not lower.
    import keras

    config = Config(**TINY)
    shape = (config.slice_len, config.channels)
    w = rng.normal(scale=0.01, size=shape).astype("float32")
    steps = _steps_for(_linear_worker().linear_critic(w), config, np.zeros((2,) + shape, "float32"))
    z = rng.uniform(-1, 1, (2, config.latent_dim)).astype("float32")

    def mean_fake_score():  # float64, from G's output: D(x) = sum(w x)
        fake = keras.ops.convert_to_numpy(steps.generator(z, training=True)).astype(np.float64)
        return float(np.mean(np.sum(w.astype(np.float64) * fake, axis=(1, 2))))

    before = mean_fake_score()
    g_loss = float(steps.g_step(z)["g_loss"])  # measured before the update
    np.testing.assert_allclose(g_loss, -before, rtol=1e-4, atol=1e-7)
    steps.sync_to_models()  # JAX steps hold the weights in their state until then
    after = mean_fake_score()
    assert after - before > 1e-4, (before, after)  # 6.5e-4 -> 3.1e-3 here; an ascent on L_G lowers it
