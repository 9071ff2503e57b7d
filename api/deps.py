"""What routes receive through ``Depends``: typed ``Annotated`` aliases.

Tests replace any of these through its provider function, e.g.
``app.dependency_overrides[settings_dep] = lambda: changed``;
nothing is patched. Database work is synchronous (psycopg), so routes that use
``Conn`` are plain ``def`` routes, which FastAPI runs in its thread pool: no
blocking call on the event loop. An ``async`` route that must touch the database
(the upload, which streams its body) takes ``Pool`` and hands the work to
``run_in_threadpool``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool

from infra import db, queue
from infra.settings import Settings, get_settings
from infra.storage import PhotoStore, photo_store


def settings_dep() -> Settings:
    return get_settings()


AppSettings = Annotated[Settings, Depends(settings_dep)]


def store_dep(settings: AppSettings) -> PhotoStore:
    return photo_store(settings)


Store = Annotated[PhotoStore, Depends(store_dep)]


def pool_dep() -> ConnectionPool:
    return db.get_pool()


Pool = Annotated[ConnectionPool, Depends(pool_dep)]


def conn_dep(pool: Pool) -> Iterator[psycopg.Connection]:
    """One pooled connection per request, its transaction committed when the route
    returns, before the answer is sent (scope="function"): a client that reads
    back what it just wrote finds it."""
    with pool.connection() as conn:
        yield conn


Conn = Annotated[psycopg.Connection, Depends(conn_dep, scope="function")]


def queue_dep(request: Request) -> queue.App:
    job_queue: queue.App = request.app.state.queue
    return job_queue


JobQueue = Annotated[queue.App, Depends(queue_dep)]
