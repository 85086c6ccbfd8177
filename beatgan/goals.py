"""The bar a generator must clear to ship: four beat metrics, judged beside held-out real loops.

``metrics.evaluate`` gives the figures; ``metrics.TrainingReference.points["held_out"]`` gives the
same figures for real loops kept out of the reference's fit, which is what "3x held-out" means.
One statement, used by ``beatgan select --metric goals``, ``beatgan score --metrics``,
``bench/bench_quality.py`` and the model card (``docs/make_model_card.py``):

    tempo consistency   >= 0.70             (held-out loops: about 0.78)
    Frechet distance    <= 3x held-out
    NDB/k               <= 0.25
    diversity ratio     0.8-1.2
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Mapping


#: Relative slack at a goal's ends: float rounding, far below any figure's printed digits.
EDGE_TOLERANCE = 1e-9


@dataclasses.dataclass(frozen=True)
class Goal:
    """``name``: the metric's short name in tables and plots; ``text``: the goal as people read
    it; ``bounds(held_out)``: the (lowest, highest) value that clears it, ``held_out`` being the
    same metric of the held-out real loops (infinite where the goal has no such end)."""

    name: str
    text: str
    bounds: Callable[[float], tuple[float, float]]

    def meets(self, value: float, held_out: float) -> bool:
        """Whether ``value`` lies within ``bounds(held_out)``, ends included, to within float
        rounding (a mean of 0.69, 0.70 and 0.71 is 0.6999999999999998 and meets ">= 0.70")."""
        lowest, highest = self.bounds(held_out)
        return (lowest <= value or math.isclose(value, lowest, rel_tol=EDGE_TOLERANCE)) and \
            (value <= highest or math.isclose(value, highest, rel_tol=EDGE_TOLERANCE))


#: The draw the goals are set for: this many generated beats, beside ``metrics.DEFAULT_HELD_OUT``
#: (40) held-out loops. Even this draw is noisy: the shipped weights' tempo consistency reads
#: 0.733-0.742 over six draws of 200 beats.
N_GENERATED = 200

#: Metric key (``metrics.DIRECTIONS``) -> its goal.
GOALS: dict[str, Goal] = {
    "tempo_consistency": Goal("tempo", ">= 0.70", lambda held_out: (0.70, math.inf)),
    "frechet": Goal("Frechet", "<= 3x held-out", lambda held_out: (-math.inf, 3 * held_out)),
    "ndb_fraction": Goal("NDB/k", "<= 0.25", lambda held_out: (-math.inf, 0.25)),
    "diversity_ratio": Goal("diversity", "0.8-1.2", lambda held_out: (0.8, 1.2)),
}


def goals_met(values: Mapping[str, float],
              held_out: Mapping[str, float] | None) -> dict[str, bool | None]:
    """Metric -> whether ``values`` meets its goal. None where there is nothing to judge by (no
    finite held-out point for that metric); a missing or non-finite value (a diverged
    generator's) does not meet its goal."""
    held_out = held_out or {}
    out: dict[str, bool | None] = {}
    for key, goal in GOALS.items():
        value, reference = values.get(key), held_out.get(key)
        if reference is None or not math.isfinite(reference):
            out[key] = None
        else:
            out[key] = value is not None and math.isfinite(value) and \
                bool(goal.meets(value, reference))
    return out


def count_met(values: Mapping[str, float], held_out: Mapping[str, float] | None) -> int:
    """How many of the goals ``values`` meets (an unjudged one counts as not met)."""
    return sum(ok is True for ok in goals_met(values, held_out).values())
