"""The weights folder: float16 storage under both backends, provenance of beats, model-card checksum."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from beatgan import export
from beatgan.config import Config

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from test_weights_portability import export_perturbed  # noqa: E402

CONFIG = Config(model_dim=8, batch_size=4, seed=3)
#: float16 keeps 11 significant bits (relative rounding 2^-11 = 4.9e-4 per weight); the audio
#: measured 5e-4 of its peak apart at d = 8 and at d = 64.
AUDIO_RTOL_OF_PEAK = 2e-3
AUDIO_ATOL = 1e-3

JAX_WORKER = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy as np
    import keras
    from beatgan.generation import generate, load_generator

    assert keras.backend.backend() == "jax", keras.backend.backend()
    folder, work = Path(sys.argv[1]), Path(sys.argv[2])
    generator, _ = load_generator(folder)
    assert all(str(w.dtype) == "float32" for w in generator.weights)
    audio, _ = generate(generator, latents=np.load(work / "latents.npy"))
    np.save(work / "jax_audio.npy", audio)
""")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """The same perturbed generator exported in float32 and in float16 storage."""
    from beatgan.generation import sample_latents
    from beatgan.training import export_weights

    work = tmp_path_factory.mktemp("export")
    generator, discriminator = export_perturbed(CONFIG, work / "f32", seed=1)
    export_weights(generator, None, config=CONFIG, folder=work / "f16", dtype="float16", step=7)
    np.save(work / "latents.npy", sample_latents(6, latent_dim=CONFIG.latent_dim, seed=2))
    return work


def _audio(folder, latents):
    from beatgan.generation import generate, load_generator

    generator, _ = load_generator(folder)
    assert all(str(w.dtype) == "float32" for w in generator.weights)
    return generate(generator, latents=latents)[0]


def _assert_float16_close(got, want):
    peak = np.abs(want).max()
    assert peak > 1e-3, "silent generator: the comparison would prove nothing"
    np.testing.assert_allclose(got, want, rtol=0, atol=min(AUDIO_ATOL, AUDIO_RTOL_OF_PEAK * peak))
    assert np.abs(got - want).max() > 0, "no float16 rounding at all: the file was not float16"


def test_float16_storage_halves_the_file_and_stores_float16(folders):
    import h5py

    big = (folders / "f32" / "generator.weights.h5").stat().st_size
    small = (folders / "f16" / "generator.weights.h5").stat().st_size
    assert small < 0.55 * big
    kinds = set()
    with h5py.File(folders / "f16" / "generator.weights.h5", "r") as handle:
        handle.visititems(lambda name, item: kinds.add(str(item.dtype))
                          if isinstance(item, h5py.Dataset) else None)
    assert kinds == {"float16"}
    info = export.read_export_info(folders / "f16")
    assert info["dtype"] == "float16" and info["step"] == 7 and info["ema"] is False
    assert info["generator_sha256"] == export.file_sha256(folders / "f16" / "generator.weights.h5")
    assert not (folders / "f16" / "discriminator.weights.h5").exists()  # only when asked


def test_float16_weights_load_as_float32_with_the_same_audio_under_tensorflow(folders):
    latents = np.load(folders / "latents.npy")
    _assert_float16_close(_audio(folders / "f16", latents), _audio(folders / "f32", latents))


def test_float16_weights_give_the_same_audio_under_jax(folders):
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", JAX_WORKER, str(folders / "f16"), str(folders)],
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    latents = np.load(folders / "latents.npy")
    jax_audio = np.load(folders / "jax_audio.npy")
    _assert_float16_close(jax_audio, _audio(folders / "f32", latents))
    # Both backends read the same float16 values: only summation order differs between them.
    np.testing.assert_allclose(jax_audio, _audio(folders / "f16", latents), rtol=0, atol=1e-5)


def test_a_weight_beyond_float16_is_refused(tmp_path):
    import keras

    from beatgan.model import build_generator

    generator = build_generator(Config(model_dim=2))
    generator.trainable_variables[0].assign(
        keras.ops.full(generator.trainable_variables[0].shape, 1e6))
    with pytest.raises(ValueError, match="does not fit float16"):
        export.save_weights(generator, tmp_path / "g.weights.h5", dtype="float16")
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_float16_export_stores_the_critic_in_float16_and_a_warm_start_loads_it(tmp_path):
    """The critic follows the export's dtype: half the size, and the same scores to float16's
    rounding once a warm start has loaded it."""
    import h5py
    import keras

    from beatgan.model import build_discriminator, build_generator
    from beatgan.training import export_weights
    from beatgan.warm_start import apply_warm_start, read_warm_start

    generator, discriminator = export_perturbed(CONFIG, tmp_path / "f32", seed=4)
    export_weights(generator, discriminator, config=CONFIG, folder=tmp_path / "f16",
                   dtype="float16", step=3)
    name = export.DISCRIMINATOR_WEIGHTS
    assert ((tmp_path / "f16" / name).stat().st_size
            < 0.55 * (tmp_path / "f32" / name).stat().st_size)
    kinds = set()
    with h5py.File(tmp_path / "f16" / name, "r") as handle:
        handle.visititems(lambda key, item: kinds.add(str(item.dtype))
                          if isinstance(item, h5py.Dataset) and item.dtype.kind == "f" else None)
    assert kinds == {"float16"}

    start = read_warm_start(tmp_path / "f16", CONFIG)
    assert start.discriminator == tmp_path / "f16" / name and start.record["critic"] == "loaded"
    assert start.record["critic_warmup"] == 0  # a loaded critic needs no warm-up
    critic = build_discriminator(CONFIG)
    apply_warm_start(start, build_generator(CONFIG), critic, None, CONFIG)
    audio = np.random.default_rng(5).uniform(-1, 1, (6, CONFIG.slice_len, CONFIG.channels))
    audio = audio.astype("float32")
    want = np.asarray(discriminator(audio, training=False), dtype=np.float64)
    got = np.asarray(critic(audio, training=False), dtype=np.float64)
    spread = want.std()
    assert spread > 0, "constant critic: the comparison would prove nothing"
    assert np.abs(got - want).max() < 0.02 * spread  # float16 rounding, not another critic
    assert np.abs(got - want).max() > 0, "no rounding at all: the critic was not float16"
    assert keras.ops.convert_to_numpy(critic.trainable_variables[0]).dtype == np.float32
    # Exported again without a critic: the old one goes, so no warm start pairs it with the
    # new generator.
    export_weights(generator, None, config=CONFIG, folder=tmp_path / "f16", dtype="float16",
                   step=9)
    assert not (tmp_path / "f16" / name).exists()
    assert read_warm_start(tmp_path / "f16", CONFIG).record["critic"] == "new"


def test_beats_json_and_scores_txt_record_the_weights(folders, tmp_path, monkeypatch):
    from beatgan.generation import read_sidecar, write_beats
    from beatgan.notebook import save_scores
    from beatgan.novelty import score_novelty

    provenance = export.weights_provenance(folders / "f16")
    assert provenance["sha256"] == export.file_sha256(folders / "f16" / "generator.weights.h5")
    assert provenance["step"] == 7 and provenance["cpu_fallback"] is False
    audio = _audio(folders / "f16", np.load(folders / "latents.npy"))
    write_beats(audio, tmp_path, config=CONFIG, weights=provenance)
    assert read_sidecar(tmp_path)[1]["weights"] == provenance
    names = [f"beat{i}" for i in range(len(audio))]
    report = score_novelty(audio, audio, train_names=names, generated_names=names, config=CONFIG,
                           max_shift_ms=None)
    save_scores(report, tmp_path, weights=provenance)
    last = (tmp_path / "scores.txt").read_text().splitlines()[-1]
    assert provenance["sha256"][:16] in last and "step 7" in last and "FALLBACK" not in last
    assert json.loads((tmp_path / "scores.json").read_text())["weights"] == provenance
    fallback = export.weights_provenance(folders / "f16", cpu_fallback=True)
    assert "CPU FALLBACK" in export.describe_provenance(fallback)
    # A write that fails part-way leaves the previous pair whole.
    before = {name: (tmp_path / name).read_bytes() for name in ("scores.txt", "scores.json")}
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("beatgan.fileio.os.replace", full_disk)
    with pytest.raises(OSError):
        save_scores(report, tmp_path, weights=fallback)
    monkeypatch.undo()
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in tmp_path.glob("scores*")) == ["scores.json", "scores.txt"]


def test_model_card_checksum_check_passes_and_fails_for_real(tmp_path):
    (tmp_path / "generator.weights.h5").write_bytes(b"stand-in weights")
    right = export.file_sha256(tmp_path / "generator.weights.h5")
    card = tmp_path / "README.md"
    card.write_text(f"# card\n\nsha256 of generator.weights.h5: `{right}`\n")
    assert export.verify_model_card(tmp_path) == right
    card.write_text(f"sha256 of generator.weights.h5: `{'0' * 64}`\n")
    with pytest.raises(ValueError, match="model card states 0000"):
        export.verify_model_card(tmp_path)
    card.write_text("sha256 of generator.weights.h5: (filled in when weights are shipped)\n")
    with pytest.raises(ValueError, match="states no"):
        export.verify_model_card(tmp_path)


def test_weights_json_records_the_generator_file_the_folder_holds(tmp_path):
    """With a moving average the folder holds two generators: weights.json's sha256 is that of
    generator.weights.h5 (the average), every file is in the dtype asked for, and the
    provenance of the raw file says it is not the average."""
    import h5py

    from beatgan.model import build_generator

    config = Config(model_dim=2)
    average = build_generator(config.replace(seed=1))
    raw = build_generator(config.replace(seed=2))  # another init: the two files differ
    folder = tmp_path / "w"
    export.export_weights(raw, None, config=config, folder=folder, ema_generator=average,
                          step=5, dtype="float16")
    generator_file = folder / export.GENERATOR_WEIGHTS
    raw_file = folder / export.RAW_GENERATOR_WEIGHTS
    assert export.file_sha256(generator_file) != export.file_sha256(raw_file)
    info = export.read_export_info(folder)
    assert info["generator_sha256"] == export.file_sha256(generator_file)
    assert (info["step"], info["ema"], info["ema_decay"], info["dtype"]) == (
        5, True, config.ema_decay, "float16")
    for path in (generator_file, raw_file):
        kinds = set()
        with h5py.File(path, "r") as handle:
            handle.visititems(lambda _, item: kinds.add(str(item.dtype))
                              if isinstance(item, h5py.Dataset) and item.dtype.kind == "f" else None)
        assert kinds == {"float16"}, path.name
    assert export.weights_provenance(folder) == {
        "path": str(generator_file), "sha256": export.file_sha256(generator_file), "step": 5,
        "ema": True, "dtype": "float16", "cpu_fallback": False}
    assert export.weights_provenance(folder, raw=True) == {
        "path": str(raw_file), "sha256": export.file_sha256(raw_file), "step": 5,
        "ema": False, "dtype": "float16", "cpu_fallback": False}
    # Exported again without an average: no raw file is left to be taken for this one's.
    export.export_weights(raw, None, config=config, folder=folder, step=6)
    assert not raw_file.exists()
    info = export.read_export_info(folder)
    assert (info["ema"], info["ema_decay"]) == (False, None)
    assert info["generator_sha256"] == export.file_sha256(generator_file)
    assert export.weights_provenance(folder, raw=True)["path"] == str(generator_file)
