"""How close generated beats are to the training loops: BeatGAN's similarity score and novelty.

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
* ``novelty_report`` turns the matrices into the counts, the nearest training loops of each
  beat, a readable table (``NoveltyReport.table``) and a JSON-able dict (``.to_dict``).
* ``load_generated`` and ``score_folder`` do the same starting from folders of WAV files.

Segments are arrays ``(n_segments, n_samples, channels)`` (or ``(n_segments, n_samples)`` for
mono) with time on axis 1, as ``LoopSet.audio`` and the generator's output are.

Silent training segments (``sum(A^2) == 0``) have no scale to divide by. Their score is defined
as ``0.0`` against a silent generated segment (the two are identical) and ``inf`` against
anything else (nothing can be "within 10 % of silence"); it is never NaN.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from pathlib import Path
from typing import Any, Sequence

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


def _prefix_energy(rows: np.ndarray, *, channels: int) -> np.ndarray:
    """Cumulative energy over time, summed over channels: ``(n, n_samples + 1)``, float64, P[:, 0] = 0."""
    per_sample = (rows.astype(np.float64) ** 2).reshape(rows.shape[0], -1, channels).sum(axis=2)
    return np.concatenate([np.zeros((rows.shape[0], 1)), np.cumsum(per_sample, axis=1)], axis=1)


def _to_channel_major(rows: np.ndarray, *, channels: int) -> np.ndarray:
    """``(n, n_samples * channels)`` interleaved -> ``(n, channels, n_samples)`` float64."""
    return rows.reshape(rows.shape[0], -1, channels).transpose(0, 2, 1).astype(np.float64)


def shift_tolerant_similarity(train: Any, generated: Any, *, max_shift_samples: int,
                              n_samples: int | None = None, config: Config | None = None,
                              return_lags: bool = False
                              ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The best score over time lags ``d`` in ``[-max_shift_samples, max_shift_samples]``.

    For lag ``d`` the generated segment is moved ``d`` samples earlier and compared with the
    training segment over the same window of ``n_samples``; what leaves the window is dropped
    and zeros come in:

        s_d(A, B) = sum_t (A[t] - B[t + d])^2 / sum(A^2),  B[u] = 0 outside [0, n_samples)

    so ``d > 0`` means the generated beat is the training segment delayed by ``d`` samples
    (``B[t] ~ A[t - d]``). The audio shifted out of the window counts as a difference, so a
    large shift is never free. Cross terms come from blocked FFT cross-correlations (blocks of
    a few hundred samples padded by the lag bound, so no lag wraps around; summed over blocks
    and channels by one complex matrix product per frequency, then one short inverse FFT per
    pair); the lag-0 entry is the exact ``similarity_matrix`` value, hence
    ``shift_tolerant <= plain`` everywhere and identical pairs score exactly 0.

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
    # Energy of B[t + d] inside the window: samples u = t + d in [max(0, d), min(n, n + d)).
    prefix = _prefix_energy(b, channels=channels)
    gen_window_energy = (prefix[:, np.minimum(n_samples, n_samples + lags)]
                         - prefix[:, np.maximum(0, lags)]).T  # (n_lags, n_generated)
    for start in range(0, a.shape[0], SHIFT_CHUNK_ROWS):
        stop = min(start + SHIFT_CHUNK_ROWS, a.shape[0])
        train_spectra = _train_block_spectra(a[start:stop], **layout)
        with _one_blas_thread():
            cross = np.matmul(train_spectra, gen_spectra)  # (n_freq, rows, n_generated)
        # Lag d sits at index K + d of each block's circular correlation (no wrap: n_fft >= block + 2K).
        corr = scipy.fft.irfft(cross, n=n_fft, axis=0)[:2 * max_shift + 1]
        num = train_energy[None, start:stop, None] + gen_window_energy[:, None, :] - 2.0 * corr
        num[max_shift] = np.inf  # lag 0 is already exact in ``best``
        k = np.argmin(num, axis=0)  # (rows, n_generated)
        candidate = np.maximum(np.take_along_axis(num, k[None], axis=0)[0], 0.0)
        better = candidate < best[start:stop]
        best[start:stop] = np.where(better, candidate, best[start:stop])
        best_lag[start:stop] = np.where(better, lags[k], best_lag[start:stop])


# --- the report -------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Neighbour:
    """One training loop near a generated beat: its name, index into the training set, scores.

    ``score`` is the plain score of the pair. When the shift-tolerant score was computed,
    ``score_shift_tolerant`` is that of the same pair and ``lag_samples`` its best lag: the
    generated beat matches this training segment delayed by that many samples (negative:
    advanced).
    """

    train_name: str
    train_index: int
    score: float
    score_shift_tolerant: float | None = None
    lag_samples: int | None = None

    def to_dict(self, *, sample_rate_hz: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"train": self.train_name, "score": _json_float(self.score)}
        if self.score_shift_tolerant is not None:
            out["score_shift_tolerant"] = _json_float(self.score_shift_tolerant)
        if self.lag_samples is not None:
            out["lag_samples"] = int(self.lag_samples)
            if sample_rate_hz:
                out["lag_ms"] = round(1e3 * self.lag_samples / sample_rate_hz, 3)
        return out


@dataclasses.dataclass(frozen=True)
class BeatNovelty:
    """A generated beat's nearest training loops (ascending score) and whether it is similar."""

    name: str
    nearest: tuple[Neighbour, ...]
    nearest_shift_tolerant: tuple[Neighbour, ...] | None = None

    def similar(self, threshold: float) -> bool:
        return bool(self.nearest) and self.nearest[0].score <= threshold

    def similar_shift_tolerant(self, threshold: float) -> bool | None:
        if self.nearest_shift_tolerant is None:
            return None
        best = self.nearest_shift_tolerant[0].score_shift_tolerant
        return best is not None and best <= threshold


@dataclasses.dataclass(frozen=True)
class NoveltyReport:
    """How many generated beats are close to a training loop, and which loops they are near.

    A beat is *similar* when its best score is at most ``threshold`` (BeatGAN's 0.1). The
    shift-tolerant fields are None when no shift-tolerant matrix was given.
    """

    threshold: float
    beats: tuple[BeatNovelty, ...]
    n_train: int
    max_shift_samples: int | None = None
    sample_rate_hz: int | None = None

    @property
    def n_generated(self) -> int:
        return len(self.beats)

    @property
    def n_similar(self) -> int:
        return sum(beat.similar(self.threshold) for beat in self.beats)

    @property
    def fraction_similar(self) -> float:
        return self.n_similar / self.n_generated

    @property
    def has_shift_tolerant(self) -> bool:
        return self.max_shift_samples is not None

    @property
    def n_similar_shift_tolerant(self) -> int | None:
        if not self.has_shift_tolerant:
            return None
        return sum(bool(beat.similar_shift_tolerant(self.threshold)) for beat in self.beats)

    @property
    def fraction_similar_shift_tolerant(self) -> float | None:
        n = self.n_similar_shift_tolerant
        return None if n is None else n / self.n_generated

    @property
    def best_scores(self) -> np.ndarray:
        """Each beat's lowest plain score, ``(n_generated,)`` (for histograms)."""
        return np.array([beat.nearest[0].score for beat in self.beats])

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``beatgan score --json``; inf (silent training loop) becomes null.

        Keys: threshold, n_train, n_generated, n_similar, fraction_similar, max_shift_samples,
        max_shift_ms, n_similar_shift_tolerant, fraction_similar_shift_tolerant, and ``files``:
        per generated file its name, ``similar``, ``nearest`` (train, score) and, when
        computed, ``similar_shift_tolerant`` and ``nearest_shift_tolerant`` (train, score,
        lag_samples, lag_ms).
        """
        rate = self.sample_rate_hz
        files = []
        for beat in self.beats:
            entry: dict[str, Any] = {
                "name": beat.name,
                "similar": beat.similar(self.threshold),
                "nearest": [n.to_dict(sample_rate_hz=rate) for n in beat.nearest],
            }
            if beat.nearest_shift_tolerant is not None:
                entry["similar_shift_tolerant"] = beat.similar_shift_tolerant(self.threshold)
                entry["nearest_shift_tolerant"] = [n.to_dict(sample_rate_hz=rate)
                                                   for n in beat.nearest_shift_tolerant]
            files.append(entry)
        max_shift_ms = (round(1e3 * self.max_shift_samples / rate, 3)
                        if self.has_shift_tolerant and rate else None)
        return {
            "threshold": self.threshold,
            "n_train": self.n_train,
            "n_generated": self.n_generated,
            "n_similar": self.n_similar,
            "fraction_similar": self.fraction_similar,
            "max_shift_samples": self.max_shift_samples,
            "max_shift_ms": max_shift_ms,
            "n_similar_shift_tolerant": self.n_similar_shift_tolerant,
            "fraction_similar_shift_tolerant": self.fraction_similar_shift_tolerant,
            "files": files,
        }

    def summary(self) -> str:
        """One or two lines: how many beats are similar, plainly and shift-tolerantly."""
        line = (f"{self.n_similar} of {self.n_generated} generated beats "
                f"({100 * self.fraction_similar:.1f}%) score <= {self.threshold:g} against some "
                f"of {self.n_train} training loops (similar); the rest are novel.")
        if self.has_shift_tolerant:
            bound = (f"{1e3 * self.max_shift_samples / self.sample_rate_hz:.1f} ms"
                     if self.sample_rate_hz else f"{self.max_shift_samples} samples")
            line += (f"\nAllowing shifts up to +/-{bound}: {self.n_similar_shift_tolerant} of "
                     f"{self.n_generated} ({100 * self.fraction_similar_shift_tolerant:.1f}%).")
        return line

    def table(self) -> str:
        """A readable text table: per beat its nearest training loops with scores (lower = closer).

        One row per plain neighbour (rank 1..k); with the shift-tolerant score, each row also
        shows that pair's shift-tolerant score and lag, and the shift-tolerant nearest loop is
        added (rank ``s``) when it is not among the plain ones.
        """
        shift = self.has_shift_tolerant
        name_w = max([len("beat")] + [len(b.name) for b in self.beats])
        header = f"{'beat':<{name_w}}  {'similar':<7}  rank  {'score':>8}  "
        if shift:
            header += f"{'shifted':>8}  {'lag ms':>6}  "
        header += "training loop"
        lines = [self.summary(), "", header, "-" * len(header)]
        for beat in self.beats:
            verdict = "yes" if beat.similar(self.threshold) else "no"
            if shift:
                verdict += "/yes" if beat.similar_shift_tolerant(self.threshold) else "/no"
            rows = [(str(rank), n) for rank, n in enumerate(beat.nearest, start=1)]
            listed = {n.train_index for n in beat.nearest}
            if beat.nearest_shift_tolerant and beat.nearest_shift_tolerant[0].train_index not in listed:
                rows.append(("s", beat.nearest_shift_tolerant[0]))
            for i, (rank, n) in enumerate(rows):
                cells = f"{beat.name if i == 0 else '':<{name_w}}  {verdict if i == 0 else '':<7}  "
                cells += f"{rank:>4}  {format_score(n.score):>8}  "
                if shift:
                    lag = (f"{1e3 * n.lag_samples / self.sample_rate_hz:+.1f}"
                           if n.lag_samples is not None and self.sample_rate_hz else "")
                    cells += f"{format_score(n.score_shift_tolerant):>8}  {lag:>6}  "
                lines.append(cells + n.train_name)
        lines += ["", "score = sum((A-B)^2)/sum(A^2), A = training segment, B = generated beat; "
                      "lower is closer, 0 = identical, inf = silent training loop."]
        if shift:
            lines.append("similar: plain/shift-tolerant. shifted: the best score over lags; "
                         "lag ms > 0: the beat is the loop delayed. rank s: the shift-tolerant "
                         "nearest loop.")
        return "\n".join(lines)


def format_score(score: float | None) -> str:
    """A score for tables: 4 decimals, "inf" for a silent training loop, "-" when absent."""
    if score is None or math.isnan(score):
        return "-"
    if math.isinf(score):
        return "inf"
    return f"{score:.4f}" if score < 100 else f"{score:.3g}"


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _neighbours(order: np.ndarray, *, column: np.ndarray, names: Sequence[str],
                shift_column: np.ndarray | None, lag_column: np.ndarray | None
                ) -> tuple[Neighbour, ...]:
    return tuple(Neighbour(train_name=str(names[i]), train_index=int(i), score=float(column[i]),
                           score_shift_tolerant=(None if shift_column is None
                                                 else float(shift_column[i])),
                           lag_samples=None if lag_column is None else int(lag_column[i]))
                 for i in order)


def _k_lowest(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k lowest scores, ascending (ties: lower index first)."""
    return np.argsort(scores, kind="stable")[:k]


def novelty_report(matrix: np.ndarray, *, train_names: Sequence[str],
                   generated_names: Sequence[str], threshold: float = SIMILAR_THRESHOLD,
                   k: int = 3, shift_matrix: np.ndarray | None = None,
                   shift_lags: np.ndarray | None = None, max_shift_samples: int | None = None,
                   sample_rate_hz: int | None = None) -> NoveltyReport:
    """Count the similar beats and list each beat's ``k`` nearest training loops.

    Args:
        matrix: ``similarity_matrix`` output, ``(n_train, n_generated)``.
        train_names, generated_names: labels of the rows and columns (file names).
        threshold: similar when the best score is at most this (0.1, the seed's).
        k: neighbours kept per beat (3, like the seed's examples).
        shift_matrix, shift_lags: ``shift_tolerant_similarity(..., return_lags=True)`` output,
            same shape; when given, both verdicts are reported.
        max_shift_samples: the lag bound used for ``shift_matrix`` (for the report's text).
        sample_rate_hz: to express lags in ms.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise ValueError(f"matrix: expected a non-empty (n_train, n_generated) array, got shape "
                         f"{matrix.shape}")
    if (len(train_names), len(generated_names)) != matrix.shape:
        raise ValueError(f"names do not match the matrix: {len(train_names)} train and "
                         f"{len(generated_names)} generated names for shape {matrix.shape}")
    if np.isnan(matrix).any():
        raise ValueError("matrix holds NaN scores")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if shift_matrix is not None:
        shift_matrix = np.asarray(shift_matrix, dtype=np.float64)
        if shift_matrix.shape != matrix.shape:
            raise ValueError(f"shift_matrix shape {shift_matrix.shape} differs from {matrix.shape}")
        if max_shift_samples is None:
            max_shift_samples = int(np.abs(shift_lags).max()) if shift_lags is not None else 0
    else:
        max_shift_samples = None
    beats = []
    for j, name in enumerate(generated_names):
        columns = dict(column=matrix[:, j], names=train_names,
                       shift_column=None if shift_matrix is None else shift_matrix[:, j],
                       lag_column=None if shift_lags is None else shift_lags[:, j])
        nearest = _neighbours(_k_lowest(matrix[:, j], k), **columns)
        shifted = None
        if shift_matrix is not None:
            shifted = _neighbours(_k_lowest(shift_matrix[:, j], k), **columns)
        beats.append(BeatNovelty(name=str(name), nearest=nearest, nearest_shift_tolerant=shifted))
    return NoveltyReport(threshold=float(threshold), beats=tuple(beats), n_train=matrix.shape[0],
                         max_shift_samples=max_shift_samples, sample_rate_hz=sample_rate_hz)


def score_novelty(train: Any, generated: Any, *, train_names: Sequence[str],
                  generated_names: Sequence[str], config: Config,
                  threshold: float = SIMILAR_THRESHOLD, k: int = 3,
                  max_shift_ms: float | None = 20.0) -> NoveltyReport:
    """Plain and (when ``max_shift_ms`` is set and > 0) shift-tolerant scores -> ``NoveltyReport``.

    Arrays as for ``similarity_matrix``; both are compared over ``config.score_len`` samples.
    """
    matrix = similarity_matrix(train, generated, config=config)
    shift_scores = lags = max_shift = None
    if max_shift_ms:
        max_shift = ms_to_samples(max_shift_ms, sample_rate_hz=config.sample_rate_hz)
        shift_scores, lags = shift_tolerant_similarity(train, generated, config=config,
                                                       max_shift_samples=max_shift,
                                                       return_lags=True)
    return novelty_report(matrix, train_names=train_names, generated_names=generated_names,
                          threshold=threshold, k=k, shift_matrix=shift_scores, shift_lags=lags,
                          max_shift_samples=max_shift, sample_rate_hz=config.sample_rate_hz)


# --- folders of WAV files ---------------------------------------------------
def load_generated(folder: str | Path, *, config: Config,
                   pattern: str = "*.wav") -> tuple[np.ndarray, list[Path]]:
    """Read generated beats for scoring: ``(n, config.score_len, channels)`` float32 and paths.

    Files are taken in name order. Each must be at ``config.sample_rate_hz`` with
    ``config.channels`` channels and at least ``config.score_len`` frames; only those frames
    are read. Raises ValueError (saying what was expected) otherwise, or for a folder with no
    WAV file.
    """
    import soundfile as sf

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"generated beats: {folder} is not a folder")
    paths = sorted(p for p in folder.glob(pattern) if p.is_file())
    if not paths:
        raise ValueError(f"generated beats: no {pattern} files in {folder}")
    n = config.score_len
    audio = np.empty((len(paths), n, config.channels), dtype=np.float32)
    for i, path in enumerate(paths):
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError) as error:
            raise ValueError(f"{path.name}: not a readable audio file ({error})") from None
        if info.samplerate != config.sample_rate_hz:
            raise ValueError(f"{path.name}: sample rate {info.samplerate} Hz, expected "
                             f"{config.sample_rate_hz} Hz (the model's rate)")
        if info.channels != config.channels:
            raise ValueError(f"{path.name}: {info.channels} channel(s), expected {config.channels}")
        if info.frames < n:
            raise ValueError(f"{path.name}: {info.frames} frames, expected at least {n} "
                             f"(one segment at {config.bpm:g} bpm)")
        audio[i] = sf.read(str(path), frames=n, dtype="float32", always_2d=True)[0]
    return audio, paths


def score_folder(data_dir: str | Path, generated_dir: str | Path, *, config: Config,
                 threshold: float = SIMILAR_THRESHOLD, k: int = 3,
                 max_shift_ms: float | None = 20.0, examples_dir: str | Path | None = None,
                 examples: int = 3, progress: bool = True,
                 data_missing_ok: bool = False, loops: Any = None) -> NoveltyReport:
    """Score the WAVs of ``generated_dir`` against the clean loops of ``data_dir``.

    Training loops are read by ``beatgan.data.load_loops`` with ``config`` (so
    ``config.decimation="naive"`` and ``beats`` reproduce the seed's way; the demo pack is
    used when ``data_dir`` holds no audio). With ``examples_dir``, also writes
    ``examples`` example folders (``beatgan.similarity_examples.write_similarity_examples``).
    ``data_missing_ok``: a ``data_dir`` that does not exist or is empty means the demo pack (for a
    default folder the user did not name); otherwise it is an error naming what was found.
    ``loops``: the training ``LoopSet`` when the caller has loaded it already (then ``data_dir``
    is not read again).
    """
    from .data import load_loops
    from .synth import ensure_demo_pack

    generated, gen_paths = load_generated(generated_dir, config=config)
    if loops is None:
        loops = load_loops(ensure_demo_pack(data_dir, missing_ok=data_missing_ok,
                                            empty_ok=data_missing_ok), config,
                           progress=progress)
    report = score_novelty(loops.audio, generated, train_names=[Path(p).name for p in loops.paths],
                           generated_names=[p.name for p in gen_paths], config=config,
                           threshold=threshold, k=k, max_shift_ms=max_shift_ms)
    if examples_dir is not None:
        from .similarity_examples import choose_examples, write_similarity_examples

        write_similarity_examples(examples_dir, report=report, generated_paths=gen_paths,
                                  train_audio=loops.audio, train_paths=loops.paths, config=config,
                                  which=choose_examples(report, n=examples))
    return report
