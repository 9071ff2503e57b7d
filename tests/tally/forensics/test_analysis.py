"""analyse(): end-to-end on synthetic data, robustness to bad and tiny inputs."""

from __future__ import annotations

import json

import numpy as np

from tally.forensics.analysis import Stations, analyse


def synthetic(n: int, seed: int, regions: int = 4) -> Stations:
    rng = np.random.default_rng(seed)
    reg = rng.integers(150, 2500, n)
    issued = rng.binomial(reg, np.clip(rng.normal(0.6, 0.08, n), 0.2, 0.95))
    invalid = rng.binomial(issued, 0.02)
    votes = np.stack(
        [rng.multinomial(int(i - j), [0.5, 0.3, 0.2]) for i, j in zip(issued, invalid, strict=True)]
    )
    return Stations(
        precinct_id=np.array([f"p{i}" for i in range(n)]),
        region=np.array([f"r{i % regions}" for i in range(n)]),
        district=np.array([f"d{i % (regions * 5)}" for i in range(n)]),
        registered=reg,
        issued=issued,
        cast=issued.copy(),
        invalid=invalid,
        votes=votes,
        option_ids=["a", "b", "c"],
    )


def test_clean_election_end_to_end() -> None:
    st = synthetic(3000, 1)
    res = analyse(st, draws=200)
    json.dumps({"tests": res.tests, "estimates": res.estimates})
    ip = res.tests["integer_percent"]
    assert ip["leader"] == "a" and not ip["significant"]
    assert not any(f.flag == "integer_percent" for f in res.station_flags)
    for key in ("null_model", "inclusion_rule", "draws", "tolerance"):
        assert key in ip
    assert res.tests["fingerprint"]["image"] == "fingerprint.png"
    assert res.figures["fingerprint"]["hist"].shape == (100, 100)
    assert abs(res.tests["shpilkin"]["share_of_leader_votes"]) < 0.02
    assert res.tests["outliers"]["turnout_outlier"]["flagged"] <= 3
    for f in res.station_flags:
        if f.flag in ("turnout_outlier", "share_outlier"):
            assert f.q_value is not None and f.q_value < 0.05


def test_robust_to_bad_rows() -> None:
    st = synthetic(60, 2, regions=1)
    reg = st.registered.astype(np.float64)
    issued = st.issued.astype(np.float64)
    cast = st.cast.astype(np.float64)
    votes = st.votes.astype(np.float64)
    reg[0] = np.nan
    reg[1] = 0
    cast[2] = reg[2] + 50
    issued[2] = reg[2] + 50
    votes[3] = 0
    cast[3] = 0
    votes[4, 1] = -1
    issued[5] = -1
    bad = Stations(
        st.precinct_id, st.region, st.district, reg, issued, cast, st.invalid, votes,
        st.option_ids, excluded=np.arange(60) % 10 == 0,
    )  # fmt: skip
    res = analyse(bad, draws=50)
    json.dumps({"tests": res.tests, "estimates": res.estimates})
    assert res.tests["integer_percent"]["stations_excluded"] >= 5
    assert res.estimates["clean_stations"]["stations_with_proof_flag"] == 6


def test_tiny_and_empty_elections() -> None:
    tiny = synthetic(10, 3, regions=1)
    res = analyse(tiny, draws=100)
    json.dumps({"tests": res.tests, "estimates": res.estimates})
    assert res.tests["fingerprint"]["f_incremental"] is None
    zero = Stations(
        np.array(["a", "b"]), np.array(["r", "r"]), np.array(["d", "d"]),
        np.array([0, 0]), np.array([0, 0]), np.array([0, 0]), np.array([0, 0]),
        np.zeros((2, 2), dtype=np.int64), ["x", "y"],
    )  # fmt: skip
    res = analyse(zero, draws=10)
    assert "skipped" in res.tests["integer_percent"]
    empty = Stations(
        np.array([], dtype=str), np.array([], dtype=str), np.array([], dtype=str),
        *(np.array([], dtype=np.int64) for _ in range(4)),
        np.zeros((0, 2), dtype=np.int64), ["x", "y"],
    )  # fmt: skip
    assert analyse(empty).station_flags == []


def test_planted_integer_percent_flags_emitted() -> None:
    st = synthetic(3000, 4)
    votes = st.votes.copy()
    rng = np.random.default_rng(5)
    planted = rng.choice(np.flatnonzero(st.cast >= 1000), 300, replace=False)
    cast = st.cast
    target = np.round(cast[planted] * np.round(100 * votes[planted, 0] / cast[planted]) / 100)
    votes[planted, 0] = target.astype(np.int64)
    st2 = Stations(
        st.precinct_id, st.region, st.district, st.registered, st.issued, cast, st.invalid,
        votes, st.option_ids,
    )  # fmt: skip
    res = analyse(st2, draws=500)
    assert res.tests["integer_percent"]["significant"]
    flagged = {f.precinct_id for f in res.station_flags if f.flag == "integer_percent"}
    assert {f"p{i}" for i in planted} <= flagged
