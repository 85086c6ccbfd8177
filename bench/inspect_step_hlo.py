"""Compile one JAX training step on this machine (no run) and summarise its XLA program.

Prints the compiler's own estimates: FLOPs and bytes from ``cost_analysis``,
argument/temp/output sizes from ``memory_analysis``, the count of each
kind of heavy op (convolution, gather, scatter, while) and the largest
intermediate shapes. Lowering needs no accelerator, so this shows where a
step's time and memory should go before any GPU run; the backend's own
passes (cuDNN rewrites, fusion) still differ from the CPU's.

    python bench/inspect_step_hlo.py --model-dim 64 --batch-size 64 --step plain
    python bench/inspect_step_hlo.py --model-dim 64 --batch-size 64 --step fused --mixed-precision

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys
import time

HEAVY_OPS = ("convolution", "gather", "scatter", "while", "dynamic-slice", "dynamic-update-slice",
             "dot", "custom-call")
ELEMENT_BYTES = {"f32": 4, "bf16": 2, "f16": 2, "s32": 4, "u32": 4, "pred": 1, "f64": 8, "s8": 1,
                 "u8": 1}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dim", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--step", choices=("plain", "fused"), default="plain",
                        help="plain: one D update; fused: one iteration (all D updates + G)")
    parser.add_argument("--unroll", choices=("auto", "yes", "no"), default="auto",
                        help="fused: unroll the critic updates (auto: as training does here)")
    parser.add_argument("--top", type=int, default=8, help="largest shapes to list")
    parser.add_argument("--dump", help="write the optimised HLO text to this file")
    return parser.parse_args(argv)


def op_counts(hlo: str) -> dict[str, int]:
    """How many instructions of each heavy kind the optimised HLO text holds."""
    counts: collections.Counter = collections.Counter()
    # The op is the first lowercase word before "(" after "name = ": a tuple-shaped result such
    # as a while's, "(s32[], f32[8]{0}) while(", holds spaces, and layouts' T(...) are uppercase.
    for match in re.finditer(r"^\s*(?:ROOT )?\S+ = [^\n]*? ([a-z][a-z0-9-]*)\(", hlo, re.M):
        if match.group(1) in HEAVY_OPS:
            counts[match.group(1)] += 1
    return dict(sorted(counts.items()))


def largest_shapes(hlo: str, top: int) -> list[tuple[str, float]]:
    """The ``top`` largest array shapes (dtype[dims], MiB) written by any instruction."""
    sizes = {}
    for dtype, dims in re.findall(r"= (\w+)\[([\d,]*)\]", hlo):
        if dtype not in ELEMENT_BYTES or not dims:
            continue
        n = 1
        for d in dims.split(","):
            n *= int(d)
        sizes[f"{dtype}[{dims}]"] = n * ELEMENT_BYTES[dtype] / 2 ** 20
    return sorted(sizes.items(), key=lambda kv: -kv[1])[:top]


def main(argv=None) -> None:
    args = parse_args(argv)
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import jax
    import numpy as np

    from beatgan.backends.jax_steps import FusedJaxSteps, JaxSteps
    from beatgan.config import Config
    from beatgan.model import build_discriminator, build_generator
    from beatgan.training import build_optimizer

    config = Config(model_dim=args.model_dim, batch_size=args.batch_size,
                    mixed_precision=args.mixed_precision)
    generator, discriminator = build_generator(config), build_discriminator(config)
    g_opt, d_opt = build_optimizer(config, name="g"), build_optimizer(config, name="d")
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    data = np.zeros((config.batch_size, config.slice_len, config.channels), np.float32)
    if args.step == "plain":
        steps = JaxSteps(generator, discriminator, g_opt, d_opt, data, gp_weight=config.gp_weight)
    else:
        steps = FusedJaxSteps(generator, discriminator, g_opt, d_opt, data,
                              gp_weight=config.gp_weight,
                              unroll={"auto": None, "yes": True, "no": False}[args.unroll])
    b, n_d, latent = config.batch_size, config.d_updates_per_g, config.latent_dim
    start = time.perf_counter()
    if args.step == "plain":
        lowered = steps._d_step.lower(steps.state, steps.data, np.zeros(b, np.int32),
                                      np.zeros((b, latent), np.float32), np.zeros(b, np.float32))
    else:
        lowered = steps._iteration.lower(
            steps.state, steps.data, np.zeros((n_d, b), np.int32),
            np.zeros((n_d, b, latent), np.float32), np.zeros((n_d, b), np.float32),
            np.zeros((b, latent), np.float32))
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start
    hlo = compiled.as_text()
    if args.dump:
        with open(args.dump, "w") as f:
            f.write(hlo)
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    memory = compiled.memory_analysis()
    gib = 2 ** 30
    result = {
        "step": args.step if args.step == "plain" else f"fused (unroll={steps.unroll})", "model_dim": config.model_dim, "batch": b,
        "precision": "mixed_bfloat16" if config.mixed_precision else "float32",
        "device": jax.devices()[0].device_kind, "compile_s": round(compile_s, 1),
        "xla_tflop": round(float(cost.get("flops", 0.0)) / 1e12, 4),
        "xla_bytes_accessed_gib": round(float(cost.get("bytes accessed", 0.0)) / gib, 3),
        "temp_gib": round(memory.temp_size_in_bytes / gib, 3),
        "argument_gib": round(memory.argument_size_in_bytes / gib, 3),
        "output_gib": round(memory.output_size_in_bytes / gib, 3),
        "alias_gib": round(memory.alias_size_in_bytes / gib, 3),
        "ops": op_counts(hlo),
        "largest_mib": [(s, round(m, 1)) for s, m in largest_shapes(hlo, args.top)],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
