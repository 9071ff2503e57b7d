"""Shpilkin's anomalous-vote estimate. Pure functions on numpy arrays.

Method (Sergey Shpilkin): bin stations by turnout (1 pp bins; turnout = ballots issued /
registered). Find the main ("clean") turnout peak: the bin holding the most ballots cast,
after smoothing over 5 bins. Take the leader/others vote ratio r0 over the bins within 2 pp
of the peak. In every bin above the peak window, the leader votes beyond r0 x (others' votes
in that bin) are counted as anomalous: anomalous = sum over those bins of (L_b - r0 O_b).

The sum is signed (bins where the leader is below r0 count negative), so that a clean
election gives about 0 rather than a positive bias. Assumption: the leader's share does not
depend on turnout. Urban/rural differences (rural areas with higher turnout and more support
for the incumbent) break it, so this is an estimate under a stated assumption, never proof.
The interval is a bootstrap over stations (``bootstrap.resample_counts``; sampling
variation only, not the assumption).
"""

from __future__ import annotations

import numpy as np

from tally.forensics.bootstrap import percentile_interval, resample_counts

__all__ = ["ASSUMPTION", "INCLUSION_RULE", "shpilkin_estimate"]

ASSUMPTION = (
    "the leader's share of the vote does not depend on turnout, so the leader/others ratio "
    "at the main turnout peak holds in higher-turnout bins; urban/rural differences (rural "
    "stations with higher turnout and more support for the incumbent) break this, so the "
    "figure is an estimate, not proof"
)
INCLUSION_RULE = (
    "registered > 0, ballots_issued <= registered, all votes known; turnout = "
    "ballots_issued/registered in 1 pp bins; others = valid votes for all other options"
)
PEAK_HALF_WIDTH = 2  # bins (pp) either side of the peak used for the clean ratio


def _estimate(
    tbin: np.ndarray, leader: np.ndarray, others: np.ndarray, weights: np.ndarray | None
) -> tuple[float, int, float]:
    nb = 101
    lb = np.bincount(tbin, weights=leader if weights is None else leader * weights, minlength=nb)
    ob = np.bincount(tbin, weights=others if weights is None else others * weights, minlength=nb)
    total = lb + ob
    kernel = np.ones(5) / 5.0
    peak = int(np.argmax(np.convolve(total, kernel, mode="same")))
    lo, hi = max(peak - PEAK_HALF_WIDTH, 0), min(peak + PEAK_HALF_WIDTH, nb - 1)
    o_peak = ob[lo : hi + 1].sum()
    r0 = float(lb[lo : hi + 1].sum() / o_peak) if o_peak > 0 else float("nan")
    if not np.isfinite(r0):
        return float("nan"), peak, r0
    above = slice(hi + 1, nb)
    return float(np.sum(lb[above] - r0 * ob[above])), peak, r0


def shpilkin_estimate(
    registered: np.ndarray,
    issued: np.ndarray,
    leader: np.ndarray,
    others: np.ndarray,
    *,
    bootstrap: int = 200,
    seed: int = 0,
) -> dict[str, object]:
    """Anomalous leader votes by Shpilkin's method (module docstring); JSON-serialisable dict.

    NaN/negative entries exclude the station; the number excluded is reported.
    """
    v, g, lead, oth = (
        np.asarray(a, dtype=np.float64) for a in (registered, issued, leader, others)
    )
    ok = np.isfinite(v) & np.isfinite(g) & np.isfinite(lead) & np.isfinite(oth)
    ok &= (v > 0) & (g >= 0) & (g <= v) & (lead >= 0) & (oth >= 0)
    n = int(ok.sum())
    base: dict[str, object] = {
        "method": "Shpilkin: leader votes above the main-peak leader/others ratio in "
        "higher-turnout bins (1 pp bins, signed sum)",
        "assumption": ASSUMPTION,
        "inclusion_rule": INCLUSION_RULE,
        "stations_included": n,
        "stations_excluded": int(v.size - n),
    }
    if n == 0 or lead[ok].sum() + oth[ok].sum() == 0:
        return {**base, "anomalous_votes": None, "skipped": "no stations with known figures"}
    tbin = np.minimum(np.round(100.0 * g[ok] / v[ok]).astype(np.int64), 100)
    lo_, ot_ = lead[ok], oth[ok]
    anomalous, peak, r0 = _estimate(tbin, lo_, ot_, None)
    leader_total = float(lo_.sum())
    interval: list[float] | None = None
    if bootstrap > 0 and n >= 10 and np.isfinite(anomalous):
        rng = np.random.default_rng(seed)
        reps = [
            _estimate(tbin, lo_, ot_, weights)[0]
            for batch in resample_counts(rng, n, bootstrap)
            for weights in batch
        ]
        interval = percentile_interval(np.array(reps))
    return {
        **base,
        "anomalous_votes": anomalous if np.isfinite(anomalous) else None,
        "anomalous_votes_ci95": interval,
        "share_of_leader_votes": anomalous / leader_total
        if leader_total > 0 and np.isfinite(anomalous)
        else None,
        "leader_votes": leader_total,
        "peak_turnout_pp": peak,
        "clean_ratio_leader_to_others": r0 if np.isfinite(r0) else None,
        "interval_method": "bootstrap over stations (sampling only, not the assumption)",
    }
