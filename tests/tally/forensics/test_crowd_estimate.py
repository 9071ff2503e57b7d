"""The crowd-corrected estimate on numbers with a known answer."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tally.forensics.crowd_estimate import corrected_votes, crowd_corrected_estimate


def test_proven_votes_are_restored_from_the_leader() -> None:
    official = np.array([[80, 10, 10], [50, 40, 10]])
    crowd = np.array([[0, 30, 0], [0, 5, 0]])
    corrected = corrected_votes(official, crowd, leader=0)
    assert corrected.tolist() == [[60, 30, 10], [50, 40, 10]]


def test_no_crowd_evidence_leaves_the_official_result() -> None:
    official = np.array([[80, 10, 10], [50, 40, 10]])
    estimate = crowd_corrected_estimate(
        official, np.zeros_like(official), ["a", "b", "c"], np.array(["r", "r"]), draws=50
    )
    assert estimate["stations_corrected"] == 0
    national = estimate["national"]
    assert isinstance(national, dict)
    assert national["a"]["corrected_share"] == national["a"]["official_share"] == 0.65


@given(
    st.lists(
        st.tuples(st.integers(0, 500), st.integers(0, 500), st.integers(0, 500),
                  st.integers(0, 300), st.integers(0, 300)),
        min_size=1, max_size=20,
    )
)  # fmt: skip
def test_correction_keeps_totals_and_never_goes_below_proof(rows: list[tuple[int, ...]]) -> None:
    official = np.array([[a, b, c] for a, b, c, _, _ in rows], dtype=float)
    crowd = np.array([[0, x, y] for _, _, _, x, y in rows], dtype=float)
    corrected = corrected_votes(official, crowd, leader=0)
    assert np.all(corrected[:, 1:] >= crowd[:, 1:])
    assert np.all(corrected[:, 1:] >= official[:, 1:])
    assert np.all(corrected[:, 0] <= official[:, 0]) and np.all(corrected[:, 0] >= 0)
    enough = official[:, 0] >= (np.maximum(official, crowd) - official)[:, 1:].sum(axis=1)
    assert np.allclose(corrected[enough].sum(axis=1), official[enough].sum(axis=1))
