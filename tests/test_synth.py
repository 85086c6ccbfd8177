"""The demo pack: format, names, determinism, tempo, and the fallback to it."""

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from beatgan import synth
from beatgan.data import detect_bpm, find_audio_files

NAME = re.compile(r"^tr07_drlp_(\d+)_([A-Za-z]+\d*)_Full\.wav$")


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    return synth.write_demo_pack(tmp_path_factory.mktemp("pack"), n=4, seed=0)


def test_loop_is_eight_beats_of_stereo_float32():
    for bpm, frames in ((125, 169344), (124, 170710)):  # round(44100 * 60 / bpm * 8)
        loop = synth.synthesize_loop(bpm=bpm, seed=0, index=bpm)
        assert loop.shape == (frames, 2) and loop.dtype == np.float32
        peak = np.max(np.abs(loop))
        assert 10 ** (-3.01 / 20) <= peak <= 10 ** (-0.5 / 20)  # normalised to -3 .. -0.5 dBFS
        assert not np.allclose(loop[:, 0], loop[:, 1])  # panned: a real stereo image


def test_pack_format_and_names(pack):
    assert len(pack) == 4 and len({p.name for p in pack}) == 4
    for path in pack:
        match = NAME.match(path.name)
        assert match, path.name
        bpm = int(match.group(1))
        assert bpm in (124, 125)
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (44100, 2, "PCM_24", "WAV")
        assert info.frames == round(44100 * 60 / bpm * 8)


def test_pack_is_byte_identical_for_a_seed(pack, tmp_path):
    again = synth.write_demo_pack(tmp_path / "again", n=4, seed=0)
    assert [p.name for p in again] == [p.name for p in pack]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(again, pack))
    other = synth.write_demo_pack(tmp_path / "other", n=1, seed=1)
    assert other[0].read_bytes() != pack[0].read_bytes()


def test_pack_file_is_the_quantised_loop(pack):
    # Loop i of the pack is synthesize_loop(seed, index=i), written at 24 bits.
    bpm = float(NAME.match(pack[2].name).group(1))
    written, rate_hz = sf.read(pack[2], dtype="float64")
    loop = synth.synthesize_loop(bpm=bpm, seed=0, index=2)
    assert rate_hz == 44100
    assert np.max(np.abs(written - loop)) <= 2.0 ** -23


def test_other_tempi(tmp_path):
    fixed = synth.write_demo_pack(tmp_path / "fixed", n=2, bpm=100)
    assert all(NAME.match(p.name).group(1) == "100" for p in fixed)
    assert sf.info(fixed[0]).frames == round(44100 * 60 / 100 * 8)
    with pytest.raises(ValueError, match="holds no whole-number tempo"):
        synth.write_demo_pack(tmp_path / "none", n=1, bpm=(90.2, 90.8))
    ranged = synth.write_demo_pack(tmp_path / "ranged", n=6, bpm=(90, 95))
    assert all(90 <= int(NAME.match(p.name).group(1)) <= 95 for p in ranged)
    with pytest.raises(ValueError, match="bpm"):
        synth.write_demo_pack(tmp_path / "bad", n=1, bpm=(120, 110))


@pytest.mark.parametrize("structure", synth.STRUCTURES)
def test_bar_structure(structure):
    # Four 2-beat cells (the seed's "bars") follow the structure; a B cell always differs from A.
    for seed in range(5):
        score = synth.loop_score(seed=seed, structure=structure)
        grid = np.stack(list(score.grid.values()))  # (voices, 32 steps)
        cells = grid.reshape(grid.shape[0], 4, 8).transpose(1, 0, 2)  # (cell, voice, step)
        for i in range(4):
            for j in range(4):
                same = np.array_equal(cells[i], cells[j])
                assert same == (structure[i] == structure[j]), (seed, i, j)
        kick = score.grid["kick"]
        assert np.all(kick[::4] == 1.0)  # four on the floor in every cell
        back = score.grid["clap" if "clap" in score.grid else "snare"]
        assert np.all(back[4::8] == 1.0)  # beats 2 and 4


def test_a_bpm_range_draws_both_of_its_ends():
    drawn = [synth._loop_bpm(0, i, (100, 101)) for i in range(40)]
    assert set(drawn) == {100.0, 101.0}  # whole tempi from low to high, both included
    assert synth._loop_bpm(0, 0, (100, 100)) == 100.0  # a range of one tempo
    assert {synth._loop_bpm(0, i, (99.5, 100.5)) for i in range(10)} == {100.0}


def test_bad_arguments():
    with pytest.raises(ValueError, match="structure"):
        synth.synthesize_loop(structure="ABCD")
    with pytest.raises(ValueError, match="bpm"):
        synth.synthesize_loop(bpm=0)
    with pytest.raises(ValueError, match="beats"):
        synth.synthesize_loop(beats=3)


@pytest.mark.parametrize("rate_hz", [8000, 14700, 22050])
def test_any_rate_from_8khz(rate_hz):
    # Filter edges above 90 % of Nyquist are clamped (the hats' 6.5-9.5 kHz high-pass used to
    # raise at 14.7 kHz); every kit renders, and the hats still put energy near the top.
    for kit in range(synth.N_KITS):
        loop = synth.synthesize_loop(bpm=125, seed=0, index=kit, kit=kit, sample_rate_hz=rate_hz)
        assert loop.shape == (round(rate_hz * 60 / 125 * 8), 2) and np.all(np.isfinite(loop))
        assert 10 ** (-3.01 / 20) <= np.max(np.abs(loop)) <= 10 ** (-0.5 / 20)
        power = np.abs(np.fft.rfft(loop[:, 0])) ** 2
        top = np.fft.rfftfreq(loop.shape[0], 1 / rate_hz) > 0.3 * rate_hz
        assert power[top].sum() / power.sum() > 1e-3, kit  # measured 0.35-1.7 %
    assert synth.clamp_cutoff(9500, sample_rate_hz=14700) == 0.45 * 14700
    assert synth.clamp_cutoff((3000, 7500), sample_rate_hz=8000) == (1800, 3600)
    assert synth.clamp_cutoff(9500, sample_rate_hz=44100) == 9500  # 44.1 kHz: unchanged
    with pytest.raises(ValueError, match="8000"):
        synth.synthesize_loop(sample_rate_hz=4000)


def test_tempo_of_demo_loops_is_what_the_name_says():
    # librosa's estimate within 2 % for at least 95 % of loops. detect_bpm centres librosa's
    # prior on 125 bpm, half an octave wide, which picks the beat level rather than the half-time
    # (claps on 2 and 4) or double-time (8th hats) level; octave errors count as misses here.
    bpms = [synth._loop_bpm(0, i, None) for i in range(20)]
    estimates = [detect_bpm(synth.synthesize_loop(bpm=b, seed=0, index=i), sample_rate_hz=44100)
                 for i, b in enumerate(bpms)]
    errors = np.abs(np.array(estimates) / np.array(bpms) - 1)
    assert np.mean(errors <= 0.02) >= 0.95, list(zip(bpms, np.round(estimates, 1)))


def test_tempo_away_from_the_prior():
    # The right octave for loops from 95 to 150 bpm too, with the prior still at 125.
    for i, bpm in enumerate((95.0, 108.0, 142.0, 150.0)):
        estimate = detect_bpm(synth.synthesize_loop(bpm=bpm, seed=5, index=i), sample_rate_hz=44100)
        assert abs(estimate / bpm - 1) <= 0.02, (bpm, estimate)


#: Fills a demo-pack cache from a fresh process and prints what it got back.
FILL = """
import sys
from pathlib import Path
from beatgan import synth
from beatgan.audio_files import find_audio_files
pack = synth.ensure_demo_pack(Path(sys.argv[1]), n=int(sys.argv[3]), cache_dir=Path(sys.argv[2]))
print(len(find_audio_files(pack)))
"""


def test_two_processes_filling_one_cache_each_get_the_whole_pack(tmp_path):
    import os
    import subprocess
    import sys

    empty = tmp_path / "empty"
    empty.mkdir()
    cache = tmp_path / "cache"
    (cache / ".tmp-999999999-seed0_n12-abcd").mkdir(parents=True)  # a killed writer's
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    writers = [subprocess.Popen([sys.executable, "-c", FILL, str(empty), str(cache), "12"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
               for _ in range(2)]
    results = [w.communicate(timeout=300) for w in writers]
    assert [(w.returncode, out) for w, (out, _) in zip(writers, results)] == [(0, "12\n")] * 2, \
        [err[-2000:] for _, err in results]
    assert sorted(p.name for p in cache.iterdir()) == ["seed0_n12"]  # no staging left behind
    assert len(find_audio_files(cache / "seed0_n12")) == 12


def test_ensure_demo_pack(tmp_path, caplog, pack, monkeypatch):
    assert synth.ensure_demo_pack(pack[0].parent) == pack[0].parent  # has audio: used as is
    empty = tmp_path / "ULTIMATE_DRUM_LOOPS"
    empty.mkdir()
    (empty / "README.md").write_text("put the loops here")
    monkeypatch.chdir(tmp_path)  # the pack inside the working folder is shown relative to it
    with caplog.at_level(logging.WARNING, logger="beatgan.synth"):
        folder = synth.ensure_demo_pack(empty, n=2, cache_dir=tmp_path / "cache")
    assert folder == tmp_path / "cache" / "seed0_n2"
    assert len(find_audio_files(folder)) == 2
    assert "holds no audio files" in caplog.text and "demo pack" in caplog.text
    assert caplog.text.rstrip().endswith(" in cache/seed0_n2"), caplog.text
    stamp = [p.stat().st_mtime_ns for p in find_audio_files(folder)]
    assert synth.ensure_demo_pack(tmp_path / "missing", n=2, cache_dir=tmp_path / "cache",
                                  missing_ok=True) == folder
    assert [p.stat().st_mtime_ns for p in find_audio_files(folder)] == stamp  # reused, not rewritten
    with pytest.raises(FileNotFoundError, match="no such folder"):  # a typo is not the demo pack
        synth.ensure_demo_pack(tmp_path / "mising", n=2, cache_dir=tmp_path / "cache")


def test_a_sound_longer_than_the_loop_wraps_round_it_as_often_as_it_lasts():
    # At 200 bpm a 2-beat loop is 0.6 s: the kit's longest sounds outlast it.
    kit = synth.make_kit(0, 0, sample_rate_hz=synth.SAMPLE_RATE_HZ)
    n = int(round(synth.SAMPLE_RATE_HZ * 60.0 / 200.0 * 2))
    assert kit.max_len > n
    buf = np.random.default_rng(0).standard_normal((n + kit.max_len, 2)).astype(np.float32)
    want = np.zeros((n, 2))
    for t in range(buf.shape[0]):  # played in a loop, sample t sounds at t mod n
        want[t % n] += buf[t]
    np.testing.assert_allclose(synth.fold_tail(buf.copy(), n), want, rtol=0, atol=1e-5)


def test_a_pack_is_not_written_beside_other_loops_or_at_unreadable_tempi(tmp_path):
    first = synth.write_demo_pack(tmp_path / "pack", n=2, seed=0, bpm=125.0)
    again = synth.write_demo_pack(tmp_path / "pack", n=2, seed=0, bpm=125.0)  # the same pack
    assert again == first
    with pytest.raises(ValueError, match=r"already holds 2 audio file\(s\) this pack would not "
                                         r"replace, such as .*_125_"):
        synth.write_demo_pack(tmp_path / "pack", n=2, seed=0, bpm=130.0)
    assert len(find_audio_files(tmp_path / "pack")) == 2  # nothing added
    with pytest.raises(ValueError, match="bpm must lie in 40-300"):
        synth.write_demo_pack(tmp_path / "slow", n=1, bpm=30.0)
    assert not (tmp_path / "slow").exists()
