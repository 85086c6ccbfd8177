"""A persistent cache of JAX's compiled programs, so a resumed training run does not compile again.

The fused training step takes 18-23 s to compile at d = 64 on a GPU (``bench/README.md``), and
a run resumed after a crash or a time limit would pay it again. JAX keeps compiled programs on
disk when ``jax_compilation_cache_dir`` names a folder; its key covers the program, the device,
the JAX version and the XLA flags, so a changed model or card compiles afresh.
"""

from __future__ import annotations

from pathlib import Path

#: The cache's folder inside a run folder.
RUN_CACHE_DIR = "compile_cache"


def use_run_compile_cache(run_dir: str | Path) -> Path | None:
    """Keep JAX's compiled programs in ``run_dir/compile_cache`` for the rest of this process.

    A folder already configured (``$JAX_COMPILATION_CACHE_DIR``, or ``jax.config``) is kept:
    several runs can then share one. Returns the cache folder in use, or None when the Keras
    backend is not JAX. Call it before anything compiles: JAX decides once per process,
    at its first compilation, whether a cache is used.
    """
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    configured = jax.config.jax_compilation_cache_dir
    if configured:
        return Path(configured)
    folder = Path(run_dir) / RUN_CACHE_DIR
    jax.config.update("jax_compilation_cache_dir", str(folder))
    return folder
