"""Make the README's picture and findings: 8 generated beats beside 8 training loops, with scores.

    python docs/make_figure.py --weights runs/cpu-d16/export --out docs/spectrograms.png

Generates 40 beats (seed 0) from the weights, loads the training loops the weights' config
describes (the demo pack when ULTIMATE_DRUM_LOOPS holds no audio), and prints the novelty summary
and the offline beat metrics; the PNG shows the first 8 beats above 8 training loops, beats dotted.
"""

from __future__ import annotations

import argparse
import os

import beatgan  # noqa: F401  (quiets TensorFlow's start-up lines before Keras loads it)

import numpy as np


def _loop_label(path) -> str:
    """``tr07_drlp_124_Believe_Full.wav`` -> ``Believe``; a name outside the pack's pattern as it is."""
    parts = path.stem.split("_")
    return parts[3] if len(parts) > 3 and parts[1] == "drlp" else path.stem[:16]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="weights",
                        help="weights folder whose generator draws the top rows (default weights)")
    parser.add_argument("--data", default="ULTIMATE_DRUM_LOOPS",
                        help="folder of training loops for the bottom rows (default ULTIMATE_DRUM_LOOPS)")
    parser.add_argument("--out", default="docs/spectrograms.png", help="PNG to write")
    parser.add_argument("--title", default="", help="figure title (default: none)")
    args = parser.parse_args(argv)

    import beatgan
    from beatgan import metrics, plots
    from beatgan.synth import ensure_demo_pack

    generator, config = beatgan.load_generator(args.weights)
    audio, _ = beatgan.generate(generator, n=40, seed=0, config=config)
    loops = beatgan.load_loops(ensure_demo_pack(args.data), config)
    report = beatgan.score_novelty(loops.segments(), audio, config=config,
                                   train_names=[p.name for p in loops.paths],
                                   generated_names=[f"output{i:03d}.wav" for i in range(len(audio))])
    print(report.summary())
    train = loops.augment(rng=np.random.default_rng(config.seed))[:, :config.score_len]
    groups = np.repeat(np.arange(len(loops)), config.noise_copies)
    reference = metrics.TrainingReference.fit(train, config=config, seed=0, groups=groups)
    print(metrics.evaluate(audio, reference).summary())

    n = config.score_len
    picks = np.random.default_rng(0).choice(len(loops), min(8, len(loops)), replace=False)
    fig = plots.spectrogram_grid(
        [("generated", [a[:n] for a in audio[:8]], [f"beat {i}" for i in range(8)]),
         ("training", [loops.audio[j, :n] for j in picks], [_loop_label(loops.paths[j]) for j in picks])],
        sample_rate_hz=config.sample_rate_hz, bpm=config.bpm, cell_in=1.5)
    if args.title:
        fig.suptitle(args.title, fontsize=9)
        fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
