"""Benchmark loops at any tempo: extra load time and memory of bringing 434 loops to 125 bpm.

1. The baseline: the 434-loop demo pack at 124/125 bpm, loaded as the seed does (no target).
2. A 434-loop demo pack at 90-140 bpm (whole numbers, ``write_demo_pack(bpm=(90, 140))``),
   loaded with ``target_bpm=125`` by each tempo method: resample (varispeed), stretch (librosa's
   phase vocoder) and slice (onset slicing). The extra time is method minus baseline; the
   target is at most 20 s extra for resampling on the 2-core development machine.
3. Memory during the resampled load (tracemalloc, which sees numpy's buffers): the peak beyond
   the kept segments, ``LoopSet.audio`` (434 x 16384 x 2 float32 = 57 MB), must stay at the
   size of one file's working set: nothing but the segments is held.

Both packs are written once under ``.cache/`` and reused. The CPU is shared: figures are noisy.

    python bench/bench_tempo.py [--n 434] [--methods resample stretch slice]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings
from pathlib import Path


def pack(cache: Path, *, n: int, bpm) -> Path:
    from beatgan.data import find_audio_files
    from beatgan.synth import write_demo_pack

    tag = "pack" if bpm is None else f"bpm{bpm[0]}-{bpm[1]}"
    folder = cache / f"{tag}_n{n}"
    count = len(find_audio_files(folder)) if folder.is_dir() else 0
    if count != n:
        start = time.perf_counter()
        write_demo_pack(folder, n=n, seed=0, bpm=bpm)
        print(f"wrote {n} loops ({tag}) in {time.perf_counter() - start:.1f} s")
    return folder


def timed_load(folder: Path, config):
    from beatgan.data import LoopWarning, load_loops

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LoopWarning)
        start = time.perf_counter()
        loops = load_loops(folder, config)
        return loops, time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=434)
    parser.add_argument("--methods", nargs="+", default=["resample", "stretch", "slice"])
    parser.add_argument("--cache", type=Path,
                        default=Path(__file__).resolve().parent.parent / ".cache" / "bench_tempo")
    args = parser.parse_args(argv)
    from beatgan.config import Config

    import librosa  # noqa: F401  (imported up front: its import time is not load time)

    base_dir = pack(args.cache, n=args.n, bpm=None)
    mixed_dir = pack(args.cache, n=args.n, bpm=(90, 140))
    timed_load(base_dir, Config())  # warm the page cache and the filter designs
    loops, base_s = timed_load(base_dir, Config())
    print(f"\nbaseline: {len(loops)} loops at 124/125 bpm, no tempo change: {base_s:.1f} s")
    print("\n| method | loops | load s | extra s vs baseline | per loop ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for method in args.methods:
        config = Config(target_bpm=125, tempo_method=method)
        loops, seconds = timed_load(mixed_dir, config)
        changed = sum(any(note.startswith("tempo ") for note in r.notes) for r in loops.report)
        print(f"| {method} | {len(loops)} ({changed} changed) | {seconds:.1f} | "
              f"{seconds - base_s:+.1f} | {1e3 * seconds / len(loops):.0f} |", flush=True)

    # Memory: the peak above the kept tensor is one file's working set, not the folder's.
    tracemalloc.start()
    loops, _ = timed_load(mixed_dir, Config(target_bpm=125, tempo_method="resample"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    kept = loops.audio.nbytes
    print(f"\nmemory (resample, tracemalloc): kept segments {kept / 2**20:.1f} MiB, "
          f"peak {peak / 2**20:.1f} MiB, peak beyond the segments {(peak - kept) / 2**20:.1f} MiB "
          f"(one 8-beat stereo loop at 44.1 kHz as float32 is "
          f"{round(44100 * 60 / 90 * 8) * 2 * 4 / 2**20:.1f} MiB at 90 bpm)")


if __name__ == "__main__":
    main()
