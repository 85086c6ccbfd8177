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
