"""Data parallelism: 2 virtual CPU devices train exactly as 1 device with the same global batch.

Each backend runs tests/_distributed_worker.py in its own process (the device
count is fixed before the framework starts); the checkpoints it writes are
compared here. One iteration is one D update and one G update on a tiny model
(model_dim 2, batch 4, phase shuffle 2), so the first checkpoint holds the
result of exactly one update of each network.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from beatgan import checkpoint as ckpt

HERE = Path(__file__).parent
BACKENDS = ("tensorflow", "jax")
LOSSES = ("d_loss", "g_loss", "gp", "wasserstein")
#: Losses and weights agree to this relative difference (float32 sums taken in another order).
RTOL = 1e-5
#: Weights that started at zero (biases) and moved by less than one Adam step (lr = 1e-4)
#: have no scale of their own: below 1e-4 of a step, a difference is rounding.
WEIGHT_ATOL = 1e-8
#: Adam's moments are gradient statistics; gradients that nearly cancel to zero are rounding
#: noise, so these are compared against each array's largest entry.
MOMENT_RTOL_OF_MAX = 1e-4


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both backends' worker runs, started together: {backend: OUT_DIR}."""
    folders, processes = {}, {}
    for backend in BACKENDS:
        if backend == "jax":
            pytest.importorskip("jax")
        folders[backend] = tmp_path_factory.mktemp(f"dp_{backend}")
        env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
        processes[backend] = subprocess.Popen(
            [sys.executable, str(HERE / "_distributed_worker.py"), str(folders[backend])],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for backend, process in processes.items():
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, f"{backend}: {err[-3000:]}"
        result = json.loads(next(line[7:] for line in out.splitlines() if line.startswith("RESULT ")))
        assert result == {"backend": backend, "available": 2, "resumed_from": [1, 1]}
    return folders


def _checkpoint(folder: Path, name: str, step: int):
    return ckpt.load_checkpoint(ckpt.checkpoint_path(folder / name / ckpt.CHECKPOINT_DIR, step))


def _assert_same_training(a, b) -> dict[str, float]:
    """Assert two checkpoints hold the same training; return the worst differences found."""
    (arrays_a, meta_a), (arrays_b, meta_b) = a, b
    assert meta_a["step"] == meta_b["step"]
    assert meta_a["sampler"] == meta_b["sampler"]  # same data order and host draws
    worst = {"losses": 0.0, "weights": 0.0, "moments_of_max": 0.0}
    for row_a, row_b in zip(meta_a["history"], meta_b["history"], strict=True):
        for key in LOSSES:
            np.testing.assert_allclose(row_b[key], row_a[key], rtol=RTOL, err_msg=key)
            worst["losses"] = max(worst["losses"], abs(row_b[key] - row_a[key]) / abs(row_a[key]))
    assert sorted(arrays_a) == sorted(arrays_b)
    for key, value in arrays_a.items():
        other = arrays_b[key]
        if value.dtype.kind != "f":  # phase-shuffle seed states, Adam step counters: exact
            np.testing.assert_array_equal(other, value, err_msg=key)
        elif key.startswith(("generator/", "discriminator/")):
            np.testing.assert_allclose(other, value, rtol=RTOL, atol=WEIGHT_ATOL, err_msg=key)
            moved = np.abs(value) > WEIGHT_ATOL / RTOL  # where the relative figure means something
            if moved.any():
                rel = np.abs(other - value)[moved] / np.abs(value)[moved]
                worst["weights"] = max(worst["weights"], float(rel.max()))
        elif value.size and np.abs(value).max() > 0:
            diff = float(np.abs(other - value).max() / np.abs(value).max())
            assert diff <= MOMENT_RTOL_OF_MAX, (key, diff)
            worst["moments_of_max"] = max(worst["moments_of_max"], diff)
    return worst


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_devices_equal_one_device_for_one_d_and_one_g_update(runs, backend):
    one = _checkpoint(runs[backend], "one", 1)
    two = _checkpoint(runs[backend], "two", 1)
    assert one[1]["devices"] == 1 and two[1]["devices"] == 2
    worst = _assert_same_training(one, two)
    print(f"\n{backend}: 2 devices vs 1, max relative differences {worst}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_checkpoints_resume_across_device_counts(runs, backend):
    reference = _checkpoint(runs[backend], "one", 2)
    two_then_one = _checkpoint(runs[backend], "two", 2)
    one_then_two = _checkpoint(runs[backend], "one_two", 2)
    assert two_then_one[1]["devices"] == 1 and one_then_two[1]["devices"] == 2
    _assert_same_training(reference, two_then_one)
    _assert_same_training(reference, one_then_two)


def test_device_count_must_divide_the_batch_and_exist(tmp_path):
    from beatgan.backends.parallel import available_devices, data_parallel
    from beatgan.config import Config
    from beatgan.training import train

    assert data_parallel(None, batch_size=4) is None and data_parallel(1, batch_size=4) is None
    assert data_parallel("all", batch_size=4) is None  # this process sees one CPU device
    with pytest.raises(ValueError, match="does not split evenly over 3 devices"):
        data_parallel(3, batch_size=4)
    with pytest.raises(ValueError, match=f"sees {len(available_devices())}"):
        data_parallel(2, batch_size=4)
    with pytest.raises(ValueError, match="positive integer or 'all'"):
        data_parallel("two", batch_size=4)
    with pytest.raises(ValueError, match="positive integer or 'all'"):
        data_parallel(0, batch_size=4)
    data = np.zeros((4, 16384, 2), "float32")
    with pytest.raises(ValueError, match="does not split evenly"):
        train(data, Config(model_dim=2, batch_size=3), run_dir=tmp_path, iterations=1,
              devices=2, progress=False)
    assert not (tmp_path / "config.json").exists()  # refused before the run folder was claimed


def test_cli_train_takes_devices():
    from beatgan.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["train", "--out", "run", "--devices", "all"]).devices == "all"
    assert parser.parse_args(["train", "--out", "run", "--devices", "2"]).devices == "2"
    assert parser.parse_args(["train", "--out", "run"]).devices is None


@pytest.mark.parametrize("devices, said", [("two", "positive integer or 'all'"),
                                           ("0", "positive integer or 'all'"),
                                           ("3", "does not split evenly over 3 devices"),
                                           ("2", "the tensorflow backend sees 1")])
def test_cli_train_checks_devices_before_loading_any_loops(tmp_path, capsys, monkeypatch, devices,
                                                          said):
    from beatgan import cli

    def no_loading(*args, **kwargs):
        raise AssertionError("loaded the loops before checking --devices")

    monkeypatch.setattr(cli, "_load_training_data", no_loading)
    out = tmp_path / "run"
    assert cli.main(["train", "--out", str(out), "--model-dim", "2", "--batch-size", "4",
                     "--devices", devices]) == 2  # bad input
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert not out.exists()
