"""Do the training loops share one beat grid, and does a generator land on it?

The seed cuts each loop's first 2 beats at the loop's own tempo, so a pack of 124 and 125 bpm
loops teaches the generator two grids that part by up to 7.7 ms over a segment, while its beats
are written and scored at ``Config.bpm`` (125). This prints, per source tempo, the loops' tempo
consistency (``beatgan.metrics``, at ``Config.bpm``) and where their kicks fall: the median
offset of the low-band onset flux from each beat after the downbeat (ms; a kick on the beat
reads a few ms late, where its flux peaks: +3.5 for the demo pack's; a slower loop's, later).
Two rows each: the loops as loaded (the config's ``target_bpm``) and brought to
``--target-bpm`` (cut and scored at that tempo); with ``--weights``, a row for the beats that
generator draws.

    python bench/loop_grid.py --weights weights                # demo pack, retimed to 125
    python bench/loop_grid.py --data ULTIMATE_DRUM_LOOPS --target-bpm 125

It passes or fails nothing; a JSON line with every figure comes last.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import warnings

import numpy as np

#: Half width of the window around each beat in which the kick's flux is averaged (s).
KICK_WINDOW_S = 0.015


def kick_offsets_ms(audio: np.ndarray, *, config) -> np.ndarray:
    """Per clip of ``(n, samples, channels)`` audio, the median over the beats after the
    downbeat of the flux-weighted mean time of the low-band onset flux within
    ``KICK_WINDOW_S`` of the beat, minus the beat's time: ``(n,)`` ms (NaN without flux)."""
    from beatgan import metrics

    times_s, flux = metrics.onset_bands(metrics.to_mono_segments(audio, config=config), config=config)
    low = flux[:, 0]
    beat_s = 60.0 / config.bpm
    offsets = []
    for k in range(1, int(config.beats)):
        near = np.abs(times_s - k * beat_s) <= KICK_WINDOW_S
        mass = low[:, near].sum(axis=1)
        weighted = (low[:, near] * (times_s[near] - k * beat_s)).sum(axis=1)
        offsets.append(np.divide(1000 * weighted, mass, out=np.full_like(mass, np.nan), where=mass > 0))
    if not offsets:
        return np.full(len(audio), np.nan)
    with warnings.catch_warnings():  # a clip without kicks has no offset: NaN, said by the docstring
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(np.stack(offsets), axis=0)


def grid_figures(audio: np.ndarray, *, config) -> dict[str, float]:
    """Mean tempo consistency, grid and beat shares, and the kick offset's median and 10th and
    90th percentiles (ms): a pack, or a generator, with two grids shows a wide spread."""
    from beatgan.metrics import tempo_components

    grid_share, beat_share = tempo_components(audio, config=config)
    return {"n": len(audio), "tempo": float(np.mean(np.sqrt(grid_share * beat_share))),
            "grid_share": float(grid_share.mean()), "beat_share": float(beat_share.mean()),
            **_percentiles(kick_offsets_ms(audio, config=config))}


def _percentiles(offsets: np.ndarray) -> dict[str, float]:
    """Median, 10th and 90th percentiles of the finite offsets (ms), NaN when there are none."""
    finite = offsets[np.isfinite(offsets)]
    values = np.percentile(finite, [50, 10, 90]) if finite.size else [float("nan")] * 3
    return dict(zip(("kick_offset_ms", "kick_offset_p10_ms", "kick_offset_p90_ms"), map(float, values)))


def by_source_tempo(loops, *, config) -> dict[str, dict[str, float]]:
    """``grid_figures`` of a ``LoopSet`` per source tempo (bpm as text) and for "all"."""
    rows = {f"{bpm:g}": grid_figures(loops.audio[loops.bpm == bpm], config=config)
            for bpm in np.unique(loops.bpm)}
    rows["all"] = grid_figures(loops.audio, config=config)
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ULTIMATE_DRUM_LOOPS",
                        help="training loops (the demo pack when the default folder holds no audio)")
    parser.add_argument("--weights", default=None,
                        help="weights folder: also measure its beats, with its config (default: "
                             "no beats, the seed preset's config)")
    parser.add_argument("--target-bpm", type=float, default=None,
                        help="tempo to bring the loops to for the second row (default Config.bpm)")
    parser.add_argument("--n", type=int, default=200, help="beats to generate (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from beatgan.config import Config
    from beatgan.workflows import load_training_loops

    generator = None
    if args.weights:
        from beatgan.generation import load_generator

        generator, config = load_generator(args.weights)
    else:
        config = Config()
    target = args.target_bpm or config.bpm
    try:  # Config ties target_bpm to bpm: loops brought to a tempo are cut and scored at it
        retimed = dataclasses.replace(config, bpm=target, target_bpm=target)
    except ValueError as error:
        parser.error(f"--target-bpm {target:g}: {error}")
    result = {"bpm": config.bpm, "target_bpm": target, "loops": {}}
    for label, loaded in (("as loaded", config), (f"at {target:g} bpm", retimed)):
        loops = load_training_loops(args.data, loaded)  # the demo pack only for the default
        result["loops"][label] = by_source_tempo(loops, config=loaded)
    if generator is not None:
        from beatgan.generation import generate

        audio, _ = generate(generator, n=args.n, seed=args.seed, config=config)
        result["generated"] = grid_figures(audio, config=config)

    print(f"scored at {config.bpm:g} bpm (the generator's grid); loops as loaded "
          f"(target_bpm {config.target_bpm}) and brought to {target:g} bpm (scored at it)")
    print(f"{'loops':<22}{'n':>5}{'tempo':>8}{'grid':>7}{'beat':>7}  kick offset (ms): median [p10, p90]")
    rows = [(f"{tempo} bpm, {label}" if tempo != "all" else f"all, {label}", figures)
            for label, groups in result["loops"].items() for tempo, figures in groups.items()]
    if "generated" in result:
        rows.append(("generated", result["generated"]))
    for name, f in rows:
        print(f"{name:<22}{f['n']:>5}{f['tempo']:>8.3f}{f['grid_share']:>7.3f}{f['beat_share']:>7.3f}"
              f"  {f['kick_offset_ms']:+5.1f} [{f['kick_offset_p10_ms']:+.1f}, {f['kick_offset_p90_ms']:+.1f}]")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
