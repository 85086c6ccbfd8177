"""Where a generator falls short of the training loops: buzz, gaps, and the Frechet distance's parts.

Prints four tables for ``--weights`` against the training loops (``--data``), each with the
augmentation's white noise the model trains on (one noisy copy per loop, as drawn for training at
``config.seed``); ``beatgan score --metrics`` fits its reference on those copies too:

1. Checkerboard spread of each upsampling layer (``beatgan.upsampling.phase_sum_spread``):
   0 when a constant input gives a constant output; about 1.7 for a freshly initialised plain
   transposed convolution. Well above 0, every loud hit carries a buzz at that layer's rate.
2. Median level (dB of power, full scale 0) of generated beats and training loops per frequency
   band and 16th-note slot of the scored segment: which sounds are missing (a slot too quiet)
   and what fills the gaps between hits (a slot too loud).
3. Tempo consistency split into its parts: the onset flux per band on and off the 16th-note
   grid (what the grid share counts), for generated beats and training loops, and what the
   generated grid share would be with the loops' on-grid or off-grid flux in its place: whether
   the hits are too weak or the gaps too busy.
4. The Frechet distance of ``beatgan score --metrics`` (the same reference) split into the squared distance of the
   means (what every beat gets wrong the same way) and the covariance part (spread and shape).

It passes or fails nothing; a JSON line with every figure comes last.

    python bench/diagnose_generator.py --weights weights
    python bench/diagnose_generator.py --weights runs/x/best --n 200
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import scipy.signal

#: Frequency bands of the level table (Hz): kick, low body, snare and claps, hats and noise.
BANDS_HZ = ((0, 200), (200, 800), (800, 3000), (3000, None))
#: STFT window and hop of the level table (samples at 14.7 kHz: 17 ms, 8.7 ms).
WINDOW, HOP = 256, 128


def checkerboard_spreads(generator) -> dict[str, float]:
    """Layer name -> phase-sum spread of the kernel it convolves with."""
    from beatgan.upsampling import phase_sum_spread

    spreads = {}
    for layer in generator.layers:
        if layer.name.startswith("g_upconv"):
            kernel = layer.folded_kernel() if hasattr(layer, "folded_kernel") else layer.kernel
            spreads[layer.name] = phase_sum_spread(np.asarray(kernel), layer.strides[0])
    return spreads


def slot_levels(audio: np.ndarray, *, config) -> np.ndarray:
    """Median level (dB) per band and 16th-note slot, ``(len(BANDS_HZ), n_slots)``, of audio
    ``(n, samples, channels)`` mixed to mono over the scored segment."""
    mono = np.asarray(audio, np.float64).mean(axis=-1)[:, : config.score_len]
    freqs, times, spectrum = scipy.signal.stft(mono, fs=config.sample_rate_hz, nperseg=WINDOW,
                                               noverlap=WINDOW - HOP, boundary=None)
    power = np.abs(spectrum) ** 2  # (n, bins, frames)
    slot_len = config.sample_rate_hz * 60.0 / config.bpm / 4
    slots = np.floor(times * config.sample_rate_hz / slot_len).astype(int)
    n_slots = int(round(config.score_len / slot_len))
    table = np.zeros((len(BANDS_HZ), n_slots))
    for b, (low, high) in enumerate(BANDS_HZ):
        in_band = (freqs >= low) & (freqs < (np.inf if high is None else high))
        level = 10 * np.log10(power[:, in_band, :].sum(axis=1) + 1e-12)  # (n, frames)
        for k in range(n_slots):
            table[b, k] = np.median(level[:, slots == k])
    return table


def tempo_parts(audio: np.ndarray, *, config) -> dict:
    """Tempo consistency of ``(n, samples, channels)`` audio and its parts (``beatgan.metrics``).

    ``on``, ``off``: mean onset flux per clip in each of ``BANDS_HZ`` within and outside the
    tolerance of the 16th-note grid; ``grid_share``, ``beat_share``, ``tempo``: the metric's
    means over the clips.
    """
    from beatgan import metrics

    times_s, flux = metrics.onset_bands(metrics.to_mono_segments(audio, config=config),
                                        config=config, split_hz=[low for low, _ in BANDS_HZ[1:]])
    on_grid = metrics.grid_mask(times_s, period_s=60.0 / config.bpm / 4,
                                tolerance_ms=metrics.TEMPO_TOLERANCE_MS)
    grid_share, beat_share = metrics.tempo_components(audio, config=config)
    return {"on": flux[..., on_grid].sum(axis=-1).mean(axis=0).tolist(),
            "off": flux[..., ~on_grid].sum(axis=-1).mean(axis=0).tolist(),
            "grid_share": float(grid_share.mean()), "beat_share": float(beat_share.mean()),
            "tempo": float(np.sqrt(grid_share * beat_share).mean())}


def swapped_grid_share(generated: dict, training: dict) -> dict[str, float]:
    """The generated beats' grid share (from their mean flux) as it is, and with the training
    loops' on-grid or off-grid flux in place of their own."""
    def share(on: list[float], off: list[float]) -> float:
        return sum(on) / (sum(on) + sum(off))

    return {"as_is": share(generated["on"], generated["off"]),
            "loops_on_grid": share(training["on"], generated["off"]),
            "loops_off_grid": share(generated["on"], training["off"])}


def frechet_parts(generated: np.ndarray, reference) -> dict[str, float]:
    """The Frechet distance against a ``TrainingReference`` and its mean and covariance terms."""
    from beatgan.metrics import frechet_distance_gaussians, gaussian_stats

    mean, cov = gaussian_stats(reference.project(generated))
    total = frechet_distance_gaussians(mean, cov, reference.mean, reference.cov)
    mean_term = float(np.sum((mean - reference.mean) ** 2))
    return {"frechet": total, "mean_term": mean_term, "covariance_term": total - mean_term}


def first_noisy_copies(augmented: np.ndarray, *, config) -> np.ndarray:
    """The first noisy copy of each loop, ``(n_loops, samples, channels)``, from ``augmented``
    ``(n_loops * config.noise_copies, samples, channels)`` in ``augment``'s loop-major order.

    The generator learns the noisy loops, not the clean ones: the white noise (about -63 dB)
    fills the loops' quietest gaps, so clean loops would count it as the generator's buzz.
    """
    return augmented[::config.noise_copies]


def _band_name(low: int, high: int | None) -> str:
    return f">{low / 1000:g}k" if high is None else f"{low}-{high}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="weights", help="weights folder (default weights/)")
    parser.add_argument("--data", default="ULTIMATE_DRUM_LOOPS",
                        help="training loops (the demo pack when the default folder holds no audio)")
    parser.add_argument("--n", type=int, default=200, help="beats to generate (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from beatgan.generation import generate, load_generator
    from beatgan.metrics import TEMPO_TOLERANCE_MS
    from beatgan.workflows import load_training_loops, metrics_reference

    generator, config = load_generator(args.weights)
    loops = load_training_loops(args.data, config)
    augmented = loops.augment(rng=np.random.default_rng(config.seed))
    training_audio = first_noisy_copies(augmented, config=config)
    audio, _ = generate(generator, n=args.n, seed=args.seed, config=config)

    spreads = checkerboard_spreads(generator)
    print(f"upsampling: {config.upsample}; checkerboard spread per layer (0: none, fresh plain "
          f"layer about 1.7):")
    print("  " + "  ".join(f"{name} {value:.3f}" for name, value in spreads.items()))

    generated_levels = slot_levels(audio, config=config)
    train_levels = slot_levels(training_audio, config=config)
    print(f"\nmedian level (dB) per 16th-note slot, {args.n} generated beats / "
          f"{len(loops)} training loops (one noisy copy each):")
    for b, band in enumerate(BANDS_HZ):
        name = _band_name(*band)
        print(f"  {name + ' Hz':<12} generated " + " ".join(f"{v:6.1f}" for v in generated_levels[b]))
        print(f"  {'':<12} training  " + " ".join(f"{v:6.1f}" for v in train_levels[b]))

    tempo = {"generated": tempo_parts(audio, config=config),
             "training": tempo_parts(training_audio, config=config)}
    generated, training = tempo["generated"], tempo["training"]
    print(f"\ntempo consistency {generated['tempo']:.3f} (training loops {training['tempo']:.3f}); "
          f"grid share {generated['grid_share']:.3f} ({training['grid_share']:.3f}), "
          f"beat share {generated['beat_share']:.3f} ({training['beat_share']:.3f})")
    print(f"onset flux per clip on / off the 16th-note grid (+-{TEMPO_TOLERANCE_MS:g} ms):")
    for b, band in enumerate(BANDS_HZ):
        name = _band_name(*band)
        print(f"  {name + ' Hz':<12} generated {generated['on'][b]:6.1f} / {generated['off'][b]:5.1f}"
              f"   training {training['on'][b]:6.1f} / {training['off'][b]:5.1f}")
    tempo["swapped_grid_share"] = swapped = swapped_grid_share(generated, training)
    print(f"grid share of the mean flux {swapped['as_is']:.3f}; with the loops' on-grid flux "
          f"{swapped['loops_on_grid']:.3f}, with their off-grid flux {swapped['loops_off_grid']:.3f}")

    reference = metrics_reference(loops, config=config, seed=config.seed, augmented=augmented)
    parts = frechet_parts(audio, reference)
    print(f"\nFrechet distance {parts['frechet']:,.0f} = means {parts['mean_term']:,.0f} "
          f"+ covariances {parts['covariance_term']:,.0f}")
    result = {"weights": str(args.weights), "upsample": config.upsample, "n": args.n,
              "checkerboard_spread": spreads,
              "bands_hz": [list(band) for band in BANDS_HZ],
              "levels_db": {"generated": np.round(generated_levels, 2).tolist(),
                            "training": np.round(train_levels, 2).tolist()},
              "tempo": tempo, **parts}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
