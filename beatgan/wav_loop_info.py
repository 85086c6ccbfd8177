"""Loop metadata inside a WAV file: the chunks DAWs and samplers read to play a file as a loop.

- ``acid`` (the ACID loop-info chunk of an "ACIDized" WAV, as loop libraries ship them, which
  DAWs read): the file is a loop to be stretched to the project's tempo, ``beats`` beats long
  in 4/4 at ``bpm``. A DAW then places it on the grid at the right length instead of guessing.
- ``smpl`` (the RIFF sampler chunk): one forward loop over every frame, start to last frame
  (inclusive, as the chunk counts), for samplers that loop a file by its loop points.

soundfile (libsndfile) reads both chunks but offers no way to write them from Python, and each
is a fixed little-endian record, so they are packed here (``struct``) and inserted into the
bytes soundfile wrote, before the ``data`` chunk: some readers stop parsing at ``data``.
``read_acid`` reads the tempo back from any WAV file's ``acid`` chunk (a loop pack's, too).
"""

from __future__ import annotations

import io
import math
import os
import struct
from typing import BinaryIO, Iterator

#: ACID flags (a bit mask): 0x01 one-shot (off: a loop), 0x02 root note set, 0x04 stretch.
ACID_STRETCH = 0x04
#: The ACID chunk's second, undocumented short: every ACID file sets it to 0x8000.
_ACID_RESERVED = 0x8000
#: MIDI note of the ``smpl`` chunk's unity pitch (middle C): drums are not tuned to a note.
SMPL_UNITY_NOTE = 60
#: The ``acid`` chunk's body: flags, root note, 0x8000, 0.0, beats, meter denominator, meter
#: numerator, tempo (the order libsndfile reads it in).
_ACID = struct.Struct("<IHHfIHHf")
#: Sizes a streaming writer leaves in a header it never went back to fill in.
UNSET_SIZES = (0, 0xFFFFFFFF)


def walk_chunks(handle: BinaryIO, *,
                end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """``(id, offset of the id, size)`` of each top-level chunk of the RIFF/WAVE file open in
    ``handle`` (binary, seekable), seeking over the bodies: a large file costs a few reads.

    The walk ends at ``end`` (default: where the RIFF size says the file ends, so a tag
    appended after it is not a chunk), at the file's end, and after a ``data`` chunk whose size
    a streaming writer left unset (0 or 0xFFFFFFFF): where it ends is not known. A chunk's body
    may run past the end; the caller decides. ValueError for a file that is not RIFF/WAVE.
    """
    handle.seek(0)
    head = handle.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    end = 8 + struct.unpack_from("<I", head, 4)[0] if end is None else end
    offset = 12
    while offset + 8 <= end:
        handle.seek(offset)
        header = handle.read(8)
        if len(header) < 8:
            return
        chunk_id, size = header[:4], struct.unpack_from("<I", header, 4)[0]
        yield chunk_id, offset, size
        if chunk_id == b"data" and size in UNSET_SIZES:
            return
        offset += 8 + size + (size & 1)  # chunks are padded to an even length


def riff_chunks(wav: bytes) -> list[tuple[bytes, int, int]]:
    """The top-level chunks of a RIFF/WAVE file's bytes, ``walk_chunks`` to their last byte.

    ValueError for bytes that are not a RIFF/WAVE file or whose chunks run past their end. A
    ``data`` chunk whose size a streaming writer left unset is the last one listed.
    """
    chunks = list(walk_chunks(io.BytesIO(wav), end=len(wav)))
    for chunk_id, offset, size in chunks:
        if offset + 8 + size > len(wav) and not (chunk_id == b"data" and size in UNSET_SIZES):
            raise ValueError(f"WAV chunk {chunk_id!r} at byte {offset} runs past the file's end")
    return chunks


def acid_chunk(*, bpm: float, beats: int, beats_per_bar: int = 4) -> bytes:
    """The ``acid`` chunk (id, size, 24 bytes): a stretchable loop of ``beats`` beats at ``bpm``.

    ``_ACID`` gives the field order; the tempo is stored as a 32-bit float.
    """
    if not (1 <= beats <= 0xFFFFFFFF and 1 <= beats_per_bar <= 0xFFFF
            and math.isfinite(bpm) and bpm > 0):
        raise ValueError(f"a loop needs beats >= 1, beats_per_bar >= 1 and a finite bpm > 0, "
                         f"got {beats} beats, {beats_per_bar} per bar, at {bpm} bpm")
    body = _ACID.pack(ACID_STRETCH, 0, _ACID_RESERVED, 0.0, int(beats), 4, int(beats_per_bar),
                      float(bpm))
    return b"acid" + struct.pack("<I", len(body)) + body


def smpl_chunk(*, frames: int, sample_rate_hz: int) -> bytes:
    """The ``smpl`` chunk (id, size, 36 + 24 bytes): one forward loop over frames 0..frames - 1."""
    if frames < 1:
        raise ValueError(f"a loop needs at least one frame, got {frames}")
    period_ns = int(1e9 / sample_rate_hz)  # the sample period, as libsndfile writes it
    header = struct.pack("<9I", 0, 0, period_ns, SMPL_UNITY_NOTE, 0, 0, 0, 1, 0)
    # cue id, type 0 (forward), start, end (the last frame played), fraction, play count 0 (forever)
    loop = struct.pack("<6I", 0, 0, 0, int(frames) - 1, 0, 0)
    return b"smpl" + struct.pack("<I", len(header + loop)) + header + loop


def add_loop_chunks(wav: bytes, *, bpm: float, beats: int, beats_per_bar: int = 4) -> bytes:
    """``wav`` (a RIFF/WAVE file's bytes, PCM) with ``acid`` and ``smpl`` chunks before ``data``.

    The whole file is the loop: ``beats`` beats at ``bpm``; the frame count and sample rate come
    from its ``fmt `` and ``data`` chunks. The audio bytes are unchanged. ValueError for a file
    without ``fmt `` or ``data``, or one that already carries either chunk.
    """
    chunks = {chunk_id: (offset, size) for chunk_id, offset, size in riff_chunks(wav)}
    if b"fmt " not in chunks or b"data" not in chunks:
        raise ValueError("a WAV file needs a 'fmt ' and a 'data' chunk")
    if b"acid" in chunks or b"smpl" in chunks:
        raise ValueError("the WAV file already carries loop information (acid or smpl)")
    fmt_offset, _ = chunks[b"fmt "]
    sample_rate_hz = struct.unpack_from("<I", wav, fmt_offset + 12)[0]
    block_align = struct.unpack_from("<H", wav, fmt_offset + 20)[0]
    data_offset, data_size = chunks[b"data"]
    if block_align == 0 or data_size in UNSET_SIZES:
        raise ValueError("the WAV file's 'fmt ' or 'data' header holds no usable size")
    extra = (acid_chunk(bpm=bpm, beats=beats, beats_per_bar=beats_per_bar)
             + smpl_chunk(frames=data_size // block_align, sample_rate_hz=sample_rate_hz))
    out = wav[12:data_offset] + extra + wav[data_offset:]
    return b"RIFF" + struct.pack("<I", len(out) + 4) + b"WAVE" + out


def read_acid(path: str | os.PathLike) -> dict | None:
    """``{"bpm", "beats", "meter": (numerator, denominator), "one_shot"}`` from a WAV file's
    ``acid`` chunk, or None: no such chunk, not a RIFF/WAVE file, or a file that cannot be read.

    ``walk_chunks`` seeks over the other chunks (the audio too), so an ``acid`` chunk after the
    audio, where some editors put it, is found as well.
    """
    try:
        with open(path, "rb") as handle:
            for chunk_id, offset, size in walk_chunks(handle):
                if chunk_id == b"acid":
                    handle.seek(offset + 8)
                    body = handle.read(_ACID.size)
                    if size < _ACID.size or len(body) < _ACID.size:
                        return None
                    flags, _, _, _, beats, den, num, bpm = _ACID.unpack(body)
                    return {"bpm": float(bpm), "beats": beats, "meter": (num, den),
                            "one_shot": bool(flags & 0x01)}
    except (OSError, ValueError):  # unreadable, or not a RIFF/WAVE file
        return None
    return None
