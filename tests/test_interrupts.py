"""Ctrl-C and SIGTERM during training lose nothing: the iteration finishes, then checkpoint,
export and history are written as at a time limit, and the same command resumes.

Real signals throughout: ``signal.raise_signal`` inside this process (at a chosen iteration,
so the expected step is exact), and SIGINT/SIGTERM sent to a ``python -m beatgan train``
process once its progress bar shows iterations done.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from beatgan import checkpoint as ckpt
from beatgan import fileio, training
from beatgan.interrupts import STOP_SIGNALS, deferred_stop

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import _train_worker  # noqa: E402

WEIGHT_FILES = ("generator.weights.h5", "generator_raw.weights.h5", "discriminator.weights.h5")


@pytest.fixture
def own_handlers():
    """A recording handler of this test's own for SIGINT and SIGTERM (what train must restore)."""
    received = []

    def handler(signum, frame):
        received.append(signum)

    handler.received = received
    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    yield handler
    for s, h in previous.items():
        signal.signal(s, h)


def _handlers():
    return [signal.getsignal(s) for s in STOP_SIGNALS]


def _train(run_dir, iterations, data=None, **kwargs):
    options = dict(checkpoint_every=1000, log_every=1, preview_every=1000, progress=False,
                   tensorboard=False)
    options.update(kwargs)
    return training.train(_train_worker.tiny_data() if data is None else data,
                          _train_worker.CONFIG, run_dir=run_dir, iterations=iterations, **options)


def _signal_during_iteration(monkeypatch, step, signum=signal.SIGINT, seen=None):
    """Raise ``signum`` in this process while iteration number ``step`` runs; ``seen`` collects
    the SIGINT handler in place during each iteration."""
    real = training._TrainingState.iteration

    def iteration(self):
        if seen is not None:
            seen.append(signal.getsignal(signal.SIGINT))
        out = real(self)
        if self.step + 1 == step:
            signal.raise_signal(signum)
        return out

    monkeypatch.setattr(training._TrainingState, "iteration", iteration)


# --- the context manager ----------------------------------------------------------------------
def test_the_first_signal_is_noted_the_second_raises_and_handlers_come_back(own_handlers):
    with deferred_stop() as stop:
        assert _handlers() != [own_handlers] * 2  # its own handlers are in place
        signal.raise_signal(signal.SIGTERM)
        assert stop.requested and stop.name == "SIGTERM"
        stop.acted_on = True
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert _handlers() == [own_handlers] * 2
    assert own_handlers.received == []  # neither reached the caller's handler


def test_handlers_come_back_when_the_block_raises(own_handlers):
    with pytest.raises(RuntimeError):
        with deferred_stop():
            raise RuntimeError("boom")
    assert _handlers() == [own_handlers] * 2


def test_a_signal_nothing_acted_on_goes_to_the_previous_handler(own_handlers):
    with deferred_stop() as stop:
        signal.raise_signal(signal.SIGINT)
        assert own_handlers.received == []
    assert stop.requested and own_handlers.received == [signal.SIGINT]


def test_outside_the_main_thread_nothing_is_installed(own_handlers):
    inside = []

    def run():
        with deferred_stop() as stop:
            inside.append((_handlers(), stop.requested))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert inside == [([own_handlers] * 2, False)]


# --- train, in this process -------------------------------------------------------------------
def test_ctrl_c_stops_after_its_iteration_with_checkpoint_export_and_history(
        tmp_path, monkeypatch, own_handlers):
    _signal_during_iteration(monkeypatch, 3)
    result = _train(tmp_path, 1000, tensorboard=True)
    assert result.stop_reason == "interrupted" and result.step == 3
    assert ckpt.list_checkpoints(tmp_path / "checkpoints") == [
        (3, tmp_path / "checkpoints" / "ckpt-00000003.npz")]
    assert json.loads((tmp_path / "export" / "weights.json").read_text())["step"] == 3
    assert all((tmp_path / "export" / name).is_file() for name in WEIGHT_FILES)
    assert [row["step"] for row in training.load_history(tmp_path)] == [1, 2, 3]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert tmp_path.resolve() not in fileio._HELD
    assert own_handlers.received == []  # the signal was train's to act on, not the caller's
    monkeypatch.undo()
    resumed = _train(tmp_path, 5)
    assert (resumed.resumed_from, resumed.step, resumed.stop_reason) == (3, 5, "iterations")


def test_train_restores_the_callers_handlers_after_returning_and_after_raising(
        tmp_path, monkeypatch, own_handlers):
    seen = []
    _signal_during_iteration(monkeypatch, 0, seen=seen)  # step 0 never comes: only records
    _train(tmp_path / "a", 2)
    assert len(seen) == 2 and seen[0] is not own_handlers  # train's own while it ran
    assert _handlers() == [own_handlers] * 2
    nan_data = np.full_like(_train_worker.tiny_data(), np.nan)
    with pytest.raises(training.NonFiniteLossError):
        _train(tmp_path / "b", 2, data=nan_data)
    assert _handlers() == [own_handlers] * 2


def test_a_second_sigint_during_the_wrap_up_aborts_it(tmp_path, monkeypatch, own_handlers):
    _signal_during_iteration(monkeypatch, 2)

    def export_pressed_again(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)
        raise AssertionError("the second SIGINT did not abort the export")

    monkeypatch.setattr(training, "export_weights", export_pressed_again)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, 1000)
    assert ckpt.list_checkpoints(tmp_path / "checkpoints")[-1][0] == 2  # saved before the export
    assert not (tmp_path / "export").exists()
    assert _handlers() == [own_handlers] * 2 and own_handlers.received == []
    assert tmp_path.resolve() not in fileio._HELD


def test_a_signal_after_the_last_iteration_is_passed_on_once_all_is_saved(
        tmp_path, monkeypatch, own_handlers):
    real = training.export_weights

    def export_then_signal(*args, **kwargs):
        signal.raise_signal(signal.SIGTERM)  # too late for the loop: it has ended
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "export_weights", export_then_signal)
    result = _train(tmp_path, 2)
    assert result.stop_reason == "iterations" and result.step == 2
    assert json.loads((tmp_path / "export" / "weights.json").read_text())["step"] == 2
    assert own_handlers.received == [signal.SIGTERM]  # delivered, not swallowed


# --- the command, in a process of its own -----------------------------------------------------
class _TrainingProcess:
    """``python -m beatgan train ARGS`` with its progress bar (stderr) read as it comes."""

    def __init__(self, args, env=None):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "beatgan", "train", *args], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, cwd=HERE.parent,
            env={**os.environ, "PYTHONPATH": str(HERE.parent), **(env or {})})
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while chunk := self.process.stderr.read1(4096):
            self.chunks.append(chunk)

    @property
    def stderr(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")

    def wait_for_d_updates(self, count: int, timeout_s: float = 120.0) -> None:
        """Until tqdm shows ``count`` D updates done (its counter is in D updates)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = [int(n) for n in re.findall(r"\| *(\d+)/\d+ \[", self.stderr)]
            if done and done[-1] >= count:
                return
            assert self.process.poll() is None, self.stderr
            time.sleep(0.1)
        self.process.kill()
        raise AssertionError(f"no {count} D updates within {timeout_s} s:\n{self.stderr}")

    def stop(self, signum: int) -> tuple[int, str]:
        """Send ``signum``; the exit status and the message lines ("beatgan ...")."""
        self.process.send_signal(signum)
        try:
            rc = self.process.wait(timeout=120)
        finally:
            self.process.kill()
        self.reader.join(timeout=10)
        assert "Traceback" not in self.stderr, self.stderr
        lines = [line for line in re.split(r"[\r\n]", self.stderr) if line.startswith("beatgan ")]
        return rc, lines


def _interrupt_cli(args, signum, *, after_d_updates, env=None):
    trainer = _TrainingProcess(args, env)
    trainer.wait_for_d_updates(after_d_updates)
    return trainer.stop(signum)


def _assert_saved_at(run: Path, step: int) -> None:
    assert ckpt.list_checkpoints(run / "checkpoints")[-1][0] == step
    assert json.loads((run / "export" / "weights.json").read_text())["step"] == step
    assert all((run / "export" / name).is_file() for name in WEIGHT_FILES)
    assert training.load_history(run)[-1]["step"] == step


def _cli_args(data: Path, run: Path) -> list[str]:
    return ["--data", str(data), "--out", str(run), "--model-dim", "2", "--batch-size", "2",
            "--iterations", "1000000", "--checkpoint-every", "100000"]


@pytest.mark.slow
def test_ctrl_c_on_the_command_saves_says_so_exits_130_and_the_same_command_resumes(
        tmp_path, demo_folder):
    run = tmp_path / "run"
    args = _cli_args(demo_folder, run)
    rc, lines = _interrupt_cli(args, signal.SIGINT, after_d_updates=10)
    assert rc == 130, lines
    match = re.fullmatch(rf"beatgan train: interrupted at iteration (\d+); checkpoint and weights "
                         rf"saved in {re.escape(str(run))}; the same command resumes", lines[-1])
    assert match, lines
    first = int(match[1])
    assert first >= 2
    _assert_saved_at(run, first)
    # The same command again: it goes on from there (and stops the same way).
    rc, lines = _interrupt_cli(args, signal.SIGINT, after_d_updates=5 * (first + 2))
    match = re.fullmatch(rf"beatgan train: interrupted at iteration (\d+) \(resumed at {first}\); "
                         rf".*; the same command resumes", lines[-1])
    assert rc == 130 and match, lines
    second = int(match[1])
    assert second >= first + 2
    _assert_saved_at(run, second)
    steps = [row["step"] for row in training.load_history(run)]
    assert first in steps and steps == sorted(set(steps))  # the first run's rows, continued


@pytest.mark.slow
def test_sigterm_on_the_command_under_jax_stops_the_same_way(tmp_path, demo_folder):
    pytest.importorskip("jax", reason="JAX is not installed (the [jax] extra)")
    run = tmp_path / "run"
    rc, lines = _interrupt_cli(_cli_args(demo_folder, run) + ["--backend", "jax"], signal.SIGTERM,
                               after_d_updates=10, env={"JAX_PLATFORMS": "cpu"})
    assert rc == 130, lines
    match = re.fullmatch(r"beatgan train: interrupted at iteration (\d+); .*", lines[-1])
    assert match, lines
    assert int(match[1]) >= 2
    _assert_saved_at(run, int(match[1]))
    assert json.loads((run / "export" / "weights.json").read_text())["backend"] == "jax"
