"""The novelty report: which training loops each generated beat is nearest, how many are similar.

``novelty_report`` turns ``beatgan.similarity`` matrices into the counts, the nearest training
loops of each beat, a readable table (``NoveltyReport.table``) and a JSON-able dict
(``.to_dict``); ``score_novelty`` computes the matrices and the report in one call.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from .config import Config
from .similarity import SIMILAR_THRESHOLD, ms_to_samples, shift_tolerant_similarity, similarity_matrix


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
        max_shift_samples: the lag bound used for ``shift_matrix`` (for the report's text);
            required with it.
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
        if max_shift_samples is None:  # the largest lag found need not be the bound searched
            raise ValueError("give max_shift_samples, the lag bound of shift_matrix, with it")
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
