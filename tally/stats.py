"""Statistical tests on official figures. Pure functions on numpy arrays.

Never proof: each result says which null model it was tested against.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

INTEGER_TOLERANCE_PP = 0.05


@dataclass(frozen=True)
class IntegerPercentResult:
    observed: int
    null_mean: float
    null_sd: float
    excess: float
    p_value: float
    significant: bool
    leader: str
    stations_included: int
    draws: int
    null_model: str = (
        "leader votes ~ Binomial(ballots_cast, leader/ballots_cast), "
        "ballots issued ~ Binomial(registered, issued/registered), redrawn per station"
    )
    inclusion_rule: str = (
        "ballots_cast > 0, registered >= 100, turnout <= 0.99, leader share <= 0.99; "
        "a station counts if its turnout (issued/registered) or leader share "
        "(leader/ballots_cast) is within 0.05 pp of an integer percent"
    )
    significance: str = "observed above the 99.9th percentile of the null"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def on_integer_percent(fraction: np.ndarray) -> np.ndarray:
    percent = 100.0 * fraction
    return np.abs(percent - np.round(percent)) <= INTEGER_TOLERANCE_PP + 1e-9


def integer_stations(
    registered: np.ndarray, issued: np.ndarray, cast: np.ndarray, leader: np.ndarray
) -> np.ndarray:
    """Per station: does its turnout or leader share sit on an integer percent?"""
    with np.errstate(divide="ignore", invalid="ignore"):
        return on_integer_percent(issued / registered) | on_integer_percent(leader / cast)


def integer_percent_test(
    registered: np.ndarray,
    issued: np.ndarray,
    cast: np.ndarray,
    leader: np.ndarray,
    leader_id: str,
    draws: int = 1000,
    seed: int = 0,
) -> IntegerPercentResult:
    """Kobak, Shpilkin & Pshenichnikov (2016): excess of integer percentages over a
    binomial null, which keeps the arithmetic pile-up of small stations at simple
    fractions (Rozenas 2017)."""
    registered, issued, cast, leader = (
        np.asarray(a, dtype=np.int64) for a in (registered, issued, cast, leader)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        turnout = issued / registered
        share = leader / cast
    keep = (cast > 0) & (registered >= 100) & (turnout <= 0.99) & (share <= 0.99)
    v, g, r, lead = registered[keep], issued[keep], cast[keep], leader[keep]
    observed = int(integer_stations(v, g, r, lead).sum())
    rng = np.random.default_rng(seed)
    null = np.empty(draws, dtype=np.int64)
    p_turnout, p_share = g / v, lead / r
    for i in range(draws):
        null[i] = integer_stations(v, rng.binomial(v, p_turnout), r, rng.binomial(r, p_share)).sum()
    mean, sd = float(null.mean()), float(null.std(ddof=1)) if draws > 1 else 0.0
    return IntegerPercentResult(
        observed=observed,
        null_mean=mean,
        null_sd=sd,
        excess=observed - mean,
        p_value=float((1 + np.sum(null >= observed)) / (draws + 1)),
        significant=bool(observed > np.quantile(null, 0.999)),
        leader=leader_id,
        stations_included=int(keep.sum()),
        draws=draws,
    )
