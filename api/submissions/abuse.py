"""Holding suspicious submissions for people: a quarantine for identities or networks
that send beyond the plausible, or bursts at one station.

Softer than the hard limits (``infra.ratelimit``, 429): a submission beyond a
quarantine threshold is stored, acknowledged and read like any other, but where it
would count the pipeline makes it ``quarantined`` instead (``pipeline``), and it
counts only once two observers approve it in the review (``api.review``). Three
thresholds (``infra.settings``, where their defaults are justified):

* **a voter**: their submissions within a sliding hour beyond the plausible (the
  third); only the submission beyond it is held (``Reason.VOTER_BURST``);
* **a network at one station**: more arrivals from one network at one station in a
  short window than honest voters send, a floor or a share of the station's roll,
  whichever is larger (``Reason.NETWORK_BURST``);
* **a station**: more arrivals at one station in a short window than its roll makes
  plausible even when a network cut ends and its whole crowd arrives at once; only
  the arrivals beyond it are held (``Reason.STATION_BURST``).

**A network's burst is judged whole; a station's is not.** When one network at one
station crosses its threshold, every submission it sent there within the sliding
window is held, the earlier ones too (a forger's first photos look like anyone's
until the burst shows); one of those already counted is taken back out of the tally
and quarantined, in this transaction. When a station crosses its threshold, only
the arrivals beyond it are held: never the earlier ones, and nothing counted is
taken back. The difference is who can cause the burst. Many arrivals from one
network at one station are what one sender's stack of SIM cards behind one router
looks like, and only that sender makes them: the whole group held is mostly the
sender's own. A station's burst anyone can cause: when a network cut ends, the
state (or anyone with some sixty verified numbers over many networks) can flood a
station with falsified photos in the same ten minutes as its honest backlog, and a
whole-group hold would take every honest ballot counted there out of the count until
two observers approved each one: the flood would buy the removal of the honest proof.
So a station's burst holds only what arrives beyond the plausible (the flood's
later part, and honest voters arriving among it, each reviewed); the network
threshold and the flags' count of distinct identities (``tally.proof``) do the rest.
What the whole-group hold of a network costs: honest voters behind one carrier's NAT
(one /24) at one busy station, more of them within the window than the network's
threshold, are held with any forger's, the earlier ones too, and wait for two
observers.

**A decided submission leaves its bursts.** Once two observers (or an admin) decide
a held submission in the review (``api.review.service``), approving or rejecting it,
it leaves every burst group it is listed in (``leave_bursts``): a later arrival of
the group never holds it again, nor takes it out of the tally, so no burst undoes a
two-person decision behind the audit log's back. Nor is a member already held for a
burst's reason processed again by that burst's later arrivals.

**What is kept.** The counts are ``infra.ratelimit``'s sliding-window counters
(keyed hashes, coarse windows, deleted once they weigh in nothing). The members of a
network's group at a station are listed under the group's key in ``burst_arrivals``
until the end of the next window (or until a person decides them), then deleted; a
station's arrivals are only counted. A hold keeps only its reasons: no key, no time,
no network. The network arrives here already as a keyed hash
(``ratelimit.network_key``).

A submission held after it was counted may have superseded the same voter's
earlier ballot (one vote per voter): that one stays superseded, so the voter has
no ballot counted until the review decides; approving the held one counts it, with
the one-vote-per-voter rule, like any other.

**Locks**, inside the upload's transaction, once its row and its photo are written
(``api.submissions.service._store``): every counter's row first (voter, network at
the station, station: one order), then the rows of the crossed network burst's
members not yet held for it, in one statement in seq order, then the station's
tally rows: the order the pipeline and the review take rows in (a submission's row,
then the tally), and neither takes a counter, so there is no cycle. The review's
``leave_bursts`` deletes a decided submission's ``burst_arrivals`` rows after
locking its row; an upload only reads and inserts those rows, and the sweep of
expired rows skips rows another transaction holds (``FOR UPDATE SKIP LOCKED``): it
never waits. The counter rows stay locked until the upload commits, but only the
job's insert and the COMMIT run under them (the photo's write, an fsync or an object
store's PUT, comes before): arrivals at one station queue there for milliseconds,
not for a photo's write. A burst's later arrivals lock and hold only themselves
(``repository.burst_members`` skips the members held for it already): an arrival's
work does not grow with the burst. Any wait is bounded by the upload's
``lock_timeout`` (2 s, set by its first statement: ``repository.insert_received``):
beyond it the upload fails, answered 503 with Retry-After, and the phone retries (a
photo already written stays in the content-addressed store, named by no row until
the retry's).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from api.elections import repository as elections
from api.submissions import repository
from api.submissions.schemas import HOLD_REASONS, Reason, Status
from infra import ratelimit
from infra.settings import Settings, get_settings
from tally.repository import count_ballot

# The counters' scopes in ``rate_limits`` (beside infra.ratelimit.Scope's own).
VOTER_SCOPE = "quarantine_voter"
NETWORK_STATION_SCOPE = "quarantine_network_station"
STATION_SCOPE = "quarantine_station"

# Expired burst arrivals are swept at most this often per process.
SWEEP_SECONDS = 60
_sweep_lock = threading.Lock()
_next_sweep = 0.0


@dataclass(frozen=True)
class Thresholds:
    """The quarantine's thresholds (``infra.settings``); 0 turns one off."""

    per_voter: ratelimit.Limit
    network_min: int
    network_share: float
    network_seconds: int
    station_min: int
    station_share: float
    station_seconds: int

    def network(self, registered: int | None) -> ratelimit.Limit:
        """The limit of one network's arrivals at a station with ``registered`` voters
        on its roll (unknown: the floor). Pure."""
        return _scaled(
            NETWORK_STATION_SCOPE, self.network_min, self.network_share, self.network_seconds,
            registered,
        )  # fmt: skip

    def station(self, registered: int | None) -> ratelimit.Limit:
        """The limit of the arrivals at a station with ``registered`` voters on its
        roll (unknown: the floor). Pure."""
        return _scaled(
            STATION_SCOPE, self.station_min, self.station_share, self.station_seconds, registered
        )


def _scaled(
    scope: str, floor: int, share: float, seconds: int, registered: int | None
) -> ratelimit.Limit:
    """max(floor, registered x share) per window; off with the floor. Pure."""
    if floor <= 0:
        return ratelimit.Limit(scope, 0, seconds)
    scaled = 0 if registered is None else math.ceil(registered * share)
    return ratelimit.Limit(scope, max(floor, scaled), seconds)


def thresholds(settings: Settings) -> Thresholds:
    """The configured thresholds. Pure."""
    return Thresholds(
        per_voter=ratelimit.Limit(
            VOTER_SCOPE, settings.quarantine_per_voter, settings.quarantine_per_voter_seconds
        ),
        network_min=settings.quarantine_per_network_station,
        network_share=settings.quarantine_network_station_share,
        network_seconds=settings.quarantine_per_network_station_seconds,
        station_min=settings.quarantine_station_min,
        station_share=settings.quarantine_station_share,
        station_seconds=settings.quarantine_station_seconds,
    )


def station_key(election_id: str, precinct_id: str) -> bytes:
    """The 16-byte key of a station's counter (a station names nobody). Pure."""
    return hashlib.sha256(f"station\x00{election_id}\x00{precinct_id}".encode()).digest()[:16]


def network_station_key(network: bytes, election_id: str, precinct_id: str) -> bytes:
    """The 16-byte key of a network's counter at one station: a hash of the network's
    keyed hash, so no more invertible than it. Pure."""
    h = hashlib.sha256(b"network-station\x00" + network)
    h.update(f"\x00{election_id}\x00{precinct_id}".encode())
    return h.digest()[:16]


def ordered(reasons: set[str]) -> list[str]:
    """Hold reasons in the vocabulary's order. Pure."""
    return [r for r in HOLD_REASONS if r in reasons]


def record_arrival(
    conn: psycopg.Connection,
    *,
    submission_id: uuid.UUID,
    election_id: str,
    precinct_id: str,
    voter_key: bytes,
    network: bytes,
    now: float | None = None,
) -> None:
    """Note a new submission's arrival for the quarantine's counts, inside the upload's
    transaction; marks the submission held when its voter, its network or its station
    goes beyond the configured thresholds (a network's burst holds the group's
    earlier arrivals in the window too, a station's only the arrivals beyond it: see
    the module docstring). ``now``: the clock, for tests."""
    moment = time.time() if now is None else now
    limits = thresholds(get_settings())
    reasons: set[str] = set()
    # Every counter first, in one statement (voter, network at the station, station:
    # one order), then the members of the groups that crossed: see the module
    # docstring on locks. A network at the station and the station are counted
    # against their floors; the station's roll is read only once a floor is crossed
    # (one query more on the busiest stations' arrivals, none on the others').
    groups: list[tuple[_Group, Callable[[int | None], ratelimit.Limit]]] = []
    for limit_of, key, reason in (
        (limits.network, network_station_key(network, election_id, precinct_id),
         Reason.NETWORK_BURST),
        (limits.station, station_key(election_id, precinct_id), Reason.STATION_BURST),
    ):  # fmt: skip
        floor = limit_of(None)
        if floor.off or (reason is Reason.NETWORK_BURST and not network):
            continue
        groups.append((_Group(floor, key, reason), limit_of))
    voter = [] if limits.per_voter.off else [(limits.per_voter, voter_key)]
    counts = ratelimit.count_all_in_transaction(
        conn, [*voter, *((g.limit, g.key) for g, _ in groups)], moment
    )
    if voter and ratelimit.beyond(limits.per_voter, moment, counts[0]):
        reasons.add(Reason.VOTER_BURST)
    rolls: list[int | None] = []

    def roll() -> int | None:
        if not rolls:
            place = elections.precinct_place(conn, election_id, precinct_id)
            rolls.append(None if place is None else place.registered)
        return rolls[0]

    crossed: list[_Group] = []
    for (group, scaled), count in zip(groups, counts[len(voter) :], strict=True):
        if _listed(conn, group, submission_id, moment, count):
            exact = scaled(roll())
            if ratelimit.beyond(
                exact, moment, ratelimit.current_count(conn, exact, group.key, moment)
            ):
                if group.whole:
                    crossed.append(group)
                else:
                    reasons.add(group.reason)
    if reasons:
        repository.add_hold(conn, [submission_id], ordered(reasons))
    if crossed:
        _hold_bursts(conn, crossed, moment)
    _sweep(conn, moment, now is None)


@dataclass(frozen=True)
class _Group:
    """Arrivals counted together: a network at one station, or one station."""

    limit: ratelimit.Limit
    key: bytes
    reason: Reason

    @property
    def whole(self) -> bool:
        """Whether a crossing holds the group's earlier members too (a network at a
        station), or only the arrivals beyond it (a station): module docstring. Pure."""
        return self.reason is Reason.NETWORK_BURST

    def since(self, now: float) -> int:
        """The start of the windows the sliding estimate weighs in at ``now``. Pure."""
        window = self.limit.window_seconds
        return ratelimit.window_start(now, window) - window


def _listed(
    conn: psycopg.Connection,
    group: _Group,
    submission_id: uuid.UUID,
    now: float,
    count: ratelimit.Count,
) -> bool:
    """In a group judged whole, list the arrival (counted: ``count``) as a member;
    True when the group goes beyond its limit."""
    limit = group.limit
    if group.whole:
        start = ratelimit.window_start(now, limit.window_seconds)
        repository.record_burst_arrival(
            conn, group.key, start, submission_id, start + 2 * limit.window_seconds
        )
    return ratelimit.beyond(limit, now, count)


def _hold_bursts(conn: psycopg.Connection, crossed: list[_Group], now: float) -> None:
    """Hold every member of the crossed groups still in the sliding window and not
    held for the group's reason yet (at the crossing, the whole group; after it, the
    new arrival alone), their rows locked in one statement after every counter.
    Those already counted are taken out of the tally and quarantined; those a person
    is deciding show the hold among their reasons. Members a person decided are no
    members any more (``leave_bursts``)."""
    wanted = [(g.key, g.since(now), str(g.reason)) for g in crossed]
    members = repository.burst_members(conn, wanted, now)
    reason_of = {g.key: g.reason for g in crossed}
    why: dict[uuid.UUID, set[str]] = {}
    for key, sid in members:
        why.setdefault(sid, set()).add(reason_of[key])
    locked = repository.lock_submissions(conn, sorted(why))
    # Read again once the rows are locked, in a statement of its own (a new snapshot):
    # a review that decided a member while this transaction waited for its row has
    # committed its leaving the bursts, and that decision stands.
    still = repository.in_bursts(conn, [m.submission_id for m in locked])
    for member in locked:
        if member.submission_id not in still:
            continue
        reasons = ordered(why[member.submission_id])
        repository.add_hold(conn, [member.submission_id], reasons)
        if member.status == Status.VERIFIED:
            # Counted before the burst showed: out of the tally, into the quarantine.
            assert member.marks is not None
            count_ballot(conn, member.election_id, member.precinct_id, member.marks, -1)
            held_for = held(conn, member.submission_id)
            repository.quarantine(conn, member.submission_id, [Reason.QUARANTINED, *held_for])
        elif member.status == Status.REVIEW:
            repository.add_reasons(conn, member.submission_id, reasons)


def leave_bursts(conn: psycopg.Connection, submission_id: uuid.UUID) -> None:
    """A person decided the (locked) submission in the review: it leaves every burst
    group it is listed in, so that no later arrival of the group holds it again or
    takes it out of the tally (module docstring). Its hold (reasons only) is kept."""
    repository.leave_bursts(conn, submission_id)


def held(conn: psycopg.Connection, submission_id: uuid.UUID) -> list[str]:
    """Why the submission is held, in the vocabulary's order; empty when it is not."""
    return ordered(set(repository.hold_reasons(conn, submission_id)))


def _sweep(conn: psycopg.Connection, now: float, periodic: bool) -> None:
    """Delete expired burst arrivals and counters, at most every SWEEP_SECONDS."""
    global _next_sweep
    with _sweep_lock:
        due = periodic and time.monotonic() >= _next_sweep
        if due:
            _next_sweep = time.monotonic() + SWEEP_SECONDS
    if due:
        forget_expired(conn, now)


def forget_expired(conn: psycopg.Connection, now: float | None = None) -> int:
    """Delete the burst arrivals and the counters that weigh in no threshold any
    more; returns how many rows went."""
    moment = time.time() if now is None else now
    scopes = (VOTER_SCOPE, NETWORK_STATION_SCOPE, STATION_SCOPE)
    deleted = repository.forget_burst_arrivals(conn, moment)
    return deleted + ratelimit.forget_expired_of(conn, scopes, moment)
