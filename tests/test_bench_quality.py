"""bench/bench_quality.py: the figures of the moving average or of the raw weights it averages."""

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
