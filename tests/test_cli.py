"""The ``beatgan`` command end to end on tiny data: files written, JSON printed, clear errors."""

import json

import numpy as np
import pytest
import soundfile as sf

from beatgan import Config
from beatgan.cli import build_parser, main

TINY = Config(model_dim=2, batch_size=2)


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("loops")
    assert main(["demo-data", str(folder), "--n", "4", "--seed", "3"]) == 0
    return folder


def test_demo_data_writes_the_pack_format(demo_folder):
    files = sorted(demo_folder.glob("*.wav"))
    assert len(files) == 4
    info = sf.info(str(files[0]))
    assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_24")


def test_generate_writes_n_beats_of_one_bar(tiny_weights, tmp_path, capsys):
    out = tmp_path / "beats"
    assert main(["generate", "--weights", str(tiny_weights), "--n", "3", "--out", str(out), "--seed", "5"]) == 0
    files = sorted(out.glob("output*.wav"))
    assert [f.name for f in files] == ["output000.wav", "output001.wav", "output002.wav"]
    info = sf.info(str(files[0]))
    assert (info.samplerate, info.frames, info.subtype) == (14700, 2 * 14112, "PCM_24")
    assert "wrote 3 beats" in capsys.readouterr().out


def test_generate_twice_with_one_seed_gives_the_same_bytes(tiny_weights, tmp_path):
    from beatgan.generation import generate, read_sidecar

    for name, seed in (("a", "9"), ("b", "9"), ("c", "10")):
        assert main(["generate", "--weights", str(tiny_weights), "--n", "2", "--out",
                     str(tmp_path / name), "--seed", seed]) == 0
    assert (tmp_path / "a/output001.wav").read_bytes() == (tmp_path / "b/output001.wav").read_bytes()
    assert (tmp_path / "c/output001.wav").read_bytes() != (tmp_path / "a/output001.wav").read_bytes()
    # The beats are seed 9's: its latent vectors, and the audio the library draws from them.
    latents, meta = read_sidecar(tmp_path / "a")
    expected, expected_latents = generate(tiny_weights, n=2, seed=9)
    assert meta["seed"] == 9
    np.testing.assert_array_equal(latents, expected_latents)
    n = TINY.score_len
    data, _ = sf.read(str(tmp_path / "a/output001.wav"), dtype="float64")
    np.testing.assert_array_equal(data[:n],
                                  np.round(expected[1, :n].astype(np.float64) * 2 ** 23) / 2 ** 23)


def test_loop_records_the_weights_as_generate_does(tiny_weights, tmp_path, capsys):
    from beatgan.export import file_sha256
    from beatgan.generation import sample_latents

    assert main(["generate", "--weights", str(tiny_weights), "--n", "1", "--out", str(tmp_path)]) == 0
    assert f"wrote 1 beat to {tmp_path}" in capsys.readouterr().out
    assert main(["loop", "--weights", str(tiny_weights), "--out", str(tmp_path / "loops"),
                 "--structure", "ABAB", "--bars", "8", "--seed", "4", "--index", "2"]) == 0
    (wav,) = (tmp_path / "loops").glob("*.wav")
    (meta,) = [json.loads(p.read_text()) for p in (tmp_path / "loops").glob("*.json")]
    # Every flag reached the loop: its name, its record, its length and its latent vectors.
    assert wav.name == "beatgan_125bpm_ABAB_8bars_seed4_a002.wav"
    assert (meta["structure"], meta["bars"], meta["seed"], meta["index"]) == ("ABAB", 8, 4, 2)
    assert sf.info(str(wav)).frames == round(8 * 4 * 60 / TINY.bpm * 44100)
    a_vector = sample_latents(3, latent_dim=TINY.latent_dim, seed=4)[2]  # output002.wav's at seed 4
    np.testing.assert_array_equal(np.float32(meta["latents"]["A"]), a_vector)
    beats = json.loads((tmp_path / "beats.json").read_text())
    assert meta["weights"] == beats["weights"]
    assert meta["weights"]["sha256"] == file_sha256(tiny_weights / "generator.weights.h5")
    assert meta["weights"]["path"] == str(tiny_weights / "generator.weights.h5")


def test_loop_count_writes_a_loop_per_beat_as_single_calls_would(tiny_weights, tmp_path, capsys):
    common = ["loop", "--weights", str(tiny_weights), "--structure", "AABB", "--seed", "7"]
    assert main(common + ["--index", "2", "--count", "3", "--out", str(tmp_path / "pack")]) == 0
    out = capsys.readouterr().out
    assert "wrote 3 loops to" in out and "_a002.wav ... beatgan_125bpm_AABB_4bars_seed7_a004" in out
    names = sorted(p.name for p in (tmp_path / "pack").glob("*.wav"))
    assert names == [f"beatgan_125bpm_AABB_4bars_seed7_a00{i}.wav" for i in (2, 3, 4)]
    for index in (2, 4):  # the same bytes as ``loop --index I`` alone
        single = tmp_path / f"single{index}"
        assert main(common + ["--index", str(index), "--out", str(single)]) == 0
        (wav,) = single.glob("*.wav")
        assert wav.read_bytes() == (tmp_path / "pack" / wav.name).read_bytes()
    capsys.readouterr()
    # A range past the last index is refused before the model loads or a file is written.
    assert main(common + ["--index", "99998", "--count", "3", "--out", str(tmp_path / "x")]) == 2
    assert "reaches beat 100000; the last index is 99999" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_loop_rate_writes_the_loops_at_that_rate_and_says_so_in_the_name(tiny_weights, tmp_path):
    assert main(["loop", "--weights", str(tiny_weights), "--rate", "48000", "--count", "2",
                 "--out", str(tmp_path)]) == 0
    wavs = sorted(tmp_path.glob("*.wav"))
    assert [p.name for p in wavs] == [f"beatgan_125bpm_AAAB_4bars_seed0_a00{i}_48000hz.wav"
                                      for i in (0, 1)]
    for wav in wavs:
        info = sf.info(str(wav))
        assert (info.samplerate, info.frames) == (48000, round(4 * 4 * 60 / TINY.bpm * 48000))
        assert f"Tempo     : {TINY.bpm:f}" in info.extra_info  # libsndfile's reading of the tag
        assert json.loads(wav.with_suffix(".json").read_text())["sample_rate_hz"] == 48000


def test_loop_bpm_brings_a_pack_to_another_tempo_and_counts_its_size_there(
        tiny_weights, tmp_path, monkeypatch):
    from beatgan import fileio

    needed = []
    check = fileio.check_free_space
    monkeypatch.setattr(fileio, "check_free_space",
                        lambda folder, n, **kw: needed.append(n) or check(folder, n, **kw))
    assert main(["loop", "--weights", str(tiny_weights), "--bpm", "100", "--count", "2",
                 "--out", str(tmp_path)]) == 0
    wavs = sorted(tmp_path.glob("*.wav"))
    assert [p.name for p in wavs] == [f"beatgan_100bpm_AAAB_4bars_seed0_a00{i}_slice.wav"
                                      for i in (0, 1)]
    frames = 16 * 60 * 44100 // 100  # 423,360: exactly, by hand
    for wav in wavs:
        info = sf.info(str(wav))
        assert info.frames == frames and "Tempo     : 100.000000" in info.extra_info
    # The free-space check counted the loops at 100 bpm (longer than at 125), with the extra.
    from beatgan.cli import LOOP_EXTRA_BYTES

    assert 2 * (frames * 2 * 3 + LOOP_EXTRA_BYTES) in needed


def test_a_tempo_method_without_a_tempo_is_refused_before_anything_loads(tmp_path, capsys):
    assert main(["loop", "--weights", str(tmp_path / "none"), "--tempo-method", "slice",
                 "--out", str(tmp_path / "out")]) == 2
    assert "--tempo-method says how to reach a --bpm; give the tempo too" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_pack_larger_than_the_free_space_is_refused_before_any_loop(tiny_weights, tmp_path,
                                                                        capsys, monkeypatch):
    from collections import namedtuple

    from beatgan import fileio

    one_loop = round(4 * 4 * 60 / TINY.bpm * 44100) * 2 * 3  # 24-bit stereo frames: 2,032,128
    free = 2 * one_loop + fileio.FREE_SPACE_MARGIN_BYTES + 64 * 1024  # two loops fit, not three
    usage = namedtuple("usage", "total used free")(2**40, 2**40 - free, free)
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda path: usage)
    common = ["loop", "--weights", str(tiny_weights), "--out", str(tmp_path / "pack")]
    assert main(common + ["--count", "3"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device: writing 3 loops to" in err and "needs 5.9 MiB" in err
    assert not (tmp_path / "pack").exists()  # nothing written, the folder made for it removed
    assert main(common + ["--count", "2"]) == 0
    assert len(list((tmp_path / "pack").glob("*.wav"))) == 2


def test_score_json_counts_a_copied_training_loop_as_similar(demo_folder, tmp_path, capsys):
    """A generated folder holding a training loop's own segment scores 0 against it."""
    from beatgan.data import load_loops
    from beatgan.generation import write_beats

    config = Config()
    loops = load_loops(demo_folder, config)
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (1, config.slice_len, 2)).astype(np.float32)
    write_beats(np.concatenate([loops.audio[:1], noise]), tmp_path, config=config)
    assert main(["score", "--data", str(demo_folder), "--generated", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_generated"] == 2
    assert report["n_similar"] == 1
    assert report["fraction_similar"] == pytest.approx(0.5)
    first = report["files"][0]
    assert first["name"] == "output000.wav" and first["similar"] is True
    assert first["nearest"][0]["train"] == loops.paths[0].name
    assert first["nearest"][0]["score"] == pytest.approx(0.0, abs=1e-6)


def test_score_with_the_seeds_decimation_flag(demo_folder, tmp_path, capsys):
    from beatgan.data import load_loops
    from beatgan.generation import write_beats

    config = Config(decimation="naive")
    loops = load_loops(demo_folder, config)
    write_beats(loops.audio[1:2], tmp_path, config=config)
    argv = ["score", "--data", str(demo_folder), "--generated", str(tmp_path), "--json"]
    assert main(argv) == 0  # the config in beats.json (naive) is the default
    naive = json.loads(capsys.readouterr().out)
    assert main(argv + ["--decimation", "polyphase"]) == 0
    polyphase = json.loads(capsys.readouterr().out)
    assert naive["n_similar"] == 1
    # The same file scored against anti-aliased loops is further away, but still this loop.
    def best(r):
        return r["files"][0]["nearest"][0]["score"]
    assert best(naive) < 1e-6 < best(polyphase)


def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["generate", "--weights", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "error" in err and "config.json" in err
    assert "Traceback" not in err


def test_config_flags_map_onto_the_config():
    from beatgan.cli import _config_from_args

    args = build_parser().parse_args(["train", "--out", "run", "--model-dim", "16", "--batch-size", "8",
                                      "--mixed-precision", "--decimation", "naive"])
    config = _config_from_args(args)
    assert (config.model_dim, config.batch_size, config.mixed_precision, config.decimation) == (16, 8, True, "naive")
    assert config.learning_rate == Config().learning_rate


def test_bpm_range_parses():
    args = build_parser().parse_args(["demo-data", "out", "--bpm", "90-140"])
    assert args.bpm == (90.0, 140.0)
    assert build_parser().parse_args(["demo-data", "out", "--bpm", "90.2-91"]).bpm == (90.2, 91.0)


def test_a_bpm_range_without_a_whole_tempo_is_refused_by_name(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo-data", "out", "--bpm", "90.2-90.8"])
    assert "--bpm range '90.2-90.8' holds no whole-number tempo" in capsys.readouterr().err


def test_score_names_an_unreadable_generated_file(demo_folder, tmp_path, capsys):
    (tmp_path / "output000.wav").write_text("not audio")
    assert main(["score", "--data", str(demo_folder), "--generated", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "output000.wav" in err and "not a readable audio file" in err and "Traceback" not in err


def test_score_refuses_a_lag_bound_longer_than_the_beat_naming_the_flag(tmp_path, capsys):
    (tmp_path / "output000.wav").write_text("never read")
    for ms in ("1e300", "960"):  # the scored 2 beats: 14,112 samples at 14.7 kHz, 960 ms
        assert main(["score", "--generated", str(tmp_path), "--max-shift-ms", ms]) == 2
        err = capsys.readouterr().err
        assert f"--max-shift-ms {float(ms):g} is longer than the scored beat: at most 959.9 ms" \
            in err and "max_shift_samples" not in err


def test_score_refuses_examples_over_a_readme_of_the_users_before_scoring(tmp_path, capsys):
    (tmp_path / "output000.wav").write_text("never read")
    (tmp_path / "README.md").write_text("# my project\n")
    assert main(["score", "--generated", str(tmp_path), "--examples", str(tmp_path)]) == 2
    assert "is not an index of similarity examples" in capsys.readouterr().err
    assert (tmp_path / "README.md").read_text() == "# my project\n"


def test_the_default_data_folder_is_recognised_however_it_is_spelled():
    from beatgan.config import is_default_data_dir as _is_default_data

    assert all(_is_default_data(f) for f in ("ULTIMATE_DRUM_LOOPS", "./ULTIMATE_DRUM_LOOPS/",
                                              "ULTIMATE_DRUM_LOOPS/"))
    assert not _is_default_data("ULTIMATE_DRUM_LOPS")
    assert not _is_default_data("x/ULTIMATE_DRUM_LOOPS")


def test_a_mistyped_data_folder_is_an_error_not_the_demo_pack(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "ULTIMATE_DRUM_LOPS"), "--out", str(tmp_path / "runs/a"),
                 "--model-dim", "2"]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # the run folder (and its parent) made for it are gone


def test_a_failed_command_leaves_no_output_folder_it_made(demo_folder, tiny_weights, tmp_path, capsys):
    import shutil

    (tmp_path / "beats").mkdir()
    (tmp_path / "beats/output000.wav").write_text("not audio")
    other = shutil.copytree(tiny_weights, tmp_path / "other")
    TINY.replace(model_dim=4).save(other / "config.json")  # weights that do not fit their config
    for args in (["score", "--data", str(demo_folder), "--generated", str(tmp_path / "beats"),
                  "--examples", str(tmp_path / "examples")],
                 ["generate", "--weights", str(other), "--out", str(tmp_path / "new/beats")],
                 ["loop", "--weights", str(other), "--out", str(tmp_path / "loops")]):
        assert main(args) == 2
    err = capsys.readouterr().err
    assert "not a readable audio file" in err and "does not fit its config.json" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beats", "other"]
    # A run folder that held something before is left as it was, lock file and all.
    run = tmp_path / "run"
    run.mkdir()
    assert main(["train", "--data", str(tmp_path / "nope"), "--out", str(run)]) == 2
    assert sorted(p.name for p in run.iterdir()) == [".lock"]


def test_demo_data_refuses_zero_loops_before_making_the_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["demo-data", str(tmp_path / "loops"), "--n", "0"])
    assert caught.value.code == 2
    assert "argument --n: expected a whole number >= 1, got '0'" in capsys.readouterr().err
    assert not (tmp_path / "loops").exists()


@pytest.mark.parametrize("sidecar", ['{"n": 1}', '{"config": ', '{"config": {"model_dims": 2}}'])
def test_score_names_a_beats_json_without_a_config(demo_folder, tmp_path, capsys, sidecar):
    (tmp_path / "beats.json").write_text(sidecar)
    assert main(["score", "--data", str(demo_folder), "--generated", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"beatgan score: error: {tmp_path / 'beats.json'}: holds no readable config (")
    assert err.rstrip().endswith("give --preset (e.g. --preset seed) to score without it")
    assert "Traceback" not in err


def test_a_diverged_run_ends_with_one_line_and_exit_code_1(demo_folder, tmp_path, capsys, monkeypatch):
    import beatgan.training

    def diverge(*args, **kwargs):
        raise beatgan.training.NonFiniteLossError("d_loss became NaN or Inf between iterations 3 and 4")

    monkeypatch.setattr(beatgan.training, "train", diverge)
    argv = ["train", "--data", str(demo_folder), "--out", str(tmp_path), "--model-dim", "2", "--batch-size", "2"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "stopped: d_loss became NaN" in err and "Traceback" not in err


def test_instability_flags_reach_train(demo_folder, tmp_path, capsys, monkeypatch):
    import beatgan.training

    seen = {}

    def capture(*args, **kwargs):
        seen.update(kwargs)
        raise beatgan.training.NonFiniteLossError("stop here")

    monkeypatch.setattr(beatgan.training, "train", capture)
    argv = ["train", "--data", str(demo_folder), "--out", str(tmp_path), "--model-dim", "2",
            "--batch-size", "2"]
    assert main(argv) == 1
    assert (seen["on_instability"], seen["max_rollbacks"]) == ("warn", 3)  # the defaults
    assert seen["checkpoint_minutes"] is None  # train picks it by on_instability
    assert main(argv + ["--on-instability", "rollback", "--max-rollbacks", "0"]) == 1
    assert (seen["on_instability"], seen["max_rollbacks"]) == ("rollback", 0)
    assert main(argv + ["--checkpoint-minutes", "2.5"]) == 1
    assert seen["checkpoint_minutes"] == 2.5
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv + ["--max-rollbacks", "-1"])
    assert "whole number >= 0" in capsys.readouterr().err


def test_negative_seeds_are_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--seed", "-1"])
    assert "whole number >= 0" in capsys.readouterr().err


def test_latent_seeds_past_one_word_are_refused_by_the_parser(capsys):
    from beatgan.config import MAX_SEED

    assert MAX_SEED == 2 ** 32 - 1
    for command in ("generate", "loop", "select"):
        extra = ["--run", "r"] if command == "select" else []
        parsed = build_parser().parse_args([command, *extra, "--seed", str(MAX_SEED)])
        assert parsed.seed == MAX_SEED
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, *extra, "--seed", str(2 ** 64 + 7)])
        assert f"expected a whole number 0-{MAX_SEED}" in capsys.readouterr().err


def test_score_with_metrics_prints_both_reports(demo_folder, tmp_path, capsys):
    from beatgan.data import load_loops
    from beatgan.generation import write_beats

    config = Config()
    loops = load_loops(demo_folder, config)
    write_beats(loops.audio[:2], tmp_path, config=config)
    assert main(["score", "--data", str(demo_folder), "--generated", str(tmp_path), "--json",
                 "--metrics"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_similar"] == 2
    assert report["metrics"]["n_generated"] == 2
    assert 0.0 <= report["metrics"]["metrics"]["tempo_consistency"] <= 1.0


@pytest.mark.parametrize("argv, expected", [
    (["generate", "--n", "-3"], "expected a whole number >= 1, got '-3'"),
    (["generate", "--n", "0"], "expected a whole number >= 1, got '0'"),
    (["app", "--port", "70000"], "expected a whole number 1-65535"),
    (["loop", "--bars", "400000"], "expected a whole number 1-1024"),
    (["loop", "--index", "99999999"], "expected a whole number 0-99999"),
    (["loop", "--count", "0"], "expected a whole number 1-1000"),
    (["loop", "--rate", "22050"], "invalid choice: 22050 (choose from 44100, 48000, 88200, 96000)"),
    (["loop", "--bpm", "20"], "expected a tempo from 40 to 300 bpm, got '20'"),
    (["loop", "--bpm", "nan"], "expected a finite number, got 'nan'"),
    (["loop", "--bpm", "140", "--tempo-method", "stretch"], "invalid choice: 'stretch'"),
    (["score", "--threshold", "-1"], "expected a number >= 0"),
    (["score", "--max-shift-ms", "-5"], "expected a number >= 0"),
    (["demo-data", "x", "--bpm", "1"], "--bpm takes tempos from 40 to 300"),
    (["demo-data", "x", "--bpm", "inf"], "--bpm takes tempos from 40 to 300"),
    (["demo-data", "x", "--bpm", "140-90"], "LOW <= HIGH"),
])
def test_out_of_range_arguments_are_refused_before_any_work(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert expected in capsys.readouterr().err


def test_resuming_without_config_flags_uses_the_runs_config(demo_folder, tmp_path, capsys,
                                                           monkeypatch):
    from beatgan import cli

    run = tmp_path / "run"
    base = ["train", "--data", str(demo_folder), "--out", str(run)]
    assert main(base + ["--iterations", "1", "--model-dim", "2", "--batch-size", "2"]) == 0
    assert main(base + ["--iterations", "2"]) == 0  # d = 2, batch 2 from run/config.json
    assert "trained to iteration 2 (resumed at 1)" in capsys.readouterr().out
    assert main(base + ["--iterations", "2"]) == 0
    assert "already at iteration 2: nothing to train" in capsys.readouterr().out
    loaded = []  # a changed config is refused before the loops are loaded (minutes for a pack)
    monkeypatch.setattr(cli, "_load_training_data", lambda *args, **kwargs: loaded.append(args))
    assert main(base + ["--iterations", "3", "--model-dim", "4"]) == 2  # a changed config
    assert "holds a run with another config; changed (run, now): {'model_dim': (2, 4)}" in \
        capsys.readouterr().err
    assert loaded == []
    assert Config.load(run / "config.json").model_dim == 2  # the run's own config is kept


def test_warnings_are_one_line_from_the_command(demo_folder, tmp_path):
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    folder = tmp_path / "loops"
    shutil.copytree(demo_folder, folder)
    (folder / "tr07_drlp_125_Broken_Full.wav").write_bytes(b"RIFF not really a wav")
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "beatgan", "train", "--data", str(folder),
                           "--out", str(tmp_path / "run"), "--iterations", "1", "--model-dim", "2",
                           "--batch-size", "2"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(repo)}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [line.split("\r")[-1] for line in done.stderr.splitlines() if "Broken" in line]
    assert len(lines) == 1 and lines[0].startswith("beatgan: warning: "), done.stderr
    assert "LoopWarning" not in done.stderr


def test_raw_on_weights_that_hold_only_the_average_is_refused(tiny_weights, tmp_path, capsys):
    import shutil

    ema_only = shutil.copytree(tiny_weights, tmp_path / "ema_only")
    info = json.loads((ema_only / "weights.json").read_text())
    (ema_only / "weights.json").write_text(json.dumps({**info, "ema": True}))
    out = tmp_path / "beats"
    assert main(["generate", "--weights", str(ema_only), "--raw", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"beatgan generate: error: --raw: {ema_only} holds only the generator's moving average "
        f"(no generator_raw.weights.h5); leave --raw out, or point --weights at a run's export/\n")
    assert not out.exists()
    # Weights trained without the average: the one generator file is the raw one.
    assert main(["generate", "--weights", str(tiny_weights), "--raw", "--n", "1", "--out", str(out)]) == 0
    (ema_only / "weights.json").write_text("{")
    assert main(["generate", "--weights", str(ema_only), "--out", str(tmp_path / "b2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"beatgan generate: error: {ema_only / 'weights.json'}: not readable (")
    assert "Traceback" not in err and not (tmp_path / "b2").exists()


@pytest.mark.parametrize("flags, message", [
    (["--model-dim", "0"], "Config: latent_dim and model_dim must be >= 1 (given: --model-dim 0)"),
    (["--no-ema", "--ema-decay", "1"],
     "Config: ema_decay must be in (0, 1), got 1.0 (given: --no-ema --ema-decay 1.0)"),
])
def test_a_bad_config_flag_is_named_as_the_user_typed_it(tmp_path, capsys, flags, message):
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run")] + flags) == 2
    assert capsys.readouterr().err == f"beatgan train: error: {message}\n"
    assert not (tmp_path / "run").exists()


def test_score_says_how_to_make_the_beats_it_cannot_find(demo_folder, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["score", "--data", str(demo_folder), "--generated", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == (f"beatgan score: error: generated beats: {tmp_path / 'nope'}: "
                                       f"no such folder; beatgan generate --out "
                                       f"{tmp_path / 'nope'} writes them\n")
    assert main(["score", "--data", str(demo_folder), "--generated", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.endswith(f"no *.wav files in {tmp_path / 'empty'}; beatgan "
                                            f"generate --out {tmp_path / 'empty'} writes them\n")
    loop = next(demo_folder.glob("*.wav"))  # a training loop given as a beat: 44.1 kHz
    (tmp_path / "loops").mkdir()
    (tmp_path / "loops" / loop.name).write_bytes(loop.read_bytes())
    assert main(["score", "--data", str(demo_folder), "--generated", str(tmp_path / "loops")]) == 2
    assert capsys.readouterr().err == (
        f"beatgan score: error: {tmp_path / 'loops' / loop.name}: sample rate 44100 Hz, expected "
        f"14700 Hz (the model's rate): --generated takes beats that beatgan generate wrote, not "
        f"loops\n")


def test_the_backend_keras_runs_on_can_be_named_whatever_the_environment_says(monkeypatch):
    import keras

    from beatgan.cli import _set_backend

    loaded = keras.backend.backend()  # the tests' default, tensorflow (conftest)
    monkeypatch.delenv("KERAS_BACKEND", raising=False)  # as after a plain `import keras`
    _set_backend(loaded)
    other = "jax" if loaded != "jax" else "tensorflow"
    with pytest.raises(ValueError, match=f"already loaded with the {loaded} backend; cannot "
                                         f"switch to {other}"):
        _set_backend(other)


def test_score_threshold_and_lag_bound_reach_the_report(demo_folder, tmp_path, capsys):
    """--threshold decides which beats count as similar; --max-shift-ms 0 switches the
    shift-tolerant score off, 5 bounds it at round(5 ms x 14.7 kHz) = 74 samples."""
    from beatgan.data import load_loops
    from beatgan.generation import write_beats

    config = Config()
    loops = load_loops(demo_folder, config)
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (1, config.slice_len, 2)).astype(np.float32)
    write_beats(np.concatenate([loops.audio[:1], noise]), tmp_path, config=config)
    argv = ["score", "--data", str(demo_folder), "--generated", str(tmp_path), "--json"]
    assert main(argv) == 0
    default = json.loads(capsys.readouterr().out)
    noise_score = default["files"][1]["nearest"][0]["score"]
    assert default["threshold"] == 0.1 and default["n_similar"] == 1 and noise_score > 0.1
    # A threshold just above the noise's best score takes it in too.
    threshold = round(noise_score + 0.01, 4)
    assert main(argv + ["--threshold", str(threshold)]) == 0
    wide = json.loads(capsys.readouterr().out)
    assert wide["threshold"] == threshold
    assert (wide["n_similar"], [f["similar"] for f in wide["files"]]) == (2, [True, True])
    assert default["max_shift_samples"] == round(20e-3 * config.sample_rate_hz)  # the default
    assert main(argv + ["--max-shift-ms", "5"]) == 0
    assert json.loads(capsys.readouterr().out)["max_shift_samples"] == 74
    assert main(argv + ["--max-shift-ms", "0"]) == 0
    off = json.loads(capsys.readouterr().out)
    assert off["fraction_similar_shift_tolerant"] is None
    assert "nearest_shift_tolerant" not in off["files"][0]


def test_train_flags_reach_train(demo_folder, tmp_path, monkeypatch):
    """Each flag of ``beatgan train`` arrives at ``training.train`` with its value (minutes as
    seconds); without --iterations or --max-minutes the target is 1000 iterations."""
    import beatgan.training

    seen = {}

    def capture(data, config, **kwargs):
        seen.clear()
        seen.update(kwargs, config=config)
        raise beatgan.training.NonFiniteLossError("stop here")

    monkeypatch.setattr(beatgan.training, "train", capture)
    argv = ["train", "--data", str(demo_folder), "--out", str(tmp_path / "run"), "--model-dim",
            "2", "--batch-size", "2"]
    assert main(argv) == 1
    assert (seen["iterations"], seen["max_seconds"], seen["checkpoint_every"], seen["keep"],
            seen["preview_every"], seen["export_dtype"], seen["jit_compile"], seen["jax_step"],
            seen["devices"], seen["init_from"], seen["critic_warmup"]) == (
        1000, None, 5000, 3, 500, "float32", False, "fused", None, None, None)
    assert main(argv + ["--max-minutes", "0.5", "--checkpoint-every", "7", "--keep-checkpoints",
                        "11", "--preview-every", "13", "--export-dtype", "float16",
                        "--jit-compile", "--jax-step", "plain", "--devices", "1"]) == 1
    assert (seen["iterations"], seen["max_seconds"], seen["checkpoint_every"], seen["keep"],
            seen["preview_every"], seen["export_dtype"], seen["jit_compile"], seen["jax_step"],
            seen["devices"]) == (None, 30.0, 7, 11, 13, "float16", True, "plain", "1")
    assert main(argv + ["--iterations", "17", "--max-minutes", "2"]) == 1
    assert (seen["iterations"], seen["max_seconds"]) == (17, 120.0)
    assert (seen["config"].model_dim, seen["config"].batch_size) == (2, 2)


def test_ctrl_c_in_a_command_is_exit_code_130_and_one_line(tmp_path, monkeypatch, capsys):
    import beatgan.synth

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(beatgan.synth, "write_demo_pack", interrupted)
    assert main(["demo-data", str(tmp_path / "loops")]) == 130
    assert capsys.readouterr().err == "beatgan demo-data: interrupted\n"
    assert not (tmp_path / "loops").exists()  # the folder it made is gone again


def test_demo_data_flags_reach_the_pack(tmp_path, capsys):
    """--n, --seed and --bpm make the pack ``write_demo_pack`` makes with them, byte for byte."""
    from beatgan.synth import write_demo_pack

    assert main(["demo-data", str(tmp_path / "cli"), "--n", "2", "--seed", "5",
                 "--bpm", "100"]) == 0
    assert capsys.readouterr().out == f"wrote 2 demo loops to {tmp_path / 'cli'}\n"
    expected = write_demo_pack(tmp_path / "lib", n=2, seed=5, bpm=100.0)
    written = sorted((tmp_path / "cli").glob("*.wav"))
    assert [p.name for p in written] == sorted(p.name for p in expected)
    assert all(p.name.split("_")[2] == "100" for p in written)  # the tempo in the name
    for path in written:
        assert path.read_bytes() == (tmp_path / "lib" / path.name).read_bytes()
    other = sorted(write_demo_pack(tmp_path / "seed0", n=2, seed=0, bpm=100.0))
    assert [p.read_bytes() for p in other] != [p.read_bytes() for p in written]  # seed 0's differ
