"""Subprocess helper for tests/test_fused_steps.py: the reference and the fused JAX steps.

Usage: KERAS_BACKEND=jax python tests/_fused_worker.py OUT.npz

From the same initial weights and the same draws, runs ITERATIONS iterations
with ``JaxSteps`` (the reference: Keras' own kernels, one update per call)
and with ``FusedJaxSteps`` (one program per iteration, fast kernels), and
writes both runs' losses and final weights. Then it saves weights from a
model built with the stock Keras convolution layers and loads them into
beatgan's models, and writes both models' outputs with and without the fast kernels.
"""

import dataclasses
import sys

import numpy as np

ITERATIONS = 3


def tiny_config():
    from beatgan.config import Config
    # Phase shuffle on: the fused step's slice-based shuffle must draw and shift alike.
    return Config(model_dim=2, batch_size=4, phase_shuffle=2, seed=11)


def _draws(config, n_examples: int):
    """Every iteration's host draws, in training's order: [(indices, z, alpha, z_g), ...]."""
    from beatgan.training import BatchSampler

    sampler = BatchSampler(n_examples, batch_size=config.batch_size,
                           latent_dim=config.latent_dim, seed=config.seed)
    out = []
    for _ in range(ITERATIONS):
        per_update = [(sampler.indices(), sampler.latents(), sampler.alphas())
                      for _ in range(config.d_updates_per_g)]
        indices, z, alpha = (np.stack(column) for column in zip(*per_update))
        out.append((indices, z, alpha, sampler.latents()))
    return out


def train_run(config, data, draws, *, fused: bool) -> dict:
    """Losses (iterations, n_d) and (iterations,), and every variable after the run."""
    from beatgan.backends import make_steps, run_iteration
    from beatgan.model import build_discriminator, build_generator
    from beatgan.training import build_optimizer

    generator, discriminator = build_generator(config), build_discriminator(config)
    g_opt, d_opt = build_optimizer(config, name="g_adam"), build_optimizer(config, name="d_adam")
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    steps = make_steps(generator, discriminator, g_opt, d_opt, data, config=config, fused=fused)
    assert type(steps).__name__ == ("FusedJaxSteps" if fused else "JaxSteps")
    rows = []
    for indices, z, alpha, z_g in draws:
        d_out, g_out = run_iteration(steps, indices, z, alpha, z_g)
        if isinstance(d_out, list):
            d_out = {key: np.stack([np.asarray(o[key]) for o in d_out]) for key in d_out[0]}
        rows.append({**{k: np.asarray(v) for k, v in d_out.items()}, "g_loss": np.asarray(g_out["g_loss"])})
    steps.sync_to_models()
    out = {key: np.stack([row[key] for row in rows]) for key in rows[0]}
    variables = (generator.variables + discriminator.variables + g_opt.variables + d_opt.variables)
    for i, variable in enumerate(variables):
        out[f"var{i:03d}/{variable.path}"] = np.asarray(variable.value)
    return out


def stock_weights_roundtrip(config, folder: str, z, audio) -> dict:
    """Weights written by stock-layer models, loaded into beatgan's; outputs of both."""
    import h5py
    import jax
    import keras

    from beatgan import model as model_module

    stock = {}
    fast_conv, fast_transpose = model_module.Conv1D, model_module.Conv1DTranspose
    model_module.Conv1D, model_module.Conv1DTranspose = (keras.layers.Conv1D,
                                                         keras.layers.Conv1DTranspose)
    try:
        stock["g"] = model_module.build_generator(config)
        stock["d"] = model_module.build_discriminator(config)
    finally:
        model_module.Conv1D, model_module.Conv1DTranspose = fast_conv, fast_transpose
    assert type(stock["g"].get_layer("g_upconv0")) is keras.layers.Conv1DTranspose
    ours = {"g": model_module.build_generator(config), "d": model_module.build_discriminator(config)}
    out = {}
    for key, inputs in (("g", z), ("d", audio)):
        # Other values than the seeded ones, so that a load that did nothing would show.
        for variable in stock[key].trainable_variables:
            variable.assign(np.random.default_rng(len(variable.path)).normal(
                scale=0.3, size=variable.shape).astype("float32"))
        path = f"{folder}/{key}.weights.h5"
        stock[key].save_weights(path)
        ours[key].load_weights(path)
        with h5py.File(path) as f:
            names = []
            f.visit(names.append)
        out[f"{key}_h5_entries"] = np.array(sorted(names))
        ours[key].save_weights(f"{folder}/{key}_ours.weights.h5")
        with h5py.File(f"{folder}/{key}_ours.weights.h5") as f:
            names = []
            f.visit(names.append)
        out[f"{key}_h5_entries_ours"] = np.array(sorted(names))
        out[f"{key}_stock"] = np.asarray(stock[key](inputs, training=False))
        with model_module.fast_jax_kernels():
            out[f"{key}_fast"] = np.asarray(ours[key](inputs, training=False))
            # What the fast kernels compile to: no strided, dilated or gathering ops left.
            program = str(jax.make_jaxpr(lambda x, m=ours[key]: m(x, training=True))(inputs))
        out[f"{key}_fast_slow_ops"] = np.array(
            [program.count(op) for op in ("window_strides=(4,)", "lhs_dilation=(4,)", "gather[")])
        out[f"{key}_fast_convs"] = np.array(program.count("conv_general_dilated["))
    return out


def each_example_ops(config, audio) -> dict:
    """Slow ops left in the critic with per-example phase shuffle under the fast kernels."""
    import jax

    from beatgan import model as model_module

    critic = model_module.build_discriminator(config)
    with model_module.fast_jax_kernels():
        program = str(jax.make_jaxpr(lambda x: critic(x, training=True))(audio))
    return {"d_each_fast_slow_ops": np.array(
        [program.count(op) for op in ("window_strides=(4,)", "lhs_dilation=(4,)", "gather[")])}


def main(out_path: str) -> None:
    import keras

    assert keras.backend.backend() == "jax"
    config = tiny_config()
    rng = np.random.default_rng(0)
    data = (0.5 * rng.uniform(-1, 1, (6, config.slice_len, config.channels))).astype(np.float32)
    draws = _draws(config, len(data))
    out = {}
    for name, fused in (("plain", False), ("fused", True)):
        out.update({f"{name}/{k}": v for k, v in train_run(config, data, draws, fused=fused).items()})
    # Phase shuffle per example: the fused step's shifted copies must select as the reference's.
    each = dataclasses.replace(config, phase_shuffle_per="example")
    for name, fused in (("example_plain", False), ("example_fused", True)):
        out.update({f"{name}/{k}": v for k, v in train_run(each, data, draws, fused=fused).items()})
    folder = str(__import__("pathlib").Path(out_path).parent)
    out.update(stock_weights_roundtrip(config, folder, draws[0][1][0], data[:4]))
    out.update(each_example_ops(each, data[:4]))
    np.savez(out_path, **out)


if __name__ == "__main__":
    main(sys.argv[1])
