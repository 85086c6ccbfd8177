"""Writing files so that a failure leaves the previous complete state, and saying what failed.

* ``atomic_write_bytes``: one file, written under a temporary name in its own folder, fsync'ed,
  then ``os.replace``'d onto its final name: a crash, a kill -9 or a full disk leaves either the
  old file or the new one, never a partial file under the final name.
* ``write_files_atomically``: a batch (40 beats and their ``beats.json``): every file is staged
  under a temporary name first, and only when all are on disk are they renamed into place.
* ``staged_files``: the same for a batch too large to hold in memory (100,000 beats): files are
  handed over one at a time into a hidden staging folder and renamed into place together at the end.
* ``weights_h5_bytes``: a Keras ``.weights.h5`` serialised in memory (h5py can crash the process
  when the disk fills under it), then written with ``atomic_write_bytes``.
* ``check_writable`` / ``check_free_space``: before long work, so a read-only or full output folder
  is reported in seconds, not after hours; ``output_folder`` also removes the folder it made
  when the command then fails.
* ``lock_folder``: an exclusive ``fcntl.flock`` on ``FOLDER/.lock``, released by the kernel when
  the process dies (kill -9 never leaves a stale lock).
* ``annotate`` / ``describe_os_error``: attach to an ``OSError`` the path and what was being
  written, and turn it into the one line the CLI prints.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

#: Free space kept beyond a write's own size (file-system metadata, logs written beside it).
FREE_SPACE_MARGIN_BYTES = 64 * 1024
LOCK_FILE = ".lock"
_TMP_PREFIX = ".tmp-"


# --- explaining an OSError ---------------------------------------------------------------
def annotate(error: OSError, *, path: str | Path | None = None, what: str | None = None,
             note: str | None = None, failed_run: bool = False) -> OSError:
    """Attach the path (when the error has none), what was being written and a note; returns it."""
    if path is not None and error.filename is None:
        error.filename = str(path)
    if what is not None and getattr(error, "beatgan_what", None) is None:
        error.beatgan_what = what
    if note is not None:
        error.beatgan_note = note
    if failed_run:
        error.beatgan_failed_run = True
    return error


@contextlib.contextmanager
def writing(path: str | Path, what: str) -> Iterator[None]:
    """Any ``OSError`` inside is annotated with ``path`` and ``what`` and re-raised."""
    try:
        yield
    except OSError as error:
        raise annotate(error, path=path, what=what)


_HINTS = {
    errno.ENOSPC: "free some space or write elsewhere",
    errno.EROFS: "the file system is read-only; write elsewhere",
    errno.EACCES: "no permission; write elsewhere or fix the folder's permissions",
    errno.EPERM: "no permission; write elsewhere or fix the folder's permissions",
    errno.EEXIST: "a file is in the way; expected a folder",
    errno.ENOTDIR: "a file is in the way; expected a folder",
}


def describe_os_error(error: OSError, *, default_what: str) -> str:
    """One line: ``PATH: reason (while WHAT; NOTE)``."""
    reason = error.strerror or str(error)
    where = error.filename if error.filename is not None else ""
    what = getattr(error, "beatgan_what", None) or default_what
    parts = [f"while {what}"]
    hint = _HINTS.get(error.errno)
    if hint and hint not in reason:
        parts.append(hint)
    note = getattr(error, "beatgan_note", None)
    if note:
        parts.append(note)
    return f"{where + ': ' if where else ''}{reason} ({'; '.join(parts)})"


# --- space and writability ---------------------------------------------------------------
def _existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(folder: str | Path) -> int:
    """Bytes free for an unprivileged writer on the file system holding ``folder``."""
    return shutil.disk_usage(_existing_parent(Path(folder))).free


def check_free_space(folder: str | Path, needed_bytes: int, *, what: str) -> None:
    """Raise ``OSError(ENOSPC)`` naming ``folder`` unless ``needed_bytes`` + margin are free."""
    free = free_bytes(folder)
    if free < needed_bytes + FREE_SPACE_MARGIN_BYTES:
        error = OSError(errno.ENOSPC, f"No space left on device: {what} needs "
                        f"{_mib(needed_bytes)}, {_mib(free)} free", str(folder))
        raise annotate(error, what=what)


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MiB"


def check_writable(folder: str | Path, *, what: str, needed_bytes: int = 0) -> Path:
    """Create ``folder`` if needed and prove a file can be written there; returns it.

    Raises ``OSError`` annotated with ``what`` for a read-only or full file system, a folder
    without permission, or a file standing where the folder should be.
    """
    folder = Path(folder)
    with writing(folder, what):
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(folder))
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f"{_TMP_PREFIX}{os.getpid()}-probe"
        try:
            with open(probe, "wb") as handle:
                handle.write(b"\0" * 4096)  # a real block: a full disk fails here, not later
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            error.filename = str(folder)  # the folder is what the user named, not the probe
            raise
        finally:
            _discard(probe)
    check_free_space(folder, needed_bytes, what=what)
    return folder


@contextlib.contextmanager
def output_folder(folder: str | Path, *, what: str, needed_bytes: int = 0) -> Iterator[Path]:
    """``check_writable`` for the block; when the block fails, the folders it created (``folder``
    and any missing parents) are removed again if they hold nothing but a run-folder lock, so a
    failed command (bad input, a missing folder of loops) leaves no empty output folder behind."""
    folder = Path(folder)
    created = [p for p in (folder.absolute(), *folder.absolute().parents) if not p.exists()]
    check_writable(folder, what=what, needed_bytes=needed_bytes)
    try:
        yield folder
    except BaseException:
        for path in created:  # innermost first; stop at the first that holds something
            try:
                names = {p.name for p in path.iterdir()}
                if not names <= {LOCK_FILE} or (LOCK_FILE in names
                                                 and _locked_elsewhere(path / LOCK_FILE)):
                    break  # another process's run took the folder meanwhile: it stays
                for name in names:
                    (path / name).unlink()
                path.rmdir()
            except OSError:
                break
        raise


# --- writing -----------------------------------------------------------------------------
def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable; not every platform can open a folder."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(path: Path) -> Path:
    return path.parent / f"{_TMP_PREFIX}{os.getpid()}-{path.name}"


def _write_file(path: Path, payload: bytes, *, final: Path | None = None) -> None:
    """Write and fsync ``path``; an ``OSError`` names ``final`` (the file asked for) instead of
    ``path`` when ``path`` is only its temporary name."""
    try:
        with open(path, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        _name_final(error, temporary=path, final=final)
        raise


def _replace(temporary: Path, final: Path) -> None:
    """``os.replace``; an ``OSError`` names ``final``, not the temporary file."""
    try:
        os.replace(temporary, final)
    except OSError as error:
        _name_final(error, temporary=temporary, final=final)
        raise


def _name_final(error: OSError, *, temporary: Path, final: Path | None) -> None:
    if final is not None and error.filename in (None, str(temporary)):
        error.filename, error.filename2 = str(final), None


def _discard(temporary: Path) -> None:
    """Remove a temporary file, if there, without raising: on a read-only file system even
    unlinking a missing file fails, and that error would hide the one that brought us here."""
    try:
        temporary.unlink(missing_ok=True)
    except OSError:
        pass


def atomic_write_bytes(path: str | Path, payload: bytes, *, what: str | None = None) -> Path:
    """Write ``payload`` to ``path`` atomically: temp file, fsync, ``os.replace``, fsync folder.

    A failure (``OSError``, annotated with ``path`` and ``what``) removes the temp file and
    leaves whatever ``path`` held before.
    """
    path = Path(path)
    what = what or f"writing {path.name}"
    with writing(path, what):
        path.parent.mkdir(parents=True, exist_ok=True)
        check_free_space(path.parent, len(payload), what=what)
        tmp = _temp_name(path)
        try:
            _write_file(tmp, payload, final=path)
            _replace(tmp, path)
        finally:
            _discard(tmp)
    fsync_dir(path.parent)
    return path


def write_files_atomically(files: dict[Path, bytes], *, what: str) -> list[Path]:
    """Write a batch of files so that all of them or none of them reach their final names.

    Checks the total size against the free space, stages every file under a temporary name,
    then renames them into place (renames do not need free space). Returns the final paths.
    """
    paths = [Path(p) for p in files]
    if not paths:
        return []
    folders = sorted({p.parent for p in paths})
    staged: list[tuple[Path, Path]] = []
    try:
        with writing(folders[0], what):
            for folder in folders:
                folder.mkdir(parents=True, exist_ok=True)
            check_free_space(folders[0], sum(len(b) for b in files.values()), what=what)
        for path, payload in zip(paths, files.values()):
            tmp = _temp_name(path)
            staged.append((tmp, path))
            with writing(path, what):
                _write_file(tmp, payload, final=path)
        for tmp, path in staged:
            with writing(path, what):
                _replace(tmp, path)
    finally:
        for tmp, _ in staged:
            _discard(tmp)
    for folder in folders:
        fsync_dir(folder)
    return paths


@contextlib.contextmanager
def staged_files(folder: str | Path, *, what: str,
                 needed_bytes: int = 0) -> Iterator[Callable[[str, bytes], Path]]:
    """A batch of files written one at a time that reach their final names all together.

    Yields ``stage(name, payload) -> final path``, which writes (and fsyncs) the file into a
    hidden staging folder inside ``folder``, so the caller holds one file's bytes at a time.
    When the block ends normally every staged file is renamed into ``folder`` (renames need no
    free space); when it raises, the staging folder is removed and ``folder`` keeps what it held.
    ``needed_bytes``: the batch's total size, checked against the free space before anything is
    written. Errors are ``OSError`` annotated with the file's final path and ``what``.
    """
    folder = Path(folder)
    with writing(folder, what):
        folder.mkdir(parents=True, exist_ok=True)
        remove_dead_temporaries(folder)  # first: what they hold is free space once they go
        check_free_space(folder, needed_bytes, what=what)
        # Inside ``folder``: the same file system, so the final renames are atomic.
        staging = staging_folder(folder)
    names: dict[str, None] = {}  # ordered, and a name staged twice is renamed once

    def stage(name: str, payload: bytes) -> Path:
        with writing(folder / name, what):
            _write_file(staging / name, payload, final=folder / name)
        names[name] = None
        return folder / name

    try:
        yield stage
        for name in names:
            with writing(folder / name, what):
                _replace(staging / name, folder / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    fsync_dir(folder)


def staging_folder(parent: str | Path, *, name: str = "") -> Path:
    """A new empty folder in ``parent`` for this process to fill before renaming it into place
    (``.tmp-PID-[NAME-]XXXX``: ``remove_dead_temporaries`` removes it if the process dies)."""
    label = f"{name}-" if name else ""
    try:
        return Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-{label}", dir=parent))
    except OSError as error:  # named by ``parent``, the folder asked for, not a random name in it
        error.filename, error.filename2 = str(parent), None
        raise


def remove_dead_temporaries(folder: str | Path) -> None:
    """Remove the temporary files and staging folders (``.tmp-PID-...``) in ``folder`` of
    writers that were killed before their rename (their pid no longer runs)."""
    for stale in Path(folder).glob(f"{_TMP_PREFIX}*"):
        pid = stale.name[len(_TMP_PREFIX):].split("-")[0]
        if not pid.isdigit() or _pid_running(int(pid)):
            continue
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def _pid_running(pid: int) -> bool:
    """Whether process ``pid`` exists; on Windows always True (its ``os.kill`` terminates the
    process whatever the signal, so there is no harmless probe: stale files are kept)."""
    if sys.platform == "win32":
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def wav_bytes(x: np.ndarray, *, sample_rate_hz: int, subtype: str = "PCM_24") -> bytes:
    """A WAV file's bytes for ``x`` (time, channels) float in [-1, 1] or integer PCM."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, x, int(sample_rate_hz), subtype=subtype, format="WAV")
    return buffer.getvalue()


def weights_h5_bytes(model) -> bytes:
    """``model.save_weights`` as bytes: the same ``.weights.h5`` content, built in memory.

    Keras writes straight to disk through h5py, which can crash the whole process (not raise)
    when the disk fills mid-write; serialising in memory first turns a full disk into an
    ``OSError`` from ``atomic_write_bytes``. Falls back to a temporary file if this Keras has
    no in-memory store.
    """
    try:
        from keras.src.saving import saving_lib

        buffer = io.BytesIO()
        store = saving_lib.H5IOStore(buffer, mode="w")
        saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="",
                               visited_saveables=set())
        store.close()
        return buffer.getvalue()
    except (ImportError, AttributeError, TypeError):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.weights.h5"
            model.save_weights(path)
            return path.read_bytes()


# --- the run-folder lock -------------------------------------------------------------------
class FolderLocked(OSError):
    """Another process holds the folder's lock; ``pid`` is its process id (None if unknown)."""

    def __init__(self, folder: Path, pid: int | None, *, what: str):
        holder = f"process {pid}" if pid else "another process"
        super().__init__(errno.EBUSY, f"in use by {holder} ({what}); wait for it to finish, "
                         f"stop it, or use another folder", str(folder))
        self.pid = pid


_HELD: dict[Path, int] = {}  # resolved folder -> open lock file descriptor


def _locked_elsewhere(lock_file: Path) -> bool:
    """Whether a process holds the flock of ``lock_file`` (this one no longer does); True where
    there is no ``fcntl`` (Windows), so that a folder with a lock file is kept."""
    try:
        import fcntl
    except ImportError:
        return True

    try:
        fd = os.open(lock_file, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)  # drops the flock this probe took


def lock_folder(folder: str | Path, *, what: str = "a training run") -> Path:
    """Hold an exclusive lock on ``folder`` (its ``.lock`` file) until ``unlock_folder`` or exit.

    The lock is an ``fcntl.flock`` on an open file, so the kernel drops it when the process
    ends in any way. Calling again from the holding process is a no-op. Raises ``FolderLocked``
    naming the holder's pid when another process holds it. Returns the lock file's path.
    Raises ``OSError`` (ENOSYS) where there is no ``fcntl`` (Windows).
    """
    try:
        import fcntl
    except ImportError:
        raise OSError(errno.ENOSYS, "training locks its run folder with POSIX flock, which this "
                      "system lacks: train on Linux or macOS (on Windows, in WSL)") from None

    folder = Path(folder)
    key = folder.resolve()
    path = folder / LOCK_FILE
    if key in _HELD:
        return path
    with writing(path, "locking the run folder"):
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        raise FolderLocked(folder, int(holder) if holder.isdigit() else None, what=what) from None
    except OSError:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD[key] = fd
    return path


@contextlib.contextmanager
def folder_lock(folder: str | Path, *, what: str = "a training run") -> Iterator[Path]:
    """``lock_folder`` for the block, released when it ends in any way; a lock this process
    already held before the block (a caller's) stays held."""
    taken = Path(folder).resolve() not in _HELD
    path = lock_folder(folder, what=what)
    try:
        yield path
    finally:
        if taken:
            unlock_folder(folder)


def unlock_folder(folder: str | Path) -> None:
    """Release this process's lock on ``folder`` (no-op if it holds none)."""
    fd = _HELD.pop(Path(folder).resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the only descriptor drops the flock
