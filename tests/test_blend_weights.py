"""bench/blend_weights.py: a generator on the line through two weights folders."""

import dataclasses
import json
import shutil

import numpy as np
import pytest


def _weights(folder):
    from beatgan.config import Config
    from beatgan.model import build_generator

    model = build_generator(Config.load(folder))
    model.load_weights(str(folder / "generator.weights.h5"))
    return [np.asarray(w, np.float64) for w in model.weights]


@pytest.fixture
def two_folders(tiny_weights, tmp_path):
    """The tiny export, and a copy whose generator was drawn from another seed."""
    from beatgan.config import Config
    from beatgan.model import build_generator

    other = tmp_path / "other"
    shutil.copytree(tiny_weights, other)
    reseeded = dataclasses.replace(Config.load(other), seed=7)
    build_generator(reseeded).save_weights(str(other / "generator.weights.h5"))
    return tiny_weights, other


def test_the_blend_is_the_weighted_sum_of_both_and_its_ends_are_the_folders(
        bench_script, two_folders, tmp_path):
    script = bench_script("blend_weights")
    a, b = two_folders
    wa, wb = _weights(a), _weights(b)
    assert any(not np.array_equal(x, y) for x, y in zip(wa, wb))
    for t in (0.0, 0.3, -0.25):
        out = tmp_path / f"t{t}"
        script.main([str(a), str(b), "--t", str(t), "--out", str(out)])
        for got, x, y in zip(_weights(out), wa, wb):  # float32 storage: rounding only
            np.testing.assert_allclose(got, (1 - t) * x + t * y, rtol=1e-6, atol=1e-7)
        info = json.loads((out / "weights.json").read_text())
        assert info["blend"]["t"] == t and info["blend"]["b"] == str(b)
        from beatgan.export import file_sha256

        assert info["generator_sha256"] == file_sha256(out / "generator.weights.h5")
        assert info["blend"]["a_sha256"] == file_sha256(a / "generator.weights.h5")
    # t = 0 is A itself, to the bit.
    assert (tmp_path / "t0.0" / "generator.weights.h5").read_bytes() == (
        a / "generator.weights.h5").read_bytes()


def test_other_shapes_and_an_existing_folder_are_refused_with_nothing_written(
        bench_script, two_folders, tmp_path, capsys):
    from beatgan.config import Config

    script = bench_script("blend_weights")
    a, b = two_folders
    wider = tmp_path / "wider"
    shutil.copytree(b, wider)
    dataclasses.replace(Config.load(wider), model_dim=4).save(wider)
    with pytest.raises(SystemExit):
        script.main([str(a), str(wider), "--t", "0.5", "--out", str(tmp_path / "x")])
    assert "model_dim 2 against 4" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    with pytest.raises(SystemExit):
        script.main([str(a), str(b), "--t", "0.5", "--out", str(b)])
    assert "exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # NaN weights would be written, and "t": NaN recorded
        script.main([str(a), str(b), "--t", "nan", "--out", str(tmp_path / "y")])
    assert "t must be a finite number" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


def test_the_record_names_both_generators_and_the_info_is_as_without_selection(
        bench_script, two_folders, tmp_path):
    from beatgan.export import file_sha256

    script = bench_script("blend_weights")
    tiny, b = two_folders
    a = tmp_path / "a"
    shutil.copytree(tiny, a)
    info_a = json.loads((a / "weights.json").read_text())
    (a / "weights.json").write_text(json.dumps(dict(info_a, step=40,
                                                    selection={"metric": "frechet"})))
    (b / "weights.json").write_text(json.dumps(dict(info_a, step=99)))
    record = script.blend(a, b, 0.5, tmp_path / "out")
    assert record == {"a": str(a), "a_sha256": file_sha256(a / "generator.weights.h5"),
                      "b": str(b), "b_sha256": file_sha256(b / "generator.weights.h5"), "t": 0.5}
    assert record["a_sha256"] != record["b_sha256"]
    info = json.loads((tmp_path / "out" / "weights.json").read_text())
    assert info == dict(info_a, step=40, blend=record,  # A's, less how select chose A
                        generator_sha256=file_sha256(tmp_path / "out" / "generator.weights.h5"))
