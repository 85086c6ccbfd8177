"""Weights exported under one Keras backend load under the other and compute the same function.

The shipped weights are trained under JAX on a GPU and loaded under TensorFlow by the
notebook and ``beatgan generate`` (and the reverse, to resume a CPU run on the GPU). A tiny
generator and discriminator (d = 2), with their weights moved away from the seeded initial
values so that nothing can pass by both backends drawing the same init, are exported with
``export_weights`` under TensorFlow (this process) and under JAX (one subprocess), each loaded
under the other backend, and run on the same latents and the same audio.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from beatgan.config import Config

#: float32 tanh output; the two backends' convolutions differ only in summation order.
AUDIO_ATOL = 1e-5
SCORE_RTOL = 1e-4
CONFIG = Config(model_dim=2, batch_size=4, seed=11)

# Runs under KERAS_BACKEND=jax: load what TensorFlow exported, export its own, evaluate both.
JAX_WORKER = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy as np
    import keras
    sys.path.insert(0, sys.argv[3])
    from test_weights_portability import evaluate, export_perturbed
    from beatgan.config import Config
    from beatgan.generation import load_generator
    from beatgan.model import build_discriminator

    assert keras.backend.backend() == "jax", keras.backend.backend()
    tf_dir, work = Path(sys.argv[1]), Path(sys.argv[2])
    inputs = np.load(work / "inputs.npz")
    generator, config = load_generator(tf_dir)
    discriminator = build_discriminator(config)
    discriminator.load_weights(str(tf_dir / "discriminator.weights.h5"))
    np.savez(work / "jax_loads_tf.npz", **evaluate(generator, discriminator, inputs))
    generator, discriminator = export_perturbed(Config.load(tf_dir), work / "jax_weights", seed=2)
    np.savez(work / "jax_own.npz", **evaluate(generator, discriminator, inputs))
""")


def export_perturbed(config, folder, *, seed):
    """Build G and D, scale each trainable weight by U[0.5, 1.5], export; returns (G, D)."""
    import keras

    from beatgan.model import build_discriminator, build_generator
    from beatgan.training import export_weights

    rng = np.random.default_rng(seed)
    generator, discriminator = build_generator(config), build_discriminator(config)
    for model in (generator, discriminator):
        for variable in model.trainable_variables:
            value = keras.ops.convert_to_numpy(variable)
            variable.assign(value * rng.uniform(0.5, 1.5, value.shape).astype(value.dtype))
    export_weights(generator, discriminator, config=config, folder=folder)
    return generator, discriminator


def evaluate(generator, discriminator, inputs):
    """Generator audio for the latents, critic scores for the audio (inference mode)."""
    from beatgan.generation import generate

    audio, _ = generate(generator, latents=inputs["latents"])
    scores = np.asarray(discriminator(inputs["audio"], training=False), dtype=np.float64)
    return {"audio": audio, "scores": scores}


@pytest.fixture(scope="module")
def exchanged(tmp_path_factory):
    """Both directions: TensorFlow here, JAX in one subprocess."""
    import keras

    from beatgan.generation import sample_latents

    assert keras.backend.backend() == "tensorflow"
    work = tmp_path_factory.mktemp("portability")
    rng = np.random.default_rng(5)
    inputs = {"latents": sample_latents(3, latent_dim=CONFIG.latent_dim, seed=4),
              "audio": rng.uniform(-0.5, 0.5, (3, CONFIG.slice_len, CONFIG.channels)).astype(np.float32)}
    np.savez(work / "inputs.npz", **inputs)
    generator, discriminator = export_perturbed(CONFIG, work / "tf_weights", seed=1)
    tf_own = evaluate(generator, discriminator, inputs)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", JAX_WORKER, str(work / "tf_weights"), str(work),
                           os.path.dirname(__file__)],
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return work, inputs, tf_own


def _close(got, want):
    assert got["audio"].shape == want["audio"].shape == (3, CONFIG.slice_len, CONFIG.channels)
    peak = np.abs(want["audio"]).max()
    assert peak > 1e-3, "silent generator: the comparison would prove nothing"
    # Absolute 1e-5, and at most 1e-4 of the peak (a tiny model's output is quiet; measured
    # differences are about 1e-8, 4e-7 of the peak).
    np.testing.assert_allclose(got["audio"], want["audio"], rtol=0,
                               atol=min(AUDIO_ATOL, 1e-4 * peak))
    np.testing.assert_allclose(got["scores"], want["scores"], rtol=SCORE_RTOL,
                               atol=SCORE_RTOL * np.abs(want["scores"]).max())


def test_tensorflow_weights_give_the_same_audio_under_jax(exchanged):
    work, _, tf_own = exchanged
    _close(dict(np.load(work / "jax_loads_tf.npz")), tf_own)


def test_jax_weights_give_the_same_audio_under_tensorflow(exchanged):
    from beatgan.generation import load_generator
    from beatgan.model import build_discriminator

    work, inputs, _ = exchanged
    generator, config = load_generator(work / "jax_weights")
    assert config == CONFIG
    discriminator = build_discriminator(config)
    discriminator.load_weights(str(work / "jax_weights" / "discriminator.weights.h5"))
    _close(evaluate(generator, discriminator, inputs), dict(np.load(work / "jax_own.npz")))
    # The export carries its config, so the folder rebuilds its own model on either backend.
    assert json.loads((work / "jax_weights" / "config.json").read_text())["model_dim"] == 2
