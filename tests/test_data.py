"""The loader, decimation, resampling and augmentation, on tiny synthetic files."""

import warnings

import numpy as np
import pytest
import soundfile as sf

from beatgan import Config, audio, synth
from beatgan.config import MAX_SAMPLE_24
from beatgan.data import (LoopError, LoopWarning, augment, bpm_from_name, detect_bpm,
                          find_audio_files, load_loops, read_loop)

RATE_HZ = 44100


def tone(freq_hz, *, seconds=1.0, rate_hz=RATE_HZ, amplitude=0.5):
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def level_db(x):
    """RMS level of a sine relative to a full-scale-1 sine's RMS (so 0 dB = amplitude 1)."""
    return 20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) * np.sqrt(2))


def write(path, x, *, rate_hz=RATE_HZ, subtype="PCM_24"):
    sf.write(path, x, rate_hz, subtype=subtype, format="WAV")
    return path


@pytest.fixture(scope="module")
def loops(tmp_path_factory):
    """One demo loop at 124 bpm and one at 125 bpm, 8 beats, stereo 24-bit."""
    folder = tmp_path_factory.mktemp("loops")
    for bpm in (124, 125):
        write(folder / f"tr07_drlp_{bpm}_Test_Full.wav", synth.synthesize_loop(bpm=bpm, index=bpm))
    return folder


def loop_like(bpm=125, frames=None, channels=2):
    x = synth.synthesize_loop(bpm=bpm, index=7)
    x = x if channels == 2 else x[:, :1]
    return x if frames is None else x[:frames]


# --- names, lengths ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, bpm", [
    ("tr07_drlp_124_Believe_Full.wav", 124.0), ("tr07_drlp_125_Believe_Full.wav", 125.0),
    ("Groove 126bpm.wav", 126.0), ("house-128-BPM.aiff", 128.0), ("loop_122.5.wav", 122.5),
    ("tr07_drlp_Believe_Full.wav", None), ("kick_808.wav", None), ("loop_01.wav", None),
    ("1120bpm.wav", None), ("take_1.125bpm.wav", None),  # not 120, not 125: parts of numbers
    ("Beat_0.75_124.wav", 124.0), ("Groove_v1.50_124.wav", 124.0),  # decimals, not tempi
    ("Loop.124.wav", 124.0),  # a dot after a letter still separates
    ("Loop_100_128bpm.wav", 128.0),  # "bpm" marks the tempo, wherever the fields are
    ("Slow_40_Full.wav", 40.0), ("Fast_300_Full.wav", 300.0),  # BPM_RANGE's ends count
    ("Slow_39_Full.wav", None), ("Fast_301_Full.wav", None),
])
def test_bpm_from_name(name, bpm):
    assert bpm_from_name(name) == bpm


def test_segment_lengths_and_padding(loops):
    config = Config()
    assert (config.segment_len(125), config.segment_len(124)) == (14112, 14226)
    assert config.segment_len(125) == round(14700 * 60 / 125 * 2)
    got = load_loops(loops)
    assert got.audio.shape == (2, 16384, 2) and got.audio.dtype == np.float32
    assert list(got.bpm) == [124.0, 125.0] and list(got.lengths) == [14226, 14112]
    assert [r.bpm_source for r in got.report] == ["name", "name"]
    for row, n in zip(got.audio, got.lengths):
        assert np.all(row[n:] == 0) and np.any(row[n - 10:n] != 0)  # zero-padded after the segment
    assert got.audio.min() >= -1.0 and got.audio.max() < 1.0
    assert got.segments().shape == (2, 14112, 2)
    assert np.shares_memory(got.segments(), got.audio)
    assert got.skipped == []


# --- decimation and resampling ------------------------------------------------------------------

def test_naive_decimation_is_every_third_sample(loops):
    x = np.random.default_rng(0).standard_normal((1000, 2)).astype(np.float32)
    assert np.array_equal(audio.decimate(x, factor=3, method="naive"), x[::3])
    got = load_loops(loops, Config(decimation="naive"))
    for path, row, n in zip(got.paths, got.audio, got.lengths):
        full, _ = sf.read(path, dtype="float32")
        assert np.array_equal(row[:n], full[::3][:n])  # bit for bit, as the seed


def test_polyphase_keeps_1khz_and_removes_10khz():
    kept = audio.decimate(tone(1000, amplitude=1.0), factor=3, method="polyphase")
    gone = audio.decimate(tone(10000, amplitude=1.0), factor=3, method="polyphase")
    assert kept.shape == (14700,) and kept.dtype == np.float32
    core = slice(500, -500)  # away from the edges, where the filter sees zeros
    assert abs(level_db(kept[core])) <= 0.1
    assert level_db(gone[core]) <= -60.0
    # Without the filter the 10 kHz tone folds to 4.7 kHz at full level.
    assert level_db(audio.decimate(tone(10000, amplitude=1.0), factor=3, method="naive")) > -1.0


def test_polyphase_is_not_delayed():
    slow = tone(300, amplitude=1.0)
    filtered = audio.decimate(slow, factor=3)
    assert np.max(np.abs(filtered[500:-500] - slow[::3][500:-500])) < 1e-3


@pytest.mark.parametrize("up, down", [(1, 3), (3, 1), (160, 49), (124, 125)])
def test_lowpass_meets_its_spec_flat_to_80_percent_and_80_db_down_from_nyquist(up, down):
    """44.1 -> 14.7 kHz, 14.7 -> 44.1 kHz and 14.7 -> 48 kHz (exported loops), 124 -> 125 bpm:
    flat within 0.01 dB to 0.8 of the lower Nyquist frequency, at least 79.4 dB down from it on
    (kaiserord's rule lands at 79.49-79.9 dB)."""
    from scipy import signal

    taps = audio.lowpass_taps(up=up, down=down)
    assert taps.size % 2 == 1 and taps.sum() == pytest.approx(1.0, abs=1e-12)
    w, h = signal.freqz(taps, worN=2 ** 19)  # w in radians per sample of the up-sampled rate
    level_db = 20 * np.log10(np.maximum(np.abs(h), 1e-300))
    nyquist = np.pi / max(up, down)
    assert np.abs(level_db[w <= 0.8 * nyquist]).max() < 0.01
    assert level_db[w >= nyquist].max() < -79.4


def test_reading_a_margin_makes_the_cut_exact(loops):
    # The segment cut from a file equals the same samples of the whole file decimated.
    path = find_audio_files(loops)[1]
    seg, report = read_loop(path)
    full, _ = sf.read(path, dtype="float32")
    whole = np.clip(audio.decimate(full, factor=3), -1, 1)[:report.length]
    assert np.max(np.abs(seg - whole)) < 1e-6


@pytest.mark.parametrize("method", ["resample", "stretch", "slice"])
def test_reading_a_margin_makes_the_cut_exact_after_a_tempo_change(loops, method):
    # 124 -> 125 bpm: the segment read from the file equals the whole file brought to 125 bpm,
    # decimated and cut; the phase vocoder's and onset detector's frames reach past the cut.
    from beatgan.tempo_change import change_tempo

    path = find_audio_files(loops)[0]
    assert "_124_" in path.name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LoopWarning)
        seg, report = read_loop(path, Config(target_bpm=125.0, tempo_method=method))
    assert seg.shape == (14112, 2) and report.length == 14112
    full, _ = sf.read(path, dtype="float32")
    whole = change_tempo(full, from_bpm=124, to_bpm=125, method=method, sample_rate_hz=RATE_HZ)
    whole = np.clip(audio.decimate(whole, factor=3), -1, 1)[:report.length]
    assert np.max(np.abs(seg - whole)) < 1e-6


def test_resample_other_rates():
    for rate_hz in (48000, 22050, 8000):
        x = tone(1000, rate_hz=rate_hz, amplitude=1.0)
        y = audio.resample(x, orig_rate_hz=rate_hz, target_rate_hz=44100)
        assert y.shape == (44100,)
        assert abs(level_db(y[1000:-1000]) - 0.0) <= 0.1
        spectrum = np.abs(np.fft.rfft(y[1000:-1000] * np.hanning(y.size - 2000)))
        assert abs(np.argmax(spectrum) * 44100 / (y.size - 2000) - 1000) < 2


def test_bad_decimation_arguments():
    with pytest.raises(ValueError, match="method"):
        audio.decimate(np.zeros(9), factor=3, method="linear")
    with pytest.raises(ValueError, match="factor"):
        audio.decimate(np.zeros(9), factor=1.5)
    with pytest.raises(ValueError, match="shape"):
        audio.decimate(np.zeros((2, 2, 2)), factor=3)


# --- reading only what is needed ----------------------------------------------------------------

def test_reads_only_the_frames_it_needs(tmp_path, monkeypatch):
    long_loop = np.tile(loop_like(), (4, 1))  # 32 beats, 15 s
    write(tmp_path / "long_125_Full.wav", long_loop)
    asked = []
    original = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        asked.append(frames)
        return original(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    monkeypatch.setattr(sf, "write", lambda *a, **k: pytest.fail("the loader wrote a file"))
    got = load_loops(tmp_path)
    margin = audio.filter_margin(down=3)
    assert asked == [3 * 14112 + margin]  # one read, of the segment plus the filter's reach
    assert got.lengths[0] == 14112


# --- bad input ----------------------------------------------------------------------------------

def load_warned(folder, config=Config(), **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = load_loops(folder, config, **kwargs)
    return got, [str(w.message) for w in caught if issubclass(w.category, LoopWarning)]


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "README.md").write_text("no loops here")
    with pytest.raises(LoopError, match="holds no audio files"):
        load_loops(tmp_path)
    with pytest.raises(LoopError, match="no such folder"):
        load_loops(tmp_path / "missing")
    assert issubclass(LoopError, ValueError)


@pytest.fixture
def bad_folder(tmp_path):
    """A good loop beside one bad file of each kind; returns folder and {file name: expected text}."""
    good = loop_like()
    write(tmp_path / "good_125_Full.wav", good)
    (tmp_path / "text_125_Full.wav").write_text("this is not audio\n" * 20)
    (tmp_path / "corrupt_125_Full.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(64)))
    header_cut = write(tmp_path / "headercut_125_Full.wav", good).read_bytes()[:30]
    (tmp_path / "headercut_125_Full.wav").write_bytes(header_cut)
    write(tmp_path / "silent_125_Full.wav", np.zeros_like(good))
    nan = good.copy()
    nan[100, 0], nan[200, 1] = np.nan, np.inf
    write(tmp_path / "nan_125_Full.wav", nan, subtype="FLOAT")
    write(tmp_path / "surround_125_Full.wav", np.zeros((44100, 6), np.float32) + 0.1)
    write(tmp_path / "notempo_Full.wav", good)
    write(tmp_path / "slow_90_Full.wav", good)
    expected = {
        "text_125_Full.wav": "not a readable audio file",
        "corrupt_125_Full.wav": "not a readable audio file",
        "headercut_125_Full.wav": "not a readable audio file",
        "silent_125_Full.wav": "silent",
        "nan_125_Full.wav": "NaN or infinite",
        "surround_125_Full.wav": "6 channels; expected mono or stereo",
        "notempo_Full.wav": "no tempo in the file name (expected a number like '_124_' or "
                            "'124bpm') or in an ACID chunk; rename it, or detect tempos: "
                            "--detect-tempo",
        "slow_90_Full.wav": "at 90 bpm are 19600 samples",
    }
    return tmp_path, expected


def test_bad_files_are_skipped_with_a_warning_naming_them(bad_folder):
    folder, expected = bad_folder
    got, messages = load_warned(folder)
    assert [p.name for p in got.paths] == ["good_125_Full.wav"]
    assert got.audio.shape == (1, 16384, 2)
    skipped = {r.path.name: r.reason for r in got.skipped}
    assert set(skipped) == set(expected)
    for name, text in expected.items():
        assert text in skipped[name] and name in skipped[name]
        assert any(name in m and text in m for m in messages), name
    assert len(got.report) == len(expected) + 1


def test_strict_stops_at_the_first_bad_file(bad_folder):
    folder, _ = bad_folder
    with pytest.raises(LoopError, match="corrupt_125_Full.wav: not a readable audio file"):
        load_loops(folder, strict=True)


def test_no_usable_file_is_an_error(tmp_path):
    write(tmp_path / "silent_125_Full.wav", np.zeros((44100, 2), np.float32))
    with pytest.raises(LoopError, match="none of its 1 audio files is usable.*silent"):
        load_warned(tmp_path)


def test_short_and_truncated_loops_are_padded(tmp_path):
    write(tmp_path / "short_125_Full.wav", loop_like(frames=30000))  # 10000 samples at 14.7 kHz
    full = write(tmp_path / "cut_124_Full.wav", loop_like(bpm=124)).read_bytes()
    (tmp_path / "cut_124_Full.wav").write_bytes(full[: 44 + 6 * 22500])  # data cut, header intact
    write(tmp_path / "beat_125_Full.wav", loop_like(frames=21000))  # 7000: less than one beat
    got, messages = load_warned(tmp_path)
    assert list(got.lengths) == [7500, 10000]  # cut: 22500 / 3; short: 30000 / 3
    skipped = next(r for r in got.report if r.path.name == "beat_125_Full.wav")
    assert skipped.status == "skipped" and "too short (7000 samples" in skipped.reason
    assert "less than one beat at 125 bpm" in skipped.reason
    for row, n in zip(got.audio, got.lengths):
        assert np.all(row[n:] == 0)
    assert any("short_125_Full.wav" in m and "shorter than its 2-beat segment" in m and "(14112)" in m
               for m in messages)
    assert any("cut_124_Full.wav" in m and "(14226)" in m for m in messages)
    assert all("padded" in r.notes[-1] for r in got.report if r.status == "loaded")
    with pytest.warns(LoopWarning, match="zero padding"):
        got.segments(14112)


def test_mono_and_8khz_files(tmp_path):
    write(tmp_path / "mono_125_Full.wav", loop_like(channels=1))
    write(tmp_path / "low_125_Full.wav", tone(440, seconds=2.0, rate_hz=8000)[:, None].repeat(2, 1),
          rate_hz=8000, subtype="PCM_16")
    got, messages = load_warned(tmp_path)
    low, mono = got.audio
    assert np.array_equal(mono[:, 0], mono[:, 1])
    assert got.report[1].notes == ("mono -> stereo",)
    assert got.report[0].notes == ("resampled from 8000 Hz",)
    assert any("low_125_Full.wav" in m and "8000 Hz, expected 44100 Hz" in m for m in messages)
    # The 440 Hz tone survives 8 -> 44.1 -> 14.7 kHz at its level (0.5 = -6.02 dB).
    seg = low[1000:14000, 0]
    spectrum = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    assert abs(np.argmax(spectrum) * 14700 / seg.size - 440) < 2
    assert abs(level_db(seg) - 20 * np.log10(0.5)) < 0.1


def test_tempo_detection_when_the_name_has_none(tmp_path):
    write(tmp_path / "mystery_Full.wav", synth.synthesize_loop(bpm=124, index=3))
    got, _ = load_warned(tmp_path, Config(detect_tempo=True))
    assert got.report[0].bpm_source == "detected"
    assert abs(got.bpm[0] / 124 - 1) <= 0.02
    assert got.lengths[0] == Config().segment_len(got.bpm[0])


def acid_tagged(path, x, *, bpm, beats=8, after_data=False, one_shot=False):
    """``x`` written as a 24-bit WAV at 44.1 kHz carrying an ACID chunk, before or after its audio."""
    import struct

    from beatgan.fileio import wav_bytes
    from beatgan.loop_export import float_to_pcm24
    from beatgan.wav_loop_info import acid_chunk, add_loop_chunks

    plain = wav_bytes(float_to_pcm24(x), sample_rate_hz=RATE_HZ)
    if after_data:  # where some editors append it
        chunk = bytearray(acid_chunk(bpm=bpm, beats=beats))
        chunk[8] |= 0x01 if one_shot else 0
        wav = plain + bytes(chunk)
        wav = wav[:4] + struct.pack("<I", len(wav) - 8) + wav[8:]
    else:
        wav = add_loop_chunks(plain, bpm=bpm, beats=beats)
    path.write_bytes(wav)


def test_an_acid_chunk_gives_the_tempo_when_the_name_has_none(tmp_path):
    loop = synth.synthesize_loop(bpm=124, index=3)
    acid_tagged(tmp_path / "mystery_Full.wav", loop, bpm=124)
    acid_tagged(tmp_path / "appended_Full.wav", loop, bpm=124.5, after_data=True)
    acid_tagged(tmp_path / "named_126_Full.wav", loop, bpm=124)  # the name wins
    got, messages = load_warned(tmp_path)  # no detection: the chunk alone
    assert messages == []
    detecting, _ = load_warned(tmp_path, Config(detect_tempo=True))  # the chunk before librosa
    assert [r.bpm_source for r in detecting.report] == [r.bpm_source for r in got.report]
    by_name = {p.name: r for p, r in zip(got.paths, got.report)}
    assert [(by_name[n].bpm, by_name[n].bpm_source) for n in
            ("appended_Full.wav", "mystery_Full.wav", "named_126_Full.wav")] == [
        (124.5, "acid"), (124.0, "acid"), (126.0, "name")]
    assert by_name["mystery_Full.wav"].length == Config().segment_len(124) == 14226
    assert "acid" in got.report_table()


@pytest.mark.parametrize("bpm, one_shot, why", [
    (0.0, False, "its ACID tempo 0 bpm is outside 40-300"),
    (float("nan"), False, "its ACID tempo nan bpm is outside 40-300"),
    (500.0, False, "its ACID tempo 500 bpm is outside 40-300"),
    (124.0, True, "its ACID chunk marks a one-shot")])
def test_an_acid_chunk_without_a_usable_loop_tempo_is_not_a_tempo(tmp_path, bpm, one_shot, why):
    acid_tagged(tmp_path / "mystery_Full.wav", synth.synthesize_loop(bpm=124, index=3), bpm=124,
                after_data=True, one_shot=one_shot)
    if not one_shot:  # overwrite the tempo field: the last 4 bytes of the appended chunk
        import struct

        data = bytearray((tmp_path / "mystery_Full.wav").read_bytes())
        data[-4:] = struct.pack("<f", bpm)
        (tmp_path / "mystery_Full.wav").write_bytes(bytes(data))
    said = rf"mystery_Full.wav: no tempo in the file name .* or in an ACID chunk \({why}\);"
    with pytest.warns(LoopWarning, match=said), pytest.raises(LoopError, match=said):
        load_loops(tmp_path, Config())


def test_a_beatgan_loop_renamed_loads_at_its_own_tempo(tiny_weights, tmp_path):
    from beatgan.generation import make_loop

    made = make_loop(tiny_weights, out_dir=tmp_path / "made", seed=1)
    folder = tmp_path / "pack"
    folder.mkdir()
    made.rename(folder / "my_loop.wav")  # no tempo in its name any more
    got, _ = load_warned(folder)
    assert (got.report[0].bpm, got.report[0].bpm_source) == (125.0, "acid")


def test_a_silent_file_without_a_tempo_is_skipped_not_given_the_prior(tmp_path):
    write(tmp_path / "mystery_Full.wav", synth.synthesize_loop(bpm=124, index=3))
    write(tmp_path / "silence_Full.wav", np.zeros((88200, 2), np.float32))
    got, messages = load_warned(tmp_path, Config(detect_tempo=True))
    assert [p.name for p in got.paths] == ["mystery_Full.wav"]
    assert any("silence_Full.wav: no tempo in the file name or an ACID chunk, and none detected "
               "(no onsets"
               in m for m in messages), messages


def test_target_bpm_brings_loops_to_one_tempo(loops):
    got, _ = load_warned(loops, Config(target_bpm=125))
    assert list(got.lengths) == [14112, 14112]
    assert "tempo 124 -> 125 bpm (resample)" in got.report[0].notes
    assert got.report[1].notes == ()


# --- augmentation -------------------------------------------------------------------------------

def test_augment_noise_bounds_count_and_order(rng):
    x = rng.uniform(-0.5, 0.5, size=(3, 64, 2)).astype(np.float32)
    x[2, :4] = [[0.9999, -1.0]] * 4  # near full scale: must clip, not wrap
    out = augment(x, copies=5, rng=np.random.default_rng(7))
    assert out.shape == (15, 64, 2) and out.dtype == np.float32
    assert out.min() >= -1.0 and out.max() <= 1 - 2.0 ** -23
    ints = out.astype(np.float64) * 2**23
    assert np.array_equal(ints, np.round(ints))  # on the 24-bit grid
    noise = ints - np.repeat(np.round(x.astype(np.float64) * 2**23), 5, axis=0)  # loop-major order
    free = np.ones_like(noise, bool)
    free[10:, :4] = False  # the clipped corner
    assert noise[free].min() >= -10000 and noise[free].max() < 10000
    assert noise[free].std() == pytest.approx(20000 / np.sqrt(12), rel=0.05)  # uniform
    assert np.array_equal(out, augment(x, copies=5, rng=np.random.default_rng(7)))
    assert not np.array_equal(out, augment(x, copies=5, rng=np.random.default_rng(8)))


def test_augment_noise_excludes_its_upper_bound(rng):
    # Uniform integers in [-amplitude, amplitude), as the seed's randint: at amplitude 1 the
    # noise is -1 or 0 steps of 2^-23, never +1.
    out = augment(np.zeros((2, 4000, 2), np.float32), copies=2, rng=rng, amplitude=1)
    steps = out.astype(np.float64) * 2 ** 23
    assert set(np.unique(steps)) == {-1.0, 0.0}
    assert np.mean(steps == -1.0) == pytest.approx(0.5, abs=0.02)


def test_augment_leaves_padding_silent_and_exact_without_noise(rng):
    x = np.zeros((2, 32, 2), np.float32)
    x[:, :20] = rng.uniform(-0.5, 0.5, size=(2, 20, 2))
    x[1, 10:] = 0.0  # loop 1 is 10 samples long
    out = augment(x, copies=3, rng=rng, lengths=np.array([20, 10]))
    assert np.all(out[:3, 20:] == 0) and np.all(out[3:, 10:] == 0)
    assert np.any(out[:3, :20] != np.round(x[0, :20] * 2**23) / 2**23)
    quiet = augment(x, copies=2, rng=rng, amplitude=0)
    assert np.array_equal(quiet[0], np.round(x[0] * 2**23) / 2**23)


def test_loopset_augment_uses_the_config(loops):
    got = load_loops(loops, Config(noise_copies=2))
    out = got.augment(rng=np.random.default_rng(0))
    assert out.shape == (4, 16384, 2)
    assert np.all(out[:2, 14226:] == 0) and np.all(out[2:, 14112:] == 0)


def test_augment_checks_its_input(rng):
    with pytest.raises(ValueError, match="shape"):
        augment(np.zeros((4, 2)), rng=rng)
    with pytest.raises(TypeError, match="Generator"):
        augment(np.zeros((1, 4, 2)), rng=0)


def test_a_linked_pack_is_loaded_once_and_other_formats_by_their_names(tmp_path):
    import os

    pack = tmp_path / "elsewhere"
    pack.mkdir()
    write(pack / "a_125_Full.wav", loop_like(frames=60000))
    folder = tmp_path / "loops"
    folder.mkdir()
    os.symlink(pack, folder / "pack")  # the user's pack, linked in
    os.symlink(folder, pack / "back")  # and a link back up: walked once, not forever
    for name in ("c_125.aifc", "d_125.opus", "e_125.bwf", "f_125.raw"):
        (folder / name).write_bytes(b"")
    found = [p.relative_to(folder).as_posix() for p in find_audio_files(folder)]
    assert found == ["c_125.aifc", "d_125.opus", "e_125.bwf", "pack/a_125_Full.wav"]


def test_a_scan_skips_hidden_folders_and_readmes_and_says_what_else_it_found(tmp_path):
    from pathlib import Path

    from beatgan.audio_files import FolderScan, scan_folder

    for name in (".git/objects/x.wav", "sub/b.WAV", "a.wav", "README.txt", "c.m4a", "d.m4a",
                 "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    scan = scan_folder(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in scan.audio] == ["a.wav", "sub/b.WAV"]
    assert scan.other == {".m4a": 2, ".txt": 1} and not scan.empty
    assert scan.summary() == "2 .m4a files, 1 .txt file"  # the most numerous first
    # A folder whose only subfolder cannot be listed is not empty: it is reported, not replaced.
    unreadable = FolderScan(folder=tmp_path, audio=[], other={},
                            unreadable=[(Path("loops"), "Permission denied")])
    assert not unreadable.empty
    assert unreadable.summary() == "1 unreadable subfolder (loops: Permission denied)"
    assert FolderScan(folder=tmp_path, audio=[], other={}, unreadable=[]).empty


def test_a_stretched_short_loop_counts_only_the_samples_it_has(tmp_path):
    """The phase vocoder rounds its length: the row's real audio ends where its length says, so
    the augmentation's noise stays out of the padding."""
    write(tmp_path / "short_124_Full.wav", loop_like(bpm=124, frames=22065))
    got, _ = load_warned(tmp_path, Config(target_bpm=125.0, bpm=125.0, tempo_method="stretch"))
    n = int(got.lengths[0])
    assert np.abs(got.audio[0, n - 1]).max() > 0 and np.all(got.audio[0, n:] == 0)
    noisy = got.augment(rng=np.random.default_rng(0), copies=2)
    assert np.all(noisy[:, n:] == 0)


def test_the_report_names_files_below_the_folder_and_notes_clipped_samples(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write(tmp_path / "a" / "x_125_Full.wav", loop_like(frames=60000))
    square = np.sign(np.sin(2 * np.pi * 110 * np.arange(60000) / RATE_HZ))[:, None].repeat(2, 1)
    write(tmp_path / "b" / "x_125_Full.wav", square.astype(np.float32), subtype="FLOAT")
    got, _ = load_warned(tmp_path)
    table = got.report_table()
    assert "a/x_125_Full.wav" in table and "b/x_125_Full.wav" in table
    square_notes = got.report[1].notes
    assert any(note.endswith("samples clipped (the filter's overshoot past full scale)")
               for note in square_notes)
    assert not any("clipped" in note for note in got.report[0].notes)


# --- what each row holds ------------------------------------------------------------------------

def test_rows_after_a_skipped_file_hold_their_own_loops(tmp_path):
    # The skipped file sorts first: every later row must still be its own file's segment.
    (tmp_path / "a_notaudio_125_Full.wav").write_text("not audio\n" * 20)
    write(tmp_path / "b_125_Full.wav", synth.synthesize_loop(bpm=125, index=1))
    write(tmp_path / "c_124_Full.wav", synth.synthesize_loop(bpm=124, index=2))
    got, _ = load_warned(tmp_path)
    assert [p.name for p in got.paths] == ["b_125_Full.wav", "c_124_Full.wav"]
    assert got.audio.shape == (2, 16384, 2) and list(got.lengths) == [14112, 14226]
    for row, path, n in zip(got.audio, got.paths, got.lengths):
        alone, _ = read_loop(path)
        np.testing.assert_array_equal(row[:n], alone)
        assert np.all(row[n:] == 0)


def test_a_float_file_above_full_scale_is_scaled_down_not_clipped(tmp_path):
    hot = loop_like(frames=60000)
    hot = hot * np.float32(2.5 / np.abs(hot).max())  # peaks at 2.5 (+8 dB)
    peak = np.abs(hot).max()
    write(tmp_path / "hot_125_Full.wav", hot, subtype="FLOAT")
    write(tmp_path / "ref_125_Full.wav", hot / peak, subtype="FLOAT")  # the same at full scale
    got, messages = load_warned(tmp_path)
    assert [p.name for p in got.paths] == ["hot_125_Full.wav", "ref_125_Full.wav"]
    assert got.report[0].notes == (f"scaled down from peak {peak:.4g}",)
    assert any("hot_125_Full.wav: peaks at 2.5, above full scale" in m and "by 8.0 dB" in m
               for m in messages)
    np.testing.assert_allclose(got.audio[0], got.audio[1], rtol=0, atol=1e-7)
    assert np.abs(got.audio[0]).max() > 0.9  # the loop's own peak, not a clipped one


def test_stereo_to_mono_averages_the_two_channels(loops):
    path = find_audio_files(loops)[1]
    mono, report = read_loop(path, Config(channels=1))
    stereo, _ = read_loop(path)
    assert mono.shape == (14112, 1) and report.notes == ("stereo -> mono",)
    assert np.abs(stereo[:, 0] - stereo[:, 1]).max() > 0.05  # panned: neither channel is the mean
    # The filters are linear: the mean decimated is the decimated mean.
    np.testing.assert_allclose(mono[:, 0], stereo.mean(axis=1), rtol=0, atol=1e-6)


def test_overshoot_is_clipped_to_the_24_bit_range_not_to_one(tmp_path):
    # A full-scale square wave overshoots after the anti-aliasing filter, both ways.
    square = np.sign(np.sin(2 * np.pi * 110 * np.arange(60000) / RATE_HZ))[:, None].repeat(2, 1)
    write(tmp_path / "square_125_Full.wav", square.astype(np.float32), subtype="FLOAT")
    got, _ = load_warned(tmp_path)
    row = got.audio[0, :got.lengths[0]]
    assert row.max() == np.float32(MAX_SAMPLE_24) == np.float32(1 - 2.0 ** -23)
    assert row.min() == -1.0


def test_a_loop_of_exactly_one_beat_is_kept_and_one_sample_less_is_skipped(tmp_path):
    beat = 7056  # 14700 * 60 / 125 samples
    write(tmp_path / "one_125_Full.wav", loop_like(frames=3 * beat))
    write(tmp_path / "less_125_Full.wav", loop_like(frames=3 * beat - 3))
    got, _ = load_warned(tmp_path)
    assert [p.name for p in got.paths] == ["one_125_Full.wav"] and list(got.lengths) == [beat]
    assert "too short (7055 samples" in got.skipped[0].reason


def test_a_file_cut_off_mid_data_is_reported_as_truncated_and_a_short_one_is_not(tmp_path):
    full = write(tmp_path / "cut_124_Full.wav", loop_like(bpm=124)).read_bytes()
    (tmp_path / "cut_124_Full.wav").write_bytes(full[: 44 + 6 * 22500])  # header intact
    write(tmp_path / "short_125_Full.wav", loop_like(frames=30000))  # whole, only short
    got, messages = load_warned(tmp_path)
    promised = round(RATE_HZ * 60 / 124 * 8)  # 170710 frames of the 8-beat loop
    assert got.report[0].notes == (f"truncated at 22500 of {promised} frames",
                                   "padded from 7500 to 14226 samples")
    assert any(f"cut_124_Full.wav: truncated: its header promises {promised} frames, the data "
               f"ends after 22500" in m for m in messages)
    assert got.report[1].notes == ("padded from 10000 to 14112 samples",)
    assert not any("short_125_Full.wav: truncated" in m for m in messages)


def test_a_detected_tempo_is_kept_to_two_decimals(tmp_path):
    write(tmp_path / "mystery_Full.wav", synth.synthesize_loop(bpm=124, index=3))
    got, _ = load_warned(tmp_path, Config(detect_tempo=True))
    written, _ = sf.read(tmp_path / "mystery_Full.wav", dtype="float32")
    expected = round(detect_bpm(written, sample_rate_hz=RATE_HZ), 2)
    assert expected != round(expected)  # librosa's lag grid: 123.05, not a whole number
    assert got.bpm[0] == expected and got.lengths[0] == Config().segment_len(expected)
