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
  plausible even when a network cut ends and its whole crowd arrives at once
  (``Reason.STATION_BURST``).

A burst is judged whole: when a network or a station crosses its threshold, every
submission of that group within the sliding window is held, the earlier ones too
(a forger's first photos look like anyone's until the burst shows). One of those
already counted is taken back out of the tally and quarantined, in this transaction.

**What is kept.** The counts are ``infra.ratelimit``'s sliding-window counters
(keyed hashes, coarse windows, deleted once they weigh in nothing). The members of a
group are listed under the group's key in ``burst_arrivals`` until the end of the
next window, then deleted. A hold keeps only its reasons: no key, no time, no
network. The network arrives here already as a keyed hash (``ratelimit.network_key``).

A submission held after it was counted may have superseded the same voter's
earlier ballot (one vote per voter): that one stays superseded, so the voter has
no ballot counted until the review decides; approving the held one counts it, with
the one-vote-per-voter rule, like any other.

**Locks**, inside the upload's transaction: every counter's row first (voter,
network at the station, station: one order), then the crossed bursts' submissions'
rows in one statement in seq order, then the station's tally rows: the order the
pipeline and the review take rows in (a submission's row, then the tally), and
neither takes a counter, so there is no cycle. The sweep of expired rows skips
rows another transaction holds (``FOR UPDATE SKIP LOCKED``): it never waits.
The counter rows stay locked until the upload commits: arrivals at one station
queue there for the rest of the upload's transaction (its photo's write), which
at a station's honest rate (a few a minute) costs nothing.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import uuid
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
    goes beyond the configured thresholds (a network's or a station's burst holds the
    group's earlier arrivals in the window too). ``now``: the clock, for tests."""
    moment = time.time() if now is None else now
    limits = thresholds(get_settings())
    reasons: set[str] = set()
    # Every counter first (voter, network at the station, station: one order), then
    # the members of the groups that crossed: see the module docstring on locks.
    if not limits.per_voter.off:
        count = ratelimit.count_in_transaction(conn, limits.per_voter, voter_key, moment)
        if ratelimit.beyond(limits.per_voter, moment, count):
            reasons.add(Reason.VOTER_BURST)
    # A network at the station, then the station: counted against the floors; the
    # station's roll is read only once a floor is crossed (one query more on the
    # busiest stations' arrivals, none on the others').
    rolls: list[int | None] = []

    def roll() -> int | None:
        if not rolls:
            place = elections.precinct_place(conn, election_id, precinct_id)
            rolls.append(None if place is None else place.registered)
        return rolls[0]

    crossed: list[_Group] = []
    groups = [
        (limits.network, network_station_key(network, election_id, precinct_id),
         Reason.NETWORK_BURST),
        (limits.station, station_key(election_id, precinct_id), Reason.STATION_BURST),
    ]  # fmt: skip
    for limit_of, key, reason in groups:
        floor = limit_of(None)
        if floor.off or (reason is Reason.NETWORK_BURST and not network):
            continue
        group = _Group(floor, key, reason)
        if _count(conn, group, submission_id, moment):
            exact = limit_of(roll())
            if ratelimit.beyond(exact, moment, ratelimit.current_count(conn, exact, key, moment)):
                crossed.append(group)
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

    def since(self, now: float) -> int:
        """The start of the windows the sliding estimate weighs in at ``now``. Pure."""
        window = self.limit.window_seconds
        return ratelimit.window_start(now, window) - window


def _count(conn: psycopg.Connection, group: _Group, submission_id: uuid.UUID, now: float) -> bool:
    """Count the arrival in its group and list it as a member; True when the group
    goes beyond its limit."""
    limit = group.limit
    count = ratelimit.count_in_transaction(conn, limit, group.key, now)
    start = ratelimit.window_start(now, limit.window_seconds)
    repository.record_burst_arrival(
        conn, group.key, start, submission_id, start + 2 * limit.window_seconds
    )
    return ratelimit.beyond(limit, now, count)


def _hold_bursts(conn: psycopg.Connection, crossed: list[_Group], now: float) -> None:
    """Hold every member of the crossed groups still in the sliding window, their rows
    locked in one statement after every counter. Those already counted are taken out
    of the tally and quarantined; those a person is deciding show the hold among
    their reasons."""
    members = repository.burst_members(conn, [(g.key, g.since(now)) for g in crossed], now)
    reason_of = {g.key: g.reason for g in crossed}
    why: dict[uuid.UUID, set[str]] = {}
    for key, sid in members:
        why.setdefault(sid, set()).add(reason_of[key])
    for member in repository.lock_submissions(conn, sorted(why)):
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
