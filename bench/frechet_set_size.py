"""How the Frechet distance depends on the set size: held-out loops beside generated beats.

The Frechet distance of a small set is biased upwards (its covariance is estimated from few
clips), so a held-out reference from 40 loops and a generated figure from 200 beats are not
like for like. This fits ``beatgan score --metrics``' reference with ``--held-out`` loops kept
out (the split of ``metrics.TrainingReference.fit``), then scores disjoint subsets of each size
in ``--sizes`` of the held-out clips and of ``--held-out`` generated beats. Prints one table,
then a JSON line; passes or fails nothing.

    python bench/frechet_set_size.py --weights weights
    python bench/frechet_set_size.py --weights runs/x/best --sizes 20 40 100 200
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def subset_distances(embedding: np.ndarray, size: int, reference) -> list[float]:
    """Frechet distance against ``reference`` of each disjoint block of ``size`` rows."""
    from beatgan.metrics import frechet_distance_gaussians, gaussian_stats

    return [frechet_distance_gaussians(*gaussian_stats(embedding[i:i + size]),
                                       reference.mean, reference.cov)
            for i in range(0, len(embedding) - size + 1, size)]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="weights", help="weights folder (default weights/)")
    parser.add_argument("--data", default="ULTIMATE_DRUM_LOOPS",
                        help="training loops (the demo pack when the default folder holds no audio)")
    parser.add_argument("--held-out", type=int, default=200,
                        help="loops kept out of the fit, and generated beats (default 200)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[40, 100, 200],
                        help="subset sizes (default 40 100 200; each at most --held-out)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated beats")
    args = parser.parse_args(argv)
    if any(not 2 <= size <= args.held_out for size in args.sizes):
        parser.error(f"each of --sizes must lie in 2..{args.held_out} (--held-out)")

    from beatgan.generation import generate, load_generator
    from beatgan.metrics import held_out_split
    from beatgan.workflows import load_training_loops, metrics_reference

    generator, config = load_generator(args.weights)
    loops = load_training_loops(args.data, config)
    augmented = loops.augment(rng=np.random.default_rng(config.seed))
    reference = metrics_reference(loops, config=config, seed=config.seed, augmented=augmented,
                                  n_held_out=args.held_out)
    # The same clips fit() held out: its split is the first draw of a generator seeded alike.
    groups = np.repeat(np.arange(len(loops)), config.noise_copies)
    held, _ = held_out_split(groups, args.held_out, np.random.default_rng(config.seed))
    # held_out_split keeps at most half the loops out, which may be fewer than --held-out.
    if max(args.sizes) > len(held):
        raise SystemExit(f"{args.data} holds out only {len(held)} loops (half of {len(loops)}), "
                         f"not --held-out {args.held_out}: keep --sizes at most {len(held)}")
    segments = augmented[:, :config.score_len]
    held_z = reference.project(segments[held])
    whole = subset_distances(held_z, len(held_z), reference)[0]
    expected = reference.points["held_out"]["frechet"]
    if not np.isclose(whole, expected, rtol=1e-6):
        raise SystemExit(f"the held-out clips do not match fit()'s ({whole:.1f} vs {expected:.1f})")

    audio, _ = generate(generator, n=len(held), seed=args.seed, config=config)
    generated_z = reference.project(audio[:, :config.score_len])
    print(f"Frechet distance by set size: {len(held)} held-out loops, fit on the other "
          f"{reference.n_loops}; {len(held)} beats from {args.weights}")
    print(f"{'size':>6}{'subsets':>9}{'held-out mean':>15}{'min':>9}{'max':>9}"
          f"{'generated mean':>16}{'ratio':>8}")
    rows = []
    for size in args.sizes:
        h, g = subset_distances(held_z, size, reference), subset_distances(generated_z, size, reference)
        row = {"size": size, "subsets": len(h), "held_out_mean": float(np.mean(h)),
               "held_out_min": float(np.min(h)), "held_out_max": float(np.max(h)),
               "generated_mean": float(np.mean(g))}
        row["ratio"] = row["generated_mean"] / row["held_out_mean"]
        rows.append(row)
        print(f"{size:>6}{len(h):>9}{row['held_out_mean']:>15,.0f}{row['held_out_min']:>9,.0f}"
              f"{row['held_out_max']:>9,.0f}{row['generated_mean']:>16,.0f}{row['ratio']:>8.2f}")
    result = {"weights": str(args.weights), "held_out": len(held), "rows": rows}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
