"""Data parallelism over several devices, with each framework's own tool.

Each global batch (``config.batch_size`` examples) is split into equal
consecutive shards, one per device; every device holds a full copy of the
weights, the optimizer state and the training data, and the gradients are
summed over the devices before one identical update on each. That is the
same training as on one device with the same global batch:

- JAX: ``keras.distribution.DataParallel`` builds the device mesh and
  replicates the Keras variables; the jitted steps then run as one SPMD
  program over arrays sharded on the batch axis, so every mean, the
  gradient penalty's per-example norms and the phase-shuffle draw are
  the global program's (XLA inserts the all-reduces).
- TensorFlow: ``tf.distribute.MirroredStrategy`` runs the step once per
  replica on its shard; each replica's losses are its examples' sums
  divided by the global batch, so summing over the replicas (what the
  Keras optimizer's all-reduce does to the gradients) gives the global
  means. The phase-shuffle seed state is a mirrored variable and the draw
  is stateless, so every replica draws the same shift: one per batch, as on
  one device, but with ``phase_shuffle_per="example"`` the same shifts for
  each replica's part, not one device's draws (then it is not the same
  training).

The host-side draws (data order, z, alpha) do not change: they are the same
global arrays as on one device, split after drawing.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import keras


@dataclasses.dataclass(frozen=True)
class DataParallelPlan:
    """Where the replicas run and the framework object that places them.

    devices: device names, one replica each (``"gpu:0"`` on JAX, ``"/device:GPU:0"`` on TF).
    batch_size: the global batch, split into ``batch_size // len(devices)`` per device.
    strategy: ``keras.distribution.DataParallel`` (JAX) or ``tf.distribute.MirroredStrategy`` (TF).
    """

    devices: tuple[str, ...]
    batch_size: int
    strategy: Any

    @property
    def n_devices(self) -> int:
        return len(self.devices)

    @property
    def per_device_batch(self) -> int:
        return self.batch_size // self.n_devices

    def scope(self):
        """Build models and optimizers inside this: their variables get one copy per device."""
        return self.strategy.scope()


def available_devices() -> list[str]:
    """Devices of the active backend: the GPUs (or TPUs) if any, else the CPU devices."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        gpus = tf.config.list_logical_devices("GPU")
        return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    if backend == "jax":
        return list(keras.distribution.list_devices())
    raise NotImplementedError(f"data parallelism on the {backend!r} backend")


def device_kind() -> str:
    """What the active backend computes on: the first GPU's (or TPU's) model name, such as
    "NVIDIA H200", else "cpu"."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        return str(jax.devices()[0].device_kind)
    if backend == "tensorflow":
        import tensorflow as tf
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return "cpu"
        return str(tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU"))
    return "unknown"


def device_count(devices: int | str | None) -> int:
    """How many devices ``devices`` (None, N, "N" or "all") asks for; checks the request."""
    if devices is None:
        return 1
    if isinstance(devices, str):
        if devices.strip().lower() == "all":
            return len(available_devices())
        if not devices.strip().isdigit():
            raise ValueError(f"devices must be a positive integer or 'all', got {devices!r}")
        devices = int(devices)
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ValueError(f"devices must be a positive integer or 'all', got {devices!r}")
    return devices


def check_devices(devices: int | str | None, *, batch_size: int) -> int:
    """The device count ``devices`` asks for, checked against the backend's devices and the
    batch (cheap: builds nothing, so a command can check before it loads data).

    Raises ValueError when more devices are asked for than the backend sees, or
    when ``batch_size`` does not divide evenly over them.
    """
    n = device_count(devices)
    if n == 1:
        return 1
    if batch_size % n:
        raise ValueError(f"batch_size={batch_size} does not split evenly over {n} devices; "
                         f"use a device count that divides it (or change --batch-size)")
    found = available_devices()
    if n > len(found):
        raise ValueError(f"asked for {n} devices, the {keras.backend.backend()} backend sees "
                         f"{len(found)}: {found}")
    return n


def data_parallel(devices: int | str | None, *, batch_size: int) -> DataParallelPlan | None:
    """A plan splitting each batch of ``batch_size`` over ``devices``; None for one device.

    Raises ValueError when more devices are asked for than the backend sees, or
    when ``batch_size`` does not divide evenly over them.
    """
    n = check_devices(devices, batch_size=batch_size)
    if n == 1:
        return None
    chosen = tuple(available_devices()[:n])
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        strategy = tf.distribute.MirroredStrategy(list(chosen))
    else:
        strategy = keras.distribution.DataParallel(devices=list(chosen))
    return DataParallelPlan(devices=chosen, batch_size=batch_size, strategy=strategy)


def scope(plan: DataParallelPlan | None):
    """``plan.scope()``, or a no-op for one device."""
    return contextlib.nullcontext() if plan is None else plan.scope()
