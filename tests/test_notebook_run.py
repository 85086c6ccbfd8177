"""beat_gan.ipynb runs top to bottom, as the README's main command runs it, on tiny settings.

Both ways the "Train or load" section can go: training (the fallback when no weights are shipped) and loading a
weights folder. Each run starts a Jupyter kernel and imports TensorFlow: about 20 s.
"""

import json
from pathlib import Path

import nbformat
import pytest
import soundfile as sf

from beatgan import Config
from beatgan.export import file_sha256
from beatgan.notebook import run_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "beat_gan.ipynb"
TINY_RUN = {"demo_loops": 6, "fallback_iterations": 2, "fallback_model_dim": 2, "fallback_batch_size": 2,
            "n_beats": 40}


def _texts(notebook):
    out = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"cell failed: {output.get('ename')}: {output.get('evalue')}"
            if output["output_type"] == "stream":
                out.append(output["text"])
    return "".join(out)


def _check_beats(out_dir: Path, n: int = 40):
    files = sorted(out_dir.glob("output*.wav"))
    assert len(files) == n
    info = sf.info(str(files[-1]))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (14700, 2, "PCM_24", 2 * 14112)
    scores = json.loads((out_dir / "scores.json").read_text())
    assert scores["n_generated"] == n
    assert (out_dir / "scores.txt").read_text().startswith(f"{scores['n_similar']} of {n} generated beats")
    assert 0 <= scores["n_similar"] <= n
    return scores


@pytest.mark.slow
def test_notebook_without_weights_trains_a_small_model_and_scores_40_beats(tmp_path):
    params = dict(TINY_RUN, weights_dir=str(tmp_path / "no_weights"), run_dir=str(tmp_path / "run"),
                  out_dir=str(tmp_path / "out"))
    executed = run_notebook(NOTEBOOK, output=tmp_path / "executed.ipynb", parameters=params, light=True)
    text = _texts(nbformat.read(executed, as_version=4))
    assert "NO TRAINED WEIGHTS FOUND" in text
    assert "trained to iteration 2" in text
    assert "weights: CPU FALLBACK, not trained weights" in text
    assert "6 loops loaded" in text
    _check_beats(tmp_path / "out")
    run = tmp_path / "run" / "cpu-fallback-d2-b2-seed0-16384at14700Hz"
    assert (run / "export" / "generator.weights.h5").is_file()
    assert list((tmp_path / "out" / "loops").glob("*AAAB*.wav"))


@pytest.mark.slow
def test_notebook_with_weights_loads_them(tmp_path):
    from beatgan.model import build_generator
    from beatgan.training import export_weights

    config = Config(model_dim=2, batch_size=2)
    weights = export_weights(build_generator(config), None, config=config, folder=tmp_path / "weights",
                             step=7)
    params = dict(TINY_RUN, weights_dir=str(weights), out_dir=str(tmp_path / "out"), compute_metrics=False)
    executed = run_notebook(NOTEBOOK, output=tmp_path / "executed.ipynb", parameters=params, light=True)
    text = _texts(nbformat.read(executed, as_version=4))
    assert "Train or load: loads the trained weights" in text
    assert "trained to iteration" not in text
    # The loaded weights are named in the output, as scores.txt names them.
    sha = file_sha256(weights / "generator.weights.h5")
    assert f"weights: {weights / 'generator.weights.h5'} (sha256 {sha[:16]}..., step 7)" in text
    _check_beats(tmp_path / "out")


@pytest.mark.slow
def test_notebook_continues_training_from_weights(tmp_path):
    """``continue_training``: a new run in its own folder goes on from ``weights_dir``, and the beats
    are made by its export, which records where it started."""
    from beatgan.model import build_discriminator, build_generator
    from beatgan.training import export_weights

    config = Config(model_dim=2, batch_size=2)
    weights = export_weights(build_generator(config), build_discriminator(config), config=config,
                             folder=tmp_path / "weights", step=7)
    params = dict(TINY_RUN, weights_dir=str(weights), run_dir=str(tmp_path / "run"), iterations=2,
                  continue_training=True, batch_size=2, out_dir=str(tmp_path / "out"),
                  compute_metrics=False)
    executed = run_notebook(NOTEBOOK, output=tmp_path / "executed.ipynb", parameters=params, light=True)
    text = _texts(nbformat.read(executed, as_version=4))
    assert "Train or load: goes on training from the trained weights" in text
    assert "trained to iteration 2 (resumed from 0" in text
    export = tmp_path / "run" / "from-weights-d2-b2-seed0-16384at14700Hz" / "export"
    info = json.loads((export / "weights.json").read_text())
    assert info["started_from"]["step"] == 7 and info["started_from"]["critic"] == "loaded"
    assert f"weights: {export / 'generator.weights.h5'}" in text
    _check_beats(tmp_path / "out")
