"""Training checkpoints: one atomic ``.npz`` file per checkpoint, the last K kept.

A checkpoint holds everything a resumed run needs to continue exactly where
an uninterrupted one would be: every variable of G and D (including the
phase-shuffle seed states, which ``save_weights`` leaves out), both Adam
states (moments and iteration counters), and a JSON ``meta`` record (step,
host random-generator state, elapsed time, history, config).

Layout::

    RUN_DIR/checkpoints/ckpt-00001000.npz    # step 1000 (generator updates)
    RUN_DIR/checkpoints/ckpt-00001500.npz    # ... the newest K files
    RUN_DIR/checkpoints/ckpt-00000500.npz.keep  # a pin: ckpt-00000500.npz is never pruned

Writing is atomic: the file is written under a temporary name in the same
folder, flushed and fsync'ed, then ``os.replace``'d onto its final name and
the folder fsync'ed, so that a crash (even SIGKILL) leaves either the old set
of checkpoints or the new one, never a torn file. Temporary files left by a
killed writer start with ``.tmp-`` and are ignored (and cleaned up).
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .fileio import atomic_write_bytes

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^ckpt-(\d{8,})\.npz$")
_META_KEY = "__meta__"
#: Suffix given to a checkpoint that cannot be read: kept beside the others, never loaded.
CORRUPT_SUFFIX = ".corrupt"


#: Suffix of the marker that keeps a checkpoint from being pruned: ``ckpt-00003500.npz.keep``.
PIN_SUFFIX = ".keep"


class CheckpointWarning(UserWarning):
    """An unreadable checkpoint was set aside and an older one used."""


def checkpoint_path(directory: str | Path, step: int) -> Path:
    """``directory/ckpt-<step, 8 digits>.npz``."""
    return Path(directory) / f"ckpt-{step:08d}.npz"


def list_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every finished checkpoint in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(directory: str | Path) -> Path | None:
    """Path of the newest checkpoint in ``directory``, or None."""
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def save_checkpoint(directory: str | Path, *, step: int, arrays: dict[str, np.ndarray],
                    meta: dict[str, Any], keep: int = 3, spare: int | None = None) -> Path:
    """Write ``arrays`` and ``meta`` as checkpoint ``step`` and keep only the newest ``keep``.

    ``arrays`` maps names to numpy arrays; ``meta`` must be JSON-serialisable. ``spare``: also
    keep the newest checkpoint at or before this step (where a rollback would go back to).
    Returns the checkpoint's path.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    if _META_KEY in arrays:
        raise ValueError(f"{_META_KEY!r} is reserved for the meta record")
    buffer = io.BytesIO()
    meta_bytes = np.frombuffer(json.dumps({**meta, "step": step}).encode(), dtype=np.uint8)
    np.savez(buffer, **arrays, **{_META_KEY: meta_bytes})
    path = atomic_write_bytes(checkpoint_path(directory, step), buffer.getvalue(),
                              what=f"writing checkpoint {step}")
    _prune(Path(directory), keep=keep, spare=spare)
    return path


class BackgroundWriter:
    """Writes checkpoints on a worker thread, one at a time, so training goes on meanwhile.

    At d = 64 a checkpoint is about 0.5 GB; writing and fsync'ing it takes seconds that
    training would otherwise wait through (``bench/bench_checkpoint.py``). ``submit`` returns
    once the previous write has finished; a write's error is raised by the next ``submit`` or
    ``wait``. Each write is the atomic ``save_checkpoint``: a crash mid-write leaves the
    checkpoints before it as they were.
    """

    def __init__(self, last_written: Path | None = None):
        #: The newest checkpoint known to be complete on disk.
        self.last_written = last_written
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, directory: str | Path, *, step: int, arrays: dict[str, np.ndarray],
               meta: dict[str, Any], keep: int = 3, spare: int | None = None,
               then: Callable[[], None] | None = None) -> Path:
        """Start writing checkpoint ``step`` (``save_checkpoint``'s arguments; ``arrays`` and
        ``meta`` must not change afterwards), then ``then()`` on the same thread. Returns the
        path it will have."""
        self.wait()

        def write() -> None:
            try:
                self.last_written = save_checkpoint(directory, step=step, arrays=arrays,
                                                    meta=meta, keep=keep, spare=spare)
                if then is not None:
                    then()
            except BaseException as error:  # raised on the caller's thread, by wait()
                self._error = error

        self._thread = threading.Thread(target=write, name=f"checkpoint-{step}")
        self._thread.start()
        return checkpoint_path(directory, step)

    def wait(self) -> None:
        """Block until the write in progress (if any) has finished; raise its error."""
        self.join()
        error, self._error = self._error, None
        if error is not None:
            raise error

    def join(self) -> None:
        """Block until the write in progress has finished; keep its error for ``wait``."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def pin_checkpoint(path: str | Path, *, reason: str) -> Path:
    """Keep checkpoint ``path`` when newer ones are pruned; the marker beside it holds ``reason``.

    Pinned checkpoints do not count towards ``keep``. Deleting the marker unpins it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to pin at {path}")
    return atomic_write_bytes(path.with_name(path.name + PIN_SUFFIX), (reason + "\n").encode(),
                              what=f"pinning {path.name}")


def is_pinned(path: str | Path) -> bool:
    """Whether checkpoint ``path`` has a pin marker beside it."""
    path = Path(path)
    return path.with_name(path.name + PIN_SUFFIX).exists()


def _prune(directory: Path, *, keep: int, spare: int | None = None) -> None:
    """Delete all but the newest ``keep`` unpinned checkpoints (and the newest at or before step
    ``spare``, when given) and any stale temporary files."""
    found = list_checkpoints(directory)
    unpinned = [(step, path) for step, path in found if not is_pinned(path)]
    # A rollback goes back to the newest checkpoint at or before ``spare``, pinned or not: when
    # that one is pinned it stays anyway, and no older one need be spared.
    spared = None if spare is None else next(
        (path for step, path in reversed(found) if step <= spare), None)
    for _, old in unpinned[:-keep]:
        if old != spared:
            old.unlink(missing_ok=True)
    for stale in directory.glob(".tmp-*"):
        if not stale.name.startswith(f".tmp-{os.getpid()}-"):
            stale.unlink(missing_ok=True)


def read_meta(path: str | Path) -> dict[str, Any]:
    """A checkpoint's meta record alone (its arrays are not read); ValueError when it cannot be
    read, FileNotFoundError when the file has gone."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            raw = archive[_META_KEY]
        return json.loads(raw.tobytes().decode())
    except (FileNotFoundError, MemoryError):
        raise
    except Exception as error:  # torn zip, no meta member, not JSON
        raise ValueError(f"checkpoint {path}: its meta record is unreadable ({error})") from error


def load_checkpoint(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, meta) of a checkpoint file; a torn or foreign file raises ``ValueError``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}  # reading checks the zip CRCs
    except MemoryError:
        raise  # the machine's trouble, not the file's: it must not be set aside as corrupt
    except OSError as error:
        if error.errno is not None:  # EMFILE, EIO, ...: the same, raised as it came
            raise
        raise ValueError(f"checkpoint {path} is unreadable ({error})") from error
    except Exception as error:  # zipfile.BadZipFile, EOFError, ValueError, ...
        raise ValueError(f"checkpoint {path} is unreadable ({error})") from error
    if _META_KEY not in arrays:
        raise ValueError(f"{path} is not a beatgan checkpoint (no meta record)")
    try:
        meta = json.loads(arrays.pop(_META_KEY).tobytes().decode())
    except ValueError as error:  # UnicodeDecodeError, JSONDecodeError
        raise ValueError(f"checkpoint {path} has an unreadable meta record ({error})") from error
    return arrays, meta


def latest_good_checkpoint(directory: str | Path) -> tuple[Path, dict[str, np.ndarray],
                                                           dict[str, Any]] | None:
    """(path, arrays, meta) of the newest checkpoint that loads, or None when there is none.

    Each newer unreadable one is reported (``CheckpointWarning``) and renamed aside to
    ``NAME.corrupt`` (kept for inspection, ignored from then on): the last ``keep``
    checkpoints are kept for exactly this. Raises ``ValueError`` when checkpoints exist but
    none loads, so a run never silently starts over.
    """
    found = list_checkpoints(directory)
    bad = []
    for _, path in reversed(found):
        try:
            arrays, meta = load_checkpoint(path)
        except ValueError as error:
            aside = path.with_name(path.name + CORRUPT_SUFFIX)
            os.replace(path, aside)
            bad.append(aside)
            warnings.warn(CheckpointWarning(f"{error}; moved aside to {aside.name}"), stacklevel=2)
            continue
        if bad:
            warnings.warn(CheckpointWarning(f"resuming from the older checkpoint {path.name}"),
                          stacklevel=2)
        return path, arrays, meta
    if bad:
        raise ValueError(f"no checkpoint in {directory} is readable ({len(bad)} moved aside as "
                         f"*{CORRUPT_SUFFIX}); to start the run over, run again")
    return None


# --- model state <-> arrays -----------------------------------------------------
def _state_groups(generator, discriminator, g_optimizer, d_optimizer,
                  ema_generator=None) -> dict[str, list]:
    """Every variable a resumed run needs, by group, in a fixed order."""
    groups = {
        "generator": list(generator.variables),
        "discriminator": list(discriminator.variables),  # includes the seed-generator states
        "g_optimizer": list(g_optimizer.variables),
        "d_optimizer": list(d_optimizer.variables),
    }
    if ema_generator is not None:  # the moving average of G's weights (beatgan.ema)
        groups[EMA_GROUP] = list(ema_generator.variables)
    return groups


#: Checkpoint group of the generator's moving average; absent in runs without one.
EMA_GROUP = "generator_ema"


def collect_state(generator, discriminator, g_optimizer, d_optimizer,
                  ema_generator=None) -> dict[str, np.ndarray]:
    """Variables as numpy arrays keyed ``group/index`` (``generator/0003``)."""
    arrays = {}
    for group, variables in _state_groups(generator, discriminator, g_optimizer,
                                          d_optimizer, ema_generator).items():
        for i, variable in enumerate(variables):
            arrays[f"{group}/{i:04d}"] = np.asarray(variable.numpy()
                                                    if hasattr(variable, "numpy") else variable)
    return arrays


def restore_state(arrays: dict[str, np.ndarray], generator, discriminator, g_optimizer,
                  d_optimizer, ema_generator=None) -> None:
    """Assign arrays written by ``collect_state`` back; counts and shapes must match.

    The optimizers must be built (``optimizer.build(model.trainable_variables)``).
    """
    for group, variables in _state_groups(generator, discriminator, g_optimizer,
                                          d_optimizer, ema_generator).items():
        restore_group(arrays, group, variables)


def has_group(arrays: dict[str, np.ndarray], group: str) -> bool:
    """Whether a checkpoint's arrays hold ``group`` (``EMA_GROUP`` is absent without an EMA)."""
    return any(key.startswith(f"{group}/") for key in arrays)


def restore_group(arrays: dict[str, np.ndarray], group: str, variables) -> None:
    """Assign one group's arrays (``generator``, ``EMA_GROUP``, ...) to ``variables``, in order;
    counts and shapes must match (ValueError otherwise)."""
    variables = list(variables)
    stored = sorted(key for key in arrays if key.startswith(f"{group}/"))
    if len(stored) != len(variables):
        raise ValueError(f"checkpoint holds {len(stored)} {group} variables, the model "
                         f"{len(variables)}: was it written with another config?")
    for key, variable in zip(stored, variables):
        value = arrays[key]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"{key} ({variable.path}) has shape {value.shape} in the "
                             f"checkpoint, {tuple(variable.shape)} in the model")
        variable.assign(value)
