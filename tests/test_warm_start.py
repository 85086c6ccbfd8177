"""Warm start: a new run from a weights folder (beatgan.warm_start, train(init_from=...))."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from beatgan import checkpoint as ckpt
from beatgan.config import Config
from beatgan.warm_start import DEFAULT_CRITIC_WARMUP, read_warm_start, warmup_verdict

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import _train_worker  # noqa: E402  (the tiny config and data of the training tests)

CONFIG = _train_worker.CONFIG
LR = 1, "learning_rate"  # g_optimizer/0001 in a checkpoint: Adam's learning rate variable


def _train(run_dir, iterations, **kwargs):
    from beatgan.training import train

    options = dict(checkpoint_every=1, keep=20, log_every=1, preview_every=10_000,
                   progress=False, tensorboard=False)
    options.update(kwargs)
    config = options.pop("config", CONFIG)
    return train(_train_worker.tiny_data(), config, run_dir=run_dir, iterations=iterations,
                 **options)


def _group(path, group):
    arrays, _ = ckpt.load_checkpoint(path)
    return [arrays[k] for k in sorted(arrays) if k.startswith(f"{group}/")]


def _model_arrays(model):
    return [np.asarray(v) for v in model.weights]


def _loaded(config, path, build):
    model = build(config)
    model.load_weights(str(path))
    return _model_arrays(model)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A 3-iteration run from scratch; its export (raw G, average, critic) is the warm start."""
    run_dir = tmp_path_factory.mktemp("source")
    result = _train(run_dir, 3)
    return result.export_dir


@pytest.fixture
def generator_only(source, tmp_path):
    """The source export as ``weights/`` ships it: the average alone, no raw G, no critic."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    for name in ("generator.weights.h5", "config.json", "weights.json"):
        shutil.copy(source / name, folder / name)
    return folder


def test_a_full_export_loads_every_part_and_the_critic_warmup_defaults_to_none(source, tmp_path):
    from beatgan.model import build_discriminator, build_generator

    start = read_warm_start(source, CONFIG)
    assert (start.generator.name, start.average.name, start.discriminator.name) == (
        "generator_raw.weights.h5", "generator.weights.h5", "discriminator.weights.h5")
    assert start.record["critic_warmup"] == 0 and start.record["ema_step"] == 3
    assert start.record["iterations"] == 3 and start.record["d_updates"] == 3 * 5
    assert start.record["critic"] == "loaded" and start.record["runs"] == 1

    result = _train(tmp_path / "run", 1, init_from=source, critic_warmup=1, export=False)
    # Held for its one iteration: the generator and its average are the folder's, bit for bit;
    # the critic started from the folder's critic and has learned since.
    first = ckpt.latest_checkpoint(tmp_path / "run" / "checkpoints")
    for got, want in zip(_group(first, "generator"),
                         _loaded(CONFIG, source / "generator_raw.weights.h5", build_generator)):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(_group(first, ckpt.EMA_GROUP),
                         _loaded(CONFIG, source / "generator.weights.h5", build_generator)):
        np.testing.assert_array_equal(got, want)
    critic_before = _loaded(CONFIG, source / "discriminator.weights.h5", build_discriminator)
    critic_after = _model_arrays(result.discriminator)
    kernels = [i for i, a in enumerate(critic_before) if a.ndim == 3]
    assert all(not np.array_equal(critic_before[i], critic_after[i]) for i in kernels)
    assert max(np.abs(critic_before[i] - critic_after[i]).max() for i in kernels) < 1e-2
    assert result.started_from["folder"] == str(source)


def test_a_new_critic_learns_alone_then_the_generator_follows(generator_only, tmp_path, capsys):
    from beatgan.model import build_generator

    start = read_warm_start(generator_only, CONFIG)
    assert start.discriminator is None and start.average is None
    assert start.record["critic_warmup"] == DEFAULT_CRITIC_WARMUP
    assert start.record["critic"] == "new"

    run = tmp_path / "run"
    result = _train(run, 4, init_from=generator_only, critic_warmup=2)
    assert result.step == 4 and result.resumed_from == 0
    # Said once, when the generator is released: one row (step 2) in the warm-up's second half.
    said = [line for line in capsys.readouterr().out.splitlines() if "critic warm-up over" in line]
    assert said == ["critic warm-up over at iteration 2: its second half has 1 history row, too "
                    "few to say whether the critic tells the generator's beats from the loops"]
    shipped = _loaded(CONFIG, generator_only / "generator.weights.h5", build_generator)
    by_step = dict(ckpt.list_checkpoints(run / "checkpoints"))
    for step in (1, 2):  # the warm-up: the generator and its average stand still at rate 0
        for got, want in zip(_group(by_step[step], "generator"), shipped):
            np.testing.assert_array_equal(got, want)
        for got, want in zip(_group(by_step[step], ckpt.EMA_GROUP), shipped):
            np.testing.assert_array_equal(got, want)
        assert _group(by_step[step], "g_optimizer")[LR[0]] == 0.0
    # Released at iteration 3: the generator moves at the critic's rate, the average follows.
    # Iteration 3 already trains it: a warm-up of 2 holds the generator for 2 iterations, not 3.
    for step in (3, 4):
        assert _group(by_step[step], "g_optimizer")[LR[0]] == pytest.approx(CONFIG.learning_rate)
    assert max(np.abs(a - b).max() for a, b in zip(_group(by_step[3], "generator"), shipped)) > 0
    moved = [np.abs(a - b).max() for a, b in zip(_group(by_step[4], "generator"), shipped)]
    assert max(moved) > 0
    # The average goes on from the folder's step: decay 0.999 capped by (1 + s) / (10 + s)
    # at s = 3 + 1, 3 + 2 (the folder's 3 G updates, then this run's 2), not at s = 1, 2.
    from beatgan.ema import decay_at

    averaged = _group(by_step[4], ckpt.EMA_GROUP)
    raw_3 = _group(by_step[3], "generator")
    raw_4 = _group(by_step[4], "generator")
    d4, d5 = decay_at(4, decay=CONFIG.ema_decay), decay_at(5, decay=CONFIG.ema_decay)
    kernel = next(i for i, a in enumerate(shipped) if a.ndim == 3)
    expected = d5 * (d4 * shipped[kernel] + (1 - d4) * raw_3[kernel]) + (1 - d5) * raw_4[kernel]
    np.testing.assert_allclose(averaged[kernel], expected, rtol=1e-5, atol=1e-7)
    info = json.loads((run / "export" / "weights.json").read_text())
    assert info["started_from"]["generator_sha256"] == start.record["generator_sha256"]
    assert info["started_from"]["critic"] == "new" and info["started_from"]["critic_warmup"] == 2
    assert info["step"] == 4  # this run's own iterations; the lineage is in started_from


def test_a_resume_keeps_its_start_and_other_weights_are_refused(generator_only, tmp_path):
    run = tmp_path / "run"
    _train(run, 1, init_from=generator_only, critic_warmup=2)
    again = _train(run, 3, init_from=generator_only)  # the same command, run again: resumes
    assert again.resumed_from == 1 and again.step == 3
    assert again.started_from["critic_warmup"] == 2  # the run's own, not the default
    plain = _train(run, 4)  # resumed without init_from: goes on as it began
    assert plain.resumed_from == 3 and plain.started_from["folder"] == str(generator_only)
    scratch = tmp_path / "scratch"
    other = _train(scratch, 1).export_dir  # other weights (source's export has the same G file)
    with pytest.raises(ValueError, match="started from .*shipped.*not from .*scratch/export"):
        _train(run, 5, init_from=other)
    with pytest.raises(ValueError, match="started from scratch, not from"):
        _train(scratch, 2, init_from=generator_only)


def _verdicts(out):
    return [line for line in out.splitlines() if line.startswith("critic warm-up over")]


def test_a_run_stopped_where_its_warmup_ends_resumes_as_if_never_stopped(generator_only, tmp_path,
                                                                         capsys):
    """A checkpoint of the warm-up's last iteration holds the generator at rate 0; the resumed
    call releases it, so stopping there changes nothing (it once left the rate at 0 for good)."""
    straight = _train(tmp_path / "straight", 4, init_from=generator_only, critic_warmup=2)
    assert len(_verdicts(capsys.readouterr().out)) == 1
    _train(tmp_path / "split", 2, init_from=generator_only, critic_warmup=2)
    assert len(_verdicts(capsys.readouterr().out)) == 1  # judged where it stopped
    split = _train(tmp_path / "split", 4, init_from=generator_only, critic_warmup=2)
    assert split.resumed_from == 2 and len(_verdicts(capsys.readouterr().out)) == 1
    a = ckpt.latest_checkpoint(tmp_path / "split" / "checkpoints")
    b = ckpt.latest_checkpoint(straight.run_dir / "checkpoints")
    arrays_a, _ = ckpt.load_checkpoint(a)
    arrays_b, _ = ckpt.load_checkpoint(b)
    assert sorted(arrays_a) == sorted(arrays_b)
    for key in arrays_a:
        np.testing.assert_allclose(arrays_a[key], arrays_b[key], rtol=1e-5, atol=1e-7, err_msg=key)
    assert _group(a, "g_optimizer")[LR[0]] == pytest.approx(CONFIG.learning_rate)


def test_a_resume_can_lengthen_the_warmup_until_the_generator_moves(generator_only, tmp_path,
                                                                     capsys):
    from beatgan.model import build_generator

    run = tmp_path / "run"
    _train(run, 2, init_from=generator_only, critic_warmup=2)
    longer = _train(run, 4, init_from=generator_only, critic_warmup=3)
    assert "the critic warm-up now ends at iteration 3 (it was 2)" in capsys.readouterr().out
    assert longer.started_from["critic_warmup"] == 3
    info = json.loads((run / "export" / "weights.json").read_text())
    assert info["started_from"]["critic_warmup"] == 3
    shipped = _loaded(CONFIG, generator_only / "generator.weights.h5", build_generator)
    by_step = dict(ckpt.list_checkpoints(run / "checkpoints"))
    for got, want in zip(_group(by_step[3], "generator"), shipped):  # held one more iteration
        np.testing.assert_array_equal(got, want)
    assert any(not np.array_equal(got, want)
               for got, want in zip(_group(by_step[4], "generator"), shipped))
    with pytest.raises(ValueError, match="generator has trained since iteration 3.*only before"):
        _train(run, 6, init_from=generator_only, critic_warmup=5)
    assert max(s for s, _ in ckpt.list_checkpoints(run / "checkpoints")) == 4  # nothing trained
    early = tmp_path / "early"
    _train(early, 2, init_from=generator_only, critic_warmup=4)
    with pytest.raises(ValueError, match="iteration 2 of its critic warm-up.*not at 1"):
        _train(early, 4, init_from=generator_only, critic_warmup=1)
    shorter = _train(early, 3, init_from=generator_only, critic_warmup=2)  # ends where it is
    assert shorter.started_from["critic_warmup"] == 2
    moved = _group(ckpt.latest_checkpoint(early / "checkpoints"), "generator")
    assert any(not np.array_equal(got, want) for got, want in zip(moved, shipped))


def test_chained_warm_starts_add_up_the_updates_behind_them(source, tmp_path):
    first = _train(tmp_path / "first", 2, init_from=source)
    start = read_warm_start(first.export_dir, CONFIG)
    assert start.record["iterations"] == 3 + 2 and start.record["d_updates"] == 5 * 5
    assert start.record["runs"] == 2 and start.record["ema_step"] == 5


def test_the_average_counts_only_the_updates_it_averaged(generator_only, tmp_path):
    """The updates behind a moving average skip a warm-up's iterations and runs without one
    (7 iterations behind the first export below, 5 of them averaged)."""
    from beatgan.ema import decay_at

    first = _train(tmp_path / "first", 4, init_from=generator_only, critic_warmup=2)
    info = json.loads((first.export_dir / "weights.json").read_text())
    assert info["ema_updates"] == 3 + (4 - 2)
    start = read_warm_start(first.export_dir, CONFIG)
    assert start.record["iterations"] == 7 and start.record["ema_step"] == 5
    # The next run's first update decays as the average's sixth, not its eighth.
    second = tmp_path / "second"
    _train(second, 1, init_from=first.export_dir)
    before = _group(ckpt.latest_checkpoint(tmp_path / "first" / "checkpoints"), ckpt.EMA_GROUP)
    raw = _group(ckpt.latest_checkpoint(second / "checkpoints"), "generator")
    after = _group(ckpt.latest_checkpoint(second / "checkpoints"), ckpt.EMA_GROUP)
    kernel = next(i for i, a in enumerate(raw) if a.ndim == 3)
    d6 = decay_at(6, decay=CONFIG.ema_decay)
    np.testing.assert_allclose(after[kernel], d6 * before[kernel] + (1 - d6) * raw[kernel],
                               rtol=1e-5, atol=1e-7)
    plain = _train(tmp_path / "plain", 3, config=CONFIG.replace(ema=False))
    averaged = _train(tmp_path / "averaged", 2, init_from=plain.export_dir,
                      config=CONFIG.replace(ema=True))
    assert json.loads((averaged.export_dir / "weights.json").read_text())["ema_updates"] == 2
    assert read_warm_start(averaged.export_dir, CONFIG).record["ema_step"] == 2


def _draws_after(seed, iterations):
    """The sampler's (state, order) after ``iterations`` of the tiny run, drawn from ``seed``."""
    from beatgan.training import BatchSampler

    sampler = BatchSampler(len(_train_worker.tiny_data()), batch_size=CONFIG.batch_size,
                           latent_dim=CONFIG.latent_dim, seed=seed)
    for _ in range(iterations):
        for _ in range(CONFIG.d_updates_per_g):
            sampler.indices(), sampler.latents(), sampler.alphas()
        sampler.latents()
    return sampler.get_state()


def test_each_run_of_a_chain_draws_a_stream_of_its_own(source, tmp_path):
    """Run k + 1 of a chain draws from (seed, k), not the seed's stream again: a warm start
    does not replay the batches, z, alphas and phase-shuffle shifts its weights saw at the same
    iterations."""
    _train(tmp_path / "first", 1, init_from=source)
    arrays, meta = ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path / "first" / "checkpoints", 1))
    state, _ = _draws_after([CONFIG.seed, 1], 1)
    assert meta["sampler"]["bit_generator"] == state["bit_generator"]
    assert state["bit_generator"] != _draws_after(CONFIG.seed, 1)[0]["bit_generator"]
    # The critic's phase shuffle too: its layers start on (seed, 1) and drew 3 shifts per
    # critic update (x_hat, real, fake) and one for the generator's update.
    fresh = _train_worker.reseeded_shuffle_states([CONFIG.seed, 1])
    for key, (seed, counter) in fresh.items():
        assert arrays[key].tolist() == [seed, counter + 3 * CONFIG.d_updates_per_g + 1]


def test_another_model_shape_is_refused_before_training(source, tmp_path):
    import dataclasses

    wider = dataclasses.replace(CONFIG, model_dim=4)
    with pytest.raises(ValueError, match="model_dim 2 there, 4 here"):
        _train(tmp_path / "run", 1, init_from=source, config=wider)
    assert not list((tmp_path / "run").glob("checkpoints/*.npz"))
    with pytest.raises(FileNotFoundError, match="needs a weights folder") as raised:
        read_warm_start(tmp_path, CONFIG)
    assert "a run folder's weights" not in str(raised.value)
    with pytest.raises(FileNotFoundError, match="a run folder's weights are in .*source.*export"):
        read_warm_start(source.parent, CONFIG)  # the run folder, not its export
    with pytest.raises(ValueError, match="critic_warmup must be >= 0"):
        read_warm_start(source, CONFIG, critic_warmup=-1)
    # Settings that do not shape the weights may change: precision, rate, drift, batch.
    looser = dataclasses.replace(CONFIG, mixed_precision=True, learning_rate=5e-5,
                                 drift_weight=0.001, batch_size=4)
    assert read_warm_start(source, looser).record["step"] == 3


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_the_command_starts_from_weights_with_their_config(generator_only, demo_folder, tmp_path,
                                                           backend):
    """``beatgan train --init-from``: the folder's config unless flags say otherwise, on both
    backends (JAX: the fused step, which holds the rate in its own copy of the state)."""
    if backend == "jax":
        pytest.importorskip("jax")
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo), "JAX_PLATFORMS": "cpu"}
    run = tmp_path / "run"
    command = [sys.executable, "-m", "beatgan", "train", "--backend", backend,
               "--data", str(demo_folder), "--out", str(run), "--init-from", str(generator_only),
               "--critic-warmup", "1", "--iterations", "2", "--batch-size", "2",
               "--checkpoint-every", "1", "--keep-checkpoints", "5"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (f"starting from {generator_only} (3 iterations, 15 D updates behind it) with a new "
            f"critic, trained alone for 1 iteration first") in done.stdout
    assert f"(from {generator_only}, 3 iterations before this run)" in done.stdout
    saved = Config.load(run)
    assert saved.model_dim == 2 and saved.seed == CONFIG.seed  # from the folder, not the preset
    by_step = dict(ckpt.list_checkpoints(run / "checkpoints"))
    from beatgan.model import build_generator

    shipped = _loaded(saved, generator_only / "generator.weights.h5", build_generator)
    assert _group(by_step[1], "g_optimizer")[LR[0]] == 0.0
    assert _group(by_step[2], "g_optimizer")[LR[0]] == pytest.approx(CONFIG.learning_rate)
    for got, want in zip(_group(by_step[1], "generator"), shipped):
        np.testing.assert_array_equal(got, want)
    assert any(not np.array_equal(got, want)
               for got, want in zip(_group(by_step[2], "generator"), shipped))


def test_critic_warmup_without_init_from_is_refused(tmp_path, capsys):
    from beatgan.cli import main

    assert main(["train", "--out", str(tmp_path / "run"), "--critic-warmup", "5"]) == 2
    assert "--critic-warmup only applies with --init-from" in capsys.readouterr().err
    assert not (tmp_path / "run" / "checkpoints").exists()
    with pytest.raises(ValueError, match="critic_warmup only applies with init_from"):
        _train(tmp_path / "api", 1, critic_warmup=2)  # the library refuses it too
    assert not (tmp_path / "api").exists()


def test_a_weights_folder_is_refused_as_a_run_folder_and_left_as_it_was(generator_only, tmp_path,
                                                                        capsys):
    """`--out weights` typed for `--init-from weights` would replace the shipped config.json
    and history: refused before anything is read or written, by the command and the library."""
    from beatgan.cli import main

    (generator_only / "history.csv").write_text("step,d_updates\n1,5\n")
    before = {p.name: p.read_bytes() for p in generator_only.iterdir()}
    code = main(["train", "--out", str(generator_only), "--model-dim", "2", "--batch-size", "2",
                 "--iterations", "1"])
    assert code == 2
    assert f"--init-from {generator_only} --out NEW_FOLDER" in capsys.readouterr().err
    with pytest.raises(ValueError, match="holds trained weights"):
        _train(generator_only, 1)
    assert {p.name: p.read_bytes() for p in generator_only.iterdir()} == before


@pytest.mark.parametrize("warmup", [4, 2])
def test_a_rollback_into_the_warmup_holds_the_generator_again(generator_only, tmp_path,
                                                              monkeypatch, warmup):
    """Under --on-instability rollback: a jump at iteration 5 goes back to the checkpoint at 2,
    inside a 4-iteration warm-up (or at the end of a 2-iteration one, where a rollback once left
    the generator at rate 0 for good); the generator is held to the warm-up's end again and
    trains after it at the halved rate."""
    import warnings

    import _rollback_worker
    from beatgan import training
    from beatgan.model import build_generator

    _rollback_worker.InjectedJump.remaining = 1  # a jump at 5, calm until 3
    monkeypatch.setattr(training, "InstabilityMonitor", _rollback_worker.InjectedJump)
    run = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = _train(run, 8, init_from=generator_only, critic_warmup=warmup,
                        on_instability="rollback", checkpoint_every=2)
    assert [(r["at_step"], r["to_step"]) for r in result.rollbacks] == [(5, 2)]
    shipped = _loaded(CONFIG, generator_only / "generator.weights.h5", build_generator)
    by_step = dict(ckpt.list_checkpoints(run / "checkpoints"))
    held = all(np.array_equal(got, want)  # after the rollback
               for got, want in zip(_group(by_step[4], "generator"), shipped))
    assert held == (warmup >= 4)
    g_rate, d_rate = (_group(by_step[8], name)[LR[0]] for name in ("g_optimizer", "d_optimizer"))
    assert g_rate == d_rate == pytest.approx(CONFIG.learning_rate / 2)
    # The event names the rate the run goes on at, not the held generator's 0.
    assert result.rollbacks[0]["learning_rate"] == pytest.approx(CONFIG.learning_rate / 2)
    assert any(not np.array_equal(got, want)
               for got, want in zip(_group(by_step[8], "generator"), shipped))


def test_a_lengthened_warmup_survives_a_call_without_iterations_and_a_rollback(
        generator_only, tmp_path, monkeypatch):
    """The new end is saved at once, and a rollback to a checkpoint from before the change
    keeps it: afterwards the generator is held to iteration 4 and trains from 5, resumed too."""
    import warnings

    import _rollback_worker
    from beatgan import training
    from beatgan.model import build_generator

    run = tmp_path / "run"
    _train(run, 2, init_from=generator_only, critic_warmup=2)
    _train(run, 2, init_from=generator_only, critic_warmup=4)  # at its target: no iteration
    _, meta = ckpt.load_checkpoint(ckpt.latest_checkpoint(run / "checkpoints"))
    assert meta["step"] == 2 and meta["started_from"]["critic_warmup"] == 4
    _rollback_worker.InjectedJump.remaining = 1
    monkeypatch.setattr(_rollback_worker, "JUMP_AT", 4)
    monkeypatch.setattr(_rollback_worker, "CALM_UNTIL", 1)  # back to 1, saved with warm-up 2
    monkeypatch.setattr(training, "InstabilityMonitor", _rollback_worker.InjectedJump)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = _train(run, 5, on_instability="rollback")
    assert [(r["at_step"], r["to_step"]) for r in result.rollbacks] == [(4, 1)]
    assert result.started_from["critic_warmup"] == 4
    monkeypatch.undo()
    _train(run, 7)  # resumed as it was saved
    shipped = _loaded(CONFIG, generator_only / "generator.weights.h5", build_generator)
    by_step = dict(ckpt.list_checkpoints(run / "checkpoints"))
    for got, want in zip(_group(by_step[4], "generator"), shipped):
        np.testing.assert_array_equal(got, want)
    assert ckpt.load_checkpoint(by_step[7])[1]["started_from"]["critic_warmup"] == 4
    assert _group(by_step[7], "g_optimizer")[LR[0]] > 0
    assert any(not np.array_equal(a, b)
               for a, b in zip(_group(by_step[5], "generator"), _group(by_step[7], "generator")))


def test_a_new_critics_warmup_is_not_judged_for_instability(generator_only, tmp_path,
                                                             monkeypatch):
    """While a new critic learns alone its estimate rises, as a fresh critic's does in the first
    1,000 iterations of a run from scratch: the monitor's allowance covers the whole warm-up."""
    from beatgan import training
    from beatgan.stability import InstabilityMonitor

    allowances = []

    class Recording(InstabilityMonitor):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            allowances.append(self.min_step)

    monkeypatch.setattr(training, "InstabilityMonitor", Recording)
    _train(tmp_path / "long", 2, init_from=generator_only, critic_warmup=3000)
    _train(tmp_path / "short", 2, init_from=generator_only, critic_warmup=2)
    _train(tmp_path / "scratch", 2)
    assert allowances == [3000, InstabilityMonitor.DEFAULT_MIN_STEP,
                          InstabilityMonitor.DEFAULT_MIN_STEP] == [3000, 1000, 1000]
    # What the allowance spares: a fresh critic's rise (tests/test_stability.py) from step 1,010,
    # judged once 10 rows are in.
    rise = [0.02, 0.05, 0.12, 0.24, 0.89, 4.08, 13.06, 26.18, 38.3, 48.59, 55.76, 60.92]
    rows = [{"step": 1000 + 10 * (i + 1), "wasserstein": v} for i, v in enumerate(rise)]
    judged, spared = InstabilityMonitor(), InstabilityMonitor(min_step=3000)
    assert [row["step"] for row in rows if judged.observe(row)] == [1110]
    assert not any(spared.observe(row) for row in rows)


def test_a_folder_that_rolled_back_is_noted_with_the_rate_it_ended_at(generator_only, demo_folder,
                                                                      tmp_path, capsys):
    import dataclasses

    from beatgan.cli import main
    from beatgan.warm_start import learning_rate_note

    assert learning_rate_note(generator_only, CONFIG) is None  # nothing rolled back
    info = json.loads((generator_only / "weights.json").read_text())
    halved = float(np.float32(CONFIG.learning_rate / 2))  # as the optimizer's float32 holds it
    info["rollbacks"] = [{"at_step": 3, "to_step": 2, "learning_rate": halved, "reason": "jump",
                          "wall_s": 1.0, "stopped": False}]
    (generator_only / "weights.json").write_text(json.dumps(info))
    note = learning_rate_note(generator_only, CONFIG)
    assert note == (f"the run that made {generator_only} rolled back once on instability and "
                    f"ended at learning rate {CONFIG.learning_rate / 2:.3g}; this run starts at "
                    f"{CONFIG.learning_rate:.3g} (--learning-rate {CONFIG.learning_rate / 2:.3g} "
                    f"to go on at the rate it ended at)")
    at_the_end = dataclasses.replace(CONFIG, learning_rate=CONFIG.learning_rate / 2)
    assert learning_rate_note(generator_only, at_the_end) is None
    argv = ["train", "--data", str(demo_folder), "--init-from", str(generator_only),
            "--critic-warmup", "0", "--iterations", "1", "--batch-size", "2"]
    assert main(argv + ["--out", str(tmp_path / "a")]) == 0
    assert f"beatgan train: note: {note}" in capsys.readouterr().out
    assert main(argv + ["--out", str(tmp_path / "b"), "--learning-rate",
                        str(CONFIG.learning_rate / 2)]) == 0
    assert "note:" not in capsys.readouterr().out


def _rows(values, first_step):
    return [{"step": first_step + 10 * i, "wasserstein": v} for i, v in enumerate(values)]


def test_the_warmup_verdict_is_a_sign_test_on_the_second_half():
    # 3,000 iterations, a row every 10: the second half is steps 1,510-3,000.
    first_half = _rows([5.0] * 150, 10)
    assert len(_rows([0] * 150, 1510)) == 150 and _rows([0] * 150, 1510)[-1]["step"] == 3000
    blind = first_half + _rows([0.1, -0.1] * 75, 1510)  # above 0 in half the rows
    line = warmup_verdict(blind, 3000)
    assert "has not yet shown" in line and "above 0 in 75 of 150 rows" in line
    assert "p = 0.53" in line  # P(X >= 75), X ~ Binomial(150, 1/2)
    seeing = first_half[:75] + _rows([0.4] * 120 + [-0.2] * 30, 1510)
    line = warmup_verdict(seeing, 3000)
    assert "the new critic tells" in line and "above 0 in 120 of 150 rows" in line
    assert "from the loops in its training batches;" in line  # not a claim about other clips
    assert "median +0.4" in line
    # Rows after the warm-up (the generator already moving) are not the warm-up's.
    assert "above 0 in 75 of 150" in warmup_verdict(blind + _rows([1.0] * 50, 3010), 3000)


def test_the_warmup_verdict_threshold_is_one_percent():
    # 10 rows: all above 0 has p = 1/1024; 9 of 10 has p = 11/1024 = 0.0107, just above 0.01.
    assert "the new critic tells" in warmup_verdict(_rows([1.0] * 10, 110), 200)
    nine = warmup_verdict(_rows([1.0] * 9 + [-1.0], 110), 200)
    assert "has not yet shown" in nine and "p = 0.011" in nine
    few = warmup_verdict(_rows([1.0] * 6, 110), 200)
    assert "6 history rows, too few" in few


def test_the_warmup_verdict_on_the_two_gpu_warm_starts_on_record():
    # Both started a new critic with a 500-iteration warm-up (docs/training-runs/README.md,
    # "what a new critic learns while the generator waits"). Against the float32 weights (the
    # shipped run) it found its signal within 100-200 iterations; against the shipped weights
    # (warm2) it had found none.
    import csv

    root = HERE.parent

    def history(path):
        with open(path, newline="") as f:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]

    shipped_run = warmup_verdict(history(root / "weights" / "history.csv"), 500)
    assert "the new critic tells" in shipped_run and "24 of 25 rows" in shipped_run
    warm2 = history(root / "docs" / "training-runs" / "2026-11-28-h200-bf16-warm2" / "history.csv")
    assert "has not yet shown" in warmup_verdict(warm2, 500)
    assert "11 of 25 rows" in warmup_verdict(warm2, 500)
