"""Subprocess helper for tests/test_distributed.py: the same tiny run on 1 and 2 devices.

Usage: KERAS_BACKEND=jax|tensorflow python tests/_distributed_worker.py OUT_DIR

The device count must be fixed before the framework starts, so this process
makes two virtual CPU devices first (JAX: ``XLA_FLAGS``; TensorFlow: two
logical devices on the CPU). Then, under OUT_DIR, it trains:

    one/        1 device, 2 iterations, a checkpoint after each (the reference)
    two/        2 devices, 1 iteration; then resumed on 1 device to 2
    one_two/    one/'s first checkpoint, resumed on 2 devices to 2

and prints ``RESULT {...}`` with the backend and the device counts it saw.
Each iteration is one D update and one G update (``d_updates_per_g=1``).
"""

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

N_DEVICES = 2


def virtual_devices(backend: str, cache_dir: str) -> None:
    """Two CPU devices, before the framework initialises its devices."""
    if backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={N_DEVICES}"
        import jax
        # The four runs compile two programs per device count: compile each once.
        jax.config.update("jax_compilation_cache_dir", cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    else:
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(N_DEVICES)])


def tiny_config():
    from beatgan.config import Config
    # Phase shuffle on (n = 2): the shift must be the same global draw on every replica.
    return Config(model_dim=2, batch_size=4, d_updates_per_g=1, phase_shuffle=2, seed=7)


def tiny_data(config, n: int = 6) -> np.ndarray:
    """Deterministic stand-in audio: decaying noise bursts, float32 (n, slice_len, 2)."""
    rng = np.random.default_rng(0)
    t = np.arange(config.slice_len) / config.sample_rate_hz
    envelope = np.exp(-30 * (t % 0.24))[None, :, None]
    return (0.5 * envelope * rng.uniform(-1, 1, (n, config.slice_len, 2))).astype(np.float32)


def main(out_dir: str) -> None:
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    virtual_devices(backend, cache_dir=str(Path(out_dir) / "jax_cache"))
    from beatgan.backends.parallel import available_devices
    from beatgan.training import train

    config = tiny_config()
    data = tiny_data(config)
    out = Path(out_dir)
    options = dict(checkpoint_every=1, keep=10, log_every=1, preview_every=10_000,
                   tensorboard=False, export=False, progress=False)

    def run(name: str, iterations: int, devices: int | None):
        return train(data, config, run_dir=out / name, iterations=iterations, devices=devices,
                     **options)

    run("one", 2, None)
    run("two", 1, N_DEVICES)
    resumed_on_one = run("two", 2, 1)
    (out / "one_two" / "checkpoints").mkdir(parents=True)
    shutil.copy(out / "one" / "config.json", out / "one_two" / "config.json")
    shutil.copy(out / "one" / "checkpoints" / "ckpt-00000001.npz",
                out / "one_two" / "checkpoints" / "ckpt-00000001.npz")
    resumed_on_two = run("one_two", 2, N_DEVICES)
    print("RESULT " + json.dumps({
        "backend": backend, "available": len(available_devices()),
        "resumed_from": [resumed_on_one.resumed_from, resumed_on_two.resumed_from]}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
