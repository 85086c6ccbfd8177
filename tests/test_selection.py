"""Choosing a run's checkpoint: rows, the metric's direction, the export, errors, the command.

One tiny run (d = 2, batch 2, 4 checkpoints) trained through the command on six demo loops; every
choice is checked against the metric recomputed here from each checkpoint's own EMA arrays.
"""

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from beatgan import checkpoint as ckpt
from beatgan import fileio
from beatgan.cli import main
from beatgan.selection import (CRITERIA, CheckpointScore, SkippedCheckpointWarning, choose,
                               export_selection, min_beats, run_config, select_checkpoint)

N_BEATS = 20  # the fewest Frechet accepts is 17
ITERATIONS = 4


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def loops_folder(tmp_path_factory):
    """Six demo loops: enough for three held-out loops in the metrics' reference."""
    from beatgan.synth import write_demo_pack

    folder = tmp_path_factory.mktemp("loops")
    write_demo_pack(folder, n=6, seed=3)
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory, loops_folder):
    """A run trained by ``beatgan train`` with a checkpoint every iteration, keeping 10; and the
    digests of its export/ right after training."""
    run_dir = tmp_path_factory.mktemp("run")
    assert main(["train", "--data", str(loops_folder), "--out", str(run_dir), "--iterations",
                 str(ITERATIONS), "--checkpoint-every", "1", "--keep-checkpoints", "10",
                 "--model-dim", "2", "--batch-size", "2", "--seed", "11"]) == 0
    return run_dir, _digests(run_dir / "export")


@pytest.fixture(scope="module")
def loops(run, loops_folder):
    from beatgan.workflows import load_training_loops

    return load_training_loops(loops_folder, run_config(run[0]))


def _reference(config, loops):
    """The metrics' reference, fitted here as ``select`` should fit it (N_BEATS held out)."""
    from beatgan.metrics import TrainingReference

    augmented = loops.augment(rng=np.random.default_rng(config.seed))
    return TrainingReference.fit(
        augmented[:, :config.score_len], config=config, seed=config.seed, n_held_out=N_BEATS,
        groups=np.repeat(np.arange(len(loops)), config.noise_copies))


def _recompute(run_dir: Path, loops, seed: int) -> dict[int, dict[str, float]]:
    """step -> metrics of the beats drawn here (latent ``seed``) from that checkpoint's EMA
    arrays, against a reference fitted here."""
    from beatgan.generation import generate
    from beatgan.metrics import evaluate
    from beatgan.model import build_generator

    config = run_config(run_dir)
    reference = _reference(config, loops)
    values = {}
    for step, path in ckpt.list_checkpoints(run_dir / "checkpoints"):
        arrays, _ = ckpt.load_checkpoint(path)
        model = build_generator(config)
        keys = sorted(k for k in arrays if k.startswith("generator_ema/"))
        assert len(keys) == len(model.variables) > 0
        for key, variable in zip(keys, model.variables):
            variable.assign(arrays[key])
        audio, _ = generate(model, n=N_BEATS, seed=seed, config=config)
        values[step] = evaluate(audio, reference).metrics
    return values


@pytest.fixture(scope="module")
def recomputed(run, loops):
    """step -> metrics of the beats drawn at seed 0 from that checkpoint's EMA arrays."""
    return _recompute(run[0], loops, seed=0)


@pytest.fixture(scope="module")
def selection(run, loops):
    return select_checkpoint(run[0], loops, metric="frechet", n=N_BEATS, seed=0, progress=False)


def _expected_step(values: dict[int, dict[str, float]], metric: str) -> int:
    """The step the metric's direction picks, ties to the later step, written out plainly."""
    sign = {"lower": 1.0, "higher": -1.0}
    if CRITERIA[metric] == "closer to 1":
        scores = {step: abs(v[metric] - 1.0) for step, v in values.items()}
    else:
        scores = {step: sign[CRITERIA[metric]] * v[metric] for step, v in values.items()}
    best = min(scores.values())
    return max(step for step, score in scores.items() if score == best)


def test_criteria_are_the_metrics_directions():
    from beatgan.metrics import DIRECTIONS

    assert CRITERIA == DIRECTIONS


def test_the_keep_flag_kept_every_checkpoint(run):
    steps = [step for step, _ in ckpt.list_checkpoints(run[0] / "checkpoints")]
    assert steps == list(range(1, ITERATIONS + 1))  # the default would have kept 3


def test_choose_follows_each_direction_and_gives_ties_to_the_later_step():
    def row(step, **metrics):
        return CheckpointScore(step=step, path=Path(f"ckpt-{step:08d}.npz"), ema=True,
                               metrics=metrics)

    rows = [row(1, frechet=5.0, tempo_consistency=0.3, diversity_ratio=1.3),
            row(2, frechet=3.0, tempo_consistency=0.6, diversity_ratio=0.8),
            row(3, frechet=3.0, tempo_consistency=0.5, diversity_ratio=1.1),
            row(4, note="output not finite (diverged)")]
    assert choose(rows, "frechet").step == 3  # tie with step 2: the later one
    assert choose(rows, "tempo_consistency").step == 2
    assert choose(rows, "diversity_ratio").step == 3  # |1.1 - 1| < |0.8 - 1|
    with pytest.raises(ValueError, match="no checkpoint has a finite js"):
        choose(rows, "js")


def test_one_row_per_checkpoint_with_the_metrics_recomputed_from_its_ema(selection, recomputed):
    assert [row.step for row in selection.rows] == sorted(recomputed) == [1, 2, 3, 4]
    assert all(row.ema for row in selection.rows) and not selection.skipped
    for row in selection.rows:
        for key, value in recomputed[row.step].items():
            assert row.metrics[key] == pytest.approx(value, rel=1e-6, abs=1e-9), (row.step, key)
    frechet = [recomputed[step]["frechet"] for step in sorted(recomputed)]
    assert len(set(frechet)) == len(frechet)  # distinct: the choice below means something
    assert selection.chosen.step == _expected_step(recomputed, "frechet")
    assert "held_out" in selection.reference_points and selection.n_reference == 3


def test_a_run_from_scratch_has_no_start_row(selection):
    assert selection.start is None and selection.start_note == "" and not selection.start_better
    assert "start" not in selection.record() and selection.to_dict()["start"] is None
    assert not any(line.split()[:1] == ["start"] for line in selection.table().splitlines())


def _warm_started_run(run, loops_folder, tmp_path, *flags):
    """(start, warm): a copy of the run's export, and a run trained on from it with ``flags``,
    a checkpoint every iteration."""
    start = tmp_path / "start"
    shutil.copytree(run[0] / "export", start)
    warm = tmp_path / "warm"
    assert main(["train", "--data", str(loops_folder), "--init-from", str(start), "--out",
                 str(warm), "--checkpoint-every", "1", *flags]) == 0
    return start, warm


def test_a_warm_started_run_is_judged_beside_the_weights_it_went_on_from(run, loops,
                                                                        loops_folder, tmp_path):
    from beatgan.generation import generate, load_generator
    from beatgan.metrics import evaluate

    start, warm = _warm_started_run(run, loops_folder, tmp_path, "--iterations", "3",
                                    "--keep-checkpoints", "10")
    chosen = select_checkpoint(warm, loops, metric="frechet", n=N_BEATS, seed=0, progress=False)
    # The start row: the folder's generator, drawn and scored here on the same latents.
    model, config = load_generator(start)
    audio, _ = generate(model, n=N_BEATS, seed=0, config=config)
    expected = evaluate(audio, _reference(run_config(warm), loops)).metrics
    assert chosen.start.step == 0 and chosen.start.path == start / "generator.weights.h5"
    for key, value in expected.items():
        assert chosen.start.metrics[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    assert chosen.start not in chosen.rows and [r.step for r in chosen.rows] == [1, 2, 3]
    better = expected["frechet"] < chosen.chosen.metrics["frechet"]  # ties go to the run
    assert chosen.start_better is better
    assert chosen.record()["start"]["better"] is better
    assert json.loads(json.dumps(chosen.to_dict(), allow_nan=False))["start"]["step"] == 0
    lines = chosen.table().splitlines()
    start_line = next(line for line in lines if line.split()[:1] == ["start"])
    assert float(start_line.split()[2]) == pytest.approx(expected["frechet"], abs=5e-4)
    assert any(line.startswith("! the start") for line in lines) is better
    # Flipped by hand: the line says so when the start wins, and is absent when it loses.
    import dataclasses
    worse = dataclasses.replace(chosen.start, metrics={**chosen.start.metrics, "frechet": 1e9})
    best = dataclasses.replace(chosen.start, metrics={**chosen.start.metrics, "frechet": 0.0})
    assert not dataclasses.replace(chosen, start=worse).start_better
    flipped = dataclasses.replace(chosen, start=best)
    assert flipped.start_better and flipped.table().splitlines()[-1].startswith(
        f"! the start ({start}) scores better by frechet on the same beats")
    # Weights that changed since, or went, are not scored, and the table says why.
    shutil.copy(start / "generator_raw.weights.h5", start / "generator.weights.h5")
    changed = select_checkpoint(warm, loops, metric="frechet", n=N_BEATS, seed=0, progress=False)
    assert changed.start is None and "has changed since the run started from it" in \
        changed.start_note
    assert changed.table().splitlines()[-1] == f"start not scored: {changed.start_note}"
    # A torn file whose digest still matches the record (rewritten in place, say) is reported.
    (start / "generator.weights.h5").write_bytes(b"not an h5 file")
    record = json.loads((warm / "export" / "weights.json").read_text())
    record["started_from"]["generator_sha256"] = hashlib.sha256(b"not an h5 file").hexdigest()
    (warm / "export" / "weights.json").write_text(json.dumps(record))
    torn = select_checkpoint(warm, loops, metric="frechet", n=N_BEATS, seed=0, progress=False)
    assert torn.start is None and "generator.weights.h5" in torn.start_note
    assert torn.chosen.step == chosen.chosen.step  # the checkpoints' choice stands
    shutil.rmtree(start)
    gone = select_checkpoint(warm, loops, metric="frechet", n=N_BEATS, seed=0, progress=False)
    assert gone.start is None and gone.start_note.endswith("is not there any more")


def test_several_seeds_judge_each_checkpoint_by_the_mean_of_its_draws(run, loops, recomputed):
    result = select_checkpoint(run[0], loops, metric="frechet", n=N_BEATS, seed=0, seeds=2,
                               progress=False)
    second = _recompute(run[0], loops, seed=1)
    means = {step: {key: (value + second[step][key]) / 2 for key, value in values.items()}
             for step, values in recomputed.items()}
    for row in result.rows:
        for key in recomputed[row.step]:
            a, b = recomputed[row.step][key], second[row.step][key]
            assert row.metrics[key] == pytest.approx((a + b) / 2, rel=1e-6, abs=1e-9)
            assert row.sd[key] == pytest.approx(abs(a - b) / np.sqrt(2), rel=1e-6, abs=1e-9)
        assert recomputed[row.step]["frechet"] != second[row.step]["frechet"]  # two draws
    assert result.chosen.step == _expected_step(means, "frechet")
    assert result.record()["seeds"] == 2 and result.to_dict()["seeds"] == 2
    assert all("sd" in row for row in result.to_dict()["rows"])
    assert "mean of 2 draws, seeds 0-1" in result.table().splitlines()[0]
    assert not any(row.sd for row in select_checkpoint(run[0], loops, n=N_BEATS,
                                                       progress=False).rows)  # one draw
    with pytest.raises(ValueError, match="seeds must be at least 1"):
        select_checkpoint(run[0], loops, n=N_BEATS, seeds=0, progress=False)


@pytest.mark.parametrize("metric", ["tempo_consistency", "diversity_ratio", "ndb_fraction"])
def test_each_metric_chooses_its_best_row(selection, recomputed, metric):
    assert choose(selection.rows, metric).step == _expected_step(recomputed, metric)


def test_the_table_marks_the_choice_and_shows_the_held_out_loops(selection):
    lines = selection.table().splitlines()
    marked = [line for line in lines if line.startswith("* ") and "chosen" not in line]
    assert len(marked) == 1 and marked[0].split()[1] == str(selection.chosen.step)
    held_out = next(line for line in lines if "held-out" in line)
    assert f"{selection.reference_points['held_out']['frechet']:.3f}" in held_out


def test_float16_export_holds_the_chosen_ema_and_records_the_choice(run, selection, tmp_path):
    from beatgan.generation import load_generator

    out = export_selection(selection, tmp_path / "best", dtype="float16")
    arrays, _ = ckpt.load_checkpoint(selection.chosen.path)
    for raw, group in ((False, "generator_ema"), (True, "generator")):
        model, _ = load_generator(out, raw=raw)
        keys = sorted(k for k in arrays if k.startswith(f"{group}/"))
        assert len(keys) == len(model.variables)
        for key, variable in zip(keys, model.variables):
            np.testing.assert_allclose(np.asarray(variable), arrays[key], rtol=1e-3, atol=1e-4,
                                       err_msg=key)
    info = json.loads((out / "weights.json").read_text())
    assert (info["step"], info["ema"], info["dtype"]) == (selection.chosen.step, True, "float16")
    assert info["ema_updates"] == selection.chosen.step  # a run from scratch averages each one
    assert info["selection"]["metric"] == "frechet" and info["selection"]["n"] == N_BEATS
    assert info["selection"]["seed"] == 0
    assert info["selection"]["value"] == pytest.approx(selection.chosen.metrics["frechet"])
    trained_on = json.loads((run[0] / "export" / "weights.json").read_text())["trained_on"]
    assert info["trained_on"] == trained_on and trained_on["device"] == "cpu"
    table = json.loads((out / "selection.json").read_text())
    assert [r["step"] for r in table["rows"]] == [1, 2, 3, 4]
    assert table["chosen_step"] == selection.chosen.step
    assert _digests(run[0] / "export") == run[1]


def test_the_runs_rollbacks_travel_with_the_chosen_weights(selection, monkeypatch, tmp_path):
    from beatgan import export

    rollbacks = [{"at_step": 3, "to_step": 2, "reason": "jump", "learning_rate": 5e-5,
                  "wall_s": 1.0, "stopped": False}]
    real_read = export.read_export_info
    monkeypatch.setattr(export, "read_export_info",  # the run's export, as a rolled-back run's
                        lambda folder: {**real_read(folder), "rollbacks": rollbacks})
    out = export_selection(selection, tmp_path / "best")
    assert json.loads((out / "weights.json").read_text())["rollbacks"] == rollbacks


def test_a_failed_export_leaves_the_previous_folder_whole(selection, monkeypatch, tmp_path):
    out = export_selection(selection, tmp_path / "best")
    before = _digests(out)
    real = fileio._write_file

    def full_disk(path, payload, **kwargs):
        if "selection.json" in path.name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, payload, **kwargs)

    monkeypatch.setattr(fileio, "_write_file", full_disk)
    with pytest.raises(OSError):
        export_selection(selection, out, dtype="float16")
    assert _digests(out) == before


def test_unreadable_checkpoints_are_reported_and_skipped_not_moved(run, loops, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run[0], copy)
    torn = copy / "checkpoints" / "ckpt-00000002.npz"
    torn.write_bytes(torn.read_bytes()[:1000])
    with pytest.warns(SkippedCheckpointWarning, match="ckpt-00000002"):
        result = select_checkpoint(copy, loops, n=N_BEATS, progress=False)
    assert [row.step for row in result.rows] == [1, 3, 4]
    assert [name for name, _ in result.skipped] == ["ckpt-00000002.npz"]
    assert torn.is_file() and len(torn.read_bytes()) == 1000  # left where it was, as it was
    for _, path in ckpt.list_checkpoints(copy / "checkpoints"):
        path.write_bytes(b"not a checkpoint")
    with pytest.warns(SkippedCheckpointWarning), pytest.raises(ValueError, match="none of the 4"):
        select_checkpoint(copy, loops, n=N_BEATS, progress=False)


def test_bad_requests_are_refused_with_what_was_expected(run, loops, tmp_path):
    with pytest.raises(FileNotFoundError, match="no run folder"):
        select_checkpoint(tmp_path / "missing", loops, n=N_BEATS, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no checkpoint"):
        select_checkpoint(tmp_path / "empty", loops, n=N_BEATS, progress=False)
    assert min_beats("frechet") == 17 and min_beats("ndb_fraction") == 40
    with pytest.raises(ValueError, match="too few for frechet: it needs at least 17"):
        select_checkpoint(run[0], loops, n=16, progress=False)


def test_the_command_end_to_end(run, loops_folder, tmp_path, capsys):
    from beatgan.generation import load_generator

    run_dir, export_digests = run
    argv = ["select", "--run", str(run_dir), "--data", str(loops_folder), "--n", str(N_BEATS)]
    assert main(argv + ["--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    best = run_dir / "best"
    assert printed["out"] == str(best) and len(printed["rows"]) == ITERATIONS
    chosen = printed["chosen_step"]
    assert json.loads((best / "selection.json").read_text())["chosen_step"] == chosen
    # float32: the exported generator is the chosen checkpoint's EMA, exactly.
    arrays, _ = ckpt.load_checkpoint(ckpt.checkpoint_path(run_dir / "checkpoints", chosen))
    model, _ = load_generator(best)
    keys = sorted(k for k in arrays if k.startswith("generator_ema/"))
    for key, variable in zip(keys, model.variables):
        np.testing.assert_array_equal(np.asarray(variable), arrays[key], err_msg=key)
    assert _digests(run_dir / "export") == export_digests
    assert main(["generate", "--weights", str(best), "--n", "2", "--out", str(tmp_path / "beats")]) == 0
    assert json.loads((tmp_path / "beats" / "beats.json").read_text())["weights"]["step"] == chosen
    capsys.readouterr()
    # The table, and the errors as one line with exit code 2.
    assert main(argv + ["--metric", "tempo_consistency", "--seeds", "2"]) == 0
    printed = capsys.readouterr().out
    assert "chosen by tempo_consistency (higher)" in printed and "seeds 0-1" in printed
    assert json.loads((best / "weights.json").read_text())["selection"]["seeds"] == 2
    assert main(["select", "--run", str(tmp_path / "nowhere")]) == 2
    assert "no run folder" in capsys.readouterr().err
    assert main(argv[:-1] + ["5"]) == 2
    assert "it needs at least 17" in capsys.readouterr().err
    assert main(argv + ["--out", str(run_dir / "export")]) == 2
    assert "belong to train" in capsys.readouterr().err
    assert main(argv + ["--seed", str(2 ** 32 - 1), "--seeds", "2"]) == 2
    assert "past the largest, 4294967295" in capsys.readouterr().err
    assert _digests(run_dir / "export") == export_digests


def test_the_commands_seed_metric_and_dtype_reach_the_selection(run, loops, loops_folder,
                                                                tmp_path, capsys):
    """``--seed 7 --metric tempo_consistency --export-dtype float16``: each row holds the metrics
    of seed 7's beats (recomputed here), the step their tempo picks is exported, as float16."""
    run_dir, _ = run
    out = tmp_path / "chosen"
    assert main(["select", "--run", str(run_dir), "--data", str(loops_folder), "--n",
                 str(N_BEATS), "--metric", "tempo_consistency", "--seed", "7", "--out", str(out),
                 "--export-dtype", "float16", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = _recompute(run_dir, loops, seed=7)
    assert (printed["seed"], printed["seeds"], printed["metric"], printed["n"]) == (
        7, 1, "tempo_consistency", N_BEATS)
    for row in printed["rows"]:
        for key, value in expected[row["step"]].items():
            assert row["metrics"][key] == pytest.approx(value, rel=1e-5, abs=1e-9), \
                (row["step"], key)
    assert printed["chosen_step"] == _expected_step(expected, "tempo_consistency")
    info = json.loads((out / "weights.json").read_text())
    assert info["dtype"] == "float16" and info["step"] == printed["chosen_step"]
    assert (info["selection"]["seed"], info["selection"]["metric"]) == (7, "tempo_consistency")


def test_a_diverged_checkpoint_gets_a_row_without_metrics_and_is_never_chosen(run, loops, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run[0], copy)
    path = ckpt.checkpoint_path(copy / "checkpoints", ITERATIONS)
    arrays, meta = ckpt.load_checkpoint(path)
    arrays = {k: np.full_like(v, np.nan) if k.startswith("generator_ema/") and v.dtype.kind == "f"
              else v for k, v in arrays.items()}
    ckpt.save_checkpoint(copy / "checkpoints", step=ITERATIONS, arrays=arrays, meta=meta, keep=10)
    result = select_checkpoint(copy, loops, metric="tempo_consistency", n=N_BEATS, progress=False)
    diverged = result.rows[-1]
    assert (diverged.step, diverged.metrics) == (ITERATIONS, {})
    assert "not finite" in diverged.note and result.chosen.step != ITERATIONS
    assert len(result.rows) == ITERATIONS and "not finite" in result.table()
    json.dumps(result.to_dict(), allow_nan=False)  # valid JSON all the same


def test_choosing_by_the_goals_counts_them_then_takes_the_lowest_frechet():
    def row(step, tempo, frechet, ndb, diversity):
        return CheckpointScore(step=step, path=Path(f"ckpt-{step:08d}.npz"), ema=True, metrics={
            "tempo_consistency": tempo, "frechet": frechet, "ndb_fraction": ndb,
            "diversity_ratio": diversity})

    held_out = {"tempo_consistency": 0.74, "frechet": 1000.0, "ndb_fraction": 0.1,
                "diversity_ratio": 0.97}
    rows = [row(1, 0.71, 2900.0, 0.0, 0.85),   # all four goals
            row(2, 0.69, 1500.0, 0.0, 0.85),   # three: the lowest Frechet, short on tempo
            row(3, 0.70, 2000.0, 0.25, 0.80),  # all four (bounds included), lower Frechet than 1
            row(4, 0.72, 2000.0, 0.0, 1.25),   # three
            CheckpointScore(step=5, path=Path("ckpt-00000005.npz"), ema=True, metrics={},
                            note="output not finite (diverged)")]
    assert choose(rows, "goals", held_out=held_out).step == 3
    assert choose(rows, "frechet").step == 2  # what Frechet alone would have shipped
    tie = rows[:3] + [row(6, 0.75, 2000.0, 0.0, 1.0)]  # as good as step 3: the later one
    assert choose(tie, "goals", held_out=held_out).step == 6
    short = [rows[1], rows[3]]  # none meets all four: the most met, then the lowest Frechet
    assert choose(short, "goals", held_out=held_out).step == 2
    with pytest.raises(ValueError, match="held-out"):
        choose(rows, "goals")
    with pytest.raises(ValueError, match="no checkpoint has metrics to judge"):
        choose(rows[4:], "goals", held_out=held_out)


def test_a_selection_by_the_goals_records_and_tables_them(selection, tmp_path):
    import dataclasses

    from beatgan.goals import goals_met

    held_out = selection.reference_points["held_out"]
    by_goals = dataclasses.replace(selection, metric="goals",
                                   chosen=choose(selection.rows, "goals", held_out=held_out))
    met = goals_met(by_goals.chosen.metrics, held_out)
    record = by_goals.record()
    assert record["metric"] == "goals" and record["goals_met"] == met
    assert record["value"] == sum(ok is True for ok in met.values())
    lines = by_goals.table().splitlines()
    assert lines[0].endswith("chosen by goals (most met, then lower frechet)")
    assert lines[1].split()[-1] == "goals"
    assert "goals" not in selection.table().splitlines()[1]  # by Frechet: no such column
    for row in selection.rows:  # every row says how many of the four it meets
        line = next(line for line in lines if line[2:].split()[:1] == [str(row.step)])
        count = sum(ok is True for ok in goals_met(row.metrics, held_out).values())
        assert line.split()[-1] == f"{count}/4"
    assert lines[-1].startswith(
        f"* chosen: step {by_goals.chosen.step} (meets {record['value']:.0f} of 4")
    out = export_selection(by_goals, tmp_path / "best")
    assert json.loads((out / "weights.json").read_text())["selection"]["goals_met"] == met
    assert min_beats("goals") == 40  # NDB/k's minimum: the goals judge it
    with pytest.raises(ValueError, match="too few for goals: it needs at least 40"):
        select_checkpoint(selection.run_dir, None, metric="goals", n=N_BEATS, progress=False)


def test_by_the_goals_the_reference_holds_out_what_the_model_card_holds_out(run, loops,
                                                                             monkeypatch):
    from beatgan import workflows

    asked = []
    real = workflows.metrics_reference

    def recording(*args, **kwargs):
        asked.append(kwargs.get("n_held_out"))
        return real(*args, **kwargs)

    monkeypatch.setattr(workflows, "metrics_reference", recording)
    by_goals = select_checkpoint(run[0], loops, metric="goals", n=40, progress=False)
    by_frechet = select_checkpoint(run[0], loops, metric="frechet", n=40, progress=False)
    assert asked == [None, 40]  # None: metrics.DEFAULT_HELD_OUT, as `beatgan score --metrics`
    held_out = by_goals.reference_points["held_out"]
    assert by_goals.chosen is choose(by_goals.rows, "goals", held_out=held_out)
    assert [row.metrics["tempo_consistency"] for row in by_goals.rows] == \
        [row.metrics["tempo_consistency"] for row in by_frechet.rows]  # the same beats


def test_the_start_row_before_any_export_and_of_a_run_without_an_average(run, loops,
                                                                         loops_folder, tmp_path):
    from beatgan.generation import generate, load_weights_checked
    from beatgan.metrics import evaluate
    from beatgan.model import build_generator

    start, warm = _warm_started_run(run, loops_folder, tmp_path, "--iterations", "2",
                                    "--no-ema")
    shutil.rmtree(warm / "export")  # as while the run still trains: only its checkpoints
    chosen = select_checkpoint(warm, loops, metric="frechet", n=N_BEATS, progress=False)
    assert not any(row.ema for row in chosen.rows)
    # Rows of the raw generator: the start is the folder's raw weights, not its average.
    config = run_config(warm)
    model = build_generator(config)
    load_weights_checked(model, start / "generator_raw.weights.h5", config)
    audio, _ = generate(model, n=N_BEATS, seed=0, config=config)
    expected = evaluate(audio, _reference(config, loops)).metrics
    assert chosen.start.path == start / "generator_raw.weights.h5" and chosen.start.ema is False
    assert chosen.start.metrics["frechet"] == pytest.approx(expected["frechet"], rel=1e-6)


def test_a_pruned_checkpoint_is_skipped_and_a_bad_start_record_refused_at_once(run, loops,
                                                                              tmp_path,
                                                                              monkeypatch):
    from beatgan import selection

    copy = tmp_path / "run"
    shutil.copytree(run[0], copy)
    real = selection.score_checkpoint

    def pruned_meanwhile(path, step, **kwargs):  # a running train prunes the oldest
        if step == 1:
            path.unlink()
        return real(path, step, **kwargs)

    monkeypatch.setattr(selection, "score_checkpoint", pruned_meanwhile)
    with pytest.warns(SkippedCheckpointWarning, match="ckpt-0+1.npz"):
        chosen = select_checkpoint(copy, loops, metric="js", n=40, progress=False)
    assert [row.step for row in chosen.rows] == list(range(2, ITERATIONS + 1))
    header = chosen.table().splitlines()[1].split()
    assert header[-1] == "js"  # the figure that chose is in the table
    monkeypatch.setattr(selection, "score_checkpoint", _no_scoring)
    info = json.loads((copy / "export" / "weights.json").read_text())
    for bad in ("runs/x", {"folder": 5}):
        (copy / "export" / "weights.json").write_text(json.dumps({**info, "started_from": bad}))
        with pytest.raises(ValueError, match="record of the warm start .* is not one"):
            select_checkpoint(copy, loops, metric="frechet", n=N_BEATS, progress=False)


def _no_scoring(*args, **kwargs):
    raise AssertionError("scored although the request was bad")


def test_goals_with_too_few_loops_to_hold_any_out_are_refused_before_scoring(run, tmp_path,
                                                                             monkeypatch):
    from beatgan import selection
    from beatgan.synth import write_demo_pack
    from beatgan.workflows import load_training_loops

    write_demo_pack(tmp_path / "two", n=2, seed=3)
    two = load_training_loops(tmp_path / "two", run_config(run[0]))
    monkeypatch.setattr(selection, "score_checkpoint", _no_scoring)
    with pytest.raises(ValueError, match="needs held-out loops to judge by, and 2 loops leave "
                                         "none out"):
        select_checkpoint(run[0], two, metric="goals", n=40, progress=False)


def test_a_relative_start_folder_that_is_not_found_says_where_it_was_looked_for(tmp_path,
                                                                               monkeypatch):
    from beatgan.selection import run_start

    (tmp_path / "run" / "export").mkdir(parents=True)
    (tmp_path / "run" / "export" / "weights.json").write_text(
        json.dumps({"started_from": {"folder": "weights-11210"}}))
    monkeypatch.chdir(tmp_path)
    path, note = run_start(tmp_path / "run")
    assert path is None and note == (f"{Path('weights-11210/generator.weights.h5')} is not there "
                                     f"any more (looked for from {tmp_path}, as the run recorded "
                                     f"the folder relative to where it ran)")


def test_exactly_the_fewest_beats_a_metric_needs_are_accepted(tmp_path):
    from beatgan.selection import check_request

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "ckpt-00000003.npz").write_bytes(b"")  # listed, not read
    for metric, fewest in (("frechet", 17), ("ndb_fraction", 40), ("diversity_ratio", 2),
                           ("tempo_consistency", 1), ("goals", 40)):
        assert [step for step, _ in check_request(tmp_path, metric=metric, n=fewest)] == [3]
        with pytest.raises(ValueError, match=f"too few for {metric}: it needs at least {fewest}"):
            check_request(tmp_path, metric=metric, n=fewest - 1)


def test_the_export_records_the_chosen_step_not_the_newest(selection, tmp_path):
    import dataclasses

    from beatgan.generation import load_generator

    earlier = dataclasses.replace(selection, chosen=selection.rows[1])  # step 2 of 4
    assert earlier.chosen.step == 2
    out = export_selection(earlier, tmp_path / "best")
    info = json.loads((out / "weights.json").read_text())
    assert (info["step"], info["ema_updates"], info["selection"]["checkpoint"]) == (
        2, 2, "ckpt-00000002.npz")
    assert json.loads((out / "selection.json").read_text())["chosen_step"] == 2
    arrays, _ = ckpt.load_checkpoint(earlier.chosen.path)
    model, _ = load_generator(out)
    keys = sorted(k for k in arrays if k.startswith("generator_ema/"))
    assert len(keys) == len(model.variables) > 0
    for key, variable in zip(keys, model.variables):
        np.testing.assert_array_equal(np.asarray(variable), arrays[key], err_msg=key)
