"""Training to a time limit: it stops within the limit plus one iteration, with weights, and resumes."""

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from beatgan import checkpoint as ckpt

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import _train_worker  # noqa: E402

CONFIG = _train_worker.CONFIG
#: Seconds a tiny model's checkpoint, history and export take after the loop, with room to spare.
SAVE_S = 3.0


def _iteration_seconds(history):
    """Each logged iteration's duration (log_every=1): differences of the cumulative wall_s."""
    walls = [row["wall_s"] for row in history]
    return np.diff([0.0] + walls)


def _timed_train(run_dir, max_seconds):
    from beatgan.training import train

    start = time.perf_counter()
    result = train(_train_worker.tiny_data(), CONFIG, run_dir=run_dir, iterations=None,
                   max_seconds=max_seconds, log_every=1, checkpoint_every=1000,
                   preview_every=10_000, progress=False, tensorboard=False)
    return result, time.perf_counter() - start


def test_a_time_limit_ends_within_one_iteration_with_weights_and_resumes(tmp_path):
    limit_s = 8.0
    first, took = _timed_train(tmp_path, limit_s)
    assert first.stop_reason == "time limit" and first.step >= 1
    last = _iteration_seconds(first.history)[-1]  # the iteration that may cross the limit
    assert took <= limit_s + last + SAVE_S, (took, last)
    # Checkpoint, history and export all hold the last iteration.
    assert ckpt.list_checkpoints(tmp_path / "checkpoints")[-1][0] == first.step
    assert json.loads((tmp_path / "history.json").read_text())[-1]["step"] == first.step
    info = json.loads((first.export_dir / "weights.json").read_text())
    assert info["step"] == first.step and info["ema"] is True
    assert (first.export_dir / "generator.weights.h5").is_file()
    # A second call with the same limit continues the run.
    second, took = _timed_train(tmp_path, limit_s)
    assert second.resumed_from == first.step and second.step > first.step
    assert took <= limit_s + _iteration_seconds(second.history)[-1] + SAVE_S


def test_an_iteration_target_reached_first_ends_the_run(tmp_path):
    from beatgan.training import train

    result = train(_train_worker.tiny_data(), CONFIG, run_dir=tmp_path, iterations=2,
                   max_seconds=600, progress=False, tensorboard=False)
    assert result.step == 2 and result.stop_reason == "iterations"


def test_neither_target_nor_limit_is_refused(tmp_path):
    from beatgan.training import train

    with pytest.raises(ValueError, match="iterations, max_seconds or both"):
        train(_train_worker.tiny_data(), CONFIG, run_dir=tmp_path, iterations=None)
    with pytest.raises(ValueError, match="max_seconds must be positive"):
        train(_train_worker.tiny_data(), CONFIG, run_dir=tmp_path, iterations=None, max_seconds=0)


def test_cli_max_minutes_trains_exports_and_resumes(tmp_path, capsys):
    """``beatgan train --max-minutes 0.3`` on a tiny model, twice: weights, then a resumed run."""
    from beatgan.cli import main

    loops = tmp_path / "loops"
    assert main(["demo-data", str(loops), "--n", "2", "--seed", "1"]) == 0
    argv = ["train", "--data", str(loops), "--out", str(tmp_path / "run"), "--model-dim", "2",
            "--batch-size", "2", "--max-minutes", "0.3", "--export-dtype", "float16"]
    steps = []
    for _ in range(2):
        start = time.perf_counter()
        assert main(argv) == 0
        took = time.perf_counter() - start
        history = json.loads((tmp_path / "run" / "history.json").read_text())
        last = np.diff([0.0] + [row["wall_s"] for row in history])[-1]
        # Loading the loops is inside the command but outside train(): a few seconds more.
        assert took <= 18.0 + last + SAVE_S + 10.0, took
        info = json.loads((tmp_path / "run" / "export" / "weights.json").read_text())
        assert info["dtype"] == "float16" and info["ema"] is True
        steps.append(info["step"])
    assert 1 <= steps[0] < steps[1]
    assert "time limit" in capsys.readouterr().out


_JAX_TIME_LIMIT = """
import json, sys, time
sys.path.insert(0, {here!r})
import _train_worker
from beatgan.training import train

start = time.perf_counter()
result = train(_train_worker.tiny_data(64), _train_worker.CONFIG.replace(model_dim=4, batch_size=64),
               run_dir={run!r}, iterations=None, max_seconds={limit}, log_every=50,
               checkpoint_every=1000, preview_every=10_000, progress=False, tensorboard=False)
print(json.dumps({{"took": time.perf_counter() - start, "steps": result.step,
                   "reason": result.stop_reason}}))
"""


@pytest.mark.slow
def test_the_limit_holds_when_the_device_runs_ahead_of_the_host(tmp_path):
    """JAX dispatches asynchronously: an iteration 'ends' on the host long before the device
    has run it. With log_every=50 the loop must still wait for the device near the deadline
    instead of queueing up to 50 iterations past it."""
    import os
    import subprocess

    limit_s = 40.0  # past compiling (about 20 s): a d = 4, batch 64 iteration takes 1-3 s
    code = _JAX_TIME_LIMIT.format(here=str(HERE), run=str(tmp_path), limit=limit_s)
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(HERE.parent)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["reason"] == "time limit" and 1 <= result["steps"] < 50
    per_iteration_s = result["took"] / result["steps"]  # compile included: an upper bound
    assert result["took"] <= limit_s + 2 * per_iteration_s + SAVE_S, result
