"""bench/project_checkerboard.py: the smallest change that equalises a kernel's phase sums."""

import json

import numpy as np
import pytest

from beatgan.upsampling import phase_sum_spread


@pytest.fixture(scope="module")
def projector(bench_script):
    return bench_script("project_checkerboard")


@pytest.fixture(scope="module")
def biased_weights(tmp_path_factory):
    """``tiny_weights`` with every bias set non-zero: a fresh generator's are all 0, so a copy that
    zeroed them would read as one that kept them."""
    from beatgan import Config
    from beatgan.export import export_weights
    from beatgan.model import build_discriminator, build_generator

    config = Config(model_dim=2, batch_size=2)
    generator = build_generator(config)
    rng = np.random.default_rng(7)
    for layer in generator.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.uniform(0.1, 0.5, layer.bias.shape).astype(np.float32))
    return export_weights(generator, build_discriminator(config), config=config,
                          folder=tmp_path_factory.mktemp("biased"))


@pytest.mark.parametrize("taps, stride", [(25, 4), (7, 4), (9, 2)])
def test_equalised_kernel_is_the_nearest_with_equal_phase_sums(projector, rng, taps, stride):
    kernel = rng.standard_normal((taps, 3, 2))
    projected = projector.equalize_phase_sums(kernel, stride)
    assert phase_sum_spread(kernel, stride) > 0.1 and phase_sum_spread(projected, stride) < 1e-12
    # Reference: the orthogonal projection onto {w : phase sum p - phase sum 0 = 0 for all p}.
    phase = np.arange(taps) % stride
    constraints = np.stack([(phase == p).astype(float) - (phase == 0) for p in range(1, stride)])
    to_null = np.eye(taps) - np.linalg.pinv(constraints) @ constraints
    np.testing.assert_allclose(projected, np.einsum("ij,jab->iab", to_null, kernel), atol=1e-12)


def test_a_kernel_without_a_checkerboard_is_left_as_it_is(projector, rng):
    kernel = rng.standard_normal((6, 2, 2))
    kernel[3] = kernel[0] + kernel[2] + kernel[4] - kernel[1] - kernel[5]  # both phases sum alike
    np.testing.assert_allclose(projector.equalize_phase_sums(kernel, 2), kernel, atol=1e-12)


def test_the_script_projects_only_the_chosen_layers_into_a_loadable_copy(projector, biased_weights,
                                                                          tmp_path, capsys):
    from beatgan.generation import load_generator

    rows = projector.main(["--weights", str(biased_weights), "--layers", "1,4", "--out", str(tmp_path / "p")])
    assert [row["layer"] for row in rows] == ["g_upconv1", "g_upconv4"]
    assert all(row["spread_before"] > 0.1 and row["spread_after"] < 1e-6 for row in rows)
    assert all(0 < row["energy_removed"] < 1 for row in rows)
    assert "g_upconv4: checkerboard spread" in capsys.readouterr().out
    before, _ = load_generator(biased_weights)
    after, config = load_generator(tmp_path / "p")
    assert config == load_generator(biased_weights)[1]
    for old, new in zip(before.layers, after.layers):
        for a, b in zip(old.get_weights(), new.get_weights()):
            changed = not np.array_equal(a, b)
            assert changed == (old.name in ("g_upconv1", "g_upconv4") and a.ndim == 3), old.name
    # The projection moves the kernel's taps only: a projected layer keeps its (non-zero) bias.
    for name in ("g_upconv1", "g_upconv4"):
        bias = before.get_layer(name).get_weights()[1]
        assert bias.min() >= 0.1
        np.testing.assert_array_equal(after.get_layer(name).get_weights()[1], bias, err_msg=name)


def test_the_script_refuses_a_layer_the_generator_lacks(projector, tiny_weights, tmp_path):
    with pytest.raises(SystemExit, match="no layer g_upconv9"):
        projector.main(["--weights", str(tiny_weights), "--layers", "9", "--out", str(tmp_path / "p")])


def test_the_copys_weights_json_describes_the_projected_generator(projector, tmp_path):
    import h5py

    from beatgan import Config
    from beatgan.export import export_weights, file_sha256
    from beatgan.model import build_discriminator, build_generator

    config = Config(model_dim=2, batch_size=2)
    original = export_weights(build_generator(config), build_discriminator(config), config=config,
                              folder=tmp_path / "w", dtype="float16",
                              extra_info={"selection": {"metric": "frechet"}})
    projector.main(["--weights", str(original), "--layers", "4", "--out", str(tmp_path / "p")])
    info = json.loads((tmp_path / "p" / "weights.json").read_text())
    stored = set()
    with h5py.File(tmp_path / "p" / "generator.weights.h5") as f:
        f.visititems(lambda _, o: stored.add(str(o.dtype)) if isinstance(o, h5py.Dataset) else None)
    assert info["generator_sha256"] == file_sha256(tmp_path / "p" / "generator.weights.h5")
    assert info["dtype"] in stored and info["dtype"] == "float32"
    assert "selection" not in info
    assert info["projection"] == {"from": str(original), "layers": ["g_upconv4"],
                                  "from_sha256": file_sha256(original / "generator.weights.h5")}


def test_the_energy_removed_is_the_change_over_the_original_kernels_energy(projector, tiny_weights,
                                                                            tmp_path, capsys):
    from beatgan.generation import load_generator

    rows = projector.main(["--weights", str(tiny_weights), "--layers", "2", "--out", str(tmp_path / "p")])
    capsys.readouterr()
    before = np.asarray(load_generator(tiny_weights)[0].get_layer("g_upconv2").get_weights()[0], np.float64)
    after = np.asarray(load_generator(tmp_path / "p")[0].get_layer("g_upconv2").get_weights()[0], np.float64)
    assert rows[0]["energy_removed"] == pytest.approx(np.sum((after - before) ** 2) / np.sum(before ** 2),
                                                      rel=1e-4)
    assert rows[0]["spread_after"] == pytest.approx(phase_sum_spread(after, 4), abs=1e-6)
