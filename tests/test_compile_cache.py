"""``beatgan train`` on JAX keeps its compiled programs in the run folder, and a resumed run
loads its step from there instead of compiling it again."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Trains in a fresh process (as a resume after a crash does), counting JAX's persistent-cache
#: hits and misses, then prints them with the cache folder JAX used.
JOB = """
import json, logging, re, sys
import jax.monitoring
counts = {"hits": 0, "misses": 0}
names = {"/jax/compilation_cache/cache_hits": "hits", "/jax/compilation_cache/cache_misses": "misses"}
jax.monitoring.register_event_listener(
    lambda event, **kw: counts.__setitem__(names[event], counts[names[event]] + 1)
    if event in names else None)
hit_programs = []  # JAX logs each hit with the program's name

class Hits(logging.Handler):
    def emit(self, record):
        found = re.match(r"Persistent compilation cache hit for '([^']+)'", record.getMessage())
        if found:
            hit_programs.append(found.group(1))

compiler_log = logging.getLogger("jax._src.compiler")
compiler_log.setLevel(logging.DEBUG)
compiler_log.addHandler(Hits())
from beatgan.cli import main
rc = main(["train", "--data", sys.argv[1], "--out", "run", "--iterations", sys.argv[2],
           "--model-dim", "2", "--batch-size", "2"])
print("RESULT " + json.dumps({"rc": rc, **counts, "hit_programs": hit_programs,
                              "dir": jax.config.jax_compilation_cache_dir}))
"""


def _train(job: Path, loops: Path, iterations: int, cwd: Path, cache_dir: Path | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    if cache_dir is not None:
        env["JAX_COMPILATION_CACHE_DIR"] = str(cache_dir)
    done = subprocess.run(
        [sys.executable, str(job), str(loops), str(iterations)], cwd=cwd, capture_output=True,
        text=True, timeout=600,
        env={**env, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO),
             # Cache every program, however fast it compiles on this machine (JAX's default: 1 s).
             "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.split("RESULT ", 1)[1])


def _iteration_programs(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name.startswith("jit__iteration_pure-")
                  and p.name.endswith("-cache"))


@pytest.mark.slow
def test_a_resumed_jax_run_loads_its_step_from_the_run_folder(demo_folder, tmp_path):
    job = tmp_path / "job.py"
    job.write_text(JOB)
    first = _train(job, demo_folder, 1, tmp_path)
    cache = tmp_path / "run" / "compile_cache"
    assert first["rc"] == 0 and Path(first["dir"]) == Path("run") / "compile_cache"
    assert first["hits"] == 0 and first["hit_programs"] == [] and first["misses"] > 0
    assert len(_iteration_programs(cache)) == 1

    resumed = _train(job, demo_folder, 2, tmp_path)
    assert resumed["rc"] == 0 and resumed["dir"] == first["dir"]
    # The fused iteration came from the cache: a hit by name, and no second entry for it.
    assert resumed["hits"] > 0 and "jit__iteration_pure" in resumed["hit_programs"]
    assert len(_iteration_programs(cache)) == 1


@pytest.mark.slow
def test_a_cache_folder_the_user_chose_is_kept(demo_folder, tmp_path):
    job = tmp_path / "job.py"
    job.write_text(JOB)
    shared = tmp_path / "shared_cache"
    result = _train(job, demo_folder, 1, tmp_path, cache_dir=shared)
    assert result["rc"] == 0 and Path(result["dir"]) == shared
    assert len(_iteration_programs(shared)) == 1
    assert not (tmp_path / "run" / "compile_cache").exists()


def test_other_backends_get_no_cache(tmp_path):
    import keras

    from beatgan.backends.compile_cache import use_run_compile_cache

    assert keras.backend.backend() == "tensorflow"  # the tests' default (conftest)
    assert use_run_compile_cache(tmp_path) is None
    assert not (tmp_path / "compile_cache").exists()


def test_torn_entries_are_removed_and_whole_ones_kept(tmp_path, capsys):
    from jax._src.compilation_cache import compress_executable

    from beatgan.backends.compile_cache import remove_torn_entries

    whole = compress_executable(bytes(range(256)) * 400)
    (tmp_path / "jit_f-aa-cache").write_bytes(whole)
    (tmp_path / "jit_g-bb-cache").write_bytes(whole[:len(whole) // 2])  # a write cut short
    (tmp_path / "jit_h-cc-cache").write_bytes(b"")  # cut before its first byte
    (tmp_path / "notes.txt").write_bytes(b"not an entry")  # not JAX's: left alone
    (tmp_path / "autotune").mkdir()  # XLA's own caches live in subfolders
    removed = remove_torn_entries(tmp_path)
    assert [p.name for p in removed] == ["jit_g-bb-cache", "jit_h-cc-cache"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["autotune", "jit_f-aa-cache",
                                                          "notes.txt"]
    assert "removed a torn compile cache entry, jit_g-bb-cache" in capsys.readouterr().err
    assert remove_torn_entries(tmp_path / "missing") == []


#: Two runs in one process: each run's programs go to its own folder, and a torn entry in the
#: second run's folder is removed before JAX reads it.
TWO_RUNS = """
import json, sys
from pathlib import Path
import jax, jax.numpy as jnp
from beatgan.backends.compile_cache import use_run_compile_cache
first = use_run_compile_cache("a")
jax.jit(lambda x: x * 2.0)(jnp.ones(3)).block_until_ready()
Path("b/compile_cache").mkdir(parents=True)
Path("b/compile_cache/jit_torn-00-cache").write_bytes(b"\\x78\\x9c\\x01")
second = use_run_compile_cache("b")
jax.jit(lambda x: x + 5.0)(jnp.ones(4)).block_until_ready()
print("RESULT " + json.dumps({"first": str(first), "second": str(second),
                              "dir": jax.config.jax_compilation_cache_dir}))
"""


def test_a_second_run_in_one_process_keeps_its_programs_in_its_own_folder(tmp_path):
    job = tmp_path / "job.py"
    job.write_text(TWO_RUNS)
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    done = subprocess.run([sys.executable, str(job)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300,
                          env={**env, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO),
                               "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert result == {"first": str(Path("a/compile_cache")), "second": str(Path("b/compile_cache")),
                      "dir": str(Path("b/compile_cache"))}
    first = sorted(p.name for p in (tmp_path / "a/compile_cache").glob("jit__lambda-*-cache"))
    second = sorted(p.name for p in (tmp_path / "b/compile_cache").glob("jit__lambda-*-cache"))
    assert len(first) == 1 and len(second) == 1 and first != second  # each run's own program
    assert not list((tmp_path / "b/compile_cache").glob("jit_torn*"))
    assert "removed a torn compile cache entry, jit_torn-00-cache" in done.stderr
