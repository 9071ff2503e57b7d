"""Clean-station estimates: the interval covers the truth on clean synthetic data."""

from __future__ import annotations

import numpy as np

from tally.forensics.estimates import clean_station_estimates


def make(seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n = 3000
    region = np.array([f"r{i % 5}" for i in range(n)])
    reg = rng.integers(200, 2000, n)
    issued = rng.binomial(reg, 0.6)
    p = np.array([0.5, 0.3, 0.2])
    votes = np.stack([rng.multinomial(int(i), p) for i in issued])
    return region, reg, issued, votes, p


def test_interval_covers_truth_on_clean_data() -> None:
    region, reg, issued, votes, p = make(1)
    excluded = np.zeros(reg.size, dtype=bool)
    excluded[::7] = True
    res = clean_station_estimates(region, reg, issued, votes, ["a", "b", "c"], excluded)
    nat = res["national"]
    for opt, truth in zip(["a", "b", "c"], p, strict=True):
        lo, hi = nat["options"][opt]["ci95"]
        assert lo <= truth <= hi
    lo, hi = nat["turnout_ci95"]
    assert lo <= 0.6 <= hi
    assert res["stations_with_proof_flag"] == excluded.sum()
    assert res["assumptions"]


def test_falsified_stations_excluded_change_the_estimate() -> None:
    region, reg, issued, votes, _ = make(2)
    bad = np.arange(0, reg.size, 5)
    votes2 = votes.copy()
    votes2[bad, 0] += votes2[bad, 1]
    votes2[bad, 1] = 0
    excl = np.zeros(reg.size, dtype=bool)
    excl[bad] = True
    res = clean_station_estimates(region, reg, issued, votes2, ["a", "b", "c"], excl)
    lo, hi = res["national"]["options"]["a"]["ci95"]
    assert lo <= 0.5 <= hi


def test_region_without_clean_stations_and_missing() -> None:
    region = np.array(["x", "x", "y"])
    reg = np.array([100, 100, 100])
    issued = np.array([50, -1, 60])
    votes = np.array([[30, 20], [10, 10], [40, 20]])
    res = clean_station_estimates(
        region, reg, issued, votes, ["a", "b"], np.array([False, False, True]), bootstrap=20
    )
    assert res["regions_without_clean_stations"] == ["y"]
    assert res["stations_missing_figures"] == 1
    assert res["national"]["options"]["a"]["share"] == 0.6
