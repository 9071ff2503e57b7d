"""Result estimates from stations without proof flags, kept apart from proof. Pure functions.

Estimator (post-stratified by region): in each region, the turnout (ballots issued /
registered) and every option's share of the valid votes are ratio estimates over the
region's stations without a proof flag and with known figures; the region's implied valid
votes are its total registered voters (all stations, flagged ones included) x the clean
stations' valid votes per registered voter, split by the clean shares. National figures add
the regions up. Intervals: bootstrap over stations within each region (Poisson(1) weights,
``bootstrap.poisson_weights``), 2.5-97.5 percentiles; they describe sampling variation
among stations, not the assumptions.
"""

from __future__ import annotations

import numpy as np

from tally.forensics.bootstrap import percentile_interval, poisson_weights

__all__ = ["ASSUMPTIONS", "clean_station_estimates"]

ASSUMPTIONS = [
    "official figures of stations without a proof flag are correct (statistical signals "
    "are not proof and do not exclude a station)",
    "voters at stations with a proof flag turned out and voted like the voters at the "
    "region's other stations (missing at random within region)",
    "registered-voter counts are correct at every station",
    "the interval treats stations as a sample from a larger population of stations; it "
    "does not cover falsification at stations without a proof flag",
]


def _implied(
    reg_all: np.ndarray, sums: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From per-region clean sums (..., R, 3 + k) [registered, issued, valid, votes...] ->
    (turnout (..., R), implied valid (..., R), implied votes (..., R, k))."""
    reg, iss, valid = sums[..., 0], sums[..., 1], sums[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        turnout = np.where(reg > 0, iss / reg, np.nan)
        valid_rate = np.where(reg > 0, valid / reg, np.nan)
        shares = np.where(valid[..., None] > 0, sums[..., 3:] / valid[..., None], np.nan)
    implied_valid = reg_all * valid_rate
    return turnout, implied_valid, implied_valid[..., None] * shares


def clean_station_estimates(
    region: np.ndarray,
    registered: np.ndarray,
    issued: np.ndarray,
    votes: np.ndarray,
    option_ids: list[str],
    excluded: np.ndarray | None = None,
    *,
    bootstrap: int = 200,
    seed: int = 0,
) -> dict[str, object]:
    """National and per-region result implied by stations without proof flags (module doc).

    NaN/negative figures mean unknown; such stations are not used (their registered voters
    still count towards the region's total when known). JSON-serialisable output.
    """
    region = np.asarray(region).astype(str)
    v = np.asarray(registered, dtype=np.float64)
    g = np.asarray(issued, dtype=np.float64)
    x = np.asarray(votes, dtype=np.float64)
    n, k = x.shape
    excl = np.zeros(n, bool) if excluded is None else np.asarray(excluded, dtype=bool)
    known = np.isfinite(v) & np.isfinite(g) & np.all(np.isfinite(x), axis=1)
    known &= (v > 0) & (g >= 0) & np.all(x >= 0, axis=1)
    use = known & ~excl
    names, inv = np.unique(region, return_inverse=True)
    r = names.size
    reg_all = np.bincount(inv, weights=np.where(np.isfinite(v) & (v > 0), v, 0.0), minlength=r)
    cols = np.column_stack([v, g, x.sum(axis=1), x])
    cols = np.where(use[:, None], cols, 0.0)
    sums = np.stack([np.bincount(inv, weights=cols[:, j], minlength=r) for j in range(3 + k)], 1)
    turnout, implied_valid, implied_votes = _implied(reg_all, sums, k)
    covered = np.isfinite(implied_valid) & (implied_valid > 0)
    nat_valid = implied_valid[covered].sum()
    nat_votes = implied_votes[covered].sum(axis=0)
    nat_turnout = float(np.sum((reg_all * turnout)[covered]) / max(reg_all[covered].sum(), 1))
    rng = np.random.default_rng(seed)
    boot_reg_t = np.empty((bootstrap, r))
    boot_reg_s = np.empty((bootstrap, r, k))
    boot_nat_t = np.empty(bootstrap)
    boot_nat_s = np.empty((bootstrap, k))
    idx = np.flatnonzero(use)
    ui = inv[idx]
    ucols = cols[idx]
    start = 0
    for w in poisson_weights(rng, idx.size, bootstrap):
        size = w.shape[0]
        bs = np.zeros((size, r, 3 + k))
        for j in range(3 + k):
            wc = w * ucols[:, j]
            for b in range(size):
                bs[b, :, j] = np.bincount(ui, weights=wc[b], minlength=r)
        t_b, val_b, vot_b = _implied(reg_all, bs, k)
        sl = slice(start, start + size)
        with np.errstate(divide="ignore", invalid="ignore"):
            boot_reg_t[sl] = t_b
            boot_reg_s[sl] = vot_b / val_b[..., None]
            cov = covered[None, :] & np.isfinite(val_b)
            boot_nat_t[sl] = np.sum(np.where(cov, reg_all * t_b, 0), 1) / np.sum(
                np.where(cov, reg_all, 0), 1
            )
            nv = np.where(cov[..., None], vot_b, 0.0).sum(axis=1)
            boot_nat_s[sl] = nv / nv.sum(axis=1, keepdims=True)
        start += size

    def options(shares: np.ndarray, reps: np.ndarray) -> dict[str, object]:
        return {
            o: {
                "share": float(shares[j]) if np.isfinite(shares[j]) else None,
                "ci95": percentile_interval(reps[:, j]) if bootstrap else None,
            }
            for j, o in enumerate(option_ids)
        }

    with np.errstate(divide="ignore", invalid="ignore"):
        nat_shares = nat_votes / nat_valid if nat_valid > 0 else np.full(k, np.nan)
        reg_shares = implied_votes / implied_valid[:, None]
    regions: dict[str, object] = {}
    for i, name in enumerate(names):
        regions[str(name)] = {
            "stations_used": int(np.sum(use & (inv == i))),
            "stations_with_proof_flag": int(np.sum(excl & (inv == i))),
            "turnout": float(turnout[i]) if np.isfinite(turnout[i]) else None,
            "turnout_ci95": percentile_interval(boot_reg_t[:, i]) if bootstrap else None,
            "options": options(reg_shares[i], boot_reg_s[:, i, :]),
        }
    return {
        "method": "post-stratified by region: clean-station turnout and valid-vote shares, "
        "scaled to each region's registered voters; shares are of valid votes",
        "assumptions": ASSUMPTIONS,
        "interval": f"bootstrap over stations within region, Poisson(1) weights, {bootstrap} "
        "replicates, 2.5-97.5 percentiles",
        "kind": "estimate (not proof, not a statistical test)",
        "stations_used": int(use.sum()),
        "stations_with_proof_flag": int(excl.sum()),
        "stations_missing_figures": int(np.sum(~known & ~excl)),
        "regions_without_clean_stations": [str(names[i]) for i in np.flatnonzero(~covered)],
        "national": {
            "turnout": nat_turnout if np.isfinite(nat_turnout) else None,
            "turnout_ci95": percentile_interval(boot_nat_t) if bootstrap else None,
            "valid_votes": float(nat_valid),
            "options": options(nat_shares, boot_nat_s),
        },
        "regions": regions,
    }
