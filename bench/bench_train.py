"""Benchmark the WGAN-GP training steps: seconds per D update, D updates/s, TFLOP/s.

Times the compiled steps that ``beatgan.train`` runs (``beatgan.backends``;
under JAX the fused one-program-per-iteration step) on random data, after a
warm-up that compiles them, and first a matrix-rate probe: the best of five
(n x n) @ (n x n) products on the device in the step's compute dtype. Prints
ONE JSON line: D updates/s (critic updates per second of whole iterations,
the generator update included), TFLOP/s by the rule below, its fraction of the
probe's rate, compile seconds (first iteration minus a steady one), device,
precision, model dim and batch. It does not pass or fail on speed.

    python bench/bench_train.py --model-dim 16 --batch-size 16 --backend tensorflow
    python bench/bench_train.py --model-dim 64 --batch-size 64 --backend jax --mixed-precision
    python bench/bench_train.py --backend jax --model-dim 4 --batch-size 4 --compare-reference

``--compare-reference`` also times the plain JAX step (``fused=False``) in the
same run and reports it under "reference" with the speed-up. Figures per
version and card are kept in bench/README.md.

FLOP counting rule (analytic, from layer shapes; one multiply-add = 2 FLOPs):
  forward F of a network = sum over layers of 2 * MACs, where
    Conv1D:            out_len * kernel * c_in * c_out
    Conv1DTranspose:   in_len  * kernel * c_in * c_out  (each input tap scatters)
    Dense:             n_in * n_out
  (activations, phase shuffle, bias, Adam updates are not counted).
  A backward pass costs 2 F (input and weight gradients).
  One D update = G forward (F_G) + D on real and on fake, each forward and
  backward (2 * 3 F_D) + the gradient penalty: D forward on x_hat (F_D), its
  input gradient (F_D) and the backward pass through both (2 F_D + 2 F_D),
  i.e. 6 F_D: in all F_G + 12 F_D. One G update = 3 F_G + 3 F_D.
  At d = 64, c = 2, batch 64 this is 1.42 TFLOP per D update.

"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

# Light: no Keras, so the backend can still be chosen.
from beatgan.config import PHASE_SHUFFLE_PER, UPSAMPLE_METHODS


def add_step_arguments(parser: argparse.ArgumentParser, *,
                       backends: tuple[str, ...] = ("tensorflow", "jax")) -> None:
    """The options that choose the training step (shared with profile_step.py)."""
    parser.add_argument("--model-dim", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--backend", choices=backends, default=backends[0])
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations (compilation)")
    parser.add_argument("--slice-len", type=int, default=16384)
    parser.add_argument("--upsample", choices=UPSAMPLE_METHODS,
                        default="transposed", help="the generator's upsampling (Config.upsample)")
    parser.add_argument("--phase-shuffle-per", choices=PHASE_SHUFFLE_PER, default="batch",
                        help="the critic's phase-shuffle draws (Config.phase_shuffle_per)")
    parser.add_argument("--reference-only", action="store_true",
                        help="JAX: only the plain reference step (fused=False)")
    parser.add_argument("--unroll", choices=("auto", "yes", "no"), default="auto",
                        help="JAX fused step: unroll the critic updates (auto: on the CPU only)")
    parser.add_argument("--matmul-precision", default=None,
                        help="JAX: jax_default_matmul_precision for float32 (e.g. tensorfloat32, "
                             "highest); default: JAX's own (TF32 on recent NVIDIA GPUs)")
    parser.add_argument("--critic-passes", choices=("separate", "merged"), default="separate",
                        help="JAX fused step: the critic's real and generated batches in two calls "
                             "(separate, as training runs) or one call over both (merged)")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_step_arguments(parser)
    parser.add_argument("--jit-compile", action="store_true", help="TensorFlow: compile with XLA")
    parser.add_argument("--iterations", type=int, default=3,
                        help="timed iterations (each d_updates_per_g D updates + 1 G update)")
    parser.add_argument("--compare-reference", action="store_true",
                        help="JAX: also time the plain reference step (fused=False) in this run")
    parser.add_argument("--memory-analysis", action="store_true",
                        help="JAX fused step: compile once more and report XLA's temp memory")
    parser.add_argument("--probe-size", type=int, default=None,
                        help="matrix size of the matmul rate probe (default 8192 on GPU, 1024 on CPU)")
    args = parser.parse_args(argv)
    if args.iterations < 1:  # the median of no timed iterations is no figure
        parser.error(f"--iterations must be at least 1, got {args.iterations}")
    return args


def start_backend(args: argparse.Namespace) -> None:
    """Select the Keras backend (before Keras is imported) and JAX's matmul precision."""
    os.environ["KERAS_BACKEND"] = args.backend
    import beatgan  # noqa: F401  (quiets TensorFlow's start-up lines before Keras loads it)

    if args.backend == "jax" and args.matmul_precision:
        import jax
        jax.config.update("jax_default_matmul_precision", args.matmul_precision)


def config_and_data(args: argparse.Namespace):
    """(the Config the options describe, random training data (2 batches, slice_len, channels))."""
    from beatgan.config import Config

    config = Config(model_dim=args.model_dim, batch_size=args.batch_size,
                    mixed_precision=args.mixed_precision, slice_len=args.slice_len,
                    upsample=args.upsample,
                    phase_shuffle_per=args.phase_shuffle_per)
    n_examples = 2 * config.batch_size
    data = np.random.default_rng(0).uniform(
        -0.5, 0.5, (n_examples, config.slice_len, config.channels)).astype(np.float32)
    return config, data


def build_steps(args: argparse.Namespace, config, data, *, fused: bool):
    """(steps, generator, discriminator, sampler): fresh models and the step the options choose."""
    from beatgan.backends import make_steps
    from beatgan.model import build_discriminator, build_generator
    from beatgan.training import BatchSampler, build_optimizer

    generator, discriminator = build_generator(config), build_discriminator(config)
    g_opt, d_opt = build_optimizer(config, name="g"), build_optimizer(config, name="d")
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    if args.backend == "jax" and fused:
        from beatgan.backends.jax_steps import FusedJaxSteps
        unroll = {"auto": None, "yes": True, "no": False}[args.unroll]
        steps = FusedJaxSteps(generator, discriminator, g_opt, d_opt, data,
                              gp_weight=config.gp_weight, unroll=unroll,
                              merge_critic_passes=args.critic_passes == "merged")
    else:
        steps = make_steps(generator, discriminator, g_opt, d_opt, data, config=config,
                           jit_compile=getattr(args, "jit_compile", False), fused=fused)
    sampler = BatchSampler(len(data), batch_size=config.batch_size,
                           latent_dim=config.latent_dim, seed=0)
    return steps, generator, discriminator, sampler


def forward_flops(model) -> int:
    """Forward FLOPs per example of a built model, from its layers' shapes (rule above)."""
    from keras import layers

    flops = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv1DTranspose):  # before Conv1D: a subclass in some versions
            _, in_len, c_in = layer.input.shape
            # Interpolating layers convolve with the folded kernel, longer than the learned one.
            taps = (layer.folded_kernel().shape[0] if hasattr(layer, "folded_kernel")
                    else layer.kernel_size[0])
            flops += 2 * in_len * taps * c_in * layer.filters
        elif isinstance(layer, layers.Conv1D):
            _, out_len, c_out = layer.output.shape
            flops += 2 * out_len * layer.kernel_size[0] * layer.input.shape[-1] * c_out
        elif isinstance(layer, layers.Dense):
            flops += 2 * layer.input.shape[-1] * layer.units
    return flops


def flops_per_update(config, generator, discriminator) -> tuple[int, int]:
    """(FLOPs per D update, FLOPs per G update) for a batch of ``config.batch_size``."""
    f_g = forward_flops(generator) * config.batch_size
    f_d = forward_flops(discriminator) * config.batch_size
    return f_g + 12 * f_d, 3 * f_g + 3 * f_d


def _block(out) -> None:
    """Wait for a step's results (JAX dispatches asynchronously)."""
    for value in out.values():
        getattr(value, "block_until_ready", lambda: None)()
        float(np.sum(np.asarray(value)))


def matmul_probe(backend: str, *, size: int, dtype: str, repeats: int = 5) -> float:
    """TFLOP/s of the best of ``repeats`` (size x size) @ (size x size) products on the device."""
    if backend == "jax":
        import jax
        import jax.numpy as jnp
        a = jnp.ones((size, size), dtype) / size
        product = jax.jit(lambda x: x @ x)
        product(a).block_until_ready()
        run = lambda: product(a).block_until_ready()  # noqa: E731
    else:
        import tensorflow as tf
        a = tf.ones((size, size), dtype) / size
        product = tf.function(lambda x: tf.matmul(x, x))
        product(a).numpy()
        run = lambda: product(a).numpy()  # noqa: E731
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e12


def draw_iteration(sampler, config) -> tuple:
    """One iteration's draws: indices (n_d, B), z (n_d, B, latent), alpha (n_d, B), z_g (B, latent)."""
    n_d = config.d_updates_per_g
    draws = [(sampler.indices(), sampler.latents(), sampler.alphas()) for _ in range(n_d)]
    indices, z, alpha = (np.stack(column) for column in zip(*draws))
    return indices, z, alpha, sampler.latents()


def run_and_block(steps, draws) -> None:
    """Run one iteration with the given draws and wait for all of its results."""
    from beatgan.backends import run_iteration

    d_out, g_out = run_iteration(steps, *draws)
    for out in (d_out if isinstance(d_out, list) else [d_out]) + [g_out]:
        _block(out)


def time_steps(steps, sampler, config, *, iterations: int, warmup: int) -> dict:
    """Seconds of the first ``warmup`` iterations (compilation included) and per timed iteration."""
    def iteration() -> float:
        draws = draw_iteration(sampler, config)
        start = time.perf_counter()
        run_and_block(steps, draws)
        return time.perf_counter() - start

    first = [iteration() for _ in range(warmup)]
    timed = sorted(iteration() for _ in range(iterations))
    median = timed[len(timed) // 2]
    return {"first_iterations_s": sum(first), "iteration_s": median,
            "compile_s": max(sum(first) - warmup * median, 0.0)}


def main(argv=None) -> dict:
    args = parse_args(argv)
    start_backend(args)
    import keras

    config, data = config_and_data(args)
    device, on_gpu = _device(args.backend)
    probe_dtype = "bfloat16" if config.mixed_precision else "float32"
    probe_size = args.probe_size or (8192 if on_gpu else 1024)
    probe_tflops = matmul_probe(args.backend, size=probe_size, dtype=probe_dtype)

    def build_and_time(fused: bool) -> dict:
        steps, generator, discriminator, sampler = build_steps(args, config, data, fused=fused)
        timing = time_steps(steps, sampler, config, iterations=args.iterations,
                            warmup=args.warmup)
        d_flops, g_flops = flops_per_update(config, generator, discriminator)
        iteration_flops = config.d_updates_per_g * d_flops + g_flops
        tflops = iteration_flops / timing["iteration_s"] / 1e12
        out = {"step": _step_name(args, steps),
               "d_updates_per_s": round(config.d_updates_per_g / timing["iteration_s"], 3),
               "iteration_s": round(timing["iteration_s"], 4),
               "tflops": float(f"{tflops:.4g}"),
               "fraction_of_probe": round(tflops / probe_tflops, 4),
               "compile_s": round(timing["compile_s"], 1),
               "tflop_per_d_update": float(f"{d_flops / 1e12:.4g}")}
        if args.memory_analysis and hasattr(steps, "_iteration"):
            out.update(_memory(steps, config))
        return out

    result = {"backend": keras.backend.backend(), "device": device,
              "precision": "mixed_bfloat16" if config.mixed_precision else "float32",
              "matmul_precision": _matmul_precision(args.backend),
              "model_dim": config.model_dim, "batch": config.batch_size,
              "upsample": config.upsample, "phase_shuffle_per": config.phase_shuffle_per,
              "probe_tflops": round(probe_tflops, 3), "probe_dtype": probe_dtype,
              "probe_size": probe_size}
    if args.backend == "jax" and args.reference_only:
        result.update(build_and_time(fused=False))
    else:
        result.update(build_and_time(fused=True))
        if args.backend == "jax" and args.compare_reference:
            reference = build_and_time(fused=False)
            result["reference"] = reference
            result["speedup_over_reference"] = round(
                reference["iteration_s"] / result["iteration_s"], 3)
    print(json.dumps(result))
    sys.stdout.flush()
    return result


def _device(backend: str) -> tuple[str, bool]:
    """(the first device's name, whether it is a GPU)."""
    if backend == "jax":
        import jax
        dev = jax.devices()[0]
        return f"{dev.platform}:{dev.device_kind}", dev.platform == "gpu"
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
        return f"gpu:{name}", True
    return f"cpu:{platform.processor() or platform.machine()}", False


def _matmul_precision(backend: str) -> str:
    if backend == "jax":
        import jax
        return str(jax.config.jax_default_matmul_precision or "default (TF32 on recent NVIDIA GPUs)")
    import tensorflow as tf
    if not tf.config.experimental.tensor_float_32_execution_enabled():
        return "float32"
    return "tf32" if tf.config.list_physical_devices("GPU") else "float32 (TF32 only on NVIDIA GPUs)"


def _step_name(args, steps) -> str:
    if args.backend == "tensorflow":
        return "tf xla" if args.jit_compile else "tf.function"
    if hasattr(steps, "iteration"):
        passes = "merged" if steps.merge_critic_passes else "separate"
        return f"jax fused ({'unrolled' if steps.unroll else 'scan'}, {passes} critic passes)"
    return "jax plain (reference)"


def _memory(steps, config) -> dict:
    """XLA's memory figures for the fused iteration's program (compiled once more), in GiB."""
    n_d, b, latent = config.d_updates_per_g, config.batch_size, config.latent_dim
    compiled = steps._iteration.lower(
        steps.state, steps.data, np.zeros((n_d, b), np.int32),
        np.zeros((n_d, b, latent), np.float32), np.zeros((n_d, b), np.float32),
        np.zeros((b, latent), np.float32)).compile()
    memory = compiled.memory_analysis()
    gib = 2 ** 30
    return {"xla_temp_gib": round(memory.temp_size_in_bytes / gib, 3),
            "xla_argument_gib": round(memory.argument_size_in_bytes / gib, 3)}


if __name__ == "__main__":
    main()
