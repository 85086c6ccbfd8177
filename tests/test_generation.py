"""Generation: weights folder -> beats written as the seed did, reproducible to the byte; loops."""

import json

import numpy as np
import pytest
import soundfile as sf

from beatgan.config import Config
from beatgan.generation import (
    generate,
    load_generator,
    loop_latents,
    make_loop,
    read_sidecar,
    sample_latents,
    write_beats,
)
from beatgan.model import build_generator

TINY = Config(model_dim=2, latent_dim=8)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    """A tiny randomly initialised generator saved the way training exports one."""
    folder = tmp_path_factory.mktemp("weights")
    model = build_generator(TINY)
    model.save_weights(str(folder / "generator.weights.h5"))
    TINY.save(folder)
    return folder


@pytest.fixture(scope="module")
def generator(weights_dir):
    return load_generator(weights_dir)


def test_load_generator_rebuilds_the_saved_model(weights_dir, generator):
    model, config = generator
    assert config == TINY
    z = sample_latents(2, latent_dim=8, seed=5)
    fresh = build_generator(TINY)  # different random init ...
    fresh.load_weights(str(weights_dir / "generator.weights.h5"))  # ... until loaded
    np.testing.assert_array_equal(model.predict_on_batch(z), fresh.predict_on_batch(z))


def test_load_generator_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="generator.weights.h5"):
        load_generator(tmp_path)


def test_latents_are_uniform_seeded_and_prefix_stable():
    z = sample_latents(400, latent_dim=100, seed=3)
    assert z.dtype == np.float32 and z.shape == (400, 100)
    assert -1 <= z.min() < -0.99 and 0.99 < z.max() <= 1
    assert abs(z.mean()) < 0.01 and abs(z.var() - 1 / 3) < 0.01  # U[-1, 1]: mean 0, var 1/3
    np.testing.assert_array_equal(sample_latents(7, latent_dim=100, seed=3), z[:7])
    assert not np.array_equal(sample_latents(7, latent_dim=100, seed=4), z[:7])


def test_generate_is_seeded_and_recreates_beats_from_latents(generator, weights_dir):
    model, config = generator
    audio, latents = generate(model, n=3, seed=11, config=config)
    assert audio.shape == (3, config.slice_len, 2) and audio.dtype == np.float32
    assert latents.shape == (3, 8) and np.abs(audio).max() <= 1.0 and np.abs(audio).max() > 0
    again, _ = generate(weights_dir, n=3, seed=11)  # from the folder: same numbers
    np.testing.assert_array_equal(again, audio)
    other, _ = generate(model, n=3, seed=12, config=config)
    assert not np.array_equal(other, audio)
    one, _ = generate(model, latents=latents[[2]])
    np.testing.assert_allclose(one[0], audio[2], atol=1e-6)


def test_write_beats_writes_the_seeds_files(generator, tmp_path):
    model, config = generator
    audio, latents = generate(model, n=3, seed=1, config=config)
    paths = write_beats(audio, tmp_path / "out", config=config, latents=latents, seed=1)
    assert [p.name for p in paths] == ["output000.wav", "output001.wav", "output002.wav"]
    n = config.score_len
    for path, beat in zip(paths, audio):
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (14700, 2, "PCM_24", 2 * n)
        data, _ = sf.read(str(path), dtype="float64")
        np.testing.assert_array_equal(data[:n], data[n:])  # the segment twice: one 4/4 bar
        np.testing.assert_array_equal(data[:n], np.round(beat[:n].astype(np.float64) * 2 ** 23) / 2 ** 23)
    stored, meta = read_sidecar(tmp_path / "out")
    np.testing.assert_array_equal(stored, latents)
    assert meta["seed"] == 1 and meta["files"] == [p.name for p in paths]
    assert meta["segment_samples"] == 14112 and Config.from_dict(meta["config"]) == config


def test_same_seed_same_bytes(generator, tmp_path):
    model, config = generator
    folders = []
    for run in ("a", "b"):
        audio, latents = generate(model, n=2, seed=7, config=config)
        write_beats(audio, tmp_path / run, config=config, latents=latents, seed=7)
        folders.append(tmp_path / run)
    names = sorted(p.name for p in folders[0].iterdir())
    assert names == ["beats.json", "latents.npy", "output000.wav", "output001.wav"]
    for name in names:
        assert (folders[0] / name).read_bytes() == (folders[1] / name).read_bytes(), name


def test_write_beats_refuses_bad_audio(tmp_path):
    with pytest.raises(ValueError, match="expected shape"):
        write_beats(np.zeros((2, 100, 2), np.float32), tmp_path, config=TINY)
    with pytest.raises(ValueError, match="latent vectors"):
        write_beats(np.zeros((2, 16384, 2), np.float32), tmp_path, config=TINY,
                    latents=np.zeros((3, 8)))


def test_loop_latents_a_is_the_beat_and_b_is_near_or_next():
    beats = sample_latents(6, latent_dim=8, seed=2)
    near = loop_latents("AAAB", latent_dim=8, seed=2, index=4, variation=0.1)
    np.testing.assert_array_equal(near["A"], beats[4])
    assert 0 < np.abs(near["B"] - near["A"]).max() <= 0.1 + 1e-6
    nxt = loop_latents("ABAB", latent_dim=8, seed=2, index=4, variation=None)
    np.testing.assert_array_equal(nxt["B"], beats[5])


def test_make_loop_writes_a_44k_24bit_loop_with_the_structure(generator, tmp_path):
    model, config = generator
    path = make_loop(model, out_dir=tmp_path, config=config, structure="AAAB", bars=4, seed=0,
                     index=1)
    assert path.name == "beatgan_125bpm_AAAB_4bars_seed0_a001.wav"
    info = sf.info(str(path))
    bar = 2 * config.score_len * 3  # 4 beats = 2 segments, at 3 x 14.7 kHz
    assert (info.samplerate, info.subtype, info.frames) == (44100, "PCM_24", 4 * bar)
    data, _ = sf.read(str(path))
    bars = data.reshape(4, bar, 2)
    inner = slice(300, -300)
    np.testing.assert_array_equal(bars[0, inner], bars[2, inner])
    assert np.abs(bars[3, inner] - bars[0, inner]).max() > 0
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["structure"] == "AAAB" and meta["bpm"] == 125.0 and meta["index"] == 1
    with pytest.raises(ValueError, match="multiple"):
        make_loop(model, out_dir=tmp_path, config=config, structure="AAAB", bars=3)


def test_a_smaller_batch_removes_the_beats_of_a_larger_one(tmp_path):
    config = Config(model_dim=2)
    audio = np.zeros((3, config.slice_len, 2), np.float32)
    write_beats(audio, tmp_path, config=config)
    (tmp_path / "keep.wav").write_bytes(b"not ours")
    write_beats(audio[:1], tmp_path, config=config)
    assert sorted(p.name for p in tmp_path.glob("*.wav")) == ["keep.wav", "output000.wav"]
