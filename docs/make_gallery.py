"""Make the README's listening gallery: a few 4-bar DAW loops (44.1 kHz, 24-bit WAV) from weights.

    python docs/make_gallery.py --weights weights --out docs/gallery

One loop per structure (AAAB, AABB, ABAB by default: a fill bar, two halves, call and
response), each from its own beat of seed 0, written with ``beatgan.make_loop`` exactly as
``beatgan loop`` writes them, plus ``README.md``: a table of the files and the weights that made
them (path, sha256, trained step). The folder is replaced as a whole, so it never mixes loops
of two models. Three 4-bar loops at 125 bpm are about 6 MB.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import beatgan  # noqa: F401  (quiets TensorFlow's start-up lines before Keras loads it)

#: Structures in the gallery, in order; loop k uses beat k of seed 0 as its A bar.
STRUCTURES = ("AAAB", "AABB", "ABAB")
BARS = 4


def make_gallery(weights: str | Path, out_dir: str | Path, *,
                 structures: tuple[str, ...] = STRUCTURES, bars: int = BARS) -> list[Path]:
    """Write one loop per structure and a README.md into ``out_dir`` (replaced); returns the WAVs."""
    from beatgan import export
    from beatgan.generation import load_generator, make_loop

    generator, config = load_generator(weights)
    provenance = export.weights_provenance(weights)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Staged in a folder made inside mkdtemp's: that one is private (mode 0700), the gallery
    # gets the usual mode.
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    staging = scratch / out_dir.name
    try:
        staging.mkdir()
        paths = [make_loop(generator, out_dir=staging, config=config, structure=structure,
                           bars=bars, seed=0, index=index, weights=provenance)
                 for index, structure in enumerate(structures)]
        rows = [f"| [{p.name}]({p.name}) | {s} | {i} | {p.stat().st_size / 1e6:.1f} MB |"
                for i, (p, s) in enumerate(zip(paths, structures))]
        seconds = bars * 4 * 60.0 / config.bpm
        (staging / "README.md").write_text("\n".join([
            "# Gallery",
            "",
            f"{len(paths)} loops of {bars} bars ({seconds:.2f} s at {config.bpm:g} bpm), 44.1 kHz "
            "24-bit WAV, seamless when looped; each bar a generated segment played twice.",
            "Made by `python docs/make_gallery.py` (`beatgan loop --structure S --index I` "
            "makes any one of them again).",
            "",
            "| file | structure | index (beat of seed 0) | size |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
            f"Weights: `{provenance['path']}`, sha256 `{provenance['sha256']}`, trained step "
            f"{provenance['step'] if provenance['step'] is not None else 'unknown'}"
            f"{' (moving average)' if provenance['ema'] else ''}.",
            "",
        ]))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return [out_dir / p.name for p in paths]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="weights",
                        help="weights folder that makes the loops (default weights)")
    parser.add_argument("--out", default="docs/gallery",
                        help="folder to replace with the loops and their README (default docs/gallery)")
    args = parser.parse_args(argv)
    for path in make_gallery(args.weights, args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
