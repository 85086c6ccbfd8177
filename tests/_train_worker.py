"""Subprocess helper for tests/test_train.py: train a tiny WaveGAN and print the result.

Usage: python tests/_train_worker.py RUN_DIR TARGETS [--checkpoint-every N]

TARGETS is a comma-separated list of iteration targets, trained one after the
other on the same RUN_DIR (so "2,4" trains to 2, then resumes to 4). After each
target one line ``RESULT {"step": ..., "resumed_from": ...}`` is printed.
The data and config are fixed here so that every process sees the same run.
"""

import argparse
import json

import numpy as np

from beatgan.config import Config

CONFIG = Config(model_dim=2, batch_size=2, seed=11)


def reseeded_shuffle_states(stream) -> dict[str, np.ndarray]:
    """Checkpoint keys and values of the critic's phase-shuffle states, reseeded from ``stream``."""
    from beatgan.model import PhaseShuffle, build_discriminator, reseed_phase_shuffle

    critic = build_discriminator(CONFIG)
    reseed_phase_shuffle(critic, stream)
    states = [layer.seed_generator.state for layer in critic.layers
              if isinstance(layer, PhaseShuffle)]
    paths = [v.path for v in critic.variables]
    return {f"discriminator/{paths.index(s.path):04d}": np.asarray(s.value) for s in states}


def tiny_data(n: int = 6) -> np.ndarray:
    """Deterministic stand-in audio: decaying noise bursts, float32 (n, 16384, 2)."""
    rng = np.random.default_rng(0)
    t = np.arange(CONFIG.slice_len) / CONFIG.sample_rate_hz
    envelope = np.exp(-30 * (t % 0.24))[None, :, None]
    return (0.5 * envelope * rng.uniform(-1, 1, (n, CONFIG.slice_len, 2))).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("targets")
    parser.add_argument("--checkpoint-every", type=int, default=1)
    args = parser.parse_args()

    from beatgan.training import train

    data = tiny_data()
    for target in (int(t) for t in args.targets.split(",")):
        result = train(data, CONFIG, run_dir=args.run_dir, iterations=target,
                       checkpoint_every=args.checkpoint_every, log_every=1, preview_every=10_000,
                       progress=False)
        print("RESULT " + json.dumps({"step": result.step, "resumed_from": result.resumed_from}),
              flush=True)


if __name__ == "__main__":
    main()
