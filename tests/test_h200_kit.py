"""The H200 kit (bench/h200): weight parts round-trip, a bad part is refused, sends fit the
device tool's per-call limits, the wheel list matches the project's pins, and the train driver's
schedule stops where it should. Standard library and numpy only: no Keras, no GPU."""

import argparse
import ast
import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
KIT = REPO / "bench" / "h200"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"h200_{name}", KIT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(KIT))  # train_h200 imports parts from beside it
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(KIT))
    return module


parts = _load("parts")


@pytest.fixture
def files(tmp_path, rng):
    """Three files: one split into several parts (last one short), one exact multiple, one empty."""
    src = tmp_path / "src"
    src.mkdir()
    sizes = {"generator.weights.h5": 10_000, "discriminator.weights.h5": 4096, "empty.json": 0}
    paths = []
    for name, size in sizes.items():
        path = src / name
        path.write_bytes(rng.integers(0, 256, size, dtype="uint8").tobytes())
        paths.append(path)
    return paths


def _send_all(parts_dir, tmp_path, **limits) -> Path:
    """Run send_next call after call, gathering each call's files into one folder."""
    received = tmp_path / "received"
    received.mkdir()
    for call in range(20):
        out = tmp_path / f"call{call}"
        sent = parts.send_next(parts_dir, out, **limits)
        for f in out.iterdir():
            (received / f.name).write_bytes(f.read_bytes())
        if not parts.unsent(parts_dir):
            return received
        assert sent, "a send that makes no progress would loop forever"
    raise AssertionError("not all parts sent in 20 calls")


def test_split_join_round_trip(files, tmp_path):
    manifest = parts.split_files(files, tmp_path / "parts", part_bytes=4096)
    counts = {f["name"]: len(f["parts"]) for f in manifest["files"]}
    assert counts == {"generator.weights.h5": 3, "discriminator.weights.h5": 1, "empty.json": 1}
    assert all(p["bytes"] <= 4096 for f in manifest["files"] for p in f["parts"])
    received = _send_all(tmp_path / "parts", tmp_path, max_files=3, max_bytes=4096 * 2 + 2048,
                         reserve_bytes=0)
    joined = parts.join_parts(received, tmp_path / "weights")
    assert [p.name for p in joined] == [f.name for f in files]
    for original in files:
        assert (tmp_path / "weights" / original.name).read_bytes() == original.read_bytes()


def test_corrupted_part_is_refused_and_nothing_written(files, tmp_path):
    parts.split_files(files, tmp_path / "parts", part_bytes=4096)
    bad = tmp_path / "parts" / "generator.weights.h5.part01"
    data = bytearray(bad.read_bytes())
    data[100] ^= 0x01  # one flipped bit, same size
    bad.write_bytes(bytes(data))
    with pytest.raises(parts.PartError, match="part01.*sha256.*refusing"):
        parts.join_parts(tmp_path / "parts", tmp_path / "weights")
    assert not (tmp_path / "weights").exists() or not any((tmp_path / "weights").iterdir())
    # The command line says so and exits 1.
    assert parts.main(["join", str(tmp_path / "parts"), "--out", str(tmp_path / "w2")]) == 1


def test_truncated_or_missing_part_is_refused(files, tmp_path):
    parts.split_files(files, tmp_path / "parts", part_bytes=4096)
    part = tmp_path / "parts" / "generator.weights.h5.part02"
    part.write_bytes(part.read_bytes()[:-1])
    with pytest.raises(parts.PartError, match="bytes, the manifest says"):
        parts.join_parts(tmp_path / "parts", tmp_path / "weights")
    part.unlink()
    with pytest.raises(parts.PartError, match="missing.*part02"):
        parts.join_parts(tmp_path / "parts", tmp_path / "weights")
    # The complete files can still be joined on their own (the generator arrives first).
    written = parts.join_parts(tmp_path / "parts", tmp_path / "weights",
                               only=["discriminator.weights.h5"])
    assert [p.name for p in written] == ["discriminator.weights.h5"]


def test_sends_respect_the_device_limits_and_keep_manifest_order(tmp_path, rng):
    """Figures already in $OUT count: 3 small files leave 4 slots for parts (8 minus the manifest)."""
    src = tmp_path / "big.bin"
    src.write_bytes(rng.integers(0, 256, 20 * 1000, dtype="uint8").tobytes())
    manifest = parts.split_files([src], tmp_path / "parts", part_bytes=1000)
    out = tmp_path / "out"
    out.mkdir()
    for name in ("summary.json", "history.csv", "losses.png"):
        (out / name).write_bytes(b"x" * 10)
    sent = parts.send_next(tmp_path / "parts", out, max_files=8, max_bytes=64 * 1000,
                           reserve_bytes=0)
    assert sent == [p["name"] for p in manifest["files"][0]["parts"][:4]]
    assert len(list(out.iterdir())) == 8
    # A byte limit: 2.5 parts' worth of room after the manifest leaves 2 parts.
    out2 = tmp_path / "out2"
    manifest_bytes = (tmp_path / "parts" / parts.MANIFEST).stat().st_size
    sent2 = parts.send_next(tmp_path / "parts", out2, max_files=8,
                            max_bytes=manifest_bytes + 2500, reserve_bytes=0)
    assert sent2 == [p["name"] for p in manifest["files"][0]["parts"][4:6]]
    assert sum(f.stat().st_size for f in out2.iterdir()) <= manifest_bytes + 2500


def test_full_size_weights_need_three_loads_with_the_default_parts():
    """G (~76 MB) and D (~70 MB) at d = 64 in 15 MiB parts: no part over 16 MiB, and the 139 MiB
    cannot come back in fewer than 3 calls of 64 MiB (what weights/README.md plans for)."""
    g_bytes, d_bytes = 19_100_000 * 4, 17_400_000 * 4
    assert parts.PART_BYTES <= 16 * parts.MIB
    assert -(-(g_bytes + d_bytes) // parts.MAX_BYTES_PER_CALL) == 3


# --- the wheel list ---------------------------------------------------------------------------
def _pins() -> dict[str, str]:
    lines = [line.strip() for line in (KIT / "wheels.txt").read_text().splitlines()]
    pins = {}
    for line in lines:
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([A-Za-z0-9_.+-]+)", line)
        assert match, f"wheels.txt: {line!r} is not NAME==VERSION"
        name = match.group(1).lower().replace("_", "-")
        assert name not in pins, f"wheels.txt pins {name} twice (two versions stop the install)"
        pins[name] = match.group(2)
    return pins


def test_wheels_pin_the_projects_versions():
    pins = _pins()
    project = {}
    for dep in re.findall(r'"([A-Za-z0-9_.-]+)==([^"]+)"', (REPO / "pyproject.toml").read_text()):
        project[dep[0].lower().replace("_", "-")] = dep[1]
    for name in ("keras", "soundfile", "tensorboardx", "lazy-loader"):
        assert pins[name] == project[name], f"{name}: wheels.txt {pins[name]}, pyproject {project[name]}"
    # keras needs namex and optree, soundfile needs cffi, which needs pycparser: none is on the H200.
    assert {"namex", "optree", "cffi", "pycparser"} <= set(pins)


#: Top-level modules on the H200 image (KINDS.md's package list), by import name.
H200_HAS = {"numpy", "scipy", "h5py", "ml_dtypes", "absl", "rich", "packaging", "jax", "jaxlib",
            "tqdm", "matplotlib", "typing_extensions", "threadpoolctl"}
#: Training-path modules: what train_h200.py imports (tf_steps only loads under TensorFlow).
TRAINING_PATH = ["__init__", "config", "data", "synth", "audio", "model", "checkpoint", "tensorboard_log",
                 "plots", "backends/__init__", "backends/jax_steps", "backends/losses"]


def test_training_path_imports_are_on_the_h200_or_in_the_wheels():
    """Module-level imports of the training path; librosa must stay a lazy import there."""
    training = "training" if (REPO / "beatgan" / "training.py").exists() else "train"
    carried = {"keras", "soundfile", "namex", "optree", "cffi", "pycparser", "tensorboardX",
               "protobuf", "lazy_loader"}  # import names; wheels.txt spells them as pip does
    assert {name.lower().replace("_", "-") for name in carried} <= set(_pins())
    for module in TRAINING_PATH + [training]:
        tree = ast.parse((REPO / "beatgan" / f"{module}.py").read_text())
        for node in tree.body:  # module level only: imports inside functions run when called
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "beatgan":
                    continue
                assert top in H200_HAS | carried, f"beatgan/{module}.py imports {top} at module level"


# --- the train driver's schedule ----------------------------------------------------------------
@pytest.fixture
def driver():
    return _load("train_h200")


def _args(**changes):
    base = dict(probe_iterations=100, chunk_max_s=300.0, until_train_s=None, max_iterations=None)
    return argparse.Namespace(**{**base, **changes})


def test_schedule_probes_then_fills_the_budget(driver):
    first = driver.next_target(step=0, rate=None, seconds_left=500, overhead_s=0, trained_s=0,
                               args=_args())
    assert first == 100
    # 34 iterations/s, 200 s left, 15 s overhead: 185 s of iterations.
    assert driver.next_target(step=100, rate=34.0, seconds_left=200, overhead_s=15, trained_s=10,
                              args=_args()) == 100 + int(185 * 34)
    # Chunks are capped, so a wrong rate cannot overshoot the command's limit by much.
    assert driver.next_target(step=100, rate=34.0, seconds_left=5000, overhead_s=0, trained_s=10,
                              args=_args()) == 100 + 300 * 34


def test_schedule_stops_at_its_limits(driver):
    nothing_left = dict(step=500, rate=34.0, overhead_s=15, trained_s=10)
    assert driver.next_target(seconds_left=15.5, args=_args(), **nothing_left) == 500
    assert driver.next_target(seconds_left=400, args=_args(until_train_s=10), **nothing_left) == 500
    assert driver.next_target(seconds_left=400, args=_args(max_iterations=520), **nothing_left) == 520
    assert driver.next_target(step=0, rate=None, seconds_left=400, overhead_s=0, trained_s=0,
                              args=_args(max_iterations=2)) == 2


def test_chunk_rate_leaves_out_the_compile(driver):
    history = [{"step": 10, "wall_s": 60.0}, {"step": 20, "wall_s": 61.0},
               {"step": 30, "wall_s": 62.0}]
    assert driver.chunk_rate(history, after_step=0) == pytest.approx(10.0)
    assert driver.chunk_rate(history, after_step=20) is None


def test_driver_sends_a_fresh_export_over_several_calls(driver, tmp_path, rng):
    """send(): split once per export, three calls' worth of parts, a new export re-split."""
    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    (run / "export" / "config.json").write_text("{}")
    (run / "history.json").write_text("[]")
    for name, size in (("generator.weights.h5", 7000), ("discriminator.weights.h5", 5000)):
        (run / "export" / name).write_bytes(rng.integers(0, 256, size, dtype="uint8").tobytes())
    args = argparse.Namespace(run_dir=run, part_bytes=2000, call_max_bytes=9000, out=None)
    received = tmp_path / "received"
    received.mkdir()
    for call in range(3):
        args.out = tmp_path / f"out{call}"
        driver.send(args)
        for f in args.out.iterdir():
            (received / f.name).write_bytes(f.read_bytes())
    assert not parts.unsent(run / "parts")
    parts.join_parts(received, tmp_path / "weights")
    for name in ("generator.weights.h5", "discriminator.weights.h5"):
        assert (tmp_path / "weights" / name).read_bytes() == (run / "export" / name).read_bytes()
    # More training, a new export: split again and start sending from the first part.
    (run / "export" / "generator.weights.h5").write_bytes(b"new" * 100)
    args.out = tmp_path / "out-new"
    driver.send(args)
    assert "config.json.part00" in {f.name for f in args.out.iterdir()}
