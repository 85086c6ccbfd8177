"""Spot the moment a WGAN-GP run loses its footing, from the rows of its training history.

A healthy critic's Wasserstein estimate moves slowly: it falls from tens to a few units over
thousands of iterations. When the critic stops being near 1-Lipschitz the estimate jumps by an
order of magnitude within a few log intervals and then swings in both signs by hundreds or
thousands; the generator follows those swings and what it learned is lost. The rule below
(a jump to more than ``factor`` times the median magnitude of the last ``window`` rows, and
above ``floor``) is a heuristic. Its defaults flag the 2026-11-27 H200 run
(docs/training-runs/) first at iteration 3930, where its curves turn, and nowhere before.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable, Mapping

import numpy as np


class TrainingInstabilityWarning(UserWarning):
    """The critic's Wasserstein estimate jumped: the run has likely become unstable."""


class InstabilityMonitor:
    """Watch history rows (dicts with ``step`` and ``wasserstein``) for the first jump.

    ``window``: rows of recent history the jump is measured against (50 rows at the default
    ``log_every`` of 10 is 500 iterations); ``min_rows``: rows needed before any judgement;
    ``factor`` and ``floor``: a row is a jump when ``|wasserstein| > max(floor, factor * median)``.
    ``unstable_at`` is the step of the first jump (None until one is seen).
    """

    def __init__(self, *, window: int = 50, min_rows: int = 10, factor: float = 10.0,
                 floor: float = 20.0):
        if not (window >= min_rows >= 1 and factor > 1.0 and floor >= 0.0):
            raise ValueError("need window >= min_rows >= 1, factor > 1 and floor >= 0")
        self.factor, self.floor, self.min_rows = float(factor), float(floor), int(min_rows)
        self._recent: deque[float] = deque(maxlen=int(window))
        self.unstable_at: int | None = None
        self.jump: tuple[float, float] | None = None  # (recent median |W|, |W| of the jump)

    def observe(self, row: Mapping[str, float]) -> bool:
        """Take one history row; True only for the first row that is a jump."""
        magnitude = abs(float(row["wasserstein"]))
        first = False
        if self.unstable_at is None and len(self._recent) >= self.min_rows:
            median = float(np.median(self._recent))
            if magnitude > max(self.floor, self.factor * median):
                self.unstable_at = int(row["step"])
                self.jump = (median, magnitude)
                first = True
        self._recent.append(magnitude)
        return first

    def observe_all(self, rows: Iterable[Mapping[str, float]]) -> None:
        """Take earlier rows silently (a resumed run's history)."""
        for row in rows:
            self.observe(row)

    def message(self) -> str:
        """What happened, in one line (after the first jump)."""
        if self.unstable_at is None:
            return "no jump seen"
        median, magnitude = self.jump
        return (f"the critic's Wasserstein estimate jumped to {magnitude:.3g} at iteration "
                f"{self.unstable_at} (its recent median was {median:.3g}): training has likely "
                f"become unstable")
