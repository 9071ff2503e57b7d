"""Integer-percentage test on official figures. Pure functions on numpy arrays.

Never proof: each result says which null model it was tested against.

Kobak, Shpilkin & Pshenichnikov (Annals of Applied Statistics 2016): stations whose turnout
or leader share is reported as an integer percentage are over-represented where figures are
written to order. Small stations pile up at simple fractions (1/2, 3/4) by arithmetic alone
(Rozenas 2017), so the null is binomial, not uniform:

* turnout = ballots issued / registered (G/V); leader share = leader votes / ballots cast
  (L/R, R = ballots found in the boxes, valid + invalid);
* a station is "on an integer" if its turnout or its leader share lies within
  ``INTEGER_TOLERANCE_PP`` (0.05) percentage points of an integer percent;
* inclusion: R > 0, V >= 100, turnout <= 0.99, leader share <= 0.99 (and G <= V);
* null: each included station's issued ballots ~ Binomial(V, G/V) and leader votes
  ~ Binomial(R, L/R), independently; the statistic is the number of included stations on an
  integer; significant when the observed count is above the null's 99.9th percentile.

Computation: redrawing 2 x 97,699 binomials 1,000 times is the slow way to sample this null.
Because each station is counted or not independently of the others, the null count is a sum
of independent Bernoulli(q_i) variables with q_i = 1 - (1 - P_turnout,i)(1 - P_share,i), and
each P is an exact sum of binomial probabilities over the counts that land within the
tolerance of an integer. We compute the q_i exactly (tails beyond 9 s.d. are dropped, error
< 1e-18 per station), report the exact null mean and s.d., and draw the 1,000 Monte Carlo null
counts from the Bernoulli(q_i): identical in distribution to redrawing the votes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.special import gammaln, xlog1py, xlogy

__all__ = [
    "INTEGER_TOLERANCE_PP",
    "IntegerPercentResult",
    "integer_distance_pp",
    "integer_hit_probability",
    "integer_percent",
    "integer_percent_test",
    "integer_stations",
    "on_integer_percent",
]

INTEGER_TOLERANCE_PP = 0.05
_EPS = 1e-9
_TAIL_SD = 9.0
_STATION_CHUNK = 16384
_DRAW_CHUNK = 50

NULL_MODEL = (
    "each included station's ballots issued ~ Binomial(registered, issued/registered) and "
    "leader votes ~ Binomial(ballots_cast, leader/ballots_cast), independently; statistic = "
    "number of included stations on an integer percent (turnout or leader share); null draws "
    "sampled as sums of independent Bernoulli(q_i) with q_i the exact per-station probability "
    "under those binomials (same distribution as redrawing the votes)"
)
INCLUSION_RULE = (
    "ballots_cast > 0, registered >= 100, ballots_issued <= registered, turnout <= 0.99, "
    "leader share <= 0.99, all four figures known; turnout = ballots_issued/registered, "
    "leader share = leader votes/ballots_cast; a station counts if its turnout or leader share "
    "is within 0.05 pp of an integer percent"
)


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
    null_quantile_999: float = 0.0
    mc_null_mean: float = 0.0
    mc_null_sd: float = 0.0
    stations_excluded: int = 0
    tolerance: float = INTEGER_TOLERANCE_PP
    null_model: str = NULL_MODEL
    inclusion_rule: str = INCLUSION_RULE
    significance: str = (
        "observed above the 99.9th percentile of the Monte Carlo null; p = (1 + #null >= "
        "observed)/(draws + 1); null_mean/null_sd exact, mc_null_* from the draws"
    )
    # Per-station arrays (not serialised): mask of included stations and, among all input
    # stations, the distance in pp of the closest qualifying figure (NaN where not on one).
    included: np.ndarray = field(default_factory=lambda: np.zeros(0, bool), repr=False)
    on_integer: np.ndarray = field(default_factory=lambda: np.zeros(0, bool), repr=False)
    distance_pp: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    which: np.ndarray = field(default_factory=lambda: np.zeros(0, "<U7"), repr=False)

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        for key in ("included", "on_integer", "distance_pp", "which"):
            out.pop(key)
        return out


def integer_distance_pp(fraction: np.ndarray) -> np.ndarray:
    """Distance, in percentage points, from ``fraction`` (0..1) to the nearest integer percent."""
    percent = 100.0 * np.asarray(fraction, dtype=np.float64)
    return np.abs(percent - np.round(percent))


def on_integer_percent(fraction: np.ndarray) -> np.ndarray:
    """True where ``fraction`` lies within 0.05 pp of an integer percent (NaN -> False)."""
    return integer_distance_pp(fraction) <= INTEGER_TOLERANCE_PP + _EPS


def integer_stations(
    registered: np.ndarray, issued: np.ndarray, cast: np.ndarray, leader: np.ndarray
) -> np.ndarray:
    """Per station: does its turnout (issued/registered) or leader share (leader/cast) sit on
    an integer percent? No inclusion rule applied here."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return on_integer_percent(issued / registered) | on_integer_percent(leader / cast)


def integer_hit_probability(n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Exact P(|100 X/n - round(100 X/n)| <= 0.05) for X ~ Binomial(n, p), per element.

    n must be >= 1. Sums the binomial pmf over every count x in [0, n] whose percentage lies
    within the tolerance of an integer, dropping x further than 9 s.d. (+3) from n p.
    """
    n = np.asarray(n, dtype=np.int64)
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    out = np.zeros(n.shape, dtype=np.float64)
    for start in range(0, n.size, _STATION_CHUNK):
        sl = slice(start, start + _STATION_CHUNK)
        out[sl] = _hit_probability_chunk(n[sl], p[sl])
    return out


def _hit_probability_chunk(n: np.ndarray, p: np.ndarray) -> np.ndarray:
    nf = n.astype(np.float64)
    sd = np.sqrt(nf * p * (1.0 - p))
    lo = np.clip(np.floor(nf * p - _TAIL_SD * sd - 3.0), 0, nf)
    hi = np.clip(np.ceil(nf * p + _TAIL_SD * sd + 3.0), 0, nf)
    # Integer percents k whose window can intersect [lo, hi].
    k_lo = np.floor(100.0 * lo / nf).astype(np.int64)
    k_hi = np.minimum(np.ceil(100.0 * hi / nf).astype(np.int64), 100)
    n_k = k_hi - k_lo + 1
    station = np.repeat(np.arange(n.size), n_k)
    k = k_lo[station] + _ragged_arange(n_k)
    ns = nf[station]
    g_lo = np.maximum(np.ceil(ns * (k - INTEGER_TOLERANCE_PP) / 100.0 - _EPS), 0.0)
    g_hi = np.minimum(np.floor(ns * (k + INTEGER_TOLERANCE_PP) / 100.0 + _EPS), ns)
    n_g = np.maximum(g_hi - g_lo + 1, 0).astype(np.int64)
    station = np.repeat(station, n_g)
    x = np.repeat(g_lo, n_g) + _ragged_arange(n_g)
    ns = nf[station]
    ps = p[station]
    logpmf = (
        gammaln(ns + 1.0)
        - gammaln(x + 1.0)
        - gammaln(ns - x + 1.0)
        + xlogy(x, ps)
        + xlog1py(ns - x, -ps)
    )
    prob = np.bincount(station, weights=np.exp(logpmf), minlength=n.size)
    return np.clip(prob, 0.0, 1.0)


def _ragged_arange(lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(l) for each l in ``lengths``."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)


def integer_percent(
    registered: np.ndarray,
    issued: np.ndarray,
    cast: np.ndarray,
    leader: np.ndarray,
    leader_id: str,
    draws: int = 1000,
    seed: int = 0,
) -> IntegerPercentResult:
    """Kobak, Shpilkin & Pshenichnikov (2016) integer-percentage test (module docstring).

    Inputs are per-station figures; NaN or negative entries mean "unknown" and exclude the
    station (counted in ``stations_excluded`` together with the inclusion rule's exclusions).
    Returns the election-wide result plus per-station arrays (``on_integer``, ``distance_pp``,
    ``which`` in {"turnout", "share", "both", ""}) for every input station.
    """
    v, g, r, lead = (np.asarray(a, dtype=np.float64) for a in (registered, issued, cast, leader))
    known = np.isfinite(v) & np.isfinite(g) & np.isfinite(r) & np.isfinite(lead)
    known &= (v >= 0) & (g >= 0) & (r >= 0) & (lead >= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        turnout = np.where(known & (v > 0), g / v, np.nan)
        share = np.where(known & (r > 0), lead / r, np.nan)
    keep = known & (r > 0) & (v >= 100) & (g <= v) & (turnout <= 0.99) & (share <= 0.99)
    keep &= lead <= r
    d_t = integer_distance_pp(turnout)
    d_s = integer_distance_pp(share)
    hit_t = keep & (d_t <= INTEGER_TOLERANCE_PP + _EPS)
    hit_s = keep & (d_s <= INTEGER_TOLERANCE_PP + _EPS)
    on_int = hit_t | hit_s
    distance = np.full(v.shape, np.nan)
    distance[hit_t] = d_t[hit_t]
    distance[hit_s] = np.fmin(distance[hit_s], d_s[hit_s])
    which = np.full(v.shape, "", dtype="<U7")
    which[hit_t] = "turnout"
    which[hit_s] = "share"
    which[hit_t & hit_s] = "both"
    observed = int(on_int.sum())
    m = int(keep.sum())
    draws = max(int(draws), 1)
    if m == 0:
        return IntegerPercentResult(
            observed=0, null_mean=0.0, null_sd=0.0, excess=0.0, p_value=1.0,
            significant=False, leader=leader_id, stations_included=0, draws=draws,
            stations_excluded=int(v.size), included=keep, on_integer=on_int,
            distance_pp=distance, which=which,
        )  # fmt: skip
    vi, gi, ri, li = (a[keep].astype(np.int64) for a in (v, g, r, lead))
    p_t = integer_hit_probability(vi, gi / vi)
    p_s = integer_hit_probability(ri, li / ri)
    q = 1.0 - (1.0 - p_t) * (1.0 - p_s)
    exact_mean = float(q.sum())
    exact_sd = float(np.sqrt(np.sum(q * (1.0 - q))))
    null = _bernoulli_sum_draws(q, draws, seed)
    q999 = float(np.quantile(null, 0.999))
    return IntegerPercentResult(
        observed=observed,
        null_mean=exact_mean,
        null_sd=exact_sd,
        excess=observed - exact_mean,
        p_value=float((1 + np.sum(null >= observed)) / (draws + 1)),
        significant=bool(observed > q999),
        leader=leader_id,
        stations_included=m,
        draws=draws,
        null_quantile_999=q999,
        mc_null_mean=float(null.mean()),
        mc_null_sd=float(null.std(ddof=1)) if draws > 1 else 0.0,
        stations_excluded=int(v.size - m),
        included=keep,
        on_integer=on_int,
        distance_pp=distance,
        which=which,
    )


def _bernoulli_sum_draws(q: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """``draws`` samples of sum_i Bernoulli(q_i), in chunks to bound memory."""
    rng = np.random.default_rng(seed)
    out = np.empty(draws, dtype=np.int64)
    # Stations with q = 0 or 1 are deterministic: only draw for the rest.
    fixed = int(np.sum(q >= 1.0))
    q = q[(q > 0.0) & (q < 1.0)].astype(np.float32)
    chunk = max(1, min(_DRAW_CHUNK, int(4_000_000 // max(q.size, 1))))
    for start in range(0, draws, chunk):
        size = min(chunk, draws - start)
        u = rng.random((size, q.size), dtype=np.float32)
        out[start : start + size] = fixed + np.count_nonzero(u < q, axis=1)
    return out


def integer_percent_test(
    registered: np.ndarray,
    issued: np.ndarray,
    cast: np.ndarray,
    leader: np.ndarray,
    leader_id: str,
    draws: int = 1000,
    seed: int = 0,
) -> IntegerPercentResult:
    """Backward-compatible name for :func:`integer_percent`."""
    return integer_percent(registered, issued, cast, leader, leader_id, draws=draws, seed=seed)
