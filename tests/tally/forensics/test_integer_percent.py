"""Integer-percentage test: exact null vs brute-force Monte Carlo, planted pattern vs clean
control, and the seeded falsified Belarus-2020-like election vs its clean truth."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tally.forensics.integer_percent import (
    integer_hit_probability,
    integer_percent,
    integer_percent_test,
    integer_stations,
)


def clean_election(n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    v = rng.integers(150, 3000, n)
    g = rng.binomial(v, np.clip(rng.normal(0.6, 0.1, n), 0.2, 0.95))
    r = g.copy()
    lead = rng.binomial(r, np.clip(rng.normal(0.55, 0.12, n), 0.1, 0.95))
    return v, g, r, lead


def test_exact_null_matches_brute_force_monte_carlo() -> None:
    v, g, r, lead = clean_election(1500, 1)
    res = integer_percent(v, g, r, lead, "a", draws=500)
    rng = np.random.default_rng(2)
    keep = res.included
    vv, gg, rr, ll = v[keep], g[keep], r[keep], lead[keep]
    null = np.array(
        [
            integer_stations(vv, rng.binomial(vv, gg / vv), rr, rng.binomial(rr, ll / rr)).sum()
            for _ in range(1500)
        ]
    )
    se = null.std() / np.sqrt(null.size)
    assert abs(null.mean() - res.null_mean) < 4 * se + 0.5
    assert abs(null.std() - res.null_sd) < 0.1 * res.null_sd
    assert abs(res.mc_null_mean - res.null_mean) < 4 * res.null_sd / np.sqrt(500) + 0.5


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 400), st.floats(0.0, 1.0))
def test_hit_probability_is_exact_binomial_sum(n: int, p: float) -> None:
    from math import comb

    exact = sum(
        comb(n, x) * p**x * (1 - p) ** (n - x)
        for x in range(n + 1)
        if abs(100 * x / n - round(100 * x / n)) <= 0.05 + 1e-9
    )
    got = integer_hit_probability(np.array([n]), np.array([p]))[0]
    assert got == pytest.approx(exact, abs=1e-9)


def test_clean_control_not_significant_and_planted_detected() -> None:
    v, g, r, lead = clean_election(4000, 3)
    clean = integer_percent(v, g, r, lead, "a", draws=1000, seed=1)
    assert not clean.significant
    assert abs(clean.excess) < 4 * clean.null_sd
    # Plant: 200 stations' leader votes written as an integer percentage of ballots cast.
    rng = np.random.default_rng(4)
    planted = rng.choice(4000, 200, replace=False)
    lead2 = lead.copy()
    lead2[planted] = np.round(r[planted] * np.round(100 * lead[planted] / r[planted]) / 100)
    res = integer_percent(v, g, r, lead2, "a", draws=1000, seed=1)
    assert res.significant
    assert res.p_value <= 0.002
    assert res.excess > 4 * res.null_sd  # the null re-centres planted stations on integers
    big = planted[r[planted] >= 1000]  # one vote is <= 0.05 pp only from 1,000 ballots
    assert res.on_integer[big].all()


def test_inclusion_rule_and_missing_values() -> None:
    v = np.array([50, 1000, 1000, 1000, 1000, -1, 1000])
    g = np.array([30, 1000, 600, 600, 1200, 500, np.nan])
    r = np.array([30, 1000, 600, 0, 1200, 500, 600])
    lead = np.array([10, 500, 300, 0, 600, 200, 300])
    res = integer_percent(v, g, r, lead, "a", draws=20)
    # small, turnout 100%, ok, cast 0, issued > registered, unknown, unknown
    assert res.included.tolist() == [False, False, True, False, False, False, False]
    assert res.stations_excluded == 6
    assert res.observed == 1  # 60.0% turnout and 50.0% share
    assert res.which[2] == "both"


def test_compatible_alias_and_as_dict() -> None:
    v, g, r, lead = clean_election(200, 5)
    d = integer_percent_test(v, g, r, lead, "x", draws=50).as_dict()
    for key in ("observed", "null_mean", "null_sd", "excess", "p_value", "significant", "leader"):
        assert key in d
    assert "included" not in d


def _arrays(rows: dict[str, dict[str, int]], leader: str) -> tuple[np.ndarray, ...]:
    def col(name: str) -> np.ndarray:
        return np.array([row.get(name, -1) for row in rows.values()], dtype=np.int64)

    return col("registered"), col("ballots_issued"), col("ballots_cast"), col(leader)


def test_seeded_falsified_election_significant_clean_truth_not() -> None:
    from seeds.generate import SEED_DIR, load_seed

    seed = load_seed(SEED_DIR)
    official = seed.official
    assert len(official) == 1310
    totals = {o: sum(row.get(o, 0) for row in official.values()) for o in seed.option_ids}
    leader = max(totals, key=lambda o: totals[o])
    falsified = integer_percent(*_arrays(official, leader), leader, draws=1000)
    assert falsified.significant
    truth = {pid: seed.truth[pid] for pid in official}
    t_totals = {o: sum(row.get(o, 0) for row in truth.values()) for o in seed.option_ids}
    t_leader = max(t_totals, key=lambda o: t_totals[o])
    clean = integer_percent(*_arrays(truth, t_leader), t_leader, draws=1000)
    assert not clean.significant
    # and a binomial control of the same size
    synthetic = integer_percent(*clean_election(1310, 9), "a", draws=1000)
    assert not synthetic.significant
