"""Turnout and leader-share outliers within districts. Pure functions on numpy arrays.

Null model: within a comparison group, stations' turnouts (or leader shares) are draws from
one normal distribution. Robust z = (x - median) / (1.4826 x MAD) (median absolute
deviation; 1.2533 x mean absolute deviation when the MAD is 0). The spread is estimated
from the group itself, and a MAD from a dozen stations is noisy: against a standard normal,
a 10-station group's robust z passes p < 1e-4 a hundred times too often. So the p-value is
Student t's, with ``null_df(n) = 0.37 (n - 1) + 1.5`` degrees of freedom for a group of n
usable stations (0.37 is the MAD's asymptotic efficiency; the offset was fitted by
simulating normal groups of 10 to 100 stations, and the tests check the calibration).

Comparison group: the station's district when it has at least ``MIN_GROUP`` stations with a
usable value; otherwise its region when that has ``MIN_GROUP``; otherwise the whole election.
The station itself is part of its group (median/MAD are robust to it).

Many tests at once: Benjamini–Hochberg q-values over the family of all turnout and share
p-values together (2 per station); a flag when q < 0.05. With m p-values sorted ascending
p_(1) <= ... <= p_(m), the q-value of p_(i) is min over j >= i of p_(j) m / j, capped at 1
(scipy's ``false_discovery_control``); flagging every q < alpha keeps the expected share of
false flags among all flags at or below alpha when the tests are independent or positively
dependent (Benjamini & Hochberg 1995). Never proof: real within-district
distributions have heavier tails than normal (urban/rural mixes, special stations such as
hospitals), so flags are leads for observers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import stdtr
from scipy.stats import false_discovery_control

__all__ = [
    "MIN_GROUP",
    "OutlierResult",
    "bh_qvalues",
    "group_for_stations",
    "group_sizes",
    "high_turnout_unanimity",
    "null_df",
    "outlier_test",
    "robust_p",
    "robust_z",
]

MIN_GROUP = 10
Q_THRESHOLD = 0.05
MIN_REGISTERED = 100


@dataclass(frozen=True)
class OutlierResult:
    z: np.ndarray  # (n,) robust z; NaN where not tested
    p: np.ndarray
    q: np.ndarray
    group_level: np.ndarray  # (n,) "district", "region", "election" or ""
    group_size: np.ndarray  # (n,) usable stations in the station's comparison group; 0 if none
    flagged: np.ndarray  # (n,) bool: q < 0.05


def group_for_stations(
    usable: np.ndarray, district: np.ndarray, region: np.ndarray, min_group: int = MIN_GROUP
) -> tuple[np.ndarray, np.ndarray]:
    """Group label per station (district, else region, else election) and the level used.

    Only ``usable`` stations count towards a group's size; unusable ones get level "".
    """
    n = usable.size
    dkey = np.char.add(np.char.add(region.astype(str), "\x1f"), district.astype(str))
    d_codes, d_inv = np.unique(dkey, return_inverse=True)
    r_codes, r_inv = np.unique(region.astype(str), return_inverse=True)
    d_size = np.bincount(d_inv, weights=usable, minlength=d_codes.size)
    r_size = np.bincount(r_inv, weights=usable, minlength=r_codes.size)
    group = np.full(n, -1, dtype=np.int64)
    level = np.full(n, "", dtype="<U8")
    use_d = usable & (d_size[d_inv] >= min_group)
    use_r = usable & ~use_d & (r_size[r_inv] >= min_group)
    use_e = usable & ~use_d & ~use_r
    group[use_d] = d_inv[use_d]
    group[use_r] = d_codes.size + r_inv[use_r]
    group[use_e] = d_codes.size + r_codes.size
    level[use_d], level[use_r], level[use_e] = "district", "region", "election"
    return group, level


def robust_z(x: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Robust z-score of ``x`` within each group (group < 0 or NaN x: NaN).

    centre = group median; spread = 1.4826 MAD, or 1.2533 x mean absolute deviation when
    MAD = 0; z is NaN where the spread is 0 too (all values equal).
    """
    x = np.asarray(x, dtype=np.float64)
    z = np.full(x.shape, np.nan)
    ok = (group >= 0) & np.isfinite(x)
    if not ok.any():
        return z
    idx = np.flatnonzero(ok)
    order = idx[np.lexsort((x[idx], group[idx]))]
    g_sorted = group[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    ends = np.r_[starts[1:], g_sorted.size]
    xs = x[order]
    med = _sorted_group_median(xs, starts, ends)
    sizes = ends - starts
    med_each = np.repeat(med, sizes)
    dev = np.abs(xs - med_each)
    # Sort deviations within groups to get the MAD.
    dev_order = np.lexsort((dev, np.repeat(np.arange(starts.size), sizes)))
    mad = _sorted_group_median(dev[dev_order], starts, ends)
    mean_abs = np.add.reduceat(dev, starts) / sizes
    spread = np.where(mad > 0, 1.4826 * mad, 1.2533 * mean_abs)
    spread_each = np.repeat(spread, sizes)
    with np.errstate(divide="ignore", invalid="ignore"):
        zs = np.where(spread_each > 0, (xs - med_each) / spread_each, np.nan)
    z[order] = zs
    return z


def _sorted_group_median(xs: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    sizes = ends - starts
    lo = starts + (sizes - 1) // 2
    hi = starts + sizes // 2
    return 0.5 * (xs[lo] + xs[hi])


def null_df(group_size: np.ndarray) -> np.ndarray:
    """Degrees of freedom of the Student t null for robust z in groups of this size."""
    return 0.37 * (np.asarray(group_size, dtype=np.float64) - 1.0) + 1.5


def group_sizes(group: np.ndarray) -> np.ndarray:
    """Number of members of each station's group (0 where group < 0)."""
    member = group >= 0
    counts = np.bincount(group[member], minlength=1)
    return np.where(member, counts[np.where(member, group, 0)], 0)


def robust_p(z: np.ndarray, group_size: np.ndarray) -> np.ndarray:
    """Two-sided p-value of robust z under the size-aware t null (NaN where z is NaN)."""
    return 2.0 * stdtr(null_df(np.maximum(group_size, 2)), -np.abs(z))


def bh_qvalues(p_values: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values, same shape as ``p_values``. Pure.

    scipy's ``false_discovery_control`` computes them; around it, the inclusion rule: NaN
    p-values (tests that could not be run) are left out of the family (they do not count
    in m) and get a NaN q-value; p-values outside [0, 1] are clipped (scipy refuses both).
    Properties: q >= p, q in [0, 1], q is monotone (non-decreasing) in p, equal p equal q.
    """
    p = np.asarray(p_values, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    tested = ~np.isnan(p)
    if tested.any():
        q[tested] = false_discovery_control(np.clip(p[tested], 0.0, 1.0), method="bh")
    return q


def outlier_test(
    turnout: np.ndarray,
    share: np.ndarray,
    district: np.ndarray,
    region: np.ndarray,
    usable_turnout: np.ndarray,
    usable_share: np.ndarray,
    min_group: int = MIN_GROUP,
) -> tuple[OutlierResult, OutlierResult]:
    """Turnout and share outliers (module docstring); q-values over both families together."""
    g_t, lvl_t = group_for_stations(usable_turnout, district, region, min_group)
    g_s, lvl_s = group_for_stations(usable_share, district, region, min_group)
    z_t = robust_z(np.where(usable_turnout, turnout, np.nan), g_t)
    z_s = robust_z(np.where(usable_share, share, np.nan), g_s)
    n_t, n_s = group_sizes(g_t), group_sizes(g_s)
    p_t, p_s = robust_p(z_t, n_t), robust_p(z_s, n_s)
    q = bh_qvalues(np.concatenate([p_t, p_s]))
    q_t, q_s = q[: p_t.size], q[p_t.size :]
    return (
        OutlierResult(z_t, p_t, q_t, lvl_t, n_t, np.nan_to_num(q_t, nan=1.0) < Q_THRESHOLD),
        OutlierResult(z_s, p_s, q_s, lvl_s, n_s, np.nan_to_num(q_s, nan=1.0) < Q_THRESHOLD),
    )


def high_turnout_unanimity(
    registered: np.ndarray, turnout: np.ndarray, share: np.ndarray
) -> np.ndarray:
    """Stations with turnout >= 0.95 and leader share >= 0.95 among registered >= 100.

    A descriptive rule, not a test: no p-value.
    """
    with np.errstate(invalid="ignore"):
        return (
            (np.nan_to_num(np.asarray(registered, dtype=np.float64), nan=0.0) >= MIN_REGISTERED)
            & (np.nan_to_num(turnout, nan=0.0) >= 0.95)
            & (np.nan_to_num(share, nan=0.0) >= 0.95)
        )
