"""The WGAN-GP loop: run layout, exact resume (also after SIGKILL), NaN stop, mixed precision."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from beatgan import checkpoint as ckpt
from beatgan.config import Config

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import _train_worker  # noqa: E402  (the same tiny config and data as the subprocesses)

CONFIG = _train_worker.CONFIG


def _train(run_dir, iterations, data=None, config=CONFIG, **kwargs):
    from beatgan.training import train

    options = dict(checkpoint_every=2, log_every=1, preview_every=2, progress=False)
    options.update(kwargs)
    data = _train_worker.tiny_data() if data is None else data
    return train(data, config, run_dir=run_dir, iterations=iterations, **options)


def _assert_same_checkpoints(path_a, path_b, rtol=1e-5, atol=1e-7):
    arrays_a, meta_a = ckpt.load_checkpoint(path_a)
    arrays_b, meta_b = ckpt.load_checkpoint(path_b)
    assert meta_a["step"] == meta_b["step"]
    assert sorted(arrays_a) == sorted(arrays_b)
    for key in arrays_a:
        np.testing.assert_allclose(arrays_a[key], arrays_b[key], rtol=rtol, atol=atol, err_msg=key)
    assert meta_a["sampler"] == meta_b["sampler"]


def _worker(run_dir, targets, backend="tensorflow", **popen):
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen([sys.executable, str(HERE / "_train_worker.py"), str(run_dir), targets],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)


def _results(stdout: str) -> list[dict]:
    return [json.loads(line[7:]) for line in stdout.splitlines() if line.startswith("RESULT ")]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """An uninterrupted 8-iteration run in this process (TensorFlow)."""
    run_dir = tmp_path_factory.mktemp("reference")
    return _train(run_dir, 8, checkpoint_every=1, keep=10), run_dir


def test_the_audio_previews_are_what_the_exported_generator_draws(reference_run):
    import io

    import soundfile as sf

    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="tensorboard (the [tensorboard] extra, in [dev]) reads the event files back")
    from beatgan.training import PREVIEW_COUNT

    result, run_dir = reference_run
    events = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"),
                                                size_guidance={"audio": 0})
    events.Reload()
    last = events.Audio("preview/0")[-1]
    assert last.step == 8
    heard, _ = sf.read(io.BytesIO(last.encoded_audio_string), dtype="float32")
    z = np.random.default_rng([CONFIG.seed, 1]).uniform(
        -1.0, 1.0, (PREVIEW_COUNT, CONFIG.latent_dim)).astype(np.float32)
    averaged = np.asarray(result.ema_generator(z, training=False))[0]
    raw = np.asarray(result.generator(z, training=False))[0]
    np.testing.assert_allclose(heard, np.clip(averaged, -1, 1), atol=2 / 2 ** 15)  # 16-bit
    assert np.abs(raw - averaged).max() > 4 / 2 ** 15  # the two differ: the test can tell


def test_run_folder_layout_history_and_export(reference_run):
    from beatgan.model import build_generator

    result, run_dir = reference_run
    assert result.step == 8 and result.resumed_from == 0
    assert (run_dir / "config.json").exists() and Config.load(run_dir) == CONFIG
    rows = json.loads((run_dir / "history.json").read_text())
    assert [row["step"] for row in rows] == list(range(1, 9))
    assert (run_dir / "history.csv").read_text().splitlines()[0] == \
        "step,d_updates,d_loss,g_loss,gp,wasserstein,wall_s"
    assert all(np.isfinite([row[k] for k in ("d_loss", "g_loss", "gp", "wasserstein")]).all()
               for row in rows)
    assert rows[-1]["d_updates"] == 8 * CONFIG.d_updates_per_g
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    # The export folder rebuilds the trained generator on its own.
    export = result.export_dir
    assert export == run_dir / "export"
    z = np.random.default_rng(3).uniform(-1, 1, (2, CONFIG.latent_dim)).astype("float32")
    # generator.weights.h5 is the moving average (beatgan.ema); the raw weights sit beside it.
    for name, trained in (("generator.weights.h5", result.ema_generator),
                          ("generator_raw.weights.h5", result.generator)):
        generator = build_generator(Config.load(export))
        generator.load_weights(export / name)
        np.testing.assert_allclose(np.asarray(generator(z)), np.asarray(trained(z)), atol=1e-6)
    assert (export / "discriminator.weights.h5").exists()
    # Where it trained, for the model card (docs/make_model_card.py).
    assert json.loads((export / "weights.json").read_text())["trained_on"] == {
        "backend": os.environ["KERAS_BACKEND"], "device": "cpu", "devices": 1, "precision": "float32"}


def test_resume_in_process_matches_uninterrupted(reference_run, tmp_path):
    _, reference_dir = reference_run
    first = _train(tmp_path, 3, checkpoint_every=3)
    assert first.step == 3
    second = _train(tmp_path, 8, checkpoint_every=5)
    assert second.resumed_from == 3 and second.step == 8
    _assert_same_checkpoints(ckpt.checkpoint_path(tmp_path / "checkpoints", 8),
                             ckpt.checkpoint_path(reference_dir / "checkpoints", 8))
    # History continues where the first call stopped.
    assert [row["step"] for row in second.history] == list(range(1, 9))
    again = _train(tmp_path, 8)  # already at the target: nothing to do
    assert again.resumed_from == 8 and again.step == 8


def test_sigkill_mid_run_then_resume_reaches_same_weights(tmp_path):
    run_dir = tmp_path / "run"
    target = 40
    process = _worker(run_dir, str(target))
    ckpt_dir = run_dir / "checkpoints"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found = ckpt.list_checkpoints(ckpt_dir)
        if found and found[-1][0] >= 3:
            break
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    survivors = ckpt.list_checkpoints(ckpt_dir)
    last_step = survivors[-1][0]
    assert 3 <= last_step < target
    for _, path in survivors:  # every checkpoint left behind is whole
        ckpt.load_checkpoint(path)

    resumed = _worker(run_dir, str(target))
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert _results(out) == [{"step": target, "resumed_from": last_step}]

    reference_dir = tmp_path / "reference"
    _train(reference_dir, target, checkpoint_every=target, preview_every=10_000)
    _assert_same_checkpoints(ckpt.latest_checkpoint(ckpt_dir),
                             ckpt.latest_checkpoint(reference_dir / "checkpoints"))
    history = json.loads((run_dir / "history.json").read_text())
    assert [row["step"] for row in history] == list(range(1, target + 1))


def test_nan_loss_stops_with_clear_error_and_keeps_last_checkpoint(tmp_path):
    from beatgan.training import NonFiniteLossError

    _train(tmp_path, 2)
    good = ckpt.latest_checkpoint(tmp_path / "checkpoints")
    poisoned = _train_worker.tiny_data()
    poisoned[:, 100, 0] = np.nan
    with pytest.raises(NonFiniteLossError, match="NaN or Inf") as error:
        _train(tmp_path, 4, data=poisoned)
    assert str(good) in str(error.value)
    assert ckpt.latest_checkpoint(tmp_path / "checkpoints") == good
    arrays, meta = ckpt.load_checkpoint(good)
    assert meta["step"] == 2
    assert all(np.all(np.isfinite(a)) for k, a in arrays.items() if a.dtype.kind == "f")


def test_mixed_precision_trains_with_finite_moving_losses(tmp_path):
    config = CONFIG.replace(mixed_precision=True)
    result = _train(tmp_path, 6, config=config, checkpoint_every=6)
    d_losses = [row["d_loss"] for row in result.history]
    assert np.all(np.isfinite([[row[k] for k in ("d_loss", "g_loss", "gp")] for row in result.history]))
    assert np.ptp(d_losses) > 1e-3, d_losses
    assert result.generator.get_layer("g_upconv0").compute_dtype == "bfloat16"
    assert all(v.dtype == "float32" for v in result.generator.weights)


def test_resuming_with_another_config_is_refused(tmp_path):
    _train(tmp_path, 1)
    with pytest.raises(ValueError, match="another config"):
        _train(tmp_path, 2, config=CONFIG.replace(learning_rate=3e-4))


def test_bad_data_shape_is_refused(tmp_path):
    with pytest.raises(ValueError, match="data must have shape"):
        _train(tmp_path, 1, data=np.zeros((4, 100, 2), "float32"))


def test_jax_training_resumes_exactly(tmp_path):
    pytest.importorskip("jax")
    a = _worker(tmp_path / "a", "2,4", backend="jax")
    b = _worker(tmp_path / "b", "4", backend="jax")
    out_a, err_a = a.communicate(timeout=600)
    out_b, err_b = b.communicate(timeout=600)
    assert a.returncode == 0, err_a[-3000:]
    assert b.returncode == 0, err_b[-3000:]
    assert _results(out_a) == [{"step": 2, "resumed_from": 0}, {"step": 4, "resumed_from": 2}]
    _assert_same_checkpoints(ckpt.latest_checkpoint(tmp_path / "a" / "checkpoints"),
                             ckpt.latest_checkpoint(tmp_path / "b" / "checkpoints"))
    assert (tmp_path / "a" / "export" / "generator.weights.h5").exists()


def test_checkpoint_minutes_triggers_saves_between_step_checkpoints(tmp_path):
    _train(tmp_path, 3, checkpoint_every=1000, checkpoint_minutes=0.0, keep=10, tensorboard=False)
    assert [step for step, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [1, 2, 3]


def test_a_failed_start_leaves_the_run_folder_free_for_a_corrected_config(tmp_path):
    """Too few examples for a batch: a clear error, and no config left behind that blocks a retry."""
    import numpy as np

    from beatgan.config import Config
    from beatgan.training import train

    data = np.zeros((3, 16384, 2), np.float32)
    with pytest.raises(ValueError, match="fewer than one batch of 4"):
        train(data, Config(model_dim=2, batch_size=4), run_dir=tmp_path, iterations=1, progress=False)
    result = train(data, Config(model_dim=2, batch_size=2), run_dir=tmp_path, iterations=1,
                   progress=False, tensorboard=False, export=False)
    assert result.step == 1
    assert Config.load(tmp_path).batch_size == 2


def test_periodic_checkpoints_are_written_while_training_goes_on(tmp_path, monkeypatch):
    """A checkpoint before the last is written on a worker thread; the next iteration starts
    while it is written. The last one is on disk when train returns."""
    import threading

    from beatgan import training

    events = []  # (what, step, thread is main, seconds)
    real_save, real_iteration = ckpt.save_checkpoint, training._TrainingState.iteration

    def slow_save(directory, *, step, **kwargs):
        events.append(("write starts", step, threading.current_thread() is threading.main_thread(),
                       time.perf_counter()))
        time.sleep(0.5)
        path = real_save(directory, step=step, **kwargs)
        events.append(("write ends", step, None, time.perf_counter()))
        return path

    def iteration(self):
        events.append(("iteration", self.step + 1, None, time.perf_counter()))
        return real_iteration(self)

    monkeypatch.setattr(ckpt, "save_checkpoint", slow_save)
    monkeypatch.setattr(training._TrainingState, "iteration", iteration)
    result = _train(tmp_path, 4, checkpoint_every=2, keep=5)
    writes = [e for e in events if e[0] == "write starts"]
    assert [(step, main) for _, step, main, _ in writes] == [(2, False), (4, False)]
    start_2 = writes[0][3]
    end_2 = next(t for what, step, _, t in events if what == "write ends" and step == 2)
    third = next(t for what, step, _, t in events if what == "iteration" and step == 3)
    assert start_2 < third < end_2  # iteration 3 ran during checkpoint 2's write
    assert result.checkpoint == tmp_path / "checkpoints" / "ckpt-00000004.npz"
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [2, 4]
    assert ckpt.load_checkpoint(result.checkpoint)[1]["step"] == 4
    assert [row["step"] for row in training.load_history(tmp_path)] == [1, 2, 3, 4]


def test_every_iteration_is_d_updates_per_g_critic_updates_then_one_generator_update(
        reference_run):
    # Adam counts its own updates: after 8 iterations the critic's made 8 x 5, the generator's 8.
    _, run_dir = reference_run
    arrays, _ = ckpt.load_checkpoint(ckpt.checkpoint_path(run_dir / "checkpoints", 8))
    # Each optimizer's first variable is its update count ("iteration"); then its learning rate.
    assert int(arrays["d_optimizer/0000"]) == 8 * CONFIG.d_updates_per_g == 40
    assert int(arrays["g_optimizer/0000"]) == 8


def test_both_optimizers_are_adam_with_the_configs_rate_and_betas():
    """Two updates of one weight against Adam in float64 with the config's rate and betas."""
    import keras

    from beatgan.training import build_optimizer

    config = CONFIG.replace(learning_rate=1e-3)  # beta_1 0.5, beta_2 0.9: the defaults
    assert (config.beta_1, config.beta_2) == (0.5, 0.9)
    weight = keras.Variable(np.zeros(3, np.float32))
    optimizer = build_optimizer(config, name="probe")
    grads = [np.array([1.0, -2.0, 0.5]), np.array([-3.0, 1.0, 0.5])]
    m = v = np.zeros(3)
    want = np.zeros(3)
    for t, g in enumerate(grads, start=1):
        optimizer.apply([keras.ops.convert_to_tensor(g.astype(np.float32))], [weight])
        m = 0.5 * m + 0.5 * g
        v = 0.9 * v + 0.1 * g ** 2
        want = want - 1e-3 * (m / (1 - 0.5 ** t)) / np.sqrt(v / (1 - 0.9 ** t))
    np.testing.assert_allclose(np.asarray(weight), want, rtol=1e-4)


def test_the_sampler_draws_one_interpolation_weight_per_example():
    from beatgan.training import BatchSampler

    sampler = BatchSampler(100, batch_size=64, latent_dim=3, seed=7)
    alphas = np.stack([sampler.alphas() for _ in range(4)])
    assert alphas.shape == (4, 64) and alphas.dtype == np.float32
    assert np.all((alphas >= 0) & (alphas <= 1))
    assert len(np.unique(alphas)) == alphas.size  # no weight shared within or across batches
    # Spread over [0, 1] within each batch, as 64 uniform draws are (a std of 1/sqrt(12) = 0.29).
    assert np.all(alphas.std(axis=1) > 0.2) and np.all(alphas.max(axis=1) - alphas.min(axis=1) > 0.8)
    z = sampler.latents()
    assert z.shape == (64, 3) and np.all(np.abs(z) <= 1) and z.min() < -0.9 and z.max() > 0.9
