"""Take the checkerboard out of trained plain upsampling layers, without training: does it help?

A plain stride-s transposed convolution buzzes when its kernel's s phases sum to different
weights (``beatgan.upsampling``). This writes a copy of a weights folder in which the chosen
layers' phases are made to sum to one value by the smallest change that does it (least
squares), which moves every tap of a phase by the same amount. The architecture, config and
every other weight stay as they are, so the copy loads wherever the original does; measure it
with ``compare_weights.py``. The copy's generator is stored in float32 whatever the original's
storage, and its ``weights.json`` is the original's with the generator's dtype and sha256
rewritten, ``selection`` dropped and a ``projection`` record added: the original folder, its
generator's sha256 and the layers projected. It answers whether the buzz can be removed after
training; whether training keeps the layers free of it is ``--upsample nearest``'s question.

    python bench/project_checkerboard.py --weights weights --layers 4 --out /tmp/no-buzz-4
    python bench/compare_weights.py weights /tmp/no-buzz-4 --seeds 3
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np


def equalize_phase_sums(kernel: np.ndarray, stride: int) -> np.ndarray:
    """The kernel nearest to ``kernel`` ``(K, C_out, C_in)`` (least squares, float64) whose
    ``stride`` phase sums (taps p, p + s, ...) are all equal: each phase moves by the same amount
    at each of its taps."""
    w = np.asarray(kernel, dtype=np.float64).copy()
    sums = np.stack([w[p::stride].sum(axis=0) for p in range(stride)])
    taps = np.array([len(range(p, len(w), stride)) for p in range(stride)], dtype=np.float64)
    # The common sum that moves the taps least: phases with fewer taps weigh more.
    target = np.tensordot(1 / taps, sums, axes=1) / np.sum(1 / taps)
    for p in range(stride):
        w[p::stride] -= (sums[p] - target) / taps[p]
    return w


def project(weights: str | Path, out: str | Path, layers: list[int]) -> list[dict]:
    """Write ``weights`` to ``out`` with ``g_upconv{i}`` for ``i`` in ``layers`` projected; per
    layer: name, phase-sum spread before and after, share of the kernel's energy removed."""
    from beatgan.export import EXPORT_INFO, GENERATOR_WEIGHTS, file_sha256
    from beatgan.generation import load_generator
    from beatgan.upsampling import phase_sum_spread

    generator, config = load_generator(weights)
    if config.upsample != "transposed":
        raise SystemExit(f"{weights} uses {config.upsample} upsampling: it has no checkerboard")
    names = {layer.name: layer for layer in generator.layers}
    rows = []
    for i in layers:
        layer = names.get(f"g_upconv{i}")
        if layer is None:
            raise SystemExit(f"no layer g_upconv{i} in {weights}")
        kernel, bias = layer.get_weights()
        stride = layer.strides[0]
        projected = equalize_phase_sums(kernel, stride)
        removed = float(np.sum((projected - kernel) ** 2) / np.sum(np.asarray(kernel, np.float64) ** 2))
        rows.append({"layer": layer.name, "spread_before": phase_sum_spread(kernel, stride),
                     "spread_after": phase_sum_spread(projected, stride), "energy_removed": removed})
        layer.set_weights([projected.astype(kernel.dtype), bias])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    generator.save_weights(str(out / GENERATOR_WEIGHTS))
    shutil.copy(Path(weights) / "config.json", out / "config.json")
    if (Path(weights) / EXPORT_INFO).is_file():
        info = json.loads((Path(weights) / EXPORT_INFO).read_text())
        info.pop("selection", None)  # how select chose the original: not how this copy came about
        record = {"from": str(weights), "layers": [row["layer"] for row in rows],
                  "from_sha256": file_sha256(Path(weights) / GENERATOR_WEIGHTS)}
        # save_weights stores the loaded float32 variables, whatever the original's storage.
        info.update(dtype="float32", generator_sha256=file_sha256(out / GENERATOR_WEIGHTS),
                    projection=record)
        (out / EXPORT_INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="weights", help="weights folder (default weights/)")
    parser.add_argument("--layers", default="4",
                        help="comma-separated upsampling layers to project, 0 the lowest (default 4, the last "
                             "at 16384 samples)")
    parser.add_argument("--out", required=True, help="folder to write the projected copy to")
    args = parser.parse_args(argv)
    layers = [int(part) for part in args.layers.split(",")]
    rows = project(args.weights, args.out, layers)
    for row in rows:
        print(f"{row['layer']}: checkerboard spread {row['spread_before']:.3f} -> "
              f"{row['spread_after']:.3f}, {100 * row['energy_removed']:.1f} % of the kernel's energy removed")
    print(f"wrote {args.out}; measure it with: python bench/compare_weights.py {args.weights} {args.out}")
    return rows


if __name__ == "__main__":
    main()
