"""The config reproduces the seed's numbers and refuses bad values with a clear message."""

import pytest

from beatgan.config import Config, preset


def test_segment_lengths_match_the_seed():
    config = Config()
    assert config.segment_len(125) == 14112
    assert config.segment_len(124) == 14226
    assert config.score_len == 14112
    assert config.decimation_factor == 3


def test_round_trip_through_json(tmp_path):
    config = Config(model_dim=8, decimation="naive", seed=7)
    path = config.save(tmp_path)
    assert path.name == "config.json"
    assert Config.load(tmp_path) == config


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"decimation": "linear"}, "decimation"),
        ({"slice_len": 20000}, "slice_len"),
        ({"sample_rate_hz": 16000}, "divide"),
        ({"beats": 4}, "more than slice_len"),
        ({"learning_rate": float("inf")}, "numbers must be finite, got learning_rate=inf"),
        ({"bpm": float("nan")}, "bpm=nan"),
        ({"target_bpm": 140.0}, r"target_bpm \(140\) must equal bpm \(125\)"),
    ],
)
def test_bad_values_are_refused_with_a_reason(changes, words):
    with pytest.raises(ValueError, match=words):
        Config(**changes)


@pytest.mark.parametrize("field, refused, accepted, words", [
    ("noise_amplitude", 2 ** 23, 2 ** 23 - 1, r"noise_amplitude must be in \[0, 2\*\*23\)"),
    ("noise_amplitude", -1, 0, r"noise_amplitude must be in \[0, 2\*\*23\)"),
    ("channels", 3, 2, "channels must be 1 or 2, got 3"),
    ("channels", 0, 1, "channels must be 1 or 2, got 0"),
    ("noise_copies", 0, 1, "noise_copies must be at least 1"),
    ("ema_decay", 0.0, 1e-9, r"ema_decay must be in \(0, 1\), got 0.0"),
])
def test_each_bound_refuses_the_value_past_it_and_keeps_the_one_on_it(field, refused, accepted,
                                                                      words):
    with pytest.raises(ValueError, match=words):
        Config(**{field: refused})
    assert getattr(Config(**{field: accepted}), field) == accepted


def test_unknown_keys_are_refused():
    with pytest.raises(ValueError, match="unknown field"):
        Config.from_dict({"model_dims": 64})


@pytest.mark.parametrize("text, words", [
    ('{"model_dim": ', "config.json: not a readable config \\(Expecting value"),
    ("[1]", "config.json: expected a JSON object of Config fields, got list"),
    ('{"model_dims": 2}', "config.json: Config: unknown field\\(s\\) \\['model_dims'\\]"),
    ('{"model_dim": 0}', "config.json: Config: latent_dim and model_dim must be >= 1"),
])
def test_a_bad_config_file_is_named_in_the_error(tmp_path, text, words):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ValueError, match=words) as caught:
        Config.load(tmp_path)
    assert str(caught.value).startswith(str(tmp_path / "config.json"))


def test_preset_with_changes():
    assert preset("seed", model_dim=16).model_dim == 16
    with pytest.raises(ValueError, match="unknown preset"):
        preset("nope")


def test_loops_brought_to_a_tempo_are_generated_at_it():
    config = Config(target_bpm=124.0, bpm=124.0)
    assert config.score_len == Config().segment_len(124.0) == 14226


def test_the_commands_target_bpm_sets_the_generators_tempo_and_flags_are_checked(capsys):
    from beatgan.cli import _train_config, build_parser

    parser = build_parser()
    config = _train_config(parser.parse_args(["train", "--out", "x", "--target-bpm", "140"]))
    assert (config.target_bpm, config.bpm) == (140.0, 140.0)
    for flag, value in (("--target-bpm", "inf"), ("--learning-rate", "nan"), ("--seed", "-1"),
                        ("--model-dim", "2.5")):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", "--out", "x", flag, value])
        assert f"argument {flag}:" in capsys.readouterr().err


def test_the_training_seed_is_one_32_bit_word(tmp_path, capsys):
    from beatgan.cli import main

    assert Config(seed=2 ** 32 - 1).seed == 2 ** 32 - 1
    for seed in (-1, 2 ** 32):
        with pytest.raises(ValueError, match="seed must be 0-4294967295"):
            Config(seed=seed)
    assert main(["train", "--out", str(tmp_path / "run"), "--seed", str(2 ** 32),
                 "--iterations", "1"]) == 2
    assert "seed must be 0-4294967295, got 4294967296 (given: --seed 4294967296)" in \
        capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_model_whose_beats_do_not_tile_a_bar_is_refused_before_training(tmp_path, capsys):
    from beatgan.cli import main
    from beatgan.training import check_generable

    check_generable(Config(beats=1))
    with pytest.raises(ValueError, match="beats=3 cannot be generated"):
        check_generable(Config(beats=3, slice_len=32768))
    assert main(["train", "--out", str(tmp_path / "run"), "--preset", "bar", "--beats", "3",
                 "--model-dim", "2", "--iterations", "1"]) == 2
    assert "beats=3 cannot be generated" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
