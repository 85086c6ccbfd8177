"""Faults of the disk, the folder and the neighbour: one clear line, the right exit code, nothing lost.

Real failures where a CPU CI machine can make them: a read-only or tiny full tmpfs (skipped, with
the reason, where mounting is not allowed), a file where a folder should be, a second process
holding a run folder, truncated and corrupt files. Tests run as root too, where permission bits
do not stop a write, so EACCES and mid-write ENOSPC are also injected at ``fileio._write_file``.
"""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from beatgan import checkpoint as ckpt
from beatgan import fileio
from beatgan.cli import main
from beatgan.config import Config

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import _train_worker  # noqa: E402

TINY = Config(model_dim=2, batch_size=2)


# --- fixtures ---------------------------------------------------------------------------------
def _mount_tmpfs(folder: Path, size_bytes: int) -> str | None:
    """Mount a tmpfs of ``size_bytes`` on ``folder``; None, or why it could not be mounted."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    return None if done.returncode == 0 else (done.stderr.strip() or "mount failed")


def _umount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """``make(size_bytes) -> folder``: a real tmpfs that fills up; skipped where mounting fails."""
    mounted = []

    def make(size_bytes: int) -> Path:
        folder = tmp_path / f"disk{len(mounted)}"
        why = _mount_tmpfs(folder, size_bytes)
        if why is not None:
            print(f"skipping: cannot mount a tmpfs here ({why})")
            pytest.skip(f"cannot mount a tmpfs here ({why})")
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        _umount(folder)


def _remount_read_only(folder: Path) -> None:
    done = subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot remount read-only ({done.stderr.strip()})")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _fail_writes(monkeypatch, code: int, *, when=lambda path: True, after_bytes: int = 100):
    """Make ``fileio`` writes fail with ``code`` after writing part of the file (as a full disk)."""
    real = fileio._write_file

    def failing(path: Path, payload: bytes, **kwargs) -> None:
        if not when(path):
            return real(path, payload, **kwargs)
        with open(path, "wb") as handle:
            handle.write(payload[:after_bytes])
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fileio, "_write_file", failing)


def _one_line(text: str) -> str:
    """The one message line the CLI printed (progress bars aside), with no traceback."""
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.startswith("beatgan ")]
    assert len(lines) == 1, text
    return lines[0]


# --- atomic writes ------------------------------------------------------------------------------
def test_atomic_write_keeps_the_old_file_when_the_disk_fills(tmp_path, monkeypatch):
    path = fileio.atomic_write_bytes(tmp_path / "a.bin", b"old complete content")
    _fail_writes(monkeypatch, errno.ENOSPC)
    with pytest.raises(OSError) as caught:
        fileio.atomic_write_bytes(path, b"n" * 10_000, what="writing a test file")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    assert path.read_bytes() == b"old complete content"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]  # no temp file left


def test_atomic_write_on_a_real_full_disk(small_disk, monkeypatch):
    disk = small_disk(256 * 1024)
    path = fileio.atomic_write_bytes(disk / "a.bin", b"old")
    with pytest.raises(OSError, match="No space left") as caught:  # the check before writing
        fileio.atomic_write_bytes(path, b"n" * 2_000_000)
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.setattr(fileio, "check_free_space", lambda *a, **k: None)
    with pytest.raises(OSError) as caught:  # the write itself fails: the kernel's ENOSPC
        fileio.atomic_write_bytes(path, b"n" * 2_000_000)
    assert caught.value.errno == errno.ENOSPC
    assert path.read_bytes() == b"old" and [p.name for p in disk.iterdir()] == ["a.bin"]


def test_a_batch_is_all_or_nothing(tmp_path, monkeypatch):
    old = {tmp_path / f"f{i}": b"old" for i in range(3)}
    fileio.write_files_atomically(old, what="writing")
    new = {tmp_path / f"f{i}": b"new" * 100 for i in range(5)}
    _fail_writes(monkeypatch, errno.ENOSPC, when=lambda p: p.name.endswith("f3"))
    with pytest.raises(OSError) as caught:
        fileio.write_files_atomically(new, what="writing five files")
    assert caught.value.filename == str(tmp_path / "f3")
    assert caught.value.beatgan_what == "writing five files"
    assert _snapshot(tmp_path) == {f"f{i}": b"old" for i in range(3)}


def test_free_space_must_cover_the_write_and_the_margin_counted_from_the_free_bytes(
        tmp_path, monkeypatch):
    """A disk of 10 GiB with 1,000,000 bytes free: a write of 1,000,000 - 65,536 bytes leaves
    exactly the 64 KiB margin and passes; one byte more is ENOSPC, for one file, a batch (its
    total) and a staged batch alike, and nothing is written then."""
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")(10 * 2**30, 10 * 2**30 - 1_000_000, 1_000_000)
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda path: usage)
    assert fileio.FREE_SPACE_MARGIN_BYTES == 65_536
    fits = 1_000_000 - 65_536
    fileio.check_free_space(tmp_path, fits, what="a test")  # exactly enough
    with pytest.raises(OSError) as caught:
        fileio.check_free_space(tmp_path, fits + 1, what="a test")
    assert caught.value.errno == errno.ENOSPC
    assert "a test needs 0.9 MiB, 1.0 MiB free" in str(caught.value)  # 934,465 and 1,000,000 bytes

    path = fileio.atomic_write_bytes(tmp_path / "a.bin", b"a" * fits)
    with pytest.raises(OSError, match="No space left"):
        fileio.atomic_write_bytes(path, b"b" * (fits + 1))
    assert path.read_bytes() == b"a" * fits
    half = fits // 2  # 467,232: two of them fit exactly, a byte more in one does not
    with pytest.raises(OSError, match="No space left"):
        fileio.write_files_atomically({tmp_path / "x": b"x" * half,
                                       tmp_path / "y": b"y" * (half + 1)}, what="a batch")
    with pytest.raises(OSError, match="No space left"):
        with fileio.staged_files(tmp_path / "staged", what="a batch", needed_bytes=fits + 1):
            pass
    fileio.write_files_atomically({tmp_path / "x": b"x" * half, tmp_path / "y": b"y" * half},
                                  what="a batch")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "staged", "x", "y"]
    assert list((tmp_path / "staged").iterdir()) == []


def test_check_writable_names_the_file_in_the_way(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(NotADirectoryError) as caught:
        fileio.check_writable(tmp_path / "out", what="writing beats")
    assert "a file is in the way" in fileio.describe_os_error(caught.value, default_what="x")
    with pytest.raises(OSError):  # a folder below a file
        fileio.check_writable(tmp_path / "out" / "sub", what="writing beats")


# --- the run-folder lock: two real processes --------------------------------------------------
_HOLDER = textwrap.dedent("""
    import sys, time
    from beatgan.fileio import lock_folder
    lock_folder(sys.argv[1])
    print("locked", flush=True)
    time.sleep(120)
""")


def test_a_second_process_on_one_run_folder_gets_one_line_naming_the_holder(tmp_path, demo_folder,
                                                                            capsys):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(run)], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        rc = main(["train", "--data", str(demo_folder), "--out", str(run), "--iterations", "1",
                   "--model-dim", "2", "--batch-size", "2"])
        err = _one_line(capsys.readouterr().err)
        assert rc == 2
        assert f"in use by process {holder.pid}" in err and str(run) in err
        assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing of a run written
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # kill -9 leaves no stale lock: the kernel dropped it with the process.
    fileio.lock_folder(run)
    fileio.unlock_folder(run)


# --- training: full disk while checkpointing, corrupt checkpoints, read-only run folder ------------
def _train(run_dir, iterations, **kwargs):
    from beatgan.training import train

    options = dict(checkpoint_every=2, log_every=1, preview_every=100, progress=False,
                   tensorboard=False)
    options.update(kwargs)
    return train(_train_worker.tiny_data(), _train_worker.CONFIG, run_dir=run_dir,
                 iterations=iterations, **options)


def test_disk_full_while_checkpointing_stops_with_rc1_and_keeps_the_last_checkpoint(
        tmp_path, demo_folder, monkeypatch, capsys):
    run = tmp_path / "run"
    args = ["train", "--data", str(demo_folder), "--out", str(run), "--model-dim", "2",
            "--batch-size", "2", "--checkpoint-every", "2"]
    assert main(args + ["--iterations", "2"]) == 0
    first = run / "checkpoints" / "ckpt-00000002.npz"
    before = first.read_bytes()
    capsys.readouterr()
    _fail_writes(monkeypatch, errno.ENOSPC, when=lambda p: "ckpt-00000004" in p.name)
    assert main(args + ["--iterations", "4"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("beatgan train: stopped: ")
    assert "ckpt-00000004.npz: No space left on device" in err
    assert f"the last checkpoint, {first}, is kept" in err
    assert [p.name for p in (run / "checkpoints").iterdir()] == [first.name]  # no partial, no temp
    assert first.read_bytes() == before
    assert run.resolve() not in fileio._HELD  # a failed run releases its folder


def test_disk_full_while_a_checkpoint_is_written_in_the_background_stops_at_the_next_one(
        tmp_path, demo_folder, monkeypatch, capsys):
    """Checkpoint 4 is written while iterations 5-6 run; its error stops the run at checkpoint
    6, which is not started, and checkpoint 2 stays the last."""
    run = tmp_path / "run"
    _fail_writes(monkeypatch, errno.ENOSPC, when=lambda p: "ckpt-00000004" in p.name)
    assert main(["train", "--data", str(demo_folder), "--out", str(run), "--model-dim", "2",
                 "--batch-size", "2", "--checkpoint-every", "2", "--iterations", "6"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert "ckpt-00000004.npz: No space left on device" in err
    assert f"the last checkpoint, {run / 'checkpoints' / 'ckpt-00000002.npz'}, is kept" in err
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["ckpt-00000002.npz"]


def test_a_corrupt_newest_checkpoint_is_set_aside_and_the_older_one_used(tmp_path):
    _train(tmp_path, 4, keep=3, export=False)
    newest = tmp_path / "checkpoints" / "ckpt-00000004.npz"
    torn = newest.read_bytes()[:5000]
    newest.write_bytes(torn)
    with pytest.warns(ckpt.CheckpointWarning, match="unreadable") as caught:
        result = _train(tmp_path, 6, keep=3, export=False)
    assert result.resumed_from == 2 and result.step == 6
    assert any("older checkpoint ckpt-00000002.npz" in str(w.message) for w in caught)
    aside = tmp_path / "checkpoints" / "ckpt-00000004.npz.corrupt"
    assert aside.read_bytes() == torn  # kept for inspection, never deleted
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [2, 4, 6]


def test_no_readable_checkpoint_is_an_error_not_a_silent_restart(tmp_path):
    for step in (1, 2):
        (tmp_path / ckpt.checkpoint_path("", step)).write_bytes(b"not a zip")
    with pytest.warns(ckpt.CheckpointWarning):
        with pytest.raises(ValueError, match="no checkpoint .* is readable"):
            ckpt.latest_good_checkpoint(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt-00000001.npz.corrupt", "ckpt-00000002.npz.corrupt"]


def test_a_machine_error_while_reading_sets_no_checkpoint_aside(tmp_path, monkeypatch):
    """Out of file descriptors (or memory) says nothing about the file: the error is raised as it
    came and the checkpoints stay (each was once renamed .corrupt, and the run started over)."""
    _train(tmp_path, 4, keep=3, export=False)
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())

    def out_of_descriptors(*args, **kwargs):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(ckpt.np, "load", out_of_descriptors)
    with pytest.raises(OSError, match="Too many open files"):
        ckpt.latest_good_checkpoint(tmp_path / "checkpoints")
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before


def test_a_killed_calls_history_and_temporary_files_are_mended_by_the_next(tmp_path):
    """A kill after the last checkpoint but before the history written after it, and temporary
    files of writes it never renamed: the next call rewrites the history from the checkpoint
    and removes what the dead writer left (pid 999999999 runs nowhere)."""
    _train(tmp_path, 4)
    (tmp_path / "history.json").write_text(json.dumps([{"step": 1}]))
    dead = [tmp_path / ".tmp-999999999-history.json",
            tmp_path / "export" / ".tmp-999999999-generator.weights.h5"]
    for path in dead:
        path.write_bytes(b"half")
    mine = tmp_path / f".tmp-{os.getpid()}-mine"  # a live writer's: left alone
    mine.write_bytes(b"in use")
    result = _train(tmp_path, 4)
    assert result.resumed_from == 4
    assert [row["step"] for row in json.loads((tmp_path / "history.json").read_text())] == [
        1, 2, 3, 4]
    assert not any(path.exists() for path in dead) and mine.exists()


def test_on_windows_no_process_is_signalled_and_temporaries_are_kept(tmp_path, monkeypatch):
    """Windows' os.kill terminates the process for any signal, 0 included: a stale name must
    never reach it there (the files stay; on POSIX the same dead writer's file goes)."""
    from beatgan.fileio import remove_dead_temporaries

    stale = tmp_path / ".tmp-999999999-history.json"
    stale.write_bytes(b"half")
    signalled = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: signalled.append((pid, sig)))
    monkeypatch.setattr(sys, "platform", "win32")
    remove_dead_temporaries(tmp_path)
    assert signalled == [] and stale.exists()
    monkeypatch.undo()
    remove_dead_temporaries(tmp_path)
    assert not stale.exists()


@pytest.mark.filterwarnings("ignore:only soft file lock")  # JAX notices the missing fcntl too
def test_train_without_flock_is_one_line_naming_the_systems_that_have_it(tmp_path, monkeypatch,
                                                                          capsys):
    monkeypatch.setitem(sys.modules, "fcntl", None)  # as on Windows: importing it fails
    assert main(["train", "--out", str(tmp_path / "run"), "--model-dim", "2", "--batch-size", "2",
                 "--iterations", "1"]) != 0
    err = capsys.readouterr().err.strip()
    assert "POSIX flock" in err and "WSL" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()  # the command's folder goes with it


def test_a_failed_command_keeps_a_run_folder_another_process_took_meanwhile(tmp_path):
    """Two commands racing for a new folder: the one that lost must not remove the lock (and the
    folder) of the one that won, or a third would get the lock too."""
    folder = tmp_path / "new"
    code = (f"import sys, time; from beatgan import fileio; fileio.lock_folder({str(folder)!r}); "
            f"print('locked', flush=True); time.sleep(60)")
    with pytest.raises(RuntimeError, match="bad input"):
        with fileio.output_folder(folder, what="a test"):
            winner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                      text=True)
            assert winner.stdout.readline().strip() == "locked"
            raise RuntimeError("bad input")
    try:
        assert (folder / fileio.LOCK_FILE).is_file()
        with pytest.raises(fileio.FolderLocked):
            fileio.lock_folder(folder)
    finally:
        winner.kill()
        winner.wait()


def test_dead_staging_is_removed_before_the_free_space_check(tmp_path, monkeypatch):
    stale = tmp_path / ".tmp-999999999-abc"
    stale.mkdir()
    (stale / "output000.wav").write_bytes(b"x" * 1000)
    seen = []
    real = fileio.check_free_space
    monkeypatch.setattr(fileio, "check_free_space",
                        lambda folder, needed, **kw: (seen.append(stale.exists()),
                                                      real(folder, needed, **kw))[1])
    with fileio.staged_files(tmp_path, what="a test", needed_bytes=10) as stage:
        stage("a.txt", b"hello")
    assert seen == [False] and (tmp_path / "a.txt").read_bytes() == b"hello"


def test_train_into_a_file_or_a_read_only_disk_is_one_line_rc2(tmp_path, demo_folder, capsys,
                                                               small_disk):
    (tmp_path / "taken").write_text("a file")
    base = ["train", "--data", str(demo_folder), "--iterations", "1", "--model-dim", "2",
            "--batch-size", "2"]
    assert main(base + ["--out", str(tmp_path / "taken")]) == 2
    err = _one_line(capsys.readouterr().err)
    assert str(tmp_path / "taken") in err and "a file is in the way" in err
    disk = small_disk(1 << 20)
    _remount_read_only(disk)
    assert main(base + ["--out", str(disk / "run")]) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"{disk / 'run'}: Read-only file system" in err and "preparing the run folder" in err
    assert list(disk.iterdir()) == []


def test_export_writes_no_temporary_h5_and_a_full_disk_keeps_the_old_export(tmp_path, monkeypatch):
    from beatgan.model import build_discriminator, build_generator
    from beatgan.training import export_weights

    g, d = build_generator(TINY), build_discriminator(TINY)
    export_weights(g, d, config=TINY, folder=tmp_path)
    before = _snapshot(tmp_path)
    _fail_writes(monkeypatch, errno.ENOSPC, when=lambda p: "generator" in p.name)
    with pytest.raises(OSError) as caught:
        export_weights(build_generator(TINY.replace(seed=5)), d, config=TINY, folder=tmp_path)
    assert caught.value.filename == str(tmp_path / "generator.weights.h5")
    assert _snapshot(tmp_path) == before


# --- generate: full disk, read-only, permission -----------------------------------------------
def test_generate_into_a_full_disk_leaves_the_previous_batch_whole(tiny_weights, small_disk,
                                                                   monkeypatch, capsys):
    disk = small_disk(1_500_000)  # room for about 8 beats of 170 kB
    gen = ["generate", "--weights", str(tiny_weights), "--out", str(disk)]
    assert main(gen + ["--n", "3"]) == 0
    before = _snapshot(disk)
    capsys.readouterr()
    assert main(gen + ["--n", "40"]) == 2  # refused before writing: not enough room
    err = _one_line(capsys.readouterr().err)
    assert "No space left on device" in err and str(disk) in err
    assert _snapshot(disk) == before
    monkeypatch.setattr(fileio, "check_free_space", lambda *a, **k: None)
    assert main(gen + ["--n", "40"]) == 2  # the kernel's ENOSPC mid-batch
    err = _one_line(capsys.readouterr().err)
    assert "No space left on device" in err and "writing 40 beats" in err
    assert _snapshot(disk) == before  # no output030.wav, no temp file, beats.json of the 3


def test_generate_permission_denied_and_read_only(tiny_weights, tmp_path, small_disk, monkeypatch,
                                                  capsys):
    _fail_writes(monkeypatch, errno.EACCES)
    assert main(["generate", "--weights", str(tiny_weights), "--out", str(tmp_path / "b"),
                 "--n", "2"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "Permission denied" in err and "output000.wav" in err
    assert not (tmp_path / "b").exists()  # nothing written, and the folder made for it is gone
    monkeypatch.undo()
    disk = small_disk(1 << 20)
    _remount_read_only(disk)
    for args, named in ((["generate", "--weights", str(tiny_weights), "--out", str(disk)], disk),
                        (["loop", "--weights", str(tiny_weights), "--out", str(disk)], disk),
                        (["demo-data", str(disk / "pack"), "--n", "1"], disk / "pack")):
        assert main(args) == 2
        err = _one_line(capsys.readouterr().err)
        assert "Read-only file system" in err and "the file system is read-only" in err, err
        # The folder the user named, not the probe file written to test it.
        assert f": error: {named}: Read-only file system" in err and "probe" not in err, err


def test_a_read_only_disk_is_named_by_the_files_asked_for_not_their_temporary_names(small_disk):
    """Each way of writing fails on its first file, and the line names that file's final path
    and what was being written: not the ``.tmp-PID-`` file it stages, and not the error of
    removing that temporary file afterwards (which a read-only file system refuses too)."""
    disk = small_disk(1 << 20)
    _remount_read_only(disk)

    def stage_one(folder):
        with fileio.staged_files(folder, what="staging beats") as stage:
            stage("c.wav", b"c")

    for write, name, what in (
            (lambda: fileio.atomic_write_bytes(disk / "a.wav", b"a"), "a.wav", "writing a.wav"),
            (lambda: fileio.write_files_atomically({disk / "b.wav": b"b"}, what="writing beats"),
             "b.wav", "writing beats"),
            (lambda: stage_one(disk), None, "staging beats")):
        with pytest.raises(OSError) as caught:
            write()
        line = fileio.describe_os_error(caught.value, default_what="x")
        named = disk / name if name else disk  # staging fails making its folder in ``disk``
        assert line.startswith(f"{named}: Read-only file system (while {what};"), line
        assert caught.value.errno == errno.EROFS


def test_a_folder_without_permission_is_named_not_the_probe_written_into_it(tmp_path,
                                                                           monkeypatch):
    """The probe file cannot be created (EACCES, as for a user without write permission; root
    is not stopped by the bits, so it is injected): the line names the folder the user gave."""
    folder = tmp_path / "out"
    folder.mkdir()

    def refused(path, mode="r", *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(fileio, "open", refused, raising=False)
    with pytest.raises(OSError) as caught:
        fileio.check_writable(folder, what="writing beats")
    assert caught.value.errno == errno.EACCES and caught.value.filename == str(folder)
    assert fileio.describe_os_error(caught.value, default_what="x") == (
        f"{folder}: Permission denied (while writing beats; no permission; write elsewhere or "
        f"fix the folder's permissions)")
    assert list(folder.iterdir()) == []


def test_debug_shows_the_traceback(tiny_weights, tmp_path, capsys, monkeypatch):
    (tmp_path / "out").write_text("a file")
    args = ["generate", "--weights", str(tiny_weights), "--out", str(tmp_path / "out")]
    assert main(["--debug"] + args) == 2
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("BEATGAN_DEBUG", "1")
    assert main(args) == 2
    assert "Traceback" in capsys.readouterr().err


# --- weights that do not load -------------------------------------------------------------------
def test_truncated_weights_and_another_model_size_are_one_line(tiny_weights, tmp_path, capsys):
    import shutil

    torn = tmp_path / "torn"
    shutil.copytree(tiny_weights, torn)
    h5 = torn / "generator.weights.h5"
    h5.write_bytes(h5.read_bytes()[:20_000])
    assert main(["generate", "--weights", str(torn), "--out", str(tmp_path / "o")]) == 2
    err = _one_line(capsys.readouterr().err)
    assert str(h5) in err and "truncated or not HDF5" in err and "model_dim=2" in err
    other = tmp_path / "other"
    shutil.copytree(tiny_weights, other)
    TINY.replace(model_dim=4).save(other / "config.json")
    assert main(["generate", "--weights", str(other), "--out", str(tmp_path / "o")]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "does not fit its config.json" in err and "model_dim=4" in err
    assert "(100, 1024)" in err  # the dense kernel a d = 4 generator expects (16 * 16 * 4)
    assert not (tmp_path / "o").exists()  # the output folder made for the beats is gone again


def test_weights_that_do_not_fit_raise_one_error_without_keras_warnings(tiny_weights, tmp_path):
    import shutil

    from beatgan.generation import load_generator

    other = shutil.copytree(tiny_weights, tmp_path / "other")
    TINY.replace(model_dim=4).save(other / "config.json")
    with warnings.catch_warnings(record=True) as caught, pytest.raises(ValueError, match="does not fit"):
        warnings.simplefilter("always")
        load_generator(other)
    assert [str(w.message) for w in caught] == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_generator(tiny_weights)
    assert [str(w.message) for w in caught] == []


def test_output_folder_removes_only_what_it_made_and_left_empty(tmp_path):
    with pytest.raises(RuntimeError):
        with fileio.output_folder(tmp_path / "a/b/c", what="writing") as folder:
            (folder / fileio.LOCK_FILE).write_text("1")
            raise RuntimeError("bad input")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError):
        with fileio.output_folder(tmp_path / "a/b", what="writing") as folder:
            (folder / "beat.wav").write_text("kept")
            raise RuntimeError("failed after the first batch")
    assert (tmp_path / "a/b/beat.wav").read_text() == "kept"
    with pytest.raises(KeyboardInterrupt):
        with fileio.output_folder(tmp_path / "a/b/new", what="writing"):
            raise KeyboardInterrupt
    assert sorted(p.name for p in (tmp_path / "a/b").iterdir()) == ["beat.wav"]
    with fileio.output_folder(tmp_path / "ok", what="writing"):
        pass
    assert (tmp_path / "ok").is_dir()  # kept, empty, when the block succeeds


# --- the data folder: never the demo pack in place of the user's files --------------------------
def test_a_named_folder_of_m4a_files_is_an_error_not_the_demo_pack(tmp_path, tiny_weights, capsys):
    for name in ("a_124.m4a", "b_124.m4a"):
        (tmp_path / name).write_bytes(b"\0" * 100)
    beats = tmp_path.parent / f"{tmp_path.name}-beats"
    assert main(["generate", "--weights", str(tiny_weights), "--out", str(beats), "--n", "1"]) == 0
    capsys.readouterr()
    for args in (["train", "--data", str(tmp_path), "--out", str(tmp_path / "run")],
                 ["score", "--data", str(tmp_path), "--generated", str(beats)]):
        assert main(args) == 2
        err = _one_line(capsys.readouterr().err)
        assert "found 2 .m4a files" in err and "demo pack" not in err.split(";")[0], err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_named_empty_folder_is_an_error_the_default_one_is_the_demo(tmp_path):
    from beatgan.data import LoopError
    from beatgan.synth import ensure_demo_pack

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LoopError, match="is empty"):
        ensure_demo_pack(empty, missing_ok=False, empty_ok=False)
    (empty / "README.md").write_text("put loops here")
    assert ensure_demo_pack(empty, n=2, cache_dir=tmp_path / "cache", empty_ok=True) \
        == tmp_path / "cache" / "seed0_n2"


def test_unreadable_folders_are_reported_not_dropped(tmp_path, demo_folder, monkeypatch):
    from beatgan.data import LoopError, LoopWarning, find_audio_files, scan_folder

    sub = tmp_path / "sub"
    sub.mkdir()
    for wav in demo_folder.glob("*.wav"):
        (tmp_path / wav.name).write_bytes(wav.read_bytes())
        (sub / wav.name).write_bytes(wav.read_bytes())
    real = os.scandir

    def scandir(path="."):  # root ignores permission bits, so deny the listing itself
        if Path(path) in (sub, tmp_path / "locked"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.warns(LoopWarning, match=r"sub: subfolder cannot be read \(Permission denied\)"):
        assert len(find_audio_files(tmp_path)) == 2
    (tmp_path / "locked").mkdir()
    with pytest.raises(LoopError, match="cannot be read"):
        scan_folder(tmp_path / "locked")


# --- loop files: truncated, far above full scale --------------------------------------------------
def test_a_truncated_wav_is_called_truncated(demo_folder, tmp_path):
    from beatgan.data import LoopWarning, read_loop

    source = sorted(demo_folder.glob("*.wav"))[0]
    cut = tmp_path / source.name
    cut.write_bytes(source.read_bytes()[:150_000])  # the header still promises the whole loop
    with pytest.warns(LoopWarning, match="truncated: its header promises") as caught:
        _, report = read_loop(cut, Config())
    assert any("zero-padded" in str(w.message) for w in caught)
    assert any(note.startswith("truncated at") for note in report.notes)


def test_a_float_wav_far_above_full_scale_is_scaled_down_with_a_warning(tmp_path):
    from beatgan.data import LoopWarning, read_loop
    from beatgan.synth import synthesize_loop

    loop = synthesize_loop(bpm=125.0, seed=0, index=0)
    path = tmp_path / "loud_125.wav"
    sf.write(path, loop / np.max(np.abs(loop)) * 1e6, 44100, subtype="FLOAT")
    with pytest.warns(LoopWarning, match="peaks at 1e\\+06, above full scale"):
        seg, report = read_loop(path, Config())
    reference, _ = read_loop(_write(tmp_path / "ref_125.wav", loop / np.max(np.abs(loop))), Config())
    np.testing.assert_allclose(seg, reference, atol=1e-5)  # the shape kept, not clipped to a square
    assert any("scaled down" in note for note in report.notes)


def _write(path, x):
    sf.write(path, x, 44100, subtype="FLOAT")
    return path


# --- score: thresholds, JSON, example count -----------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_thresholds_are_refused(value, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["score", f"--threshold={value}"])
    assert caught.value.code == 2
    assert "expected a finite number" in capsys.readouterr().err


def test_json_output_is_valid_json_and_example_count_zero_writes_the_index(demo_folder, tiny_weights,
                                                                           tmp_path, capsys):
    from beatgan.cli import _json_safe

    assert json.dumps(_json_safe({"a": [float("nan"), 1.0], "b": float("inf")}),
                      allow_nan=False) == '{"a": [null, 1.0], "b": null}'
    beats = tmp_path / "beats"
    assert main(["generate", "--weights", str(tiny_weights), "--out", str(beats), "--n", "2"]) == 0
    capsys.readouterr()
    examples = tmp_path / "examples"
    assert main(["score", "--data", str(demo_folder), "--generated", str(beats), "--json",
                 "--examples", str(examples), "--example-count", "0"]) == 0
    out = capsys.readouterr().out

    def refuse(constant):
        raise AssertionError(f"invalid JSON constant {constant}")

    assert json.loads(out, parse_constant=refuse)["n_generated"] == 2
    assert [p.name for p in examples.iterdir()] == ["README.md"]


# --- run-notebook: checks its output folder before running ---------------------------------------
def test_run_notebook_to_a_read_only_disk_fails_before_running(tmp_path, small_disk, capsys):
    import nbformat

    marker = tmp_path / "ran"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"open({str(marker)!r}, 'w').write('x')")])
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    disk = small_disk(1 << 20)
    _remount_read_only(disk)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["run-notebook", str(path), "--output", str(disk / "out.ipynb")])
    assert rc == 2
    err = _one_line(capsys.readouterr().err)
    assert "Read-only file system" in err and "saving the executed notebook" in err
    assert not marker.exists()  # refused before the kernel started


def test_a_failed_train_releases_its_run_folder(tmp_path):
    """In a long-lived process (a notebook kernel) a failed run must not keep the folder locked."""
    from beatgan.training import train

    with pytest.raises(ValueError):
        train(np.zeros((4, 100, 2), np.float32), _train_worker.CONFIG, run_dir=tmp_path,
              iterations=1, progress=False)  # wrong slice length
    assert tmp_path.resolve() not in fileio._HELD
    held = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from beatgan import fileio
        fileio.lock_folder({str(tmp_path)!r})
        print("locked")""")], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    assert held.stdout.strip() == "locked", held.stderr


def test_a_lock_the_caller_holds_outlives_train(tmp_path):
    with fileio.folder_lock(tmp_path):
        with fileio.folder_lock(tmp_path):  # train's own, inside the CLI's
            pass
        assert tmp_path.resolve() in fileio._HELD
    assert tmp_path.resolve() not in fileio._HELD


def test_zero_iterations_are_refused(tmp_path):
    from beatgan.training import train

    with pytest.raises(ValueError, match="iterations must be >= 1"):
        train(_train_worker.tiny_data(), _train_worker.CONFIG, run_dir=tmp_path, iterations=0)
    assert not (tmp_path / "export").exists()


@pytest.mark.parametrize("flag", ["--max-minutes", "--checkpoint-minutes"])
@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_minutes_must_be_positive(flag, value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--out", str(tmp_path), flag, value])
    assert exit_.value.code == 2
    assert f"argument {flag}: expected a" in capsys.readouterr().err


def test_a_missing_extra_is_one_line_naming_it(tiny_weights, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # as if the [app] extra were not installed
    assert main(["app", "--weights", str(tiny_weights)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert err == 'beatgan app: error: gradio is not installed (pip install "beatgan[app]")'


@pytest.mark.slow
def test_a_failing_notebook_cell_is_one_line_and_the_notebook_is_kept(tmp_path, capsys):
    import nbformat

    notebook = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("1 / x")]
    notebook.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(notebook, tmp_path / "broken.ipynb")
    out = tmp_path / "out.ipynb"
    assert main(["run-notebook", str(tmp_path / "broken.ipynb"), "--output", str(out),
                 "-p", "x=0"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("beatgan run-notebook: stopped: In [")  # papermill adds a parameters cell
    assert err.endswith("] raised ZeroDivisionError: division by zero (the executed notebook is saved)")
    assert out.is_file()  # the partly executed notebook, to look at


def test_loading_a_named_empty_folder_is_an_error_unless_it_is_the_default(tmp_path, monkeypatch):
    from beatgan.config import Config
    from beatgan.data import LoopError
    from beatgan.workflows import load_training_loops

    mine = tmp_path / "my_loops"
    mine.mkdir()
    with pytest.raises(LoopError, match="is empty"):  # as the notebook's data_dir names it
        load_training_loops(mine, Config(), n_demo=2)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ULTIMATE_DRUM_LOOPS").mkdir()
    monkeypatch.setattr("beatgan.synth.default_cache_dir", lambda: tmp_path / "cache")
    loops = load_training_loops("./ULTIMATE_DRUM_LOOPS/", Config(), n_demo=2)
    assert len(loops) == 2 and all("cache" in str(p) for p in loops.paths)
