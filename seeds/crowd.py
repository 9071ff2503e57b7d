"""Who uploads ballot photos in the demo: a deterministic, self-selected crowd.

Honest uploaders are real voters of the seed election's *truth*, drawn without
replacement per station, so for every option the honest crowd count never exceeds the
true count. Where the official protocol equals the truth (every clean station) the
crowd therefore cannot prove anything; where the protocol took votes away from an
option, enough of that option's voters uploading proves it — Golos's one-sided rule.

Everything here is pure: the only randomness is the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from seeds.model import SeedElection

VoterKind = Literal["honest", "blank", "overmarked", "reused_photo", "not_a_ballot", "mismatch"]
ATTACK_KINDS: tuple[VoterKind, ...] = ("reused_photo", "not_a_ballot", "mismatch")
INVALID = "invalid"  # the truth's invalid ballots: the pool blank and overmarked come from
PHONE_PREFIX = "+37529"
CHALLENGER = "tsikhanouskaya"  # whom spoilers and fake photos claim to have voted for


@dataclass(frozen=True)
class SimulatedVoter:
    submission_id: str  # uuid4-format string from the rng
    phone: str  # synthetic +37529xxxxxxx (the platform stores only its keyed hash)
    precinct_id: str
    marks: list[str]  # marked on the paper: [] blank / not a ballot, 2+ overmarked
    declared_choice: str  # what the voter says they voted for (an option id)
    kind: VoterKind
    reuses: str | None = None  # for reused_photo: submission_id of the photo re-sent


@dataclass(frozen=True)
class CrowdParams:
    """The crowd's self-selection, tuned to Golos 2020 (96% Tsikhanouskaya, <1% incumbent)."""

    # Relative chance that a voter of each kind uploads. Unlisted options use `minor`.
    upload_weight: Mapping[str, float] = field(
        default_factory=lambda: {"tsikhanouskaya": 1.0, "lukashenko": 0.0125, INVALID: 0.8}
    )
    minor_upload_weight: float = 0.2
    # Per-station enthusiasm (log-normal sd): some stations had strong local chats.
    enthusiasm_sigma: float = 0.5
    # Golos 2020 got ~1.05 M verified photos from ~3 M Tsikhanouskaya voters: about 30%.
    # The demo crowd is tiny next to that, so stations are picked where this rate gives
    # about n_voters / n_stations uploads (a log-normal kernel of this width around that
    # size), not where a few photos would be 1% of the voters.
    participation_2020: float = 0.3
    size_kernel_sigma: float = 0.6
    # At least this share of the picked stations are falsified (if there are enough).
    min_falsified_share: float = 0.4
    # How attacks split between kinds (reused_photo, not_a_ballot, mismatch).
    attack_mix: tuple[float, float, float] = (0.4, 0.3, 0.3)
    # Spoilers' declared choice: the challenger with this probability, else any option.
    spoiler_challenger_share: float = 0.9


CROWD_PARAMS = CrowdParams()


def _uuid4(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


class _Ids:
    """Unique submission ids and phones, both drawn from the rng."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.phones: set[str] = set()

    def submission(self) -> str:
        return _uuid4(self.rng)

    def phone(self) -> str:
        while True:  # one phone = one vote: never hand out a number twice
            phone = f"{PHONE_PREFIX}{int(self.rng.integers(0, 10_000_000)):07d}"
            if phone not in self.phones:
                self.phones.add(phone)
                return phone


def _upload_mass(truth: Mapping[str, int], option_ids: Sequence[str], params: CrowdParams) -> float:
    """Expected uploads at a station per unit of participation (challenger voter = 1)."""
    mass = truth["invalid"] * params.upload_weight.get(INVALID, params.minor_upload_weight)
    for oid in option_ids:
        mass += truth[oid] * params.upload_weight.get(oid, params.minor_upload_weight)
    return mass


def pick_stations(
    seed: SeedElection,
    n_stations: int,
    per_station: float,
    rng: np.random.Generator,
    params: CrowdParams,
) -> list[str]:
    """Stations with an official protocol, falsified and clean both represented.

    Weighted towards stations where 2020's participation would give ``per_station``
    uploads, so a small demo crowd is a realistic share of its stations' voters.
    """
    fraud_set = seed.fraud_precincts() & set(seed.official)
    fraud = [pid for pid in seed.official if pid in fraud_set]
    other = [pid for pid in seed.official if pid not in fraud_set]
    n_stations = min(n_stations, len(fraud) + len(other))
    share = max(len(fraud) / max(len(seed.official), 1), params.min_falsified_share)
    n_fraud = round(share * n_stations)
    if n_stations >= 2 and fraud and other:
        n_fraud = min(max(n_fraud, 1), n_stations - 1)
    n_fraud = min(n_fraud, len(fraud))
    n_other = min(n_stations - n_fraud, len(other))
    n_fraud = n_stations - n_other

    def weighted(pool: list[str], k: int) -> list[str]:
        if k == 0:
            return []
        mass = np.array([_upload_mass(seed.truth[pid], seed.option_ids, params) for pid in pool])
        expected = np.maximum(params.participation_2020 * mass, 1e-3)
        z = np.log(expected / max(per_station, 1e-3)) / params.size_kernel_sigma
        w = np.exp(-0.5 * z * z) + 1e-12  # never zero: every station stays possible
        return [pool[int(i)] for i in rng.choice(len(pool), k, replace=False, p=w / w.sum())]

    picked = set(weighted(fraud, n_fraud)) | set(weighted(other, n_other))
    return [pid for pid in seed.official if pid in picked]  # file order


def _pool(truth: Mapping[str, int], option_ids: Sequence[str]) -> list[str]:
    """One entry per ballot in the box: the option (or INVALID) it counts for."""
    pool = [INVALID] * truth["invalid"]
    for oid in option_ids:
        pool += [oid] * truth[oid]
    return pool


def _allocate(
    total: int, mass: np.ndarray, capacity: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Spread ``total`` uploads ∝ mass, never more than a station's capacity."""
    counts = np.zeros(len(mass), dtype=np.int64)
    total = min(total, int(capacity.sum()))
    while counts.sum() < total:
        spare = capacity - counts
        w = np.where(spare > 0, mass, 0.0)
        if w.sum() <= 0:  # only zero-mass stations have room left
            w = (spare > 0).astype(float)
        extra = rng.multinomial(total - int(counts.sum()), w / w.sum())
        counts += np.minimum(extra, spare)
    return counts


def simulate_crowd(
    seed: SeedElection,
    n_voters: int,
    n_stations: int,
    rng: np.random.Generator,
    fraud_share: float = 0.05,
    params: CrowdParams = CROWD_PARAMS,
) -> list[SimulatedVoter]:
    """``n_voters`` submissions, ``round(fraud_share * n_voters)`` of them attacks.

    The rest are honest people at ``n_stations`` stations with an official protocol,
    drawn without replacement from each station's true ballots with self-selection
    weights; those whose true ballot is invalid upload it as ``blank`` or
    ``overmarked``. Reused photos come after the photo they copy.
    """
    options = seed.option_ids
    ids = _Ids(rng)
    n_attacks = round(fraud_share * n_voters)
    n_honest = n_voters - n_attacks
    stations = pick_stations(seed, n_stations, n_honest / max(n_stations, 1), rng, params)
    if not stations:
        n_attacks, n_honest = 0, 0

    def weight(kind: str) -> float:
        return params.upload_weight.get(kind, params.minor_upload_weight)

    pools = [_pool(seed.truth[pid], options) for pid in stations]
    enthusiasm = np.exp(rng.normal(0.0, params.enthusiasm_sigma, len(stations)))
    mass = np.array([_upload_mass(seed.truth[pid], options, params) for pid in stations])
    mass = mass * enthusiasm
    capacity = np.array([len(pool) for pool in pools], dtype=np.int64)
    per_station = _allocate(n_honest, mass, capacity, rng)

    honest: list[SimulatedVoter] = []
    for pid, pool, k in zip(stations, pools, per_station, strict=True):
        if k == 0:
            continue
        w = np.array([weight(b) for b in pool])
        for i in rng.choice(len(pool), int(k), replace=False, p=w / w.sum()):
            ballot = pool[int(i)]
            if ballot != INVALID:
                honest.append(
                    SimulatedVoter(ids.submission(), ids.phone(), pid, [ballot], ballot, "honest")
                )
                continue
            # An invalid true ballot: the voter meant someone, the paper says nothing valid.
            meant = (
                CHALLENGER
                if rng.uniform() < params.spoiler_challenger_share
                else options[int(rng.integers(len(options)))]
            )
            if rng.uniform() < 0.5:
                marks: list[str] = []
                kind: VoterKind = "blank"
            else:
                others = [o for o in options if o != meant]
                marks = [meant, others[int(rng.integers(len(others)))]]
                kind = "overmarked"
            honest.append(SimulatedVoter(ids.submission(), ids.phone(), pid, marks, meant, kind))

    attacks = _attacks(honest, stations, options, n_attacks, rng, ids, params)
    return _order(honest, attacks, rng)


def _attacks(
    honest: list[SimulatedVoter],
    stations: list[str],
    options: list[str],
    n_attacks: int,
    rng: np.random.Generator,
    ids: _Ids,
    params: CrowdParams,
) -> list[SimulatedVoter]:
    mix = np.array(params.attack_mix) * n_attacks
    n_reused = round(mix[0]) if honest else 0
    n_not_ballot = round(mix[1])
    n_mismatch = n_attacks - n_reused - n_not_ballot
    out: list[SimulatedVoter] = []
    for _ in range(n_reused):
        original = honest[int(rng.integers(len(honest)))]
        out.append(
            SimulatedVoter(
                ids.submission(),
                ids.phone(),
                original.precinct_id,
                list(original.marks),
                original.declared_choice,
                "reused_photo",
                reuses=original.submission_id,
            )
        )
    for _ in range(n_not_ballot):
        pid = stations[int(rng.integers(len(stations)))]
        out.append(
            SimulatedVoter(ids.submission(), ids.phone(), pid, [], CHALLENGER, "not_a_ballot")
        )
    for _ in range(n_mismatch):
        pid = stations[int(rng.integers(len(stations)))]
        marked = options[int(rng.integers(len(options)))]
        others = [o for o in options if o != marked]
        declared = others[int(rng.integers(len(others)))]
        out.append(
            SimulatedVoter(ids.submission(), ids.phone(), pid, [marked], declared, "mismatch")
        )
    return out


def _order(
    honest: list[SimulatedVoter], attacks: list[SimulatedVoter], rng: np.random.Generator
) -> list[SimulatedVoter]:
    """Shuffle everything, then slot each reused photo somewhere after its original."""
    first = [v for v in (*honest, *attacks) if v.kind != "reused_photo"]
    reused = [v for v in attacks if v.kind == "reused_photo"]
    order = [first[int(i)] for i in rng.permutation(len(first))]
    for copy in reused:
        after = next(i for i, v in enumerate(order) if v.submission_id == copy.reuses)
        order.insert(int(rng.integers(after + 1, len(order) + 1)), copy)
    return order


def honest_counts(voters: Sequence[SimulatedVoter]) -> dict[str, Counter[str]]:
    """Per precinct, how many honest voters marked each option (one mark each)."""
    counts: dict[str, Counter[str]] = {}
    for v in voters:
        if v.kind == "honest" and len(v.marks) == 1:
            counts.setdefault(v.precinct_id, Counter())[v.marks[0]] += 1
    return counts


def provable_precincts(
    voters: list[SimulatedVoter], official: dict[str, dict[str, int]]
) -> dict[str, list[str]]:
    """Options whose honest photo count exceeds the official votes, per precinct.

    What the crowd can prove if every honest photo is verified (Golos's rule). Options
    come in the official row's column order; precincts without a protocol or with
    nothing provable are left out.
    """
    result: dict[str, list[str]] = {}
    for pid, counts in honest_counts(voters).items():
        row = official.get(pid)
        if row is None:
            continue
        proven = [o for o in row if o in counts and counts[o] > row[o]]
        if proven:
            result[pid] = proven
    return result
