"""bench/compare_weights.py: two weights folders at the same seeds, paired differences."""

import dataclasses
import json
import math
import shutil

import numpy as np
import pytest


def _summary(seed, tempo, frechet, *, similar=0.5):
    """The parts of a bench_quality summary that compare() reads."""
    def row(value, meets):
        return {"generated": value, "meets_goal": meets}

    return {"seed": seed, "n_generated": 200, "fraction_similar": similar,
            "metrics": {"tempo_consistency": row(tempo, tempo >= 0.70),
                        "frechet": row(frechet, frechet <= 2882),
                        "ndb_fraction": row(0.125, True),
                        "diversity_ratio": row(0.8, True)}}


def test_the_paired_difference_and_its_standard_error_by_hand(bench_script):
    compare = bench_script("compare_weights").compare
    a = [_summary(0, 0.69, 3000.0), _summary(1, 0.70, 2900.0), _summary(2, 0.71, 3100.0)]
    b = [_summary(0, 0.70, 2000.0), _summary(1, 0.72, 1900.0), _summary(2, 0.71, 2100.0)]
    result = compare(a, b)
    tempo = result["figures"]["tempo_consistency"]
    # differences 0.01, 0.02, 0.00: mean 0.01, sample sd 0.01, standard error 0.01 / sqrt(3)
    assert tempo["difference"] == pytest.approx(0.01)
    assert tempo["standard_error"] == pytest.approx(0.01 / math.sqrt(3))
    assert tempo["in_standard_errors"] == pytest.approx(math.sqrt(3))
    assert tempo["a_mean"] == pytest.approx(0.70) and tempo["b_sd"] == pytest.approx(
        np.std([0.70, 0.72, 0.71], ddof=1))
    assert (tempo["a_meets"], tempo["b_meets"]) == (2, 3)  # 0.69 misses the goal
    frechet = result["figures"]["frechet"]
    # every seed 1,000 lower: no spread in the difference, so it is infinitely many errors off
    assert frechet["difference"] == -1000.0 and frechet["in_standard_errors"] == -math.inf
    assert (frechet["a_meets"], frechet["b_meets"]) == (0, 3)
    assert result["figures"]["fraction_similar"]["a_meets"] is None  # no goal, only reported
    assert result["seeds"] == [0, 1, 2]
    # A diverged draw (NaN) at one seed: the count of errors is unknown, not infinite.
    broken = [_summary(0, 0.70, 2000.0), _summary(1, 0.72, math.nan), _summary(2, 0.71, 2100.0)]
    assert math.isnan(compare(a, broken)["figures"]["frechet"]["in_standard_errors"])
    safe = bench_script("compare_weights")._json_safe(compare(a, broken))
    assert safe["figures"]["frechet"]["in_standard_errors"] is None
    assert json.loads(json.dumps(safe, allow_nan=False))["figures"]["tempo_consistency"]
    with pytest.raises(ValueError, match="same seeds"):
        compare(a, b[::-1])
    with pytest.raises(ValueError, match="at least 2 seeds"):
        compare(a[:1], b[:1])


def test_a_folder_against_itself_differs_by_nothing_and_another_does(
        bench_script, tiny_weights, demo_folder, tmp_path, capsys):
    """End to end on a d = 2 model and two loops: the same latents give the same beats."""
    from beatgan.config import Config
    from beatgan.model import build_generator

    script = bench_script("compare_weights")
    script.main([str(tiny_weights), str(tiny_weights), "--data", str(demo_folder), "--n", "4",
                 "--seeds", "2", "--json", str(tmp_path / "same.json")])
    same = json.loads((tmp_path / "same.json").read_text())
    assert same["seeds"] == [0, 1] and same["n"] == 4
    for key, row in same["figures"].items():
        assert row["a"] == row["b"] and row["difference"] == 0.0, key
        assert row["in_standard_errors"] == 0.0
    other = tmp_path / "other"
    shutil.copytree(tiny_weights, other)
    # Other weights: a config's seed fixes the initial ones, so another seed draws others.
    reseeded = dataclasses.replace(Config.load(other), seed=7)
    build_generator(reseeded).save_weights(str(other / "generator.weights.h5"))
    script.main([str(tiny_weights), str(other), "--data", str(demo_folder), "--n", "4",
                 "--seeds", "2", "--json", str(tmp_path / "other.json")])
    changed = json.loads((tmp_path / "other.json").read_text())
    assert changed["figures"]["frechet"]["difference"] != 0.0
    out = capsys.readouterr().out
    assert "B - A" in out and f"B = {other}" in out


def test_a_folder_without_weights_is_refused_before_any_work(bench_script, tiny_weights,
                                                              tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench_script("compare_weights").main([str(tiny_weights), str(tmp_path)])
    assert f"{tmp_path} holds no generator.weights.h5" in capsys.readouterr().err


def test_folders_that_load_the_loops_differently_need_one_target_tempo(
        bench_script, tiny_weights, tmp_path, capsys):
    """Scored each against its own loops, two folders would not be compared on the same reference."""
    from beatgan.config import Config
    from beatgan.synth import write_demo_pack

    loops = tmp_path / "loops"
    bpms = sorted(float(path.name.split("_")[2]) for path in write_demo_pack(loops, n=4, seed=0))
    assert bpms == [124, 124, 125, 125]  # retiming changes half of them

    script = bench_script("compare_weights")
    retimed = tmp_path / "retimed"
    shutil.copytree(tiny_weights, retimed)
    dataclasses.replace(Config.load(retimed), target_bpm=125.0).save(retimed)
    with pytest.raises(SystemExit):
        script.main([str(tiny_weights), str(retimed), "--data", str(loops)])
    assert "target_bpm None against 125.0" in capsys.readouterr().err
    slower = tmp_path / "slower"
    shutil.copytree(tiny_weights, slower)
    dataclasses.replace(Config.load(slower), bpm=120.0).save(slower)
    with pytest.raises(SystemExit):  # segments cut at another tempo: no flag brings them together
        script.main([str(tiny_weights), str(slower), "--data", str(loops), "--target-bpm", "125"])
    err = capsys.readouterr().err
    assert "bpm 125.0 against 120.0" in err and "measure each with bench_quality.py" in err
    reseeded = tmp_path / "reseeded"  # the same generator, another seed: another reference
    shutil.copytree(tiny_weights, reseeded)
    dataclasses.replace(Config.load(reseeded), seed=5).save(reseeded)
    with pytest.raises(SystemExit):
        script.main([str(tiny_weights), str(reseeded), "--data", str(loops)])
    assert "seed 0 against 5" in capsys.readouterr().err
    script.main([str(tiny_weights), str(retimed), "--data", str(loops), "--n", "4",
                 "--seeds", "2", "--target-bpm", "125", "--json", str(tmp_path / "cmp.json")])
    result = json.loads((tmp_path / "cmp.json").read_text())
    assert result["target_bpm"] == 125.0
    for key, row in result["figures"].items():  # the same generator against the same loops
        assert row["a"] == row["b"], key


def test_the_seeds_and_the_target_tempo_reach_every_measurement(bench_script, tiny_weights,
                                                                tmp_path, monkeypatch, capsys):
    """--seed 5 --seeds 3 measures seeds 5, 6, 7 of both folders, each with --target-bpm; the
    table and the JSON are those of the figures measured: tempo A 0.705, 0.706, 0.707 (sd 0.001),
    B 0.713, 0.716, 0.719 (sd 0.003); differences 0.008, 0.010, 0.012: mean 0.010, sd 0.002,
    standard error 0.002 / sqrt(3), so 5 sqrt(3) = 8.66 errors."""
    script = bench_script("compare_weights")
    other = tmp_path / "other"
    shutil.copytree(tiny_weights, other)
    calls = []

    def measure(folder, *, data, n, seed, target_bpm):
        calls.append((folder, data, n, seed, target_bpm))
        tempo = 0.70 + 0.001 * seed + (0.01 + 0.002 * (seed - 6)) * (folder == str(other))
        summary = _summary(seed, tempo, 2000.0)
        return {**summary, "n_generated": n}

    monkeypatch.setattr(script.bench_quality, "measure", measure)
    script.main([str(tiny_weights), str(other), "--data", "loops", "--n", "8", "--seed", "5",
                 "--seeds", "3", "--target-bpm", "125", "--json", str(tmp_path / "cmp.json")])
    a, b = str(tiny_weights), str(other)
    assert calls == [(folder, "loops", 8, seed, 125.0) for seed in (5, 6, 7) for folder in (a, b)]
    result = json.loads((tmp_path / "cmp.json").read_text())
    assert result["seeds"] == [5, 6, 7] and result["n"] == 8 and result["target_bpm"] == 125.0
    tempo = result["figures"]["tempo_consistency"]
    assert tempo["a"] == pytest.approx([0.705, 0.706, 0.707])
    assert tempo["b"] == pytest.approx([0.713, 0.716, 0.719])
    assert (tempo["a_sd"], tempo["b_sd"]) == (pytest.approx(0.001), pytest.approx(0.003))
    assert tempo["difference"] == pytest.approx(0.01)
    assert tempo["standard_error"] == pytest.approx(0.002 / math.sqrt(3))
    assert tempo["in_standard_errors"] == pytest.approx(5 * math.sqrt(3))
    out = capsys.readouterr().out
    assert "8 beats at each of seeds 5-7" in out
    assert ("tempo_consistency      0.706   0.001     0.716   0.003    +0.010    +8.7  3/3, 3/3"
            in out)
