"""TensorBoard logging: the event files read back with TensorBoard's own reader."""

import io

import numpy as np
import pytest
import soundfile as sf

from beatgan import tensorboard_log

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
