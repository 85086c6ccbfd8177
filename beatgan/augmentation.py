"""BeatGAN's data augmentation: noisy copies of each loop at 24-bit integer scale."""

from __future__ import annotations

import numpy as np

from .config import FULL_SCALE_24


def augment(audio_rows: np.ndarray, *, copies: int = 5, rng: np.random.Generator,
            amplitude: int = 10000, lengths: np.ndarray | None = None) -> np.ndarray:
    """BeatGAN's augmentation: ``copies`` noisy copies of each loop, float32 (n * copies, time, ch).

    Each row is taken to 24-bit integers (round(x * 2^23)), integer noise uniform in
    [-amplitude, amplitude) is added, the sum is clipped to [-2^23, 2^23 - 1] and divided by
    2^23, as the seed did. Order: loop-major, rows ``i * copies ... i * copies + copies - 1`` are
    the copies of loop ``i`` (like ``np.repeat(audio, copies, axis=0)``). The noise of loop ``i``
    is drawn as one (copies, length, ch) int32 block, loop after loop, so a seed fixes the result.
    ``lengths`` (n,): add noise only to each row's first ``lengths[i]`` samples (the zero padding
    stays zero); None: the whole row. Memory: the output plus one loop's noise.
    """
    x = np.asarray(audio_rows, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"expected audio of shape (n, time, channels), got {x.shape}")
    if copies < 1:
        raise ValueError(f"copies must be at least 1, got {copies}")
    if not 0 <= amplitude < FULL_SCALE_24:
        raise ValueError(f"amplitude must be in [0, 2^23), got {amplitude}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng)}")
    n, n_time, n_ch = x.shape
    lengths = np.full(n, n_time) if lengths is None else np.asarray(lengths)
    if lengths.shape != (n,) or np.any(lengths < 0) or np.any(lengths > n_time):
        raise ValueError(f"lengths must be {n} values in [0, {n_time}], got shape {lengths.shape}")
    out = np.zeros((n * copies, n_time, n_ch), np.float32)
    scale, inv = np.float32(FULL_SCALE_24), np.float32(1.0 / FULL_SCALE_24)
    for i in range(n):
        m = int(lengths[i])
        block = out[i * copies:(i + 1) * copies]
        # float32 holds every integer below 2^24 exactly, so this integer arithmetic is exact.
        ints = np.round(x[i] * scale)
        block[:] = ints
        if amplitude and m:
            noise = rng.integers(-amplitude, amplitude, size=(copies, m, n_ch), dtype=np.int32)
            block[:, :m] += noise
        np.clip(block, -scale, scale - 1, out=block)
        block *= inv
    return out
