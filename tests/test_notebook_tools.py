"""Parameter checks, output lightening and the plot helpers behind the notebook."""

import dataclasses
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest

from beatgan.config import Config
from beatgan.notebook import check_parameters, lighten_outputs, parse_parameter, play
from beatgan.plots import log_spectrogram_db, loss_curves, score_histogram


def _notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_code_cell("iterations = 0  # 0 == load\nmodel_dim: int = 64  # d = 64\n",
                                  metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print(iterations)"),
    ]
    return nb


@pytest.mark.parametrize("text, expected", [
    ("iterations=200", ("iterations", 200)),
    ("name=demo", ("name", "demo")),
    ("weights='w'", ("weights", "w")),
    ("rate=1e-4", ("rate", 1e-4)),
])
def test_parse_parameter(text, expected):
    assert parse_parameter(text) == expected


def test_parse_parameter_refuses_a_bare_word():
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_parameter("iterations")


def test_parameters_of_the_parameters_cell_pass_and_a_typo_is_an_error(tmp_path):
    path = tmp_path / "n.ipynb"
    nbformat.write(_notebook(), path)
    check_parameters(path, {"iterations": 5, "model_dim": 8})
    with pytest.raises(ValueError, match="iteratons"):
        check_parameters(path, {"iteratons": 3})


def test_a_parameter_of_another_type_is_refused_before_a_kernel_starts(tmp_path):
    nb = _notebook()
    nb.cells[1].source += 'data_dir = "loops"\nthreshold = 0.1\nfast = True\n'
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    check_parameters(path, {"iterations": 5, "data_dir": "mine", "threshold": 1, "fast": False})
    with pytest.raises(ValueError) as caught:
        check_parameters(path, {"iterations": "abc"})
    assert str(caught.value) == ("notebook parameter iterations='abc' has type str; the "
                                 "parameters cell sets iterations = 0 (int)")
    with pytest.raises(ValueError, match="iterations=True has type bool"):
        check_parameters(path, {"iterations": True})
    with pytest.raises(ValueError, match="""quote a text value: -p data_dir='"123"'"""):
        check_parameters(path, {"data_dir": 123})


@pytest.mark.parametrize("content", [b"RIFF\xa1\x00 not text", b"hi\n", b"{}", b"[1, 2]"])
def test_a_file_that_is_not_a_notebook_is_named_with_what_to_give(tmp_path, content):
    path = tmp_path / "beats.wav"
    path.write_bytes(content)
    with pytest.raises(ValueError) as caught:
        check_parameters(path, {})
    message = str(caught.value)
    assert message.startswith(f"{path}: not a Jupyter notebook (")
    assert message.endswith("expected an .ipynb file such as beat_gan.ipynb")
    assert "\n" not in message


def test_papermill_timing_metadata_is_dropped_from_light_notebooks():
    nb = _notebook()
    nb.metadata["papermill"] = {"duration": 1.0}
    nb.cells[2].metadata.update(papermill={"duration": 0.5}, tags=[])
    lighten_outputs(nb)
    assert "papermill" not in nb.metadata and nb.cells[2].metadata == {}
    assert nb.cells[1].metadata["tags"] == ["parameters"]


def test_audio_players_are_removed_but_text_is_kept():
    nb = _notebook()
    player = play(np.zeros((100, 2)), sample_rate_hz=14700)
    nb.cells[2].outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": player.data}),
        nbformat.v4.new_output("stream", name="stdout", text="15 of 40 similar\n"),
        nbformat.v4.new_output("stream", name="stderr", text=(
            "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1795484984.627078    9343 port.cc:153] oneDNN custom operations are on.\n")),
        nbformat.v4.new_output("stream", name="stderr", text="loading loops: 100%\n"),
    ]
    lighten_outputs(nb)
    outputs = nb.cells[2].outputs
    assert "<audio" not in str(outputs[0]["data"])
    assert outputs[1]["text"] == "15 of 40 similar\n"
    assert [o["text"] for o in outputs[2:]] == ["loading loops: 100%\n"]  # TF's C++ log lines gone


def test_spectrogram_peaks_at_the_tone_frequency():
    rate = 14700
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 1000.0 * t)
    db, freqs, times = log_spectrogram_db(np.stack([tone, tone], axis=1), sample_rate_hz=rate)
    assert db.shape == (len(freqs), len(times))
    peak_hz = freqs[np.argmax(db.mean(axis=1))]
    assert abs(peak_hz - 1000.0) <= rate / 512


def test_score_histogram_counts_similar_beats_in_its_title():
    fig = score_histogram(np.array([0.05, 0.1, 0.5, np.inf]), threshold=0.1)
    assert "2 of 4 similar" in fig.axes[0].get_title()


def test_score_histogram_keeps_its_bars_narrow_whatever_the_outliers():
    scores = np.array([0.02, 0.05, 0.1, 0.11, 0.5, 12.0, np.inf])
    bars = score_histogram(scores, threshold=0.1).axes[0].patches
    assert len(bars) == 41  # 0.05 wide up to 2, and one bar for everything beyond
    left = [(b.get_x(), b.get_height()) for b in bars if b.get_height() > 0]
    heights = {round(x, 2): h for x, h in left}
    # 0.02 and 0.05 left of 0.05's edge; 0.1, similar, left of the threshold; 0.11 right of it.
    assert heights == {0.0: 2, 0.05: 1, 0.1: 1, 0.45: 1, 2.0: 2}


def test_loss_curves_mark_the_points_of_a_short_history():
    one = loss_curves({"step": [1], "d_loss": [0.5]}).axes[0].lines[0]
    assert one.get_marker() == "."
    many = loss_curves({"step": [1, 2, 3], "d_loss": [0.5, 0.4, 0.3]}).axes[0].lines[0]
    assert many.get_marker() in (None, "None", "")


def test_loss_curves_draw_one_panel_per_loss():
    history = {"step": [1, 2, 3], "d_loss": [1.0, 0.5, 0.2], "g_loss": [0.1, 0.2, 0.3]}
    fig = loss_curves(history)
    assert [ax.get_title() for ax in fig.axes] == ["d_loss", "g_loss"]


def test_loss_curves_symlog_keeps_small_and_huge_values_apart():
    history = {"step": [1, 2, 3], "wasserstein": [5.0, -1000.0, 2.0]}
    assert loss_curves(history).axes[0].get_yscale() == "linear"
    ax = loss_curves(history, yscale="symlog").axes[0]
    assert ax.get_yscale() == "symlog"
    low, high = ax.get_ylim()
    assert low <= -1000.0 and high >= 5.0
    with pytest.raises(ValueError, match="yscale"):
        loss_curves(history, yscale="log")


def test_loss_curves_show_what_a_rollback_discarded():
    history = {"step": [10, 20, 30, 40], "wasserstein": [5.0, 4.0, 4.5, 4.2]}
    discarded = [{"step": 30, "wasserstein": 40.0}, {"step": 40, "wasserstein": 900.0}]
    event = {"at_step": 40, "to_step": 20, "discarded_history": discarded}
    ax = loss_curves(history, rollbacks=[event]).axes[0]
    kept, dropped = ax.lines[0], ax.lines[1]
    assert list(kept.get_ydata()) == [5.0, 4.0, 4.5, 4.2]
    assert list(dropped.get_xdata()) == [30, 40] and list(dropped.get_ydata()) == [40.0, 900.0]
    assert list(ax.lines[2].get_xdata()) == [20, 20]  # the line at the iteration returned to
    assert len(loss_curves(history, x_key="step").axes[0].lines) == 1


def test_spectrogram_grid_shares_one_level_scale():
    """A clip 40 dB quieter than its neighbour must not be drawn at the same brightness."""
    from beatgan.plots import spectrogram_grid

    rate = 14700
    loud = np.random.default_rng(0).normal(0, 0.5, (rate // 2, 2))
    fig = spectrogram_grid([("row", [loud, loud * 0.01], ["loud", "quiet"])], sample_rate_hz=rate)
    (lo_a, hi_a), (lo_b, hi_b) = (ax.collections[0].get_clim() for ax in fig.axes[:2])
    assert (lo_a, hi_a) == (lo_b, hi_b)


def _small_report(rng):
    from beatgan import Config
    from beatgan.novelty import score_novelty

    config = Config()
    train = rng.uniform(-0.5, 0.5, (3, config.score_len, 2)).astype(np.float32)
    generated = np.concatenate([train[1:2], 0.5 * train[2:3], rng.uniform(-0.5, 0.5, (1, config.score_len, 2))])
    report = score_novelty(train, generated, train_names=["a.wav", "b.wav", "c.wav"],
                           generated_names=["output000.wav", "output001.wav", "output002.wav"],
                           config=config, max_shift_ms=None)
    return report, generated.astype(np.float32), config


def test_closest_beats_table_lists_the_closest_first(rng):
    from beatgan.notebook import closest_beats_table

    report, _, _ = _small_report(rng)
    lines = closest_beats_table(report, rows=2).splitlines()
    assert len(lines) == 4  # header, rule, two beats
    assert lines[2].split()[:2] == ["output000.wav", "0.0000"] and lines[2].endswith("b.wav")
    assert lines[3].startswith("output001.wav") and lines[3].endswith("c.wav")  # 0.5 x c: s = 0.25


def test_the_notebook_reads_each_beats_nearest_loop_and_best_shifted_score(rng):
    """Beat 0 is loop b itself, beat 1 half of loop c (s = 0.25 at lag 0): their nearest rows,
    and their best shift-tolerant scores; none without the shift-tolerant score."""
    from beatgan.notebook import nearest_train_index, shift_best_scores
    from beatgan.novelty import score_novelty

    report, generated, config = _small_report(rng)
    assert [nearest_train_index(report, i) for i in (0, 1)] == [1, 2]
    assert shift_best_scores(report) is None  # scored with max_shift_ms=None
    train = rng.uniform(-0.5, 0.5, (3, config.score_len, 2)).astype(np.float32)
    shifted = score_novelty(train, np.concatenate([train[1:2], 0.5 * train[2:3]]),
                            train_names=["a.wav", "b.wav", "c.wav"],
                            generated_names=["output000.wav", "output001.wav"], config=config,
                            max_shift_ms=20.0)
    np.testing.assert_allclose(shift_best_scores(shifted), [0.0, 0.25], atol=1e-6)


def test_history_columns_turns_rows_into_one_list_per_column():
    from beatgan.notebook import history_columns

    rows = [{"step": 1, "d_loss": -1.5, "g_loss": 0.25}, {"step": 2, "d_loss": -2.5, "g_loss": 0.5}]
    assert history_columns(rows) == {"step": [1, 2], "d_loss": [-1.5, -2.5], "g_loss": [0.25, 0.5]}
    assert history_columns([]) == {}


def test_beat_grid_has_one_thumbnail_and_player_per_beat_and_survives_lightening(rng):
    import nbformat

    from beatgan.notebook import PREVIEW_RATE_HZ, beat_grid, lighten_outputs

    report, audio, config = _small_report(rng)
    html = beat_grid(audio, names=["output000.wav", "output001.wav", "output002.wav"],
                     scores=report.best_scores, sample_rate_hz=config.sample_rate_hz).data
    assert html.count("<audio") == 3 and html.count("data:image/png") == 3
    assert "output001 s=0.25" in html
    # A preview: mono at PREVIEW_RATE_HZ, so about 14112 / 4 samples of 2 bytes per beat.
    import base64
    import io

    import soundfile as sf

    wav = base64.b64decode(html.split('src="data:audio/wav;base64,')[1].split('"')[0])
    info = sf.info(io.BytesIO(wav))
    assert (info.samplerate, info.channels) == (PREVIEW_RATE_HZ, 1)
    assert info.frames == audio.shape[1] // 2
    cell = nbformat.v4.new_code_cell("grid")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": html})]
    notebook = nbformat.v4.new_notebook(cells=[cell])
    lighten_outputs(notebook)
    assert notebook.cells[0].outputs[0]["data"]["text/html"] == html


# --- run-notebook without a GPU: the CPU fallback's model size ---------------------------------
NOTEBOOK = Path(__file__).resolve().parents[1] / "beat_gan.ipynb"


def _no_probe():
    raise AssertionError("the GPU probe was asked although the answer cannot change anything")


def test_training_without_a_gpu_or_a_size_takes_the_notebooks_cpu_size(monkeypatch):
    from beatgan import notebook
    from beatgan.notebook import parameter_defaults, training_size

    defaults = parameter_defaults(NOTEBOOK)
    small = {"model_dim": defaults["fallback_model_dim"], "batch_size": defaults["fallback_batch_size"]}
    assert small == {"model_dim": 8, "batch_size": 16} and defaults["model_dim"] == 64
    chosen, note = training_size(NOTEBOOK, {"iterations": 200}, gpu=False)
    assert chosen == {"iterations": 200, **small}
    assert "no GPU" in note and "d = 8, batch 16" in note and "-p model_dim=64 -p batch_size=64" in note
    assert "\n" not in note
    # The fallback size as the user set it; on a GPU the preset.
    chosen, _ = training_size(NOTEBOOK, {"iterations": 5, "fallback_model_dim": 4}, gpu=False)
    assert (chosen["model_dim"], chosen["batch_size"]) == (4, 16)
    assert training_size(NOTEBOOK, {"iterations": 200}, gpu=True) == ({"iterations": 200}, None)
    # A size given, or no training: unchanged, and no probe.
    monkeypatch.setattr(notebook, "gpu_visible", _no_probe)
    for given in ({"iterations": 200, "model_dim": 32}, {"iterations": 200, "batch_size": 8},
                  {}, {"iterations": 0}):
        assert training_size(NOTEBOOK, given) == (given, None)


def test_going_on_from_weights_without_a_gpu_keeps_their_size_and_says_so():
    from beatgan.notebook import training_size

    chosen, note = training_size(NOTEBOOK, {"iterations": 100, "continue_training": True},
                                 gpu=False)
    assert chosen == {"iterations": 100, "continue_training": True, "batch_size": 16}
    assert "going on from weights's weights at their own size" in note and "d = 8" not in note


def test_run_notebook_saves_to_its_output_and_lightens_only_when_asked(tmp_path, monkeypatch):
    """papermill stood in for by a copy that adds an audio player to the first cell: the saved
    notebook keeps it, but with light=True; the source notebook is left as it was."""
    import nbformat
    import papermill

    from beatgan.notebook import run_notebook

    path = _notebook_with_parameters(tmp_path, "iterations = 0")
    source = path.read_bytes()

    def execute(input_path, output_path, **kwargs):
        notebook = nbformat.read(input_path, as_version=4)
        notebook.cells[0].outputs = [nbformat.v4.new_output(
            "display_data", data={"text/html": '<audio controls src="x"></audio>'})]
        nbformat.write(notebook, output_path)

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    for light, out in ((False, tmp_path / "full.ipynb"), (True, tmp_path / "light.ipynb")):
        assert run_notebook(path, output=out, light=light) == out
        (output,) = nbformat.read(out, as_version=4).cells[0].outputs
        html = output["data"].get("text/html", "")
        assert ("<audio" in html) is not light, light
    assert path.read_bytes() == source


def _notebook_with_parameters(folder: Path, source: str) -> Path:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source, metadata={"tags": ["parameters"]})]
    path = folder / "n.ipynb"
    nbformat.write(notebook, path)
    return path


def test_a_parameters_cell_with_magics_is_read_as_the_kernel_reads_it(tmp_path):
    from beatgan.notebook import parameter_defaults

    path = _notebook_with_parameters(tmp_path, "%matplotlib inline\n!echo hi\niterations = 5\n")
    assert parameter_defaults(path) == {"iterations": 5}
    broken = _notebook_with_parameters(tmp_path, "iterations = = 5\n")
    with pytest.raises(ValueError, match="the cell tagged 'parameters' is not valid Python"):
        parameter_defaults(broken)


def test_an_output_that_is_a_folder_is_refused_before_the_kernel_starts(tmp_path, monkeypatch):
    import papermill

    from beatgan.notebook import run_notebook

    monkeypatch.setattr(papermill, "execute_notebook", _no_probe)  # must not be reached
    path = _notebook_with_parameters(tmp_path, "iterations = 5\n")
    (tmp_path / "out").mkdir()
    with pytest.raises(ValueError, match="is a folder: name the executed notebook's file"):
        run_notebook(path, output=tmp_path / "out")


def test_a_gpu_probe_that_hangs_is_no_answer(monkeypatch):
    from beatgan import notebook

    monkeypatch.setattr(notebook, "GPU_PROBE_TIMEOUT_S", 0.5)
    monkeypatch.setattr(notebook, "_GPU_PROBE", "import time; time.sleep(60)")
    assert notebook.gpu_visible() is None


def test_the_gpu_probe_answers_no_when_cuda_hides_every_gpu(monkeypatch):
    from beatgan.notebook import gpu_visible

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpu_visible() is False  # not None: the probe ran and answered


def test_run_notebook_command_prints_the_choice_and_passes_the_size(monkeypatch, capsys, tmp_path):
    from beatgan import notebook
    from beatgan.cli import main

    ran = {}
    monkeypatch.setattr(notebook, "gpu_visible", lambda: False)
    monkeypatch.setattr(notebook, "run_notebook", lambda path, **kw: ran.update(kw))
    assert main(["run-notebook", str(NOTEBOOK), "--output", str(tmp_path / "o.ipynb"),
                 "-p", "iterations=50"]) == 0
    assert ran["parameters"] == {"iterations": 50, "model_dim": 8, "batch_size": 16}
    assert capsys.readouterr().out.startswith("beatgan: no GPU visible: training the notebook's CPU size")


# --- "Train or load": which way it goes -------------------------------------------------------
def test_choose_mode_loads_trains_continues_or_falls_back(tiny_weights, tmp_path):
    from beatgan.notebook import choose_mode, run_folder

    assert choose_mode(weights_dir=tiny_weights, iterations=0)[0] == "load"
    mode, config = choose_mode(weights_dir=tiny_weights, iterations=5, model_dim=16)
    assert (mode, config.model_dim) == ("train", 16)
    mode, config = choose_mode(weights_dir=tiny_weights, iterations=5, model_dim=16, batch_size=4,
                               continue_training=True)
    assert (mode, config.model_dim, config.batch_size) == ("continue", 2, 4)  # the weights' shape
    trained_in_bf16 = tmp_path / "bf16"
    shutil.copytree(tiny_weights, trained_in_bf16)
    dataclasses.replace(Config.load(tiny_weights), mixed_precision=True).save(trained_in_bf16)
    mode, config = choose_mode(weights_dir=trained_in_bf16, iterations=5, continue_training=True)
    assert (mode, config.model_dim, config.mixed_precision) == ("continue", 2, False)
    mode, config = choose_mode(weights_dir=tmp_path, iterations=0, fallback_model_dim=4)
    assert (mode, config.model_dim) == ("fallback", 4)
    with pytest.raises(FileNotFoundError, match="holds no trained weights .* to go on from"):
        choose_mode(weights_dir=tmp_path, iterations=5, continue_training=True)
    names = {run_folder("runs", config, fallback=mode == "fallback", warm=mode == "continue").name
             for mode in ("train", "continue", "fallback")}
    assert names == {"d4-b16-seed0-16384at14700Hz", "from-weights-d4-b16-seed0-16384at14700Hz",
                     "cpu-fallback-d4-b16-seed0-16384at14700Hz"}


def test_one_iteration_with_weights_present_trains_it_does_not_load(tiny_weights):
    from beatgan.notebook import choose_mode

    assert choose_mode(weights_dir=tiny_weights, iterations=0)[0] == "load"
    mode, config = choose_mode(weights_dir=tiny_weights, iterations=1, model_dim=4, batch_size=2)
    assert (mode, config.model_dim, config.batch_size) == ("train", 4, 2)


def test_describe_loops_names_the_folder_holding_every_loop(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from beatgan.notebook import describe_loops

    monkeypatch.chdir(tmp_path)
    paths = [tmp_path / "pack" / "A" / "a.wav", tmp_path / "pack" / "B" / "b.wav"]
    class Loops(SimpleNamespace):  # what describe_loops reads of a LoopSet
        def __len__(self):
            return len(self.paths)

    loops = Loops(paths=paths, bpm=np.array([125.0, 125.0]), lengths=np.array([100, 100]),
                  config=Config(), skipped=[], audio=np.zeros((2, 100, 2), np.float32))
    assert describe_loops(loops).splitlines()[0] == f"2 loops loaded from {Path('pack')}"
