"""Benchmark: a folder of loops -> the augmented training tensor, ours against the seed's way.

Prints figures; it passes or fails on nothing. Steps:

1. write the demo pack (434 loops by default) into a temporary folder, timed;
2. ours: ``load_loops`` (reads only each segment's frames, polyphase decimation) and
   ``LoopSet.augment`` into the (2170, 16384, 2) float32 tensor, timed; then once more under
   ``tracemalloc`` for the peak memory, compared with the final array's size;
3. the seed's way in the same run: read each whole file, keep ``x[::3]``, write it to a
   temporary 14.7 kHz WAV and read that back, cut and pad the segment, then add noise copy by
   copy in int64 and stack at the end; timed, with the ratio to ours. Ours with naive
   decimation is timed too, for a like-for-like comparison of the reading itself.

    python bench/bench_load.py [--n 434] [--folder DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import soundfile as sf

from beatgan import Config
from beatgan.data import bpm_from_name, find_audio_files, load_loops
from beatgan.synth import write_demo_pack

MB = 2**20


def ours(folder: Path, config: Config, *, seed: int = 0) -> tuple[np.ndarray, dict]:
    t0 = time.perf_counter()
    loops = load_loops(folder, config)
    t1 = time.perf_counter()
    tensor = loops.augment(rng=np.random.default_rng(seed))
    t2 = time.perf_counter()
    return tensor, {"load_s": t1 - t0, "augment_s": t2 - t1, "total_s": t2 - t0}


def seed_way(folder: Path, config: Config, *, seed: int = 0) -> tuple[np.ndarray, dict]:
    """A faithful stand-in for the 2018 notebook's data path (temporary files and all)."""
    t0 = time.perf_counter()
    segments = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in find_audio_files(folder):
            full, rate_hz = sf.read(path, dtype="int32")  # the whole file
            tmp_path = Path(tmp) / path.name
            sf.write(tmp_path, full[::3] >> 8, rate_hz // 3, subtype="PCM_24")
            small, _ = sf.read(tmp_path, dtype="int32")
            n = config.segment_len(bpm_from_name(path.name))
            seg = np.zeros((config.slice_len, 2), np.int64)
            seg[:n] = small[:n] >> 8  # 24-bit integers
            segments.append(seg)
    t1 = time.perf_counter()
    np.random.seed(seed)
    noisy = []
    for seg in segments:
        for _ in range(config.noise_copies):
            noise = np.random.randint(-config.noise_amplitude, config.noise_amplitude, size=seg.shape)
            noisy.append(np.clip(seg + noise, -2**23, 2**23 - 1) / 2**23)
    tensor = np.array(noisy, dtype=np.float32)
    t2 = time.perf_counter()
    return tensor, {"load_s": t1 - t0, "augment_s": t2 - t1, "total_s": t2 - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=434, help="loops in the demo pack")
    parser.add_argument("--folder", type=Path, help="use these loops instead of writing the demo pack")
    args = parser.parse_args()
    config = Config()
    print(f"cpu cores: {os.cpu_count()}; config: decimation={config.decimation}, beats={config.beats:g}, "
          f"copies={config.noise_copies}")

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder
        if folder is None:
            folder = Path(tmp) / "pack"
            t0 = time.perf_counter()
            write_demo_pack(folder, n=args.n, seed=0)
            size_mb = sum(p.stat().st_size for p in find_audio_files(folder)) / MB
            print(f"demo pack: {args.n} loops, {size_mb:.0f} MiB, written in {time.perf_counter() - t0:.2f} s")

        ours(folder, config)  # warm-up: page cache and imports, as the seed's run gets too
        tensor, t_ours = ours(folder, config)
        final_mb = tensor.nbytes / MB
        print(f"ours:      {tensor.shape} {tensor.dtype} in {t_ours['total_s']:.2f} s "
              f"(load {t_ours['load_s']:.2f} s + augment {t_ours['augment_s']:.2f} s)")
        del tensor

        naive, t_naive = ours(folder, config.replace(decimation="naive"))
        print(f"ours, naive decimation (the seed's x[::3]): {t_naive['total_s']:.2f} s "
              f"(load {t_naive['load_s']:.2f} s + augment {t_naive['augment_s']:.2f} s)")
        del naive

        tracemalloc.start()
        tensor, _ = ours(folder, config)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"ours peak traced memory: {peak / MB:.0f} MiB = {peak / tensor.nbytes:.2f} x the final "
              f"array ({final_mb:.0f} MiB)")
        del tensor

        seed_tensor, t_seed = seed_way(folder, config)
        print(f"seed way:  {seed_tensor.shape} {seed_tensor.dtype} in {t_seed['total_s']:.2f} s "
              f"(load {t_seed['load_s']:.2f} s + augment {t_seed['augment_s']:.2f} s)")
        print(f"speed-up:  {t_seed['total_s'] / t_ours['total_s']:.1f} x "
              f"(load {t_seed['load_s'] / t_ours['load_s']:.1f} x)")
        # ru_maxrss is in KiB on Linux: the whole process, pack writing and the seed's way included.
        print(f"process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
