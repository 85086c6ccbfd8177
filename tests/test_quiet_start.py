"""A quiet, fast start: no TensorFlow C++ lines, no Keras before the weights are known to exist."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beatgan.cli import LOOP_STRUCTURES, build_parser, main, train_summary
from beatgan.quiet import ABSL_LINE, drop_absl_lines

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, **env_changes) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES")}
    env.update(PYTHONPATH=str(ROOT), **env_changes)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)


def test_absl_lines_are_recognised_and_other_lines_kept():
    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1795769787.493984    5010 port.cc:153] oneDNN custom operations are on.\n"
            "E0000 00:00:1795769791.225161    5010 cuda_platform.cc:52] failed call to cuInit\n"
            "UserWarning: something real\n")
    assert drop_absl_lines(text) == "UserWarning: something real\n"
    assert not ABSL_LINE.match("Epoch 1/3")


def test_inside_the_block_absl_lines_are_dropped_and_the_rest_reaches_stderr(capfd):
    from beatgan.quiet import absl_lines_dropped

    with absl_lines_dropped():
        os.write(2, b"I0000 00:00:1795769787.493984    5010 port.cc:153] oneDNN custom ops.\n"
                    b"To enable the following instructions: AVX2 FMA, rebuild TensorFlow.\n"
                    b"Traceback (most recent call last): a real error\n")
    assert capfd.readouterr().err == "Traceback (most recent call last): a real error\n"


@pytest.mark.slow
def test_tensorflow_through_beatgan_prints_nothing_on_stderr():
    result = _python("import beatgan, keras, tensorflow as tf, sys\n"
                     "print(int(tf.reduce_sum(tf.ones(3))))\n"
                     "sys.stderr.write('still mine\\n')\n", KERAS_BACKEND="tensorflow")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"
    assert result.stderr == "still mine\n", result.stderr


def test_help_does_not_import_tensorflow_or_keras():
    result = _python("import sys\nfrom beatgan.cli import main\n"
                     "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
                     "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("[]")
    assert result.stderr == ""


@pytest.mark.parametrize("command", ["generate", "loop", "app"])
def test_commands_without_weights_fail_fast_with_the_fix(command, tmp_path):
    start = time.perf_counter()
    result = _python(f"import sys\nfrom beatgan.cli import main\n"
                     f"code = main([{command!r}, '--weights', {str(tmp_path)!r}])\n"
                     f"print(code, 'keras' in sys.modules)")
    seconds = time.perf_counter() - start
    assert result.stdout.split() == ["2", "False"], result.stderr
    assert "no trained weights" in result.stderr and "beatgan train --out" in result.stderr
    assert seconds < 5.0  # a bare interpreter start included; Keras alone takes longer


def test_version_and_loop_choices(capsys):
    import beatgan
    from beatgan import loop_export

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"beatgan {beatgan.__version__}"
    assert LOOP_STRUCTURES == loop_export.STRUCTURES
    with pytest.raises(SystemExit):
        build_parser().parse_args(["loop", "--structure", "XYZ"])
    assert "invalid choice" in capsys.readouterr().err


def test_every_flag_has_help():
    parser = build_parser()
    for name, sub in parser._subparsers._group_actions[0].choices.items():
        for action in sub._actions:
            assert action.help, f"beatgan {name} {action.option_strings or action.dest} has no help"


def test_train_summary_is_one_line_with_the_next_command(tmp_path):
    from types import SimpleNamespace

    result = SimpleNamespace(step=200, resumed_from=100, seconds=75.4, run_dir=tmp_path,
                             stop_reason="iterations", unstable_at=None, rollbacks=[],
                             export_dir=tmp_path / "export", started_from=None,
                             history=[{"d_loss": -1.23456, "g_loss": 0.5}])
    line = train_summary(result)
    assert "\n" not in line
    assert line == (f"trained to iteration 200 (resumed at 100) in 1 min 15 s; d_loss -1.23, "
                    f"g_loss 0.5; weights in {tmp_path / 'export'}. "
                    f"Next: beatgan generate --weights {tmp_path / 'export'}")
    result.started_from = {"folder": "weights", "iterations": 11210}  # a warm start
    assert train_summary(result).startswith(
        "trained to iteration 200 (resumed at 100) (from weights, 11,210 iterations before this "
        "run) in 1 min 15 s;")
    assert train_summary(result).endswith(f"Next: beatgan generate --weights {tmp_path / 'export'}")
    result.started_from["critic_warmup"] = 200  # stopped where its critic warm-up ends
    assert train_summary(result).endswith(
        "The generator has not trained yet (its critic warm-up ends at iteration 200): the same "
        "command with a higher --iterations, or a --max-minutes, goes on")
    result.step = 201
    assert train_summary(result).endswith(f"Next: beatgan generate --weights {tmp_path / 'export'}")
