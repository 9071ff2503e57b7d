"""Generate the synthetic Belarus-2020-like seed election (``election/1`` folder).

``python -m seeds.generate [--out seeds/by-2020] [--seed 2020] [--clean]``

The real 5,767 polling stations of 2020 get synthetic registered-voter counts and an
honest "true" result (``truth.csv``). Protocols are "known" for 1,310 stations, as in
2020; a documented part of them is falsified the way 2020 protocols were (votes moved
to the incumbent, ballots stuffed, numbers rounded to integer percentages), and a few
carry arithmetic slips (``falsified.csv``). ``--clean`` writes a control election with
the same truth and no falsification at all.

The model maths are pure functions of numpy arrays and a ``numpy.random.Generator``;
file I/O lives at the bottom. Every stage draws from its own child of
``SeedSequence(seed)``, so the clean and falsified variants share the same truth and the
same known stations, and re-running with the same seed writes identical bytes.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import math
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, cast

import numpy as np

from seeds.model import (
    BALLOT_DIR,
    ELECTION_FILE,
    FALSIFIED_COLUMNS,
    FALSIFIED_FILE,
    OFFICIAL_FILE,
    PRECINCT_COLUMNS,
    PRECINCTS_FILE,
    README_FILE,
    SEED_DIR,
    SLIP_SCHEME,
    TRUTH_FILE,
    SeedElection,
    count_columns,
    load_seed,
    read_csv_rows,
)

__all__ = [
    "DEFAULT_SEED",
    "OPTIONS",
    "SEED_DIR",
    "SOURCE_STATIONS",
    "GeneratedElection",
    "ModelParams",
    "SeedElection",
    "Station",
    "build_election",
    "generate_election",
    "load_seed",
    "load_stations",
    "main",
    "write_election",
    "write_subset",
]

SOURCE_STATIONS = Path(__file__).parent / "sources" / "by2020-polling-stations.csv.gz"
DEFAULT_SEED = 2020
ELECTION_ID = "by-2020-president"
CLEAN_ELECTION_ID = "by-2020-president-clean"
ELECTION_NAME = "Presidential election, Republic of Belarus (synthetic seed)"
ELECTION_DATE = "2020-08-09"

# Ballot order, as printed on the 2020 ballot.
OPTIONS: tuple[tuple[str, str], ...] = (
    ("dmitriyev", "Andrei Dmitriyev"),
    ("kanapatskaya", "Hanna Kanapatskaya"),
    ("lukashenko", "Alexander Lukashenko"),
    ("tsikhanouskaya", "Sviatlana Tsikhanouskaya"),
    ("charachen", "Siarhei Charachen"),
    ("against_all", "Against all"),
)
OPTION_IDS: list[str] = [oid for oid, _ in OPTIONS]
INCUMBENT = "lukashenko"
CHALLENGER = "tsikhanouskaya"
# Options whose votes fraudsters also shave, in the order they take from them.
MINOR_OPTIONS: list[str] = ["against_all", "kanapatskaya", "dmitriyev", "charachen"]
COLUMNS: list[str] = count_columns(OPTION_IDS)

Area = Literal["minsk", "urban", "rural", "abroad"]
AREAS: tuple[Area, ...] = ("minsk", "urban", "rural", "abroad")
Scheme = Literal["moved", "stuffed", "moved+stuffed"]
Target = Literal["turnout", "share", ""]
SlipKind = Literal["cast_off", "invalid_off", "digit_swap", "cancelled_off"]
SLIP_KINDS: tuple[SlipKind, ...] = ("cast_off", "invalid_off", "digit_swap", "cancelled_off")
# Mostly the check every analyst runs (ballots_cast = invalid + options); a few on the
# ballots-received line.
SLIP_WEIGHTS: tuple[float, ...] = (0.35, 0.25, 0.3, 0.1)

Counts = dict[str, int]  # one protocol: column -> number


# --------------------------------------------------------------------------------------
# Stations


@dataclass(frozen=True)
class Station:
    precinct_id: str
    region: str
    district: str
    name: str
    address: str
    latitude: str  # kept as the source's text so the output is byte-stable
    longitude: str
    area: Area

    @property
    def region_code(self) -> str:
        return self.precinct_id[:2]


def area_of(precinct_id: str, address: str) -> Area:
    """Urban if the address starts with "г." (town or urban settlement), else rural.

    The 44 embassy stations are filed under Minsk city's Lenin district in the source;
    their addresses start with a postcode or country, which tells them apart. Every other
    station of Minsk city (region 07) votes as Minsk, including the former village of
    Kolyadichi ("п.Колядичи"), a city neighbourhood since its incorporation.
    """
    if precinct_id.startswith("07-002-") and not address.startswith("г."):
        return "abroad"
    if precinct_id.startswith("07-"):
        return "minsk"
    if address.startswith("г."):
        return "urban"
    return "rural"


def load_stations(path: Path = SOURCE_STATIONS) -> list[Station]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [
        Station(
            precinct_id=r["precinct_id"],
            region=r["region"],
            district=r["district"],
            name=r["name"],
            address=r["address"],
            latitude=r["latitude"],
            longitude=r["longitude"],
            area=area_of(r["precinct_id"], r["address"]),
        )
        for r in rows
    ]


# --------------------------------------------------------------------------------------
# Parameters


def _by_area(minsk: float, urban: float, rural: float, abroad: float) -> dict[str, float]:
    return {"minsk": minsk, "urban": urban, "rural": rural, "abroad": abroad}


@dataclass(frozen=True)
class ModelParams:
    """Every number the model uses; the folder README prints them."""

    # Registered voters. Urban: a normal core fitted to the observed quartiles
    # (~1,370 / 1,810 / 2,200) plus small special stations (hospitals, sanatoria, units)
    # and big new housing estates. Rural and abroad: log-normal.
    urban_core_mean: float = 1830.0
    urban_core_sd: float = 610.0
    urban_core_min: int = 500
    urban_small_share: float = 0.03
    urban_small_range: tuple[int, int] = (37, 600)
    urban_large_share: float = 0.035
    urban_large_range: tuple[int, int] = (2900, 7900)
    rural_median: float = 335.0
    rural_sigma: float = 0.55
    rural_range: tuple[int, int] = (40, 2600)
    abroad_median: float = 220.0
    abroad_sigma: float = 0.9
    abroad_range: tuple[int, int] = (20, 2500)

    # Turnout (ballots issued / registered): truncated normal per station around
    # base + area + region + district effects; the base is solved to hit the target.
    turnout_target: float = 0.78
    turnout_sd: float = 0.05
    turnout_bounds: tuple[float, float] = (0.45, 0.97)
    turnout_area: Mapping[str, float] = field(
        default_factory=lambda: _by_area(-0.015, 0.0, 0.035, -0.05)
    )
    turnout_region: Mapping[str, float] = field(
        default_factory=lambda: {
            "01": 0.01,
            "02": -0.005,
            "03": 0.01,
            "04": 0.0,
            "05": -0.005,
            "06": 0.005,
            "07": 0.0,
        }
    )
    turnout_district_sd: float = 0.015

    # Votes: Lukashenko's share of valid votes is logit-normal (area + region + district
    # + station), its base solved to hit the national share; the rest is split between
    # Tsikhanouskaya and the minor options by a Dirichlet around their national weights.
    incumbent_valid_share: float = 0.345
    minor_valid_shares: Mapping[str, float] = field(
        default_factory=lambda: {
            "against_all": 0.044,
            "kanapatskaya": 0.019,
            "dmitriyev": 0.0145,
            "charachen": 0.0145,
        }
    )
    incumbent_logit_area: Mapping[str, float] = field(
        default_factory=lambda: _by_area(-0.65, 0.0, 0.85, -1.3)
    )
    incumbent_logit_region: Mapping[str, float] = field(
        default_factory=lambda: {
            "01": 0.15,
            "02": 0.05,
            "03": 0.2,
            "04": -0.1,
            "05": -0.05,
            "06": 0.15,
            "07": 0.0,
        }
    )
    incumbent_logit_district_sd: float = 0.15
    incumbent_logit_station_sd: float = 0.3
    non_incumbent_concentration: float = 400.0
    invalid_mean: float = 0.015
    invalid_sd: float = 0.005
    invalid_bounds: tuple[float, float] = (0.003, 0.05)
    # Voters who took a ballot but did not put it in the box.
    lost_ballot_rate: float = 0.0003
    early_mean: Mapping[str, float] = field(
        default_factory=lambda: _by_area(0.41, 0.44, 0.50, 0.30)
    )
    early_sd: float = 0.06
    early_bounds: tuple[float, float] = (0.2, 0.75)
    home_rate: Mapping[str, float] = field(default_factory=lambda: _by_area(0.02, 0.03, 0.08, 0.0))
    # Ballots delivered: the list size plus a reserve of up to this fraction, in tens.
    received_reserve: float = 0.03

    # Official protocols.
    known_protocols: int = 1310
    known_urban_share: float = 0.75
    known_minsk_weight: float = 2.0  # observers were most active in Minsk
    falsified_share: float = 0.38
    scheme_weights: Mapping[str, float] = field(
        default_factory=lambda: {"moved": 0.5, "moved+stuffed": 0.35, "stuffed": 0.15}
    )
    integer_target_share: float = 0.5
    round_to_five_share: float = 0.3  # fraudsters like 75%, 80%, ...
    kept_fraction_range: tuple[float, float] = (0.02, 0.40)
    kept_fraction_beta: tuple[float, float] = (1.3, 3.5)  # skewed towards low r
    minor_kept_range: tuple[float, float] = (0.3, 1.0)
    stuff_fraction_range: tuple[float, float] = (0.15, 0.8)  # of the non-voters
    target_cap_percent: int = 97  # keep targets inside the forensics filter (<= 99%)
    target_min_registered: int = 100  # the forensics filter's V >= 100
    arithmetic_slips: int = 12


PARAMS = ModelParams()


# --------------------------------------------------------------------------------------
# Small numerical helpers (pure)


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def truncated_normal_mean(mu: float, sd: float, lo: float, hi: float) -> float:
    a, b = (lo - mu) / sd, (hi - mu) / sd
    mass = _cdf(b) - _cdf(a)
    if mass < 1e-12:  # all the mass is beyond a bound
        return lo if mu < lo else hi
    return mu + sd * (_phi(a) - _phi(b)) / mass


def draw_truncated_normal(
    mu: np.ndarray, sd: float, bounds: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """Normal draws restricted to ``bounds`` by redrawing those outside."""
    lo, hi = bounds
    out = rng.normal(mu, sd)
    bad = (out < lo) | (out > hi)
    while bad.any():
        out[bad] = rng.normal(mu[bad], sd)
        bad = (out < lo) | (out > hi)
    return out


def solve_increasing(fn: Callable[[float], float], target: float, lo: float, hi: float) -> float:
    """Bisection for an increasing ``fn``: the x in [lo, hi] with fn(x) == target."""
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if fn(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _logistic(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _lookup(keys: Sequence[str], table: Mapping[str, float]) -> np.ndarray:
    return np.array([table[k] for k in keys], dtype=float)


def _district_effects(
    stations: Sequence[Station], sd: float, rng: np.random.Generator
) -> np.ndarray:
    districts = sorted({s.district for s in stations})
    effect = dict(zip(districts, rng.normal(0.0, sd, len(districts)), strict=True))
    return np.array([effect[s.district] for s in stations])


def within_integer_percent(num: int, den: int, percent: int) -> bool:
    """|100·num/den − percent| ≤ 0.04 pp, in exact integer arithmetic.

    0.04 rather than the forensics window's 0.05 leaves room for float rounding in
    whatever tool later checks it.
    """
    return den > 0 and 25 * abs(100 * num - percent * den) <= den


# --------------------------------------------------------------------------------------
# Registered voters


def draw_registered(
    areas: Sequence[Area], params: ModelParams, rng: np.random.Generator
) -> np.ndarray:
    n = len(areas)
    area = np.array(areas)
    # Draw every component for every station so the stream does not depend on the mix.
    core = draw_truncated_normal(
        np.full(n, params.urban_core_mean),
        params.urban_core_sd,
        (params.urban_core_min, params.urban_large_range[0]),
        rng,
    )
    small_lo, small_hi = params.urban_small_range
    small = np.exp(rng.uniform(math.log(small_lo), math.log(small_hi), n))
    large = rng.uniform(*params.urban_large_range, n)
    kind = rng.uniform(size=n)
    urban = np.where(
        kind < params.urban_small_share,
        small,
        np.where(kind > 1.0 - params.urban_large_share, large, core),
    )
    rural = np.clip(
        params.rural_median * np.exp(rng.normal(0.0, params.rural_sigma, n)), *params.rural_range
    )
    abroad = np.clip(
        params.abroad_median * np.exp(rng.normal(0.0, params.abroad_sigma, n)),
        *params.abroad_range,
    )
    value = np.select(
        [np.isin(area, ["minsk", "urban"]), area == "rural"], [urban, rural], default=abroad
    )
    return np.rint(value).astype(np.int64)


# --------------------------------------------------------------------------------------
# The true result


def simulate_truth(
    stations: Sequence[Station],
    registered: np.ndarray,
    params: ModelParams,
    rng: np.random.Generator,
) -> list[Counts]:
    """An honest election: turnout, vote shares, then binomial/multinomial counts."""
    n = len(stations)
    areas = [s.area for s in stations]
    regions = [s.region_code for s in stations]
    weight = registered.astype(float)

    # Turnout: solve the base so that the registered-weighted expected turnout is on target.
    turnout_mu = (
        _lookup(areas, params.turnout_area)
        + _lookup(regions, params.turnout_region)
        + _district_effects(stations, params.turnout_district_sd, rng)
    )

    def national_turnout(base: float) -> float:
        means = [
            truncated_normal_mean(base + m, params.turnout_sd, *params.turnout_bounds)
            for m in turnout_mu
        ]
        return float(np.dot(weight, means) / weight.sum())

    turnout_base = solve_increasing(national_turnout, params.turnout_target, 0.0, 1.0)
    turnout = draw_truncated_normal(
        turnout_base + turnout_mu, params.turnout_sd, params.turnout_bounds, rng
    )
    invalid_rate = draw_truncated_normal(
        np.full(n, params.invalid_mean), params.invalid_sd, params.invalid_bounds, rng
    )

    # Lukashenko's share of valid votes, logit scale; base solved on expected valid votes.
    logit = (
        _lookup(areas, params.incumbent_logit_area)
        + _lookup(regions, params.incumbent_logit_region)
        + _district_effects(stations, params.incumbent_logit_district_sd, rng)
        + rng.normal(0.0, params.incumbent_logit_station_sd, n)
    )
    valid_weight = weight * turnout * (1.0 - invalid_rate)
    logit_base = solve_increasing(
        lambda b: float(np.dot(valid_weight, _logistic(b + logit)) / valid_weight.sum()),
        params.incumbent_valid_share,
        -10.0,
        10.0,
    )
    incumbent = _logistic(logit_base + logit)

    # The non-incumbent valid votes: Tsikhanouskaya and the minor options.
    others_total = 1.0 - params.incumbent_valid_share
    minor_ids = [o for o in OPTION_IDS if o not in (INCUMBENT, CHALLENGER)]
    alpha_of = dict(params.minor_valid_shares)
    alpha_of[CHALLENGER] = others_total - sum(alpha_of.values())
    split_ids = [CHALLENGER, *minor_ids]
    alpha = np.array([alpha_of[o] / others_total for o in split_ids])
    split = rng.dirichlet(alpha * params.non_incumbent_concentration, n)

    # Probabilities per ballot cast: invalid first, then options in ballot order.
    probs = np.zeros((n, 1 + len(OPTION_IDS)))
    probs[:, 0] = invalid_rate
    valid = 1.0 - invalid_rate
    probs[:, 1 + OPTION_IDS.index(INCUMBENT)] = valid * incumbent
    for j, oid in enumerate(split_ids):
        probs[:, 1 + OPTION_IDS.index(oid)] = valid * (1.0 - incumbent) * split[:, j]
    probs /= probs.sum(axis=1, keepdims=True)

    issued = rng.binomial(registered, turnout)
    cast = issued - rng.binomial(issued, params.lost_ballot_rate)
    votes = rng.multinomial(cast, probs)
    early_rate = draw_truncated_normal(
        _lookup(areas, params.early_mean), params.early_sd, params.early_bounds, rng
    )
    early = rng.binomial(issued, early_rate)
    home = rng.binomial(issued - early, _lookup(areas, params.home_rate))
    reserve = rng.uniform(0.0, params.received_reserve, n)
    received = (np.ceil(registered * (1.0 + reserve) / 10.0) * 10).astype(np.int64)

    rows: list[Counts] = []
    for i in range(n):
        row: Counts = {
            "registered": int(registered[i]),
            "ballots_issued": int(issued[i]),
            "ballots_cast": int(cast[i]),
            "invalid": int(votes[i, 0]),
        }
        for j, oid in enumerate(OPTION_IDS):
            row[oid] = int(votes[i, 1 + j])
        row["ballots_issued_early"] = int(early[i])
        row["ballots_issued_home"] = int(home[i])
        row["ballots_received"] = int(received[i])
        row["ballots_cancelled"] = int(received[i] - issued[i])
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------
# Which protocols are known, falsified, slipped


def choose_known(
    stations: Sequence[Station], n_known: int, params: ModelParams, rng: np.random.Generator
) -> set[str]:
    """Mostly urban stations, Minsk weighted up: where observers photographed protocols."""
    n_known = min(n_known, len(stations))
    town = [s for s in stations if s.area in ("minsk", "urban")]
    other = [s for s in stations if s.area not in ("minsk", "urban")]
    n_town = min(len(town), round(params.known_urban_share * n_known))
    n_other = min(len(other), n_known - n_town)
    n_town = n_known - n_other
    w = np.array([params.known_minsk_weight if s.area == "minsk" else 1.0 for s in town])
    picked_town = rng.choice(len(town), n_town, replace=False, p=w / w.sum())
    picked_other = rng.choice(len(other), n_other, replace=False)
    return {town[i].precinct_id for i in picked_town} | {other[i].precinct_id for i in picked_other}


@dataclass(frozen=True)
class FraudPlan:
    """The fraudsters' intent for one station; :func:`falsify` carries it out."""

    scheme: Scheme
    kept_fraction: float  # of Tsikhanouskaya's votes (moving schemes)
    minor_kept: tuple[float, ...]  # per MINOR_OPTIONS
    stuff_fraction: float  # of the non-voters (stuffing schemes)
    target: Target
    round_to_five: bool


def draw_fraud_plans(n: int, params: ModelParams, rng: np.random.Generator) -> list[FraudPlan]:
    schemes = list(params.scheme_weights)
    w = np.array([params.scheme_weights[s] for s in schemes])
    scheme_idx = rng.choice(len(schemes), n, p=w / w.sum())
    lo, hi = params.kept_fraction_range
    kept = lo + (hi - lo) * rng.beta(*params.kept_fraction_beta, n)
    minor = rng.uniform(*params.minor_kept_range, (n, len(MINOR_OPTIONS)))
    stuff = rng.uniform(*params.stuff_fraction_range, n)
    with_target = np.zeros(n, dtype=bool)
    with_target[rng.permutation(n)[: round(params.integer_target_share * n)]] = True
    turnout_or_share = rng.uniform(size=n)
    five = rng.uniform(size=n) < params.round_to_five_share
    plans = []
    for i in range(n):
        scheme = cast(Scheme, schemes[int(scheme_idx[i])])
        target: Target = ""
        if with_target[i]:
            # Without stuffing only the share can be rounded (by moving more votes).
            stuffs = scheme != "moved"
            target = "turnout" if stuffs and turnout_or_share[i] < 0.5 else "share"
        plans.append(
            FraudPlan(
                scheme=scheme,
                kept_fraction=float(kept[i]),
                minor_kept=tuple(float(x) for x in minor[i]),
                stuff_fraction=float(stuff[i]),
                target=target,
                round_to_five=bool(five[i]),
            )
        )
    return plans


@dataclass(frozen=True)
class Falsification:
    """One row of falsified.csv."""

    precinct_id: str
    scheme: str
    integer_target: Target
    kept_fraction: str
    stuffed_ballots: int
    detail: str

    def as_row(self) -> dict[str, str]:
        return {
            "precinct_id": self.precinct_id,
            "scheme": self.scheme,
            "integer_target": self.integer_target,
            "kept_fraction": self.kept_fraction,
            "stuffed_ballots": str(self.stuffed_ballots),
            "detail": self.detail,
        }


def _first_target(percent_now: float, five: bool, cap: int) -> int:
    """The round number fraudsters aim at: the next integer (or multiple of 5) up."""
    first = math.ceil(percent_now - 1e-9)
    if five and 5 * math.ceil(first / 5) <= cap:
        first = 5 * math.ceil(first / 5)
    return first


def _stuff(row: Counts, k: int) -> None:
    """Add k Lukashenko ballots as if issued early (the 2020 channel for stuffing)."""
    row["ballots_issued"] += k
    row["ballots_cast"] += k
    row[INCUMBENT] += k
    row["ballots_issued_early"] += k
    row["ballots_cancelled"] -= k


def _move(row: Counts, amount: int, sources: Sequence[str]) -> int:
    """Move up to ``amount`` votes to Lukashenko, taking from ``sources`` in order."""
    moved = 0
    for src in sources:
        take = min(row[src], amount - moved)
        row[src] -= take
        row[INCUMBENT] += take
        moved += take
    return moved


def turnout_stuffing(row: Counts, five: bool, cap: int) -> tuple[int, int] | None:
    """Extra ballots making issued/registered an integer percent: (ballots, percent)."""
    v, g = row["registered"], row["ballots_issued"]
    for t in range(_first_target(100 * g / v, five, cap), cap + 1):
        n = (t * v + 50) // 100
        if g <= n <= v and within_integer_percent(n, v, t):
            return n - g, t
    return None


def share_moving(row: Counts, five: bool, cap: int) -> tuple[int, int] | None:
    """Votes to move making Lukashenko/ballots_cast an integer percent: (votes, percent)."""
    r, lu = row["ballots_cast"], row[INCUMBENT]
    movable = sum(row[o] for o in (CHALLENGER, *MINOR_OPTIONS))
    if r == 0:
        return None
    for s in range(_first_target(100 * lu / r, five, cap), cap + 1):
        target = (s * r + 50) // 100
        if 0 <= target - lu <= movable and within_integer_percent(target, r, s):
            return target - lu, s
    return None


def share_stuffing(row: Counts, five: bool, cap: int) -> tuple[int, int] | None:
    """Extra Lukashenko ballots making his share of ballots cast an integer percent."""
    v, g, r, lu = row["registered"], row["ballots_issued"], row["ballots_cast"], row[INCUMBENT]
    if r == 0:
        return None
    first = _first_target(100 * lu / r, five, cap)
    for k in range(0, v - g + 1):
        s = round(100 * (lu + k) / (r + k))
        if first <= s <= cap and within_integer_percent(lu + k, r + k, s):
            return k, s
    return None


def _change(before: Counts, after: Counts, num: str, den: str) -> str:
    """The ratio before -> after, e.g. 40.1% -> 86.0%; just 40.1% when it did not move."""
    a = f"{100 * before[num] / before[den]:.1f}%" if before[den] else "n/a"
    b = f"{100 * after[num] / after[den]:.1f}%" if after[den] else "n/a"
    return a if a == b else f"{a} -> {b}"


def falsify(
    station: str, truth: Counts, plan: FraudPlan, params: ModelParams
) -> tuple[Counts, Falsification]:
    """Apply a fraud plan to a true protocol; the result's arithmetic stays consistent."""
    row = dict(truth)
    notes: list[str] = []
    moves = plan.scheme in ("moved", "moved+stuffed")
    stuffs = plan.scheme in ("stuffed", "moved+stuffed")
    cap = params.target_cap_percent

    if moves:
        keep = round(plan.kept_fraction * row[CHALLENGER])
        from_challenger = _move(row, row[CHALLENGER] - keep, [CHALLENGER])
        from_minor = sum(
            _move(row, row[o] - round(kept * row[o]), [o])
            for o, kept in zip(MINOR_OPTIONS, plan.minor_kept, strict=True)
        )
        notes.append(
            f"moved {from_challenger} of Tsikhanouskaya's {truth[CHALLENGER]} votes"
            f" and {from_minor} votes of minor options to Lukashenko"
        )
    if stuffs:
        k = round(plan.stuff_fraction * (row["registered"] - row["ballots_issued"]))
        k = max(k, 1) if row["ballots_issued"] < row["registered"] else 0
        _stuff(row, k)
        notes.append(f"stuffed {k} extra Lukashenko ballots")

    target: Target = ""
    big_enough = row["registered"] >= params.target_min_registered
    if plan.target == "turnout" and big_enough:
        # A protocol written to a target lists every issued ballot as cast.
        lost = row["ballots_issued"] - row["ballots_cast"]
        found = turnout_stuffing(row, plan.round_to_five, cap)
        if found is not None:
            k, t = found
            row["ballots_cast"] += lost
            row[INCUMBENT] += lost
            _stuff(row, k)
            target = "turnout"
            notes.append(f"added {k} more to make turnout exactly {t}%")
    elif plan.target == "share" and big_enough:
        if moves:
            moving = share_moving(row, plan.round_to_five, cap)
            if moving is not None:
                m, s = moving
                _move(row, m, (CHALLENGER, *MINOR_OPTIONS))
                target = "share"
                notes.append(f"moved {m} more to make Lukashenko's share exactly {s}%")
        else:
            stuffing = share_stuffing(row, plan.round_to_five, cap)
            if stuffing is not None:
                k, s = stuffing
                _stuff(row, k)
                target = "share"
                notes.append(f"added {k} more to make Lukashenko's share exactly {s}%")

    stuffed = row["ballots_issued"] - truth["ballots_issued"]
    scheme = "moved+stuffed" if moves and stuffed > 0 else ("moved" if moves else "stuffed")
    kept = f"{row[CHALLENGER] / truth[CHALLENGER]:.4f}" if moves and truth[CHALLENGER] else ""
    detail = (
        "Fraudsters "
        + "; ".join(notes)
        + f" (turnout {_change(truth, row, 'ballots_issued', 'registered')},"
        f" Lukashenko {_change(truth, row, INCUMBENT, 'ballots_cast')} of ballots cast)."
    )
    return row, Falsification(station, scheme, target, kept, stuffed, detail)


@dataclass(frozen=True)
class SlipPlan:
    kind: SlipKind
    amount: int  # 1..20; its sign is chosen so numbers stay non-negative


def draw_slip_plans(n: int, rng: np.random.Generator) -> list[SlipPlan]:
    kinds = rng.choice(len(SLIP_KINDS), n, p=np.array(SLIP_WEIGHTS) / sum(SLIP_WEIGHTS))
    amounts = rng.integers(1, 21, n)
    signs = rng.choice([-1, 1], n)
    return [
        SlipPlan(SLIP_KINDS[int(k)], int(a * s))
        for k, a, s in zip(kinds, amounts, signs, strict=True)
    ]


def _swap_digits(value: int) -> int | None:
    """Swap the last two adjacent, different digits (a transposition typo)."""
    digits = list(str(value))
    for i in range(len(digits) - 2, -1, -1):
        if digits[i] != digits[i + 1] and not (i == 0 and digits[i + 1] == "0"):
            digits[i], digits[i + 1] = digits[i + 1], digits[i]
            return int("".join(digits))
    return None


def apply_slip(station: str, truth: Counts, plan: SlipPlan) -> tuple[Counts, Falsification]:
    """A sloppy but not fraudulent protocol: votes as counted, one line miswritten."""
    row = dict(truth)
    kind = plan.kind
    swapped = _swap_digits(row["ballots_cast"]) if kind == "digit_swap" else None
    if kind == "digit_swap" and swapped is None:
        kind = "cast_off"
    if kind == "digit_swap" and swapped is not None:
        row["ballots_cast"] = swapped
        what = (
            f"ballots_cast written as {swapped} instead of {truth['ballots_cast']} (digits swapped)"
        )
    elif kind == "cast_off":
        amount = abs(plan.amount) if row["ballots_cast"] < abs(plan.amount) else plan.amount
        row["ballots_cast"] += amount
        what = f"ballots_cast off by {amount:+d}, so it is not invalid + the options' votes"
    elif kind == "invalid_off":
        amount = abs(plan.amount) if row["invalid"] < abs(plan.amount) else plan.amount
        row["invalid"] += amount
        what = f"invalid off by {amount:+d}, so ballots_cast is not invalid + the options' votes"
    else:
        # Always too many: received < issued + cancelled cannot be read as spoiled ballots.
        amount = abs(plan.amount)
        row["ballots_cancelled"] += amount
        what = f"ballots_cancelled off by {amount:+d}, so received is not issued + cancelled"
    detail = f"Arithmetic slip, not fraud: {what}; the votes are as counted."
    return row, Falsification(station, SLIP_SCHEME, "", "", 0, detail)


# --------------------------------------------------------------------------------------
# The whole election (pure)


@dataclass(frozen=True)
class GeneratedElection:
    election_id: str
    seed: int
    clean: bool
    params: ModelParams
    stations: list[Station]
    registered: dict[str, int]
    truth: dict[str, Counts]
    official: dict[str, Counts]
    falsified: list[Falsification]


# Independent child streams, one per stage, so stages never shift each other's draws.
_STAGES = ("registered", "truth", "known", "fraud", "slip")


def build_election(
    stations: Sequence[Station],
    seed: int = DEFAULT_SEED,
    clean: bool = False,
    params: ModelParams = PARAMS,
    n_known: int | None = None,
) -> GeneratedElection:
    """Everything the folder holds, as data. ``n_known`` defaults to the 2020 share."""
    streams = dict(
        zip(
            _STAGES,
            (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)),
            strict=True,
        )
    )
    stations = list(stations)
    ids = [s.precinct_id for s in stations]
    registered = draw_registered([s.area for s in stations], params, streams["registered"])
    truth_rows = simulate_truth(stations, registered, params, streams["truth"])
    truth = dict(zip(ids, truth_rows, strict=True))

    if n_known is None:
        n_known = round(params.known_protocols * len(stations) / 5767)
    known = choose_known(stations, n_known, params, streams["known"])
    known_ids = [pid for pid in ids if pid in known]
    official = {pid: dict(truth[pid]) for pid in known_ids}
    falsified: list[Falsification] = []

    # Draw the plans even for the clean variant: the streams are separate anyway, but
    # this keeps one code path.
    n_fraud = round(params.falsified_share * len(known_ids))
    fraud_rng, slip_rng = streams["fraud"], streams["slip"]
    fraud_idx = sorted(fraud_rng.choice(len(known_ids), n_fraud, replace=False).tolist())
    plans = draw_fraud_plans(n_fraud, params, fraud_rng)
    rest = [i for i in range(len(known_ids)) if i not in set(fraud_idx)]
    n_slip = min(params.arithmetic_slips, len(rest))
    slip_idx = sorted(int(rest[i]) for i in slip_rng.choice(len(rest), n_slip, replace=False))
    slips = draw_slip_plans(n_slip, slip_rng)

    if not clean:
        changes: dict[str, tuple[Counts, Falsification]] = {}
        for i, plan in zip(fraud_idx, plans, strict=True):
            pid = known_ids[i]
            changes[pid] = falsify(pid, truth[pid], plan, params)
        for i, slip in zip(slip_idx, slips, strict=True):
            pid = known_ids[i]
            changes[pid] = apply_slip(pid, truth[pid], slip)
        for pid in known_ids:  # file order
            if pid in changes:
                official[pid], record = changes[pid]
                falsified.append(record)

    return GeneratedElection(
        election_id=CLEAN_ELECTION_ID if clean else ELECTION_ID,
        seed=seed,
        clean=clean,
        params=params,
        stations=stations,
        registered={pid: int(v) for pid, v in zip(ids, registered, strict=True)},
        truth=truth,
        official=official,
        falsified=falsified,
    )


# --------------------------------------------------------------------------------------
# Summaries (pure)


@dataclass(frozen=True)
class Totals:
    stations: int
    registered: int
    issued: int
    cast: int
    invalid: int
    votes: dict[str, int]

    @property
    def turnout(self) -> float:
        return self.issued / self.registered if self.registered else 0.0

    def share(self, option: str) -> float:
        """Share of ballots cast (the forensics brief's votes / R)."""
        return self.votes[option] / self.cast if self.cast else 0.0


def totals(rows: Iterable[Counts]) -> Totals:
    rows = list(rows)
    return Totals(
        stations=len(rows),
        registered=sum(r["registered"] for r in rows),
        issued=sum(r["ballots_issued"] for r in rows),
        cast=sum(r["ballots_cast"] for r in rows),
        invalid=sum(r["invalid"] for r in rows),
        votes={o: sum(r[o] for r in rows) for o in OPTION_IDS},
    )


def describe_totals(t: Totals) -> str:
    shares = ", ".join(f"{o} {100 * t.share(o):.2f}%" for o in OPTION_IDS)
    return (
        f"{t.stations} stations, {t.registered:,} registered, turnout {100 * t.turnout:.2f}%,"
        f" invalid {100 * t.invalid / max(t.cast, 1):.2f}%; {shares}"
    )


# --------------------------------------------------------------------------------------
# Files


def _csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", newline="")


def election_json(election_id: str, clean: bool) -> str:
    name = ELECTION_NAME if not clean else ELECTION_NAME[:-1] + ", clean control)"
    data = {
        "format": "election/1",
        "id": election_id,
        "name": name,
        "date": ELECTION_DATE,
        "options": [{"id": oid, "label": label} for oid, label in OPTIONS],
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def precincts_csv(stations: Sequence[Station], registered: Mapping[str, int]) -> str:
    rows = (
        {
            "precinct_id": s.precinct_id,
            "region": s.region,
            "district": s.district,
            "name": s.name,
            "registered": registered[s.precinct_id],
            "address": s.address,
            "latitude": s.latitude,
            "longitude": s.longitude,
        }
        for s in stations
    )
    return _csv_text(PRECINCT_COLUMNS, rows)


def results_csv(rows: Mapping[str, Counts]) -> str:
    return _csv_text(["precinct_id", *COLUMNS], ({"precinct_id": k, **v} for k, v in rows.items()))


def falsified_csv(records: Iterable[Falsification]) -> str:
    return _csv_text(FALSIFIED_COLUMNS, (r.as_row() for r in records))


def _param_lines(params: ModelParams) -> list[str]:
    lines = []
    for name, value in vars(params).items():
        if isinstance(value, Mapping):
            value = ", ".join(f"{k}: {v:g}" for k, v in value.items())
        lines.append(f"| `{name}` | {value} |")
    return lines


def readme_text(election: GeneratedElection) -> str:
    truth_all = totals(election.truth.values())
    truth_known = totals(election.truth[pid] for pid in election.official)
    official = totals(election.official.values())
    schemes: dict[str, int] = {}
    targets: dict[str, int] = {}
    for f in election.falsified:
        schemes[f.scheme] = schemes.get(f.scheme, 0) + 1
        if f.integer_target:
            targets[f.integer_target] = targets.get(f.integer_target, 0) + 1
    n_areas = {a: sum(s.area == a for s in election.stations) for a in AREAS}
    clean_flag = " --clean" if election.clean else ""
    variant = (
        "This is the **clean control**: no protocol is falsified and none has a slip, so"
        " `official.csv` equals `truth.csv` on every known station and `falsified.csv` is"
        " empty. Use it to check that the statistics do not flag an honest election."
        if election.clean
        else "Part of the known protocols are **falsified** (see `falsified.csv`)."
    )
    scheme_text = ", ".join(f"{k}: {v}" for k, v in sorted(schemes.items())) or "none"
    target_text = ", ".join(f"{k}: {v}" for k, v in sorted(targets.items())) or "none"
    lines = [
        f"# Seed election `{election.election_id}` (synthetic, modelled on Belarus 2020)",
        "",
        "Generated by `seeds/generate.py`; do not edit by hand. Regenerate with",
        "",
        "```",
        f"python -m seeds.generate --out <this folder> --seed {election.seed}{clean_flag}",
        "```",
        "",
        "The output is byte-for-byte identical for the same seed.",
        "",
        "**Everything here except the polling stations is synthetic.** The stations (id,",
        "region, district, name, address, coordinates) are the real 5,767 stations of 2020",
        "(see `seeds/sources/README.md`); registered voters, results and falsifications are",
        "drawn from the model below. " + variant,
        "",
        "## Files",
        "",
        "| file | format | what |",
        "|---|---|---|",
        "| `election.json` | election/1 | id, name, date, the six options in ballot order |",
        "| `precincts.csv` | election/1 | all stations, with synthetic `registered`;"
        " extra columns `address`, `latitude`, `longitude` |",
        "| `official.csv` | official-results/1 | the protocols known to observers"
        f" ({len(election.official)} stations), all required and optional columns |",
        "| `truth.csv` | official-results/1 columns | the true result of **every** station"
        " (only a synthetic election has one) |",
        "| `falsified.csv` | seed-only | ground truth: which known protocols differ from"
        " the truth, and how |",
        "| `ballot/` | ballot-template/1 | `template.json` + `reference.png` (seeds/ballot.py) |",
        "",
        "`falsified.csv` columns: `precinct_id`; `scheme` — `moved` (votes moved from",
        "Tsikhanouskaya, and some from minor options, to Lukashenko), `stuffed` (extra",
        "Lukashenko ballots, issued and cast raised, still ≤ registered), `moved+stuffed`,",
        "or `arithmetic_slip` (votes as counted but one protocol line miswritten, so the",
        "protocol's own arithmetic fails; not fraud); `integer_target` — `turnout` or",
        "`share` when the fraudsters rounded turnout (ballots_issued / registered, here also",
        "= ballots_cast / registered) or Lukashenko's share of ballots cast to an integer",
        "percent (within ±0.04 pp); `kept_fraction` — official / true Tsikhanouskaya votes",
        "(moving schemes); `stuffed_ballots` — official minus true ballots issued;",
        "`detail` — one readable sentence.",
        "",
        "Invariants: every `truth.csv` row and every `official.csv` row except the slips has",
        "ballots_cast = invalid + Σ options, ballots_cast ≤ ballots_issued ≤ registered,",
        "ballots_received = ballots_issued + ballots_cancelled, and early + home ≤ issued.",
        "A known station not in `falsified.csv` has official = truth.",
        "",
        "## Figures",
        "",
        f"- Stations: {len(election.stations)} ({n_areas['minsk']} Minsk city,"
        f" {n_areas['urban']} other towns, {n_areas['rural']} rural, {n_areas['abroad']} abroad).",
        f"- Truth, all stations: {describe_totals(truth_all)}.",
        f"- Truth, known stations: {describe_totals(truth_known)}.",
        f"- Official, known stations: {describe_totals(official)}.",
        f"- Falsified protocols by scheme: {scheme_text}; integer targets: {target_text}.",
        "",
        "Shares are of ballots cast; turnout is ballots issued / registered.",
        "",
        "## Model",
        "",
        "1. **Registered voters.** Towns (address starting `г.`): a normal core fitted to the",
        "   2020 protocols' quartiles (~1,370 / 1,810 / 2,200), plus small special stations",
        "   (hospitals, sanatoria) and large new estates (up to ~7,900). Rural: log-normal,",
        "   mostly 100-600. Embassies abroad: small, log-normal.",
        "2. **Turnout** per station: truncated normal around base + area + region + district",
        "   effect; the base is solved so the national expected turnout is the target.",
        "   Ballots issued ~ Binomial(registered, turnout); a few issued ballots never reach",
        "   the box (ballots_cast ≤ ballots_issued).",
        "3. **Votes.** Lukashenko's share of valid votes is logit-normal (rural up, Minsk and",
        "   abroad down, region, district and station effects), its base solved for the",
        "   national share; the rest goes to Tsikhanouskaya and the minor options by a",
        "   Dirichlet around their national weights. Invalid rate truncated normal.",
        "   Counts ~ Multinomial(ballots_cast, probabilities).",
        "4. **Protocol lines.** Early ~ Binomial(issued, early rate), home ~ Binomial(rest,",
        "   home rate); ballots received = registered + a reserve, in tens; cancelled =",
        "   received − issued.",
        "5. **Known protocols**: a fixed number of stations, mostly urban, Minsk weighted up.",
        "6. **Falsification** of a share of the known protocols, each by a plan: keep a",
        "   fraction r ~ r_min + (r_max − r_min)·Beta(a, b) of Tsikhanouskaya's votes and a",
        "   uniform fraction of each minor option's, giving the rest to Lukashenko; and/or",
        "   stuff a uniform fraction of the non-voters as Lukashenko ballots issued early.",
        "   About half of the plans then round turnout or Lukashenko's share of ballots",
        "   cast up to the next integer percent (sometimes the next multiple of 5), with",
        "   more stuffing or moving, when the station is big enough for an exact hit.",
        "7. **Arithmetic slips** on a few other known protocols: ballots_cast or invalid",
        "   off by a few, two digits of ballots_cast swapped, or cancelled off by a few.",
        "",
        "Every stage draws from its own child of `numpy.random.SeedSequence(seed)`; the",
        "clean and falsified variants of one seed share the truth and the known stations.",
        "",
        "## Parameters",
        "",
        f"Seed: `{election.seed}`.",
        "",
        "| parameter | value |",
        "|---|---|",
        *_param_lines(election.params),
        "",
    ]
    return "\n".join(lines)


def write_election(election: GeneratedElection, out: Path, with_ballot: bool = True) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _write(out / ELECTION_FILE, election_json(election.election_id, election.clean))
    _write(out / PRECINCTS_FILE, precincts_csv(election.stations, election.registered))
    _write(out / TRUTH_FILE, results_csv(election.truth))
    _write(out / OFFICIAL_FILE, results_csv(election.official))
    _write(out / FALSIFIED_FILE, falsified_csv(election.falsified))
    _write(out / README_FILE, readme_text(election))
    if with_ballot:
        # Imported here so the data side works (and is testable) without the renderer.
        from seeds.ballot import BY2020_DESIGN, write_template

        write_template(replace(BY2020_DESIGN, election=election.election_id), out / BALLOT_DIR)
        from seeds.protocol import BY2020_PROTOCOL, write_protocol_template

        write_protocol_template(
            replace(BY2020_PROTOCOL, election=election.election_id), out / "protocol"
        )


def generate_election(
    out: Path,
    seed: int = DEFAULT_SEED,
    clean: bool = False,
    stations: Sequence[Station] | None = None,
    with_ballot: bool = True,
) -> GeneratedElection:
    """Build and write a seed folder; ``stations`` defaults to the real 5,767."""
    election = build_election(load_stations() if stations is None else stations, seed, clean)
    write_election(election, out, with_ballot=with_ballot)
    return election


# --------------------------------------------------------------------------------------
# Subsets


def choose_subset(seed: SeedElection, n_precincts: int, rng: np.random.Generator) -> set[str]:
    """About a third falsified (every scheme and a slip), a third clean known, a third
    without a protocol — so a small folder still exercises every code path."""
    ids = list(seed.precincts)
    if n_precincts >= len(ids):
        return set(ids)
    by_scheme: dict[str, list[str]] = {}
    for pid, row in seed.falsified.items():
        by_scheme.setdefault(row["scheme"], []).append(pid)
    clean = [pid for pid in seed.official if pid not in seed.falsified]
    unknown = [pid for pid in ids if pid not in seed.official]

    picked: list[str] = []

    def take(pool: Sequence[str], k: int) -> None:
        free = [p for p in pool if p not in set(picked)]
        k = max(0, min(k, len(free), n_precincts - len(picked)))
        picked.extend(free[int(i)] for i in rng.choice(len(free), k, replace=False))

    for scheme in sorted(by_scheme):  # one of each scheme first
        take(by_scheme[scheme], 1)
    fraud = [pid for s in sorted(by_scheme) if s != SLIP_SCHEME for pid in by_scheme[s]]
    take(fraud, n_precincts // 3 - len(picked))
    take(clean, n_precincts // 3)
    take(unknown, n_precincts - len(picked))
    take(ids, n_precincts - len(picked))  # if some pool ran short
    return set(picked)


def _filter_csv(src: Path, dst: Path, keep: set[str]) -> None:
    if not src.exists():
        return
    with src.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        rows = [r for r in reader if r["precinct_id"] in keep]
    _write(dst, _csv_text(columns, rows))


def write_subset(src: Path, dst: Path, n_precincts: int, seed: int = 0) -> None:
    """A smaller, consistent copy of a seed folder for quick runs.

    Keeps ``n_precincts`` stations (see :func:`choose_subset`), filters every CSV to
    them in the source order, and copies election.json and ballot/ unchanged (same
    election id).
    """
    src, dst = Path(src), Path(dst)
    source = load_seed(src)
    keep = choose_subset(source, n_precincts, np.random.default_rng(seed))
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / ELECTION_FILE, dst / ELECTION_FILE)
    for name in (PRECINCTS_FILE, TRUTH_FILE, OFFICIAL_FILE, FALSIFIED_FILE):
        _filter_csv(src / name, dst / name, keep)
    if (src / BALLOT_DIR).is_dir():
        shutil.copytree(src / BALLOT_DIR, dst / BALLOT_DIR, dirs_exist_ok=True)
    if (src / "protocol").is_dir():
        shutil.copytree(src / "protocol", dst / "protocol", dirs_exist_ok=True)
    n_falsified = len(read_csv_rows(dst / FALSIFIED_FILE)) if (dst / FALSIFIED_FILE).exists() else 0
    readme = [
        f"# Subset of `{source.election_id}`: {len(keep)} stations",
        "",
        f"Written by `seeds.generate.write_subset(src, dst, {n_precincts}, seed={seed})` from",
        f"`{src.name}/`: {sum(p in source.official for p in keep)} stations with a known",
        f"protocol, {n_falsified} of them in `falsified.csv`. Every CSV is the",
        "source's, filtered to these stations; election.json and ballot/ are unchanged.",
        f"See `{src.name}/README.md` for the model.",
        "",
    ]
    _write(dst / README_FILE, "\n".join(readme))


# --------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m seeds.generate", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--out", type=Path, default=None, help="default seeds/by-2020[-clean]")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--clean", action="store_true", help="control election: no fraud")
    args = parser.parse_args(argv)
    out = args.out or (SEED_DIR.with_name("by-2020-clean") if args.clean else SEED_DIR)
    election = generate_election(out, seed=args.seed, clean=args.clean)
    print(f"wrote {out}")
    print("truth:    " + describe_totals(totals(election.truth.values())))
    print("official: " + describe_totals(totals(election.official.values())))
    schemes = sorted({f.scheme for f in election.falsified})
    for s in schemes:
        print(f"  {s}: {sum(f.scheme == s for f in election.falsified)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
