"""The fused JAX step (one program per iteration, fast kernels) trains as the reference step.

tests/_fused_worker.py runs both under JAX (its own process: this one is
TensorFlow) on a tiny float32 model, from the same weights and the same draws,
for a few iterations; the losses of every update and every variable after the
run must agree. Also: the fast kernels give the stock Keras layers' outputs, and
weight files written by stock layers load into beatgan's models unchanged.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
#: Float32 sums taken in another order (scan, polyphase convolutions) differ by rounding only.
RTOL = 1e-5
#: Entries at zero (biases after few updates, nearly cancelling Adam moments) have no scale of
#: their own: compared against 1e-4 of their array's largest entry instead. Adam moves every
#: entry by up to the learning rate per update whatever its gradient's size, so an entry whose
#: gradient nearly cancels carries that sum's rounding into a full-sized step. XLA sums in
#: another order with another thread count: on one core a g_dense bias entry came 1.2e-5 of its
#: array's largest entry apart, where two cores had passed at 1e-5. A wrong step is off by
#: about a learning rate, 1e4 times as far.
RTOL_OF_MAX = 1e-4


@pytest.fixture(scope="module")
def worker_out(tmp_path_factory):
    pytest.importorskip("jax")
    out = tmp_path_factory.mktemp("fused") / "out.npz"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, str(HERE / "_fused_worker.py"), str(out)],
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(out) as archive:
        return {key: archive[key] for key in archive.files}


def _assert_close(actual, expected, name):
    scale = np.abs(expected).max() if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL_OF_MAX * scale, err_msg=name)


@pytest.mark.parametrize("run", ["", "example_"], ids=["shift per batch", "shift per example"])
def test_fused_step_gives_the_reference_losses(worker_out, run):
    for key in ("d_loss", "gp", "wasserstein", "g_loss"):
        plain, fused = worker_out[f"{run}plain/{key}"], worker_out[f"{run}fused/{key}"]
        assert plain.shape == fused.shape and plain.shape[0] == 3  # iterations (x 5 D updates)
        # A Wasserstein estimate near 0 (3e-4, per example) keeps its rounding: compared
        # against RTOL of the run's largest one.
        np.testing.assert_allclose(fused, plain, rtol=RTOL, atol=RTOL * np.abs(plain).max(),
                                   err_msg=key)
    # The losses moved: the runs trained, and a fused step that skipped updates would show.
    assert np.ptp(worker_out[f"{run}plain/d_loss"]) > 1e-3


def test_shifts_per_example_train_otherwise_than_per_batch(worker_out):
    # The same weights and draws: only the critic's shifts differ, from its first update on.
    per_batch, per_example = worker_out["plain/wasserstein"], worker_out["example_plain/wasserstein"]
    assert np.abs(per_example - per_batch).max() > 1e-4


@pytest.mark.parametrize("run", ["", "example_"], ids=["shift per batch", "shift per example"])
def test_fused_step_gives_the_reference_weights_and_optimizer_state(worker_out, run):
    plain = sorted(k for k in worker_out if k.startswith(f"{run}plain/var"))
    fused = sorted(k for k in worker_out if k.startswith(f"{run}fused/var"))
    # Same variables in the same order (names can differ by Keras' global seed-generator count).
    assert [k.split("/", 2)[1] for k in plain] == [k.split("/", 2)[1] for k in fused]
    assert len(plain) > 20
    moved = 0
    for key, fused_key in zip(plain, fused):
        expected, actual = worker_out[key], worker_out[fused_key]
        if expected.dtype.kind != "f":  # phase-shuffle seed states, step counters: exact
            np.testing.assert_array_equal(actual, expected, err_msg=key)
        else:
            _assert_close(actual, expected, key)
            moved += int(np.any(expected != 0))
    assert moved > 10


def test_stock_layer_weight_files_load_and_fast_kernels_match_them(worker_out):
    for key in ("g", "d"):
        # Same entries in the file: the layer classes keep Keras' names.
        assert list(worker_out[f"{key}_h5_entries"]) == list(worker_out[f"{key}_h5_entries_ours"])
        stock, fast = worker_out[f"{key}_stock"], worker_out[f"{key}_fast"]
        assert np.abs(stock).max() > 1e-3
        np.testing.assert_allclose(fast, stock, rtol=1e-4, atol=1e-5 * np.abs(stock).max())


def test_fast_kernels_leave_no_strided_dilated_or_gathering_op(worker_out):
    # The generator's 5 transposed and the critic's 5 strided convolutions, all stride 1 now.
    for key in ("g", "d"):
        assert int(worker_out[f"{key}_fast_convs"]) == 5
        assert list(worker_out[f"{key}_fast_slow_ops"]) == [0, 0, 0]
    # Shifting each example selects among shifted copies: no gather either.
    assert list(worker_out["d_each_fast_slow_ops"]) == [0, 0, 0]


_TRAIN_BOTH_STEPS = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import _train_worker
from beatgan import training
from beatgan.training import train

made = []
def make_steps(*args, **kwargs):
    steps = real_make_steps(*args, **kwargs)
    made.append(type(steps).__name__)
    return steps
real_make_steps, training.make_steps = training.make_steps, make_steps

weights = {}
for step in ("plain", "fused"):
    result = train(_train_worker.tiny_data(), _train_worker.CONFIG, run_dir=f"{sys.argv[2]}/{step}",
                   iterations=2, log_every=1, preview_every=10_000, progress=False,
                   tensorboard=False, jax_step=step)
    weights[step] = [np.asarray(v) for v in result.generator.weights]
    assert type(result).__name__ == "TrainResult" and result.step == 2
assert made == ["JaxSteps", "FusedJaxSteps"], made
np.savez(sys.argv[3], *[w for pair in zip(weights["plain"], weights["fused"]) for w in pair])
"""


def test_train_with_the_plain_jax_step_trains_as_the_fused_one(tmp_path):
    # `beatgan train --jax-step plain` is the fallback: the same training through train().
    pytest.importorskip("jax")
    out = tmp_path / "weights.npz"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", _TRAIN_BOTH_STEPS, str(HERE), str(tmp_path),
                             str(out)], env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(out) as archive:
        arrays = [archive[f"arr_{i}"] for i in range(len(archive.files))]
    assert len(arrays) > 10
    initial_differs = 0
    for plain, fused in zip(arrays[::2], arrays[1::2]):
        # Two iterations of Adam from the same start: entries near zero carry the kernels'
        # rounding (polyphase against strided) relative to the array's largest entry.
        np.testing.assert_allclose(fused, plain, rtol=1e-4, atol=1e-3 * np.abs(plain).max())
        initial_differs += int(np.ptp(plain) > 0)
    assert initial_differs > 5  # real weights were compared, not zeros


def test_train_refuses_an_unknown_jax_step(tmp_path):
    from beatgan.training import train
    with pytest.raises(ValueError, match="jax_step"):
        train(np.zeros((4, 16384, 2), np.float32), __import__("_train_worker").CONFIG,
              run_dir=tmp_path, iterations=1, jax_step="fast")
    assert not any(tmp_path.iterdir())  # refused before anything was written


_MERGED_CRITIC_PASSES = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import _fused_worker
from beatgan.backends.jax_steps import FusedJaxSteps
from beatgan.model import build_discriminator, build_generator, fast_jax_kernels
from beatgan.training import build_optimizer

config = _fused_worker.tiny_config()  # phase shuffle on: the merged call must draw as two calls
rng = np.random.default_rng(5)
data = rng.uniform(-0.5, 0.5, (8, config.slice_len, config.channels)).astype(np.float32)
real, fake = data[:4], rng.uniform(-0.5, 0.5, data[:4].shape).astype(np.float32)
alpha = rng.uniform(size=4).astype(np.float32)
g, d = build_generator(config), build_discriminator(config)
g_opt, d_opt = build_optimizer(config, name="g"), build_optimizer(config, name="d")
g_opt.build(g.trainable_variables)
d_opt.build(d.trainable_variables)
out = {}
for merge in (False, True):
    steps = FusedJaxSteps(g, d, g_opt, d_opt, data, gp_weight=10.0, merge_critic_passes=merge)
    _, _, d_tr, d_nt, _, _ = steps.state
    with fast_jax_kernels():
        from beatgan.backends import losses
        x_hat = losses.interpolate(real, fake, alpha)
        loss, (parts, d_nt) = steps._d_loss(d_tr, d_nt, real, fake, x_hat)
        grads = __import__("jax").grad(lambda w: steps._d_loss(w, steps.state[3], real, fake,
                                                               x_hat)[0])(d_tr)
    out.update({f"{merge}/{k}": np.asarray(v) for k, v in parts.items()})
    out.update({f"{merge}/grad{i}": np.asarray(v) for i, v in enumerate(grads)})
    out.update({f"{merge}/seed{i}": np.asarray(v) for i, v in enumerate(d_nt)})
np.savez(sys.argv[2], **out)
"""


def test_merged_critic_passes_give_the_separate_passes_losses_gradients_and_draws(tmp_path):
    # One critic call over real and generated together: the same algebra and phase-shuffle
    # draws as two calls. Compared for one update from one state: over several Adam updates a
    # tiny model's near-zero gradient entries turn rounding into visible drift.
    pytest.importorskip("jax")
    out = tmp_path / "merged.npz"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", _MERGED_CRITIC_PASSES, str(HERE), str(out)],
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(out) as archive:
        got = {key: archive[key] for key in archive.files}
    separate = sorted(k.split("/", 1)[1] for k in got if k.startswith("False/"))
    assert separate == sorted(k.split("/", 1)[1] for k in got if k.startswith("True/"))
    assert sum(k.startswith("grad") for k in separate) > 5
    assert sum(k.startswith("seed") for k in separate) == 4  # the four phase-shuffle layers
    for key in separate:
        expected, actual = got[f"False/{key}"], got[f"True/{key}"]
        if key.startswith("seed"):  # each layer drew twice in both: x_hat, real, fake
            np.testing.assert_array_equal(actual, expected, err_msg=key)
        else:
            _assert_close(actual, expected, key)
    assert abs(float(got["False/wasserstein"])) > 1e-6
