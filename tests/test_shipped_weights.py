"""The shipped generator in weights/: cheap, deterministic checks that run on the CPU in CI.

While weights/ holds no generator the shipped test skips and says why; the checks themselves
are proved on a temporary folder (right checksum passes, a wrong one fails) either way.
The quality figures live in weights/README.md and bench/bench_quality.py, not here.
"""

import time
from pathlib import Path

import numpy as np
import pytest

from beatgan import export

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
N_BEATS = 40
#: A generous bound against a hang, not a speed goal (40 beats at d = 64 take well under 1 s).
GENERATE_BOUND_S = 30.0
#: Quieter than this RMS (-60 dBFS) counts as silent.
SILENT_RMS = 1e-3
#: Two beats closer than this (max absolute difference) count as identical.
IDENTICAL_ATOL = 1e-3


def check_weights_folder(folder: Path) -> dict:
    """Every cheap check on a weights folder; raises AssertionError/ValueError on a failure."""
    from beatgan.generation import generate, load_generator

    sha256 = export.verify_model_card(folder)  # the checksum the model card states
    generator, config = load_generator(folder)
    weights = generator.get_weights()
    assert all(str(w.dtype) == "float32" for w in weights)
    assert all(np.all(np.isfinite(w)) for w in weights), "a weight is NaN or Inf"
    start = time.perf_counter()
    audio, _ = generate(generator, n=N_BEATS, seed=0, config=config)
    seconds = time.perf_counter() - start
    assert audio.shape == (N_BEATS, config.slice_len, config.channels)
    assert np.all(np.isfinite(audio)) and np.abs(audio).max() <= 1.0
    assert seconds < GENERATE_BOUND_S, f"{N_BEATS} beats took {seconds:.1f} s"
    segments = audio[:, :config.score_len]
    rms = np.sqrt(np.mean(np.square(segments), axis=(1, 2)))
    assert rms.min() > SILENT_RMS, f"silent beats: RMS {rms.min():.2e}"
    flat = segments.reshape(N_BEATS, -1)
    closest = min(np.abs(flat[i] - flat[j]).max()
                  for i in range(N_BEATS) for j in range(i + 1, N_BEATS))
    assert closest > IDENTICAL_ATOL, f"two beats are identical (max difference {closest:.2e})"
    return {"sha256": sha256, "seconds": seconds, "min_rms": float(rms.min())}


def test_shipped_weights():
    if not (WEIGHTS / export.GENERATOR_WEIGHTS).is_file():
        pytest.skip(f"{WEIGHTS.name}/ holds no {export.GENERATOR_WEIGHTS} yet: no trained model "
                    f"is shipped (weights/README.md); nothing to check")
    figures = check_weights_folder(WEIGHTS)
    print(f"shipped weights: sha256 {figures['sha256']}, {N_BEATS} beats in "
          f"{figures['seconds']:.2f} s, quietest RMS {figures['min_rms']:.3g}")


@pytest.fixture
def stand_in(tmp_path):
    """A tiny loud generator exported with a model card stating its checksum."""
    import keras

    from beatgan.config import Config
    from beatgan.model import build_generator
    from beatgan.training import export_weights

    config = Config(model_dim=2, seed=5)
    generator = build_generator(config)
    last = generator.get_layer("g_upconv4").kernel  # louder output: far from silence
    last.assign(keras.ops.convert_to_numpy(last) * 200.0)
    export_weights(generator, None, config=config, folder=tmp_path, dtype="float16")
    sha = export.file_sha256(tmp_path / export.GENERATOR_WEIGHTS)
    (tmp_path / "README.md").write_text(f"sha256 of generator.weights.h5: `{sha}`\n")
    return tmp_path


def test_the_checks_pass_on_a_good_folder_and_fail_on_a_wrong_checksum(stand_in):
    figures = check_weights_folder(stand_in)
    assert figures["min_rms"] > SILENT_RMS
    card = stand_in / "README.md"
    card.write_text(card.read_text().replace(figures["sha256"], "f" * 64))
    with pytest.raises(ValueError, match="model card states"):
        check_weights_folder(stand_in)


def test_the_checks_fail_on_a_silent_generator(stand_in):
    import keras

    from beatgan.generation import load_generator
    from beatgan.training import export_weights

    generator, config = load_generator(stand_in)
    for variable in generator.trainable_variables:
        variable.assign(keras.ops.zeros_like(variable))
    export_weights(generator, None, config=config, folder=stand_in)
    sha = export.file_sha256(stand_in / export.GENERATOR_WEIGHTS)
    (stand_in / "README.md").write_text(f"sha256 of generator.weights.h5: `{sha}`\n")
    with pytest.raises(AssertionError, match="silent"):
        check_weights_folder(stand_in)
