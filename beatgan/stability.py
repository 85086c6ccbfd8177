"""Spot the moment a WGAN-GP run loses its footing, from the rows of its training history.

A healthy critic's Wasserstein estimate moves slowly: it falls from tens to a few units over
thousands of iterations. When the critic stops being near 1-Lipschitz the estimate jumps by an
order of magnitude within a few log intervals and then swings in both signs by hundreds or
thousands; the generator follows those swings and what it learned is lost. The rule below
(a jump to more than ``factor`` times the median magnitude of the last ``window`` rows, and
above ``floor``) is a heuristic. Its defaults flag the 2026-11-27 H200 run
(docs/training-runs/) first at iteration 3930, where its curves turn, and nowhere before.

The first ``min_step`` iterations are not judged: a fresh critic's estimate rises from near zero
by two orders of magnitude while it learns to tell real from generated (a d = 2 model: 0.02 at
iteration 20, 49 at 110), and in an established run's blow-up it rises at the same pace (the
H200 run: 0.9, 1.9, 7.4, 18, 38, 97 over its last six rows). Only the context differs: a long
plateau before the jump.

The monitor also remembers the last *calm* row, one within ``calm_factor`` times the median of
the rows before it: the rise to a jump takes a few rows (above, 18 and 38 came before 97), so a
run that goes back to a healthy state goes back to a checkpoint saved at or before that row.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable, Mapping

import numpy as np


#: Run-folder file listing each rollback with the history rows it discarded
#: (``beatgan.training``, ``on_instability="rollback"``).
INSTABILITY_LOG = "instability.json"


class TrainingInstabilityWarning(UserWarning):
    """The critic's Wasserstein estimate jumped: the run has likely become unstable."""


class InstabilityMonitor:
    """Watch history rows (dicts with ``step`` and ``wasserstein``) for the first jump.

    ``window``: rows of recent history the jump is measured against (50 rows at the default
    ``log_every`` of 10 is 500 iterations); ``min_rows``: rows needed before any judgement;
    ``factor`` and ``floor``: a row is a jump when ``|wasserstein| > max(floor, factor * median)``;
    ``min_step``: rows of earlier iterations are not judged (a new critic's warm-up; default
    ``DEFAULT_MIN_STEP``, training passes a warm start's longer ``critic_warmup``).
    ``unstable_at`` is the step of the first jump (None until one is seen); ``calm_step`` the
    step of the last row before it whose ``|wasserstein|`` was at most ``calm_factor`` times the
    recent median (every row counts as calm until ``min_rows`` rows are seen; None before any).
    """

    #: Iterations a fresh critic's rise is allowed from the start of a run.
    DEFAULT_MIN_STEP = 1000

    def __init__(self, *, window: int = 50, min_rows: int = 10, factor: float = 10.0,
                 floor: float = 20.0, min_step: int = DEFAULT_MIN_STEP, calm_factor: float = 2.0):
        if not (window >= min_rows >= 1 and factor > 1.0 and floor >= 0.0 and min_step >= 0
                and factor >= calm_factor >= 1.0):
            raise ValueError("need window >= min_rows >= 1, factor > 1, floor >= 0, "
                             "min_step >= 0 and factor >= calm_factor >= 1")
        self.factor, self.floor, self.min_rows = float(factor), float(floor), int(min_rows)
        self.min_step, self.calm_factor = int(min_step), float(calm_factor)
        self._recent: deque[float] = deque(maxlen=int(window))
        self.unstable_at: int | None = None
        self.calm_step: int | None = None
        self.jump: tuple[float, float] | None = None  # (recent median |W|, |W| of the jump)

    def observe(self, row: Mapping[str, float]) -> bool:
        """Take one history row; True only for the first row that is a jump."""
        magnitude = abs(float(row["wasserstein"]))
        first = False
        enough = len(self._recent) >= self.min_rows
        median = float(np.median(self._recent)) if enough else 0.0
        if self.unstable_at is None and enough and row["step"] >= self.min_step:
            if magnitude > max(self.floor, self.factor * median):
                self.unstable_at = int(row["step"])
                self.jump = (median, magnitude)
                first = True
        if self.unstable_at is None and (not enough or magnitude <= self.calm_factor * median):
            self.calm_step = int(row["step"])
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
