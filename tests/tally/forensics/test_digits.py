"""Digit tests: Benford-conforming counts pass, fabricated ones stand out (low weight)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tally.forensics.digits import BENFORD_2ND, MEAN_2ND, digit_tests, last_digit, second_digit


def test_constants() -> None:
    assert abs(BENFORD_2ND.sum() - 1) < 1e-12
    assert abs(MEAN_2ND - 4.187) < 1e-3


@given(st.integers(10, 10**9))
def test_second_and_last_digit(x: int) -> None:
    assert second_digit(np.array([x]))[0] == int(str(x)[1])
    assert last_digit(np.array([x]))[0] == (int(str(x)[-1]) if x >= 100 else -1)


def test_small_counts_excluded() -> None:
    assert second_digit(np.array([0, 9, 10, 100, 1000, 15])).tolist() == [-1, -1, 0, 0, 0, 5]


def test_benford_vs_fabricated() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    # log-uniform counts over several orders of magnitude follow Benford's law
    honest = np.floor(10 ** rng.uniform(1, 4, (n, 4))).astype(np.int64)
    region = np.array(["A"] * (n // 2) + ["B"] * (n // 2))
    res = digit_tests(honest, region, bootstrap=100)
    for block in (res["overall"], res["regions"]["A"]):
        assert block["second_digit_mean"]["p_value"] > 0.001
        lo, hi = block["second_digit_mean"]["ci95"]
        assert lo < 4.187 < hi
        assert block["last_digit_mean"]["p_value"] > 0.001
    # fabricated: invented counts favour round numbers (0 and 5 endings)
    fake = (rng.integers(20, 400, (n, 4)) * 5).astype(np.int64)
    fab = digit_tests(fake, region, bootstrap=100)
    share = fab["overall"]["last_digit_0_or_5_share"]
    assert share["value"] == 1.0 and share["p_value"] < 1e-6
    assert "low" in fab["weight"]


def test_missing_counts_ignored() -> None:
    votes = np.array([[-1, 123], [456, -1]])
    res = digit_tests(votes, np.array(["x", "x"]), bootstrap=10)
    assert res["overall"]["second_digit_mean"]["n"] == 2
