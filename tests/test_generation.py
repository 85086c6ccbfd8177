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


def test_weights_trained_in_bfloat16_generate_in_float32(tmp_path):
    """A mixed-precision run's folder: the config comes back as trained, the beats are drawn in
    float32 (bit for bit what a float32 build of the same weights draws, not the bf16 build's)."""
    import dataclasses

    mixed = dataclasses.replace(TINY, mixed_precision=True)
    trained = build_generator(mixed)
    trained.save_weights(str(tmp_path / "generator.weights.h5"))
    mixed.save(tmp_path)
    model, config = load_generator(tmp_path)
    assert config == mixed
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}
    z = sample_latents(4, latent_dim=8, seed=5)
    as_float32 = build_generator(TINY)
    as_float32.load_weights(str(tmp_path / "generator.weights.h5"))
    beats = np.asarray(model.predict_on_batch(z))
    np.testing.assert_array_equal(beats, as_float32.predict_on_batch(z))
    assert not np.array_equal(beats, np.asarray(trained.predict_on_batch(z), dtype=np.float32))


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
    diverged = np.zeros((2, 16384, 2), np.float32)
    diverged[1, 5:8] = np.nan  # written as silence before: the diverged model went unnoticed
    with pytest.raises(ValueError, match="NaN or infinite samples: the model .* diverged"):
        write_beats(diverged, tmp_path / "out", config=TINY)
    assert not list(tmp_path.rglob("*.wav"))


def test_loop_latents_a_is_the_beat_and_b_is_near_or_next():
    beats = sample_latents(6, latent_dim=8, seed=2)
    near = loop_latents("AAAB", latent_dim=8, seed=2, index=4, variation=0.1)
    np.testing.assert_array_equal(near["A"], beats[4])
    assert 0 < np.abs(near["B"] - near["A"]).max() <= 0.1 + 1e-6
    nxt = loop_latents("ABAB", latent_dim=8, seed=2, index=4, variation=None)
    np.testing.assert_array_equal(nxt["B"], beats[5])


def test_seeds_and_indices_out_of_range_are_refused():
    # 2**64 + 7 is the words [7, 0, 1]: seed 7's first variation stream, were it allowed.
    with pytest.raises(ValueError, match="seed must be a whole number 0-4294967295"):
        sample_latents(1, latent_dim=8, seed=2 ** 64 + 7)
    for seed in (-1, 1.5, True):
        with pytest.raises(ValueError, match="seed must be"):
            sample_latents(1, latent_dim=8, seed=seed)
    assert sample_latents(1, latent_dim=8, seed=np.int64(2 ** 32 - 1)).shape == (1, 8)
    for index in (-1, 2.0):
        with pytest.raises(ValueError, match="index must be a whole number >= 0"):
            loop_latents("AAAB", latent_dim=8, seed=0, index=index)


def test_loops_that_differ_from_the_default_get_names_of_their_own(generator, tmp_path):
    model, config = generator
    kwargs = dict(out_dir=tmp_path, config=config, structure="AAAB", bars=4, seed=0)
    names = [make_loop(model, **kwargs).name,
             make_loop(model, **kwargs, variation=0.1).name,
             make_loop(model, **kwargs, variation=None).name,
             make_loop(model, **kwargs, out_rate_hz=48000).name]
    assert names == ["beatgan_125bpm_AAAB_4bars_seed0_a000.wav",
                     "beatgan_125bpm_AAAB_4bars_seed0_a000_var0.1.wav",
                     "beatgan_125bpm_AAAB_4bars_seed0_a000_nextbeats.wav",
                     "beatgan_125bpm_AAAB_4bars_seed0_a000_48000hz.wav"]
    assert len(list(tmp_path.glob("*.wav"))) == 4  # none overwrote another
    assert json.loads((tmp_path / names[1]).with_suffix(".json").read_text())["variation"] == 0.1


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
    np.testing.assert_array_equal(bars[0, inner], bars[1, inner])
    np.testing.assert_array_equal(bars[0, inner], bars[2, inner])
    assert np.abs(bars[3, inner] - bars[0, inner]).max() > 0
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["structure"] == "AAAB" and meta["bpm"] == 125.0 and meta["index"] == 1
    # A is beat 1 of seed 0 (output001.wav), drawn here and laid out by the loop builder alone.
    from beatgan.loop_export import build_loop

    beats, latents = generate(model, n=2, seed=0, config=config)
    np.testing.assert_array_equal(np.float32(meta["latents"]["A"]), latents[1])
    alone = build_loop({"A": beats[1]}, structure="AAAA", bars=4, config=config).reshape(4, bar, 2)
    np.testing.assert_allclose(bars[0, inner], alone[0, inner], rtol=0, atol=2.0 ** -22)
    with pytest.raises(ValueError, match="multiple"):
        make_loop(model, out_dir=tmp_path, config=config, structure="AAAB", bars=3)


def test_a_smaller_batch_removes_the_beats_of_a_larger_one(tmp_path):
    config = Config(model_dim=2)
    audio = np.zeros((3, config.slice_len, 2), np.float32)
    write_beats(audio, tmp_path, config=config)
    ours = ["keep.wav", "output2023.wav", "output99.wav"]  # the user's, two named like beats
    for name in ours:
        (tmp_path / name).write_bytes(b"not ours")
    (tmp_path / "latents.npy").write_bytes(b"an earlier batch's")  # as generate leaves it
    write_beats(audio[:1], tmp_path, config=config)  # no latents: none beside these beats
    assert not (tmp_path / "latents.npy").exists()
    assert sorted(p.name for p in tmp_path.glob("*.wav")) == sorted([*ours, "output000.wav"])
    assert all((tmp_path / name).read_bytes() == b"not ours" for name in ours)


# --- many beats: generated and written a chunk at a time ---------------------------------------
def _folder_bytes(folder):
    """Every file's bytes and every folder (None) below ``folder``, by relative path."""
    return {p.relative_to(folder).as_posix(): None if p.is_dir() else p.read_bytes()
            for p in sorted(folder.rglob("*"))}


def test_chunked_generation_writes_the_same_bytes_as_one_batch(generator, weights_dir, tmp_path):
    from beatgan.export import weights_provenance
    from beatgan.generation import generate_to_folder

    model, config = generator
    made_by = weights_provenance(weights_dir)
    audio, latents = generate(model, n=10, seed=3, config=config, batch_size=4)
    write_beats(audio, tmp_path / "whole", config=config, latents=latents, seed=3, weights=made_by)
    chunked = tmp_path / "chunked"
    write_beats(np.zeros((12, config.slice_len, 2), np.float32), chunked, config=config)
    # From the folder: the provenance is the folder's own; chunks of 4 + 4 + 2 beats.
    paths = generate_to_folder(weights_dir, chunked, n=10, seed=3, chunk_size=4, batch_size=4)
    assert [p.name for p in paths] == [f"output{i:03d}.wav" for i in range(10)]
    whole = _folder_bytes(tmp_path / "whole")
    assert len(whole) == 12  # 10 beats, beats.json, latents.npy
    assert _folder_bytes(chunked) == whole  # output010/011 of the larger batch are gone too
    assert read_sidecar(chunked)[1]["weights"] == made_by


def _peak_bytes(model, config, folder, *, n, chunk_size):
    import tracemalloc

    from beatgan.generation import generate_to_folder

    tracemalloc.start()
    try:
        generate_to_folder(model, folder, n=n, seed=0, config=config, chunk_size=chunk_size,
                           batch_size=8, progress=False)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_of_chunked_generation_does_not_grow_with_n(generator, tmp_path):
    """numpy reports its buffers to tracemalloc: the peak counts every audio array held."""
    model, config = generator
    beat_bytes = config.slice_len * config.channels * 4  # 128 KiB of float32 per beat
    _peak_bytes(model, config, tmp_path / "warm", n=8, chunk_size=8)  # tracing, imports
    small = _peak_bytes(model, config, tmp_path / "a", n=8, chunk_size=8)
    large = _peak_bytes(model, config, tmp_path / "b", n=64, chunk_size=8)
    whole = _peak_bytes(model, config, tmp_path / "c", n=64, chunk_size=64)
    assert large - small < 2 * beat_bytes, (small, large)
    assert whole - small > 32 * beat_bytes, (small, whole)  # the measure sees all 64 held at once


def test_a_failed_or_interrupted_chunked_write_leaves_the_previous_batch(generator, tmp_path,
                                                                         monkeypatch):
    from beatgan import fileio
    from beatgan.generation import generate_to_folder

    model, config = generator
    generate_to_folder(model, tmp_path, n=3, seed=1, config=config)
    stale = tmp_path / ".tmp-999999999-abc"  # a staging folder of a killed writer (no such pid)
    stale.mkdir()
    (stale / "output000.wav").write_bytes(b"partial")
    before = {k: v for k, v in _folder_bytes(tmp_path).items() if not k.startswith(stale.name)}

    real = fileio._write_file

    def disk_full_at_beat_5(path, payload, **kwargs):
        if path.name == "output005.wav":
            raise OSError(28, "No space left on device")
        real(path, payload, **kwargs)

    monkeypatch.setattr(fileio, "_write_file", disk_full_at_beat_5)
    with pytest.raises(OSError, match="No space") as caught:
        generate_to_folder(model, tmp_path, n=9, seed=2, config=config, chunk_size=2, batch_size=2)
    assert caught.value.filename == str(tmp_path / "output005.wav")
    assert _folder_bytes(tmp_path) == before  # no staging folder left, the killed one removed
    monkeypatch.undo()

    class Interrupted:
        """A generator that is interrupted (Ctrl-C) on its third batch."""
        calls = 0

        def predict_on_batch(self, z):
            Interrupted.calls += 1
            if Interrupted.calls == 3:
                raise KeyboardInterrupt
            return model.predict_on_batch(z)

    with pytest.raises(KeyboardInterrupt):
        generate_to_folder(Interrupted(), tmp_path, n=9, seed=2, config=config, chunk_size=2,
                           batch_size=2)
    assert _folder_bytes(tmp_path) == before


def test_make_loop_records_which_weights_made_it(generator, weights_dir, tmp_path):
    from beatgan.export import weights_provenance

    model, config = generator

    def recorded(path):
        return json.loads(path.with_suffix(".json").read_text())["weights"]

    from_folder = make_loop(weights_dir, out_dir=tmp_path / "a", bars=4)
    assert recorded(from_folder) == weights_provenance(weights_dir)
    assert recorded(from_folder)["sha256"] and recorded(from_folder)["cpu_fallback"] is False
    fallback = weights_provenance(weights_dir, cpu_fallback=True)
    given = make_loop(model, out_dir=tmp_path / "b", config=config, bars=4, weights=fallback)
    assert recorded(given)["cpu_fallback"] is True
    assert recorded(make_loop(model, out_dir=tmp_path / "c", config=config, bars=4)) is None


def test_latents_are_the_documented_stream_so_a_seed_redraws_its_beats():
    # beats.json records only the seed: the vectors must be default_rng(seed)'s uniform draws,
    # kept at float32 precision (the generator's input).
    want = np.random.default_rng(11).uniform(-1.0, 1.0, size=(5, 8))
    z = sample_latents(5, latent_dim=8, seed=11)
    np.testing.assert_array_equal(z, want.astype(np.float32))
    assert np.abs(z.astype(np.float64) - want).max() < 2.0 ** -24  # rounded once, to float32


def test_each_beat_and_letter_varies_along_its_own_stream():
    # B = clip(A + variation * u), u uniform in [-1, 1] from default_rng([seed, index, k]).
    rows = sample_latents(8, latent_dim=8, seed=2)
    offsets = []
    for index in (3, 4):
        got = loop_latents("ABAC", latent_dim=8, seed=2, index=index, variation=0.25)
        np.testing.assert_array_equal(got["A"], rows[index])
        for k, letter in ((1, "B"), (2, "C")):
            u = np.random.default_rng([2, index, k]).uniform(-1.0, 1.0, size=8)
            want = np.clip(rows[index] + 0.25 * u, -1.0, 1.0).astype(np.float32)
            np.testing.assert_array_equal(got[letter], want)
        offsets.append(got["B"] - got["A"])
    assert not np.allclose(offsets[0], offsets[1])  # beat 3's fill is not beat 4's moved


def test_chunks_are_whole_generator_batches(generator, tmp_path):
    """chunk_size rounds down to whole batches: the generator sees the batches generate gives
    it (4, 4, 2 for 10 beats), never a chunk's leftover mid-run."""
    from beatgan.generation import generate_to_folder

    model, config = generator
    seen = []

    class Recording:
        def predict_on_batch(self, z):
            seen.append(len(z))
            return model.predict_on_batch(z)

    generate_to_folder(Recording(), tmp_path, n=10, seed=3, config=config, chunk_size=6,
                       batch_size=4)
    assert seen == [4, 4, 2]
