"""The similarity score: exact against a float64 reference, defined on silence, shift-tolerant."""

import json

import numpy as np
import pytest
import soundfile as sf

from beatgan.config import Config
from beatgan.novelty import novelty_report, score_novelty
from beatgan.similarity import shift_tolerant_similarity, similarity_matrix
from beatgan.workflows import load_generated


def reference_matrix(train, generated, n_samples):
    """The seed's definition, one pair at a time in float64."""
    out = np.empty((len(train), len(generated)))
    for i, a in enumerate(train):
        a = a[:n_samples].astype(np.float64)
        for j, b in enumerate(generated):
            b = b[:n_samples].astype(np.float64)
            out[i, j] = np.sum((a - b) ** 2) / np.sum(a ** 2)
    return out


def reference_shifted(train, generated, n_samples, max_shift):
    """Best score over lags d, comparing A[t] with B[t + d] over all t, each zero outside its
    own n_samples; lag 0 first, so it wins ties."""
    out = np.full((len(train), len(generated)), np.inf)
    lags = np.zeros(out.shape, dtype=int)
    k = max_shift
    for i, a in enumerate(train):
        a = a[:n_samples].astype(np.float64)
        line_a = np.zeros((n_samples + 2 * k,) + a.shape[1:])
        line_a[k:k + n_samples] = a
        for j, b in enumerate(generated):
            b = b[:n_samples].astype(np.float64)
            for d in sorted(range(-k, k + 1), key=abs):
                line_b = np.zeros_like(line_a)
                line_b[k - d:k - d + n_samples] = b  # B moved d samples earlier
                s = np.sum((line_a - line_b) ** 2) / np.sum(a ** 2)
                if s < out[i, j]:
                    out[i, j], lags[i, j] = s, d
    return out, lags


def drum_like(rng, n, length, channels=2):
    """Decaying noise bursts at random onsets: transients, so a shift decorrelates them."""
    t = np.arange(length)
    out = np.zeros((n, length, channels), dtype=np.float32)
    for k in range(n):
        for onset in rng.integers(0, length, size=max(8, length // 150)):
            decay = np.where(t >= onset, np.exp(-(t - onset) / 60.0), 0.0)
            out[k] += (decay[:, None] * rng.uniform(-0.5, 0.5, (length, channels))).astype(np.float32)
    return np.clip(out, -0.99, 0.99)  # what a 24-bit file can hold


def test_matrix_equals_float64_double_loop(rng):
    train = rng.uniform(-1, 1, (9, 400, 2)).astype(np.float32)
    generated = rng.uniform(-1, 1, (5, 420, 2)).astype(np.float32)
    got = similarity_matrix(train, generated, n_samples=350)
    want = reference_matrix(train, generated, 350)
    assert got.shape == (9, 5) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)


def test_mono_and_default_length_from_config(rng):
    config = Config(bpm=125.0)
    train = rng.uniform(-1, 1, (3, config.slice_len)).astype(np.float32)
    generated = rng.uniform(-1, 1, (2, config.slice_len)).astype(np.float32)
    got = similarity_matrix(train, generated)  # first 14112 samples, Config()'s score_len
    np.testing.assert_allclose(got, reference_matrix(train, generated, 14112), rtol=1e-9)
    # Samples past score_len do not count.
    generated[:, 14112:] = 0.9
    np.testing.assert_allclose(similarity_matrix(train, generated, config=config), got, rtol=1e-12)


def test_identical_pair_scores_exactly_zero_and_near_copies_keep_their_digits(rng):
    train = rng.uniform(-1, 1, (4, 300, 2)).astype(np.float32)
    near = train[1] + np.float32(1e-6) * rng.standard_normal((300, 2)).astype(np.float32)
    generated = np.stack([train[2], near, train[0] * np.float32(0.5)])
    got = similarity_matrix(train, generated, n_samples=300)
    assert got[2, 0] == 0.0
    assert got.min() >= 0.0
    # |A|^2 - 2AB + |B|^2 alone would lose ~4 of the 9 digits asked for on this pair.
    want = reference_matrix(train, generated, 300)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)
    assert got[0, 2] == pytest.approx(0.25, rel=1e-12)  # B = A / 2 -> (1/2)^2


def test_silent_training_segment_is_defined(rng):
    train = rng.uniform(-1, 1, (3, 200, 2)).astype(np.float32)
    train[1] = 0.0
    generated = np.stack([rng.uniform(-1, 1, (200, 2)), np.zeros((200, 2))]).astype(np.float32)
    with np.errstate(all="raise"):  # no division warning leaks out either
        got = similarity_matrix(train, generated, n_samples=200)
        shifted = shift_tolerant_similarity(train, generated, n_samples=200, max_shift_samples=5)
    assert not np.isnan(got).any() and not np.isnan(shifted).any()
    assert got[1, 0] == np.inf and got[1, 1] == 0.0
    assert shifted[1, 0] == np.inf and shifted[1, 1] == 0.0
    assert got[0, 1] == 1.0  # silence against a real loop: sum(A^2)/sum(A^2)


def test_shift_tolerant_equals_brute_force_over_lags(rng):
    train = rng.uniform(-1, 1, (4, 120, 2)).astype(np.float32)
    generated = rng.uniform(-1, 1, (3, 130, 2)).astype(np.float32)
    got, lags = shift_tolerant_similarity(train, generated, n_samples=100, max_shift_samples=7,
                                          return_lags=True)
    want, want_lags = reference_shifted(train, generated, 100, 7)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    np.testing.assert_array_equal(lags, want_lags)
    plain = similarity_matrix(train, generated, n_samples=100)
    assert np.all(got <= plain)
    np.testing.assert_array_equal(
        shift_tolerant_similarity(train, generated, n_samples=100, max_shift_samples=0), plain)


def test_shift_tolerant_equals_brute_force_across_blocks_and_row_chunks(rng, monkeypatch):
    """Several FFT blocks (the last one partial) and several batches of train and generated
    rows, each pair checked against the lag-by-lag float64 definition."""
    from beatgan import similarity

    monkeypatch.setattr(similarity, "SHIFT_CHUNK_ROWS", 2)  # 5 train rows: batches of 2, 2, 1
    monkeypatch.setattr(similarity, "CHUNK_ROWS", 2)
    n, k = 1200, 30
    block, n_blocks, n_fft = similarity._block_layout(n, k)
    assert n_blocks == 3 and n % block and n_fft >= block + 2 * k
    train = drum_like(rng, 5, n)
    train[2] *= 0.25  # rows of different loudness: each divides by its own sum(A^2)
    generated = drum_like(rng, 4, n)
    generated[0, 17:] = train[3, :-17]  # train 3 delayed 17 samples
    generated[1, :-23] = train[4, 23:]  # train 4, 23 samples early
    got, lags = shift_tolerant_similarity(train, generated, n_samples=n, max_shift_samples=k,
                                          return_lags=True)
    want, want_lags = reference_shifted(train, generated, n, k)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    np.testing.assert_array_equal(lags, want_lags)
    assert (lags[3, 0], lags[4, 1]) == (17, -23)


def test_audio_a_lag_moves_past_the_window_still_counts(rng):
    n, delay = 2000, 44
    source = drum_like(rng, 1, n)[0]
    copy = np.zeros_like(source)
    copy[delay:] = source[:-delay]
    copy[:delay] += 3.0 * np.float32(rng.standard_normal((delay, 2)))  # a loud burst first
    shifted, lags = shift_tolerant_similarity(source[None], copy[None], n_samples=n,
                                              max_shift_samples=60, return_lags=True)
    energy = lambda x: np.sum(np.square(x, dtype=np.float64))  # noqa: E731
    # At lag 44 the copy lines up; its burst moves before the loop's start and the loop's last
    # 44 samples face silence: both count.
    assert lags[0, 0] == delay
    want = (energy(copy[:delay]) + energy(source[-delay:])) / energy(source)
    assert shifted[0, 0] == pytest.approx(want, rel=1e-9) and shifted[0, 0] > 1.0


def test_equal_scores_at_every_lag_keep_lag_zero(rng):
    n = 1000  # A sounds in the first half only, B in the second: no lag brings them together
    train = np.zeros((4, n, 2), np.float32)
    train[:, :400] = rng.uniform(-1, 1, (4, 400, 2))
    generated = np.zeros((5, n, 2), np.float32)
    generated[:, 600:] = rng.uniform(-1, 1, (5, 400, 2))
    got, lags = shift_tolerant_similarity(train, generated, n_samples=n, max_shift_samples=100,
                                          return_lags=True)
    np.testing.assert_allclose(got, similarity_matrix(train, generated, n_samples=n), rtol=1e-12)
    assert not lags.any()


@pytest.mark.parametrize("delay", [44, -30])  # 3 ms late, 2 ms early at 14.7 kHz
def test_shifted_copy_is_caught_only_by_the_shift_tolerant_score(rng, delay):
    n = 2000
    train = drum_like(rng, 5, n + 100)
    source = train[3]
    copy = np.zeros_like(source)
    if delay > 0:  # the loop delayed: it starts with a little silence
        copy[delay:] = source[:-delay]
    else:
        copy[:delay] = source[-delay:]
    generated = np.stack([copy, drum_like(rng, 1, n + 100)[0]])
    plain = similarity_matrix(train, generated, n_samples=n)
    shifted, lags = shift_tolerant_similarity(train, generated, n_samples=n,
                                              max_shift_samples=60, return_lags=True)
    assert plain[3, 0] > 0.5  # the plain score calls the shifted copy novel
    assert shifted[3, 0] < 0.1  # the shift-tolerant one does not
    assert lags[3, 0] == delay
    assert shifted[:, 1].min() > 0.5  # an unrelated beat stays novel


@pytest.mark.parametrize(
    "train_shape, generated_shape, words",
    [
        ((0, 100, 2), (2, 100, 2), "no segments"),
        ((3, 100, 2), (0, 100, 2), "no segments"),
        ((3, 50, 2), (2, 100, 2), "at least 80"),
        ((3, 100, 2), (2, 100, 1), "same number"),
        ((100, 2, 3, 1), (2, 100, 2), "expected segments of shape"),
    ],
)
def test_bad_arrays_get_a_clear_error(train_shape, generated_shape, words):
    with pytest.raises(ValueError, match=words):
        similarity_matrix(np.ones(train_shape, np.float32), np.ones(generated_shape, np.float32),
                          n_samples=80)


def test_nan_and_integer_audio_are_refused():
    train = np.ones((2, 100, 2), np.float32)
    bad = train.copy()
    bad[0, 5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        similarity_matrix(train, bad, n_samples=100)
    with pytest.raises(ValueError, match="float"):
        similarity_matrix(train.astype(np.int32), train, n_samples=100)


def test_load_generated_checks_rate_length_channels_and_emptiness(tmp_path):
    config = Config()
    n = config.score_len
    folder = tmp_path / "gen"
    folder.mkdir()
    with pytest.raises(ValueError, match="no \\*.wav files"):
        load_generated(folder, config=config)
    beat = np.full((2 * n, 2), 0.25, np.float32)
    sf.write(folder / "output000.wav", beat, config.sample_rate_hz, subtype="PCM_24")
    sf.write(folder / "output001.wav", -beat, config.sample_rate_hz, subtype="PCM_24")
    audio, paths = load_generated(folder, config=config)
    assert audio.shape == (2, n, 2) and [p.name for p in paths] == ["output000.wav", "output001.wav"]
    assert audio[1, 0, 0] == -0.25

    for name, data, rate, words in [
        ("rate", beat, 44100, "expected 14700 Hz"),
        ("short", beat[: n - 1], 14700, f"expected at least {n}"),
        ("mono", beat[:, 0], 14700, "expected 2"),
    ]:
        bad = tmp_path / name
        bad.mkdir()
        sf.write(bad / "output000.wav", data, rate, subtype="PCM_24")
        with pytest.raises(ValueError, match=words):
            load_generated(bad, config=config)


def test_load_generated_takes_beats_in_number_order_past_a_thousand(tmp_path):
    # generate --n 1001 writes output000 ... output1000: text order would put output1000 second.
    config = Config()
    beat = np.zeros((config.score_len, 2), np.float32)
    for name in ("output1000.wav", "output999.wav", "output002.wav", "OUTPUT010.WAV"):
        sf.write(tmp_path / name, beat, config.sample_rate_hz, subtype="PCM_16", format="WAV")
    (tmp_path / ".output003.wav").write_bytes(b"a hidden file: not a beat")
    _, paths = load_generated(tmp_path, config=config)
    assert [p.name for p in paths] == ["output002.wav", "OUTPUT010.WAV", "output999.wav",
                                       "output1000.wav"]  # any case, hidden files aside


def test_novelty_report_counts_names_and_serialises():
    matrix = np.array([[0.05, 0.9, np.inf],
                       [0.5, 0.2, np.inf],
                       [0.3, 0.1, 0.7]])
    shifted = np.minimum(matrix, [[0.05, 0.9, 0.08], [0.5, 0.2, 0.9], [0.3, 0.1, 0.7]])
    lags = np.array([[0, 0, -12], [0, 0, 3], [0, 0, 0]])
    report = novelty_report(matrix, train_names=["a.wav", "b.wav", "c.wav"],
                            generated_names=["g0.wav", "g1.wav", "g2.wav"], k=2,
                            shift_matrix=shifted, shift_lags=lags, max_shift_samples=147,
                            sample_rate_hz=14700)
    assert report.n_generated == 3
    assert report.n_similar == 2  # 0.05 and 0.1 (<= threshold counts)
    assert report.fraction_similar == pytest.approx(2 / 3)
    assert report.n_similar_shift_tolerant == 3  # g2 matches a.wav 12 samples early
    g2 = report.beats[2]
    assert [n.train_name for n in g2.nearest] == ["c.wav", "a.wav"]
    assert g2.nearest_shift_tolerant[0].train_name == "a.wav"
    assert g2.nearest_shift_tolerant[0].lag_samples == -12

    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert {"threshold", "n_generated", "n_similar", "fraction_similar", "files"} <= set(data)
    assert data["threshold"] == 0.1 and data["n_similar"] == 2 and data["max_shift_ms"] == 10.0
    first = data["files"][0]
    assert first["name"] == "g0.wav" and first["similar"] is True
    assert first["nearest"][0] == {"train": "a.wav", "score": 0.05, "score_shift_tolerant": 0.05,
                                   "lag_samples": 0, "lag_ms": 0.0}
    assert data["files"][2]["nearest_shift_tolerant"][0]["lag_ms"] == pytest.approx(-0.816)
    assert data["files"][2]["nearest"][1]["score_shift_tolerant"] == 0.08

    table = report.table()
    assert "2 of 3 generated beats" in table and "3 of 3" in table
    assert "g2.wav" in table and "yes/yes" in table and "no/yes" in table
    assert "0.0500" in table and "-0.8" in table


def test_novelty_report_plain_only_and_bad_shapes():
    report = novelty_report(np.array([[0.2], [0.01]]), train_names=["a", "b"],
                            generated_names=["g"], threshold=0.05)
    assert report.n_similar == 1 and report.n_similar_shift_tolerant is None
    assert "nearest_shift_tolerant" not in report.to_dict()["files"][0]
    assert "shifted" not in report.table()
    with pytest.raises(ValueError, match="names do not match"):
        novelty_report(np.zeros((2, 1)), train_names=["a"], generated_names=["g"])
    with pytest.raises(ValueError, match="give max_shift_samples"):  # not guessed from the lags
        novelty_report(np.zeros((2, 1)), train_names=["a", "b"], generated_names=["g"],
                       shift_matrix=np.zeros((2, 1)), shift_lags=np.zeros((2, 1), int))


def test_score_novelty_finds_the_copy(rng):
    config = Config()
    train = drum_like(rng, 3, config.slice_len)
    generated = np.stack([train[1], drum_like(rng, 1, config.slice_len)[0]])
    generated[0] = np.roll(generated[0], 100, axis=0)  # 6.8 ms late
    report = score_novelty(train, generated, train_names=["x", "y", "z"],
                           generated_names=["g0", "g1"], config=config, max_shift_ms=10.0)
    assert report.n_similar == 0 and report.n_similar_shift_tolerant == 1
    assert report.beats[0].nearest_shift_tolerant[0].train_name == "y"
    assert report.beats[0].nearest_shift_tolerant[0].lag_samples == 100


def test_the_metrics_reference_groups_each_noisy_copy_with_its_own_loop(tmp_path, monkeypatch):
    """Every augmented row in group g is a noisy copy of loop g (within the noise amplitude), so
    no held-out loop has a copy in the fit."""
    from beatgan import metrics
    from beatgan.data import load_loops
    from beatgan.synth import write_demo_pack
    from beatgan.workflows import metrics_reference

    config = Config()
    write_demo_pack(tmp_path, n=3, seed=1)
    loops = load_loops(tmp_path, config)
    seen = {}
    monkeypatch.setattr(metrics.TrainingReference, "fit",
                        lambda train, **kwargs: seen.update(kwargs, train=train) or "fitted")
    assert metrics_reference(loops, config=config, seed=0) == "fitted"
    train, groups = seen["train"], seen["groups"]
    assert train.shape == (3 * config.noise_copies, config.score_len, config.channels)
    assert sorted(groups.tolist()) == sorted(list(range(3)) * config.noise_copies)
    step = config.noise_amplitude / 2**23  # the noise's largest size, in full-scale units
    for row, group in zip(train, groups):
        assert np.abs(row - loops.audio[group, :config.score_len]).max() <= step + 1e-7
    assert (seen["seed"], seen["n_held_out"]) == (0, metrics.DEFAULT_HELD_OUT)


def test_similarity_examples_hold_the_beat_its_loops_and_a_readme(tmp_path, rng):
    from beatgan.similarity_examples import choose_examples, write_similarity_examples

    config = Config()
    n = config.score_len
    train = drum_like(rng, 4, config.slice_len)
    train_paths = []
    for i, segment in enumerate(train):  # stand-ins for the 44.1 kHz originals
        path = tmp_path / "loops" / f"loop_125_{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, np.repeat(segment[:n], 3, axis=0), 44100, subtype="PCM_24")
        train_paths.append(path)
    generated = np.stack([train[2], drum_like(rng, 1, config.slice_len)[0]])
    report = score_novelty(train, generated, train_names=[p.name for p in train_paths],
                           generated_names=["output000.wav", "output001.wav"], config=config,
                           max_shift_ms=2.0)
    assert choose_examples(report, n=2) == [0, 1]  # closest first, most novel last
    assert choose_examples(report, n=1) == [0]

    folders = write_similarity_examples(tmp_path / "examples", report=report, config=config,
                                        train_audio=train, train_paths=train_paths,
                                        generated_audio=generated, which=["output000.wav", 1])
    assert [f.name for f in folders] == ["output000", "output001"]
    first = folders[0]
    nearest = report.beats[0].nearest
    assert nearest[0].train_name == "loop_125_2.wav" and nearest[0].score == 0.0
    full = first / "nearest1_loop_125_2.wav"
    assert full.read_bytes() == train_paths[2].read_bytes()
    low, rate = sf.read(first / "nearest1_loop_125_2_14700Hz.wav")
    assert rate == 14700 and low.shape == (2 * n, 2)
    np.testing.assert_allclose(low[:n], train[2, :n], atol=2 ** -23)
    beat, _ = sf.read(first / "output000.wav")
    np.testing.assert_array_equal(beat, low)  # the beat is the loop: same samples
    readme = (first / "README.md").read_text()
    assert "similar to a training loop" in readme and "| 1 | loop_125_2.wav | 0.0000 |" in readme
    assert "novel" in (folders[1] / "README.md").read_text()
    index = (tmp_path / "examples" / "README.md").read_text()
    assert "output000.wav" in index and "output001/README.md" in index
    assert len(list(first.glob("nearest*_14700Hz.wav"))) == 3
    # Again for one beat, named twice: the index lists it once and the other folder goes.
    (tmp_path / "examples" / "mine").mkdir()  # the user's, never listed: stays
    again = write_similarity_examples(tmp_path / "examples", report=report, config=config,
                                      train_audio=train, train_paths=train_paths,
                                      generated_audio=generated, which=[1, "output001.wav"])
    assert [f.name for f in again] == ["output001"]
    assert sorted(p.name for p in (tmp_path / "examples").iterdir() if p.is_dir()) == [
        "mine", "output001"]
    # A folder an index links to is removed only when it is an example folder.
    index_path = tmp_path / "examples" / "README.md"
    index_path.write_text(index_path.read_text() + "| x | | | [mine/](mine/README.md) |\n")
    (tmp_path / "examples" / "mine" / "README.md").write_text("# my notes\n")
    write_similarity_examples(tmp_path / "examples", report=report, config=config,
                              train_audio=train, train_paths=train_paths,
                              generated_audio=generated, which=[0])
    assert (tmp_path / "examples" / "mine" / "README.md").read_text() == "# my notes\n"
    assert not (tmp_path / "examples" / "output001").exists()  # the tool's own: removed
    for bad in (["output009.wav"], [2], [-1]):
        with pytest.raises(ValueError, match="no beat .* give an index 0-1 or a name"):
            write_similarity_examples(tmp_path / "examples", report=report, config=config,
                                      train_audio=train, train_paths=train_paths,
                                      generated_audio=generated, which=bad)


def test_examples_never_replace_a_readme_of_the_users(tmp_path, rng):
    from beatgan.similarity_examples import write_similarity_examples

    config = Config()
    train = drum_like(rng, 2, config.slice_len)
    report = score_novelty(train, train[:1], train_names=["a.wav", "b.wav"],
                           generated_names=["output000.wav"], config=config, max_shift_ms=None)
    project = tmp_path / "project"
    (project / "docs").mkdir(parents=True)
    readme = "# My project\n\nSee [the docs](docs/README.md).\n"
    (project / "README.md").write_text(readme)
    (project / "docs" / "README.md").write_text("# docs\n")
    with pytest.raises(ValueError, match="not an index of similarity examples"):
        write_similarity_examples(project, report=report, config=config, train_audio=train,
                                  train_paths=["a.wav", "b.wav"], generated_audio=train[:1])
    assert (project / "README.md").read_text() == readme
    assert sorted(p.name for p in project.iterdir()) == ["README.md", "docs"]
    # The repository's own page says it is replaced by the index, and is.
    from pathlib import Path
    shipped = Path(__file__).parents[1] / "similarity_metric_examples" / "README.md"
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "README.md").write_text(shipped.read_text())
    paths = [tmp_path / f"{name}.wav" for name in "ab"]
    for path, segment in zip(paths, train):
        sf.write(path, segment, config.sample_rate_hz, subtype="PCM_24")
    write_similarity_examples(tmp_path / "examples", report=report, config=config,
                              train_audio=train, train_paths=paths, generated_audio=train[:1])
    assert (tmp_path / "examples" / "README.md").read_text().startswith("# Similarity metric")


def test_the_shift_tolerant_nearest_loop_is_added_when_no_plain_neighbour_is_it(tmp_path, rng):
    """Rank s: the table and the example folder add the loop the beat matches once shifted; at
    the bar preset every file is one bar, the 4-beat segment once."""
    from beatgan.config import preset
    from beatgan.similarity_examples import write_similarity_examples

    config = preset("bar")
    n = config.score_len  # 28224: the whole bar
    train = drum_like(rng, 3, config.slice_len)
    paths = [tmp_path / f"{name}.wav" for name in "abc"]
    for path, segment in zip(paths, train):
        sf.write(path, segment, config.sample_rate_hz, subtype="PCM_24")
    # k = 1: a is the plain nearest; c, 5 samples late, only the shift-tolerant one.
    report = novelty_report(np.array([[0.3], [0.5], [0.9]]), train_names=["a.wav", "b.wav", "c.wav"],
                            generated_names=["output000.wav"], k=1,
                            shift_matrix=np.array([[0.3], [0.5], [0.02]]),
                            shift_lags=np.array([[0], [0], [5]]), max_shift_samples=147,
                            sample_rate_hz=config.sample_rate_hz)
    rows = [line.split() for line in report.table().splitlines() if line.endswith(".wav")]
    assert rows == [["output000.wav", "no/yes", "1", "0.3000", "0.3000", "+0.0", "a.wav"],
                    ["s", "0.9000", "0.0200", "+0.3", "c.wav"]]

    folder, = write_similarity_examples(tmp_path / "examples", report=report, config=config,
                                        train_audio=train, train_paths=paths,
                                        generated_audio=train[1:2])
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "nearest1_a.wav", "nearest1_a_14700Hz.wav", "nearest_shifted_c.wav",
        "nearest_shifted_c_14700Hz.wav", "output000.wav"]
    assert (folder / "nearest_shifted_c.wav").read_bytes() == paths[2].read_bytes()
    for name, row in (("nearest1_a_14700Hz.wav", 0), ("nearest_shifted_c_14700Hz.wav", 2),
                      ("output000.wav", 1)):
        audio, rate = sf.read(folder / name)
        assert rate == 14700 and audio.shape == (n, 2), name  # one bar, not two
        np.testing.assert_allclose(audio, train[row, :n], rtol=0, atol=2 ** -23)
    readme = (folder / "README.md").read_text()
    assert "| s | c.wav | 0.9000 | 0.0200 | +0.3 |" in readme
    assert "Rank s: the nearest loop once small time shifts are allowed." in readme
