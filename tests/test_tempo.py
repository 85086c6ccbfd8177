"""Loops at any tempo: demo loops at 100, 110 and 140 bpm brought to 125 bpm by the loader.

Measured on whole 8-beat loops (Config(slice_len=65536, beats=8): 56448 samples at 14.7 kHz
and 125 bpm), because a 2-beat segment is too short for a stable tempo estimate. The synth
plays a four-on-the-floor kick on every beat (``synth.loop_score``), so the kicks must land on
the 125-bpm grid: each kick's onset is the peak of the low-band (< 200 Hz) SuperFlux of
``beatgan.metrics`` (its first frame at half the peak) within half a 16th of its beat. Kicks right after a pickup kick (a fill)
are left out: the earlier kick's low end masks their flux.
"""

import warnings
from fractions import Fraction

import numpy as np
import pytest

from beatgan import metrics, synth
from beatgan.config import Config
from beatgan.data import LoopWarning, detect_bpm, load_loops

SOURCE_BPMS = (100, 110, 140)
TARGET = 125.0
BEATS = 8
SEED = 3


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two demo loops per source tempo; also {file name: loop index} (write_demo_pack's order)."""
    root = tmp_path_factory.mktemp("tempi")
    index = {}
    for bpm in SOURCE_BPMS:
        paths = synth.write_demo_pack(root / str(bpm), n=2, seed=SEED, bpm=bpm)
        index.update({p.name: i for i, p in enumerate(paths)})
    return root, index


def load(folder, method):
    config = Config(slice_len=65536, beats=BEATS, target_bpm=TARGET, tempo_method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LoopWarning)
        return load_loops(folder, config), config


def kick_errors_ms(segment, *, config, kick_grid):
    """Onset minus grid time (ms) of each kick on a beat, at the loop's new tempo."""
    times_s, _, low = metrics.onset_envelopes(segment.mean(axis=1)[None], config=config)
    env = low[0]
    beat_s = 60.0 / TARGET
    loudest = env[times_s > beat_s / 8].max()  # past the first hit, which comes out of silence
    errors = []
    for beat in range(BEATS):
        step = 4 * beat
        if kick_grid[step - 1] or kick_grid[step - 2]:  # a pickup kick just before
            continue
        near = np.flatnonzero(np.abs(times_s - beat * beat_s) <= beat_s / 8)
        peak = env[near].max()
        assert peak >= 0.1 * loudest, f"no kick onset near beat {beat}"
        # The first frame at half the peak: the attack, not the kick's pitch sweep or a tom
        # ringing in the same band a few frames later.
        k = near[np.argmax(env[near] >= 0.5 * peak)]
        errors.append(1e3 * (times_s[k] - beat * beat_s))
    return errors


def measure(folders, method):
    """{source bpm: (tempo estimates, kick errors in ms)} for the loops loaded with ``method``."""
    root, index = folders
    out = {}
    for bpm in SOURCE_BPMS:
        loops, config = load(root / str(bpm), method)
        estimates, errors = [], []
        for row, report in enumerate(loops.report):
            assert report.bpm == bpm and report.bpm_source == "name"
            assert f"tempo {bpm} -> 125 bpm ({method})" in report.notes
            segment = loops.audio[row, : loops.lengths[row]]
            assert segment.shape[0] == config.segment_len(TARGET) == 56448
            estimates.append(detect_bpm(segment, sample_rate_hz=config.sample_rate_hz))
            score = synth.loop_score(seed=SEED, index=index[report.path.name])
            errors += kick_errors_ms(segment, config=config, kick_grid=score.grid["kick"])
        out[bpm] = (np.array(estimates), np.array(errors))
    return out


def test_resampling_puts_tempo_and_every_kick_on_the_125_grid(folders):
    for bpm, (estimates, errors) in measure(folders, "resample").items():
        assert np.all(np.abs(estimates / TARGET - 1) <= 0.02), (bpm, estimates)
        assert len(errors) >= 12, "too few kicks measured"
        assert np.all(np.abs(errors) <= 10.0), (bpm, np.round(errors, 1))


def test_slicing_keeps_kicks_on_the_grid(folders):
    # Speeding up (100, 110 -> 125) moves every slice exactly. Slowing down (140 -> 125) fills
    # each slice's gap by looping its tail, and a looped bass tail can read as a low-band onset
    # up to 25 ms early (1 kick in 46 on 6 loops); allow one such kick here.
    for bpm, (estimates, errors) in measure(folders, "slice").items():
        assert np.all(np.abs(estimates / TARGET - 1) <= 0.02), (bpm, estimates)
        off = np.abs(errors) > 10.0
        assert off.sum() <= (0 if bpm < TARGET else 1), (bpm, np.round(errors, 1))


def test_phase_vocoder_keeps_tempo_but_smears_kicks(folders):
    # librosa's phase vocoder gets the tempo right, but its 46 ms frames smear the kicks: on the
    # demo pack 15-45 % land more than 10 ms off the grid (up to ~35 ms), which is why it is not
    # the method for drums (see beatgan.data). Guard the typical error only.
    all_errors = []
    for bpm, (estimates, errors) in measure(folders, "stretch").items():
        assert np.all(np.abs(estimates / TARGET - 1) <= 0.02), (bpm, estimates)
        all_errors += list(errors)
    assert np.median(np.abs(all_errors)) <= 10.0


def test_control_unchanged_loops_read_their_own_tempo(folders):
    # The estimate follows the audio, not the prior: without a target the loops read 100/110/140.
    for bpm in SOURCE_BPMS:
        config = Config(slice_len=65536, beats=6)  # 6 beats: fits 65536 samples down to 81 bpm
        loops = load_loops(folders[0] / str(bpm), config)
        segment = loops.audio[0, : loops.lengths[0]]
        assert loops.report[0].notes == ()
        assert abs(detect_bpm(segment, sample_rate_hz=14700) / bpm - 1) <= 0.02


@pytest.mark.parametrize("bpm", [100.0, 110.0, 124.0, 140.0])
def test_a_loop_of_two_beats_is_tiled_to_read_its_tempo(bpm):
    # One second of audio is too little for librosa's autocorrelation (untiled, these read
    # 140-199 bpm); tiled to 8 s, a seamless 2-beat loop reads its own tempo.
    loop = synth.synthesize_loop(bpm=bpm, seed=1, index=int(bpm), beats=2)
    assert loop.shape[0] < 1.3 * 44100
    assert abs(detect_bpm(loop, sample_rate_hz=44100) / bpm - 1) <= 0.02


def test_report_table_says_tempo_source_and_what_was_done(folders, tmp_path):
    import shutil

    import soundfile as sf

    source = sorted((folders[0] / "110").glob("*.wav"))[0]
    shutil.copy(source, tmp_path / source.name)
    loop, rate = sf.read(source, dtype="float32")
    sf.write(tmp_path / "untitled.wav", loop, rate, subtype="PCM_24")  # no tempo in the name
    loops, _ = load(tmp_path, "resample")
    loops = load_loops(tmp_path, loops.config.replace(detect_tempo=True))
    table = loops.report_table().splitlines()
    assert table[0].split() == ["file", "status", "bpm", "from", "samples", "done"]
    named = next(line for line in table if source.name in line)
    assert "110 name 56448" in " ".join(named.split()) and "tempo 110 -> 125 bpm (resample)" in named
    detected = next(line for line in table if "untitled.wav" in line)
    assert " detected " in detected and "-> 125 bpm (resample)" in detected


# --- the arithmetic of each method, by hand -------------------------------------------------------

def test_speed_ratio_is_the_exact_tempo_ratio():
    from beatgan.tempo_change import speed_ratio

    assert speed_ratio(124, 125) == Fraction(125, 124)  # 124 -> 125 needs a denominator of 124
    assert speed_ratio(100, 125) == Fraction(5, 4)
    assert speed_ratio(122.5, 125) == Fraction(50, 49)


def test_resampling_changes_the_length_by_the_tempo_ratio():
    from beatgan.tempo_change import change_tempo

    x = np.zeros((12500, 2), np.float32)
    assert change_tempo(x, from_bpm=124, to_bpm=125).shape == (12400, 2)  # 12500 * 124 / 125
    assert change_tempo(x, from_bpm=125, to_bpm=100).shape == (15625, 2)  # 12500 * 125 / 100
    assert change_tempo(x, from_bpm=125, to_bpm=125) is x


#: Onsets the slicer is given (librosa's detector stubbed out): slices [0, 2001), [2001, 5003),
#: [5003, 8003) of an 8003-sample loop whose slices hold 0.1, 0.2 and 0.3 with a hit on each onset.
ONSETS = (2001, 5003)
FADE = 220  # 5 ms at 44.1 kHz


def sliced_loop(monkeypatch):
    import librosa

    monkeypatch.setattr(librosa.onset, "onset_detect", lambda **kwargs: np.array(ONSETS))
    x = np.zeros((8003, 2), np.float32)
    for start, end, level in ((0, 2001, 0.1), (2001, 5003, 0.2), (5003, 8003, 0.3)):
        x[start:end] = level
    for onset in ONSETS:
        x[onset] += [0.5, -0.5]
    return x


def test_slicing_faster_moves_each_hit_to_its_rounded_time_at_full_gain(monkeypatch):
    from beatgan.tempo_change import slice_stretch

    x = sliced_loop(monkeypatch)
    y = slice_stretch(x, speed=1.25, sample_rate_hz=44100)
    assert y.shape == (6403, 2) and y.dtype == np.float32  # ceil(8003 / 1.25) = ceil(6402.4)
    # Slice k starts at round(onset / 1.25): 1600.8 -> 1601, 4002.4 -> 4002. Each slice plays on
    # unchanged until its successor starts, then fades out over the successor's first 5 ms.
    np.testing.assert_array_equal(y[:1601], np.float32(0.1))
    np.testing.assert_allclose(y[1601], [0.2 + 0.5 + 0.1, 0.2 - 0.5 + 0.1], atol=1e-6)  # the hit
    np.testing.assert_allclose(y[1601 + FADE:4002], 0.2, atol=1e-7)
    np.testing.assert_allclose(y[4002], [0.3 + 0.5 + 0.2, 0.3 - 0.5 + 0.2], atol=1e-6)
    np.testing.assert_allclose(y[4002 + FADE:], 0.3, atol=1e-7)
    # In the overlap the outgoing slice falls linearly from full gain to 0.
    np.testing.assert_allclose(y[1602:1601 + FADE, 0] - 0.2, 0.1 * np.linspace(1, 0, FADE)[1:],
                               atol=1e-6)


def test_slicing_slower_loops_each_tail_or_leaves_silence(monkeypatch):
    from beatgan.tempo_change import slice_stretch

    x = sliced_loop(monkeypatch)
    # 0.8: the slices start at 0, 2501 and 6254 (2501.25, 6253.75 rounded); each is followed by
    # its own second half, crossfaded, so the level holds across the whole slot.
    y = slice_stretch(x, speed=0.8, sample_rate_hz=44100)
    assert y.shape == (10004, 2)  # ceil(8003 / 0.8) = ceil(10003.75)
    np.testing.assert_allclose(y[:2501], 0.1, atol=1e-6)
    np.testing.assert_allclose(y[2501], [0.2 + 0.5 + 0.1, 0.2 - 0.5 + 0.1], atol=1e-6)
    np.testing.assert_allclose(y[2501 + FADE:6254], 0.2, atol=1e-6)
    np.testing.assert_allclose(y[6254], [0.3 + 0.5 + 0.2, 0.3 - 0.5 + 0.2], atol=1e-6)
    np.testing.assert_allclose(y[6254 + FADE:], 0.3, atol=1e-6)
    # The hit is not looped: it sounds once per slice.
    assert np.sum(np.abs(y[:, 0] - y[:, 1]) > 0.5) == 2
    # 0.6: a slot is 5/3 of its slice; a tail long enough to fill it would reach into the slice's
    # first half, where its hit is. The slice plays once and silence follows its fade-out.
    y = slice_stretch(x, speed=0.6, sample_rate_hz=44100)
    assert y.shape == (13339, 2)  # ceil(13338.33)
    np.testing.assert_array_equal(y[:2001 - FADE], np.float32(0.1))
    np.testing.assert_array_equal(y[2001:3335], 0.0)  # the next slice starts at round(3335)
    np.testing.assert_allclose(y[3335], [0.2 + 0.5, 0.2 - 0.5], atol=1e-6)
    np.testing.assert_array_equal(y[3335 + 3002:8338], 0.0)  # round(5003 / 0.6) = 8338
