"""False-discovery-rate control for many per-station tests. Pure functions.

Benjamini & Hochberg (1995): with m p-values sorted ascending p_(1) <= ... <= p_(m), the
q-value of p_(i) is min over j >= i of p_(j) * m / j, capped at 1. Flagging every test with
q < alpha keeps the expected share of false flags among all flags at or below alpha when the
tests are independent or positively dependent (PRDS).
"""

from __future__ import annotations

import numpy as np

__all__ = ["bh_qvalues"]


def bh_qvalues(p_values: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values, same shape as ``p_values``.

    Inclusion rule: NaN p-values (tests that could not be run) are left out of the family
    (they do not count in m) and get a NaN q-value. p-values outside [0, 1] are clipped.
    Properties: q >= p, q in [0, 1], and q is monotone (non-decreasing) in p.
    """
    p = np.asarray(p_values, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    flat_p = p.ravel()
    flat_q = q.ravel()
    ok = np.flatnonzero(~np.isnan(flat_p))
    m = ok.size
    if m == 0:
        return q
    vals = np.clip(flat_p[ok], 0.0, 1.0)
    order = np.argsort(vals, kind="mergesort")
    ranked = vals[order] * m / np.arange(1, m + 1)
    # Running minimum from the largest p downwards.
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    ranked = np.clip(ranked, 0.0, 1.0)
    # Never below p (can only matter through rounding): BH q >= p always holds in exact maths.
    out = np.empty(m)
    out[order] = np.maximum(ranked, vals[order])
    flat_q[ok] = out
    return flat_q.reshape(p.shape)
