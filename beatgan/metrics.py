"""Offline quality metrics for generated drum loops: tempo, distribution distance, diversity.

Audio GAN papers score samples with networks trained elsewhere (WaveGAN's inception score, FAD);
this project cannot download one, so every number here comes from signal processing on the
clips themselves (numpy, scipy, librosa). Every clip is reduced to its first
``config.score_len`` samples (2 beats at ``config.bpm``: 14112 at 14.7 kHz) and mixed to mono.

Metrics, and which way is better
    tempo consistency (higher, in [0, 1])
        Is the onset energy on the beat grid of the training tempo, in phase with the downbeat
        at sample 0? Onset energy is a SuperFlux-style spectral flux (Boeck & Widmer 2013,
        "Maximum filter vibrato suppression for onset detection", DAFx).
        ``grid share`` = share of full-band flux within ``TEMPO_TOLERANCE_MS`` of a 16th-note
        position; ``beat share`` = share of low-band (<= ``LOW_BAND_HZ``: kick and bass) flux
        within the tolerance of a beat (quarter note). The score is their geometric mean. The
        grid share alone cannot see a loop started half a beat late (an eighth note is two 16th
        steps, so every hit is still on the 16th grid); the beat share sees the kick move off
        the beats. A click track on the beats scores 1; white noise about 0.2; silence 0.
    Frechet distance (lower, dB^2)
        The idea of FID (Heusel et al. 2017, "GANs trained by a two time-scale update rule")
        on an embedding computed here: the Frechet distance between Gaussians fitted to the
        generated and the training embeddings. The embedding ("grid log-mel") is the mean
        log-mel power (dB above a -55 dBFS white-noise floor) of each band in each 16th-note slot of the segment, plus the
        standard deviation of each band over the segment, projected onto the top principal
        components of the training set (PCA fitted on the training embeddings, so that a
        covariance from 40 clips stays well conditioned). Pooling on the grid, not over the
        whole clip, keeps where in the bar each sound falls, so a shifted loop is far away.
    NDB/k and JS (lower, in [0, 1])
        Richardson & Weiss 2018 ("On GANs and GMMs"): k-means bins on the training embeddings;
        NDB is the number of bins whose share of generated clips differs from the training
        share by a two-proportion z-test at ``alpha`` (0.05); NDB/k normalises it. JS is the
        Jensen-Shannon divergence (bits) between the two bin histograms. k defaults to 8 so
        that 40 generated clips put about 5 in a bin: with fewer, an empty bin is never
        significant and collapse goes unseen. The training side counts as one sample per
        loop: its noisy copies are not independent draws.
    diversity ratio (closer to 1; 0 = collapse)
        Mean pairwise Euclidean distance between generated embeddings over the same among
        training embeddings. A set of identical beats scores 0. It measures spread, not
        realism: loops shifted off the grid are as diverse as the training set by construction
        (the tempo and distribution metrics catch those), which is why the reference points add
        a "collapsed" set (one held-out loop repeated with faint noise).

Reference points (``TrainingReference.points``), scored in the same run against the same
training statistics, with as many clips as a generated batch (default 40): ``held_out`` (training
loops kept out of the fit: the level a perfect generator reaches, small-sample bias included),
``noise`` (white noise at the loudness of the held-out clips), ``silence``, ``shifted`` (held-out
loops rotated by half a beat) and ``collapsed``. A metric is only shipped when these fall on the
right side of ``held_out`` (see tests/test_metrics.py).

Usage: ``reference = TrainingReference.fit(train, config=config)`` once
(``reference.save(path)`` / ``TrainingReference.load(path)`` keep it), then
``evaluate(generated, reference)`` per batch -> ``MetricsReport`` with
``.to_dict()`` (JSON) and ``.summary()`` (text). Pass ``groups=np.repeat(np.arange(n_loops),
copies)`` for ``data.augment``'s loop-major output; without it, noisy copies are found as
near-duplicates.

Shapes: audio batches are ``(n, n_samples, channels)`` or ``(n, n_samples)`` float in [-1, 1] at
``config.sample_rate_hz`` with ``n_samples >= config.score_len``; embeddings are ``(n, dim)``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path
from typing import Any, Sequence

import librosa
import numpy as np
import scipy.ndimage
import scipy.sparse
import scipy.sparse.csgraph
import scipy.signal
import scipy.spatial.distance
import scipy.stats
from scipy.cluster.vq import vq
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from .config import FULL_SCALE_24, Config
from .goals import GOALS, N_GENERATED, goals_met

# --- tempo (onset) analysis -------------------------------------------------------------------
#: Onsets within this many ms of a grid position count as on the grid.
TEMPO_TOLERANCE_MS = 10.0
#: Upper edge of the band whose onsets fix the beat phase: kick drum and bass.
LOW_BAND_HZ = 200.0
#: Onset STFT: 256 taps (17 ms at 14.7 kHz) keep a hit's flux within a few ms; a longer window
#: smears it over its own length (measured: 64 % of a click within 10 ms at 512 taps, 100 % at 256).
ONSET_WINDOW_S = 256 / 14700
#: Onset hop (3.3 ms at 14.7 kHz): the time resolution of the grid test.
ONSET_HOP_S = 49 / 14700
#: SuperFlux reference: the maximum over this many previous frames and 3 neighbouring bins, so
#: that the noisy decay of a hat or the pitch sweep of a kick adds little flux after the attack.
ONSET_MAX_FRAMES = 3

# --- log-mel embedding --------------------------------------------------------------------------
MEL_BANDS = 32
MEL_FMIN_HZ = 30.0
MEL_WINDOW_S = 512 / 14700  # 35 ms
MEL_HOP_S = 147 / 14700  # 10 ms: 12 frames per 16th note at 125 bpm
#: Level (dB re full scale, RMS) of the white noise that sets the log-mel floor: above the
#: augmentation's hiss (about -63 dBFS), far below a drum hit.
MEL_FLOOR_DBFS = -55.0

DEFAULT_COMPONENTS = 16
DEFAULT_CLUSTERS = 8
DEFAULT_HELD_OUT = 40
NDB_ALPHA = 0.05

#: Which way each headline metric improves (for reports and plots).
DIRECTIONS = {
    "tempo_consistency": "higher",
    "frechet": "lower",
    "ndb_fraction": "lower",
    "js": "lower",
    "diversity_ratio": "closer to 1",
}
REFERENCE_NAMES = ("held_out", "noise", "silence", "shifted", "collapsed")


# === input ======================================================================================
def to_mono_segments(audio: np.ndarray, *, config: Config) -> np.ndarray:
    """``(n, n_samples[, channels])`` audio -> ``(n, config.score_len)`` float32 mono.

    Keeps the first ``score_len`` samples (the segment the model learns) and averages channels.
    """
    x = np.asarray(audio)
    if x.dtype.kind != "f":  # int16 PCM would score 90 dB too loud, not fail
        raise ValueError(f"expected float audio in [-1, 1], got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[:, : config.score_len].mean(axis=2, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"audio must be (n, n_samples, channels) or (n, n_samples), got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("audio holds no clips")
    if x.shape[1] < config.score_len:
        raise ValueError(f"clips must hold at least score_len={config.score_len} samples "
                         f"({config.beats} beats at {config.bpm} bpm), got {x.shape[1]}")
    x = np.ascontiguousarray(x[:, : config.score_len], dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError("audio holds NaN or infinite values")
    return x


def _samples(seconds: float, config: Config) -> int:
    return max(1, int(round(seconds * config.sample_rate_hz)))


def _chunks(n: int, size: int = 256):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


# === tempo consistency ==========================================================================
def onset_bands(mono: np.ndarray, *, config: Config,
                split_hz: Sequence[float] = (LOW_BAND_HZ,)) -> tuple[np.ndarray, np.ndarray]:
    """SuperFlux onset strength of ``(n, n_samples)`` mono clips, per frequency band.

    The bands run from the first bin above DC to the top, split at ``split_hz`` (ascending, Hz;
    each edge rounds down to an STFT bin). Returns ``(times_s, flux)``: frame times ``(T,)`` in
    seconds from the first sample and the flux ``(n, len(split_hz) + 1, T)`` summed over each
    band's bins.
    """
    n_fft, hop = _samples(ONSET_WINDOW_S, config), _samples(ONSET_HOP_S, config)
    edges = [max(1, int(hz * n_fft / config.sample_rate_hz)) + 1 for hz in split_hz]
    n_bins = n_fft // 2 + 1
    if edges != sorted(set(edges)) or edges[-1] >= n_bins:
        raise ValueError(f"split_hz must rise by at least one STFT bin below "
                         f"{config.sample_rate_hz / 2:g} Hz, got {tuple(split_hz)}")
    # Silence before the clip, so that the hit on sample 0 (the downbeat) shows as an onset;
    # each clip's mean taken out first, or a DC offset would step up there as one (a constant
    # clip scored 1).
    centred = mono - mono.mean(axis=1, keepdims=True)
    padded = np.pad(centred, ((0, 0), (n_fft, n_fft // 2)))
    flux = []
    for part in _chunks(len(mono), 64):
        log_mag = np.log1p(np.abs(librosa.stft(padded[part], n_fft=n_fft, hop_length=hop,
                                               center=False)))  # (n, bins, T)
        # Reference by hand: librosa's max_size filters frequency only; without the maximum over
        # time too, held-out loops fall from 0.75 to 0.67 and their lead over shifted ones shrinks.
        # Before the first frame is silence (0, as log1p of a zero magnitude): scipy's default
        # edge mode mirrors the frames after it, which put the downbeat into its own reference.
        ref = scipy.ndimage.maximum_filter1d(log_mag, ONSET_MAX_FRAMES, axis=2,
                                             origin=(ONSET_MAX_FRAMES - 1) // 2,
                                             mode="constant", cval=0.0)
        ref = scipy.ndimage.maximum_filter1d(ref, 3, axis=1)
        # Bins [1, edge), ..., [edge, top); librosa pads the first frame (no predecessor): dropped.
        flux.append(librosa.onset.onset_strength_multi(S=log_mag, ref=ref, lag=1, center=False,
                                                       channels=[1, *edges, n_bins],
                                                       aggregate=np.sum)[..., 1:])
    flux = np.concatenate(flux)  # (n, bands, T - 1)
    # Frame t covers clip samples [t*hop - n_fft, t*hop); flux j compares frames j+1 and j, so
    # the samples that just entered the window tail are [j*hop, (j+1)*hop). A click's flux peaks
    # about one hop after it enters (the Hann tail is near zero): the one-hop lead puts the flux
    # peak of a click within 1 ms of the click (measured).
    times_s = (np.arange(flux.shape[-1]) - 0.5) * hop / config.sample_rate_hz
    return times_s, flux


def onset_envelopes(mono: np.ndarray, *, config: Config) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SuperFlux onset strength of ``(n, n_samples)`` mono clips.

    Returns ``(times_s, full, low)``: frame times ``(T,)`` in seconds from the first sample, and
    the flux ``(n, T)`` summed over all bins and over the bins up to ``LOW_BAND_HZ`` (DC left out).
    """
    times_s, flux = onset_bands(mono, config=config)
    return times_s, flux.sum(axis=1), flux[:, 0]


def grid_mask(times_s: np.ndarray, *, period_s: float, tolerance_ms: float) -> np.ndarray:
    """True where ``times_s`` lies within ``tolerance_ms`` of a multiple of ``period_s``."""
    phase = np.mod(times_s, period_s)
    distance_s = np.minimum(phase, period_s - phase)
    return distance_s <= tolerance_ms / 1000.0


def _share(envelope: np.ndarray, mask: np.ndarray) -> np.ndarray:
    total = envelope.sum(axis=1)
    on = envelope[:, mask].sum(axis=1)
    # No onset energy at all (silence) is not on the grid: 0, not 0/0.
    return np.divide(on, total, out=np.zeros_like(total), where=total > 1e-9)


def tempo_components(audio: np.ndarray, *, config: Config,
                     tolerance_ms: float = TEMPO_TOLERANCE_MS) -> tuple[np.ndarray, np.ndarray]:
    """``(grid_share, beat_share)``, each ``(n,)`` in [0, 1] (see the module docstring)."""
    mono = to_mono_segments(audio, config=config)
    times_s, full, low = onset_envelopes(mono, config=config)
    beat_s = 60.0 / config.bpm
    grid_share = _share(full, grid_mask(times_s, period_s=beat_s / 4, tolerance_ms=tolerance_ms))
    beat_share = _share(low, grid_mask(times_s, period_s=beat_s, tolerance_ms=tolerance_ms))
    return grid_share, beat_share


def tempo_consistency(audio: np.ndarray, *, config: Config,
                      tolerance_ms: float = TEMPO_TOLERANCE_MS) -> np.ndarray:
    """Per-clip tempo consistency ``(n,)`` in [0, 1], higher is better.

    The geometric mean of the share of onset energy on the 16th-note grid and the share of
    low-band onset energy on the beats, both measured from sample 0 (the downbeat) at
    ``config.bpm``. A click track on the beats scores 1, white noise about 0.2, silence 0.
    """
    grid_share, beat_share = tempo_components(audio, config=config, tolerance_ms=tolerance_ms)
    return np.sqrt(grid_share * beat_share)


# === grid log-mel embedding =====================================================================
@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate_hz: int, n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """Mel filters ``(bands, n_fft // 2 + 1)`` and each band's power for white noise at
    ``MEL_FLOOR_DBFS`` (the soft floor, ``(bands,)``)."""
    basis = librosa.filters.mel(sr=sample_rate_hz, n_fft=n_fft, n_mels=MEL_BANDS,
                                fmin=MEL_FMIN_HZ).astype(np.float32)
    window = scipy.signal.get_window("hann", n_fft)
    # White noise of variance s^2 has E|X_k|^2 = s^2 * sum(window^2) in every bin.
    noise_power = 10.0 ** (MEL_FLOOR_DBFS / 10.0) * np.sum(window ** 2)
    floor = (basis.sum(axis=1) * noise_power).astype(np.float32)
    basis.setflags(write=False)
    floor.setflags(write=False)
    return basis, floor


def log_mel(mono: np.ndarray, *, config: Config) -> np.ndarray:
    """Log-mel power ``(n, MEL_BANDS, T)`` of mono clips, in dB above a white-noise floor.

    ``10 log10(1 + P / floor)``, floor = the band's power for white noise at ``MEL_FLOOR_DBFS``:
    silence is 0 dB, and hiss below the floor (the augmentation adds about -63 dBFS) barely
    counts, so a clean clip and its noisy training copies embed alike. Frames are centred on
    multiples of the 10 ms hop, zero padded at the edges.
    """
    n_fft, hop = _samples(MEL_WINDOW_S, config), _samples(MEL_HOP_S, config)
    basis, floor = _mel_basis(config.sample_rate_hz, n_fft)
    parts = []
    for part in _chunks(len(mono)):
        power = np.abs(librosa.stft(mono[part], n_fft=n_fft, hop_length=hop,
                                    pad_mode="constant")) ** 2  # (n, bins, T)
        mel = basis @ power  # (n, bands, T)
        parts.append(10.0 * np.log10(1.0 + mel / floor[:, None]))
    return np.concatenate(parts).astype(np.float32)


def grid_slots(n_frames: int, *, config: Config) -> np.ndarray:
    """16th-note slot index ``(n_frames,)`` of each log-mel frame centre; -1 past the segment."""
    centres = np.arange(n_frames) * _samples(MEL_HOP_S, config)
    step = config.sample_rate_hz * 60.0 / config.bpm / 4
    slots = np.floor(centres / step).astype(int)
    slots[centres >= config.score_len] = -1
    return slots


def grid_logmel_embedding(audio: np.ndarray, *, config: Config) -> np.ndarray:
    """Per-clip embedding ``(n, MEL_BANDS * (n_slots + 1))`` in dB.

    For each mel band: its mean in each 16th-note slot of the segment (where in the bar the
    energy is, so a shifted loop moves), then its standard deviation over the segment (how
    punchy the band is).
    """
    mel = log_mel(to_mono_segments(audio, config=config), config=config)
    slots = grid_slots(mel.shape[2], config=config)
    n_slots = slots.max() + 1
    means = [mel[:, :, slots == k].mean(axis=2) for k in range(n_slots)]  # each (n, bands)
    spread = mel[:, :, slots >= 0].std(axis=2)
    return np.concatenate(means + [spread], axis=1).astype(np.float64)


# === distances between sets ======================================================================
def gaussian_stats(embedding: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(dim,)`` and covariance ``(dim, dim)`` (unbiased; zeros for a single clip)."""
    x = np.asarray(embedding, dtype=np.float64)
    cov = np.cov(x, rowvar=False) if len(x) > 1 else np.zeros((x.shape[1], x.shape[1]))
    return x.mean(axis=0), np.atleast_2d(cov)


def _sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance_gaussians(mean_a: np.ndarray, cov_a: np.ndarray,
                               mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Frechet (2-Wasserstein squared) distance between two Gaussians.

    ``|mean_a - mean_b|^2 + tr(cov_a + cov_b - 2 (cov_a cov_b)^(1/2))``. The trace of the
    matrix root is taken as ``tr((A^(1/2) B A^(1/2))^(1/2))``, a symmetric PSD form that has
    real eigenvalues (sqrtm of the non-symmetric product can come back complex).
    """
    root_a = _sqrtm_psd(cov_a)
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    cross = np.sqrt(np.clip(middle, 0.0, None)).sum()
    value = float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross)
    return max(value, 0.0)  # rounding can leave -1e-12 for identical sets


def frechet_distance(embedding_a: np.ndarray, embedding_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two ``(n, dim)`` embedding sets (units^2)."""
    return frechet_distance_gaussians(*gaussian_stats(embedding_a), *gaussian_stats(embedding_b))


def ndb_js_from_counts(counts: np.ndarray, reference_counts: np.ndarray, *,
                       alpha: float = NDB_ALPHA) -> tuple[int, float]:
    """``(ndb, js_bits)`` for bin counts ``(k,)`` against reference bin counts ``(k,)``.

    NDB: bins whose proportions differ by a two-sided two-proportion z-test (pooled variance)
    at ``alpha``. JS: Jensen-Shannon divergence in bits (0 equal, 1 disjoint).
    """
    counts = np.asarray(counts, dtype=np.float64)
    reference_counts = np.asarray(reference_counts, dtype=np.float64)
    n, n_ref = counts.sum(), reference_counts.sum()
    p, q = counts / n, reference_counts / n_ref
    pooled = (counts + reference_counts) / (n + n_ref)
    se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n + 1.0 / n_ref))
    z = np.divide(p - q, se, out=np.zeros_like(p), where=se > 0)
    ndb = int(np.sum(2.0 * scipy.stats.norm.sf(np.abs(z)) < alpha))
    return ndb, js_divergence(p, q)


def ndb_js(embedding: np.ndarray, *, reference: "TrainingReference",
           alpha: float = NDB_ALPHA) -> tuple[int, float]:
    """``(ndb, js_bits)`` of projected clips ``(n, d)`` in the k-means bins of ``reference``.

    The training side counts as ``reference.n_loops`` samples (its bin shares times that), not
    as every noisy copy, which would make the test too eager.
    """
    k = len(reference.centroids)
    counts = np.bincount(vq(np.asarray(embedding, dtype=np.float64), reference.centroids)[0], minlength=k)
    training = reference.counts * (reference.n_loops / reference.counts.sum())
    return ndb_js_from_counts(counts, training, alpha=alpha)


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (bits) between two histograms (normalised here)."""
    # scipy gives the JS distance, the square root of the divergence.
    return float(scipy.spatial.distance.jensenshannon(p, q, base=2) ** 2)


def mean_pairwise_distance(embedding: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs of ``(n, dim)`` rows; 0 for fewer than 2."""
    if len(embedding) < 2:
        return 0.0
    return float(scipy.spatial.distance.pdist(np.asarray(embedding, dtype=np.float64)).mean())


def diversity(embedding: np.ndarray, *, reference_spread: float) -> float:
    """Mean pairwise distance of a set over ``reference_spread`` (the same among training clips).

    1 = as varied as the training set, 0 = all identical (mode collapse).
    """
    if reference_spread <= 0:
        raise ValueError("reference_spread must be positive (training clips all identical?)")
    return mean_pairwise_distance(embedding) / reference_spread


# === training reference ==========================================================================
def pca_basis(embedding: np.ndarray, *, n_components: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``(centre (dim,), components (d, dim), kept variance fraction)`` of ``(n, dim)`` rows."""
    d = max(1, min(n_components, len(embedding) - 1, embedding.shape[1]))
    # covariance_eigh: exact and deterministic, and fast for thousands of clips of a few hundred
    # dims (the "auto" choice would be randomized SVD here).
    pca = PCA(n_components=d, svd_solver="covariance_eigh").fit(embedding)
    kept = float(pca.explained_variance_ratio_.sum()) if pca.explained_variance_.sum() > 0 else 1.0
    return pca.mean_, pca.components_, kept


def infer_groups(embedding: np.ndarray, *, relative_tolerance: float = 0.01) -> np.ndarray:
    """Group ids ``(n,)``: clips closer than ``relative_tolerance`` of the median pairwise
    distance are one group (the noisy copies ``data.augment`` makes of a loop).

    Holding out a loop while a noisy copy of it stays in the fit would make ``held_out`` look
    better than any new loop can, so reference splits are drawn by group.
    """
    centre, components, _ = pca_basis(embedding, n_components=16)
    z = (embedding - centre) @ components.T
    sample = z[np.random.default_rng(0).permutation(len(z))[:500]]
    scale = np.median(scipy.spatial.distance.pdist(sample)) if len(sample) > 1 else 0.0
    if scale <= 0:
        return np.zeros(len(z), dtype=int)
    pairs = scipy.spatial.cKDTree(z).query_pairs(relative_tolerance * scale, output_type="ndarray")
    graph = scipy.sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])),
                                    shape=(len(z), len(z)))
    return scipy.sparse.csgraph.connected_components(graph, directed=False)[1]


def _kmeans(z: np.ndarray, k: int, rng: np.random.Generator, n_init: int = 5) -> np.ndarray:
    """Centroids ``(k, d)``: the best (least squared error) of ``n_init`` seeded k-means++ runs."""
    seed = int(rng.integers(2 ** 31))
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(z).cluster_centers_


def held_out_split(groups: np.ndarray, n_held_out: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``TrainingReference.fit``'s split: ``(held, fit_rows)`` for clips with source ids ``groups``.

    ``held``: one clip index from each of ``n_held_out`` random groups (at most half of them);
    ``fit_rows``: boolean mask of the clips whose group is not held out. Draws from ``rng``.
    """
    unique = rng.permutation(np.unique(groups))
    held_groups = unique[:min(n_held_out, len(unique) // 2)]
    held = np.array([rng.choice(np.flatnonzero(groups == g)) for g in held_groups], dtype=int)
    return held, ~np.isin(groups, held_groups)


@dataclasses.dataclass(frozen=True, eq=False)
class TrainingReference:
    """Training-side statistics, computed once by ``fit`` and reused for every generated batch.

    Attributes (``d`` PCA components, ``k`` bins)
        config: the audio spec the clips follow.
        centre, components: PCA of the grid log-mel embedding, ``(dim,)`` and ``(d, dim)``.
        kept_variance: fraction of the embedding variance the components keep.
        mean, cov: Gaussian of the projected training clips, ``(d,)`` and ``(d, d)``.
        centroids, counts: k-means bins ``(k, d)`` and training clips per bin ``(k,)``.
        spread: mean pairwise distance among the training clips (dB, projected).
        n_train: clips in the fit (the held-out loops and their copies excluded).
        n_loops: distinct loops (groups) among them: the sample size of the proportions test,
            since the noisy copies of a loop are not independent draws.
        points: reference points, name -> metric -> value (see ``REFERENCE_NAMES``).
        n_reference: clips in each reference set.
    """

    config: Config
    centre: np.ndarray
    components: np.ndarray
    kept_variance: float
    mean: np.ndarray
    cov: np.ndarray
    centroids: np.ndarray
    counts: np.ndarray
    spread: float
    n_train: int
    n_loops: int
    points: dict[str, dict[str, float]]
    n_reference: int

    @classmethod
    def fit(cls, train: np.ndarray, *, config: Config, seed: int | np.random.Generator = 0,
            n_clusters: int = DEFAULT_CLUSTERS, n_components: int = DEFAULT_COMPONENTS,
            n_held_out: int = DEFAULT_HELD_OUT, groups: np.ndarray | None = None) -> "TrainingReference":
        """Fit on training segments ``(n, n_samples, channels)`` and score the reference points.

        ``n_held_out`` loops (one clip from each of as many groups; ``groups`` gives each clip's
        source loop, inferred from near-duplicates when ``None``) are kept out of the fit and
        form the reference sets; use the size of a generated batch. ``seed`` fixes the split,
        the noise and k-means.
        """
        rng = np.random.default_rng(seed)
        raw = grid_logmel_embedding(train, config=config)
        groups = infer_groups(raw) if groups is None else np.asarray(groups)
        if groups.shape != (len(raw),):
            raise ValueError(f"groups must hold one id per clip ({len(raw)}), got shape {groups.shape}")
        # 1. Split by group: the held-out loops and all their copies leave the fit.
        held, fit_rows = held_out_split(groups, n_held_out, rng)
        # 2. Training statistics in the PCA space of the fit set.
        centre, components, kept = pca_basis(raw[fit_rows], n_components=n_components)
        z = (raw[fit_rows] - centre) @ components.T
        mean, cov = gaussian_stats(z)
        k = max(1, min(n_clusters, len(z)))
        centroids = _kmeans(z, k, rng)
        counts = np.bincount(vq(z, centroids)[0], minlength=k)
        spread = mean_pairwise_distance(z[rng.permutation(len(z))[:1500]])
        reference = cls(config=config, centre=centre, components=components, kept_variance=kept,
                        mean=mean, cov=cov, centroids=centroids, counts=counts, spread=spread,
                        n_train=int(fit_rows.sum()), n_loops=len(np.unique(groups[fit_rows])),
                        points={}, n_reference=len(held))
        # 3. Reference points against these statistics.
        if len(held) >= 2:
            sets = reference_sets(np.asarray(train)[held], config=config, rng=rng)
            reference.points.update({name: _score(audio, reference)[0] for name, audio in sets.items()})
        return reference

    def save(self, path: str | os.PathLike) -> Path:
        """Write to one ``.npz`` file (arrays, the config and the reference points as JSON)."""
        path = Path(path)
        arrays = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if isinstance(getattr(self, f.name), np.ndarray)}
        scalars = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                   if f.name not in arrays and f.name != "config"}
        with path.open("wb") as f:  # a file object: numpy would append .npz to a bare name
            np.savez(f, **arrays, config=json.dumps(self.config.to_dict()), scalars=json.dumps(scalars))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainingReference":
        """Read a file written by ``save``."""
        with np.load(Path(path)) as data:
            arrays = {k: data[k] for k in data.files if k not in ("config", "scalars")}
            config = Config.from_dict(json.loads(str(data["config"])))
            scalars = json.loads(str(data["scalars"]))
        return cls(config=config, **arrays, **scalars)

    def project(self, audio: np.ndarray) -> np.ndarray:
        """Audio ``(n, n_samples[, channels])`` -> projected embedding ``(n, d)`` (dB)."""
        raw = grid_logmel_embedding(audio, config=self.config)
        return (raw - self.centre) @ self.components.T


def reference_sets(held_out: np.ndarray, *, config: Config,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The reference audio sets, each ``(n, score_len, channels)`` like ``held_out``."""
    real = np.asarray(held_out, dtype=np.float32)[:, : config.score_len]
    if real.ndim == 2:
        real = real[:, :, None]
    rms = np.sqrt(np.mean(real ** 2, axis=(1, 2), keepdims=True))
    half_beat = int(round(config.sample_rate_hz * 60.0 / config.bpm / 2))
    # Faint noise, as loud as the augmentation's, keeps the collapsed copies from being exact.
    faint = config.noise_amplitude / FULL_SCALE_24
    return {
        "held_out": real,
        "noise": np.clip(rng.standard_normal(real.shape) * rms, -1, 1).astype(np.float32),
        "silence": np.zeros_like(real),
        # A loop is periodic, so rotating it is the same loop started half a beat late.
        "shifted": np.roll(real, half_beat, axis=1),
        "collapsed": np.clip(real[:1] + rng.uniform(-faint, faint, real.shape), -1, 1).astype(np.float32),
    }


def _score(audio: np.ndarray, reference: TrainingReference) -> tuple[dict[str, float], np.ndarray, dict[str, float]]:
    """Headline metrics (dict), per-clip tempo consistency ``(n,)`` and tempo details."""
    config = reference.config
    grid_share, beat_share = tempo_components(audio, config=config)
    tempo = np.sqrt(grid_share * beat_share)
    z = reference.project(audio)
    mean, cov = gaussian_stats(z)
    k = len(reference.centroids)
    ndb, js = ndb_js(z, reference=reference)
    headline = {
        "tempo_consistency": float(tempo.mean()),
        "frechet": frechet_distance_gaussians(mean, cov, reference.mean, reference.cov),
        "ndb_fraction": ndb / k,
        "js": js,
        "diversity_ratio": diversity(z, reference_spread=reference.spread),
    }
    details = {"ndb": ndb, "tempo_grid_share": float(grid_share.mean()),
               "tempo_beat_share": float(beat_share.mean())}
    return headline, tempo, details


# === report ======================================================================================
_LABELS = {
    "tempo_consistency": "tempo consistency",
    "frechet": "Frechet distance (dB^2)",
    "ndb_fraction": "NDB/k",
    "js": "JS divergence (bits)",
    "diversity_ratio": "diversity ratio",
}


@dataclasses.dataclass(frozen=True)
class MetricsReport:
    """Metrics of one generated batch with the reference points of the same training reference.

    ``metrics``: headline metric -> value (keys of ``DIRECTIONS``); ``tempo_per_beat``: ``(n,)``;
    ``details``: NDB count, tempo grid/beat shares; ``reference_points``: name -> metrics.
    """

    n_generated: int
    metrics: dict[str, float]
    tempo_per_beat: np.ndarray
    details: dict[str, float]
    reference_points: dict[str, dict[str, float]]
    n_reference: int
    n_train: int
    n_loops: int
    n_bins: int
    n_components: int
    kept_variance: float

    def to_dict(self) -> dict[str, Any]:
        """Plain floats, ints, strings and lists only: ``json.dumps`` takes it as it is."""
        return {
            "n_generated": self.n_generated,
            "metrics": {k: float(v) for k, v in self.metrics.items()},
            "directions": dict(DIRECTIONS),
            "tempo_per_beat": [float(v) for v in self.tempo_per_beat],
            "details": {k: float(v) for k, v in self.details.items()},
            "reference_points": {name: {k: float(v) for k, v in values.items()}
                                 for name, values in self.reference_points.items()},
            "n_reference": self.n_reference,
            "goals_met": self.goals_met(),
            "n_train": self.n_train,
            "n_loops": self.n_loops,
            "n_bins": self.n_bins,
            "n_components": self.n_components,
            "kept_variance": float(self.kept_variance),
        }

    def goals_met(self) -> dict[str, bool | None]:
        """The shipping goals (``beatgan.goals``) judged beside the held-out point: metric ->
        met, None for each when there is no held-out point."""
        return goals_met(self.metrics, self.reference_points.get("held_out"))

    def summary(self) -> str:
        """A readable table: generated beats beside each reference point, with directions; then
        the shipping goals judged beside the held-out loops."""
        names = [n for n in REFERENCE_NAMES if n in self.reference_points]
        header = f"{'metric':<26}{'better':<14}{'generated':>10}" + "".join(f"{n:>11}" for n in names)
        lines = [f"Beat metrics: {self.n_generated} generated beats against {self.n_train} training "
                 f"segments of {self.n_loops} loops (grid log-mel, PCA {self.n_components} dims keeping "
                 f"{100 * self.kept_variance:.0f} % of the variance; {self.n_bins} k-means bins)",
                 header, "-" * len(header)]
        for key, label in _LABELS.items():
            row = f"{label:<26}{DIRECTIONS[key]:<14}{self.metrics[key]:>10.3f}"
            row += "".join(f"{self.reference_points[n][key]:>11.3f}" for n in names)
            lines.append(row)
        lines.append(f"tempo: {self.details['tempo_grid_share']:.2f} of onset energy on the 16th grid, "
                     f"{self.details['tempo_beat_share']:.2f} of low-band onset energy on the beats; "
                     f"per beat min {self.tempo_per_beat.min():.2f}, max {self.tempo_per_beat.max():.2f}")
        if names:
            lines.append(f"Reference points: {self.n_reference} clips each; held_out = real loops kept "
                         f"out of the fit (what a perfect generator scores).")
            if self.n_reference != self.n_generated:
                lines.append(f"Note: {self.n_generated} generated vs {self.n_reference} reference clips: "
                             "Frechet, NDB and JS depend on the set size, compare with care.")
        met = self.goals_met()
        if any(ok is not None for ok in met.values()):
            said = [f"{_LABELS[key].split(' (')[0]} {GOALS[key].text}: "
                    f"{'yes' if ok else 'NO'}" for key, ok in met.items() if ok is not None]
            lines.append(f"Shipping goals (beatgan.goals), {sum(ok is True for ok in met.values())} "
                         f"of {len(said)} met: " + "; ".join(said))
            if (self.n_generated, self.n_reference) != (N_GENERATED, DEFAULT_HELD_OUT):
                lines.append(f"(The goals are set for {N_GENERATED} beats beside {DEFAULT_HELD_OUT} "
                             f"held-out loops; a verdict on {self.n_generated} beats beside "
                             f"{self.n_reference} is a rougher one.)")
        return "\n".join(lines)


def evaluate(generated: np.ndarray, reference: TrainingReference) -> MetricsReport:
    """All metrics of generated beats ``(n, n_samples[, channels])`` against ``reference``."""
    metrics, tempo, details = _score(generated, reference)
    return MetricsReport(
        n_generated=len(tempo), metrics=metrics, tempo_per_beat=tempo, details=details,
        reference_points={k: dict(v) for k, v in reference.points.items()},
        n_reference=reference.n_reference, n_train=reference.n_train, n_loops=reference.n_loops,
        n_bins=len(reference.centroids), n_components=len(reference.components),
        kept_variance=reference.kept_variance)


def reference_points(train: np.ndarray, *, config: Config, rng: np.random.Generator,
                     n: int = DEFAULT_HELD_OUT, **fit_options: Any) -> dict[str, dict[str, float]]:
    """Metric values of each reference set (``REFERENCE_NAMES``), ``n`` clips each.

    A shortcut for ``TrainingReference.fit(train, ...).points``; keep the reference when
    generated beats are to be scored too, so the training side is computed once.
    """
    return TrainingReference.fit(train, config=config, seed=rng, n_held_out=n, **fit_options).points
