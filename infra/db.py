"""Connections to PostgreSQL: one pool per process, opened on first use."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool

from infra.settings import get_settings

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
