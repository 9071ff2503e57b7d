"""Klimek fit: planted incremental/extreme fraud recovered roughly, ~0 on clean."""

from __future__ import annotations

import numpy as np

from tally.forensics.klimek import _apply_fraud, _truncnorm, fit_klimek, klimek_histogram


def synthetic(n: int, f_i: float, f_e: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = _truncnorm(rng, 0.6, 0.08, n)
    v = _truncnorm(rng, 0.5, 0.1, n)
    u = rng.random(n)
    x = np.zeros(n)
    inc, ext = u < f_i, u > 1 - f_e
    x[inc] = np.clip(np.abs(rng.normal(0, 0.15, inc.sum())), 0, 1)
    x[ext] = 1 - np.abs(rng.normal(0, 0.075, ext.sum()))
    t, v = _apply_fraud(t, v, x, 1.0)
    reg = rng.integers(300, 3000, n)
    issued = rng.binomial(reg, t)
    leader = rng.binomial(issued, v)
    return issued / reg, leader / np.maximum(issued, 1)


def test_histogram_shape_and_counts() -> None:
    t = np.array([0.0, 0.5, 1.0, np.nan, 0.999])
    s = np.array([0.0, 0.5, 1.0, 0.5, 0.2])
    hist, xe, ye = klimek_histogram(t, s)
    assert hist.shape == (100, 100) and hist.sum() == 4
    assert hist[99, 99] == 1 and hist[0, 0] == 1 and hist[50, 50] == 1
    assert xe[0] == 0 and ye[-1] == 1


def test_clean_control_near_zero() -> None:
    fit = fit_klimek(*synthetic(30000, 0.0, 0.0, 6), bootstrap=30)
    assert fit is not None
    assert fit.f_incremental < 0.12
    assert fit.f_extreme < 0.005


def test_planted_fraud_recovered_roughly() -> None:
    fit = fit_klimek(*synthetic(30000, 0.3, 0.05, 7), bootstrap=30)
    assert fit is not None
    # f_i is weakly identified (small-x incremental fraud looks honest): fits run low.
    assert 0.08 < fit.f_incremental < 0.5
    assert 0.035 < fit.f_extreme < 0.065
    lo, hi = fit.f_extreme_ci
    assert lo <= fit.f_extreme <= hi


def test_too_few_stations() -> None:
    assert fit_klimek(np.array([0.5] * 10), np.array([0.5] * 10)) is None
