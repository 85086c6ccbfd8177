"""bench/critic_swings.py: does it find the phase-shuffle shifts where they decide the estimate,
and only there? Run in a JAX subprocess, as the script's shifts are JAX's."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHECK = r"""
import csv, json, sys
import numpy as np
sys.path.insert(0, "bench")
import critic_swings as cs
import keras
from beatgan.config import Config
from beatgan.model import PhaseShuffle

config = Config(model_dim=1, seed=11)
work = sys.argv[1]
config.save(f"{work}/config.json")
# The script's shifts are the layer's own, draw for draw.
layer = PhaseShuffle(2, seed=11_203)
state = np.asarray(layer.seed_generator.state.value).astype(np.uint32)
own = [int(keras.random.randint((), -2, 3, seed=layer.seed_generator)) for _ in range(40)]
same = cs.shifts(state, 40, 2).tolist() == own
# An estimate made of the deepest layer's real-batch shifts, plus noise and a slow drift.
steps = np.arange(10, 6001, 10)
seeds = cs.layer_seeds(config)
count = (steps.max() + 1) * 16
draws = np.stack([cs.shifts(s, count, 2) for s in seeds])
# Iteration j (1-based) draws 16 shifts per layer from (j - 1) * 16: per critic update u the
# interpolates', the real batch's (3u + 1) and the fake batch's, then the generator update's.
real = np.array([[(j - 1) * 16 + 3 * u + 1 for j in range(s - 9, s + 1) for u in range(5)]
                 for s in steps])
share = (draws[3][real] == 2).mean(axis=1)  # the deepest layer's real batches shifted by +2
rng = np.random.default_rng(0)
results = {}
for name, w in (("shifts", 4 * share + 0.05 * rng.normal(size=len(steps)) + steps / 3000),
                ("noise", rng.normal(size=len(steps)))):
    with open(f"{work}/{name}.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["step", "wasserstein"])
        out.writerows(zip(steps, w))
    results[name] = cs.main(["--history", f"{work}/{name}.csv", "--window", "3000",
                             "--other", f"{work}/shifts.csv"])
print("RESULT " + json.dumps({"same": same, **results}))
"""


def test_the_script_finds_the_shifts_that_make_the_estimate_and_not_in_noise(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", CHECK, str(tmp_path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(next(line for line in done.stdout.splitlines()
                             if line.startswith("RESULT "))[len("RESULT "):])
    assert result["same"]
    made = result["shifts"]["windows"]
    assert [(w["from"], w["to"]) for w in made] == [(0, 3000), (3000, 6000)]
    for window in made:
        assert window["r2"] > 0.8 and window["r2_control"] < 0.35
        assert window["corr"] > 0.999  # against itself
    for window in result["noise"]["windows"]:
        assert window["r2"] < 0.35 and abs(window["corr"]) < 0.2
    assert "iterations" in done.stdout and "R^2" in done.stdout


def test_a_history_without_the_estimate_is_refused_in_one_line(tmp_path):
    (tmp_path / "history.csv").write_text("step,d_loss\n10,1.0\n")
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "bench/critic_swings.py", "--history",
                           str(tmp_path / "history.csv")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "no wasserstein column" in done.stderr


def test_a_critic_that_shuffles_per_example_is_refused(bench_script):
    import numpy as np
    import pytest

    from beatgan.config import Config

    cs = bench_script("critic_swings")
    steps = np.arange(10, 101, 10)
    config = Config(model_dim=1, phase_shuffle_per="example")
    with pytest.raises(SystemExit, match=r"per example \(phase_shuffle_per\)"):
        cs.analyse(steps, np.zeros(len(steps)), config, window=100)
