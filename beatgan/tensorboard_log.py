"""A dependency-free TensorBoard event writer: scalars and WAV audio previews.

TensorFlow 2.21 no longer bundles TensorBoard (``tf.summary.scalar`` raises
without it) and the GPU machine has no TensorFlow at all, so this module
writes the event file format itself: a TFRecord file (length, masked CRC-32C,
payload, masked CRC-32C) of ``Event`` protocol buffers, hand-encoded. Only the
legacy summary fields TensorBoard still reads are used: ``simple_value`` for
scalars and ``Summary.Audio`` (a 16-bit PCM WAV) for audio. It works the same
under every Keras backend; ``tensorboard --logdir RUN_DIR/tensorboard`` shows
the curves and lets you listen to the previews.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import time
import wave
from pathlib import Path

import numpy as np

# --- CRC-32C (Castagnoli), as TFRecord framing requires -----------------------------
_CRC_TABLE = []
for _byte in range(256):
    _crc = _byte
    for _ in range(8):
        _crc = (_crc >> 1) ^ 0x82F63B78 if _crc & 1 else _crc >> 1
    _CRC_TABLE.append(_crc)


def crc32c(payload: bytes) -> int:
    """CRC-32C of ``payload`` (table-driven; events are small)."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in payload:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(payload: bytes) -> int:
    crc = crc32c(payload)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(payload: bytes) -> bytes:
    """One TFRecord: uint64 length, its masked CRC, the payload, its masked CRC (little-endian)."""
    length = struct.pack("<Q", len(payload))
    return (length + struct.pack("<I", _masked_crc(length)) + payload
            + struct.pack("<I", _masked_crc(payload)))


# --- protobuf wire format, only what Event/Summary need ------------------------------
def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:  # wire type 2: length-delimited
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _field_int(number: int, value: int) -> bytes:  # wire type 0: varint
    return _varint(number << 3) + _varint(value)


def _field_float(number: int, value: float) -> bytes:  # wire type 5: 32-bit
    return _varint(number << 3 | 5) + struct.pack("<f", value)


def _field_double(number: int, value: float) -> bytes:  # wire type 1: 64-bit
    return _varint(number << 3 | 1) + struct.pack("<d", value)


def event_bytes(*, step: int, wall_time: float, values: list[bytes] = (),
                file_version: str | None = None) -> bytes:
    """Serialized ``Event{wall_time=1, step=2, file_version=3, summary=5{value=1...}}``."""
    out = _field_double(1, wall_time) + _field_int(2, step)
    if file_version is not None:
        out += _field_bytes(3, file_version.encode())
    if values:
        out += _field_bytes(5, b"".join(_field_bytes(1, value) for value in values))
    return out


def scalar_value(tag: str, value: float) -> bytes:
    """``Summary.Value{tag=1, simple_value=2}``."""
    return _field_bytes(1, tag.encode()) + _field_float(2, float(value))


def wav_bytes(audio: np.ndarray, *, sample_rate_hz: int) -> bytes:
    """16-bit PCM WAV of float audio (time, channels) in [-1, 1]."""
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(int(sample_rate_hz))
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def audio_value(tag: str, audio: np.ndarray, *, sample_rate_hz: int) -> bytes:
    """``Summary.Value{tag=1, audio=6{sample_rate=1, num_channels=2, length_frames=3, wav=4, type=5}}``."""
    audio = np.asarray(audio, dtype=np.float32)
    body = (_field_float(1, float(sample_rate_hz)) + _field_int(2, audio.shape[1])
            + _field_int(3, audio.shape[0])
            + _field_bytes(4, wav_bytes(audio, sample_rate_hz=sample_rate_hz))
            + _field_bytes(5, b"audio/wav"))
    return _field_bytes(1, tag.encode()) + _field_bytes(6, body)


class EventWriter:
    """Appends TensorBoard events to ``log_dir/events.out.tfevents.<time>.<host>.beatgan``.

    A new file per writer, as TensorBoard expects; a resumed run adds a file
    beside the old ones and TensorBoard merges them by step.
    """

    def __init__(self, log_dir: str | Path):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.beatgan"
        self.path = self.log_dir / name
        self._file = open(self.path, "ab")
        self._write(event_bytes(step=0, wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event: bytes) -> None:
        self._file.write(tfrecord(event))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """One scalar per tag at ``step``."""
        self._write(event_bytes(step=step, wall_time=time.time(),
                                values=[scalar_value(tag, v) for tag, v in values.items()]))

    def audio(self, step: int, tag: str, clips: np.ndarray, *, sample_rate_hz: int) -> None:
        """Clips (k, time, channels) in [-1, 1] as ``tag/0`` ... ``tag/k-1`` at ``step``."""
        values = [audio_value(f"{tag}/{i}", clip, sample_rate_hz=sample_rate_hz)
                  for i, clip in enumerate(clips)]
        self._write(event_bytes(step=step, wall_time=time.time(), values=values))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
