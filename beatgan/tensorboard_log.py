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
from tensorboardX.proto.event_pb2 import Event, SessionLog


class EventWriter:
    """Appends TensorBoard events to a new ``events.out.tfevents.*`` file in ``log_dir``.

    A resumed run adds a file beside the old ones; TensorBoard merges them by step.
    ``start_session`` marks where a resumed or rolled-back run continues from, so that
    TensorBoard drops what an earlier session logged past that point.
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

    def start_session(self, step: int) -> None:
        """Mark a (re)start whose first logged step is ``step``.

        TensorBoard reads every start after a run's first as a restart and drops the events
        logged earlier at steps >= ``step`` (its Python reader does so on this marker, its
        data server on any step that goes back), so the curves show only what the run kept.
        """
        # tensorboardX has no public call for a session log event; its file writer takes any event.
        self._writer._get_file_writer().add_event(
            Event(session_log=SessionLog(status=SessionLog.START)), step=int(step))

    def audio(self, step: int, tag: str, clips: np.ndarray, *, sample_rate_hz: int) -> None:
        """Clips ``(k, time, channels)`` in [-1, 1] as ``tag/0`` ... ``tag/k-1`` at ``step``."""
        for i, clip in enumerate(np.clip(np.asarray(clips, dtype=np.float32), -1.0, 1.0)):
            self._writer.add_audio(f"{tag}/{i}", clip, global_step=step,
                                   sample_rate=int(sample_rate_hz))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
