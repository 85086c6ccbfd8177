"""The generator's moving average: the formula (float64 reference), the export, and exact resume."""

import sys
from pathlib import Path

import numpy as np
import pytest

from beatgan import checkpoint as ckpt
from beatgan.config import Config
from beatgan.ema import decay_at

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import _train_worker  # noqa: E402  (the tiny config and data the training tests share)

CONFIG = _train_worker.CONFIG


def _train(run_dir, iterations, **kwargs):
    from beatgan.training import train

    options = dict(checkpoint_every=1, keep=20, log_every=1, preview_every=10_000,
                   progress=False, tensorboard=False)
    options.update(kwargs)
    return train(_train_worker.tiny_data(), CONFIG, run_dir=run_dir, iterations=iterations,
                 **options)


def _group(arrays, group):
    """A checkpoint group's arrays in variable order, float64."""
    return [arrays[k].astype(np.float64) for k in sorted(arrays) if k.startswith(group + "/")]


def _reference_average(run_dir, steps, start):
    """float64 recomputation of the average over checkpoints ``steps`` from ``start`` weights."""
    average = [w.astype(np.float64) for w in start]
    for step in steps:
        arrays, _ = ckpt.load_checkpoint(ckpt.checkpoint_path(run_dir / "checkpoints", step))
        decay = decay_at(step, decay=CONFIG.ema_decay)
        average = [decay * a + (1 - decay) * w for a, w in zip(average, _group(arrays, "generator"))]
    return average


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ema")
    return _train(run_dir, 4), run_dir


def test_decay_warms_up_then_holds():
    assert decay_at(1, decay=0.999) == pytest.approx(2 / 11)
    assert decay_at(100, decay=0.999) == pytest.approx(101 / 110)
    assert decay_at(100_000, decay=0.999) == 0.999


def test_average_follows_the_formula_from_the_initial_weights(ema_run):
    from beatgan.model import build_generator

    _, run_dir = ema_run
    initial = [np.asarray(v) for v in build_generator(CONFIG).get_weights()]  # seeded init
    want = _reference_average(run_dir, [1, 2, 3, 4], initial)
    arrays, _ = ckpt.load_checkpoint(ckpt.checkpoint_path(run_dir / "checkpoints", 4))
    got = _group(arrays, ckpt.EMA_GROUP)
    raw = _group(arrays, "generator")
    assert len(got) == len(want) == len(raw) > 0
    for g, w, r in zip(got, want, raw):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)
    # The average is not the raw weights: it lags G by a good share of how far G moved.
    moved = max(np.abs(r - i).max() for r, i in zip(raw, initial))
    assert moved > 0 and max(np.abs(g - r).max() for g, r in zip(got, raw)) > 0.1 * moved


def test_update_at_full_decay_matches_float64(rng):
    """Three updates at decay 0.999 on a generator's own weights, against float64."""
    import keras

    from beatgan.ema import GeneratorEMA
    from beatgan.model import build_generator

    generator = build_generator(CONFIG)
    ema = GeneratorEMA(generator, CONFIG)
    want = [np.asarray(v, np.float64) for v in generator.get_weights()]
    for step in (10_000, 10_001, 10_002):
        new = [rng.normal(size=w.shape).astype(np.float32) for w in want]
        ema.update([keras.ops.convert_to_tensor(w) for w in new], step=step)
        want = [0.999 * a + 0.001 * w for a, w in zip(want, new)]
    ema.sync_to_model()
    for got, w in zip(ema.model.get_weights(), want):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)


def test_export_writes_the_average_and_the_raw_weights_beside_it(ema_run):
    import json

    from beatgan.generation import load_generator

    result, run_dir = ema_run
    arrays, _ = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir / "checkpoints"))
    for raw, group in ((False, ckpt.EMA_GROUP), (True, "generator")):
        generator, _ = load_generator(result.export_dir, raw=raw)
        for got, want in zip(generator.get_weights(), _group(arrays, group)):
            np.testing.assert_array_equal(got, want.astype(np.float32))
    info = json.loads((result.export_dir / "weights.json").read_text())
    assert info["ema"] is True and info["step"] == 4 and info["ema_decay"] == CONFIG.ema_decay


def test_resume_restores_the_average_exactly(ema_run, tmp_path):
    _, reference_dir = ema_run
    _train(tmp_path, 2)
    second = _train(tmp_path, 4)
    assert second.resumed_from == 2
    a, _ = ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path / "checkpoints", 4))
    b, _ = ckpt.load_checkpoint(ckpt.checkpoint_path(reference_dir / "checkpoints", 4))
    for got, want in zip(_group(a, ckpt.EMA_GROUP), _group(b, ckpt.EMA_GROUP)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_no_ema_exports_the_raw_generator_only(tmp_path):
    from beatgan.training import train

    config = CONFIG.replace(ema=False)
    result = train(_train_worker.tiny_data(), config, run_dir=tmp_path, iterations=1,
                   progress=False, tensorboard=False)
    assert result.ema_generator is None
    assert not (result.export_dir / "generator_raw.weights.h5").exists()
    arrays, _ = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "checkpoints"))
    assert not any(k.startswith(ckpt.EMA_GROUP + "/") for k in arrays)


def test_a_config_file_without_the_ema_fields_loads_with_the_defaults(tmp_path):
    import json

    values = Config(model_dim=2).to_dict()
    del values["ema"], values["ema_decay"]
    (tmp_path / "config.json").write_text(json.dumps(values))
    loaded = Config.load(tmp_path)
    assert loaded == Config(model_dim=2) and loaded.ema and loaded.ema_decay == 0.999


def test_a_checkpoint_without_an_average_resumes_with_one_started_from_g(tmp_path):
    """A run checkpointed before the EMA existed: the average starts from the resumed weights."""
    import numpy as np

    _train(tmp_path, 1)
    path = ckpt.latest_checkpoint(tmp_path / "checkpoints")
    arrays, meta = ckpt.load_checkpoint(path)
    old = {k: v for k, v in arrays.items() if not k.startswith(ckpt.EMA_GROUP + "/")}
    step = meta.pop("step")
    ckpt.save_checkpoint(tmp_path / "checkpoints", step=step, arrays=old, meta=meta)
    result = _train(tmp_path, 2)
    arrays, _ = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "checkpoints"))
    decay = decay_at(2, decay=CONFIG.ema_decay)
    want = [decay * a + (1 - decay) * w
            for a, w in zip(_group(old, "generator"), _group(arrays, "generator"))]
    for got, w in zip(_group(arrays, ckpt.EMA_GROUP), want):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-7)
    assert result.resumed_from == 1


def test_jax_average_follows_the_formula_between_checkpoints(tmp_path):
    """Under JAX the G weights live in the step's state: the average must still see them."""
    pytest.importorskip("jax")
    sys.path.insert(0, str(HERE))
    from test_training import _worker

    worker = _worker(tmp_path, "3", backend="jax")
    _, err = worker.communicate(timeout=600)
    assert worker.returncode == 0, err[-3000:]
    first, _ = ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path / "checkpoints", 2))
    last, _ = ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path / "checkpoints", 3))
    decay = decay_at(3, decay=CONFIG.ema_decay)
    want = [decay * a + (1 - decay) * w
            for a, w in zip(_group(first, ckpt.EMA_GROUP), _group(last, "generator"))]
    got = _group(last, ckpt.EMA_GROUP)
    assert len(got) == len(want) > 0
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)
    # and it moved with G (a stale copy of G's start would fail the line above too)
    assert max(np.abs(g - a).max() for g, a in zip(got, _group(first, ckpt.EMA_GROUP))) > 0
