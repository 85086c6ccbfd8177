"""Subprocess helper for tests/test_backends.py: run one backend's steps on shared inputs.

Usage: KERAS_BACKEND=jax python tests/_backend_worker.py IN_DIR OUT.npz

IN_DIR holds config.json, generator/discriminator .weights.h5 and inputs.npz
(real, z_d, alpha, z_g, w_linear). Writes the losses of one D step and one
G step, the D weights after the D step, and the linear critic's penalty and loss.
"""

import sys

import numpy as np


def run(in_dir: str, out_path: str) -> None:
    import keras

    from beatgan.backends import make_steps
    from beatgan.config import Config
    from beatgan.model import build_discriminator, build_generator
    from beatgan.training import build_optimizer

    config = Config.load(in_dir)
    inputs = np.load(f"{in_dir}/inputs.npz")
    generator = build_generator(config)
    discriminator = build_discriminator(config)
    generator.load_weights(f"{in_dir}/generator.weights.h5")
    discriminator.load_weights(f"{in_dir}/discriminator.weights.h5")
    g_opt = build_optimizer(config, name="g_adam")
    d_opt = build_optimizer(config, name="d_adam")
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    real = inputs["real"]
    steps = make_steps(generator, discriminator, g_opt, d_opt, real, config=config)
    out = {f"d_{k}": np.asarray(v) for k, v in
           steps.d_step(np.arange(len(real)), inputs["z_d"], inputs["alpha"]).items()}
    out.update({k: np.asarray(v) for k, v in steps.g_step(inputs["z_g"]).items()})
    steps.sync_to_models()
    for i, v in enumerate(discriminator.trainable_variables):
        out[f"d_weight_{i}"] = np.asarray(v.numpy() if hasattr(v, "numpy") else v)
    out["fake"] = np.asarray(generator(inputs["z_d"]))
    linear = linear_losses(config, inputs["w_linear"], real, out["fake"], inputs["alpha"])
    out["linear_gp"], out["linear_d_loss"] = linear["gp"], linear["d_loss"]
    out["backend"] = np.array(keras.backend.backend())
    np.savez(out_path, **out)


def linear_critic(w: np.ndarray):
    """D(x) = sum(w * x) + 0: a critic whose input gradient is w everywhere."""
    import keras

    audio = keras.Input(w.shape)
    score = keras.layers.Dense(1, name="linear")(keras.layers.Flatten()(audio))
    model = keras.Model(audio, score)
    model.get_layer("linear").set_weights([w.reshape(-1, 1), np.zeros(1, w.dtype)])
    return model


def linear_losses(config, w, real, fake, alpha) -> dict:
    """The backend's critic losses for the linear critic (penalty: lambda * (||w|| - 1)^2)."""
    from beatgan.backends import make_steps
    from beatgan.model import build_generator
    from beatgan.training import build_optimizer

    critic = linear_critic(w)
    generator = build_generator(config)
    g_opt, d_opt = build_optimizer(config, name="g"), build_optimizer(config, name="d")
    g_opt.build(generator.trainable_variables)
    d_opt.build(critic.trainable_variables)
    steps = make_steps(generator, critic, g_opt, d_opt, real, config=config)
    losses, _ = steps.critic_loss_and_grads(real, fake, alpha)
    return {key: np.asarray(value) for key, value in losses.items()}


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2])
