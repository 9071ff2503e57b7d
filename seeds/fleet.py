"""The simulated fleet of ``golos simulate``: who votes when (the plan), and the
reconciliation of what the phones were told with what the platform counted.

Everything here is pure: the only randomness is the ``numpy.random.Generator``
passed in; the simulator (``seeds.simulate``) does the I/O.
"""

from __future__ import annotations

import enum
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

# Polls open 07:00 and close 21:00: an election day of 14 hours. Arrivals peak in the
# morning (10:00) and the evening (18:00), with a steady trickle between.
DAY_HOURS = 14.0
MORNING_PEAK_HOUR = 3.0
EVENING_PEAK_HOUR = 11.0
PEAK_SIGMA_HOURS = 1.5
PEAK_SHARES = (0.4, 0.4)  # morning, evening; the rest arrive uniformly over the day

# The honest voters' choices (the crowd that photographed its ballots in 2020 was
# mostly the challenger's), by option id; options not listed share the rest.
CHOICE_WEIGHTS = {"tsikhanouskaya": 0.85, "against_all": 0.05}


class Kind(enum.StrEnum):
    """What a simulated phone does besides sending one ballot photo."""

    HONEST = "honest"  # one photo, one submission
    REVOTE = "revote"  # later, a new photo (new id): the later one counts
    RESEND = "resend"  # re-sends a delivered submission (same id), as after a lost answer
    LOST_ANSWER = "lost_answer"  # its first delivery's answer is lost: the outbox retries
    TRUNCATED = "truncated_jpeg"  # corrupt files: a JPEG cut short,
    RANDOM_BYTES = "random_bytes"  # random bytes,
    TEXT_FILE = "text_file"  # a text file


CORRUPT = frozenset({Kind.TRUNCATED, Kind.RANDOM_BYTES, Kind.TEXT_FILE})
# Each kind's share of the fleet (the rest are HONEST); at least one each in a fleet
# of MIN_FLEET_FOR_EVERY_KIND phones or more.
KIND_SHARES: Mapping[Kind, float] = {
    Kind.REVOTE: 0.03,
    Kind.RESEND: 0.03,
    Kind.LOST_ANSWER: 0.03,
    Kind.TRUNCATED: 0.005,
    Kind.RANDOM_BYTES: 0.005,
    Kind.TEXT_FILE: 0.005,
}
MIN_FLEET_FOR_EVERY_KIND = 20
# A re-voter takes the second photo this long after the first (hours, uniform).
REVOTE_AFTER_HOURS = (0.5, 3.0)
# Phones per simulated network (one /24: a station's Wi-Fi, a carrier's NAT).
PHONES_PER_NETWORK = 50


@dataclass(frozen=True)
class PlannedSubmission:
    submission_id: str
    hour: float  # hours after the polls open when the photo is taken
    choice: str  # the option marked on the paper and declared


@dataclass(frozen=True)
class PlannedPhone:
    index: int
    phone: str  # a synthetic +375 number
    network: int  # which simulated /24 it sends from
    precinct_id: str
    kind: Kind
    submissions: tuple[PlannedSubmission, ...]


def arrival_hours(n: int, rng: np.random.Generator) -> np.ndarray:
    """When ``n`` voters take their photo (hours after the polls open): morning and
    evening peaks over a uniform trickle, within the day. Pure."""
    which = rng.choice(3, size=n, p=[*PEAK_SHARES, 1.0 - sum(PEAK_SHARES)])
    hours = np.where(
        which == 0,
        rng.normal(MORNING_PEAK_HOUR, PEAK_SIGMA_HOURS, n),
        np.where(
            which == 1,
            rng.normal(EVENING_PEAK_HOUR, PEAK_SIGMA_HOURS, n),
            rng.uniform(0.0, DAY_HOURS, n),
        ),
    )
    # Outside the day: drawn again uniformly (the polls are closed).
    outside = (hours < 0) | (hours >= DAY_HOURS)
    hours[outside] = rng.uniform(0.0, DAY_HOURS, int(outside.sum()))
    return np.asarray(hours)


def _uuid4(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _kinds(n: int, rng: np.random.Generator) -> list[Kind]:
    kinds = [Kind.HONEST] * n
    counts = {
        k: max(1 if n >= MIN_FLEET_FOR_EVERY_KIND else 0, round(share * n))
        for k, share in KIND_SHARES.items()
    }
    slots = iter(rng.permutation(n).tolist())
    for kind, count in counts.items():
        for _ in range(count):
            slot = next(slots, None)
            if slot is not None:
                kinds[slot] = kind
    return kinds


def _choice(options: Sequence[str], rng: np.random.Generator) -> str:
    weights = np.array([CHOICE_WEIGHTS.get(o, 0.0) for o in options])
    rest = [i for i, o in enumerate(options) if o not in CHOICE_WEIGHTS]
    if rest:
        weights[rest] = max(0.0, 1.0 - weights.sum()) / len(rest)
    return options[int(rng.choice(len(options), p=weights / weights.sum()))]


def plan_fleet(
    n: int,
    precincts: Sequence[str],
    options: Sequence[str],
    rng: np.random.Generator,
    numbers: np.random.Generator | None = None,
) -> list[PlannedPhone]:
    """``n`` phones: their numbers, networks, stations, kinds and photos' times. The
    phone numbers come from ``numbers`` (default ``rng``): the platform keeps limits
    per number for an hour, so runs in a row need new ones. Pure."""
    numbers_rng = numbers or rng
    hours = arrival_hours(n, rng)
    kinds = _kinds(n, rng)
    taken: set[str] = set()
    fleet = []
    for i in range(n):
        while (phone := f"+37529{int(numbers_rng.integers(0, 10**7)):07d}") in taken:
            pass
        taken.add(phone)
        first = PlannedSubmission(_uuid4(rng), float(hours[i]), _choice(options, rng))
        submissions = [first]
        if kinds[i] is Kind.REVOTE:
            later = first.hour + float(rng.uniform(*REVOTE_AFTER_HOURS))
            submissions.append(PlannedSubmission(_uuid4(rng), later, _choice(options, rng)))
        fleet.append(
            PlannedPhone(
                index=i,
                phone=phone,
                network=i // PHONES_PER_NETWORK,
                precinct_id=precincts[int(rng.integers(len(precincts)))],
                kind=kinds[i],
                submissions=tuple(submissions),
            )
        )
    return fleet


def corrupt_file(kind: Kind, photo: bytes, rng: np.random.Generator) -> bytes:
    """The broken file a phone of a corrupt kind sends instead of its photo. Pure."""
    if kind is Kind.TRUNCATED:
        return photo[: max(200, len(photo) // 3)]
    if kind is Kind.RANDOM_BYTES:
        return rng.bytes(20_000)
    assert kind is Kind.TEXT_FILE
    return ("Мой бюллетень: голосовал за перемены.\n" * 200).encode()


# -- the reconciliation --------------------------------------------------------------

COUNTED = "verified"
NOT_YET_READ = "received"


@dataclass(frozen=True)
class Told:
    """One submission as its phone's outbox ends: what the phone was told."""

    phone: int
    kind: Kind
    submission_id: str
    precinct_id: str
    state: str  # the outbox's: delivered, failed, queued, sending
    http_status: int | None
    error_field: str | None = None
    status: str | None = None  # GET /v1/submissions/{id}: the final status
    reasons: tuple[str, ...] = ()
    marks: tuple[str, ...] = ()
    last_error: str | None = None  # why it still waits, when it does


@dataclass(frozen=True)
class Row:
    """One submission as the platform holds it."""

    status: str
    precinct_id: str
    reasons: tuple[str, ...]
    marks: tuple[str, ...]


@dataclass(frozen=True)
class Platform:
    """What the platform counted, read back from its database after the drain."""

    rows: Mapping[str, Row]  # the submissions the phones were told about, by id
    rows_total: int  # every submission of the election (abusers' included)
    by_status: Mapping[str, int]
    voters_per_station: Mapping[str, int]  # photo_voters: the crowd tally's ballots
    votes: Mapping[tuple[str, str], int]  # photo_tallies: (precinct, option) -> votes
    verified_per_station: Mapping[str, Sequence[str]]  # the verified rows' ids


@dataclass(frozen=True)
class Abuse:
    """What the abusive clients sent and were answered."""

    name: str
    requests: int
    answers: Mapping[int, int]  # HTTP status -> count
    accepted_ids: Sequence[str]  # 2xx
    allowed: int  # at most this many may be accepted (the configured limit)
    refused_without_retry_after: int  # 429s without a Retry-After header
    identities: Mapping[str, str] = field(default_factory=dict)  # accepted id -> identity
    messages: Mapping[int, str] = field(default_factory=dict)  # HTTP status -> a message


@dataclass
class Reconciliation:
    table: list[tuple[str, int, int]]  # (what, the phones were told, the platform counted)
    differences: list[str]
    notes: list[str]

    @property
    def ok(self) -> bool:
        return not self.differences


def reconcile(
    told: Sequence[Told], platform: Platform, abuse: Sequence[Abuse] = ()
) -> Reconciliation:
    """Compare every phone's final receipts with the platform's rows and tallies.
    Pure.

    Nothing lost: every submission a phone was told was accepted is there, once, in
    a final status, and the platform has no submission that no client was told
    about. Nothing counted twice: each station's crowd tally is its verified rows,
    which are the ones the phones were told count, and each phone counts at most
    once. Every final refusal is explained: a corrupt file refused on upload with
    the field at fault, or a non-counted status that carries its reasons."""
    diffs: list[str] = []
    notes: list[str] = []
    delivered = [t for t in told if t.state == "delivered"]
    failed = [t for t in told if t.state == "failed"]
    waiting = [t for t in told if t.state not in ("delivered", "failed")]
    ids = Counter(t.submission_id for t in delivered)
    for sid, n in ids.items():
        if n > 1:
            diffs.append(f"{sid}: acknowledged to {n} outbox entries")
    for t in waiting:
        diffs.append(
            f"{t.submission_id} (phone {t.phone}, {t.kind}): still {t.state} in its outbox"
            f" ({t.last_error or 'not tried yet'})"
        )

    # Every acknowledged upload present exactly once, in the status the phone was told.
    missing = [t for t in delivered if t.submission_id not in platform.rows]
    for t in missing:
        diffs.append(f"{t.submission_id} (phone {t.phone}): acknowledged, but not on the platform")
    for t in delivered:
        row = platform.rows.get(t.submission_id)
        if row is None:
            continue
        if row.status != t.status:
            diffs.append(
                f"{t.submission_id}: the phone was told {t.status}, the platform has {row.status}"
            )
        if row.precinct_id != t.precinct_id:
            diffs.append(
                f"{t.submission_id}: sent for {t.precinct_id}, stored at {row.precinct_id}"
            )
        if row.status == NOT_YET_READ:
            diffs.append(f"{t.submission_id}: never read (still {NOT_YET_READ})")
        elif row.status != COUNTED and not row.reasons:
            diffs.append(f"{t.submission_id}: {row.status} without a reason")
    abused_ids = {sid for a in abuse for sid in a.accepted_ids}
    known = len(ids) + len(abused_ids - set(ids))
    if platform.rows_total != known:
        diffs.append(
            f"the platform holds {platform.rows_total} submissions; the clients were told "
            f"of {known} ({platform.rows_total - known:+d} unacknowledged)"
        )

    # Every final refusal explained: only the corrupt files are refused at upload.
    for t in failed:
        if t.kind not in CORRUPT:
            diffs.append(
                f"{t.submission_id} (phone {t.phone}, {t.kind}): refused at upload "
                f"(HTTP {t.http_status}, {t.error_field})"
            )
        elif t.error_field != "photo":
            diffs.append(f"{t.submission_id}: corrupt file refused for {t.error_field!r}")
    for t in delivered:
        if t.kind in CORRUPT and t.status == COUNTED:
            diffs.append(f"{t.submission_id}: a {t.kind} was counted")

    # Nothing counted twice: each phone at most once; the tallies are the verified rows.
    counted_by_phone = Counter(t.phone for t in delivered if t.status == COUNTED)
    for phone, n in counted_by_phone.items():
        if n > 1:
            diffs.append(f"phone {phone}: {n} submissions counted")
    for a in abuse:
        by_identity = Counter(
            a.identities.get(sid, sid)
            for sid in a.accepted_ids
            if (row := platform.rows.get(sid)) is not None and row.status == COUNTED
        )
        for identity, n in by_identity.items():
            if n > 1:
                diffs.append(f"{a.name}: identity {identity} counted {n} times")
    told_verified: dict[str, set[str]] = defaultdict(set)
    for t in delivered:
        if t.status == COUNTED:
            told_verified[t.precinct_id].add(t.submission_id)
    abuser_verified: dict[str, set[str]] = defaultdict(set)
    for sid in abused_ids:
        row = platform.rows.get(sid)
        if row is not None and row.status == COUNTED:
            abuser_verified[row.precinct_id].add(sid)
    stations = (
        set(platform.voters_per_station) | set(platform.verified_per_station) | set(told_verified)
    )
    marks_of = {t.submission_id: t.marks for t in delivered}
    for p in sorted(stations):
        verified = set(platform.verified_per_station.get(p, ()))
        expected = told_verified.get(p, set()) | abuser_verified.get(p, set())
        tally = platform.voters_per_station.get(p, 0)
        if tally != len(verified):
            diffs.append(
                f"station {p}: the crowd tally counts {tally}, {len(verified)} rows verified"
            )
        if verified != expected:
            diffs.append(
                f"station {p}: {len(verified)} verified rows, the phones were told "
                f"{len(expected)} count ({len(verified - expected)} unknown, "
                f"{len(expected - verified)} missing)"
            )
        votes: Counter[str] = Counter()
        for sid in verified:
            row = platform.rows.get(sid)
            votes.update(row.marks if row is not None else marks_of.get(sid, ()))
        for option in set(votes) | {o for (q, o) in platform.votes if q == p}:
            if platform.votes.get((p, option), 0) != votes[option]:
                diffs.append(
                    f"station {p}: {option} has {platform.votes.get((p, option), 0)} votes "
                    f"in the tally, {votes[option]} verified ballots"
                )

    for a in abuse:
        if len(a.accepted_ids) > a.allowed:
            diffs.append(f"{a.name}: {len(a.accepted_ids)} accepted, the limit is {a.allowed}")
        if a.refused_without_retry_after:
            diffs.append(f"{a.name}: {a.refused_without_retry_after} 429s without Retry-After")
        answers = ", ".join(
            f"{n}x{code}" + (f" ({a.messages[code]})" if code in a.messages else "")
            for code, n in sorted(a.answers.items())
        )
        notes.append(f"{a.name}: {a.requests} requests answered {answers}")

    notes.insert(
        0,
        f"{len({t.phone for t in told})} phones took {len(told)} photos: {len(ids)} "
        f"acknowledged, {len(failed)} refused at upload, {len(waiting)} still in an outbox",
    )
    told_status = Counter(t.status or "(status unknown)" for t in delivered)
    stored = Counter(
        row.status for t in delivered if (row := platform.rows.get(t.submission_id)) is not None
    )
    table = [("acknowledged uploads", len(ids), sum(stored.values()))]
    for status in sorted(set(told_status) | set(stored)):
        table.append((f"  {status}", told_status.get(status, 0), stored.get(status, 0)))
    counted_told = sum(len(v) for v in told_verified.values())
    counted_tally = sum(platform.voters_per_station.values())
    abusers_counted = sum(len(v) for v in abuser_verified.values())
    table.append(("counted (crowd tally)", counted_told, counted_tally - abusers_counted))
    abused_rows = sum(1 for sid in abused_ids if sid in platform.rows)
    table.append(("abusers' accepted uploads", len(abused_ids), abused_rows))
    table.append(("  of them counted", abusers_counted, abusers_counted))
    table.append(("all submissions", known, platform.rows_total))
    return Reconciliation(table, diffs, notes)
