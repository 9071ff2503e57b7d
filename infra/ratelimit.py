"""Rate limits: how often one key (a verified voter, a network) may do something.

Each limit is a sliding-window counter (the approximation Cloudflare describes): the
current fixed window's hits plus the previous window's, weighted by how much of it
the sliding window still covers. Two counters per key instead of a timestamp per
hit, which is also what data minimisation asks: the table keeps how many, in
windows as coarse as the limit's, never when one request came.

The window maths is pure (``window_start``, ``room``, ``decide``). The table
``rate_limits`` (migration 0012) is this module's own, written only by ``take``,
``give_back`` and ``forget_expired``: the submissions, the voters' verification
and the report jobs count with it, none of them owns it. Keys are keyed hashes
only (a voter's ``voter_key``, :func:`network_key` of an address,
:func:`account_key` of an account); a row is
deleted once it weighs in no limit any more (the end of the window after its own).

A hit is taken before the work and given back if the work does not happen (a
refusal, a retry of a request already stored): only what was done counts, and
concurrent requests cannot all pass a check made before any of them counted.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import math
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import psycopg
from psycopg.pq import TransactionStatus


class Scope(enum.StrEnum):
    """What a limit counts (the ``scope`` column)."""

    SUBMISSION_VOTER = "submission_voter"  # new submissions of one verified voter
    SUBMISSION_NETWORK = "submission_network"  # new submissions from one network
    VERIFICATION_NETWORK = "verification_network"  # codes asked for from one network
    REPORT_ACCOUNT = "report_account"  # report jobs (new or retried) of one account


@dataclass(frozen=True)
class Limit:
    """At most ``max_hits`` per sliding window of ``window_seconds``; 0 hits: no limit."""

    scope: str
    max_hits: int
    window_seconds: int

    @property
    def off(self) -> bool:
        return self.max_hits <= 0 or self.window_seconds <= 0


class Decision(NamedTuple):
    allowed: bool
    retry_after: int  # whole seconds until one more hit fits (0 when allowed)


class Exceeded(Exception):
    """A limit is reached: nothing was counted; retry after ``retry_after`` seconds."""

    def __init__(self, scope: str, retry_after: int) -> None:
        super().__init__(f"{scope}: retry after {retry_after} s")
        self.scope = scope
        self.retry_after = retry_after


# Slack for float rounding: a hit that fits exactly must not be refused.
_EPSILON = 1e-9


def window_start(now: float, window_seconds: int) -> int:
    """The start (Unix seconds) of the fixed window ``now`` falls in. Pure."""
    return int(now // window_seconds) * window_seconds


def room(limit: Limit, now: float, previous: int) -> int:
    """How many hits the current fixed window may hold at ``now``, given the previous
    window's ``previous``: the most for which the sliding estimate stays within the
    limit. Pure."""
    elapsed = (now - window_start(now, limit.window_seconds)) / limit.window_seconds
    return math.floor(limit.max_hits - previous * (1 - elapsed) + _EPSILON)


def decide(limit: Limit, now: float, previous: int, current: int) -> Decision:
    """Whether one more hit fits at ``now``, with ``previous`` and ``current`` hits in
    the previous and current fixed windows, and if not, how long until it does. Pure."""
    if limit.off or current + 1 <= room(limit, now, previous):
        return Decision(True, 0)
    window, n = limit.window_seconds, limit.max_hits
    elapsed = (now - window_start(now, window)) / window
    if current + 1 <= n and previous > 0:
        # Later in this window, once enough of the previous one has slid out.
        fits_at = 1 - (n - current - 1) / previous
        wait = (fits_at - elapsed) * window
    else:
        # In the next window, where this one's hits weigh as the previous ones.
        fits_at = max(0.0, 1 - (n - 1) / current) if current > 0 else 0.0
        wait = (1 - elapsed) * window + fits_at * window
    return Decision(False, max(1, math.ceil(wait - _EPSILON)))


def network_prefix(host: str | None) -> str:
    """The network a caller's address stands for: its /24 (IPv4) or /48 (IPv6). A
    station's Wi-Fi or a carrier's NAT puts many people behind one such network, so
    limits on it must be generous; an address that is not one (a test client, a
    Unix socket) is its own network. Pure."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return host or ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    bits = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


def keyed_hash(secret: bytes, label: str, value: str) -> bytes:
    """The 16-byte key a limit keeps for ``value``: HMAC-SHA256 under the platform's
    secret, labelled so that keys of different kinds never match. Pure."""
    return hmac.new(secret, f"{label}\x00{value}".encode(), hashlib.sha256).digest()[:16]


def network_key(secret: bytes, host: str | None) -> bytes:
    """What a limit keeps of a caller's address: a keyed hash of its network, never the
    address (without the key, the 2^24 IPv4 networks could all be tried). Pure."""
    return keyed_hash(secret, "rate-limit-network", network_prefix(host))


def account_key(secret: bytes, user_id: int) -> bytes:
    """What a limit keeps of an account: a keyed hash of its user id, like any other
    key in the table (no row names an account by itself). Pure."""
    return keyed_hash(secret, "rate-limit-account", str(user_id))


# --- the table rate_limits (migration 0012) ---------------------------------------


class Hit(NamedTuple):
    """One counted hit, to give back if the work it was counted for did not happen."""

    scope: str
    key: bytes
    window_start: int


# Expired rows are swept at most this often per process: a sweep is one index range
# scan, and a counter outliving its window by a minute keeps nothing new.
SWEEP_SECONDS = 60
_sweep_lock = threading.Lock()
_next_sweep = 0.0


def _values(n: int, columns: Sequence[tuple[str, str]]) -> str:
    """``(VALUES (%s::type, ...), ...) AS k(name, ..., position)`` for ``n`` rows. Pure.

    Scalar parameters, not arrays: psycopg dumps a list element by element in Python,
    which cost 5% of the upload's CPU (py-spy) for the few keys counted here."""
    first = ", ".join(f"%s::{kind}" for _, kind in columns)
    rest = ", ".join("%s" for _ in columns)
    rows = [f"({first}, 1)", *(f"({rest}, {i})" for i in range(2, n + 1))]
    names = ", ".join(name for name, _ in columns)
    return f"(VALUES {', '.join(rows)}) AS k({names}, position)"


_TAKE_COLUMNS = (
    ("scope", "text"), ("key", "bytea"), ("start", "bigint"), ("previous", "bigint"),
    ("expires", "bigint"), ("max_hits", "int"), ("weight", "float8"),
)  # fmt: skip


@lru_cache(maxsize=8)
def _take_sql(n: int) -> str:
    """The statement counting ``n`` keys for ``take``: each key's room in its current
    window from its previous window's hits (``room``, in SQL), then an upsert that
    adds the hit only where the row, once locked, is still under that room (the row
    lock serialises concurrent requests: each sees the others' hits, so they cannot
    all pass one check). Rows are inserted in the caller's order, the order their
    locks are taken in. ``set_config(..., true)`` is ``SET LOCAL``: the statement's
    own transaction commits without waiting for the disk. One round trip where a
    transaction of a statement per key took five on every upload (BEGIN, the
    previous windows, a key, a key, COMMIT). Pure."""
    return f"""
    WITH no_wait AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)),
    k AS (
        SELECT k.*, floor(k.max_hits - coalesce(p.hits, 0) * k.weight + {_EPSILON!r}) AS cap
        FROM no_wait, {_values(n, _TAKE_COLUMNS)}
        LEFT JOIN rate_limits p
            ON p.scope = k.scope AND p.key = k.key AND p.window_start = to_timestamp(k.previous)
    ),
    counted AS (
        INSERT INTO rate_limits AS r (scope, key, window_start, hits, expires_at)
        SELECT scope, key, to_timestamp(start), 1, to_timestamp(expires)
        FROM k WHERE cap >= 1 ORDER BY position
        ON CONFLICT (scope, key, window_start) DO UPDATE SET hits = r.hits + 1
        WHERE r.hits < (SELECT k.cap FROM k WHERE k.scope = r.scope AND k.key = r.key)
        RETURNING r.scope, r.key
    )
    SELECT c.scope IS NOT NULL, coalesce(p.hits, 0)
    FROM k LEFT JOIN counted c ON c.scope = k.scope AND c.key = k.key
    LEFT JOIN rate_limits p
        ON p.scope = k.scope AND p.key = k.key AND p.window_start = to_timestamp(k.previous)
    ORDER BY k.position
    """


def take(
    conn: psycopg.Connection,
    wanted: Sequence[tuple[Limit, bytes]],
    *,
    now: float | None = None,
) -> list[Hit]:
    """Count one hit of each (limit, key), all or none, in one statement of its own
    (committed at once, so the row locks are held for microseconds, not for the
    caller's work). Raises Exceeded, counting nothing, when any limit is reached.

    ``conn`` must not be in a transaction: the counters commit without waiting for
    the disk (a counter lost in a crash only forgives a few hits), which must not
    extend to the caller's own writes.

    All or none: when a key is refused, the others' hits, counted by the same
    statement, are given back at once by a second one. Between the two, a concurrent
    request of one of those keys sees one hit too many: it can only be refused where
    it would have been refused a moment later anyway, at its own limit's edge."""
    global _next_sweep
    active = [(limit, key) for limit, key in wanted if not limit.off]
    if not active:
        return []
    if len({(limit.scope, key) for limit, key in active}) < len(active):
        raise ValueError("a (scope, key) is counted at most once a call")
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise RuntimeError("rate limits are counted outside the caller's transaction")
    moment = time.time() if now is None else now
    starts = [window_start(moment, limit.window_seconds) for limit, _ in active]
    params: list[object] = []
    for (limit, key), start in zip(active, starts, strict=True):
        window = limit.window_seconds
        # The weight: the share of the previous window the sliding one still covers.
        weight = 1 - (moment - start) / window
        params += [limit.scope, key, start, start - window, start + 2 * window]
        params += [limit.max_hits, weight]
    was_autocommit = conn.autocommit
    conn.autocommit = True  # the statement is its own transaction
    try:
        rows = conn.execute(_take_sql(len(active)), params).fetchall()
        hits = [Hit(limit.scope, key, s) for (limit, key), s in zip(active, starts, strict=True)]
        refused = [i for i, (counted, _) in enumerate(rows) if not counted]
        if refused:
            give_back(conn, [hits[i] for i, (counted, _) in enumerate(rows) if counted])
            first = refused[0]
            limit, key = active[first]
            row = conn.execute(
                "SELECT hits FROM rate_limits"
                " WHERE scope = %s AND key = %s AND window_start = to_timestamp(%s)",
                (limit.scope, key, starts[first]),
            ).fetchone()
            current = int(row[0]) if row is not None else 0
            decision = decide(limit, moment, int(rows[first][1]), current)
            raise Exceeded(limit.scope, max(1, decision.retry_after))
        with _sweep_lock:
            sweep = now is None and time.monotonic() >= _next_sweep
            if sweep:
                _next_sweep = time.monotonic() + SWEEP_SECONDS
        if sweep:
            forget_expired(conn, moment)
    finally:
        conn.autocommit = was_autocommit
    return hits


def give_back(conn: psycopg.Connection, hits: Sequence[Hit]) -> None:
    """Uncount hits whose work did not happen (in a transaction of its own). A failure
    here is swallowed: a hit not given back only over-counts until its window ends,
    and the caller is already answering an error of its own."""
    if not hits:
        return
    try:
        if conn.info.transaction_status != TransactionStatus.IDLE:
            conn.rollback()
        with conn.transaction():
            conn.execute("SET LOCAL synchronous_commit = off")
            for hit in hits:
                conn.execute(
                    "UPDATE rate_limits SET hits = hits - 1 WHERE scope = %s AND key = %s"
                    " AND window_start = to_timestamp(%s) AND hits > 0",
                    (hit.scope, hit.key, hit.window_start),
                )
    except psycopg.Error:
        pass


class Taken:
    """The hits a ``counting`` block took; ``undo()`` has them given back when the
    block ends (its work turned out not to happen: a retry of a request already
    stored, a job someone else queued meanwhile)."""

    def __init__(self, hits: list[Hit]) -> None:
        self.hits = hits
        self.undone = False

    def undo(self) -> None:
        self.undone = True


@contextmanager
def counting(
    conn: psycopg.Connection,
    wanted: Sequence[tuple[Limit | None, bytes]],
    *,
    now: float | None = None,
) -> Iterator[Taken]:
    """Count one hit of each (limit, key) with ``take`` (a None limit counts
    nothing; Exceeded when any is reached, the block not run), run the block, and
    give the hits back if it raises or calls ``undo()``: only work done counts.
    ``conn`` as for ``take``: nothing uncommitted when entered."""
    hits = take(conn, [(limit, key) for limit, key in wanted if limit is not None], now=now)
    taken = Taken(hits)
    try:
        yield taken
    except BaseException:
        give_back(conn, hits)
        raise
    if taken.undone:
        give_back(conn, hits)


def forget_expired(conn: psycopg.Connection, now: float | None = None) -> int:
    """Delete the counters that weigh in no limit any more; returns how many."""
    moment = time.time() if now is None else now
    deleted = conn.execute(
        "DELETE FROM rate_limits WHERE expires_at <= to_timestamp(%s)", (moment,)
    )
    return deleted.rowcount


# --- counting inside the caller's transaction (the quarantine) --------------------


class Count(NamedTuple):
    """A key's hits in the previous and the current fixed window, the new one included."""

    previous: int
    current: int


def count_in_transaction(
    conn: psycopg.Connection, limit: Limit, key: bytes, now: float | None = None
) -> Count:
    """Count one hit of (limit, key) in the caller's transaction, whatever the count,
    and return the two windows' hits. Unlike ``take`` nothing is refused: the caller
    decides (``beyond``) what a count over the limit means, and a rollback of its work
    takes the hit back with it. The row stays locked until the caller commits, so
    concurrent arrivals of one key see each other's hits."""
    return count_all_in_transaction(conn, [(limit, key)], now)[0]


_COUNT_COLUMNS = (
    ("scope", "text"), ("key", "bytea"), ("start", "bigint"), ("previous", "bigint"),
    ("expires", "bigint"),
)  # fmt: skip


@lru_cache(maxsize=8)
def _count_all_sql(n: int) -> str:
    """The statement of ``count_all_in_transaction`` for ``n`` keys. Pure."""
    return f"""
        WITH k AS (SELECT * FROM {_values(n, _COUNT_COLUMNS)}),
        counted AS (
            INSERT INTO rate_limits AS r (scope, key, window_start, hits, expires_at)
            SELECT scope, key, to_timestamp(start), 1, to_timestamp(expires)
            FROM k ORDER BY position
            ON CONFLICT (scope, key, window_start) DO UPDATE SET hits = r.hits + 1
            RETURNING r.scope, r.key, r.hits
        )
        SELECT c.hits, coalesce(p.hits, 0)
        FROM k JOIN counted c ON c.scope = k.scope AND c.key = k.key
        LEFT JOIN rate_limits p
            ON p.scope = k.scope AND p.key = k.key AND p.window_start = to_timestamp(k.previous)
        ORDER BY k.position
        """


def count_all_in_transaction(
    conn: psycopg.Connection, wanted: Sequence[tuple[Limit, bytes]], now: float | None = None
) -> list[Count]:
    """``count_in_transaction`` of each (limit, key), in one statement (one round trip
    on the upload's path): the rows are upserted, so locked, in the order given."""
    if not wanted:
        return []
    if len({(limit.scope, key) for limit, key in wanted}) < len(wanted):
        raise ValueError("a (scope, key) is counted at most once a call")
    moment = time.time() if now is None else now
    starts = [window_start(moment, limit.window_seconds) for limit, _ in wanted]
    params: list[object] = []
    for (limit, key), start in zip(wanted, starts, strict=True):
        window = limit.window_seconds
        params += [limit.scope, key, start, start - window, start + 2 * window]
    rows = conn.execute(_count_all_sql(len(wanted)), params).fetchall()
    assert len(rows) == len(wanted)
    return [Count(int(previous), int(current)) for current, previous in rows]


def beyond(limit: Limit, now: float, count: Count) -> bool:
    """Whether ``count`` (the new hit included) goes beyond the limit's sliding
    estimate at ``now``; never for a limit that is off. Pure."""
    if limit.off:
        return False
    return count.current > room(limit, now, count.previous)


def forget_expired_of(conn: psycopg.Connection, scopes: Sequence[str], now: float) -> int:
    """Delete the expired counters of ``scopes`` in the caller's transaction, skipping
    rows another transaction holds (a later sweep takes them): never waits, so it
    cannot deadlock with a concurrent sweep; returns how many went."""
    return conn.execute(
        """
        DELETE FROM rate_limits WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM rate_limits
            WHERE scope = ANY(%s) AND expires_at <= to_timestamp(%s)
            FOR UPDATE SKIP LOCKED))
        """,
        (list(scopes), now),
    ).rowcount


def current_count(conn: psycopg.Connection, limit: Limit, key: bytes, now: float) -> Count:
    """The key's hits in the previous and the current fixed window at ``now``, as
    counted so far (nothing counted)."""
    start = window_start(now, limit.window_seconds)
    rows: dict[int, int] = dict(
        conn.execute(
            "SELECT extract(epoch FROM window_start)::bigint, hits FROM rate_limits"
            " WHERE scope = %s AND key = %s"
            " AND window_start IN (to_timestamp(%s), to_timestamp(%s))",
            (limit.scope, key, start - limit.window_seconds, start),
        ).fetchall()
    )
    return Count(int(rows.get(start - limit.window_seconds, 0)), int(rows.get(start, 0)))
