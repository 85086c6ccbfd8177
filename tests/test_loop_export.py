"""DAW loops: bar structure, a proper 44.1 kHz upsampling filter, no click at the wrap, 24-bit I/O."""

import numpy as np
import pytest
import soundfile as sf

from beatgan import audio
from beatgan.config import MAX_SAMPLE_24, Config
from beatgan.loop_export import (
    arrange,
    bar_pattern,
    build_loop,
    fade_edges,
    float_to_pcm24,
    daw_loop_file_name,
    loop_frames,
    resample_periodic,
    segments_per_bar,
    slot_lengths,
    structure_letters,
    upsample_periodic,
    write_wav24,
)

RATE = 14700


def test_a_bar_is_four_beats():
    assert segments_per_bar(Config()) == 2  # the seed's 2-beat segment is half a bar
    assert segments_per_bar(Config(beats=4, slice_len=32768)) == 1
    with pytest.raises(ValueError, match="whole number"):
        segments_per_bar(Config(beats=3, slice_len=32768))


def test_structures_repeat_to_the_bar_count():
    assert bar_pattern("aaab", bars=8) == "AAABAAAB"
    assert structure_letters("ABAB") == ["A", "B"]
    with pytest.raises(ValueError, match="multiple"):
        bar_pattern("AAAB", bars=6)
    with pytest.raises(ValueError, match="letters"):
        bar_pattern("AB1", bars=3)
    for not_text in (None, True, 7):  # str(None) would be the structure "NONE"
        with pytest.raises(ValueError, match="letters"):
            structure_letters(not_text)


@pytest.mark.parametrize("bpm", [124.0, 125.0, 127.0, 128.0])
def test_a_loop_lasts_its_bars_to_the_sample_at_any_tempo(rng, bpm):
    """At 124 bpm a segment is 14226.29 samples: cut to 14226 each, a 4-bar loop came out
    4.65 samples short at 44.1 kHz. The slots now end where the exact time rounds to."""
    config = Config(bpm=bpm, target_bpm=bpm)
    exact_model = 4 * 4 * 60 / bpm * config.sample_rate_hz
    lengths = slot_lengths(config, 8)
    assert sum(lengths) == round(exact_model) and max(lengths) - min(lengths) <= 1
    segment = rng.uniform(-0.5, 0.5, (config.slice_len, 2)).astype(np.float32)
    loop = build_loop({"A": segment}, structure="A", bars=4, config=config)
    exact = 4 * 4 * 60 / bpm * 44100
    assert abs(loop.shape[0] - exact) <= 1.5  # a loop is a whole number of samples
    if exact == int(exact):  # 125 and 128 bpm: exactly
        assert loop.shape[0] == exact


def test_slots_end_at_the_nearest_sample_of_the_exact_time():
    # 127 bpm: a segment is 2 * 60 / 127 * 14700 = 13889.76 samples; four end at 13889.76,
    # 27779.53, 41669.29 and 55559.06, rounded to 13890, 27780, 41669 and 55559.
    assert slot_lengths(Config(bpm=127.0, target_bpm=127.0), 4) == [13890, 13890, 13889, 13890]


def test_arrange_stacks_each_letter_per_bar():
    a, b = np.full((3, 2), 1.0), np.full((3, 2), 2.0)
    loop = arrange({"A": a, "B": b}, structure="AABB", bars=4, per_bar=2)
    assert loop.shape == (24, 2)
    np.testing.assert_array_equal(loop[::3, 0], [1, 1, 1, 1, 2, 2, 2, 2])
    with pytest.raises(ValueError, match="no segment"):
        arrange({"A": a}, structure="ABAB", bars=4, per_bar=2)


def test_fades_reach_zero_and_leave_the_middle_alone(rng):
    x = rng.uniform(-1, 1, (100, 2)).astype(np.float32)
    y = fade_edges(x, fade_samples=10)
    assert np.all(y[0] == 0) and np.all(y[-1] == 0)
    np.testing.assert_array_equal(y[10:-10], x[10:-10])
    assert np.all(np.abs(y[:10]) <= np.abs(x[:10]))
    np.testing.assert_array_equal(fade_edges(x, fade_samples=0), x)


def test_fades_are_raised_cosines_one_millisecond_long_at_the_model_rate():
    # 0.5 - 0.5 cos(pi k / 4), k = 0..3: 0, 0.1464, 0.5, 0.8536; mirrored at the end.
    ramp = [0.0, 0.5 - 0.5 * np.sqrt(0.5), 0.5, 0.5 + 0.5 * np.sqrt(0.5)]
    y = fade_edges(np.ones((8, 1), np.float32), fade_samples=4)
    np.testing.assert_allclose(y[:, 0], ramp + ramp[::-1], atol=1e-7)
    # In a loop: 1 ms at 14.7 kHz is 15 samples at each end of each segment.
    config = Config()
    n = config.score_len
    segment = np.full((n, 2), 0.5, np.float32)
    loop = build_loop({"A": segment}, structure="A", bars=1, config=config, out_rate_hz=RATE)
    assert loop.shape == (2 * n, 2)  # one bar: the 2-beat segment twice, not resampled
    want = 0.5 * (0.5 - 0.5 * np.cos(np.pi * np.arange(15) / 15))
    for start in (0, n):
        np.testing.assert_allclose(loop[start:start + 15, 0], want, atol=1e-7)
        np.testing.assert_array_equal(loop[start + 15:start + n - 15], 0.5)
        np.testing.assert_allclose(loop[start + n - 15:start + n, 1], want[::-1], atol=1e-7)


def test_a_full_scale_loop_is_clipped_to_the_24_bit_range():
    config = Config()
    square = np.where(np.arange(config.score_len) % 98 < 49, 1.0, -1.0)  # 150 Hz at full scale
    segment = np.repeat(square[:, None], 2, axis=1).astype(np.float32)
    loop = build_loop({"A": segment}, structure="A", bars=1, config=config)
    # Upsampling a square wave overshoots (Gibbs); the loop stops at the 24-bit range.
    assert loop.max() == np.float32(MAX_SAMPLE_24) and loop.min() == -1.0
    assert np.mean(loop == np.float32(MAX_SAMPLE_24)) > 0.01


@pytest.mark.parametrize("target_hz", [44100, 48000])
def test_periodic_upsampling_is_exact_at_the_edges_at_any_output_rate(target_hz):
    """14.7 -> 48 kHz is 160/49: the padding must be whole groups of 49 input samples, or the
    output grid would not line up with the loop's."""
    n = 1470  # 25 cycles of 250 Hz
    t = np.arange(n) / RATE
    x = np.stack([np.sin(2 * np.pi * 250 * t), np.cos(2 * np.pi * 750 * t)], axis=1)
    up = upsample_periodic(x, orig_rate_hz=RATE, target_rate_hz=target_hz)
    m = n * target_hz // RATE
    t_up = np.arange(m) / target_hz
    want = np.stack([np.sin(2 * np.pi * 250 * t_up), np.cos(2 * np.pi * 750 * t_up)], axis=1)
    assert up.shape == (m, 2)
    assert np.abs(up - want).max() < 1e-3


def test_periodic_upsampling_is_exact_at_the_edges_where_plain_resampling_is_not():
    n = 1470  # 0.1 s: 25 cycles of 250 Hz fit exactly, so the loop is periodic
    t = np.arange(n) / RATE
    x = np.stack([np.sin(2 * np.pi * 250 * t), np.cos(2 * np.pi * 500 * t)], axis=1)
    up = upsample_periodic(x, orig_rate_hz=RATE, target_rate_hz=44100)
    t_up = np.arange(3 * n) / 44100
    want = np.stack([np.sin(2 * np.pi * 250 * t_up), np.cos(2 * np.pi * 500 * t_up)], axis=1)
    assert up.shape == (3 * n, 2)
    assert np.abs(up - want).max() < 1e-3
    # The non-periodic filter assumes zeros past the ends: large errors at the wrap.
    plain = audio.resample(x, orig_rate_hz=RATE, target_rate_hz=44100)
    assert np.abs(plain - want)[:30].max() > 0.1


def test_upsampling_filter_removes_the_spectral_images():
    n = 14700
    tone = np.sin(2 * np.pi * 1000 * np.arange(n) / RATE)[:, None]
    up = upsample_periodic(tone, orig_rate_hz=RATE, target_rate_hz=44100)[:, 0]
    spectrum = np.abs(np.fft.rfft(up * np.hanning(up.size)))
    freqs = np.fft.rfftfreq(up.size, 1 / 44100)
    peak = spectrum[np.argmin(np.abs(freqs - 1000))]
    for image_hz in (13700, 15700):  # 14.7 kHz +/- 1 kHz
        image = spectrum[np.abs(freqs - image_hz) < 20].max()
        assert 20 * np.log10(image / peak) < -70
    # Holding each sample three times (no filter) leaves images only ~ -20 dB down.
    held = np.repeat(tone[:, 0], 3)
    held_spectrum = np.abs(np.fft.rfft(held * np.hanning(held.size)))
    assert 20 * np.log10(held_spectrum[np.abs(freqs - 13700) < 20].max() / peak) > -40


def bass_and_hats(rng, n, *, phase):
    """A sub-bass that ends half a cycle from where it starts, plus noisy hats: clicks if cut bluntly."""
    t = np.arange(n) / RATE
    hz = (53 + 0.5) / (n / RATE)  # 53.5 cycles per segment (55.7 Hz at 125 bpm)
    bass = 0.5 * np.cos(2 * np.pi * hz * t + phase)
    hats = np.zeros(n)
    for onset in range(0, n, n // 8):
        length = min(600, n - onset)
        hats[onset:onset + length] += 0.4 * rng.uniform(-1, 1, length) * np.exp(-np.arange(length) / 80)
    return np.stack([bass + hats, bass - hats], axis=1).astype(np.float32)


def clicks(loop, *, boundaries):
    """The jump at the wrap and at segment boundaries, and the 99th percentile of all jumps."""
    jumps = np.abs(np.diff(loop, axis=0)).max(axis=1)
    wrap = np.abs(loop[0] - loop[-1]).max()
    at_bounds = max(jumps[b - 1] for b in boundaries)
    return wrap, at_bounds, np.percentile(jumps, 99)


@pytest.mark.parametrize("structure", ["AAAB", "ABAB"])
def test_loop_has_no_click_at_the_wrap_or_bar_lines(rng, structure):
    config = Config()
    n = config.score_len
    segments = {"A": bass_and_hats(rng, n, phase=0.0), "B": bass_and_hats(rng, n, phase=0.5)}
    loop = build_loop(segments, structure=structure, bars=4, config=config)
    assert loop.shape == (4 * 2 * n * 3, 2) and loop.dtype == np.float32
    assert loop.max() <= MAX_SAMPLE_24 and loop.min() >= -1.0
    bounds = range(3 * n, loop.shape[0], 3 * n)
    wrap, at_bounds, typical = clicks(loop, boundaries=bounds)
    assert wrap <= typical and at_bounds <= typical
    # The same check fails without the fades: the bass jumps at every segment boundary.
    raw = build_loop(segments, structure=structure, bars=4, config=config, fade_ms=0.0)
    raw_wrap, raw_bounds, raw_typical = clicks(raw, boundaries=bounds)
    assert raw_wrap > 2 * raw_typical and raw_bounds > 2 * raw_typical


def test_loop_bars_follow_the_structure(rng):
    config = Config()
    n = config.score_len
    segments = {"A": bass_and_hats(rng, n, phase=0.3), "B": bass_and_hats(rng, n, phase=2.0)}
    loop = build_loop(segments, structure="AABB", bars=4, config=config)
    bars = loop.reshape(4, 2 * 3 * n, 2)
    inner = slice(300, -300)  # the filter mixes neighbours only near bar lines
    np.testing.assert_array_equal(bars[0, inner], bars[1, inner])
    np.testing.assert_array_equal(bars[2, inner], bars[3, inner])
    assert np.abs(bars[0, inner] - bars[2, inner]).max() > 0.1


def test_pcm24_round_trip_is_exact(tmp_path, rng):
    x = rng.uniform(-1, 1, (500, 2))
    x[0] = [1.0, -1.0]  # full scale clips to the 24-bit range instead of wrapping
    path = write_wav24(x, tmp_path / "sub" / "x.wav", sample_rate_hz=44100)
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_24")
    back, _ = sf.read(str(path), dtype="float64")
    np.testing.assert_array_equal(back[1:], np.round(x[1:] * 2 ** 23) / 2 ** 23)
    np.testing.assert_array_equal(back[0], [MAX_SAMPLE_24, -1.0])
    assert float_to_pcm24(np.array([0.5]))[0] == (2 ** 22) << 8


def test_loop_file_name_says_tempo_and_structure():
    name = daw_loop_file_name(bpm=125.0, structure="aaab", bars=4, seed=3, index=7)
    assert name == "beatgan_125bpm_AAAB_4bars_seed3_a007.wav"


@pytest.mark.parametrize("bpm, rate, frames", [
    (125, 48000, 368640), (120, 96000, 768000), (126, 44100, 336000), (130, 88200, 651324),
    (126, 48000, 365714), (140, 96000, 658286),
])
def test_a_loop_file_holds_its_bars_to_the_nearest_frame(bpm, rate, frames):
    """By hand: 16 beats at 14.7 kHz, rounded to the sample (the slots), then times
    rate / 14700, rounded to the frame: at 126 bpm, 112,000 x 160 / 49 = 365,714.29 -> 365,714."""
    config = Config(bpm=bpm)
    n = round(16 * 60 / bpm * 14700)
    assert frames == round(n * rate / 14700)
    assert loop_frames(config, bars=4, out_rate_hz=rate) == frames
    loop = build_loop({"A": np.zeros((16384, 2), np.float32)}, structure="A", bars=4,
                      config=config, out_rate_hz=rate)
    assert loop.shape == (frames, 2) and loop.dtype == np.float32


def test_periodic_resampling_to_a_whole_length_is_the_same_waveform_one_period_long():
    """A loop of 1000 samples at 14.7 kHz is 3265.3 samples at 48 kHz: to 3265 samples, each
    sinusoid keeps its whole number of cycles per loop, across the wrap (float64 reference)."""
    n, m = 1000, 3265
    assert n * 48000 % RATE != 0
    i, j = np.arange(n), np.arange(m)
    cycles = (3, 17, 250, 499)  # 499 cycles in 1000 samples: just below the input's Nyquist
    x = np.stack([sum(np.sin(2 * np.pi * c * i / n + c) for c in cycles[:2]),
                  sum(np.cos(2 * np.pi * c * i / n) for c in cycles[2:])], axis=1)
    want = np.stack([sum(np.sin(2 * np.pi * c * j / m + c) for c in cycles[:2]),
                     sum(np.cos(2 * np.pi * c * j / m) for c in cycles[2:])], axis=1)
    got = upsample_periodic(x, orig_rate_hz=RATE, target_rate_hz=48000)
    assert got.shape == (m, 2) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, atol=1e-9)
    assert resample_periodic(x.astype(np.float32), n_out=m).dtype == np.float32
    # The polyphase filter, where the length is whole (44.1 kHz), agrees below its transition band.
    whole = upsample_periodic(x[:, :1], orig_rate_hz=RATE, target_rate_hz=44100)
    fft = resample_periodic(x[:, :1], n_out=3 * n)
    assert np.abs(whole - fft).max() < 1e-3


def test_periodic_resampling_of_a_loop_played_twice_is_the_loop_resampled_played_twice(rng):
    """What makes the wrap seamless: the resampled loop repeats as the loop does. A resampler
    that sees silence past the ends (not the loop's other end) fails this at the seam."""
    x = rng.standard_normal((1000, 2))
    once = resample_periodic(x, n_out=3265)
    twice = resample_periodic(np.concatenate([x, x]), n_out=2 * 3265)
    np.testing.assert_allclose(twice, np.concatenate([once, once]), atol=1e-9)


def test_a_126_bpm_loop_at_48_khz_is_written_whole_and_tagged(tiny_weights, tmp_path):
    from beatgan.generation import load_generator, make_loop
    from test_wav_loop_info import SF_LOOP_FORWARD, libsndfile_loop_info, libsndfile_loops

    model, config = load_generator(tiny_weights)
    path = make_loop(model, config=config.replace(bpm=126), out_dir=tmp_path, out_rate_hz=48000)
    assert path.name == "beatgan_126bpm_AAAB_4bars_seed0_a000_48000hz.wav"
    info = sf.info(str(path))
    assert (info.samplerate, info.frames, info.channels) == (48000, 365714, 2)
    assert libsndfile_loop_info(path)["bpm"] == 126
    assert libsndfile_loops(path) == [(SF_LOOP_FORWARD, 0, 365714, 0)]


def test_make_loop_refuses_a_bad_rate_before_generating_or_writing(tiny_weights, tmp_path):
    from beatgan.generation import load_generator, make_loop

    model, config = load_generator(tiny_weights)
    calls = []
    model.predict_on_batch = lambda *args, **kwargs: calls.append(args)  # not reached
    for rate in (-48000, 0, 44100.5):
        with pytest.raises(ValueError, match=f"positive whole number of Hz, got {rate!r}"):
            make_loop(model, config=config, out_dir=tmp_path / "loops", out_rate_hz=rate)
    assert calls == [] and not (tmp_path / "loops").exists()


def test_a_retimed_loop_is_its_bars_at_the_new_tempo_to_the_nearest_frame():
    from beatgan.loop_export import retimed_frames

    # By hand: 16 beats x 60 / bpm x rate.
    assert retimed_frames(bars=4, bpm=140, rate_hz=44100) == 302400  # exactly
    assert retimed_frames(bars=4, bpm=127, rate_hz=48000) == 362835  # 362,834.6
    assert retimed_frames(bars=8, bpm=93.5, rate_hz=44100) == 905583  # 905,582.89
    assert retimed_frames(bars=4, bpm=99.999, rate_hz=44100) == 423364  # 423,364.23: not 100's


@pytest.mark.parametrize("to_bpm, method", [
    (130, "resample"), (118, "resample"),  # 0.68 and 1.00 semitones of varispeed
    (117, "slice"), (140, "slice"), (90, "slice")])
def test_auto_resamples_within_a_semitone_and_slices_beyond(to_bpm, method):
    from beatgan.loop_export import tempo_method

    assert tempo_method(125, to_bpm) == method
    assert tempo_method(125, to_bpm, "slice") == "slice"
    with pytest.raises(ValueError, match="auto, slice, resample, got 'stretch'"):
        tempo_method(125, to_bpm, "stretch")


def _kick_loop(*, bpm, bars=4, rate=44100):
    """Decaying 60 Hz kicks on every beat, the loop's ends faded as ``make_loop`` fades them."""
    beat = 60 / bpm * rate
    n = round(bars * 4 * beat)
    x = np.zeros(n)
    for k in range(bars * 4):
        start = round(k * beat)
        t = np.arange(n - start) / rate
        x[start:] += np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.15)
    x = fade_edges(x[:, None], fade_samples=44)
    return np.repeat(x, 2, axis=1), beat


@pytest.mark.parametrize("to_bpm", [100, 150])
def test_slicing_a_loop_moves_every_kick_to_its_beat_and_wraps_as_smoothly_as_it_runs(to_bpm):
    from beatgan.loop_export import retime_loop, retimed_frames

    x, beat = _kick_loop(bpm=125)
    n_out = retimed_frames(bars=4, bpm=to_bpm, rate_hz=44100)
    y = retime_loop(x, from_bpm=125, to_bpm=to_bpm, n_out=n_out, sample_rate_hz=44100,
                    method="slice")
    assert y.shape == (n_out, 2)
    new_beat = 60 / to_bpm * 44100
    # Each kick's peak lies as far from its beat as in the original loop (4 ms after it), within
    # 3 ms: a slice starts at its onset backtracked to the quiet before the hit, up to about
    # 10 ms early, and that lead is scaled with the rest (measured: at most 2.5 ms).
    for k in range(1, 16):
        window = slice(round(k * beat) - 735, round(k * beat) + 735)  # +-1 period of 60 Hz
        new_window = slice(round(k * new_beat) - 735, round(k * new_beat) + 735)
        assert abs(np.argmax(y[new_window, 0]) - np.argmax(x[window, 0])) <= 132, k
    # Across the wrap the loop runs on as smoothly as in the samples before it: the last
    # slice's fade, past the end, sounds over the start (without it the step is 5-18x larger).
    assert (np.abs(y[0] - y[-1]) <= 2 * np.abs(y[-1] - y[-2])).all()


def test_a_small_change_is_resampled_as_one_period():
    from beatgan.loop_export import retime_loop, retimed_frames

    x, _ = _kick_loop(bpm=125)
    n_out = retimed_frames(bars=4, bpm=128, rate_hz=44100)
    assert n_out == 330750  # 16 beats at 128 bpm
    y = retime_loop(x, from_bpm=125, to_bpm=128, n_out=n_out, sample_rate_hz=44100)  # auto
    np.testing.assert_allclose(y, resample_periodic(x, n_out=n_out))


def test_make_loop_brings_the_loop_to_another_tempo_and_says_so(tiny_weights, tmp_path):
    import json

    from beatgan.generation import load_generator, make_loop
    from test_wav_loop_info import libsndfile_loop_info

    model, config = load_generator(tiny_weights)
    path = make_loop(model, config=config, out_dir=tmp_path, bpm=140)
    assert path.name == "beatgan_140bpm_AAAB_4bars_seed0_a000_slice.wav"
    assert sf.info(str(path)).frames == 302400
    assert libsndfile_loop_info(path)["bpm"] == 140
    meta = json.loads(path.with_suffix(".json").read_text())
    assert (meta["bpm"], meta["generated_bpm"], meta["tempo_method"]) == (140, 125, "slice")
    # The model's own tempo is no change: the default loop, byte for byte.
    same = make_loop(model, config=config, out_dir=tmp_path / "same", bpm=125)
    plain = make_loop(model, config=config, out_dir=tmp_path / "plain")
    assert same.name == plain.name and same.read_bytes() == plain.read_bytes()
    for bad in (39.0, 301.0, float("nan")):
        with pytest.raises(ValueError, match="tempo lies in 40-300 bpm"):
            make_loop(model, config=config, out_dir=tmp_path / "bad", bpm=bad)
    with pytest.raises(ValueError, match="auto, slice, resample, got 'bogus'"):
        make_loop(model, config=config, out_dir=tmp_path / "bad", tempo_method="bogus")
    assert not (tmp_path / "bad").exists()
    # A tempo is kept to 0.001 bpm, as the ACID chunk and the name keep it.
    fine = make_loop(model, config=config, out_dir=tmp_path / "fine", bpm=127.33333)
    assert fine.name.startswith("beatgan_127.333bpm_")
    assert json.loads(fine.with_suffix(".json").read_text())["bpm"] == 127.333
    assert sf.info(str(fine)).frames == round(16 * 60 / 127.333 * 44100)
