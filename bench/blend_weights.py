"""A generator on the line through two weights folders: (1 - t) * A + t * B, weight by weight.

Between 0 and 1 it averages two generators of the same shape (a run's checkpoints, or a model
and the one it was trained on from); outside, it goes past one of them. The output is a weights
folder like A (A's config and ``weights.json``, the generator stored in A's dtype) that every
command and bench script reads, with a ``blend`` record in ``weights.json``: both folders'
paths and generator sha256, and ``t``. Only ``generator.weights.h5`` (the moving average a
folder is sampled from) is blended.

    python bench/blend_weights.py weights FIRST --t 0.1 --out /tmp/blend   # 10 % towards FIRST
    python bench/compare_weights.py weights /tmp/blend

It edits A's HDF5 file with h5py rather than through Keras, so the layout and dtype are A's
bit for bit and only the arrays change; the sum is taken in float64.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np

from beatgan.config import Config
from beatgan.export import GENERATOR_WEIGHTS, EXPORT_INFO, file_sha256
from beatgan.warm_start import MODEL_FIELDS


def arrays(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 weights file by its path in the file."""
    import h5py

    found: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: found.__setitem__(name, item[()])
                     if isinstance(item, h5py.Dataset) else None)
    return found


def blend(a: Path, b: Path, t: float, out: Path) -> dict:
    """Write (1 - t) * A + t * B into ``out`` (a new folder) and return its ``blend`` record.

    ValueError when the configs differ in a field that shapes the weights, or the two files do
    not hold the same arrays; nothing is written then.
    """
    import h5py

    if not math.isfinite(t):
        raise ValueError(f"t must be a finite number, got {t}")
    config_a, config_b = Config.load(a), Config.load(b)
    differ = [f"{name} {getattr(config_a, name)} against {getattr(config_b, name)}"
              for name in MODEL_FIELDS if getattr(config_a, name) != getattr(config_b, name)]
    if differ:
        raise ValueError(f"{a} and {b} hold models of other shapes: {', '.join(differ)}")
    first, second = arrays(a / GENERATOR_WEIGHTS), arrays(b / GENERATOR_WEIGHTS)
    if {k: v.shape for k, v in first.items()} != {k: v.shape for k, v in second.items()}:
        raise ValueError(f"{a / GENERATOR_WEIGHTS} and {b / GENERATOR_WEIGHTS} do not hold the "
                         f"same arrays")
    out.mkdir(parents=True, exist_ok=False)
    for name in ("config.json", EXPORT_INFO, GENERATOR_WEIGHTS):
        shutil.copy(a / name, out / name)
    with h5py.File(out / GENERATOR_WEIGHTS, "r+") as f:
        for name, value in first.items():
            if value.dtype.kind != "f":
                continue  # counters and the like: A's
            mixed = (1.0 - t) * value.astype(np.float64) + t * second[name].astype(np.float64)
            f[name][...] = mixed.astype(value.dtype)
    record = {"a": str(a), "a_sha256": file_sha256(a / GENERATOR_WEIGHTS),
              "b": str(b), "b_sha256": file_sha256(b / GENERATOR_WEIGHTS), "t": t}
    info = json.loads((a / EXPORT_INFO).read_text())
    info.pop("selection", None)  # how select chose A: not how this blend came about
    info.update(generator_sha256=file_sha256(out / GENERATOR_WEIGHTS), blend=record)
    (out / EXPORT_INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="weights folder A (t = 0)")
    parser.add_argument("b", type=Path, help="weights folder B (t = 1)")
    parser.add_argument("--t", type=float, required=True,
                        help="where on the line: 0 is A, 1 is B, -0.25 goes a quarter past A")
    parser.add_argument("--out", type=Path, required=True, help="the new folder (must not exist)")
    args = parser.parse_args(argv)
    for folder in (args.a, args.b):
        if not (folder / GENERATOR_WEIGHTS).is_file():
            parser.error(f"{folder} holds no {GENERATOR_WEIGHTS}")
    if args.out.exists():
        parser.error(f"{args.out} exists: name a new folder")
    try:
        blend(args.a, args.b, args.t, args.out)
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {args.out}: {1 - args.t:g} x {args.a} + {args.t:g} x {args.b}")


if __name__ == "__main__":
    main(sys.argv[1:])
