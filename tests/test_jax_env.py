"""bench/gpu-wheels.txt lists everything the JAX training path needs beyond JAX itself, and
bench/eval-wheels.txt what scoring a run's checkpoints needs beyond that.

A JAX GPU machine often has JAX, numpy, scipy and h5py but no TensorFlow; the list lets beatgan
train and benchmark there without pulling TensorFlow in. The test runs train, generate and the
step benchmark with nothing else importable, as on such a machine.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WHEELS = REPO / "bench" / "gpu-wheels.txt"
EVAL_WHEELS = REPO / "bench" / "eval-wheels.txt"
#: What bench/eval-wheels.txt assumes a scientific Python stack already has.
SCIENTIFIC = {"numba", "llvmlite", "scikit-learn", "joblib", "cloudpickle",
              "narwhals", "threadpoolctl", "msgpack"}
#: What such a machine brings: JAX with its own dependencies, and h5py.
JAX_MACHINE = {"jax", "jaxlib", "ml_dtypes", "numpy", "opt_einsum", "scipy", "h5py"}


def _pins(path: Path) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", path.read_text(), re.M)
    return {name.lower().replace("_", "-"): version for name, version in pins}


def test_the_list_pins_the_tested_versions():
    listed, tested = _pins(WHEELS), _pins(REPO / "constraints.txt")
    assert listed, "bench/gpu-wheels.txt lists no NAME==VERSION line"
    for name, version in listed.items():
        assert tested.get(name) == version, f"{name}: gpu-wheels.txt {version}, constraints.txt {tested.get(name)}"
    assert not {"tensorflow", "librosa", "jax", "numpy"} & set(listed)
    evaluation = _pins(EVAL_WHEELS)
    assert "librosa" in evaluation and not set(evaluation) & set(listed)
    for name, version in evaluation.items():
        assert tested.get(name) == version, f"{name}: eval-wheels.txt {version}, constraints.txt {tested.get(name)}"


@pytest.fixture(scope="module")
def loops(tmp_path_factory):
    from beatgan.synth import write_demo_pack

    folder = tmp_path_factory.mktemp("loops")
    write_demo_pack(folder, n=4, seed=0, bpm=125)
    return folder


def _run_restricted(script: str, *args: str, cwd: Path,
                    more: set[str] = frozenset()) -> subprocess.CompletedProcess:
    dists = ",".join(sorted(set(_pins(WHEELS)) | JAX_MACHINE | set(more)))
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / "tests" / "_restricted_imports.py"), dists,
                           script, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_train_and_generate_need_nothing_beyond_the_list(loops, tmp_path):
    job = tmp_path / "job.py"
    job.write_text(
        "import sys\n"
        "from beatgan.cli import main\n"
        f"assert main(['train', '--data', {str(loops)!r}, '--out', 'run', '--iterations', '2',\n"
        "             '--model-dim', '2', '--batch-size', '4', '--mixed-precision']) == 0\n"
        "assert main(['generate', '--weights', 'run/export', '--n', '2', '--out', 'beats']) == 0\n"
        "print('modules', sorted({m.split('.')[0] for m in sys.modules}))\n")
    done = _run_restricted(str(job), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list((tmp_path / "beats").glob("output*.wav"))) == 2
    modules = done.stdout.split("modules", 1)[1]
    assert "'tensorflow'" not in modules and "'librosa'" not in modules


@pytest.mark.slow
def test_the_step_benchmark_needs_nothing_beyond_the_list(tmp_path):
    done = _run_restricted(str(REPO / "bench" / "bench_train.py"), "--backend", "jax",
                           "--model-dim", "2", "--batch-size", "4", "--iterations", "1",
                           "--warmup", "1", "--mixed-precision", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax" and result["d_updates_per_s"] > 0


@pytest.mark.slow
def test_the_step_profiler_needs_nothing_beyond_the_list(tmp_path):
    done = _run_restricted(str(REPO / "bench" / "profile_step.py"), "--backend", "jax",
                           "--model-dim", "2", "--batch-size", "4", "--iterations", "1",
                           "--warmup", "1", "--top", "3", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["backend"] == "jax" and summary["source"] == "host ops"
    assert summary["iterations"] == 1 and summary["busy_ms_per_iteration"] > 0


@pytest.mark.slow
def test_selecting_a_checkpoint_needs_nothing_beyond_both_lists(loops, tmp_path):
    job = tmp_path / "job.py"
    job.write_text(
        "from beatgan.cli import main\n"
        f"assert main(['train', '--data', {str(loops)!r}, '--out', 'run', '--iterations', '2',\n"
        "             '--model-dim', '2', '--batch-size', '4', '--checkpoint-every', '1',\n"
        "             '--keep-checkpoints', '5']) == 0\n"
        f"assert main(['select', '--run', 'run', '--data', {str(loops)!r}, '--n', '20']) == 0\n")
    done = _run_restricted(str(job), cwd=tmp_path, more=set(_pins(EVAL_WHEELS)) | SCIENTIFIC)
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads((tmp_path / "run" / "best" / "weights.json").read_text())
    assert info["selection"]["candidates"] == 2 and info["step"] in (1, 2)
