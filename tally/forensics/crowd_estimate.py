"""The official result corrected just enough to agree with verified crowd evidence.
Pure functions; an estimate, kept apart from proof.

At each station, every option is given at least the votes a verified crowd source
proved for it, and the votes added are taken from the leader (never below the
leader's own proven votes), the pattern of the falsifications the proof rules
catch. Ballots cast stay as in the protocol. The result is a minimal correction:
the crowd only proves lower bounds, so the truth can be further from the official
figures, never nearer.
"""

from __future__ import annotations

import numpy as np

from tally.forensics.bootstrap import percentile_interval, poisson_weights

__all__ = ["ASSUMPTIONS", "corrected_votes", "crowd_corrected_estimate"]

ASSUMPTIONS = [
    "each option received at least the votes a verified crowd source proved for it at a "
    "station (sources are not added together: the largest is used)",
    "votes added to an option were taken from the leader (votes moved, the falsification "
    "pattern the proof rules catch), and no more than proven were moved",
    "stations without crowd evidence keep their official figures",
    "a lower bound on the correction, not an estimate of the true result: the crowd is "
    "self-selected and proves minimums",
]


def corrected_votes(official: np.ndarray, crowd: np.ndarray, leader: int) -> np.ndarray:
    """Per station (rows) and option (columns): official votes raised to the crowd's
    proven votes, the increase taken from the leader."""
    official = np.nan_to_num(np.asarray(official, dtype=np.float64))
    crowd = np.nan_to_num(np.asarray(crowd, dtype=np.float64))
    corrected = np.maximum(official, crowd)
    others = np.ones(official.shape[1], dtype=bool)
    others[leader] = False
    added = (corrected[:, others] - official[:, others]).sum(axis=1)
    corrected[:, leader] = np.maximum(official[:, leader] - added, crowd[:, leader])
    return corrected


def crowd_corrected_estimate(
    official: np.ndarray,
    crowd: np.ndarray,
    option_ids: list[str],
    region: np.ndarray,
    draws: int = 500,
    seed: int = 0,
) -> dict[str, object]:
    """National and regional shares of the valid votes, official and crowd-corrected,
    with a bootstrap interval over stations (``bootstrap.poisson_weights``)."""
    official = np.nan_to_num(np.asarray(official, dtype=np.float64))
    n, k = official.shape if official.ndim == 2 else (0, len(option_ids))
    if n == 0 or official.sum() <= 0:
        return {"skipped": "no official votes", "assumptions": ASSUMPTIONS}
    leader = int(np.argmax(official.sum(axis=0)))
    corrected = corrected_votes(official, crowd, leader)
    touched = np.any(corrected != official, axis=1)

    def shares(votes: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        totals = votes.sum(axis=0) if weights is None else weights @ votes
        return totals / totals.sum() if totals.sum() > 0 else np.full(k, np.nan)

    rng = np.random.default_rng(seed)
    reps = np.array(
        [
            shares(corrected, weights)
            for batch in poisson_weights(rng, n, draws)
            for weights in batch
        ]
    ).reshape(draws, k)

    national = shares(corrected)
    official_national = shares(official)
    regions: dict[str, dict[str, float]] = {}
    region = np.asarray(region).astype(str)
    for name in sorted(set(region)):
        here = region == name
        regional = shares(corrected[here])
        regions[name] = {o: round(float(regional[j]), 4) for j, o in enumerate(option_ids)}
    return {
        "method": "official protocols corrected to the verified crowd evidence (module doc)",
        "stations_corrected": int(touched.sum()),
        "stations": n,
        "leader": option_ids[leader],
        "national": {
            o: {
                "official_share": round(float(official_national[j]), 4),
                "corrected_share": round(float(national[j]), 4),
                "interval_95": percentile_interval(reps[:, j]),
            }
            for j, o in enumerate(option_ids)
        },
        "regions": regions,
        "interval": f"bootstrap over stations, {draws} draws; sampling variation only",
        "assumptions": ASSUMPTIONS,
    }
