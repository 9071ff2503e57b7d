"""The simulated demo crowd: bounded by the truth, self-selected, with a few attacks."""

from __future__ import annotations

import re
from collections import Counter
from functools import cache

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from seeds.crowd import (
    ATTACK_KINDS,
    INVALID,
    SimulatedVoter,
    honest_counts,
    provable_precincts,
    simulate_crowd,
)
from seeds.model import SEED_DIR, SeedElection, load_seed

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
PHONE = re.compile(r"\+37529\d{7}")


@cache
def seed() -> SeedElection:
    return load_seed(SEED_DIR)


@cache
def demo() -> tuple[SimulatedVoter, ...]:
    """The default demo run."""
    return tuple(simulate_crowd(seed(), 1200, 60, np.random.default_rng(7)))


def assert_bounded_by_truth(voters: list[SimulatedVoter], s: SeedElection) -> None:
    for pid, counts in honest_counts(voters).items():
        for option, n in counts.items():
            assert n <= s.truth[pid][option], (pid, option)
    spoilt = Counter(v.precinct_id for v in voters if v.kind in ("blank", "overmarked"))
    for pid, n in spoilt.items():
        assert n <= s.truth[pid][INVALID]


def test_demo_run_proves_falsified_stations_only() -> None:
    s = seed()
    proven = provable_precincts(list(demo()), s.official)
    assert len(set(proven) & s.fraud_precincts()) >= 10
    assert not set(proven) & s.clean_precincts()
    assert set(proven) <= s.fraud_precincts()  # slips never lose votes either
    assert all(proven.values())
    assert "tsikhanouskaya" in Counter(o for opts in proven.values() for o in opts)


def test_demo_run_shape() -> None:
    voters = list(demo())
    assert len(voters) == 1200
    stations = {v.precinct_id for v in voters}
    assert len(stations) == 60
    assert stations <= set(seed().official)
    assert stations & seed().fraud_precincts() and stations & seed().clean_precincts()
    assert_bounded_by_truth(voters, seed())


def test_demo_kinds_in_proportion() -> None:
    voters = list(demo())
    kinds = Counter(v.kind for v in voters)
    assert sum(kinds[k] for k in ATTACK_KINDS) == 60  # 5% of 1200
    assert all(kinds[k] >= 10 for k in ATTACK_KINDS)
    assert 0.003 <= kinds["blank"] / 1200 <= 0.03
    assert 0.003 <= kinds["overmarked"] / 1200 <= 0.03
    honest = [v for v in voters if v.kind == "honest"]
    declared = Counter(v.declared_choice for v in honest)
    assert 0.93 <= declared["tsikhanouskaya"] / len(honest) <= 0.99
    assert declared["lukashenko"] / len(honest) < 0.02


def test_each_kind_is_well_formed() -> None:
    voters = list(demo())
    options = set(seed().option_ids)
    ids = [v.submission_id for v in voters]
    assert len(set(ids)) == len(ids) and all(UUID4.fullmatch(i) for i in ids)
    phones = [v.phone for v in voters]
    assert len(set(phones)) == len(phones) and all(PHONE.fullmatch(p) for p in phones)
    position = {v.submission_id: i for i, v in enumerate(voters)}
    by_id = {v.submission_id: v for v in voters}
    for i, v in enumerate(voters):
        assert v.declared_choice in options
        assert set(v.marks) <= options
        if v.kind == "honest":
            assert v.marks == [v.declared_choice]
        elif v.kind in ("blank", "not_a_ballot"):
            assert v.marks == []
        elif v.kind == "overmarked":
            assert len(v.marks) >= 2 and len(set(v.marks)) == len(v.marks)
        elif v.kind == "mismatch":
            assert len(v.marks) == 1 and v.marks[0] != v.declared_choice
        if v.kind == "reused_photo":
            assert v.reuses is not None and position[v.reuses] < i
            original = by_id[v.reuses]
            assert original.kind != "reused_photo"
            assert (v.marks, v.precinct_id) == (original.marks, original.precinct_id)
        else:
            assert v.reuses is None


def test_simulation_is_deterministic() -> None:
    again = simulate_crowd(seed(), 1200, 60, np.random.default_rng(7))
    assert tuple(again) == demo()
    other = simulate_crowd(seed(), 1200, 60, np.random.default_rng(8))
    assert tuple(other) != demo()


def test_provable_precincts_rule() -> None:
    def voter(pid: str, marks: list[str], kind: str = "honest") -> SimulatedVoter:
        return SimulatedVoter("id", "+375290000000", pid, marks, marks[0] if marks else "a", kind)  # type: ignore[arg-type]

    official = {
        "p1": {"registered": 100, "a": 2, "b": 5},
        "p2": {"registered": 100, "a": 0, "b": 0},
    }
    voters = [
        voter("p1", ["a"]),
        voter("p1", ["a"]),
        voter("p1", ["a"]),  # 3 > 2: proven
        voter("p1", ["b"]),
        voter("p2", ["a"], "mismatch"),
        voter("p2", ["b"], "reused_photo"),  # not honest
        voter("p2", ["a", "b"], "overmarked"),
        voter("p3", ["a"]),  # no protocol: nothing to prove
    ]
    assert provable_precincts(voters, official) == {"p1": ["a"]}
    assert provable_precincts([], official) == {}


@settings(max_examples=40, deadline=None)
@given(
    rng_seed=st.integers(0, 2**32 - 1),
    n_voters=st.integers(0, 600),
    n_stations=st.integers(1, 40),
    fraud_share=st.floats(0.0, 0.3),
)
def test_clean_stations_are_never_provable(
    rng_seed: int, n_voters: int, n_stations: int, fraud_share: float
) -> None:
    s = seed()
    voters = simulate_crowd(s, n_voters, n_stations, np.random.default_rng(rng_seed), fraud_share)
    assert len(voters) == n_voters
    assert sum(v.kind in ATTACK_KINDS for v in voters) == round(fraud_share * n_voters)
    assert_bounded_by_truth(voters, s)
    proven = provable_precincts(voters, s.official)
    assert not set(proven) & s.clean_precincts()
