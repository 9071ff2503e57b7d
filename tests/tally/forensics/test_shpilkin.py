"""Shpilkin's estimate: about 0 on a clean control, positive on planted stuffing."""

from __future__ import annotations

import numpy as np

from tally.forensics.shpilkin import shpilkin_estimate


def election(n: int, stuffed: float, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    reg = rng.integers(500, 3000, n)
    turnout = np.clip(rng.normal(0.55, 0.08, n), 0.1, 0.95)
    issued = rng.binomial(reg, turnout)
    leader = rng.binomial(issued, 0.5)  # share independent of turnout
    others = issued - leader
    planted = rng.random(n) < stuffed
    extra = (rng.uniform(0.2, 0.8, n) * (reg - issued)).astype(np.int64) * planted
    return reg, issued + extra, leader + extra, others, int(extra.sum())


def test_clean_control_about_zero() -> None:
    reg, issued, leader, others, _ = election(20000, 0.0, 1)
    res = shpilkin_estimate(reg, issued, leader, others, bootstrap=100)
    assert abs(res["share_of_leader_votes"]) < 0.01
    lo, hi = res["anomalous_votes_ci95"]
    assert lo < 0.01 * leader.sum() and hi > -0.01 * leader.sum()
    assert "turnout" in res["assumption"]


def test_planted_stuffing_positive() -> None:
    reg, issued, leader, others, extra = election(20000, 0.2, 2)
    res = shpilkin_estimate(reg, issued, leader, others, bootstrap=50)
    assert res["anomalous_votes"] > 0.5 * extra
    assert res["anomalous_votes"] < 1.5 * extra
    assert res["anomalous_votes_ci95"][0] > 0


def test_missing_and_degenerate() -> None:
    res = shpilkin_estimate(np.array([-1, 0]), np.array([5, 0]), np.array([1, 0]), np.array([1, 0]))
    assert res["anomalous_votes"] is None and res["stations_excluded"] == 2
