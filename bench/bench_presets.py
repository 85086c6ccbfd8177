"""Benchmark the presets: parameters, FLOPs per D update and CPU seconds per D update.

For each preset (seed, bar, hifi) at d = 16 and d = 64: G and D parameter counts, the
analytic FLOPs of one D update, and the measured wall time of one D update (the compiled
``d_step`` of ``beatgan.backends`` on random data, after a warm-up that compiles it). Prints a
Markdown table; it does not pass or fail on speed. The 2-core development CPU is shared, so the
seconds are noisy (+-20 % between runs is normal).

    python bench/bench_presets.py                       # d=16 at batch 16, d=64 at batch 4
    python bench/bench_presets.py --dims 16 --batch-64 8 --updates 3

FLOP rule (the one bench/bench_train.py documents; one multiply-add = 2 FLOPs): forward F of a
network = sum over layers of 2 * MACs, Conv1D out_len * kernel * c_in * c_out,
Conv1DTranspose in_len * kernel * c_in * c_out, Dense n_in * n_out (activations, phase
shuffle, biases and Adam not counted); a backward pass costs 2 F. One D update = G forward
(F_G) + D forward and backward on real and fake (2 * 3 F_D) + the gradient penalty (D forward
on the interpolates, its input gradient, and the backward pass through both: 6 F_D), in all
F_G + 12 F_D per example, times the batch.
"""

from __future__ import annotations

import argparse
import os
import time


def forward_flops(config, network: str) -> int:
    """Forward FLOPs per example of the generator or discriminator (rule in the docstring)."""
    from beatgan.model import DENSE_STEPS, layer_strides, layer_widths

    strides, widths, k = layer_strides(config.slice_len), layer_widths(config), config.kernel_len
    if network == "generator":
        flops, length = 2 * config.latent_dim * DENSE_STEPS * widths[0], DENSE_STEPS
        for stride, c_in, c_out in zip(strides, widths, widths[1:] + (config.channels,)):
            flops += 2 * length * k * c_in * c_out  # each input step scatters k taps
            length *= stride
        return flops
    flops, length, c_in = 0, config.slice_len, config.channels
    for stride, c_out in zip(strides, widths[::-1]):  # D: same strides, extra layer last
        length //= stride
        flops += 2 * length * k * c_in * c_out
        c_in = c_out
    return flops + 2 * length * c_in  # the score layer


def d_update_flops(config) -> int:
    """FLOPs of one D update at ``config.batch_size``: (F_G + 12 F_D) * batch."""
    return (forward_flops(config, "generator")
            + 12 * forward_flops(config, "discriminator")) * config.batch_size


def time_d_update(config, *, updates: int) -> tuple[float, int, int]:
    """(seconds per D update, G params, D params), after one untimed (compiling) update."""
    import numpy as np

    from beatgan.backends import make_steps
    from beatgan.model import build_discriminator, build_generator
    from beatgan.training import BatchSampler, build_optimizer

    generator, discriminator = build_generator(config), build_discriminator(config)
    g_opt, d_opt = build_optimizer(config, name="g"), build_optimizer(config, name="d")
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    n = 2 * config.batch_size
    data = np.random.default_rng(0).uniform(-0.5, 0.5, (n, config.slice_len, config.channels))
    steps = make_steps(generator, discriminator, g_opt, d_opt, data.astype(np.float32),
                       config=config, jit_compile=False)
    sampler = BatchSampler(n, batch_size=config.batch_size, latent_dim=config.latent_dim, seed=0)

    def one() -> None:
        out = steps.d_step(sampler.indices(), sampler.latents(), sampler.alphas())
        for value in out.values():
            getattr(value, "block_until_ready", lambda: None)()
            float(value)

    one()  # compile
    start = time.perf_counter()
    for _ in range(updates):
        one()
    return ((time.perf_counter() - start) / updates, generator.count_params(),
            discriminator.count_params())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--batch-16", type=int, default=16, help="batch at d = 16 (and below)")
    parser.add_argument("--batch-64", type=int, default=4, help="batch at larger d (CPU time)")
    parser.add_argument("--updates", type=int, default=2, help="timed D updates per row")
    parser.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend
    import beatgan  # noqa: F401  (quiets TensorFlow's start-up lines before Keras loads it)
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    from beatgan.config import PRESETS, preset

    print(f"backend {args.backend}, {os.cpu_count()} CPUs (shared: figures are noisy), "
          f"{args.updates} timed D updates per row after one compiling update\n")
    print("| preset | slice @ rate | d | G params | D params | batch | GFLOP / D update "
          "| GFLOP / example | CPU s / D update | GFLOP/s |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in PRESETS:
        for d in args.dims:
            batch = args.batch_16 if d <= 16 else args.batch_64
            config = preset(name, model_dim=d, batch_size=batch)
            flops = d_update_flops(config)
            seconds, g_params, d_params = time_d_update(config, updates=args.updates)
            print(f"| {name} | {config.slice_len} @ {config.sample_rate_hz / 1000:g} kHz | {d} "
                  f"| {g_params:,} | {d_params:,} | {batch} | {flops / 1e9:,.1f} "
                  f"| {flops / batch / 1e9:,.2f} | {seconds:.2f} | {flops / seconds / 1e9:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
