"""How long training waits for a checkpoint: written in place against written in the background.

Builds a run's whole state at ``--model-dim`` (64: G, D, both Adam states and the generator's
average, about 0.5 GB), then saves it ``--repeats`` times each way into a temporary run folder
(``--dir``, default: under ./runs, on the disk a run would use), alternating. Prints one JSON line: seconds
the training thread is blocked per checkpoint (``blocked_s``) and seconds until the file is on
disk (``written_s``), medians; the checkpoint's size in MB.

    python bench/bench_checkpoint.py --model-dim 64
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="checkpoints written each way")
    parser.add_argument("--dir", default="runs", help="where the temporary run folder goes")
    args = parser.parse_args()

    import keras

    from beatgan.config import preset
    from beatgan.training import _TrainingState

    config = preset("seed").replace(model_dim=args.model_dim, batch_size=2)
    data = np.zeros((2, config.slice_len, config.channels), np.float32)
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="bench-checkpoint-", dir=args.dir))
    try:
        run = _TrainingState(data, config, run_dir, jit_compile=False)
        times = {mode: {"blocked": [], "written": []} for mode in ("in place", "background")}
        for _ in range(args.repeats):  # the two ways alternate, so disk caches favour neither
            for mode, lists in times.items():
                run.step += 1
                start = time.perf_counter()
                run.save_checkpoint(keep=2, wait=mode == "in place")
                lists["blocked"].append(time.perf_counter() - start)
                run.writer.wait()
                lists["written"].append(time.perf_counter() - start)
        figures = {mode: {f"{k}_s": round(statistics.median(v), 3) for k, v in lists.items()}
                   for mode, lists in times.items()}
        size_mb = run.last_checkpoint.stat().st_size / 1e6
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    print(json.dumps({"backend": keras.backend.backend(), "model_dim": args.model_dim,
                      "checkpoint_mb": round(size_mb, 1), **figures}))


if __name__ == "__main__":
    main()
