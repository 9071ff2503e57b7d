"""Digit tests per region: Mebane's second-digit Benford (2BL) and Beber & Scacco's last
digits. Pure functions on numpy arrays. Low weight, never a flag on their own: they are known
to be weak and to give false alarms (Deckert, Myagkov & Ordeshook 2011).

Counts tested: every option's vote count at every station with known figures.
* second digit: counts >= 10; null = Benford's second-digit law, mean 4.187;
* last digit: counts >= 100 (so the last digit is not tied to the count's size); null =
  uniform last digit, mean 4.5 and share ending in 0 or 5 equal to 0.2.
Intervals: bootstrap over stations (a station's counts resampled together), 2.5-97.5
percentiles. p-values: normal approximation with the null's digit variance, two-sided.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import ndtr

from tally.forensics.bootstrap import percentile_interval, resample_counts

__all__ = ["BENFORD_2ND", "digit_tests", "last_digit", "second_digit"]

_D = np.arange(10)
# Benford's law for the second digit: P(d) = sum_{k=1..9} log10(1 + 1/(10k + d)).
BENFORD_2ND = np.array([np.sum(np.log10(1.0 + 1.0 / (10.0 * np.arange(1, 10) + d))) for d in _D])
MEAN_2ND = float(np.sum(_D * BENFORD_2ND))  # 4.187
SD_2ND = float(np.sqrt(np.sum((_D - MEAN_2ND) ** 2 * BENFORD_2ND)))
MEAN_LAST, SD_LAST = 4.5, float(np.sqrt(np.mean((_D - 4.5) ** 2)))
SD_05 = float(np.sqrt(0.2 * 0.8))
MIN_SECOND, MIN_LAST = 10, 100


def second_digit(counts: np.ndarray) -> np.ndarray:
    """Second significant digit of each count (counts >= 10; others -1)."""
    c = np.asarray(counts, dtype=np.int64)
    out = np.full(c.shape, -1, dtype=np.int64)
    ok = c >= 10
    x = c[ok]
    ndig = np.floor(np.log10(x)).astype(np.int64)
    # Guard float log10 at exact powers of 10.
    ndig = np.where(10 ** (ndig + 1) <= x, ndig + 1, ndig)
    ndig = np.where(10**ndig > x, ndig - 1, ndig)
    out[ok] = (x // 10 ** (ndig - 1)) % 10
    return out


def last_digit(counts: np.ndarray) -> np.ndarray:
    """Last digit of each count (counts >= 100; others -1)."""
    c = np.asarray(counts, dtype=np.int64)
    return np.where(c >= MIN_LAST, c % 10, -1)


def _per_station(
    digits: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """(sum of fn(digit), number of digits) per station over its usable counts."""
    usable = digits >= 0
    return np.where(usable, fn(digits), 0.0).sum(axis=1), usable.sum(axis=1).astype(np.float64)


def _stat(
    s: np.ndarray, c: np.ndarray, expected: float, sd: float, rng: np.random.Generator, boot: int
) -> dict[str, object]:
    n = float(c.sum())
    if n == 0:
        return {"value": None, "expected": expected, "n": 0}
    value = float(s.sum() / n)
    z = (value - expected) / (sd / np.sqrt(n))
    out: dict[str, object] = {
        "value": value,
        "expected": expected,
        "n": int(n),
        "z": float(z),
        "p_value": float(2.0 * ndtr(-abs(z))),
    }
    if boot > 0 and s.size >= 2:
        reps: list[np.ndarray] = []
        for counts in resample_counts(rng, s.size, boot):
            denom = counts @ c
            reps.append(np.where(denom > 0, (counts @ s) / np.maximum(denom, 1), np.nan))
        interval = percentile_interval(np.concatenate(reps))
        if interval is not None:
            out["ci95"] = interval
    return out


def digit_tests(
    votes: np.ndarray, region: np.ndarray, *, bootstrap: int = 200, seed: int = 0
) -> dict[str, object]:
    """Second-digit mean, last-digit mean and share of last digits 0/5, per region and overall.

    ``votes`` is (n, k) int with -1 (or NaN) for unknown counts (left out). JSON-serialisable.
    """
    v = np.asarray(votes, dtype=np.float64)
    v = np.where(np.isfinite(v), v, -1).astype(np.int64)
    d2 = second_digit(v)
    dl = last_digit(v)
    s2, c2 = _per_station(d2, lambda d: d.astype(np.float64))
    sl, cl = _per_station(dl, lambda d: d.astype(np.float64))
    s05, _ = _per_station(dl, lambda d: ((d == 0) | (d == 5)).astype(np.float64))
    rng = np.random.default_rng(seed)
    region = np.asarray(region).astype(str)

    def block(mask: np.ndarray, boot: int) -> dict[str, object]:
        return {
            "second_digit_mean": _stat(s2[mask], c2[mask], MEAN_2ND, SD_2ND, rng, boot),
            "last_digit_mean": _stat(sl[mask], cl[mask], MEAN_LAST, SD_LAST, rng, boot),
            "last_digit_0_or_5_share": _stat(s05[mask], cl[mask], 0.2, SD_05, rng, boot),
            "stations": int(mask.sum()),
        }

    regions: dict[str, object] = {}
    for name in np.unique(region):
        regions[str(name)] = block(region == name, bootstrap)
    overall = block(np.ones(region.size, dtype=bool), min(bootstrap, 100))
    return {
        "weight": "low: digit tests are weak and give false alarms (Deckert, Myagkov & "
        "Ordeshook 2011); never a flag on their own",
        "inclusion_rule": "every option's vote count; second digit: counts >= 10; last digit: "
        "counts >= 100; unknown counts left out",
        "null_model": "second digit ~ Benford 2BL (mean 4.187); last digit ~ uniform (mean 4.5, "
        "P(0 or 5) = 0.2); counts independent",
        "interval": "bootstrap over stations (counts of a station resampled together), "
        "2.5-97.5 percentiles; p_value: normal approximation, two-sided",
        "overall": overall,
        "regions": regions,
    }
