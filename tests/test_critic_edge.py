"""bench/critic_edge.py: a critic's edge, where its gradient lies, and its two probes."""

import json

import numpy as np
import pytest

from beatgan import Config


@pytest.fixture(scope="module")
def critic_edge(bench_script):
    return bench_script("critic_edge")


def test_edge_is_the_difference_of_means_with_its_standard_error(critic_edge):
    result = critic_edge.edge([1.0, 2.0, 3.0, 6.0], [0.0, 1.0])
    assert result["estimate"] == pytest.approx(3.0 - 0.5)
    # var(real, ddof=1) = 14/3 over 4 clips, var(fake, ddof=1) = 0.5 over 2 clips
    assert result["standard_error"] == pytest.approx(np.sqrt(14 / 3 / 4 + 0.5 / 2))
    assert result["real_sd"] == pytest.approx(np.sqrt(14 / 3)) and result["fake_mean"] == 0.5


def test_band_shares_put_a_tone_in_its_band(critic_edge):
    fs = 14700
    t = np.arange(4096) / fs
    tone = np.sin(2 * np.pi * 1000.0 * t)[None, :, None].repeat(2, axis=0)
    shares, freqs, power = critic_edge.band_shares(tone, sample_rate_hz=fs)
    bands = list(zip(critic_edge.GRADIENT_BANDS_HZ[:-1], critic_edge.GRADIENT_BANDS_HZ[1:]))
    assert len(shares) == len(bands) and sum(shares) == pytest.approx(1.0)
    assert shares[bands.index((800, 1600))] > 0.95
    assert abs(freqs[np.argmax(power)] - 1000.0) < fs / 1024


def test_input_gradients_of_a_linear_critic_are_its_weights(critic_edge, rng):
    import keras

    samples, channels = 64, 2
    weights = rng.normal(size=(samples * channels, 1)).astype(np.float32)
    critic = keras.Sequential([keras.Input((samples, channels)), keras.layers.Flatten(),
                               keras.layers.Dense(1, use_bias=False)])
    critic.layers[-1].set_weights([weights])
    audio = rng.normal(size=(5, samples, channels)).astype(np.float32)
    grads = critic_edge.input_gradients(critic, audio, batch=2)
    assert grads.shape == audio.shape
    np.testing.assert_allclose(grads, np.broadcast_to(weights.reshape(samples, channels),
                                                      audio.shape), rtol=1e-5)
    scores = critic_edge.critic_scores(critic, audio, batch=2)
    np.testing.assert_allclose(scores, audio.reshape(5, -1) @ weights[:, 0], rtol=1e-4, atol=1e-5)


def test_scores_with_the_shuffle_shift_each_clip_as_training_does(critic_edge):
    import keras

    from beatgan.model import PhaseShuffle

    samples = 16
    ramp = np.arange(samples, dtype=np.float32)
    audio = np.broadcast_to(ramp[None, :, None], (64, samples, 1)).copy()
    # Its score is the sample at t = 8: t - shift after a per-example shift by up to 2.
    critic = keras.Sequential([keras.Input((samples, 1)),
                               PhaseShuffle(2, seed=4, per="example"),
                               keras.layers.Lambda(lambda x: x[:, 8, :])])
    np.testing.assert_array_equal(critic_edge.critic_scores(critic, audio), 8.0)
    shuffled = critic_edge.critic_scores(critic, audio, shuffle=True, batch=16)
    assert set(shuffled.tolist()) == {6.0, 7.0, 8.0, 9.0, 10.0}


def test_the_probes_shift_later_and_take_out_the_sub_bass(critic_edge):
    fs = 14700
    t = np.arange(8192) / fs
    audio = np.stack([np.sin(2 * np.pi * 20.0 * t), np.sin(2 * np.pi * 2000.0 * t)], axis=-1)[None]
    moved = critic_edge.shifted(audio, 64)
    assert np.all(moved[:, :64] == 0) and np.array_equal(moved[:, 64:], audio[:, :-64])
    filtered = critic_edge.high_passed(audio, sample_rate_hz=fs)
    middle = slice(2000, 6000)  # away from the filter's edges
    assert np.std(filtered[0, middle, 0]) < 0.01 * np.std(audio[0, middle, 0])  # 20 Hz: gone
    assert np.std(filtered[0, middle, 1]) == pytest.approx(np.std(audio[0, middle, 1]), rel=0.01)


def test_a_checkpoints_critic_has_the_checkpoints_weights(critic_edge, tiny_weights, tmp_path):
    from beatgan.checkpoint import save_checkpoint

    config = Config.load(tiny_weights)
    exported = critic_edge.load_critic(tiny_weights / "discriminator.weights.h5", config)
    arrays = {f"discriminator/{i:04d}": np.asarray(v) * (1.5 if "float" in str(v.dtype) else 1)
              for i, v in enumerate(exported.variables)}  # another critic than a fresh build
    path = save_checkpoint(tmp_path / "checkpoints", step=7, arrays=arrays, meta={})
    from_checkpoint = critic_edge.load_critic(path, config)
    for (key, value), variable in zip(sorted(arrays.items()), from_checkpoint.variables):
        np.testing.assert_array_equal(np.asarray(variable), value, err_msg=key)
    audio = np.random.default_rng(1).uniform(-0.5, 0.5, (3, config.slice_len, 2)).astype(np.float32)
    assert not np.allclose(critic_edge.critic_scores(from_checkpoint, audio),
                           critic_edge.critic_scores(exported, audio))


def test_the_script_scores_loops_and_beats_and_prints_a_json_line(critic_edge, tiny_weights,
                                                                  demo_folder, capsys):
    from beatgan.generation import generate, load_generator
    from beatgan.workflows import load_training_loops

    result = critic_edge.main(["--critic", str(tiny_weights / "discriminator.weights.h5"),
                               "--weights", str(tiny_weights), "--data", str(demo_folder),
                               "--n", "4"])
    out = capsys.readouterr().out
    assert json.loads(out.strip().splitlines()[-1]) == json.loads(json.dumps(result))
    # the same clips, scored here: the noisy loops drawn at seed 0 and the beats of seed 0
    config = Config.load(tiny_weights)
    critic = critic_edge.load_critic(tiny_weights / "discriminator.weights.h5", config)
    rng = np.random.default_rng(0)
    noisy = load_training_loops(demo_folder, config).augment(rng=rng)
    real = noisy[rng.choice(len(noisy), size=4, replace=False)]
    fake = np.asarray(generate(load_generator(tiny_weights)[0], n=4, seed=0, config=config)[0])
    expected = critic_edge.edge(critic_edge.critic_scores(critic, real),
                                critic_edge.critic_scores(critic, fake))
    assert result["estimate"] == pytest.approx(expected["estimate"], rel=1e-5, abs=1e-6)
    assert sum(result["gradient_band_shares"].values()) == pytest.approx(1.0)
    assert set(result["probes"]) == {"high-pass 60 Hz", "64 samples later"}


def test_the_json_reports_the_loops_and_beats_it_scored(critic_edge, tiny_weights, demo_folder,
                                                        capsys):
    # Two loops, five noisy copies each: ten loops to score however many --n asks for.
    result = critic_edge.main(["--critic", str(tiny_weights / "discriminator.weights.h5"),
                               "--weights", str(tiny_weights), "--data", str(demo_folder),
                               "--n", "12"])
    assert (result["n_loops"], result["n_beats"]) == (10, 12) and "n" not in result
    assert "10 loops" in capsys.readouterr().out


def test_seed_probes_and_peaks_are_those_of_the_clips_it_draws(critic_edge, tiny_weights,
                                                                demo_folder, capsys):
    from beatgan.generation import generate, load_generator
    from beatgan.workflows import load_training_loops

    result = critic_edge.main(["--critic", str(tiny_weights / "discriminator.weights.h5"),
                               "--weights", str(tiny_weights), "--data", str(demo_folder),
                               "--n", "3", "--seed", "5"])
    capsys.readouterr()
    config = Config.load(tiny_weights)
    critic = critic_edge.load_critic(tiny_weights / "discriminator.weights.h5", config)
    rng = np.random.default_rng(5)  # --seed draws the noisy loops and the beats alike
    noisy = load_training_loops(demo_folder, config).augment(rng=rng)
    real = noisy[rng.choice(len(noisy), size=3, replace=False)]
    fake = np.asarray(generate(load_generator(tiny_weights)[0], n=3, seed=5, config=config)[0])
    real_scores = critic_edge.critic_scores(critic, real)
    fake_scores = critic_edge.critic_scores(critic, fake)
    assert result["fake_mean"] == pytest.approx(fake_scores.mean(), rel=1e-5, abs=1e-6)
    assert result["real_mean"] == pytest.approx(real_scores.mean(), rel=1e-5, abs=1e-6)
    # Probes: each set's change is its new mean minus its old; the edge then is new minus new.
    # (The high-pass moves this critic's scores of the beats; the shift barely does.)
    def high_passed(audio):
        return critic_edge.high_passed(audio, sample_rate_hz=config.sample_rate_hz)

    for name, change in ((f"high-pass {critic_edge.HIGH_PASS_HZ:g} Hz", high_passed),
                         ("64 samples later", critic_edge.shifted)):
        later_real = critic_edge.critic_scores(critic, change(real))
        later_fake = critic_edge.critic_scores(critic, change(fake))
        probe = result["probes"][name]
        assert probe["loops_change"] == pytest.approx(later_real.mean() - real_scores.mean(),
                                                      rel=1e-3, abs=1e-9)
        assert probe["beats_change"] == pytest.approx(later_fake.mean() - fake_scores.mean(),
                                                      rel=1e-3, abs=1e-9)
        assert probe["estimate"] == pytest.approx(later_real.mean() - later_fake.mean(),
                                                  rel=1e-3, abs=1e-9)
    # The peaks: the five strongest frequencies of the gradient's spectrum, strongest first.
    _, freqs, power = critic_edge.band_shares(critic_edge.input_gradients(critic, fake),
                                              sample_rate_hz=config.sample_rate_hz)
    strength = dict(zip(freqs.tolist(), power.tolist()))
    peaks = result["gradient_peaks_hz"]
    assert len(peaks) == 5 and peaks[0] == freqs[np.argmax(power)]
    assert [strength[f] for f in peaks] == sorted(strength.values(), reverse=True)[:5]


def test_band_shares_average_the_power_of_every_channel(critic_edge):
    fs = 14700
    t = np.arange(4096) / fs
    left, right = np.sin(2 * np.pi * 150.0 * t), 2 * np.sin(2 * np.pi * 1000.0 * t)  # power 1 : 4
    shares, _, _ = critic_edge.band_shares(np.stack([left, right], axis=-1)[None], sample_rate_hz=fs)
    bands = list(zip(critic_edge.GRADIENT_BANDS_HZ[:-1], critic_edge.GRADIENT_BANDS_HZ[1:]))
    assert shares[bands.index((100, 200))] == pytest.approx(0.2, abs=0.01)
    assert shares[bands.index((800, 1600))] == pytest.approx(0.8, abs=0.01)
