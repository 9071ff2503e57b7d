"""Benjamini–Hochberg q-values: hand-computed example and properties."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tally.forensics.outliers import bh_qvalues


def test_hand_computed_example() -> None:
    # sorted: 0.005 (1), 0.01 (2), 0.03 (3), 0.04 (4); p*m/rank: .02 .02 .04 .04
    q = bh_qvalues(np.array([0.01, 0.04, 0.03, 0.005]))
    np.testing.assert_allclose(q, [0.02, 0.04, 0.04, 0.02])


def test_running_minimum_and_cap() -> None:
    # p*m/rank: 0.3, 0.3, 0.9*4/3 = 1.2 -> min(1.2, 4*0.95/4=0.95) -> 0.95, 0.95
    q = bh_qvalues(np.array([0.1, 0.15, 0.9, 0.95]))
    np.testing.assert_allclose(q, [0.3, 0.3, 0.95, 0.95])


def test_nan_left_out_of_family() -> None:
    q = bh_qvalues(np.array([0.01, np.nan, 0.02]))
    assert np.isnan(q[1])
    np.testing.assert_allclose(q[[0, 2]], [0.02, 0.02])
    assert bh_qvalues(np.array([])).size == 0
    assert np.isnan(bh_qvalues(np.array([np.nan]))).all()


p_arrays = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=200)


@settings(max_examples=200, deadline=None)
@given(p_arrays)
def test_properties(ps: list[float]) -> None:
    p = np.array(ps)
    q = bh_qvalues(p)
    assert np.all((q >= 0) & (q <= 1))
    assert np.all(q >= p - 1e-12)
    order = np.argsort(p, kind="mergesort")
    assert np.all(np.diff(q[order]) >= -1e-12)  # monotone in p
    # equal p -> equal q
    for value in np.unique(p):
        assert np.ptp(q[p == value]) == 0


@settings(max_examples=50, deadline=None)
@given(p_arrays)
def test_matches_definition(ps: list[float]) -> None:
    p = np.array(ps)
    m = p.size
    q = bh_qvalues(p)
    s = np.sort(p)
    ranks = np.arange(1, m + 1)
    for i, pv in enumerate(p):
        j = np.searchsorted(s, pv, side="left")
        expected = min(1.0, np.min(s[j:] * m / ranks[j:]))
        assert abs(q[i] - max(expected, pv)) < 1e-12
