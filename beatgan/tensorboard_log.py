"""TensorBoard logging of a training run: loss scalars and WAV audio previews, via tensorboardX.

``tensorboard --logdir RUN_DIR/tensorboard`` (``pip install .[tensorboard]``) shows the curves and
plays the previews. tensorboardX writes the event files itself, so logging works the same under
every Keras backend and needs neither TensorFlow nor TensorBoard installed.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tensorboardX import SummaryWriter


class EventWriter:
    """Appends TensorBoard events to a new ``events.out.tfevents.*`` file in ``log_dir``.

    A resumed run adds a file beside the old ones; TensorBoard merges them by step.
    """

    def __init__(self, log_dir: str | Path):
        self.log_dir = Path(log_dir)
        # tensorboardX names files by the second and opens them "wb": a writer started in the
        # same second (a quick resume) would truncate the last one without a finer suffix.
        self._writer = SummaryWriter(logdir=str(self.log_dir), filename_suffix=f".{time.time_ns()}")

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """One scalar per tag at ``step``."""
        for tag, value in values.items():
            self._writer.add_scalar(tag, float(value), global_step=step)

    def audio(self, step: int, tag: str, clips: np.ndarray, *, sample_rate_hz: int) -> None:
        """Clips ``(k, time, channels)`` in [-1, 1] as ``tag/0`` ... ``tag/k-1`` at ``step``."""
        for i, clip in enumerate(np.clip(np.asarray(clips, dtype=np.float32), -1.0, 1.0)):
            self._writer.add_audio(f"{tag}/{i}", clip, global_step=step,
                                   sample_rate=int(sample_rate_hz))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
