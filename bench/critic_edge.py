"""How far a critic tells a generator's beats from the loops, and by what.

Loads a critic (a weights folder's ``discriminator.weights.h5``, or a run's checkpoint
``.npz``) and scores ``--n`` noisy training loops (or as many as the pack has) and ``--n`` beats
of ``--weights`` with it, in float32 and without phase shuffle (inference; ``--shuffle``: with
the critic's phase shuffle as training draws it, the scores its generator learns from). Prints:

1. the edge: mean score of the loops minus that of the beats (the Wasserstein estimate a
   training history logs, here on clips scored outside training: new beats, and the loops'
   noisy copies, which at ``--seed`` 0 are those a seed-0 run trained on), with its standard
   error, and each set's mean and spread;
2. where the critic looks: the power of the gradient of its score with respect to the input,
   at the beats, per frequency band (shares of 1) and its strongest frequencies;
3. two probes, each applied to both sets: a 60 Hz high-pass (is the edge in the sub-bass?) and
   a shift of 64 samples (does the edge depend on where things sit against the clip's start and
   the generator's upsampling lattice?).

A JSON line with every figure comes last, the counts scored among them (``n_loops``,
``n_beats``). It passes or fails nothing. Use it on a critic brought back from a run, before
deciding to start the next run from it.

    python bench/critic_edge.py --critic runs/more/best/discriminator.weights.h5
    python bench/critic_edge.py --critic runs/x/checkpoints/ckpt-00000050.npz --weights weights
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import numpy as np
import scipy.signal

#: Frequency bands (Hz) of the gradient table; the last one ends at the model rate's Nyquist.
GRADIENT_BANDS_HZ = (0, 100, 200, 400, 800, 1600, 3000, 5000, None)
#: The probes' high-pass corner (Hz) and shift (samples: a quarter of the first upsampling
#: layer's 256-sample period at d = 64).
HIGH_PASS_HZ, SHIFT_SAMPLES = 60.0, 64


def load_critic(path: str | Path, config):
    """The critic of ``config``, float32, with the weights of ``path``: a ``.weights.h5`` file
    or a training checkpoint ``.npz`` (its ``discriminator`` group)."""
    from beatgan.checkpoint import load_checkpoint, restore_group
    from beatgan.generation import inference_config, load_weights_checked
    from beatgan.model import build_discriminator

    critic = build_discriminator(inference_config(config))
    path = Path(path)
    if path.suffix == ".npz":
        arrays, _ = load_checkpoint(path)
        restore_group(arrays, "discriminator", critic.variables)
    else:
        load_weights_checked(critic, path, config)
    return critic


def critic_scores(critic, audio: np.ndarray, *, batch: int = 32,
                  shuffle: bool = False) -> np.ndarray:
    """The critic's score ``(n,)`` of each clip of ``audio`` ``(n, samples, channels)``;
    ``shuffle``: with its phase shuffle on, as in training (its seed generators advance)."""
    return np.concatenate([np.asarray(critic(audio[i:i + batch], training=shuffle),
                                      np.float64).ravel() for i in range(0, len(audio), batch)])


def edge(real_scores: np.ndarray, fake_scores: np.ndarray) -> dict[str, float]:
    """Mean real score minus mean fake score, and its standard error (independent sets)."""
    real, fake = np.asarray(real_scores, np.float64), np.asarray(fake_scores, np.float64)
    return {"estimate": float(real.mean() - fake.mean()),
            "standard_error": float(np.sqrt(real.var(ddof=1) / len(real)
                                            + fake.var(ddof=1) / len(fake))),
            "real_mean": float(real.mean()), "real_sd": float(real.std(ddof=1)),
            "fake_mean": float(fake.mean()), "fake_sd": float(fake.std(ddof=1))}


def input_gradients(critic, audio: np.ndarray, *, batch: int = 32,
                    shuffle: bool = False) -> np.ndarray:
    """d score / d input at each clip, ``audio``'s shape, float64; TensorFlow or JAX backend;
    ``shuffle`` as in ``critic_scores``."""
    import keras

    parts = []
    for i in range(0, len(audio), batch):
        x = np.asarray(audio[i:i + batch], np.float32)
        if keras.backend.backend() == "jax":
            import jax
            import jax.numpy as jnp

            grad = jax.grad(lambda v: jnp.sum(critic(v, training=shuffle)))(jnp.asarray(x))
        else:
            import tensorflow as tf

            x = tf.convert_to_tensor(x)
            with tf.GradientTape() as tape:
                tape.watch(x)
                total = tf.reduce_sum(critic(x, training=shuffle))
            grad = tape.gradient(total, x)
        parts.append(np.asarray(grad, np.float64))
    return np.concatenate(parts)


def band_shares(signals: np.ndarray, *, sample_rate_hz: int,
                edges_hz=GRADIENT_BANDS_HZ) -> tuple[list[float], np.ndarray, np.ndarray]:
    """Share of the mean power spectrum of ``signals`` ``(n, samples, channels)`` in each band
    of ``edges_hz`` (None: up to Nyquist), and the spectrum itself ``(freqs, power)``."""
    nperseg = min(1024, signals.shape[1])
    freqs, power = scipy.signal.welch(signals, fs=sample_rate_hz, nperseg=nperseg, axis=1)
    power = power.mean(axis=(0, 2))
    edges = [e if e is not None else np.inf for e in edges_hz]
    shares = [float(power[(freqs >= lo) & (freqs < hi)].sum() / power.sum())
              for lo, hi in zip(edges[:-1], edges[1:])]
    return shares, freqs, power


def high_passed(audio: np.ndarray, *, sample_rate_hz: int, corner_hz: float = HIGH_PASS_HZ):
    """``audio`` through a zero-phase 8th-order Butterworth high-pass at ``corner_hz``."""
    sos = scipy.signal.butter(8, corner_hz, btype="highpass", fs=sample_rate_hz, output="sos")
    return scipy.signal.sosfiltfilt(sos, audio, axis=1).astype(np.float32)


def shifted(audio: np.ndarray, samples: int = SHIFT_SAMPLES) -> np.ndarray:
    """``audio`` moved ``samples`` later along time, zeros in front, the end cut off."""
    out = np.zeros_like(audio)
    out[:, samples:] = audio[:, :audio.shape[1] - samples]
    return out


def _band_label(low, high) -> str:
    return f">{low}" if high is None else f"{low}-{high}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--critic", required=True,
                        help="discriminator.weights.h5, or a training checkpoint .npz")
    parser.add_argument("--config", default=None,
                        help="the critic's config.json (default: beside --critic, or its run "
                             "folder's for a checkpoint)")
    parser.add_argument("--weights", default="weights", help="generator folder (default weights/)")
    parser.add_argument("--data", default="ULTIMATE_DRUM_LOOPS",
                        help="training loops (the demo pack when the default folder holds no audio)")
    parser.add_argument("--n", type=int, default=256, help="loops and beats each (default 256)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shuffle", action="store_true",
                        help="score with the critic's phase shuffle on, as training does "
                             "(default: off, as at inference)")
    args = parser.parse_args(argv)

    from beatgan.config import Config
    from beatgan.generation import generate, load_generator
    from beatgan.workflows import load_training_loops

    critic_path = Path(args.critic)
    config_path = Path(args.config) if args.config else (
        critic_path.parent.parent / "config.json" if critic_path.suffix == ".npz"
        else critic_path.parent / "config.json")
    config = Config.load(config_path)
    critic = load_critic(critic_path, config)
    generator, _ = load_generator(args.weights)
    loops = load_training_loops(args.data, config)
    rng = np.random.default_rng(args.seed)
    noisy = loops.augment(rng=rng)
    real = noisy[rng.choice(len(noisy), size=min(args.n, len(noisy)), replace=False)]
    fake = np.asarray(generate(generator, n=args.n, seed=args.seed, config=config)[0], np.float32)

    score = functools.partial(critic_scores, critic, shuffle=args.shuffle)
    real_scores, fake_scores = score(real), score(fake)
    # A pack with fewer noisy loops than --n gives them all: report the counts scored.
    result = {"critic": str(critic_path), "weights": str(args.weights), "n_loops": len(real),
              "n_beats": len(fake), "shuffle": args.shuffle,
              **edge(real_scores, fake_scores)}
    print(f"edge (loops - beats) {result['estimate']:+.3f} +- {result['standard_error']:.3f}; "
          f"{len(real)} loops {result['real_mean']:+.2f} (sd {result['real_sd']:.2f}), "
          f"{len(fake)} beats {result['fake_mean']:+.2f} (sd {result['fake_sd']:.2f})")

    fs = config.sample_rate_hz
    shares, freqs, power = band_shares(input_gradients(critic, fake, shuffle=args.shuffle),
                                       sample_rate_hz=fs)
    labels = [_band_label(lo, hi) for lo, hi in zip(GRADIENT_BANDS_HZ[:-1], GRADIENT_BANDS_HZ[1:])]
    peaks = [float(freqs[i]) for i in np.argsort(power)[::-1][:5]]
    result["gradient_band_shares"] = dict(zip(labels, shares))
    result["gradient_peaks_hz"] = peaks
    print("gradient power at the beats, share per band (Hz): "
          + "  ".join(f"{label} {share:.3f}" for label, share in zip(labels, shares)))
    print("strongest gradient frequencies (Hz): " + " ".join(f"{f:.0f}" for f in peaks))

    probes = {}
    for name, change in ((f"high-pass {HIGH_PASS_HZ:g} Hz",
                          lambda a: high_passed(a, sample_rate_hz=fs)),
                         (f"{SHIFT_SAMPLES} samples later", shifted)):
        r, f = score(change(real)), score(change(fake))
        probes[name] = {"loops_change": float(r.mean() - real_scores.mean()),
                        "beats_change": float(f.mean() - fake_scores.mean()),
                        "estimate": float(r.mean() - f.mean())}
        print(f"{name}: loops {probes[name]['loops_change']:+.3f}, beats "
              f"{probes[name]['beats_change']:+.3f}; edge then {probes[name]['estimate']:+.3f}")
    result["probes"] = probes
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
