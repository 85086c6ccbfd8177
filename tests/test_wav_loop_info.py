"""A DAW loop's WAV carries its tempo (``acid``) and loop points (``smpl``), as libsndfile reads them.

libsndfile is the reference reader here: soundfile bundles it, and its ``sf_command`` reads both
chunks (``SFC_GET_LOOP_INFO``, ``SFC_GET_INSTRUMENT``) into C structs, unpacked below by their
declarations in ``sndfile.h``. Python's ``wave`` module reads the audio as a second parser.
"""

import struct
import wave

import numpy as np
import pytest
import soundfile as sf

from beatgan import fileio
from beatgan.wav_loop_info import acid_chunk, add_loop_chunks, read_acid, riff_chunks

SFC_GET_INSTRUMENT = 0x10D0
SFC_GET_LOOP_INFO = 0x10E0
SF_LOOP_FORWARD = 801


def libsndfile_loop_info(path) -> dict | None:
    """``SF_LOOP_INFO`` (short num, short den, int mode, int beats, float bpm, int root, int[6])."""
    from soundfile import _ffi, _snd

    with sf.SoundFile(path) as f:
        buffer = _ffi.new("char[]", 44)
        if not _snd.sf_command(f._file, SFC_GET_LOOP_INFO, buffer, 44):
            return None
    num, den, mode, beats, bpm, root = struct.unpack_from("<hhiifi", _ffi.buffer(buffer))
    return {"meter": (num, den), "mode": mode, "beats": beats, "bpm": bpm, "root": root}


def libsndfile_loops(path) -> list[tuple[int, int, int, int]] | None:
    """``SF_INSTRUMENT``'s loops as (mode, start, end, count): int gain, 6 chars, int loop_count
    at byte 12, then 16 x (int mode, uint start, uint end, uint count) from byte 16."""
    from soundfile import _ffi, _snd

    with sf.SoundFile(path) as f:
        buffer = _ffi.new("char[]", 272)
        if not _snd.sf_command(f._file, SFC_GET_INSTRUMENT, buffer, 272):
            return None
    data = _ffi.buffer(buffer)
    count = struct.unpack_from("<i", data, 12)[0]
    return [struct.unpack_from("<iIII", data, 16 + 16 * k) for k in range(count)]


def pcm24(rng, frames, channels=2):
    return (rng.uniform(-0.5, 0.5, (frames, channels)) * 2**23).astype(np.int32) << 8


def test_libsndfile_reads_the_tempo_beats_and_a_loop_over_every_frame(tmp_path, rng):
    audio = pcm24(rng, 44100)
    plain = fileio.wav_bytes(audio, sample_rate_hz=44100)
    path = tmp_path / "loop.wav"
    path.write_bytes(add_loop_chunks(plain, bpm=125, beats=16))
    assert libsndfile_loop_info(tmp_path / "loop.wav") == {
        "meter": (4, 4), "mode": SF_LOOP_FORWARD, "beats": 16, "bpm": 125.0, "root": -1}
    # libsndfile reports the end exclusive: the chunk's last frame played (44099) + 1.
    assert libsndfile_loops(path) == [(SF_LOOP_FORWARD, 0, 44100, 0)]
    # The audio is untouched, for soundfile and for Python's own WAV parser.
    read, rate = sf.read(path, dtype="int32")
    assert rate == 44100 and np.array_equal(read, audio)
    with wave.open(str(path)) as w:
        assert (w.getnframes(), w.getframerate(), w.getsampwidth()) == (44100, 44100, 3)
        assert w.readframes(44100) == plain[-44100 * 6:]
    # Both chunks sit before the audio; the RIFF size counts them.
    chunks = riff_chunks(path.read_bytes())
    assert [c[0] for c in chunks] == [b"fmt ", b"acid", b"smpl", b"data"]
    assert struct.unpack_from("<I", path.read_bytes(), 4)[0] == path.stat().st_size - 8
    assert path.stat().st_size == len(plain) + (8 + 24) + (8 + 60)


def test_another_rate_width_and_tempo_are_read_back_as_written(tmp_path, rng):
    audio = (rng.uniform(-0.5, 0.5, (4801, 1)) * 2**15).astype(np.int16)  # odd: a padded chunk
    plain = fileio.wav_bytes(audio, sample_rate_hz=48000, subtype="PCM_16")
    path = tmp_path / "mono.wav"
    path.write_bytes(add_loop_chunks(plain, bpm=93.75, beats=6, beats_per_bar=3))
    info = libsndfile_loop_info(path)
    assert (info["bpm"], info["beats"], info["meter"]) == (93.75, 6, (3, 4))
    assert libsndfile_loops(path) == [(SF_LOOP_FORWARD, 0, 4801, 0)]
    assert "Period       : 20833 nsec" in sf.info(path).extra_info  # 1e9 / 48000, as libsndfile
    assert np.array_equal(sf.read(path, dtype="int16")[0], audio[:, 0])


def test_a_plain_wav_has_no_loop_info_for_libsndfile(tmp_path, rng):
    path = tmp_path / "plain.wav"
    path.write_bytes(fileio.wav_bytes(pcm24(rng, 100), sample_rate_hz=44100))
    assert libsndfile_loop_info(path) is None and libsndfile_loops(path) is None


@pytest.mark.parametrize("make, said", [
    (lambda wav: b"RIFX" + wav[4:], "not a RIFF/WAVE file"),
    (lambda wav: wav[:-10], "runs past the file's end"),
    (lambda wav: add_loop_chunks(wav, bpm=120, beats=4), "already carries loop information"),
])
def test_bytes_that_cannot_take_the_chunks_are_refused(make, said, rng):
    wav = make(fileio.wav_bytes(pcm24(rng, 100), sample_rate_hz=44100))
    with pytest.raises(ValueError, match=said):
        add_loop_chunks(wav, bpm=120, beats=4)


@pytest.mark.parametrize("bpm, beats, per_bar", [(0, 4, 4), (120, 0, 4), (-1, 4, 4),
                                                  (float("inf"), 4, 4), (float("nan"), 4, 4),
                                                  (120, 4, 0), (120, 4, 70_000)])
def test_a_loop_needs_beats_and_a_tempo(bpm, beats, per_bar, rng):
    with pytest.raises(ValueError, match="a loop needs beats >= 1, beats_per_bar >= 1 and a "
                                         "finite bpm > 0"):
        add_loop_chunks(fileio.wav_bytes(pcm24(rng, 10), sample_rate_hz=44100), bpm=bpm,
                        beats=beats, beats_per_bar=per_bar)


def test_headers_a_streaming_writer_left_unset_are_refused_or_end_the_search(tmp_path, rng):
    plain = bytearray(fileio.wav_bytes(pcm24(rng, 100), sample_rate_hz=44100))
    data_offset = riff_chunks(bytes(plain))[-1][1]
    unset = bytes(plain[:data_offset + 4]) + struct.pack("<I", 0) + bytes(plain[data_offset + 8:])
    with pytest.raises(ValueError, match="holds no usable size"):
        add_loop_chunks(unset, bpm=120, beats=4)
    # An acid chunk behind audio of unknown length cannot be found; behind the RIFF end, it
    # is not a chunk of the file (an appended tag); cut short, it is not read.
    tail = acid_chunk(bpm=120, beats=4)
    for name, wav in (("unset.wav", unset + tail), ("past_end.wav", bytes(plain) + tail),
                      ("short.wav", bytes(plain) + tail[:4] + struct.pack("<I", 20) + tail[8:28])):
        if name == "short.wav":  # the RIFF size counts the short chunk
            wav = wav[:4] + struct.pack("<I", len(wav) - 8) + wav[8:]
        (tmp_path / name).write_bytes(wav)
        assert read_acid(tmp_path / name) is None, name
    # Written by add_loop_chunks, the RIFF size is the file's length - 8 whatever the input said.
    stale = bytes(plain[:4]) + struct.pack("<I", 12345) + bytes(plain[8:])
    tagged = add_loop_chunks(stale, bpm=120, beats=4)
    assert struct.unpack_from("<I", tagged, 4)[0] == len(tagged) - 8


def test_a_made_loop_tells_a_daw_its_bars_and_tempo(tiny_weights, tmp_path):
    from beatgan.generation import load_generator, make_loop

    _, config = load_generator(tiny_weights)
    path = make_loop(tiny_weights, out_dir=tmp_path, structure="AABB", bars=8, seed=3)
    frames = sf.info(path).frames
    assert frames == round(8 * 4 * 60 / config.bpm * config.source_rate_hz)
    info = libsndfile_loop_info(path)
    assert (info["bpm"], info["beats"], info["meter"]) == (config.bpm, 32, (4, 4))
    assert libsndfile_loops(path) == [(SF_LOOP_FORWARD, 0, frames, 0)]


def test_read_acid_finds_the_chunk_before_or_after_odd_sized_audio(tmp_path, rng):
    audio = rng.integers(-100, 100, (4801, 1)).astype(np.int16)
    plain = fileio.wav_bytes(audio, sample_rate_hz=22050, subtype="PCM_U8")  # 4801 data bytes
    assert riff_chunks(plain)[-1][2] % 2 == 1 and len(plain) % 2 == 0  # with its pad byte
    before, after = tmp_path / "before.wav", tmp_path / "after.wav"
    before.write_bytes(add_loop_chunks(plain, bpm=87.5, beats=6, beats_per_bar=3))
    appended = plain + acid_chunk(bpm=87.5, beats=6, beats_per_bar=3)
    after.write_bytes(appended[:4] + struct.pack("<I", len(appended) - 8) + appended[8:])
    assert libsndfile_loop_info(after)["bpm"] == 87.5  # libsndfile finds it there too
    for path in (before, after):
        assert read_acid(path) == {"bpm": 87.5, "beats": 6, "meter": (3, 4), "one_shot": False}
    (tmp_path / "plain.wav").write_bytes(plain)
    (tmp_path / "text.wav").write_text("not audio")
    assert read_acid(tmp_path / "plain.wav") is None and read_acid(tmp_path / "text.wav") is None
    assert read_acid(tmp_path / "missing.wav") is None
