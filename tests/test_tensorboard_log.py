"""TensorBoard logging: the event files read back with TensorBoard's own reader."""

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from beatgan import tensorboard_log

sys.path.insert(0, str(Path(__file__).parent))
import _rollback_worker  # noqa: E402

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="tensorboard (the [tensorboard] extra, in [dev]) reads the event files back")


def _read(log_dir):
    events = event_accumulator.EventAccumulator(str(log_dir), size_guidance={"audio": 0, "scalars": 0})
    events.Reload()
    return events


def test_scalars_and_audio_previews_read_back(tmp_path, rng):
    writer = tensorboard_log.EventWriter(tmp_path)
    writer.scalars(3, {"d_loss": 1.5, "g_loss": -0.25})
    writer.scalars(4, {"d_loss": 0.75, "g_loss": 2.0})
    clips = rng.uniform(-0.9, 0.9, (2, 100, 2)).astype("float32")
    clips[1, 0, 0] = 3.0  # out of range: clipped, not refused
    writer.audio(4, "preview", clips, sample_rate_hz=14700)
    writer.close()
    assert [p.name.startswith("events.out.tfevents.") for p in tmp_path.iterdir()] == [True]
    events = _read(tmp_path)
    assert [(e.step, e.value) for e in events.Scalars("d_loss")] == [(3, 1.5), (4, 0.75)]
    assert [(e.step, e.value) for e in events.Scalars("g_loss")] == [(3, -0.25), (4, 2.0)]
    assert sorted(events.Tags()["audio"]) == ["preview/0", "preview/1"]
    (first,) = events.Audio("preview/0")
    assert first.step == 4 and first.sample_rate == 14700 and first.length_frames == 100
    assert first.content_type == "audio/wav"
    wav, rate = sf.read(io.BytesIO(first.encoded_audio_string), dtype="float32")
    assert rate == 14700 and wav.shape == (100, 2)
    np.testing.assert_allclose(wav, clips[0], atol=1 / 2 ** 15)  # 16-bit PCM
    (second,) = events.Audio("preview/1")
    assert sf.read(io.BytesIO(second.encoded_audio_string))[0].max() == pytest.approx(1.0, abs=1e-4)


def test_a_resumed_run_adds_a_file_and_steps_merge(tmp_path):
    for step in (1, 2):
        writer = tensorboard_log.EventWriter(tmp_path)
        writer.scalars(step, {"d_loss": float(step)})
        writer.close()
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    assert [(e.step, e.value) for e in _read(tmp_path).Scalars("d_loss")] == [(1, 1.0), (2, 2.0)]


# --- a run that goes back: TensorBoard shows only what the run kept ---------------------------
def test_after_a_rollback_the_curves_hold_the_kept_rows_once_each(tmp_path, monkeypatch):
    """Rolled back from 5 to 2 (``_rollback_worker``'s injected jump): TensorBoard's reader drops
    what was logged at 3-5 before the rollback, and the curves are the run's history."""
    import warnings

    from beatgan import training
    from beatgan.stability import TrainingInstabilityWarning

    monkeypatch.setattr(training, "InstabilityMonitor", _rollback_worker.InjectedJump)
    monkeypatch.setattr(_rollback_worker.InjectedJump, "remaining", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingInstabilityWarning)
        result = _rollback_worker._train(tmp_path, 8, on_instability="rollback",
                                         tensorboard=True)
    assert [(r["at_step"], r["to_step"]) for r in result.rollbacks] == [(5, 2)]
    curve = [(e.step, e.value) for e in _read(tmp_path / "tensorboard").Scalars("d_loss")]
    assert curve == [(row["step"], pytest.approx(row["d_loss"], rel=1e-6))
                     for row in result.history]
    assert [step for step, _ in curve] == list(range(1, 9))


def test_a_rollback_on_the_way_out_drops_the_discarded_steps_too(tmp_path, monkeypatch):
    """Ctrl-C during iteration 5, whose row jumps: the stop path rolls back to 2, and TensorBoard
    must drop step 4 as the main loop's rollbacks do (it once kept it)."""
    import os
    import signal
    import warnings

    from beatgan import training
    from beatgan.stability import TrainingInstabilityWarning

    monkeypatch.setattr(training, "InstabilityMonitor", _rollback_worker.InjectedJump)
    monkeypatch.setattr(_rollback_worker.InjectedJump, "remaining", 1)
    real = training._TrainingState.iteration

    def interrupted_at_5(self):
        if self.step == 4 and not getattr(self, "interrupted", False):
            self.interrupted = True
            os.kill(os.getpid(), signal.SIGINT)
        return real(self)

    monkeypatch.setattr(training._TrainingState, "iteration", interrupted_at_5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingInstabilityWarning)
        result = _rollback_worker._train(tmp_path, 8, on_instability="rollback",
                                         tensorboard=True, log_every=2)
    assert result.stop_reason == "interrupted" and result.step == 2
    steps = [e.step for e in _read(tmp_path / "tensorboard").Scalars("d_loss")]
    assert steps == [row["step"] for row in result.history] == [2]


def test_a_run_resumed_after_a_crash_shows_each_step_once(tmp_path):
    """A crash after iteration 4 that lost checkpoint 4: the resumed run logs 3 and 4 again from
    checkpoint 2, and TensorBoard keeps those, not both."""
    from beatgan import checkpoint as ckpt

    first = _rollback_worker._train(tmp_path, 4, tensorboard=True)
    assert first.checkpoint.name == "ckpt-00000004.npz"
    first.checkpoint.unlink()
    again = _rollback_worker._train(tmp_path, 6, tensorboard=True)
    assert again.resumed_from == 2
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [2, 4, 6]
    curve = [(e.step, e.value) for e in _read(tmp_path / "tensorboard").Scalars("d_loss")]
    assert [step for step, _ in curve] == [1, 2, 3, 4, 5, 6]
    assert curve == [(row["step"], pytest.approx(row["d_loss"], rel=1e-6))
                     for row in again.history]
