"""The shipping goals: each bound is inclusive, judged beside the held-out loops, and a
diverged generator's missing figures fail rather than pass."""

import math

import pytest

from beatgan.goals import GOALS, count_met, goals_met

HELD_OUT = {"tempo_consistency": 0.75, "frechet": 1000.0, "ndb_fraction": 0.125,
            "diversity_ratio": 0.97}


def test_the_four_goals_and_their_bounds():
    assert list(GOALS) == ["tempo_consistency", "frechet", "ndb_fraction", "diversity_ratio"]
    edge = {"tempo_consistency": 0.70, "frechet": 3000.0, "ndb_fraction": 0.25,
            "diversity_ratio": 0.8}
    assert goals_met(edge, HELD_OUT) == dict.fromkeys(GOALS, True)  # bounds are inclusive
    assert goals_met({**edge, "diversity_ratio": 1.2}, HELD_OUT)["diversity_ratio"] is True
    past = {"tempo_consistency": 0.6999, "frechet": 3000.5, "ndb_fraction": 0.2501,
            "diversity_ratio": 1.2001}
    assert goals_met(past, HELD_OUT) == dict.fromkeys(GOALS, False)
    assert goals_met({**edge, "diversity_ratio": 0.7999}, HELD_OUT)["diversity_ratio"] is False


def test_a_mean_on_the_edge_meets_its_goal_despite_float_rounding():
    mean = sum([0.69, 0.70, 0.71]) / 3
    assert mean < 0.70  # 0.6999999999999998
    upper = sum([1.0, 1.03, 1.57]) / 3
    assert upper > 1.2  # 1.2000000000000002
    met = goals_met({"tempo_consistency": mean, "frechet": 3 * 1000.0 * (1 + 1e-12),
                     "diversity_ratio": upper, "ndb_fraction": 0.25}, HELD_OUT)
    assert met == dict.fromkeys(GOALS, True)
    assert goals_met({"tempo_consistency": 0.70 - 1e-6}, HELD_OUT)["tempo_consistency"] is False


def test_frechet_is_judged_against_three_times_the_held_out_point():
    values = {"frechet": 2500.0}
    assert goals_met(values, {**HELD_OUT, "frechet": 900.0})["frechet"] is True
    assert goals_met(values, {**HELD_OUT, "frechet": 800.0})["frechet"] is False


def test_missing_figures_fail_and_missing_references_are_not_judged():
    met = goals_met({"tempo_consistency": math.nan, "frechet": None, "ndb_fraction": 0.0},
                    HELD_OUT)
    assert met == {"tempo_consistency": False, "frechet": False, "ndb_fraction": True,
                   "diversity_ratio": False}
    assert goals_met({"tempo_consistency": 0.9}, None) == dict.fromkeys(GOALS, None)
    assert goals_met({"frechet": 10.0}, {"frechet": math.inf})["frechet"] is None


@pytest.mark.parametrize("values, expected", [
    ({"tempo_consistency": 0.694, "frechet": 1734.0, "ndb_fraction": 0.125,
      "diversity_ratio": 0.808}, 3),  # the shipped weights at seed 0, held-out Frechet 1,000
    ({"tempo_consistency": 0.704, "frechet": 1696.0, "ndb_fraction": 0.0,
      "diversity_ratio": 0.803}, 4),
    ({}, 0),
])
def test_count_met(values, expected):
    assert count_met(values, HELD_OUT) == expected


def test_count_met_counts_an_unjudged_goal_as_not_met():
    # All four figures clear their bars; only the judgeable ones may count.
    values = {"tempo_consistency": 0.8, "frechet": 10.0, "ndb_fraction": 0.0,
              "diversity_ratio": 1.0}
    assert count_met(values, HELD_OUT) == 4
    assert count_met(values, {**HELD_OUT, "frechet": math.inf}) == 3  # Frechet unjudged
    assert count_met(values, {"tempo_consistency": 0.75}) == 1  # three references missing
    assert count_met(values, None) == 0
