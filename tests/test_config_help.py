"""Every Config field says what it is where it is declared, and the CLI's help reads it from there."""

import argparse
import dataclasses
import re

import pytest

from beatgan.cli import build_parser
from beatgan.config import Config, describe

FIELDS = [f.name for f in dataclasses.fields(Config)]
#: The configuration flags of ``beatgan train`` a user's probe found bare ("(default N)").
TRAIN_FLAGS = ["model_dim", "batch_size", "phase_shuffle", "learning_rate", "d_updates_per_g",
               "slice_len", "target_bpm", "beats", "decimation", "tempo_method", "detect_tempo",
               "ema_decay", "mixed_precision", "seed"]


@pytest.mark.parametrize("name", FIELDS)
def test_every_field_has_a_one_line_description(name):
    text = describe(name)
    assert text.strip() and "\n" not in text and len(text) <= 120
    assert text != name.replace("_", " ")


def test_an_unknown_field_is_named_in_the_error():
    with pytest.raises(ValueError, match="no field 'model_width'"):
        describe("model_width")


def _subcommand(command: str) -> argparse.ArgumentParser:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[command]


def _config_flags(command: str) -> dict[str, str]:
    """Config field -> help of each flag in ``command``'s configuration group."""
    parser = _subcommand(command)
    group = next(g for g in parser._action_groups if g.title.startswith("configuration"))
    return {a.dest: a.help for a in group._group_actions if a.dest in FIELDS}


def _collapsed(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("command", ["train", "score"])
def test_each_config_flag_help_is_the_fields_description_and_its_default(command):
    flags = _config_flags(command)
    assert flags, f"{command} has no configuration flags"
    for name, help_text in flags.items():
        default = Config.__dataclass_fields__[name].default
        shown = "unset" if default is None else str(default)
        assert help_text == f"{describe(name)} (default {shown})", name


def test_train_help_shows_every_described_flag():
    assert set(TRAIN_FLAGS) <= set(_config_flags("train"))
    shown = _collapsed(_subcommand("train").format_help())
    for name in TRAIN_FLAGS:
        flag = "--" + name.replace("_", "-")
        assert re.search(re.escape(flag) + r"\b", shown), flag
        assert _collapsed(describe(name)) in shown, name
