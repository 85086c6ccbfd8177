"""Spotting a run that has become unstable, and keeping the checkpoint saved before it."""

import csv
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from beatgan import checkpoint as ckpt
from beatgan.stability import InstabilityMonitor, TrainingInstabilityWarning

HERE = Path(__file__).parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import _train_worker  # noqa: E402

#: The 2026-11-27 H200 bfloat16 run: healthy for 3,900 iterations, then wild swings.
H200_RUN = REPO / "docs" / "training-runs" / "2026-11-27-h200-bf16" / "history.csv"


def _rows(path):
    with path.open(newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def test_the_recorded_blow_up_is_flagged_where_its_curves_turn_and_not_before():
    monitor = InstabilityMonitor()
    firsts = [row["step"] for row in _rows(H200_RUN) if monitor.observe(row)]
    assert firsts == [3930]  # once only, at the jump from about 7 to 97
    assert monitor.unstable_at == 3930
    median, magnitude = monitor.jump
    assert 5.0 < median < 10.0 and magnitude == pytest.approx(96.94, abs=0.01)
    assert "3930" in monitor.message() and "96.9" in monitor.message()


def test_a_slowly_falling_noisy_estimate_is_not_flagged():
    rng = np.random.default_rng(0)
    steps = np.arange(10, 20_000, 10)
    w = 70.0 * np.exp(-steps / 2000.0) + 5.0 + rng.normal(0.0, 1.5, len(steps))
    monitor = InstabilityMonitor()
    assert not any(monitor.observe({"step": s, "wasserstein": v}) for s, v in zip(steps, w))
    assert monitor.unstable_at is None and monitor.message() == "no jump seen"


def test_a_fresh_critics_warm_up_is_not_flagged():
    """A d = 2 run's first 300 iterations (log every 10): the estimate rises from 0.02 to 104."""
    w = [0.0, 0.02, 0.05, 0.12, 0.24, 0.89, 4.08, 13.06, 26.18, 38.3, 48.59, 55.76, 60.92,
         65.32, 67.32, 68.92, 70.59, 74.42, 76.75, 81.41, 85.09, 88.04, 91.44, 94.69, 95.02,
         97.6, 98.53, 101.94, 102.83, 103.92]
    rows = [{"step": 10 * (i + 1), "wasserstein": v} for i, v in enumerate(w)]
    assert not any(InstabilityMonitor().observe(row) for row in rows)
    # The same rise judged from the start (no warm-up allowance) would be called a blow-up.
    early = InstabilityMonitor(min_step=0)
    assert [row["step"] for row in rows if early.observe(row)] == [110]


def test_a_resumed_history_is_taken_silently_and_not_flagged_twice():
    rows = _rows(H200_RUN)
    monitor = InstabilityMonitor()
    monitor.observe_all(rows[:500])  # step 5000: the jump is in there
    assert monitor.unstable_at == 3930
    assert not any(monitor.observe(row) for row in rows[500:])


def _judged(values, *, first_step=10, **kwargs):
    """Steps flagged among rows at steps first_step, first_step + 10, ... with these estimates."""
    monitor = InstabilityMonitor(**kwargs)
    steps = range(first_step, first_step + 10 * len(values), 10)
    flagged = [s for s, v in zip(steps, values) if monitor.observe({"step": s, "wasserstein": v})]
    return flagged, monitor


def test_a_jump_to_a_large_negative_estimate_is_flagged_like_a_positive_one():
    """Blow-ups swing in both signs: a healthy 5 followed by -300 is a jump of 300."""
    flagged, monitor = _judged([5.0, 4.0, 6.0] * 5 + [-300.0], min_step=0)
    assert flagged == [160] and monitor.jump == (5.0, 300.0)
    # A negative but calm estimate is no jump, and sets the median by its magnitude.
    flagged, monitor = _judged([-5.0] * 15 + [-40.0, 60.0], min_step=0)
    assert flagged == [170] and monitor.jump == (5.0, 60.0)


def test_a_jump_must_also_clear_the_floor():
    # Median 0.5: 15 is 30 times that but below the floor of 20; 25 clears both.
    flagged, monitor = _judged([0.5] * 12 + [15.0, 0.5, 25.0], min_step=0)
    assert flagged == [150] and monitor.jump == (0.5, 25.0)
    assert monitor.calm_step == 140  # 15 was not calm (> 2 x 0.5); the 0.5 after it was


def test_judgement_starts_at_min_step_inclusive_and_after_min_rows():
    rows = [1.0] * 19 + [100.0]  # steps 10 ... 190, then the jump at 200
    assert _judged(rows, min_step=200)[0] == [200]
    assert _judged(rows, min_step=210)[0] == []
    # Ten rows are needed before any judgement: the 10th row is not judged, the 11th is.
    assert _judged([1.0] * 9 + [100.0], min_step=0)[0] == []
    assert _judged([1.0] * 10 + [100.0], min_step=0)[0] == [110]


@pytest.mark.parametrize("kwargs", [dict(window=5, min_rows=10), dict(factor=1.0),
                                    dict(floor=-1.0), dict(min_rows=0), dict(min_step=-1)])
def test_bad_thresholds_are_refused(kwargs):
    with pytest.raises(ValueError):
        InstabilityMonitor(**kwargs)


def _save(directory, step, keep):
    return ckpt.save_checkpoint(directory, step=step, arrays={"x": np.full(2, step)},
                                meta={}, keep=keep)


def test_a_pinned_checkpoint_outlives_pruning_until_unpinned(tmp_path):
    for step in (1, 2):
        _save(tmp_path, step, keep=2)
    ckpt.pin_checkpoint(ckpt.checkpoint_path(tmp_path, 1), reason="before the jump")
    for step in (3, 4):
        _save(tmp_path, step, keep=2)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [1, 3, 4]  # pinned + newest 2
    marker = tmp_path / "ckpt-00000001.npz.keep"
    assert marker.read_text() == "before the jump\n"
    marker.unlink()
    _save(tmp_path, 5, keep=2)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [4, 5]
    with pytest.raises(FileNotFoundError):
        ckpt.pin_checkpoint(tmp_path / "ckpt-00000009.npz", reason="x")


class _JumpAt(InstabilityMonitor):
    """Flags the first row at or after ``STEP`` (a tiny model's losses do not blow up on cue)."""

    STEP = 3

    def observe(self, row):
        if self.unstable_at is None and row["step"] >= self.STEP:
            self.unstable_at, self.jump = int(row["step"]), (1.0, 99.0)
            return True
        return False


def test_training_warns_once_pins_the_checkpoint_before_the_jump_and_reports_it(
        tmp_path, monkeypatch):
    from beatgan import training
    from beatgan.cli import train_summary

    monkeypatch.setattr(training, "InstabilityMonitor", _JumpAt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = training.train(_train_worker.tiny_data(), _train_worker.CONFIG, run_dir=tmp_path,
                                iterations=6, log_every=1, checkpoint_every=2, keep=1,
                                progress=False, tensorboard=False)
    flagged = [w for w in caught if issubclass(w.category, TrainingInstabilityWarning)]
    assert len(flagged) == 1
    assert "iteration 3" in str(flagged[0].message) and "ckpt-00000002.npz" in str(flagged[0].message)
    assert result.unstable_at == 3
    # keep=1 pruned the checkpoint at 4 but not the pinned one at 2, saved before the jump.
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [2, 6]
    assert ckpt.is_pinned(tmp_path / "checkpoints" / "ckpt-00000002.npz")
    assert "unstable at iteration 3" in train_summary(result)


# --- on_instability="rollback" ---------------------------------------------------------------
import _rollback_worker  # noqa: E402


def test_the_last_calm_row_before_the_recorded_jump_is_where_its_rise_began():
    monitor = InstabilityMonitor()
    monitor.observe_all(_rows(H200_RUN))
    # 3900: |W| 7.4 against a median near 6; then 18, 38 and the jump to 97 at 3930.
    assert monitor.unstable_at == 3930 and monitor.calm_step == 3900


def _check_rolled_back_run(result: dict) -> None:
    """What ``_rollback_worker.compare`` found: the rolled-back run is its reference's twin."""
    assert result["same_keys"] and result["same_order"]
    assert result["max_difference"] <= 1e-6, result["worst_key"]
    assert result["learning_rates"] == [pytest.approx(5e-5)] * 2  # 1e-4 halved, both networks
    assert result["step"] == 8 and result["unstable_at"] == 5
    assert result["history_steps"] == list(range(1, 9))  # the discarded rows 3-5 are replaced
    assert [(r["at_step"], r["to_step"], r["stopped"]) for r in result["rollbacks"]] == [(5, 2, False)]
    assert result["checkpoints"] == [2, 4, 6, 8]  # the diverged 4 went; 2 is pinned; keep 3
    assert [row["step"] for row in result["log"][0]["discarded_history"]] == [3, 4, 5]


def test_a_rolled_back_run_continues_as_its_checkpoint_would_with_halved_rates(tmp_path):
    """TensorFlow, in-process: run A rolls back from 5 to 2; run B resumes 2 with halved rates."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _rollback_worker.compare(tmp_path)
    _check_rolled_back_run(result)
    said = [str(w.message) for w in caught if issubclass(w.category, TrainingInstabilityWarning)]
    assert len(said) == 1 and "rolled back to iteration 2 (ckpt-00000002.npz)" in said[0]
    assert "learning rates now 5e-05" in said[0]
    assert ckpt.is_pinned(tmp_path / "a" / "checkpoints" / "ckpt-00000002.npz")


def test_a_rolled_back_jax_run_reloads_its_state_and_continues_the_same_way(tmp_path):
    """JAX keeps the weights in a state tuple, which a rollback must read again."""
    import json
    import os
    import subprocess

    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(HERE / "_rollback_worker.py"), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(l for l in done.stdout.splitlines() if l.startswith("RESULT "))
    _check_rolled_back_run(json.loads(line[len("RESULT "):]))


def _train_tiny(run_dir, iterations, **kwargs):
    from beatgan.training import train

    return train(_train_worker.tiny_data(), _train_worker.CONFIG, run_dir=run_dir,
                 iterations=iterations, log_every=1, checkpoint_every=2, keep=3, progress=False,
                 tensorboard=False, on_instability="rollback", **kwargs)


def test_out_of_rollbacks_the_run_stops_at_its_last_healthy_state_and_exports_it(
        tmp_path, monkeypatch):
    from beatgan import training
    from beatgan.cli import train_summary
    from beatgan.generation import load_generator

    monkeypatch.setattr(training, "InstabilityMonitor", _rollback_worker.InjectedJump)
    monkeypatch.setattr(_rollback_worker.InjectedJump, "remaining", 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingInstabilityWarning)
        result = _train_tiny(tmp_path, 8, max_rollbacks=1)
    assert result.stop_reason == "unstable" and result.step == 2
    assert [(r["at_step"], r["to_step"], r["stopped"]) for r in result.rollbacks] == [
        (5, 2, False), (5, 2, True)]
    assert result.rollbacks[1]["learning_rate"] == pytest.approx(5e-5)  # halved once, not twice
    # The export is the healthy state at 2: the checkpoint's average, not the diverged one's.
    arrays, meta = ckpt.load_checkpoint(tmp_path / "checkpoints" / "ckpt-00000002.npz")
    assert meta["step"] == 2 and len(meta["rollbacks"]) == 2
    exported, _ = load_generator(result.export_dir)
    ema = [arrays[k] for k in sorted(arrays) if k.startswith(f"{ckpt.EMA_GROUP}/")]
    for stored, weight in zip(ema, exported.get_weights()):
        np.testing.assert_array_equal(stored, weight)
    summary = train_summary(result)
    assert "still unstable after 1 rollback(s)" in summary and "5->2, 5->2" in summary
    import json
    info = json.loads((result.export_dir / "weights.json").read_text())
    assert [r["to_step"] for r in info["rollbacks"]] == [2, 2]  # the model card tells them


def test_a_run_out_of_rollbacks_drops_the_discarded_points_from_tensorboard(tmp_path,
                                                                          monkeypatch):
    from beatgan import training

    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="tensorboard (the [tensorboard] extra, in [dev]) reads the event files back")
    monkeypatch.setattr(training, "InstabilityMonitor", _rollback_worker.InjectedJump)
    monkeypatch.setattr(_rollback_worker.InjectedJump, "remaining", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingInstabilityWarning)
        result = training.train(_train_worker.tiny_data(), _train_worker.CONFIG, run_dir=tmp_path,
                                iterations=8, log_every=1, checkpoint_every=2, keep=3,
                                progress=False, on_instability="rollback", max_rollbacks=0)
    assert result.stop_reason == "unstable" and result.step == 2
    events = event_accumulator.EventAccumulator(str(tmp_path / "tensorboard"),
                                                size_guidance={"scalars": 0})
    events.Reload()
    # As history.csv: the rows past the healthy state are gone from the curves too.
    assert [e.step for e in events.Scalars("d_loss")] == [1, 2]


def test_a_nan_rolls_back_like_a_jump_and_a_resumed_run_remembers(tmp_path, monkeypatch):
    from beatgan import training

    calls = {"n": 0}
    real_means = training._mean_losses

    def nan_in_the_fifth_row(pending):
        means, values = real_means(pending)
        calls["n"] += 1
        if calls["n"] == 5:
            values["d_loss"][0] = float("nan")
        return means, values

    monkeypatch.setattr(training, "_mean_losses", nan_in_the_fifth_row)
    with pytest.warns(TrainingInstabilityWarning, match="d_loss became NaN or Inf between "
                      "iterations 5 and 5; rolled back to iteration 4"):
        result = _train_tiny(tmp_path, 6)
    assert result.step == 6 and result.stop_reason == "iterations"
    assert [(r["at_step"], r["to_step"]) for r in result.rollbacks] == [(5, 4)]
    # A later call resumes the rolled-back run: the record and the halved rates stay.
    again = _train_tiny(tmp_path, 7)
    assert again.resumed_from == 6 and [r["to_step"] for r in again.rollbacks] == [4]
    assert again.unstable_at == 5
    arrays, _ = ckpt.load_checkpoint(again.checkpoint)
    assert [float(arrays[k]) for k in _rollback_worker.learning_rate_keys()] == [
        pytest.approx(5e-5)] * 2


def test_pruning_spares_the_checkpoint_a_rollback_goes_back_to(tmp_path, monkeypatch):
    """Checkpoints every iteration, keep 3: the estimate is last calm at 4 and jumps at 8, when
    checkpoint 4 would long have been pruned. It is spared, and the run goes back to it."""
    from beatgan import training

    class LateJump(InstabilityMonitor):
        flagged = False

        def observe(self, row):
            step = int(row["step"])
            if self.unstable_at is None and step >= 8 and not LateJump.flagged:
                LateJump.flagged = True
                self.unstable_at, self.jump = step, (1.0, 99.0)
                return True
            if self.unstable_at is None:
                self.calm_step = min(step, 4)
            return False

    monkeypatch.setattr(training, "InstabilityMonitor", LateJump)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = training.train(_train_worker.tiny_data(), _train_worker.CONFIG,
                                run_dir=tmp_path, iterations=10, log_every=1, checkpoint_every=1,
                                keep=3, progress=False, tensorboard=False,
                                on_instability="rollback")
    assert [(r["at_step"], r["to_step"]) for r in result.rollbacks] == [(8, 4)]
    steps = [step for step, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")]
    assert steps[-3:] == [8, 9, 10] and 4 in steps  # the pinned return point and the last 3


def test_no_rollback_draws_the_stream_of_a_warm_start_or_of_another_rollback():
    from beatgan.training import draw_stream, rollback_stream

    config = _train_worker.CONFIG
    starts = [None, {"runs": 1}, {"runs": 2}]
    streams = [draw_stream(config, start) for start in starts]
    streams += [rollback_stream(config, start, k) for start in starts for k in (1, 2, 3)]
    assert len({tuple(stream) for stream in streams}) == len(streams) == 12
    assert rollback_stream(config, None, 1) == [config.seed, 0, 1]


def test_a_rollback_passes_over_a_checkpoint_that_holds_nan_weights(tmp_path, monkeypatch):
    """Iteration 4's update leaves a NaN weight while its losses, computed before the update,
    are finite; iteration 5's are NaN. Checkpoint 4 holds the NaN: the run goes back to 2
    (checkpoints every 2 iterations)."""
    from beatgan import training

    real_iteration = training._TrainingState.iteration

    def nan_update_at_4(self):
        out = real_iteration(self)
        if self.step + 1 == 4 and not self.rollbacks:
            variable = self.generator.trainable_variables[0]
            variable.assign(np.full(variable.shape, np.nan, np.float32))
        return out

    monkeypatch.setattr(training._TrainingState, "iteration", nan_update_at_4)
    with pytest.warns(TrainingInstabilityWarning, match="rolled back to iteration 2"):
        result = _train_tiny(tmp_path, 6)
    assert [(r["at_step"], r["to_step"]) for r in result.rollbacks] == [(5, 2)]
    arrays, _ = ckpt.load_checkpoint(result.checkpoint)
    assert all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f")
    assert np.isfinite(np.asarray(result.generator.trainable_variables[0])).all()


def test_without_a_checkpoint_before_it_a_nan_still_stops_the_run(tmp_path, monkeypatch):
    from beatgan import training

    real_means = training._mean_losses

    def always_inf(pending):
        means, values = real_means(pending)
        values["g_loss"][0] = float("inf")
        return means, values

    monkeypatch.setattr(training, "_mean_losses", always_inf)
    with pytest.raises(training.NonFiniteLossError, match="g_loss became NaN or Inf"):
        _train_tiny(tmp_path, 4)


@pytest.mark.parametrize("kwargs", [dict(on_instability="restart"), dict(max_rollbacks=-1),
                                    dict(rollback_lr_factor=0.0), dict(rollback_lr_factor=1.5)])
def test_bad_instability_settings_are_refused_before_any_work(tmp_path, kwargs):
    from beatgan.training import train

    with pytest.raises(ValueError):
        train(_train_worker.tiny_data(), _train_worker.CONFIG, run_dir=tmp_path, iterations=1,
              progress=False, **kwargs)
    assert not (tmp_path / "checkpoints").exists()


def test_a_nan_in_the_last_unlogged_stretch_of_an_interrupted_run_is_rolled_back_not_saved(
        tmp_path, monkeypatch):
    """A run stopped between two logged rows records the rest as one last row: under "rollback"
    a NaN there ends the run at the checkpoint before it, not with the bad state saved."""
    import json
    import signal

    from beatgan import training

    real_iteration, real_means = training._TrainingState.iteration, training._mean_losses

    def ctrl_c_during_the_fifth(self):
        out = real_iteration(self)
        if self.step + 1 == 5:
            signal.raise_signal(signal.SIGINT)  # train's own handler takes it: stop after it
        return out

    rows = {"n": 0}

    def nan_in_the_last_row(pending):  # rows at 2 (checkpoint), 3 (log), 4, then the last: 5
        means, values = real_means(pending)
        rows["n"] += 1
        if rows["n"] == 4:
            values["d_loss"][0] = float("nan")
        return means, values

    monkeypatch.setattr(training._TrainingState, "iteration", ctrl_c_during_the_fifth)
    monkeypatch.setattr(training, "_mean_losses", nan_in_the_last_row)
    with pytest.warns(TrainingInstabilityWarning, match="between iterations 5 and 5; rolled back "
                      "to iteration 4"):
        result = training.train(_train_worker.tiny_data(), _train_worker.CONFIG,
                                run_dir=tmp_path, iterations=100, log_every=3,
                                checkpoint_every=2, keep=3, progress=False, tensorboard=True,
                                on_instability="rollback")
    assert result.stop_reason == "interrupted" and result.step == 4
    assert [(r["at_step"], r["to_step"]) for r in result.rollbacks] == [(5, 4)]
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [2, 4]
    assert [row["step"] for row in result.history] == [2, 3, 4]
    assert json.loads((result.export_dir / "weights.json").read_text())["step"] == 4


@pytest.mark.parametrize("on_instability, given, expected", [
    ("warn", None, 5.0), ("rollback", None, 1.0), ("rollback", 3.0, 3.0)])
def test_rollback_checkpoints_every_minute_unless_told(tmp_path, monkeypatch, on_instability,
                                                        given, expected):
    """A rollback goes back at most to the newest checkpoint before the trouble: by default it
    checkpoints every minute, not every five."""
    from beatgan import training

    seen = {}

    def loop(run, **kwargs):
        seen["minutes"] = kwargs["checkpoint_minutes"]
        return "iterations"

    monkeypatch.setattr(training, "_loop", loop)
    training.train(_train_worker.tiny_data(), _train_worker.CONFIG, run_dir=tmp_path,
                   iterations=1, progress=False, tensorboard=False, export=False,
                   on_instability=on_instability, checkpoint_minutes=given)
    assert seen["minutes"] == expected
