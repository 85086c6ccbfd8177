"""bench/frechet_set_size.py: it scores fit()'s own held-out clips, in disjoint subsets."""

import pytest


@pytest.fixture(scope="module")
def bench(bench_script):
    return bench_script("frechet_set_size")


def test_subsets_of_a_d2_model_against_16_loops(bench, tiny_weights, tmp_path, capsys):
    from beatgan.synth import write_demo_pack

    write_demo_pack(tmp_path / "loops", n=16, seed=3)
    result = bench.main(["--weights", str(tiny_weights), "--data", str(tmp_path / "loops"),
                         "--held-out", "8", "--sizes", "4", "8"])
    # main() checks that the whole held-out set scores fit()'s held-out point, else it exits.
    assert result["held_out"] == 8
    small, whole = result["rows"]
    assert (small["size"], small["subsets"], whole["size"], whole["subsets"]) == (4, 2, 8, 1)
    assert small["held_out_min"] <= small["held_out_mean"] <= small["held_out_max"]
    assert whole["held_out_min"] == whole["held_out_max"] > 0
    assert whole["ratio"] == pytest.approx(whole["generated_mean"] / whole["held_out_mean"])
    assert "fit on the other 8" in capsys.readouterr().out


def test_sizes_outside_the_held_out_set_are_refused(bench, tiny_weights, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--weights", str(tiny_weights), "--held-out", "8", "--sizes", "40"])
    assert "each of --sizes must lie in 2..8" in capsys.readouterr().err


def test_sizes_beyond_what_the_pack_can_hold_out_are_refused(bench, tiny_weights, tmp_path,
                                                              capsys):
    from beatgan.synth import write_demo_pack

    # 16 loops hold out at most 8 (half), so a size of 12 has no subset to score.
    write_demo_pack(tmp_path / "loops", n=16, seed=3)
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--weights", str(tiny_weights), "--data", str(tmp_path / "loops"),
                    "--held-out", "12", "--sizes", "4", "12"])
    assert "holds out only 8 loops" in str(exit_info.value)
    assert "--held-out 12" in str(exit_info.value) and "--sizes" in str(exit_info.value)


def test_the_generated_column_scores_the_beats_of_the_seed(bench, tiny_weights, tmp_path, capsys):
    import numpy as np

    from beatgan.generation import generate, load_generator
    from beatgan.metrics import frechet_distance_gaussians, gaussian_stats
    from beatgan.synth import write_demo_pack
    from beatgan.workflows import load_training_loops, metrics_reference

    write_demo_pack(tmp_path / "loops", n=16, seed=3)
    result = bench.main(["--weights", str(tiny_weights), "--data", str(tmp_path / "loops"),
                         "--held-out", "8", "--sizes", "4", "8", "--seed", "5"])
    capsys.readouterr()
    generator, config = load_generator(tiny_weights)
    loops = load_training_loops(tmp_path / "loops", config)
    reference = metrics_reference(loops, config=config, seed=config.seed, n_held_out=8)
    beats, _ = generate(generator, n=8, seed=5, config=config)
    z = reference.project(beats[:, :config.score_len])

    def frechet(rows):
        return frechet_distance_gaussians(*gaussian_stats(rows), reference.mean, reference.cov)

    small, whole = result["rows"]
    assert whole["generated_mean"] == pytest.approx(frechet(z), rel=1e-6)
    assert small["generated_mean"] == pytest.approx((frechet(z[:4]) + frechet(z[4:])) / 2, rel=1e-6)
    assert whole["held_out_mean"] == pytest.approx(reference.points["held_out"]["frechet"], rel=1e-6)
    assert whole["generated_mean"] != pytest.approx(whole["held_out_mean"], rel=1e-3)
