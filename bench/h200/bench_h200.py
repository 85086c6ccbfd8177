"""The full-size benchmark on the H200: D updates/s in float32 and bfloat16, against the measured
bf16 matrix rate of the same GPU, in one command.

    python bench/h200/bench_h200.py [--out DIR] [--iterations 40] [--model-dim 64 --batch-size 64]

Three child processes, one after the other (each JAX process takes most of the GPU's memory):

1. ``matmul``: an 8192 x 8192 x 8192 bf16 product through ``jax.numpy`` on random data: three
   warm-ups, then 5 rounds of 10 products on rotating inputs dispatched back to back; the median
   round gives the measured bf16 matrix rate (TFLOP/s, 2 * 8192^3 FLOPs per product).
2. ``bench/bench_train.py --backend jax`` at d = 64, batch 64, float32;
3. the same with ``--mixed-precision`` (bfloat16 compute, float32 weights).

Prints a table: D updates/s, TFLOP per D update, achieved TFLOP/s and that as a fraction of the
measured bf16 matrix rate (the ceiling for the bf16 run; float32 convolutions on Hopper run on
TF32 or plain FP32 units, so their fraction of the bf16 rate is a lower bound of how busy the
GPU is). Writes bench_h200.json and bench_h200.txt (all child output) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
MATMUL_N = 8192
#: bench_train.py's output lines -> keys of this script's results.
FIELDS = {
    "D updates per second": "d_updates_per_s",
    "seconds per D update": "s_per_d_update",
    "FLOPs per D update": "tflop_per_d_update",
    "achieved (D updates)": "achieved_tflops",
    "warm-up (compile": "warmup_s",
}


def matmul_rate(n: int = MATMUL_N, *, rounds: int = 5, per_round: int = 10) -> dict:
    """Measured bf16 matrix-multiply rate in TFLOP/s (median round); see the module docstring."""
    import jax
    import jax.numpy as jnp

    keys = jax.random.split(jax.random.PRNGKey(0), 6)
    # Three input pairs, rotated, so that no product reuses the previous one's operands in L2.
    inputs = [(jax.random.normal(keys[2 * i], (n, n), jnp.bfloat16),
               jax.random.normal(keys[2 * i + 1], (n, n), jnp.bfloat16)) for i in range(3)]
    product = jax.jit(jnp.matmul)
    for a, b in inputs:
        product(a, b).block_until_ready()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        outs = [product(*inputs[i % 3]) for i in range(per_round)]
        for out in outs:
            out.block_until_ready()
        times.append((time.perf_counter() - start) / per_round)
    seconds = sorted(times)[len(times) // 2]
    flops = 2.0 * n ** 3
    check = jnp.abs(outs[-1]).astype(jnp.float32).mean()
    if not bool(jnp.isfinite(check)) or float(check) == 0.0:
        raise RuntimeError(f"matmul result looks wrong (mean |x| = {float(check)})")
    return {"n": n, "seconds": seconds, "tflops": flops / seconds / 1e12,
            "rounds_s": times, "device": jax.devices()[0].device_kind,
            "jax": jax.__version__}


def parse_bench_train(text: str) -> dict:
    """The figures bench_train.py prints, as numbers."""
    out = {}
    for line in text.splitlines():
        for label, key in FIELDS.items():
            if line.startswith(label):
                number = re.search(r":\s*([-+0-9.eE]+)", line)
                if number:
                    out[key] = float(number.group(1))
    return out


def run_child(args: list[str], log: list[str], *, timeout_s: float) -> str:
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(REPO)) if p)
    print(f"$ {' '.join(args)}", flush=True)
    start = time.perf_counter()
    try:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout_s)
        text, rc = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as err:
        text = (err.stdout or b"").decode(errors="replace") if isinstance(err.stdout, bytes) else (err.stdout or "")
        rc = "timeout"
    log.append(f"$ {' '.join(args)}\n(exit {rc}, {time.perf_counter() - start:.1f} s)\n{text}\n")
    print(text[-3000:], flush=True)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    parser.add_argument("--model-dim", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=40, help="timed iterations per run")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--matmul-n", type=int, default=MATMUL_N)
    parser.add_argument("--child-timeout-s", type=float, default=180.0)
    parser.add_argument("--matmul-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.matmul_only:  # the child of step 1
        print("MATMUL " + json.dumps(matmul_rate(args.matmul_n)))
        return 0

    log: list[str] = []
    results: dict = {"model_dim": args.model_dim, "batch_size": args.batch_size,
                     "iterations": args.iterations, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    text = run_child([sys.executable, __file__, "--matmul-only", "--matmul-n", str(args.matmul_n)],
                     log, timeout_s=args.child_timeout_s)
    found = [line for line in text.splitlines() if line.startswith("MATMUL ")]
    results["matmul_bf16"] = json.loads(found[-1][7:]) if found else None
    bench = [sys.executable, str(REPO / "bench" / "bench_train.py"), "--backend", "jax",
             "--model-dim", str(args.model_dim), "--batch-size", str(args.batch_size),
             "--iterations", str(args.iterations), "--warmup", str(args.warmup)]
    for name, extra in (("float32", []), ("bfloat16", ["--mixed-precision"])):
        results[name] = parse_bench_train(run_child(bench + extra, log,
                                                    timeout_s=args.child_timeout_s))

    peak = results["matmul_bf16"]["tflops"] if results["matmul_bf16"] else None
    rows = [f"{'run':10} {'D upd/s':>9} {'TFLOP/D':>8} {'TFLOP/s':>8} {'of bf16 mm':>10}"]
    for name in ("float32", "bfloat16"):
        r = results[name]
        if "achieved_tflops" in r and peak:
            r["fraction_of_measured_bf16"] = r["achieved_tflops"] / peak
        rows.append(f"{name:10} {r.get('d_updates_per_s', float('nan')):9.1f} "
                    f"{r.get('tflop_per_d_update', float('nan')):8.3f} "
                    f"{r.get('achieved_tflops', float('nan')):8.2f} "
                    f"{r.get('fraction_of_measured_bf16', float('nan')):10.1%}")
    rows.append(f"measured bf16 matmul {args.matmul_n}^3: "
                + (f"{peak:.0f} TFLOP/s on {results['matmul_bf16']['device']}" if peak else "FAILED"))
    rows.append("aim: >= 170 D updates/s (the seed's 200k D updates in 20 minutes)")
    table = "\n".join(rows)
    results["table"] = table
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_h200.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "bench_h200.txt").write_text("".join(log) + "\n" + table + "\n")
    print("\n" + table, flush=True)
    return 0 if peak and all("d_updates_per_s" in results[k] for k in ("float32", "bfloat16")) else 1


if __name__ == "__main__":
    sys.exit(main())
