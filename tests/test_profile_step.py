"""bench/profile_step.py: the trace parser on synthetic traces, and the script end to end.

Times in the synthetic traces are microseconds, as in JAX's Perfetto trace; the summary
reports milliseconds.
"""

import gzip
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def prof():
    sys.path.insert(0, str(REPO / "bench"))
    try:
        yield importlib.import_module("profile_step")
    finally:
        sys.path.remove(str(REPO / "bench"))


def _meta(pid, name, tid=None):
    event = {"ph": "M", "pid": pid, "name": "thread_name" if tid is not None else "process_name",
             "args": {"name": name}}
    if tid is not None:
        event["tid"] = tid
    return event


def _x(pid, tid, ts, dur, name, **args):
    return {"ph": "X", "pid": pid, "tid": tid, "ts": ts, "dur": dur, "name": name, "args": args}


@pytest.fixture
def gpu_trace(prof):
    """Two iteration windows [0, 100) and [200, 300) us; a GPU with two streams and a derived line."""
    mark = prof.ITERATION_MARK
    return {"traceEvents": [
        _meta(1, "/host:CPU"), _meta(1, "python", tid=1),
        _meta(2, "/device:GPU:0"), _meta(2, "Stream #13(Compute)", tid=10),
        _meta(2, "Stream #14(MemcpyD2D)", tid=11), _meta(2, "XLA Ops", tid=12),
        _x(1, 1, 0, 100, mark), _x(1, 1, 200, 100, mark),
        _x(1, 1, 0, 100, "$bench_train.py:90 run_and_block"),
        _x(1, 1, 5, 90, "convolution.9", hlo_op="convolution.9"),  # a host op: not a kernel here
        # window 1: the conv and the copy overlap on two streams -> union 10..50, then 60..70
        _x(2, 10, 10, 30, "sm90_xmma_fprop_implicit_gemm_bf16", hlo_op="convolution.4"),
        _x(2, 11, 20, 30, "MemcpyD2D"),
        _x(2, 10, 60, 10, "loop_add_fusion", hlo_op="add_fusion.2"),
        _x(2, 10, 150, 10, "sm90_xmma_fprop_implicit_gemm_bf16"),  # between windows: left out
        # window 2: 210..240 and 250..270; the derived "XLA Ops" line spans it all
        _x(2, 10, 210, 30, "sm90_xmma_fprop_implicit_gemm_bf16", hlo_op="convolution.7"),
        _x(2, 10, 250, 20, "input_reduce_fusion"),
        _x(2, 12, 200, 100, "fusion.1"),
        {},
    ]}


def test_busy_time_is_the_union_of_intervals(prof):
    assert prof.busy_time([]) == 0.0
    assert prof.busy_time([(0, 10), (2, 5), (10, 12), (20, 25)]) == 17.0
    assert prof.busy_time([(5, 9), (0, 6)]) == 9.0


def test_categories_by_name(prof):
    assert prof.category("convolution.46") == "matrix"
    assert prof.category("nvjet_tst_128x256_64x4_1x2_h_bz_coopA_TNT") == "matrix"
    assert prof.category("loop_convert_fusion") == "fusion"  # "convert" is not a convolution
    assert prof.category("MemcpyH2D") == "data movement"
    assert prof.category("input_reduce_fusion") == "reduction"
    assert prof.category("wrapped_broadcast") == "other"
    assert prof.kind("convolution.46") == "convolution" and prof.kind("loop_add_fusion_3") == "loop_add_fusion"


def test_device_streams_are_the_kernels(prof, gpu_trace, tmp_path):
    path = tmp_path / "perfetto_trace.json.gz"
    with gzip.open(path, "wt") as file:
        json.dump(gpu_trace, file)
    trace = prof.load_trace(path)
    events, source = prof.device_events(trace)
    assert source == "device"
    assert sorted(e["name"] for e in events) == sorted(
        ["sm90_xmma_fprop_implicit_gemm_bf16"] * 3 + ["MemcpyD2D", "loop_add_fusion",
                                                      "input_reduce_fusion"])
    windows = prof.iteration_windows(trace)
    assert windows == [(0, 100), (200, 300)]

    summary = prof.summarise(events, windows, top=10)
    assert summary["iterations"] == 2
    assert [it["busy_ms"] for it in summary["per_iteration"]] == [0.05, 0.05]
    assert summary["wall_ms_per_iteration"] == pytest.approx(0.1)
    assert summary["busy_ms_per_iteration"] == pytest.approx(0.05)
    assert summary["busy_fraction"] == pytest.approx(0.5)
    assert summary["idle_ms_per_iteration"] == pytest.approx(0.05)
    assert summary["op_ms_per_iteration"] == pytest.approx(0.06)  # 120 us of kernels / 2

    ops = {op["name"]: op for op in summary["ops"]}
    conv = ops["sm90_xmma_fprop_implicit_gemm_bf16"]
    assert summary["ops"][0] is conv
    assert conv["count_per_iteration"] == 1.0 and conv["ms_per_iteration"] == pytest.approx(0.03)
    assert conv["percent_of_busy"] == pytest.approx(60.0) and conv["mean_us"] == pytest.approx(30.0)
    assert conv["hlo_ops"] == ["convolution.4", "convolution.7"] and conv["category"] == "matrix"
    assert ops["MemcpyD2D"]["ms_per_iteration"] == pytest.approx(0.015)
    assert ops["loop_add_fusion"]["hlo_ops"] == ["add_fusion.2"]
    assert ops["input_reduce_fusion"]["ms_per_iteration"] == pytest.approx(0.01)

    categories = {label: c["ms_per_iteration"] for label, c in summary["categories"].items()}
    assert categories == pytest.approx({"matrix": 0.03, "data movement": 0.015,
                                        "reduction": 0.01, "fusion": 0.005})
    assert sum(categories.values()) == pytest.approx(summary["op_ms_per_iteration"])
    assert sum(c["percent_of_ops"] for c in summary["categories"].values()) == pytest.approx(100)


def test_without_a_device_the_host_hlo_ops_are_the_kernels(prof):
    trace = {"traceEvents": [
        _meta(1, "/host:CPU"), _meta(1, "python", tid=1), _meta(1, "tf_XLAEigen/1", tid=2),
        _x(1, 1, 0, 100, prof.ITERATION_MARK),
        _x(1, 1, 0, 100, "$profile_step.py:300 profile"),
        _x(1, 1, 1, 95, "PjitFunction(_iteration_pure)"),
        _x(1, 1, 2, 90, "CommonPjRtLoadedExecutable::ExecuteHelperOnSingleDevice"),
        _x(1, 2, 5, 80, "ThunkExecutor::Execute"),
        _x(1, 2, 10, 20, "convolution.1", hlo_op="convolution.1", hlo_module="jit_f"),
        _x(1, 2, 30, 0.2, "end: convolution.1"),
        _x(1, 1, 15, 20, "multiply_add_fusion.2", hlo_op="multiply_add_fusion.2"),
    ]}
    events, source = prof.device_events(trace)
    assert source == "host ops"
    assert sorted(e["name"] for e in events) == ["convolution.1", "multiply_add_fusion.2"]
    summary = prof.summarise(events, prof.iteration_windows(trace))
    assert summary["busy_ms_per_iteration"] == pytest.approx(0.025)  # 10..35 us
    assert summary["op_ms_per_iteration"] == pytest.approx(0.04)
    assert summary["ops"][0]["hlo_ops"] == []  # the name already is the HLO op
    with pytest.raises(ValueError):
        prof.summarise(events, [])


@pytest.mark.slow
def test_the_script_profiles_a_tiny_step_on_the_cpu(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "profile_step.py"), "--backend", "jax",
         "--model-dim", "2", "--batch-size", "4", "--iterations", "2", "--warmup", "1",
         "--top", "5", "--json", "--out", str(tmp_path / "trace")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["iterations"] == 2 and len(result["per_iteration"]) == 2
    assert result["source"] == "host ops"
    assert 0 < result["busy_ms_per_iteration"] <= result["wall_ms_per_iteration"]
    for it in result["per_iteration"]:
        assert 0 <= it["busy_fraction"] <= 1 and it["busy_ms"] <= it["wall_ms"]
    assert 0 <= result["busy_fraction"] <= 1
    assert 1 <= len(result["ops"]) <= 5 and result["n_distinct_ops"] >= len(result["ops"])
    assert all(op["ms_per_iteration"] > 0 for op in result["ops"])
    categories = result["categories"]
    assert categories["matrix"]["ms_per_iteration"] > 0  # the convolutions were found
    assert sum(c["ms_per_iteration"] for c in categories.values()) == pytest.approx(
        result["op_ms_per_iteration"], abs=1e-3)
    assert Path(result["trace"]).is_file()
    assert "top 5 kernels" in done.stdout


@pytest.mark.parametrize("iterations", ["0", "-2"])
def test_bench_train_refuses_fewer_than_one_timed_iteration(bench_script, capsys, iterations):
    with pytest.raises(SystemExit):
        bench_script("bench_train").parse_args(["--iterations", iterations])
    assert f"--iterations must be at least 1, got {iterations}" in capsys.readouterr().err
