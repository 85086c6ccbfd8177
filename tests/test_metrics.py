"""Beat metrics: known answers on clicks, noise and silence; the reference points separate."""

import json

import numpy as np
import pytest
from scipy import signal

from beatgan import metrics
from beatgan.config import Config

CONFIG = Config()
SR = CONFIG.sample_rate_hz
N = CONFIG.score_len  # 14112: 2 beats at 125 bpm
BEAT = SR * 60.0 / CONFIG.bpm  # 7056 samples
STEP = BEAT / 4  # a 16th note, 1764 samples


def clicks(positions, n_samples=N, channels=2):
    """One clip ``(1, n_samples, channels)`` with unit impulses at the given sample positions."""
    x = np.zeros((1, n_samples, channels), np.float32)
    for p in positions:
        x[0, int(round(p))] = 1.0
    return x


def drum_loops(rng, n, *, n_samples=N):
    """``(n, n_samples, 2)`` four-on-the-floor loops: swept-sine kicks on the beats, an open hat
    on the off-beats, random closed hats on the other 16ths, a clap on beat 2; each loop draws
    its own kick pitch and decay, hat level and hat density."""
    t = np.arange(int(0.3 * SR)) / SR
    clap_filter = signal.butter(2, [800, 2500], "bandpass", fs=SR, output="sos")
    out = np.zeros((n, n_samples + t.size, 2))
    for i in range(n):
        f0 = rng.uniform(45, 70)
        sweep_hz = f0 + (160 - f0) * np.exp(-t / 0.02)
        kick = np.sin(2 * np.pi * np.cumsum(sweep_hz) / SR) * np.exp(-t / rng.uniform(0.08, 0.2))
        kick[:30] += np.linspace(0.5, 0, 30)
        noise = rng.standard_normal(t.size)
        hat = np.diff(noise, prepend=0.0)
        clap = 3 * signal.sosfilt(clap_filter, noise) * np.exp(-t / 0.05)
        hat_level, hat_density = rng.uniform(0.05, 0.2), rng.uniform(0.3, 1.0)
        for k in range(int(round(n_samples / STEP))):
            p, hit = int(round(k * STEP)), np.zeros_like(t)
            if k % 4 == 0:
                hit += 0.8 * kick
            if k % 4 == 2 and rng.random() < 0.9:
                hit += 0.3 * hat * np.exp(-t / 0.06)
            if k % 2 == 1 and rng.random() < hat_density:
                hit += hat_level * hat * np.exp(-t / 0.015)
            if k % 8 == 4 and rng.random() < 0.8:
                hit += 0.4 * clap
            out[i, p:p + t.size] += hit[:, None] * rng.uniform(0.7, 1.0, 2)
    return np.clip(out[:, :n_samples], -1, 1).astype(np.float32)


def with_copies(loops, rng, copies):
    """The augmentation's shape: ``copies`` noisy copies of each loop, copy-major."""
    a = CONFIG.noise_amplitude / 2 ** 23
    return np.concatenate([np.clip(loops + rng.uniform(-a, a, loops.shape), -1, 1)
                           for _ in range(copies)]).astype(np.float32)


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(0)
    train = with_copies(drum_loops(rng, 150, n_samples=16384), rng, copies=2)
    return metrics.TrainingReference.fit(train, config=CONFIG, seed=0, n_held_out=40, n_clusters=4)


# --- tempo consistency ---------------------------------------------------------------------------
def test_click_track_on_the_beats_scores_top():
    assert metrics.tempo_consistency(clicks([0, BEAT]), config=CONFIG) == pytest.approx([1.0], abs=1e-6)


def test_click_on_sample_zero_is_seen_and_placed_within_a_few_ms():
    times_s, full, _ = metrics.onset_envelopes(metrics.to_mono_segments(clicks([0, 5000]), config=CONFIG),
                                                config=CONFIG)
    first = times_s[np.argmax(np.where(times_s < 0.1, full[0], 0))]
    second = times_s[np.argmax(np.where(times_s > 0.2, full[0], 0))]
    assert abs(first) < 0.002 and abs(second - 5000 / SR) < 0.002


def test_a_dc_offset_is_no_onset(rng):
    """A constant clip once scored 1: its step up from the silence before it fell on the
    downbeat. An offset under noise must not lift the noise's score either."""
    constant = np.full((1, N, 2), 0.5, np.float32)
    assert metrics.tempo_consistency(constant, config=CONFIG)[0] < 0.05
    noise = rng.uniform(-0.3, 0.3, (8, N, 2)).astype(np.float32)
    plain = metrics.tempo_consistency(noise, config=CONFIG)
    np.testing.assert_allclose(metrics.tempo_consistency(noise + 0.3, config=CONFIG), plain,
                               atol=0.02)


def test_integer_pcm_is_refused_as_the_similarity_score_refuses_it():
    with pytest.raises(ValueError, match="expected float audio in \\[-1, 1\\], got dtype int16"):
        metrics.tempo_consistency((clicks([0]) * 32767).astype(np.int16), config=CONFIG)


def test_a_click_on_sample_zero_has_the_onset_energy_it_has_on_a_later_beat():
    """The reference of the first frames must see the silence before the clip, not a mirror of
    the frames after it: mirrored, the downbeat's own frame damped its flux to 0.59 of a later
    beat's, and every loop's tempo consistency read low."""
    mono = metrics.to_mono_segments(clicks([0]), config=CONFIG), metrics.to_mono_segments(
        clicks([BEAT]), config=CONFIG)
    energies = [metrics.onset_envelopes(m, config=CONFIG)[1].sum() for m in mono]
    assert energies[0] == pytest.approx(energies[1], rel=0.01)


def test_onset_bands_split_the_flux_by_frequency_and_add_up_to_the_envelopes(rng):
    t = np.arange(int(STEP)) / SR
    x = np.zeros((2, N), np.float32)
    x[0, :t.size] = np.sin(2 * np.pi * 100 * t) * np.exp(-t / 0.05)  # a low thump at 0
    x[1, int(BEAT):int(BEAT) + t.size] = np.sin(2 * np.pi * 5000 * t) * np.exp(-t / 0.02)  # a high tick
    x += 1e-4 * rng.standard_normal(x.shape).astype(np.float32)
    times_s, bands = metrics.onset_bands(x, config=CONFIG, split_hz=(200, 800, 3000))
    _, full, low = metrics.onset_envelopes(x, config=CONFIG)
    assert bands.shape == (2, 4, times_s.size)
    np.testing.assert_allclose(bands.sum(axis=1), full, rtol=1e-5, atol=1e-6)  # float32 sums
    np.testing.assert_array_equal(bands[:, 0], low)  # the envelopes' low band is the first one
    share = bands.sum(axis=2) / bands.sum(axis=(1, 2))[:, None]
    assert np.argmax(share[0]) == 0 and share[0, 0] > 0.4
    assert np.argmax(share[1]) == 3 and share[1, 3] > 0.4


@pytest.mark.parametrize("split_hz", [(800, 200), (200, 201), (9000,)])
def test_onset_bands_refuse_splits_that_do_not_rise_by_a_bin_below_nyquist(split_hz):
    with pytest.raises(ValueError, match="split_hz must rise"):
        metrics.onset_bands(np.zeros((1, N), np.float32), config=CONFIG, split_hz=split_hz)


def test_noise_and_silence_score_low(rng):
    noise = rng.uniform(-0.5, 0.5, (4, N, 2)).astype(np.float32)
    assert metrics.tempo_consistency(noise, config=CONFIG).max() < 0.35
    assert metrics.tempo_consistency(np.zeros((2, N, 2)), config=CONFIG) == pytest.approx([0.0, 0.0])


def test_clicks_half_a_beat_late_keep_the_16th_grid_but_lose_the_beat():
    late = clicks([BEAT / 2, 3 * BEAT / 2])
    grid_share, beat_share = metrics.tempo_components(late, config=CONFIG)
    assert grid_share[0] > 0.99 and beat_share[0] < 0.01
    assert metrics.tempo_consistency(late, config=CONFIG)[0] < 0.1


def test_clicks_between_16ths_score_low():
    # A 32nd note (60 ms) off the grid is far outside the 10 ms tolerance.
    assert metrics.tempo_consistency(clicks([STEP / 2, BEAT + STEP / 2]), config=CONFIG)[0] < 0.05


def test_drum_loops_score_high_and_mono_equals_stereo(rng):
    loops = drum_loops(rng, 6)
    stereo = metrics.tempo_consistency(loops, config=CONFIG)
    mono = metrics.tempo_consistency(loops.mean(axis=2), config=CONFIG)
    assert stereo.shape == (6,) and stereo.min() > 0.7
    np.testing.assert_allclose(stereo, mono, atol=1e-5)


def test_input_checks():
    with pytest.raises(ValueError, match="score_len"):
        metrics.tempo_consistency(np.zeros((1, N - 1, 2)), config=CONFIG)
    with pytest.raises(ValueError, match="shape"):
        metrics.tempo_consistency(np.zeros(N), config=CONFIG)
    with pytest.raises(ValueError, match="NaN"):
        metrics.tempo_consistency(np.full((1, N, 2), np.nan), config=CONFIG)


# --- distances ------------------------------------------------------------------------------------
def test_frechet_of_a_set_with_itself_is_zero_and_symmetric_otherwise(rng):
    a = rng.standard_normal((200, 6))
    b = rng.standard_normal((150, 6)) * 2 + 1
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    ab, ba = metrics.frechet_distance(a, b), metrics.frechet_distance(b, a)
    assert ab > 1 and ab == pytest.approx(ba, rel=1e-9)


def test_frechet_matches_the_closed_form_for_diagonal_gaussians():
    # For diagonal covariances: |m1 - m2|^2 + sum (s1 - s2)^2 with s the standard deviations.
    m1, m2 = np.array([0.0, 1.0]), np.array([3.0, 1.0])
    v1, v2 = np.array([1.0, 4.0]), np.array([4.0, 9.0])
    value = metrics.frechet_distance_gaussians(m1, np.diag(v1), m2, np.diag(v2))
    assert value == pytest.approx(9.0 + (1 - 2) ** 2 + (2 - 3) ** 2)


def test_ndb_and_js_of_a_set_against_itself_are_zero():
    counts = np.array([40, 10, 25, 5])
    assert metrics.ndb_js_from_counts(counts, counts * 50) == (0, pytest.approx(0.0, abs=1e-12))
    ndb, js = metrics.ndb_js_from_counts(np.array([40, 0, 0, 0]), np.array([0, 500, 500, 500]))
    assert ndb == 4 and js == pytest.approx(1.0)


def test_gaussian_stats_are_unbiased_and_zero_for_a_single_clip():
    # Deviations from the mean (2, 2): (-2, -2), (0, 2), (2, 0); sums of products 8, 8 and 4,
    # over n - 1 = 2.
    mean, cov = metrics.gaussian_stats(np.array([[0.0, 0.0], [2.0, 4.0], [4.0, 2.0]]))
    np.testing.assert_allclose(mean, [2.0, 2.0])
    np.testing.assert_allclose(cov, [[4.0, 2.0], [2.0, 4.0]])
    one_mean, one_cov = metrics.gaussian_stats(np.array([[1.0, -1.0]]))
    np.testing.assert_array_equal(one_cov, np.zeros((2, 2)))
    # One beat against the set: |(1, -1) - (2, 2)|^2 + tr(cov) = 10 + 8.
    assert metrics.frechet_distance_gaussians(one_mean, one_cov, mean, cov) == pytest.approx(18.0)


def test_ndb_is_the_two_sided_pooled_proportions_test():
    """Against the chi-square test of each bin's 2 x 2 table (in or out of the bin, generated or
    training), which is the pooled two-proportion z-test squared."""
    from scipy.stats import chi2_contingency

    counts = np.array([2, 4, 14, 20])  # 40 generated beats
    for reference_counts in (np.full(4, 15), np.full(4, 60)):
        n, n_ref = counts.sum(), reference_counts.sum()
        p_values = np.array([chi2_contingency([[c, n - c], [r, n_ref - r]], correction=False).pvalue
                             for c, r in zip(counts, reference_counts)])
        ndb, _ = metrics.ndb_js_from_counts(counts, reference_counts)
        assert ndb == np.sum(p_values < metrics.NDB_ALPHA)
    # A bin with 0.05 < p < 0.1 (4 of 40 against 15 of 60) is not a different bin: one-sided,
    # it would be.
    assert metrics.ndb_js_from_counts(counts, np.full(4, 15))[0] == 2
    assert metrics.ndb_js_from_counts(counts, np.full(4, 60))[0] == 3


def test_js_divergence_by_hand_in_bits():
    # JS = H(m) - (H(p) + H(q)) / 2 with m = (p + q) / 2: (1, 0) against (1/2, 1/2) has
    # m = (3/4, 1/4), H(m) = 0.811278, H(p) = 0, H(q) = 1 -> 0.311278 bits.
    def entropy(x):
        x = np.asarray(x, float)
        x = x[x > 0]
        return -np.sum(x * np.log2(x))

    assert metrics.js_divergence(np.array([1.0, 0.0]), np.array([0.5, 0.5])) == pytest.approx(
        entropy([0.75, 0.25]) - 0.5, rel=1e-9)
    assert entropy([0.75, 0.25]) - 0.5 == pytest.approx(0.311278, abs=1e-6)
    # Histograms are normalised first: counts give the same answer as shares.
    assert metrics.js_divergence(np.array([3, 0]), np.array([7, 7])) == pytest.approx(0.311278,
                                                                                  abs=1e-6)


def test_ndb_js_counts_the_training_side_as_its_loops_not_its_copies():
    """60 loops, 15 in each of 4 bins, with 25 noisy copies each: the proportions test weighs
    the training side as 60 draws, not 1500."""
    centroids = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    reference = metrics.TrainingReference(
        config=CONFIG, centre=np.zeros(2), components=np.eye(2), kept_variance=1.0,
        mean=np.zeros(2), cov=np.eye(2), centroids=centroids, counts=np.full(4, 375), spread=1.0,
        n_train=1500, n_loops=60, points={}, n_reference=0)
    generated = np.repeat(centroids, [2, 4, 14, 20], axis=0) + 0.1
    ndb, js = metrics.ndb_js(generated, reference=reference)
    assert (ndb, js) == metrics.ndb_js_from_counts(np.array([2, 4, 14, 20]), np.full(4, 15.0))
    assert ndb == 2  # the bin with 4 of 40 beats is not significant against 15 of 60 loops...
    # ...but would be against 375 of 1500 copies, which are not independent draws.
    assert metrics.ndb_js_from_counts(np.array([2, 4, 14, 20]), np.full(4, 375))[0] == 3


def test_mean_pairwise_distance_and_diversity_by_hand():
    triangle = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])  # sides 3, 4 and 5
    assert metrics.mean_pairwise_distance(triangle) == pytest.approx(4.0)
    assert metrics.diversity(triangle, reference_spread=2.0) == pytest.approx(2.0)
    assert metrics.mean_pairwise_distance(triangle[:1]) == 0.0
    with pytest.raises(ValueError, match="reference_spread"):
        metrics.diversity(triangle, reference_spread=0.0)


def test_grid_slots_put_twelve_log_mel_frames_in_each_16th():
    # 125 bpm at 14.7 kHz: a 16th is 1764 samples, 12 hops of 147; the 97 frames of a 14112-sample
    # segment are 8 slots of 12 and the frame centred on sample 14112, past the segment.
    slots = metrics.grid_slots(97, config=CONFIG)
    np.testing.assert_array_equal(slots, np.append(np.repeat(np.arange(8), 12), -1))
    embedding = metrics.grid_logmel_embedding(np.zeros((1, N, 2), np.float32), config=CONFIG)
    assert embedding.shape == (1, metrics.MEL_BANDS * (8 + 1))
    np.testing.assert_array_equal(embedding, 0.0)  # silence is 0 dB above the floor


def test_identical_beats_have_zero_diversity(reference, rng):
    beat = drum_loops(rng, 1)
    same = np.repeat(beat, 10, axis=0)
    assert metrics.mean_pairwise_distance(reference.project(same)) == pytest.approx(0.0, abs=1e-6)
    assert metrics.evaluate(same, reference).metrics["diversity_ratio"] == pytest.approx(0.0, abs=1e-6)


def test_groups_find_the_noisy_copies(rng):
    loops = drum_loops(rng, 12)
    train = with_copies(loops, rng, copies=3)
    groups = metrics.infer_groups(metrics.grid_logmel_embedding(train, config=CONFIG))
    truth = np.tile(np.arange(12), 3)
    # Same loop <=> same group.
    assert np.array_equal(groups[:, None] == groups[None, :], truth[:, None] == truth[None, :])


# --- reference points and the report -------------------------------------------------------------
def test_reference_points_put_held_out_loops_on_the_right_side(reference):
    points = reference.points
    assert set(points) == set(metrics.REFERENCE_NAMES)
    held = points["held_out"]
    for bad in ("noise", "silence", "shifted"):
        assert points[bad]["tempo_consistency"] < held["tempo_consistency"] - 0.3, bad
        assert points[bad]["frechet"] > 5 * held["frechet"], bad
        assert points[bad]["ndb_fraction"] > held["ndb_fraction"], bad
        assert points[bad]["js"] > held["js"] + 0.1, bad
    # Diversity: real loops are as varied as the training set; collapse, silence and noise are not.
    assert abs(held["diversity_ratio"] - 1) < 0.3
    for bad in ("noise", "silence", "collapsed"):
        assert points[bad]["diversity_ratio"] < 0.3, bad
    # Shifting keeps the variety (by design): the tempo and distribution metrics catch it.
    assert abs(points["shifted"]["diversity_ratio"] - 1) < 0.3


def test_reference_sets_by_hand(rng):
    levels = np.array([0.2, 0.02, 0.08])  # well below full scale: the noise is not clipped
    real = (levels[:, None, None] * rng.standard_normal((3, N + 100, 2))).astype(np.float32)
    sets = metrics.reference_sets(real, config=CONFIG, rng=np.random.default_rng(0))
    assert set(sets) == set(metrics.REFERENCE_NAMES)
    for audio in sets.values():
        assert audio.shape == (3, N, 2) and audio.dtype == np.float32
    np.testing.assert_array_equal(sets["held_out"], real[:, :N])
    np.testing.assert_array_equal(sets["silence"], 0.0)
    # Half a beat at 125 bpm and 14.7 kHz: 7056 / 2 = 3528 samples, rotated round the segment.
    np.testing.assert_array_equal(sets["shifted"], np.roll(real[:, :N], 3528, axis=1))
    # Noise as loud as each held-out clip, not as the set on average.
    rms = lambda x: np.sqrt(np.mean(np.square(x, dtype=np.float64), axis=(1, 2)))  # noqa: E731
    np.testing.assert_allclose(rms(sets["noise"]), rms(real[:, :N]), rtol=0.02)
    # Collapsed: the first clip every time, under noise as faint as the augmentation's.
    faint = CONFIG.noise_amplitude / 2 ** 23
    deviation = np.abs(sets["collapsed"] - real[:1, :N]).max(axis=(1, 2))
    assert np.all(deviation <= faint * (1 + 1e-3)) and np.all(deviation > 0.9 * faint)


def test_evaluate_report_is_json_and_readable(reference, rng):
    generated = drum_loops(rng, 40, n_samples=16384)  # the generator's padded length
    report = metrics.evaluate(generated, reference)
    assert report.tempo_per_beat.shape == (40,)
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data["metrics"]) == set(metrics.DIRECTIONS)
    assert len(data["tempo_per_beat"]) == 40 and set(data["reference_points"]) == set(metrics.REFERENCE_NAMES)
    # New loops from the same family score like the held-out ones, far from the shifted.
    held, shifted = report.reference_points["held_out"], report.reference_points["shifted"]
    assert report.metrics["frechet"] < shifted["frechet"] / 5
    assert report.metrics["tempo_consistency"] > held["tempo_consistency"] - 0.1
    text = report.summary()
    for words in ("tempo consistency", "Frechet", "NDB/k", "JS", "diversity", "held_out", "shifted"):
        assert words in text
    # The shipping goals, judged beside the held-out point, in the JSON and the last line.
    from beatgan.goals import goals_met

    expected = goals_met(report.metrics, held)
    assert data["goals_met"] == expected and None not in expected.values()
    goals_line, caution = text.splitlines()[-2:]
    assert caution == ("(The goals are set for 200 beats beside 40 held-out loops; a verdict on "
                       f"40 beats beside {report.n_reference} is a rougher one.)")
    assert goals_line.startswith(f"Shipping goals (beatgan.goals), "
                                 f"{sum(expected.values())} of 4 met: tempo consistency >= 0.70: "
                                 f"{'yes' if expected['tempo_consistency'] else 'NO'}; ")


def test_reference_points_shortcut_and_groups_argument(rng):
    train = drum_loops(rng, 24)
    groups = np.arange(24)
    points = metrics.reference_points(train, config=CONFIG, rng=np.random.default_rng(1), n=8,
                                      groups=groups, n_clusters=2)
    assert set(points) == set(metrics.REFERENCE_NAMES)
    assert points["silence"]["tempo_consistency"] == 0.0
    with pytest.raises(ValueError, match="groups"):
        metrics.TrainingReference.fit(train, config=CONFIG, groups=groups[:3])


def test_reference_saves_and_loads(reference, tmp_path, rng):
    path = reference.save(tmp_path / "reference.npz")
    loaded = metrics.TrainingReference.load(path)
    assert loaded.config == reference.config and loaded.points == reference.points
    assert loaded.n_loops == reference.n_loops == 110  # 150 loops, 40 held out, copies are one loop
    beats = drum_loops(rng, 5)
    assert metrics.evaluate(beats, loaded).to_dict() == metrics.evaluate(beats, reference).to_dict()


def test_ndb_js_in_the_reference_bins(reference):
    held = reference.project(drum_loops(np.random.default_rng(3), 40))
    ndb, js = metrics.ndb_js(held, reference=reference)
    assert ndb <= 1 and js < 0.1
    ndb, js = metrics.ndb_js(np.repeat(held[:1], 40, axis=0), reference=reference)
    assert ndb >= 2 and js > 0.15  # all in one of 4 bins that holds about 40 % of training


def test_held_out_split_keeps_whole_groups_out_and_is_what_fit_holds_out(rng):
    groups = np.repeat(np.arange(10), 3)  # 10 loops, 3 noisy copies each
    held, fit_rows = metrics.held_out_split(groups, 4, np.random.default_rng(7))
    assert len(held) == 4 and len(set(groups[held])) == 4
    assert not np.isin(groups[fit_rows], groups[held]).any() and fit_rows.sum() == 18
    too_many, _ = metrics.held_out_split(groups, 50, np.random.default_rng(7))
    assert len(too_many) == 5  # at most half of the groups
    # fit() draws the split first from its seed: the held-out point is these clips' distance.
    train = drum_loops(rng, 30)
    reference = metrics.TrainingReference.fit(train, config=CONFIG, seed=7, n_held_out=4,
                                              groups=groups, n_clusters=2)
    z = reference.project(train[held])
    distance = metrics.frechet_distance_gaussians(*metrics.gaussian_stats(z), reference.mean,
                                                  reference.cov)
    assert distance == pytest.approx(reference.points["held_out"]["frechet"], rel=1e-9)
    assert reference.n_train == 18


def test_a_smaller_sample_of_the_same_gaussian_is_further_away(rng):
    # Why a held-out reference from 40 clips is not like for like with 200 generated beats.
    population = rng.standard_normal((20000, 8))
    mean, cov = metrics.gaussian_stats(population)

    def average(size):
        return np.mean([metrics.frechet_distance_gaussians(
            *metrics.gaussian_stats(rng.standard_normal((size, 8))), mean, cov) for _ in range(20)])
    small, large = average(40), average(400)
    assert small > 4 * large > 0
