"""Connections to PostgreSQL: one pool per process, opened on first use.

The pool checks a connection before lending it (``ConnectionPool.check_connection``,
one round trip) when its previous loan began CHECK_IDLE_SECONDS ago or more: after
a database restart its connections are all dead, and each would otherwise fail the
request that drew it (a 500, /healthz included) before the pool noticed. A
connection that died while idle lay idle at least as long as the restart took
(PostgreSQL stops, then starts: 0.24 s at the fastest, an idle embedded cluster
on this machine, median of 5), and the time since its previous loan began is
never shorter than the time it lay idle since that loan ended; so one lent again
sooner, under load, has just served a request and needs no check: the check's
round trip is saved on most requests (two pool loans per upload). Should one slip
through all the same, its request is answered 503 with Retry-After (api.main),
never 500, and the pool drops the connection. While the database is down a
request waits for a connection up to WAIT_SECONDS and is then answered 503 with
Retry-After (api.main), rather than hang for the pool's default 30 s, past a
phone's own timeout.

The loan's start is noted by the check itself, not when the connection comes
back: a pool with a ``reset`` callback hands every returned connection to its
worker thread (psycopg_pool's ReturnConnection task), a thread hand-off on each
of an upload's two loans, and the connection is lent again only once that thread
ran (py-spy on bench/ingest.py: the pool's worker thread and the tasks handed to
it were about 4% of the API's samples)."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool

from infra.settings import get_settings

# How long a request waits for a connection: a database restart's first seconds,
# or a burst beyond the pool, but not so long that the caller gives up before the
# 503 that tells it when to retry.
WAIT_SECONDS = 5.0

# Under the fastest restart of PostgreSQL measured (0.24 s, see the module
# docstring), over the time between two loans of one connection under load (10
# connections a process at 100 uploads/s, two loans each: one every ~50 ms).
CHECK_IDLE_SECONDS = 0.1

_pool: ConnectionPool | None = None
_pool_lock = threading.Lock()
_lent_at: weakref.WeakKeyDictionary[psycopg.Connection, float] = weakref.WeakKeyDictionary()
_lent_lock = threading.Lock()


def _check(conn: psycopg.Connection) -> None:
    """The pool's check, run as the connection is lent: a round trip, unless its
    previous loan began less than CHECK_IDLE_SECONDS ago (a new connection is
    checked). A connection whose check fails is not lent (the pool drops it), and
    one whose loan broke it is dropped when it comes back: either way it is not
    here again."""
    now = time.monotonic()
    with _lent_lock:
        since = _lent_at.get(conn)
        _lent_at[conn] = now
    if since is None or now - since >= CHECK_IDLE_SECONDS:
        ConnectionPool.check_connection(conn)


def get_pool() -> ConnectionPool:
    global _pool
    with _pool_lock:  # first use may come from several request threads at once
        if _pool is None:
            settings = get_settings()
            _pool = ConnectionPool(
                settings.dsn,
                min_size=1,
                max_size=settings.db_pool_size,
                open=True,
                name="golos",
                check=_check,
                timeout=WAIT_SECONDS,
            )
        return _pool


@contextmanager
def connection() -> Iterator[psycopg.Connection]:
    """A pooled connection; the block runs in one transaction, committed on success."""
    with get_pool().connection() as conn:
        yield conn


def close_pool() -> None:
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.close()
            _pool = None


# The migration tool's own bookkeeping: never cleared with the platform's data.
_BOOKKEEPING_PREFIXES = ("_yoyo", "yoyo_")


def data_tables(conn: psycopg.Connection) -> list[str]:
    """Every table of the platform's schema that holds data (each domain's tables and
    the job queue's), read from the catalogue: a new migration's tables are included
    without anyone keeping a list."""
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
    ).fetchall()
    return [name for (name,) in rows if not name.startswith(_BOOKKEEPING_PREFIXES)]
