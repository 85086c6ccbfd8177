"""Checkpoint files (atomic, pruned, validated)."""

import numpy as np
import pytest

from beatgan import checkpoint as ckpt
from beatgan.config import Config


def test_save_load_roundtrip_and_keep_last_k(tmp_path, rng):
    arrays = {"a/0000": rng.normal(size=(3, 4)).astype("float32"), "b": np.arange(5)}
    for step in (1, 2, 3, 4):
        ckpt.save_checkpoint(tmp_path, step=step, arrays=arrays, meta={"note": step}, keep=2)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [3, 4]
    loaded, meta = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path))
    assert meta == {"note": 4, "step": 4}
    for key, value in arrays.items():
        np.testing.assert_array_equal(loaded[key], value)
    assert not list(tmp_path.glob(".tmp-*"))


def test_stale_temporary_files_are_ignored_and_cleaned(tmp_path):
    (tmp_path / ".tmp-99999-ckpt-00000009.npz").write_bytes(b"half a file")  # a killed writer
    ckpt.save_checkpoint(tmp_path, step=1, arrays={"x": np.zeros(2)}, meta={})
    assert ckpt.latest_checkpoint(tmp_path).name == "ckpt-00000001.npz"
    assert not list(tmp_path.glob(".tmp-*"))


def test_torn_file_is_reported_not_loaded(tmp_path):
    path = ckpt.save_checkpoint(tmp_path, step=1, arrays={"x": np.arange(1000.0)}, meta={})
    payload = path.read_bytes()
    path.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(ValueError, match="unreadable"):
        ckpt.load_checkpoint(path)


def test_missing_directory_has_no_checkpoint(tmp_path):
    assert ckpt.latest_checkpoint(tmp_path / "nope") is None


def test_model_state_roundtrip_includes_optimizer_and_seed_state(tmp_path):
    import keras

    from beatgan.model import build_discriminator, build_generator
    from beatgan.training import build_optimizer

    def parts(seed):
        config = Config(model_dim=2, seed=seed)
        g, d = build_generator(config), build_discriminator(config)
        g_opt, d_opt = build_optimizer(config, name="g"), build_optimizer(config, name="d")
        g_opt.build(g.trainable_variables)
        d_opt.build(d.trainable_variables)
        return g, d, g_opt, d_opt

    def numpy(variables):
        return [keras.ops.convert_to_numpy(v) for v in variables]

    source = parts(1)
    source[2].iterations.assign(5)
    source[3].iterations.assign(7)
    seed_states = [v for v in source[1].variables if "seed_generator" in v.path]
    assert seed_states, "phase-shuffle seed states should be model variables"
    arrays = ckpt.collect_state(*source)
    target = parts(2)
    # Before the restore the two differ in every part: the comparison below can tell.
    for a, b in zip(source, target):
        assert any(not np.array_equal(x, y) for x, y in zip(numpy(a.variables), numpy(b.variables)))
    ckpt.restore_state(arrays, *target)
    for a, b in zip(source, target):  # generator, critic, and both optimizers
        assert len(a.variables) == len(b.variables) > 0
        for x, y in zip(numpy(a.variables), numpy(b.variables)):
            np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="another config"):
        config = Config(model_dim=2, slice_len=32768)
        other = (build_generator(config), build_discriminator(config)) + target[2:]
        ckpt.restore_state(arrays, *other)


# --- BackgroundWriter ---------------------------------------------------------------------------
def test_the_background_writer_returns_before_the_write_ends_and_finishes_it(tmp_path):
    import threading

    writer = ckpt.BackgroundWriter()
    release, done = threading.Event(), []
    path = writer.submit(tmp_path, step=7, arrays={"x": np.arange(4.0)}, meta={"a": 1},
                         then=lambda: (release.wait(30), done.append(True)))
    assert path == tmp_path / "ckpt-00000007.npz"
    assert done == []  # submit did not wait for the write and its follow-up
    release.set()
    writer.wait()
    assert done == [True] and writer.last_written == path
    arrays, meta = ckpt.load_checkpoint(path)
    assert meta == {"a": 1, "step": 7}
    np.testing.assert_array_equal(arrays["x"], np.arange(4.0))


def test_a_failed_background_write_is_raised_by_the_next_call_and_keeps_the_last(tmp_path):
    writer = ckpt.BackgroundWriter()
    good = writer.submit(tmp_path, step=1, arrays={"x": np.zeros(2)}, meta={})
    writer.wait()
    in_the_way = tmp_path / "file"
    in_the_way.write_text("not a folder")
    writer.submit(in_the_way, step=2, arrays={"x": np.zeros(2)}, meta={})
    writer.join()  # finished, error kept
    assert writer.last_written == good
    with pytest.raises(OSError):
        writer.submit(tmp_path, step=3, arrays={"x": np.zeros(2)}, meta={})
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [1]  # step 3 was not started
    writer.wait()  # the error was raised once
    writer.submit(tmp_path, step=3, arrays={"x": np.zeros(2)}, meta={})
    writer.wait()
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [1, 3]


def test_pruning_spares_the_rollback_target_once_even_when_it_is_pinned(tmp_path):
    def save(step, **kwargs):
        ckpt.save_checkpoint(tmp_path, step=step, arrays={"a": np.zeros(1)}, meta={}, **kwargs)

    for step in (100, 200, 300):
        save(step, keep=3)
    ckpt.pin_checkpoint(ckpt.checkpoint_path(tmp_path, 300), reason="the last stable one")
    for step in (400, 500, 600, 700):
        save(step, keep=2, spare=350)
    # 300, the newest at or before 350, is pinned: nothing older is kept for the rollback.
    assert [step for step, _ in ckpt.list_checkpoints(tmp_path)] == [300, 600, 700]
    for step in (800, 900):
        save(step, keep=2, spare=650)  # the target 600, unpinned, is spared
    assert [step for step, _ in ckpt.list_checkpoints(tmp_path)] == [300, 600, 800, 900]


def test_a_rollback_target_at_exactly_the_spare_step_is_kept(tmp_path):
    # "The newest checkpoint at or before spare": a checkpoint at step == spare is that target.
    for step in (100, 200, 300, 400):
        ckpt.save_checkpoint(tmp_path, step=step, arrays={"a": np.zeros(1)}, meta={}, keep=2,
                             spare=200)
    assert [step for step, _ in ckpt.list_checkpoints(tmp_path)] == [200, 300, 400]
