"""All statistical tests and estimates on an election's official figures, in one call.

``analyse(stations)`` is pure (no I/O): it returns what goes into ``summary.json`` ("tests",
"estimates"), the per-station statistical flags for ``discrepancies.csv`` and the arrays the
plots need. Statistical results are never proof; each states its null model and inclusion
rule next to its result.

Definitions used throughout: turnout = ballots issued / registered; leader = the option with
the most official votes in the election; leader share = leader votes / ballots cast (ballots
found in the boxes). A figure that is missing (NaN or negative) excludes the station from
each test that needs it, and every test reports how many stations it included/excluded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tally.forensics.digits import digit_tests
from tally.forensics.estimates import clean_station_estimates
from tally.forensics.integer_percent import INTEGER_TOLERANCE_PP, integer_percent
from tally.forensics.klimek import INCLUSION_RULE as KLIMEK_INCLUSION
from tally.forensics.klimek import fit_klimek, klimek_histogram
from tally.forensics.outliers import (
    MIN_GROUP,
    MIN_REGISTERED,
    Q_THRESHOLD,
    OutlierResult,
    high_turnout_unanimity,
    outlier_test,
)
from tally.forensics.shpilkin import shpilkin_estimate
from tally.vocab import Flag, ForensicTest, ReportFile

__all__ = ["Analysis", "StationFlag", "Stations", "analyse"]

NOT_PROOF = "statistical signal, not proof"


@dataclass(frozen=True)
class Stations:
    precinct_id: np.ndarray  # str
    region: np.ndarray  # str
    district: np.ndarray  # str
    registered: np.ndarray  # official figures; NaN or -1 = unknown
    issued: np.ndarray
    cast: np.ndarray
    invalid: np.ndarray
    votes: np.ndarray  # (n, k)
    option_ids: list[str]
    excluded: np.ndarray | None = None  # bool: stations with a proof flag (out of estimates)


@dataclass(frozen=True)
class StationFlag:
    precinct_id: str
    flag: Flag
    option: str
    statistic: float | None
    p_value: float | None
    q_value: float | None
    detail: str


@dataclass(frozen=True)
class Analysis:
    tests: dict[str, dict]
    estimates: dict[str, dict]
    station_flags: list[StationFlag]
    figures: dict[str, object]


def _figure(a: np.ndarray) -> np.ndarray:
    """Float copy with unknown (NaN or negative) entries as NaN."""
    x = np.asarray(a, dtype=np.float64).copy()
    x[~np.isfinite(x) | (x < 0)] = np.nan
    return x


def analyse(stations: Stations, *, draws: int = 1000, seed: int = 0) -> Analysis:
    """Run every statistical test and the clean-station estimate (module docstring)."""
    st = stations
    n = len(st.precinct_id)
    pid = np.asarray(st.precinct_id).astype(str)
    region = np.asarray(st.region).astype(str)
    district = np.asarray(st.district).astype(str)
    v, g, r = _figure(st.registered), _figure(st.issued), _figure(st.cast)
    votes = _figure(st.votes).reshape(n, len(st.option_ids))
    k = votes.shape[1]
    tests: dict[str, dict] = {}
    flags: list[StationFlag] = []
    figures: dict[str, object] = {}
    totals = np.nansum(votes, axis=0) if n else np.zeros(k)
    if n == 0 or k == 0 or not np.any(totals > 0):
        skipped = {"skipped": "no stations with known votes", "stations": n}
        return Analysis(
            tests={name: dict(skipped) for name in ForensicTest},
            estimates={"clean_stations": dict(skipped)},
            station_flags=[],
            figures={},
        )
    lead_j = int(np.argmax(totals))
    leader_id = st.option_ids[lead_j]
    lead = votes[:, lead_j]
    others = np.where(np.all(np.isfinite(votes), axis=1), np.nansum(votes, axis=1) - lead, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        turnout = np.where((v > 0) & (g <= v), g / v, np.nan)
        share = np.where((r > 0) & (lead <= r), lead / r, np.nan)
    figures["turnout"] = turnout
    figures["leader_share"] = share
    figures["leader"] = leader_id

    # 1. Integer percentages.
    ip = integer_percent(v, g, r, lead, leader_id, draws=draws, seed=seed)
    ip_dict = ip.as_dict()
    ip_dict["station_flags"] = (
        f"emitted for stations on an integer (flag {Flag.INTEGER_PERCENT})"
        if ip.significant
        else "not emitted: the election-wide test is not significant, so stations on an "
        "integer are expected by chance"
    )
    ip_dict["kind"] = NOT_PROOF
    tests[ForensicTest.INTEGER_PERCENT] = ip_dict
    if ip.significant:
        for i in np.flatnonzero(ip.on_integer):
            which = {"both": "turnout and leader share", "turnout": "turnout"}.get(
                str(ip.which[i]), "leader share"
            )
            flags.append(
                StationFlag(
                    pid[i], Flag.INTEGER_PERCENT, leader_id, float(ip.distance_pp[i]), None, None,
                    f"{which} within {ip.distance_pp[i]:.3f} pp of an integer percent, in an "
                    f"election with a significant excess of such stations ({ip.excess:.0f} over "
                    f"the binomial null); by itself not unlikely at one station, {NOT_PROOF}",
                )
            )  # fmt: skip
    edges = np.linspace(0.0, 1.0, 1001)  # 0.1 pp bins for integer-peak histograms
    figures["integer_peaks"] = {
        "edges": edges,
        "turnout": np.histogram(turnout[ip.included], bins=edges)[0],
        "leader_share": np.histogram(share[ip.included], bins=edges)[0],
        "integer_percents": np.arange(101),
        "tolerance_pp": INTEGER_TOLERANCE_PP,
    }

    # 2. Klimek's turnout x share histogram and fit (the spec's "fingerprint" test).
    kl_in = (v >= 100) & (r > 0) & np.isfinite(turnout) & np.isfinite(share)
    hist, x_edges, y_edges = klimek_histogram(turnout[kl_in], share[kl_in])
    figures[ForensicTest.KLIMEK] = {"hist": hist, "x_edges": x_edges, "y_edges": y_edges}
    fit = fit_klimek(turnout[kl_in], share[kl_in], seed=seed)
    kl: dict[str, object] = {
        "image": ReportFile.KLIMEK_PLOT,
        "axes": "rows: turnout (ballots issued/registered), columns: leader share "
        "(leader/ballots cast), 100 x 100 bins on [0, 1]",
        "inclusion_rule": KLIMEK_INCLUSION,
        "stations_included": int(kl_in.sum()),
        "stations_excluded": int(n - kl_in.sum()),
        "leader": leader_id,
        "kind": NOT_PROOF + "; the fit is indicative (published fits vary widely)",
    }
    if fit is None:
        kl.update(f_incremental=None, f_extreme=None, skipped="fewer than 50 stations to fit")
    else:
        kl.update(fit.as_dict())
    tests[ForensicTest.KLIMEK] = kl

    # 3. Shpilkin.
    sh = shpilkin_estimate(v, g, lead, others, seed=seed)
    sh["leader"] = leader_id
    sh["kind"] = "estimate under a stated assumption, " + NOT_PROOF
    tests[ForensicTest.SHPILKIN] = sh

    # 4. Outliers within districts.
    usable_t = (v >= MIN_REGISTERED) & np.isfinite(turnout)
    usable_s = (v >= MIN_REGISTERED) & np.isfinite(share)
    out_t, out_s = outlier_test(turnout, share, district, region, usable_t, usable_s)
    htu = high_turnout_unanimity(v, turnout, share)
    flags.extend(_outlier_flags(pid, out_t, Flag.TURNOUT_OUTLIER, "turnout", turnout, ""))
    flags.extend(_outlier_flags(pid, out_s, Flag.SHARE_OUTLIER, "leader share", share, leader_id))
    for i in np.flatnonzero(htu):
        flags.append(
            StationFlag(
                pid[i], Flag.HIGH_TURNOUT_UNANIMITY, leader_id, None, None, None,
                f"turnout {100 * turnout[i]:.1f}% and leader share {100 * share[i]:.1f}% (both "
                f">= 95%, registered {int(v[i])}); {NOT_PROOF}",
            )
        )  # fmt: skip
    tests[ForensicTest.OUTLIERS] = {
        "null_model": "within the comparison group, turnout (and leader share) ~ Normal; robust "
        "z = (x - median) / (1.4826 x MAD); two-sided p-value from Student t with "
        "0.37 (n - 1) + 1.5 degrees of freedom for a group of n stations (the MAD's own "
        "noise, calibrated by simulation)",
        "comparison_group": f"the station's district if it has >= {MIN_GROUP} usable stations, "
        f"else its region if that has >= {MIN_GROUP}, else the whole election",
        "inclusion_rule": f"registered >= {MIN_REGISTERED}; turnout test: ballots_issued <= "
        "registered and both known; share test: ballots_cast > 0, leader votes <= ballots_cast",
        "multiple_testing": "Benjamini-Hochberg q-values over all turnout and share p-values "
        f"together; flag when q < {Q_THRESHOLD}",
        "significant": bool(out_t.flagged.any() or out_s.flagged.any()),
        "significance": f"at least one station with q < {Q_THRESHOLD} (false discovery rate "
        f"{Q_THRESHOLD} over the family)",
        Flag.TURNOUT_OUTLIER: _outlier_summary(out_t, usable_t),
        Flag.SHARE_OUTLIER: _outlier_summary(out_s, usable_s),
        Flag.HIGH_TURNOUT_UNANIMITY: {
            "rule": "turnout >= 0.95 and leader share >= 0.95, registered >= 100 (descriptive, "
            "no p-value)",
            "flagged": int(htu.sum()),
        },
        "leader": leader_id,
        "kind": NOT_PROOF,
    }

    # 5. Digits (low weight, never a flag).
    tests[ForensicTest.DIGITS] = digit_tests(votes, region, seed=seed)

    # Estimates from stations without proof flags.
    estimates = {
        "clean_stations": clean_station_estimates(
            region, v, g, votes, list(st.option_ids), st.excluded, seed=seed
        )
    }
    return Analysis(tests=tests, estimates=estimates, station_flags=flags, figures=figures)


def _outlier_summary(res: OutlierResult, usable: np.ndarray) -> dict[str, object]:
    levels = {
        lvl: int(np.sum(res.group_level == lvl)) for lvl in ("district", "region", "election")
    }
    return {
        "stations_tested": int(np.sum(np.isfinite(res.p))),
        "stations_excluded": int(usable.size - np.sum(np.isfinite(res.p))),
        "flagged": int(res.flagged.sum()),
        "flagged_high": int(np.sum(res.flagged & (res.z > 0))),
        "flagged_low": int(np.sum(res.flagged & (res.z < 0))),
        "comparison_group_used": levels,
    }


def _outlier_flags(
    pid: np.ndarray, res: OutlierResult, flag: Flag, what: str, x: np.ndarray, option: str
) -> list[StationFlag]:
    out = []
    for i in np.flatnonzero(res.flagged):
        out.append(
            StationFlag(
                pid[i], flag, option, float(res.z[i]), float(res.p[i]), float(res.q[i]),
                f"{what} {100 * x[i]:.1f}% is {abs(res.z[i]):.1f} robust s.d. "
                f"{'above' if res.z[i] > 0 else 'below'} the median of its "
                f"{res.group_level[i]} ({int(res.group_size[i])} stations; q = {res.q[i]:.2g}); "
                f"{NOT_PROOF}",
            )
        )  # fmt: skip
    return out
