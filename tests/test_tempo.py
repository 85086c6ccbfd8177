"""Loops at any tempo: demo loops at 100, 110 and 140 bpm brought to 125 bpm by the loader.

Measured on whole 8-beat loops (Config(slice_len=65536, beats=8): 56448 samples at 14.7 kHz
and 125 bpm), because a 2-beat segment is too short for a stable tempo estimate. The synth
plays a four-on-the-floor kick on every beat (``synth.loop_score``), so the kicks must land on
the 125-bpm grid: each kick's onset is the peak of the low-band (< 200 Hz) SuperFlux of
``beatgan.metrics`` (its first frame at half the peak) within half a 16th of its beat. Kicks right after a pickup kick (a fill)
are left out: the earlier kick's low end masks their flux.
"""

import warnings

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
