"""A persistent cache of JAX's compiled programs, so a resumed training run does not compile again.

The fused training step takes 18-23 s to compile at d = 64 on a GPU (``bench/README.md``), and
a run resumed after a crash or a time limit would pay it again. JAX keeps compiled programs on
disk when ``jax_compilation_cache_dir`` names a folder; its key covers the program, the device,
the JAX version and the XLA flags, so a changed model or card compiles afresh.

JAX writes an entry straight to its final name and never rewrites one that exists, so an entry
cut short (a kill or a full disk mid-write) would make every later resume warn and compile
again. The run's own cache is therefore checked when a run starts, and such entries removed.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: The cache's folder inside a run folder.
RUN_CACHE_DIR = "compile_cache"
#: How JAX names a cached program: ``<module>-<key>-cache`` (next to other files it may keep).
ENTRY_GLOB = "*-cache"

#: The folder this module pointed JAX to, so that a later run in the same process moves it.
_set_here: str | None = None


def use_run_compile_cache(run_dir: str | Path) -> Path | None:
    """Keep JAX's compiled programs in ``run_dir/compile_cache`` for the rest of this process.

    A folder already configured by the user (``$JAX_COMPILATION_CACHE_DIR``, or ``jax.config``)
    is kept: several runs can then share one. One set by an earlier run in this process is moved
    to this run's. Torn entries of the run's own cache are removed (``remove_torn_entries``;
    the run folder's lock keeps other writers out, which a shared folder's would not). Returns
    the cache folder in use, or None when the Keras backend is not JAX.
    """
    global _set_here
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    configured = jax.config.jax_compilation_cache_dir
    if configured and configured != _set_here:
        return Path(configured)
    folder = Path(run_dir) / RUN_CACHE_DIR
    if configured:  # an earlier run's, in this process: JAX holds it open until reset
        _reset_jax_cache()
    remove_torn_entries(folder)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    _set_here = str(folder)
    return folder


def remove_torn_entries(folder: str | Path) -> list[Path]:
    """Remove the entries of a JAX compile cache ``folder`` that do not decompress whole (as
    JAX reads them); returns their paths. A note on stderr names each. Without JAX's reader
    (another JAX version), nothing is removed."""
    try:
        from jax._src.compilation_cache import decompress_executable
    except ImportError:  # a private function: JAX may move it, and then the check is skipped
        return []
    removed = []
    for path in sorted(Path(folder).glob(ENTRY_GLOB)) if Path(folder).is_dir() else []:
        try:
            decompress_executable(path.read_bytes())
            continue
        except (MemoryError, OSError):  # not a sign of a torn entry
            continue
        except Exception:  # zlib.error, zstd's errors: cut short or garbled
            pass
        path.unlink(missing_ok=True)
        removed.append(path)
        print(f"beatgan: removed a torn compile cache entry, {path.name} (a write cut short); "
              f"it compiles afresh", file=sys.stderr)
    return removed


def _reset_jax_cache() -> None:
    """Make JAX open the cache folder afresh at its next compilation."""
    try:
        from jax._src.compilation_cache import reset_cache
    except ImportError:
        return
    reset_cache()
