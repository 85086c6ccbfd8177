"""bench/bench_quality.py: the figures of the moving average or of the raw weights it averages."""

import json

import numpy as np
import pytest


def test_raw_draws_from_the_raw_weights_and_says_so(bench_script, demo_folder, tmp_path):
    from beatgan import Config
    from beatgan.model import build_generator
    from beatgan.training import export_weights

    config = Config(model_dim=2, batch_size=2)
    # Two generators from different initial weights: the raw one and its "moving average".
    raw, averaged = build_generator(config), build_generator(Config(model_dim=2, batch_size=2, seed=9))
    folder = export_weights(raw, None, config=config, folder=tmp_path / "export",
                            ema_generator=averaged, step=10)
    measure = bench_script("bench_quality").measure
    ema_figures = measure(folder, data=demo_folder, n=4, seed=0)
    raw_figures = measure(folder, data=demo_folder, n=4, seed=0, raw=True)
    assert ema_figures["weights"]["ema"] is True and raw_figures["weights"]["ema"] is False
    assert raw_figures["weights"]["path"].endswith("generator_raw.weights.h5")
    assert not np.isclose(ema_figures["metrics"]["frechet"]["generated"],
                          raw_figures["metrics"]["frechet"]["generated"])
    assert raw_figures["target_bpm"] is None  # the config's: each loop at its own tempo


def _summary(seed, tempo, frechet, ndb, diversity, held_out_frechet=1000.0):
    """bench_quality.measure's result, the figures and goal verdicts filled in."""
    from beatgan.goals import goals_met

    values = {"tempo_consistency": tempo, "frechet": frechet, "ndb_fraction": ndb, "js": 0.01,
              "diversity_ratio": diversity}
    held_out = {"tempo_consistency": 0.75, "frechet": held_out_frechet, "ndb_fraction": 0.0,
                "js": 0.05, "diversity_ratio": 1.0}
    met = goals_met(values, held_out)
    return {"seed": seed, "n_generated": 200,
            "metrics": {key: {"generated": value, "held_out": held_out[key],
                              "meets_goal": met.get(key)} for key, value in values.items()}}


def test_across_seeds_spreads_each_goal_metric_and_counts_the_seeds_that_meet_it(bench_script):
    across_seeds = bench_script("bench_quality").across_seeds
    summaries = [_summary(0, 0.694, 1734.0, 0.125, 0.808), _summary(1, 0.704, 1696.0, 0.0, 0.803),
                 _summary(2, 0.702, 1522.0, 0.375, 0.789)]
    spread = across_seeds(summaries)
    assert spread["seeds"] == [0, 1, 2] and spread["n"] == 200
    assert list(spread["metrics"]) == ["tempo_consistency", "frechet", "ndb_fraction",
                                       "diversity_ratio"]  # JS has no goal
    tempo = spread["metrics"]["tempo_consistency"]
    assert tempo["values"] == [0.694, 0.704, 0.702] and tempo["met_at"] == 2
    assert tempo["mean"] == np.mean([0.694, 0.704, 0.702])
    assert tempo["sd"] == np.std([0.694, 0.704, 0.702], ddof=1)
    assert (tempo["min"], tempo["max"]) == (0.694, 0.704)
    assert spread["metrics"]["frechet"]["met_at"] == 3
    assert spread["metrics"]["ndb_fraction"]["met_at"] == 2
    assert spread["metrics"]["diversity_ratio"]["met_at"] == 2
    with pytest.raises(ValueError, match="each seed once"):
        across_seeds(summaries[:1] * 2)


def test_a_target_bpm_other_than_the_weights_bpm_is_refused(bench_script, tiny_weights,
                                                            demo_folder):
    # Scored at 120 bpm, beats generated at 125 miss the grid: tempo 0.445 instead of 0.728.
    measure = bench_script("bench_quality").measure
    with pytest.raises(SystemExit, match=r"--target-bpm 120 differs from the 125 bpm"):
        measure(tiny_weights, data=demo_folder, n=2, seed=0, target_bpm=120.0)


def test_the_docstrings_tempo_range_is_the_shipped_weights(bench_script):
    import json
    import re
    from pathlib import Path

    doc = bench_script("bench_quality").__doc__
    low, high = map(float, re.search(r"tempo consistency reads (\S+)-(\S+)\s+over seeds 0-5",
                                     doc).groups())
    quality = Path(__file__).resolve().parents[1] / "weights" / "quality.json"
    values = json.loads(quality.read_text())["across_seeds"]["metrics"]["tempo_consistency"]
    assert (low, high) == (round(min(values["values"]), 3), round(max(values["values"]), 3))


def test_summarise_takes_each_beats_best_score_and_the_markdown_says_the_verdicts(bench_script):
    """Five beats whose best scores are 0.4, 0.1, 0.3, 0.2, 0.5 (each with a worse second
    neighbour): percentiles by hand (p10 = 0.1 + 0.4 x 0.1 = 0.14); Frechet 3000 against a
    held-out 900 misses its goal (<= 2700), the other three meet theirs."""
    script = bench_script("bench_quality")
    best = [0.4, 0.1, 0.3, 0.2, 0.5]
    score = {"n_generated": 5, "n_train": 434, "threshold": 0.1, "fraction_similar": 0.2,
             "fraction_similar_shift_tolerant": None,
             "files": [{"nearest": [{"score": s}, {"score": s + 0.5}]} for s in best],
             "metrics": {"n_reference": 40, "metrics": {
                 "tempo_consistency": 0.72, "frechet": 3000.0, "ndb_fraction": 0.125, "js": 0.02,
                 "diversity_ratio": 0.9}, "reference_points": {"held_out": {
                     "tempo_consistency": 0.75, "frechet": 900.0, "ndb_fraction": 0.0, "js": 0.01,
                     "diversity_ratio": 1.0}}}}
    summary = script.summarise(score)
    assert summary["nearest_score_percentiles"] == pytest.approx(
        {"p0": 0.1, "p10": 0.14, "p25": 0.2, "p50": 0.3, "p75": 0.4, "p90": 0.46, "p100": 0.5})
    assert {k: row["meets_goal"] for k, row in summary["metrics"].items()} == {
        "tempo_consistency": True, "frechet": False, "ndb_fraction": True, "js": None,
        "diversity_ratio": True}
    assert (summary["n_reference"], summary["metrics"]["frechet"]["held_out"]) == (40, 900.0)
    card = script.markdown(summary).splitlines()
    assert card[2:6] == ["| tempo consistency | 0.720 | 0.750 | >= 0.70 (met) |",
                         "| Frechet distance | 3000.000 | 900.000 | <= 3x held-out (**not met**) |",
                         "| NDB/k | 0.125 | 0.000 | <= 0.25 (met) |",
                         "| diversity ratio | 0.900 | 1.000 | 0.8-1.2 (met) |"]
    assert card[-1].endswith("0.100, 0.140, 0.200, 0.300, 0.400, 0.460, 0.500.")


def test_measure_draws_the_beats_of_its_seed_and_records_the_weights_tempo(
        bench_script, tiny_weights, demo_folder, tmp_path):
    """Weights trained on loops retimed to 125 bpm, measured at seed 3: the beats are the ones
    ``beatgan generate --seed 3`` writes, and the summary says the loops were brought to 125."""
    import dataclasses
    import shutil

    from beatgan import Config
    from beatgan.generation import read_sidecar, sample_latents

    retimed = tmp_path / "retimed"
    shutil.copytree(tiny_weights, retimed)
    dataclasses.replace(Config.load(retimed), target_bpm=125.0).save(retimed)
    figures = bench_script("bench_quality").measure(retimed, data=demo_folder, n=4, seed=3,
                                                    out=tmp_path / "beats")
    latents, meta = read_sidecar(tmp_path / "beats")
    assert figures["seed"] == 3 and meta["seed"] == 3
    np.testing.assert_array_equal(latents, sample_latents(4, latent_dim=Config().latent_dim,
                                                          seed=3))
    assert figures["n_generated"] == 4 and figures["target_bpm"] == 125.0


def test_seeds_measures_each_seed_once_and_keeps_the_first_seeds_figures(bench_script, tmp_path,
                                                                        monkeypatch, capsys):
    """--seed 4 --seeds 3: seeds 4, 5, 6 measured once each; the figures are seed 4's, and
    across_seeds spreads all three (tempo 0.694, 0.704, 0.702: met at 2)."""
    script = bench_script("bench_quality")
    tempi = {4: 0.694, 5: 0.704, 6: 0.702}
    measured = []

    def measure(weights, *, data, n, seed, out=None, target_bpm=None, raw=False):
        measured.append((seed, n, target_bpm, raw))
        summary = _summary(seed, tempi[seed], 1700.0, 0.125, 0.9)
        summary.update(n_generated=n, threshold=0.1, fraction_similar=0.0,
                       fraction_similar_shift_tolerant=None,
                       nearest_score_percentiles={"p0": 0.5, "p100": 0.9},
                       weights={"path": "w/generator.weights.h5", "sha256": "ab" * 32, "step": 9})
        for row in summary["metrics"].values():
            row["goal"] = ""
        return summary

    monkeypatch.setattr(script, "measure", measure)
    script.main(["--weights", "w", "--n", "8", "--seed", "4", "--seeds", "3", "--raw",
                 "--target-bpm", "125", "--json", str(tmp_path / "q.json")])
    assert measured == [(4, 8, 125.0, True), (5, 8, 125.0, True), (6, 8, 125.0, True)]
    written = json.loads((tmp_path / "q.json").read_text())
    assert written["seed"] == 4 and written["metrics"]["tempo_consistency"]["generated"] == 0.694
    spread = written["across_seeds"]
    assert spread["seeds"] == [4, 5, 6] and spread["n"] == 8
    assert spread["metrics"]["tempo_consistency"]["values"] == [0.694, 0.704, 0.702]
    assert spread["metrics"]["tempo_consistency"]["met_at"] == 2
    assert "over 3 seeds (4-6), 8 beats each:" in capsys.readouterr().out
