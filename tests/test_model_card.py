"""docs/make_model_card.py: weights/README.md written from a weights folder's own files.

On a d = 2 stand-in folder with a synthetic quality.json and history: the figures land in their
table cells, each goal of issue 13 is judged right, the checksum line passes
``export.verify_model_card``, and a missing or foreign input is an error that writes nothing.
One test feeds the card what bench/bench_quality.py --json really writes.
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from beatgan import export

ROOT = Path(__file__).resolve().parents[1]
TRAINED_ON = {"backend": "jax", "device": "NVIDIA H200", "devices": 1, "precision": "float32"}
SELECTION = {"metric": "frechet", "direction": "lower", "value": 4321.5, "n": 200, "seed": 0,
             "checkpoint": "ckpt-00009000.npz", "run": "runs/shipped", "candidates": 12}
OLD_CARD = "# weights/\n\nthe card before\n"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # the card's dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def card_script():
    return _load(ROOT / "docs" / "make_model_card.py")


def _quality(sha256: str) -> dict:
    """bench_quality's JSON: tempo and NDB/k meet their goals, Frechet and diversity do not."""
    def row(generated, held_out):
        return {"generated": generated, "held_out": held_out, "goal": "", "meets_goal": None}

    return {"n_generated": 200, "n_train": 434, "n_reference": 40, "threshold": 0.1,
            "fraction_similar": 0.015, "fraction_similar_shift_tolerant": 0.02,
            "nearest_score_percentiles": {"p0": 0.081, "p10": 0.21, "p25": 0.33, "p50": 0.45,
                                          "p75": 0.58, "p90": 0.71, "p100": 0.93},
            "metrics": {"tempo_consistency": row(0.7312, 0.746), "frechet": row(3120.4, 960.6),
                        "ndb_fraction": row(0.125, 0.0), "js": row(0.1, 0.05),
                        "diversity_ratio": row(1.31, 1.015)},
            "weights": {"path": "weights/generator.weights.h5", "sha256": sha256, "step": 9000,
                        "ema": True, "dtype": "float16", "cpu_fallback": False},
            "seed": 0, "data": "ULTIMATE_DRUM_LOOPS"}


@pytest.fixture
def folder(tmp_path):
    """A d = 2 weights folder as the ship steps leave it, before its card is written."""
    from beatgan.config import Config
    from beatgan.model import build_generator
    from beatgan.training import export_weights, write_history

    config = Config(model_dim=2, drift_weight=0.001, seed=5)
    generator = build_generator(config)
    out = tmp_path / "weights"
    export_weights(generator, None, config=config, folder=out,
                   ema_generator=build_generator(config), step=9000, dtype="float16",
                   extra_info={"selection": SELECTION, "trained_on": TRAINED_ON})
    write_history(out, [{"step": s, "d_updates": 5 * s, "d_loss": -1.0, "g_loss": 0.5, "gp": 0.2,
                         "wasserstein": 3.0, "wall_s": s * 0.05} for s in range(100, 9601, 100)])
    sha = export.file_sha256(out / export.GENERATOR_WEIGHTS)
    (out / "quality.json").write_text(json.dumps(_quality(sha)))
    (out / "README.md").write_text(OLD_CARD)
    return out


def test_the_card_states_the_figures_the_verdicts_and_the_checksum(card_script, folder, capsys):
    assert card_script.main(["--weights", str(folder), "--reproduce", "beatgan train --out r",
                             "--reproduce", "beatgan select --run r",
                             "--notes", "a short run"]) == 0
    assert "2 of 4 goals met" in capsys.readouterr().out
    card = (folder / "README.md").read_text()
    rows = {line.split(" | ")[0].strip("| "): line for line in card.splitlines()
            if line.startswith("| ")}
    assert rows["tempo consistency"] == "| tempo consistency | 0.731 | 0.746 | >= 0.70 | yes |"
    assert rows["Frechet distance"] == \
        "| Frechet distance | 3,120 | 961 | <= 3x held-out | **no** |"
    assert rows["NDB/k"] == "| NDB/k | 0.125 | 0.000 | <= 0.25 | yes |"
    assert rows["diversity ratio"] == "| diversity ratio | 1.310 | 1.015 | 0.8-1.2 | **no** |"
    assert "| 0.015 (shift-tolerant 0.020) |" in rows["fraction similar (best score <= 0.1)"]
    assert ("**Goal not met**: 2 of 4 figures fall short of issue 13's goal: Frechet distance "
            "3,120 (goal <= 3x held-out); diversity ratio 1.310 (goal 0.8-1.2).") in card
    assert "0.081, 0.210, 0.330, 0.450, 0.580, 0.710, 0.930." in card
    assert "The held-out points come from 40 loops, the generated figures from 200 beats." in card
    # The other sections, from config.json, weights.json and the history.
    assert "`drift_weight` 0.001 (the `seed` preset: 0.0" in card
    assert "`model_dim` 2 (the `seed` preset: 64" in card and "`seed` 5" in card
    assert "Why: a short run" in card
    assert "9,600 iterations (48,000 D updates, 5 per iteration) in 8.0 minutes" in card
    assert "100 D updates/s" in card
    assert ("iteration 9,000, chosen by `beatgan select` from 12 checkpoints by Frechet distance "
            "(lower is better; 4322 over 200 beats, seed 0; ckpt-00009000.npz)") in card
    assert "NVIDIA H200, Keras backend jax. Trained in float32; `generator.weights.h5` stores " \
           "float16." in card
    assert "On, decay 0.999" in card
    assert "    beatgan train --out r\n    beatgan select --run r\n" in card
    assert "| `quality.json` |" in card and "| `history.csv` |" in card
    assert "synthesized loops only" in card
    # A card for trained weights: nothing of the empty folder's wording.
    assert "State now" not in card and "not trained yet" not in card.lower()
    assert export.verify_model_card(folder) == export.file_sha256(folder / export.GENERATOR_WEIGHTS)


def test_all_goals_met_is_said_and_card_flag_wins(card_script, folder):
    quality = json.loads((folder / "quality.json").read_text())
    quality["metrics"]["frechet"]["generated"] = 2000.0
    quality["metrics"]["diversity_ratio"]["generated"] = 0.95
    quality["n_reference"] = 200  # as many held-out loops as beats: no caution about set sizes
    (folder / "quality.json").write_text(json.dumps(quality))
    assert card_script.main(["--weights", str(folder), "--reproduce", "x",
                             "--card", "NVIDIA H100 80 GB"]) == 0
    card = (folder / "README.md").read_text()
    assert "**All 4 goals of issue 13 are met.**" in card and "Goal not met" not in card
    assert "held-out points come from" not in card
    assert "NVIDIA H100 80 GB, Keras backend jax" in card
    assert "rolled back" not in card


def _card(card_script, folder) -> str:
    assert card_script.main(["--weights", str(folder), "--reproduce", "x"]) == 0
    return (folder / "README.md").read_text()


def test_a_warm_started_run_adds_up_the_updates_behind_it(card_script, folder):
    info = export.read_export_info(folder)
    assert "started from" not in _card(card_script, folder)  # a run from scratch says nothing
    info["started_from"] = {"folder": "weights", "generator_sha256": "7d3d50c621dcb6d2" + 48 * "0",
                            "step": 11210, "iterations": 11210, "d_updates": 56050, "runs": 1,
                            "critic": "new", "critic_warmup": 500}
    (folder / "weights.json").write_text(json.dumps(info))
    card = _card(card_script, folder)
    assert ("This run started from earlier weights (`--init-from`, sha256 7d3d50c621dcb6d2...: "
            "11,210 iterations, 56,050 D updates, over 1 earlier run) with a new critic that "
            "trained alone for the first 500 iterations; the figures above are this run's alone. "
            "In all, 20,810 iterations and 104,050 D updates are behind these weights.") in card


def test_a_shipped_critic_is_listed_and_the_card_says_what_it_is_for(card_script, folder):
    from beatgan.config import Config
    from beatgan.export import DISCRIMINATOR_WEIGHTS, save_weights
    from beatgan.model import build_discriminator

    card = _card(card_script, folder)
    assert f"`{DISCRIMINATOR_WEIGHTS}`" not in card.split("Made from")[0]
    assert "The discriminator and the raw generator of this run stayed in its run folder" in card
    save_weights(build_discriminator(Config.load(folder)), folder / DISCRIMINATOR_WEIGHTS,
                 dtype="float16")
    card = _card(card_script, folder)
    row = next(line for line in card.splitlines()
               if line.startswith(f"| `{DISCRIMINATOR_WEIGHTS}` |"))
    assert "the critic of the same checkpoint, float16 storage" in row
    assert "`beatgan train --init-from weights` goes on with it" in row
    assert "The raw generator stays in the run folder" in card
    assert "The discriminator and the raw generator stay" not in card


def test_a_choice_by_the_goals_is_told_as_one(card_script, folder):
    info = export.read_export_info(folder)
    info["selection"] = {**SELECTION, "metric": "goals", "direction": "most met, then lower "
                         "frechet", "value": 3.0, "goals_met": {
                             "tempo_consistency": False, "frechet": True, "ndb_fraction": True,
                             "diversity_ratio": True}}
    (folder / export.EXPORT_INFO).write_text(json.dumps(info))
    assert ("the generator at iteration 9,000, chosen by `beatgan select --metric goals` from 12 "
            "checkpoints: it met 3 of 4 goals over 200 beats (seed 0), the most any met, with "
            "the lowest Frechet distance of those (ckpt-00009000.npz)") in _card(card_script,
                                                                                  folder)
    info["selection"]["seeds"] = 3  # `beatgan select --seeds 3`: the means of three draws
    (folder / export.EXPORT_INFO).write_text(json.dumps(info))
    assert ("it met 3 of 4 goals over 200 beats (mean of 3 draws, seeds 0-2), the most any met"
            in _card(card_script, folder))


def test_the_runs_rollbacks_are_told(card_script, folder):
    info = export.read_export_info(folder)
    info["rollbacks"] = [{"at_step": 3930, "to_step": 3000, "learning_rate": 5e-5},
                         {"at_step": 6010, "to_step": 5000, "learning_rate": 2.5e-5}]
    (folder / export.EXPORT_INFO).write_text(json.dumps(info))
    card = _card(card_script, folder)
    assert ("rolled back 2 times on instability (`--on-instability rollback`; from iteration "
            "3,930 to 3,000, 6,010 to 5,000), each halving both learning rates (last: 2.5e-05)"
            ) in card
    info["rollbacks"] = info["rollbacks"][:1]
    (folder / export.EXPORT_INFO).write_text(json.dumps(info))
    assert "The run rolled back once on instability (" in _card(card_script, folder)


def test_the_metrics_sentence_names_the_seed_measured(card_script, folder):
    quality = json.loads((folder / "quality.json").read_text())
    quality["seed"] = 3
    (folder / "quality.json").write_text(json.dumps(quality))
    card = card_script.model_card(card_script.read_inputs(folder, reproduce=["x"]))
    assert "200 generated beats (seed 3) against the training pack (434 loops), recomputed" in card


@pytest.mark.parametrize("break_it, message", [
    (lambda f: (f / "quality.json").unlink(), "quality.json: missing"),
    (lambda f: [p.unlink() for p in f.glob("history.*")], "holds neither history.json"),
    (lambda f: (f / "config.json").unlink(), "config.json: missing"),
    (lambda f: (f / "quality.json").write_text(json.dumps(_quality("0" * 64))),
     "measured another generator"),
    (lambda f: (f / export.EXPORT_INFO).write_text(json.dumps({"generator_sha256": "1" * 64})),
     "belongs to another generator"),
    # An older weights.json, without trained_on, needs --card.
    (lambda f: (f / export.EXPORT_INFO).write_text(json.dumps(
        {k: v for k, v in export.read_export_info(f).items() if k != "trained_on"})), "--card"),
])
def test_a_missing_or_foreign_input_is_an_error_that_writes_nothing(card_script, folder, capsys,
                                                                     break_it, message):
    break_it(folder)
    assert card_script.main(["--weights", str(folder), "--reproduce", "x"]) == 2
    err = capsys.readouterr().err
    assert message in err and "nothing written" in err
    assert (folder / "README.md").read_text() == OLD_CARD


def test_the_card_reads_what_bench_quality_writes(card_script, tiny_weights, demo_folder,
                                                  tmp_path, capsys):
    """bench_quality --json, end to end on a d = 2 model and two loops, then the card."""
    import shutil

    from beatgan.training import write_history

    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights, folder)
    write_history(folder, [{"step": 10, "d_updates": 50, "wall_s": 5.0}])
    bench = _load(ROOT / "bench" / "bench_quality.py")
    bench.main(["--weights", str(folder), "--data", str(demo_folder), "--n", "4",
                "--json", str(folder / "quality.json")])
    written = json.loads((folder / "quality.json").read_text())
    assert written["n_generated"] == 4 and written["n_train"] == 2
    assert written["target_bpm"] is None  # the seed preset's: each loop at its own tempo
    assert written["weights"]["sha256"] == export.file_sha256(folder / export.GENERATOR_WEIGHTS)
    capsys.readouterr()
    assert card_script.main(["--weights", str(folder), "--reproduce", "x", "--card", "CPU"]) == 0
    card = (folder / "README.md").read_text()
    tempo = written["metrics"]["tempo_consistency"]
    # Two loops are too few to hold some out: no reference point, so no verdict either.
    assert tempo["held_out"] is None
    assert f"| tempo consistency | {tempo['generated']:.3f} |  | >= 0.70 | unknown |" in card
    assert "Not judged (no held-out reference point): tempo consistency" in card
    assert "are met" not in card
    assert "4 generated beats (seed 0) against the training pack (2 loops)" in card
    export.verify_model_card(folder)


def test_the_card_says_when_the_loops_were_retimed(card_script, folder):
    quality = json.loads((folder / "quality.json").read_text())
    assert "brought to" not in card_script.model_card(card_script.read_inputs(folder, reproduce=["x"]))
    quality["target_bpm"] = 125.0
    (folder / "quality.json").write_text(json.dumps(quality))
    card = card_script.model_card(card_script.read_inputs(folder, reproduce=["x"]))
    assert "against the training pack (434 loops), each brought to 125 bpm, recomputed" in card


def test_one_figure_short_is_told_in_the_singular(card_script, folder):
    quality = json.loads((folder / "quality.json").read_text())
    quality["metrics"]["diversity_ratio"]["generated"] = 0.95  # now only the Frechet distance
    (folder / "quality.json").write_text(json.dumps(quality))
    assert ("**Goal not met**: 1 of 4 figures falls short of issue 13's goal: Frechet distance "
            "3,120 (goal <= 3x held-out).") in _card(card_script, folder)


def test_the_spread_over_seeds_is_tabled_and_mixed_verdicts_are_said(card_script, folder):
    quality = json.loads((folder / "quality.json").read_text())
    quality["across_seeds"] = {"seeds": [0, 1, 2], "n": 200, "metrics": {
        "tempo_consistency": {"mean": 0.7, "sd": 0.005, "min": 0.694, "max": 0.705, "met_at": 2},
        "frechet": {"mean": 3100.0, "sd": 110.0, "min": 3000.0, "max": 3200.0, "met_at": 0},
        "ndb_fraction": {"mean": 0.1, "sd": 0.1, "min": 0.0, "max": 0.2, "met_at": 3},
        "diversity_ratio": {"mean": 1.3, "sd": 0.01, "min": 1.29, "max": 1.31, "met_at": 0}}}
    (folder / "quality.json").write_text(json.dumps(quality))
    card = _card(card_script, folder)
    assert "--n 200 --seeds 3 --json weights/quality.json" in card
    assert "The same command at seeds 0-2, 3 draws of 200 beats against the same reference" in card
    assert "| tempo consistency | 0.700 | 0.005 | 0.694 - 0.705 | 2 of 3 |" in card
    assert "| Frechet distance | 3,100 | 110 | 3,000 - 3,200 | 0 of 3 |" in card
    assert ("Some goals are met at some seeds only (tempo consistency at 2 of 3): they lie within "
            "the spread between draws") in card
    quality["across_seeds"]["metrics"]["tempo_consistency"]["met_at"] = 3
    (folder / "quality.json").write_text(json.dumps(quality))
    assert "Each goal is met at every seed or at none." in _card(card_script, folder)
    del quality["across_seeds"]
    (folder / "quality.json").write_text(json.dumps(quality))
    card = _card(card_script, folder)
    assert "--n 200 --json weights/quality.json`, beside" in card and "draws of" not in card


def test_the_set_size_caution_names_the_smaller_set(card_script, folder):
    card = card_script.model_card(card_script.read_inputs(folder, reproduce=["x"]))
    assert ("biased upwards, so the held-out distance is larger than it would be at the "
            "generated set's size.") in card  # 40 held-out loops, 200 beats
    quality = json.loads((folder / "quality.json").read_text())
    quality["n_reference"] = 400
    (folder / "quality.json").write_text(json.dumps(quality))
    card = card_script.model_card(card_script.read_inputs(folder, reproduce=["x"]))
    assert ("biased upwards, so the generated distance is larger than it would be at the "
            "held-out set's size.") in card


def test_the_command_repeats_the_seed_tempo_data_and_raw_it_was_measured_with(card_script,
                                                                               folder):
    quality = json.loads((folder / "quality.json").read_text())
    quality.update(seed=3, target_bpm=125.0, data="loops/pack")
    quality["weights"]["path"] = "weights/generator_raw.weights.h5"
    quality["across_seeds"] = {"seeds": [3, 4], "n": 200, "metrics": {}}
    (folder / "quality.json").write_text(json.dumps(quality))
    card = card_script.model_card(card_script.read_inputs(folder, reproduce=["x"]))
    assert ("`python bench/bench_quality.py --weights weights --n 200 --data loops/pack --seed 3 "
            "--seeds 2 --target-bpm 125 --raw --json weights/quality.json`") in card


def test_an_unjudged_goal_is_neither_met_nor_counted(card_script, folder, capsys):
    """Tempo without a held-out point: 'unknown' in its row, left out of the count printed
    (NDB/k alone is met of the four: Frechet and diversity fall short)."""
    quality = json.loads((folder / "quality.json").read_text())
    quality["metrics"]["tempo_consistency"]["held_out"] = None
    (folder / "quality.json").write_text(json.dumps(quality))
    assert card_script.main(["--weights", str(folder), "--reproduce", "x"]) == 0
    assert capsys.readouterr().out == f"wrote {folder / 'README.md'}: 1 of 4 goals met\n"
    card = (folder / "README.md").read_text()
    assert "| tempo consistency | 0.731 |  | >= 0.70 | unknown |" in card
    assert ("**Goal not met**: 2 of 4 figures fall short of issue 13's goal: Frechet distance "
            "3,120 (goal <= 3x held-out); diversity ratio 1.310 (goal 0.8-1.2). Not judged (no "
            "held-out reference point): tempo consistency 0.731 (goal >= 0.70).") in card
