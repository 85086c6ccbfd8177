"""BeatGAN's similarity score between generated beats and training loops, plain and shift-tolerant.

BeatGAN (2018, "Output Evaluation") scores a generated segment ``B`` against a training
segment ``A`` (same length, both channels) as

    s(A, B) = sum((A - B)^2) / sum(A^2)

over the first ``Config.score_len`` samples (14112 at 14.7 kHz, 125 bpm). Lower is more similar;
a generated beat is "similar" when some training segment scores ``s <= 0.1``. ``A`` is the clean
training segment, not one of its noisy copies.

* ``similarity_matrix`` scores every pair at once, ``(n_train, n_generated)``, through
  ``|A|^2 - 2 A.B + |B|^2`` and one matrix product, accumulated in float64.
* ``shift_tolerant_similarity`` takes the best score over time lags up to a bound, from FFT
  cross-correlations, so that a training loop that is merely shifted by a few milliseconds
  still counts as a copy.

The novelty report built on these scores is ``beatgan.novelty``; scoring folders of WAV files is
``beatgan.workflows``.

Segments are arrays ``(n_segments, n_samples, channels)`` (or ``(n_segments, n_samples)`` for
mono) with time on axis 1, as ``LoopSet.audio`` and the generator's output are.

Silent training segments (``sum(A^2) == 0``) have no scale to divide by. Their score is defined
as ``0.0`` against a silent generated segment (the two are identical) and ``inf`` against
anything else (nothing can be "within 10 % of silence"); it is never NaN.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import scipy.fft

from .config import Config

#: The seed's threshold: a beat is similar to a training loop when its score is at most this.
SIMILAR_THRESHOLD = 0.1
#: Pairs whose expanded numerator |A|^2 - 2A.B + |B|^2 is below this fraction of |A|^2 + |B|^2
#: lost most of their digits to cancellation; they are recomputed directly as sum((A - B)^2).
#: Elsewhere the float64 expansion's relative error is below ~D * 2**-53 / REFINE_RATIO
#: (D = samples x channels), about 3e-8 in the worst case for D = 28224 and ~1e-12 typically.
REFINE_RATIO = 1e-4
#: Train rows converted to float64 at a time (bounds the float64 copy to a few tens of MB).
CHUNK_ROWS = 128


# --- input checks -----------------------------------------------------------
def _as_rows(x: Any, *, n_samples: int, name: str) -> np.ndarray:
    """``(n, time[, channels])`` -> ``(n, n_samples * channels)``: the first n_samples, channels
    interleaved. A view when possible (no copy of the training set); float dtype kept."""
    x = np.asarray(x)
    if x.ndim == 2:  # mono: (n, time)
        x = x[:, :, None]
    if x.ndim != 3:
        raise ValueError(f"{name}: expected segments of shape (n_segments, n_samples, channels), "
                         f"got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: no segments (expected at least one, got shape {x.shape})")
    if x.shape[1] < n_samples:
        raise ValueError(f"{name}: segments are {x.shape[1]} samples long; the score needs at "
                         f"least {n_samples} (the first Config.score_len samples)")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name}: expected float audio in [-1, 1], got dtype {x.dtype}")
    return x[:, :n_samples, :].reshape(x.shape[0], -1)


def _check_pair(train: Any, generated: Any, *, n_samples: int | None,
                config: Config | None) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Validated ``(train_rows, generated_rows, n_samples, channels)``."""
    if n_samples is None:
        n_samples = (config or Config()).score_len
    if int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive whole number, got {n_samples}")
    n_samples = int(n_samples)
    train_arr, gen_arr = np.asarray(train), np.asarray(generated)
    channels = [a.shape[2] if a.ndim == 3 else 1 for a in (train_arr, gen_arr)]
    a = _as_rows(train_arr, n_samples=n_samples, name="train")
    b = _as_rows(gen_arr, n_samples=n_samples, name="generated")
    if channels[0] != channels[1]:
        raise ValueError(f"train segments have {channels[0]} channel(s) but generated ones have "
                         f"{channels[1]}; both must have the same number")
    return a, b, n_samples, channels[0]


def _energies(rows: np.ndarray) -> np.ndarray:
    """Per-row sum of squares in float64, ``(n,)``; ValueError on NaN or inf in the audio."""
    out = np.empty(rows.shape[0])
    for start in range(0, rows.shape[0], CHUNK_ROWS):
        chunk = rows[start:start + CHUNK_ROWS].astype(np.float64)
        out[start:start + CHUNK_ROWS] = np.einsum("ij,ij->i", chunk, chunk)
    if not np.all(np.isfinite(out)):
        raise ValueError("segments contain NaN or inf samples")
    return out


def _ratio(numerator: np.ndarray, train_energy: np.ndarray) -> np.ndarray:
    """numerator / |A|^2 with the documented rule for silent training rows (0 or inf, no NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = numerator / train_energy[:, None]
    silent = train_energy == 0.0
    if np.any(silent):
        scores[silent] = np.where(numerator[silent] == 0.0, 0.0, np.inf)
    return scores


# --- the plain score --------------------------------------------------------
def similarity_numerators(train: Any, generated: Any, *, n_samples: int | None = None,
                          config: Config | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``sum((A - B)^2)`` for every pair, ``(n_train, n_generated)`` float64, and ``|A|^2``, ``(n_train,)``.

    The expansion ``|A|^2 - 2 A.B + |B|^2`` with one float64 matrix product (float32 products
    are exact in float64, so only the sums round). Pairs where cancellation could have eaten the
    digits (below ``REFINE_RATIO`` of ``|A|^2 + |B|^2``) are recomputed as ``sum((A - B)^2)``,
    one generated beat at a time; an identical pair is exactly 0. Never negative.
    """
    a, b, _, _ = _check_pair(train, generated, n_samples=n_samples, config=config)
    b64 = b.astype(np.float64)
    gen_energy = _energies(b64)
    train_energy = np.empty(a.shape[0])
    cross = np.empty((a.shape[0], b.shape[0]))
    # 1. In row chunks, so that a float32 training set is never copied whole to float64.
    for start in range(0, a.shape[0], CHUNK_ROWS):
        chunk = a[start:start + CHUNK_ROWS].astype(np.float64)
        train_energy[start:start + CHUNK_ROWS] = np.einsum("ij,ij->i", chunk, chunk)
        cross[start:start + CHUNK_ROWS] = chunk @ b64.T
    if not np.all(np.isfinite(train_energy)):
        raise ValueError("train segments contain NaN or inf samples")
    # 2. |A|^2 - 2A.B + |B|^2, clipped: rounding can push a true 0 slightly below.
    scale = train_energy[:, None] + gen_energy[None, :]
    numerator = np.maximum(scale - 2.0 * cross, 0.0)
    # 3. Recompute the pairs that lost their digits to cancellation (near-copies), directly.
    suspect = (numerator <= REFINE_RATIO * scale) & (scale > 0.0)
    for j in np.flatnonzero(suspect.any(axis=0)):
        rows = np.flatnonzero(suspect[:, j])
        diff = a[rows].astype(np.float64) - b64[j]
        numerator[rows, j] = np.einsum("ij,ij->i", diff, diff)
    return numerator, train_energy


def similarity_matrix(train: Any, generated: Any, *, n_samples: int | None = None,
                      config: Config | None = None) -> np.ndarray:
    """BeatGAN's score for every (training, generated) pair, ``(n_train, n_generated)`` float64.

    ``s[i, j] = sum((train[i] - generated[j])^2) / sum(train[i]^2)`` over the first
    ``n_samples`` samples of all channels; lower is more similar, 0 for an identical pair.

    Args:
        train: training segments ``(n_train, time, channels)`` (``(n, time)`` for mono), the
            clean loops (``LoopSet.audio``), float.
        generated: generated segments ``(n_generated, time, channels)``, float.
        n_samples: samples per channel compared; default ``config.score_len`` (``Config()``'s,
            14112, when no config is given either). Both arrays must be at least this long.
        config: where ``n_samples`` comes from when it is not given.

    Silent training segments score 0 against silent generated ones and inf otherwise.
    Raises ValueError for empty input, too-short segments, mismatched channels, NaN or inf.
    """
    numerator, train_energy = similarity_numerators(train, generated, n_samples=n_samples,
                                                    config=config)
    return _ratio(numerator, train_energy)


# --- the shift-tolerant score -----------------------------------------------
def ms_to_samples(ms: float, *, sample_rate_hz: int) -> int:
    """Milliseconds -> whole samples at ``sample_rate_hz`` (rounded)."""
    if ms < 0:
        raise ValueError(f"a duration must be >= 0 ms, got {ms}")
    return int(round(ms * 1e-3 * sample_rate_hz))


def _to_channel_major(rows: np.ndarray, *, channels: int) -> np.ndarray:
    """``(n, n_samples * channels)`` interleaved -> ``(n, channels, n_samples)`` float64."""
    return rows.reshape(rows.shape[0], -1, channels).transpose(0, 2, 1).astype(np.float64)


def shift_tolerant_similarity(train: Any, generated: Any, *, max_shift_samples: int,
                              n_samples: int | None = None, config: Config | None = None,
                              return_lags: bool = False
                              ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The best score over time lags ``d`` in ``[-max_shift_samples, max_shift_samples]``.

    For lag ``d`` the generated segment is moved ``d`` samples earlier and compared with the
    training segment over all time, each zero outside its own ``n_samples``:

        s_d(A, B) = sum_t (A[t] - B[t + d])^2 / sum(A^2),  A, B = 0 outside [0, n_samples)

    so ``d > 0`` means the generated beat is the training segment delayed by ``d`` samples
    (``B[t] ~ A[t - d]``). Neither segment's audio is dropped: what the lag moves past the
    other's ends counts in full as a difference, so a large shift is never free. Lags within
    float rounding of a smaller one's score do not replace it (``LAG_TOLERANCE``).

    Cross terms come from blocked FFT cross-correlations (blocks of a few hundred samples
    padded by the lag bound, so no lag wraps around; summed over blocks and channels by one
    complex matrix product per frequency, then one short inverse FFT per pair). The lag-0
    entry is the exact ``similarity_matrix`` value, hence ``shift_tolerant <= plain``
    everywhere and identical pairs score exactly 0.

    Args:
        train, generated, n_samples, config: as for ``similarity_matrix``.
        max_shift_samples: largest lag tried, in samples (``ms_to_samples(10, sample_rate_hz=
            14700)`` = 147 for 10 ms); 0 gives the plain matrix.
        return_lags: also return the best lag of each pair, ``(n_train, n_generated)`` int.

    Cost: see ``bench/bench_score.py`` (2170 x 40 segments, +/-20 ms).
    """
    if int(max_shift_samples) != max_shift_samples or max_shift_samples < 0:
        raise ValueError(f"max_shift_samples must be a whole number >= 0, got {max_shift_samples}")
    max_shift = int(max_shift_samples)
    a, b, n_samples, channels = _check_pair(train, generated, n_samples=n_samples, config=config)
    if max_shift >= n_samples:
        raise ValueError(f"max_shift_samples ({max_shift}) must be below n_samples ({n_samples})")
    numerator, train_energy = similarity_numerators(a[:, :, None], b[:, :, None],
                                                    n_samples=a.shape[1])
    best = numerator.copy()
    best_lag = np.zeros(best.shape, dtype=np.int64)
    if max_shift > 0:
        _improve_over_lags(a, b, best, best_lag, train_energy=train_energy, channels=channels,
                           max_shift=max_shift)
    best_lag[train_energy == 0.0] = 0  # no lag is meaningful against silence
    scores = _ratio(best, train_energy)
    return (scores, best_lag) if return_lags else scores


#: Smallest time block of the blocked cross-correlation (samples); blocks are at least 2x the
#: lag bound, so the zero padding each block's FFT needs stays a small part of it.
MIN_BLOCK = 512
#: A lag replaces lag 0 (or a smaller score) only when it lowers the numerator by more than
#: this times ``sum(A^2) + sum(B^2)``: FFT rounding (~1e-15 of it) must not pick a lag where
#: every lag scores the same, as for segments that never overlap.
LAG_TOLERANCE = 1e-12
#: Train rows per batch of the blocked cross-correlation (bounds memory to ~100 MB).
SHIFT_CHUNK_ROWS = 128


def _block_layout(n_samples: int, max_shift: int) -> tuple[int, int, int]:
    """``(block, n_blocks, n_fft)`` of the blocked cross-correlation: n_fft >= block + 2 max_shift."""
    n_fft = scipy.fft.next_fast_len(max(MIN_BLOCK, 2 * max_shift) + 2 * max_shift, real=True)
    block = n_fft - 2 * max_shift
    return block, -(-n_samples // block), n_fft


def _train_block_spectra(rows: np.ndarray, *, channels: int, block: int, n_blocks: int,
                         n_fft: int) -> np.ndarray:
    """conj FFT of each block A[p*block : (p+1)*block], zero-padded: ``(n_freq, n, channels * n_blocks)``."""
    x = _to_channel_major(rows, channels=channels)  # (n, c, n_samples)
    x = np.pad(x, ((0, 0), (0, 0), (0, n_blocks * block - x.shape[2])))
    x = x.reshape(x.shape[0], channels * n_blocks, block)
    spectra = scipy.fft.rfft(x, n=n_fft, axis=-1).transpose(2, 0, 1)
    return np.conj(spectra, out=np.empty(spectra.shape, spectra.dtype))  # contiguous, for BLAS


def _gen_block_spectra(rows: np.ndarray, *, channels: int, block: int, n_blocks: int,
                       n_fft: int, max_shift: int) -> np.ndarray:
    """FFT of each window B[p*block - K : (p+1)*block + K] (zeros outside the segment):
    ``(n_freq, channels * n_blocks, n)``."""
    x = _to_channel_major(rows, channels=channels)
    n_samples = x.shape[2]
    x = np.pad(x, ((0, 0), (0, 0), (max_shift, n_blocks * block + max_shift - n_samples)))
    windows = np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=2)[:, :, ::block][:, :, :n_blocks]
    windows = windows.reshape(x.shape[0], channels * n_blocks, n_fft)
    return np.ascontiguousarray(scipy.fft.rfft(windows, axis=-1).transpose(2, 1, 0))


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """Single-threaded BLAS for many small matrix products: waking BLAS threads for each of
    hundreds of (128 x 48) @ (48 x 40) products costs more than it saves (4-10x slower measured)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def _improve_over_lags(a: np.ndarray, b: np.ndarray, best: np.ndarray, best_lag: np.ndarray, *,
                       train_energy: np.ndarray, channels: int, max_shift: int) -> None:
    """Lower ``best`` (numerators, in place) to the minimum over lags ``0 < |d| <= max_shift``.

    Blocked cross-correlation: c[d] = sum_t A[t] B[t + d] = sum_p sum_s A_p[s] W_p[s + K + d],
    with A_p the p-th block of A and W_p the window of B around it, K samples wider on each
    side. Each block needs an FFT of only block + 2K points, and because the inverse FFT is
    linear the blocks (and channels) are summed in the frequency domain first: per frequency,
    one complex matrix product (n_train, blocks x channels) @ (blocks x channels, n_generated),
    then one short inverse FFT per pair.
    """
    n_samples = a.shape[1] // channels
    block, n_blocks, n_fft = _block_layout(n_samples, max_shift)
    lags = np.arange(-max_shift, max_shift + 1)
    layout = dict(channels=channels, block=block, n_blocks=n_blocks, n_fft=n_fft)
    gen_spectra = _gen_block_spectra(b, max_shift=max_shift, **layout)
    gen_energy = np.square(b, dtype=np.float64).sum(axis=1)  # all of B, counted at every lag
    for start in range(0, a.shape[0], SHIFT_CHUNK_ROWS):
        stop = min(start + SHIFT_CHUNK_ROWS, a.shape[0])
        train_spectra = _train_block_spectra(a[start:stop], **layout)
        with _one_blas_thread():
            cross = np.matmul(train_spectra, gen_spectra)  # (n_freq, rows, n_generated)
        # Lag d sits at index K + d of each block's circular correlation (no wrap: n_fft >= block + 2K).
        corr = scipy.fft.irfft(cross, n=n_fft, axis=0)[:2 * max_shift + 1]
        total = train_energy[start:stop, None] + gen_energy[None, :]  # (rows, n_generated)
        num = total[None] - 2.0 * corr
        num[max_shift] = np.inf  # lag 0 is already exact in ``best``
        k = np.argmin(num, axis=0)  # (rows, n_generated)
        candidate = np.maximum(np.take_along_axis(num, k[None], axis=0)[0], 0.0)
        better = candidate < best[start:stop] - LAG_TOLERANCE * total
        best[start:stop] = np.where(better, candidate, best[start:stop])
        best_lag[start:stop] = np.where(better, lags[k], best_lag[start:stop])
