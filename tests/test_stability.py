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
