"""Subprocess helper for tests/test_stability.py: a rolled-back run against its reference.

Usage: KERAS_BACKEND=jax python tests/_rollback_worker.py WORK_DIR

Run A trains the tiny run of ``_train_worker`` to 8 iterations under ``on_instability="rollback"``
with a jump injected at iteration 5 (calm until 3), so it goes back to its checkpoint at 2,
halves both learning rates, switches to new draws and trains on to 8. Run B, the reference,
trains to 2, has the learning rates in its checkpoint halved and its sampler and the critic's
phase-shuffle layers switched to the stream (seed, 0, 1) by hand, and resumes to 8. Prints one line
``RESULT {...}``: the largest difference between the two runs' final checkpoints and what A
recorded. Also imported by the tests, which call ``compare`` in-process (TensorFlow).
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _train_worker  # noqa: E402

from beatgan import checkpoint as ckpt  # noqa: E402
from beatgan.stability import InstabilityMonitor  # noqa: E402

JUMP_AT, CALM_UNTIL, TARGET = 5, 3, 8


class InjectedJump(InstabilityMonitor):
    """Flags the first row at or after ``JUMP_AT`` as a jump, ``remaining`` times over all
    monitors (a tiny model's losses do not blow up on cue); calm until ``CALM_UNTIL``."""

    remaining = 1

    def observe(self, row):
        if self.unstable_at is None and row["step"] >= JUMP_AT and InjectedJump.remaining > 0:
            InjectedJump.remaining -= 1
            self.unstable_at, self.jump, self.calm_step = int(row["step"]), (1.0, 99.0), CALM_UNTIL
            return True
        return False


def learning_rate_keys() -> list[str]:
    """Checkpoint keys of the two optimizers' learning rates."""
    from beatgan.model import build_generator
    from beatgan.training import build_optimizer

    optimizer = build_optimizer(_train_worker.CONFIG, name="probe")
    optimizer.build(build_generator(_train_worker.CONFIG).trainable_variables)
    index = [v.path.split("/")[-1] for v in optimizer.variables].index("learning_rate")
    return [f"g_optimizer/{index:04d}", f"d_optimizer/{index:04d}"]


def _train(run_dir, iterations, **kwargs):
    from beatgan.training import train

    options = dict(log_every=1, checkpoint_every=2, keep=3, progress=False, tensorboard=False)
    return train(_train_worker.tiny_data(), _train_worker.CONFIG, run_dir=run_dir,
                 iterations=iterations, **{**options, **kwargs})


def compare(work_dir) -> dict:
    """Run A and run B in ``work_dir``; their differences and A's record."""
    from beatgan import training

    work_dir = Path(work_dir)
    InjectedJump.remaining = 1
    real_monitor = training.InstabilityMonitor
    training.InstabilityMonitor = InjectedJump
    try:
        a = _train(work_dir / "a", TARGET, on_instability="rollback")
    finally:
        training.InstabilityMonitor = real_monitor
    b_dir = work_dir / "b"
    _train(b_dir, 2)
    arrays, meta = ckpt.load_checkpoint(ckpt.checkpoint_path(b_dir / "checkpoints", 2))
    for key in learning_rate_keys():
        arrays[key] = arrays[key] * np.float32(0.5)
    sampler = training.BatchSampler(len(_train_worker.tiny_data()), batch_size=1, latent_dim=1,
                                    seed=0)
    sampler.set_state(meta["sampler"], arrays["sampler/order"])
    sampler.draw_anew([_train_worker.CONFIG.seed, 0, 1])  # rollback 1 of a run from scratch
    meta["sampler"], arrays["sampler/order"] = sampler.get_state()
    shuffles = _train_worker.reseeded_shuffle_states([_train_worker.CONFIG.seed, 0, 1])
    assert len(shuffles) == 4 and all(arrays[k].shape == v.shape for k, v in shuffles.items())
    arrays.update(shuffles)
    ckpt.save_checkpoint(b_dir / "checkpoints", step=2, arrays=arrays, meta=meta)
    _train(b_dir, TARGET)
    final_a, _ = ckpt.load_checkpoint(a.checkpoint)
    final_b, _ = ckpt.load_checkpoint(ckpt.checkpoint_path(b_dir / "checkpoints", TARGET))
    differences = {key: float(np.max(np.abs(final_a[key].astype(np.float64) - final_b[key])))
                   for key in final_a if key != "sampler/order" and final_a[key].size}
    return {"max_difference": max(differences.values()),
            "worst_key": max(differences, key=differences.get),
            "same_keys": sorted(final_a) == sorted(final_b),
            "same_order": bool(np.array_equal(final_a["sampler/order"], final_b["sampler/order"])),
            "learning_rates": [float(final_a[k]) for k in learning_rate_keys()],
            "step": a.step, "rollbacks": a.rollbacks, "unstable_at": a.unstable_at,
            "history_steps": [int(row["step"]) for row in a.history],
            "checkpoints": [s for s, _ in ckpt.list_checkpoints(work_dir / "a" / "checkpoints")],
            "log": json.loads((work_dir / "a" / training.INSTABILITY_LOG).read_text())}


if __name__ == "__main__":
    print("RESULT " + json.dumps(compare(sys.argv[1])), flush=True)
