"""A quiet TensorFlow start: no absl/oneDNN/cudart/cuInit lines on stderr.

TensorFlow writes its C++ start-up lines through absl *before* ``absl::InitializeLog()``
runs, and such lines ignore ``TF_CPP_MIN_LOG_LEVEL``: "oneDNN custom operations are on",
"Could not find cuda drivers", each twice (two shared libraries, two absl copies). The level
still governs what comes after, such as ``E0000 ... failed call to cuInit`` on a CPU-only machine.

``quiet_tensorflow()`` (called by ``import beatgan``) therefore does two things, once:

1. sets ``TF_CPP_MIN_LOG_LEVEL`` (unless the user did): 3 where no NVIDIA device exists (the
   only C++ error TF logs there is the cuInit failure), else 2 (errors still show on a GPU box);
2. registers an import hook so that the first ``import tensorflow`` (from Keras or anywhere)
   runs with file descriptor 2 captured; the absl lines are dropped and any other text
   (a real warning, a traceback) is written back to stderr.

Nothing is imported here: ``beatgan --help`` never loads TensorFlow.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Iterator

#: An absl C++ log line ("I0000 00:00:1795769787.49 5010 port.cc:153] ..."), the line absl prints
#: before its initialisation, and the continuation line of TF's CPU-feature notice.
ABSL_LINE = re.compile(r"^([IWEF]\d{4} \S+ +\d+ \S+:\d+\] |WARNING: All log messages before absl"
                       r"|To enable the following instructions: )")


def has_nvidia_device() -> bool:
    """True when the kernel exposes an NVIDIA device (``/dev/nvidiactl`` or ``/dev/nvidia0``)."""
    return any(Path(p).exists() for p in ("/dev/nvidiactl", "/dev/nvidia0"))


def drop_absl_lines(text: str) -> str:
    """``text`` without the lines ``ABSL_LINE`` matches."""
    return "".join(ln for ln in text.splitlines(keepends=True) if not ABSL_LINE.match(ln))


@contextlib.contextmanager
def absl_lines_dropped() -> Iterator[None]:
    """Capture file descriptor 2 inside the block; write back everything but absl's lines.

    Works at the descriptor level because the lines come from C++, not from ``sys.stderr``.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (a detached process): nothing to filter
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as capture:
        sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            rest = drop_absl_lines(capture.read().decode("utf-8", "replace"))
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` with the normal finders and runs its module code under
    ``absl_lines_dropped``; removes itself after the first look."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def quiet_exec_module(module):
            with absl_lines_dropped():
                exec_module(module)

        spec.loader.exec_module = quiet_exec_module
        return spec


def quiet_tensorflow() -> None:
    """Set TensorFlow's log level and hook its first import (see the module docstring). Idempotent."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if has_nvidia_device() else "3")
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietImport())
