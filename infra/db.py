"""Connections to PostgreSQL: one pool per process, opened on first use.

The pool checks a connection before lending it (``ConnectionPool.check_connection``,
one round trip): after a database restart its connections are all dead, and each
would otherwise fail the request that drew it (a 500, /healthz included) before
the pool noticed. While the database is down a request waits for a connection up
to WAIT_SECONDS and is then answered 503 with Retry-After (api.main), rather than
hang for the pool's default 30 s, past a phone's own timeout."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool

from infra.settings import get_settings

# How long a request waits for a connection: a database restart's first seconds,
# or a burst beyond the pool, but not so long that the caller gives up before the
# 503 that tells it when to retry.
WAIT_SECONDS = 5.0

_pool: ConnectionPool | None = None
_pool_lock = threading.Lock()


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
                check=ConnectionPool.check_connection,
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
