"""Benchmark the WGAN-GP training steps: seconds per D update, D updates/s, TFLOP/s.

Times the compiled steps that ``beatgan.train`` runs (``beatgan.backends``)
on random data, after a warm-up that compiles them. Prints one line per
figure; it does not pass or fail on speed.

    python bench/bench_train.py --model-dim 16 --batch-size 16 --backend tensorflow
    python bench/bench_train.py --model-dim 64 --batch-size 64 --backend jax --mixed-precision

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

Measured on the 2-core AVX-512 development CPU, batch 16, seconds per iteration
(5 D + 1 G), shared with other jobs so +-30% or worse:
  TensorFlow tf.function, float32:  d=4 0.19, d=8 0.47, d=16 0.55, d=32 2.5, d=64 11.7
  TensorFlow, mixed bfloat16:       d=16 0.78, d=32 1.8, d=64 7.0
  TensorFlow XLA (jit_compile):     d=16 3.4, d=32 25.6   (hence tf.function by default)
  JAX (XLA), float32:               d=16 9.0, d=32 39.1
  d=64, batch 64, TF float32:       11.2 s per D update, 58 s per iteration (0.13 TFLOP/s)
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dim", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow")
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--jit-compile", action="store_true", help="TensorFlow: compile with XLA")
    parser.add_argument("--iterations", type=int, default=3,
                        help="timed iterations (each d_updates_per_g D updates + 1 G update)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations (compilation)")
    parser.add_argument("--slice-len", type=int, default=16384)
    return parser.parse_args(argv)


def forward_flops(model) -> int:
    """Forward FLOPs per example of a built model, from its layers' shapes (rule above)."""
    from keras import layers

    flops = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv1DTranspose):  # before Conv1D: a subclass in some versions
            _, in_len, c_in = layer.input.shape
            flops += 2 * in_len * layer.kernel_size[0] * c_in * layer.filters
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
        float(value)


def main(argv=None) -> None:
    args = parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend  # before keras is imported
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    from beatgan.backends import make_steps
    from beatgan.config import Config
    from beatgan.model import build_discriminator, build_generator
    from beatgan.training import BatchSampler, build_optimizer

    config = Config(model_dim=args.model_dim, batch_size=args.batch_size,
                    mixed_precision=args.mixed_precision, slice_len=args.slice_len)
    generator, discriminator = build_generator(config), build_discriminator(config)
    g_opt, d_opt = build_optimizer(config, name="g"), build_optimizer(config, name="d")
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    n_examples = 2 * config.batch_size
    data = np.random.default_rng(0).uniform(
        -0.5, 0.5, (n_examples, config.slice_len, config.channels)).astype(np.float32)
    steps = make_steps(generator, discriminator, g_opt, d_opt, data, config=config,
                       jit_compile=args.jit_compile)
    sampler = BatchSampler(n_examples, batch_size=config.batch_size,
                           latent_dim=config.latent_dim, seed=0)

    def timed_iteration() -> tuple[float, float]:
        start = time.perf_counter()
        for _ in range(config.d_updates_per_g):
            _block(steps.d_step(sampler.indices(), sampler.latents(), sampler.alphas()))
        middle = time.perf_counter()
        _block(steps.g_step(sampler.latents()))
        return middle - start, time.perf_counter() - middle

    start = time.perf_counter()
    for _ in range(args.warmup):
        timed_iteration()
    warmup_s = time.perf_counter() - start
    d_times, g_times = zip(*(timed_iteration() for _ in range(args.iterations)))
    d_s = sum(d_times) / (args.iterations * config.d_updates_per_g)  # per D update
    g_s = sum(g_times) / args.iterations
    iteration_s = (sum(d_times) + sum(g_times)) / args.iterations
    d_flops, g_flops = flops_per_update(config, generator, discriminator)
    iteration_flops = config.d_updates_per_g * d_flops + g_flops
    mode = "xla" if args.jit_compile or args.backend == "jax" else "tf.function"
    print(f"backend={keras.backend.backend()} ({mode}) model_dim={config.model_dim} "
          f"batch={config.batch_size} mixed_precision={config.mixed_precision} "
          f"G params={generator.count_params():,} D params={discriminator.count_params():,}")
    print(f"warm-up (compile + {args.warmup} iteration): {warmup_s:.1f} s")
    print(f"seconds per D update:      {d_s:.4f}")
    print(f"D updates per second:      {1 / d_s:.2f}")
    print(f"seconds per G update:      {g_s:.4f}")
    print(f"seconds per iteration:     {iteration_s:.3f}  ({config.d_updates_per_g} D + 1 G)")
    print(f"FLOPs per D update:        {d_flops / 1e12:.4f} TFLOP")
    print(f"FLOPs per iteration:       {iteration_flops / 1e12:.4f} TFLOP")
    print(f"achieved (D updates):      {d_flops / d_s / 1e12:.3f} TFLOP/s")
    print(f"achieved (iterations):     {iteration_flops / iteration_s / 1e12:.3f} TFLOP/s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
