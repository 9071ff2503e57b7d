"""The HTTP application: its routers, one error handler, and the job queue it feeds."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from procrastinate.exceptions import ConnectorException
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from api.accounts.openapi import install as describe_callers
from api.accounts.routes import router as accounts_router
from api.analysts.routes import router as analysts_router
from api.deps import PUBLIC, Conn
from api.elections.routes import router as elections_router
from api.errors import BadRequest, GolosError, Invalid, ServiceUnavailable, describe_errors
from api.protocols.routes import router as protocols_router
from api.public.routes import router as public_router
from api.reports.routes import router as reports_router
from api.review.routes import router as review_router
from api.submissions.routes import router as submissions_router
from api.voters.routes import router as voters_router
from api.voters.verifiers import warn_if_development
from api.web import STATIC_DIR, error_page, is_page_request
from api.worker import queue_app
from infra import db
from infra.settings import get_settings
from infra.storage import StoreUnavailable, photo_store
from infra.threads import one_thread_per_process

log = logging.getLogger(__name__)

# What a client told to retry waits first: a database restart takes seconds.
RETRY_AFTER_SECONDS = 5
# SQLSTATEs of a server that is going away or not yet accepting connections.
_SHUTTING_DOWN = {"57P01", "57P02", "57P03"}  # admin_shutdown, crash_shutdown, cannot_connect_now
# SQLSTATEs of a transaction the server gave up on that the same request, retried,
# passes: deadlock_detected, serialization_failure, lock_not_available (lock_timeout).
_CONFLICT = {"40P01", "40001", "55P03"}


def database_unreachable(exc: BaseException) -> bool:
    """Whether a database error means the database is out of reach (retry later),
    not that a statement went wrong. Pure."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    sqlstate = exc.sqlstate
    # No SQLSTATE: the connection failed before or without a server answer.
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _SHUTTING_DOWN


def transient_conflict(exc: BaseException) -> bool:
    """Whether a database error is a conflict with another transaction that a retry
    of the request passes (a deadlock, a lock not granted in time). Pure."""
    return isinstance(exc, psycopg.OperationalError) and exc.sqlstate in _CONFLICT


def _answer(error: GolosError) -> JSONResponse:
    return JSONResponse(
        {"detail": error.body()}, status_code=error.status_code, headers=error.headers()
    )


def _answer_for(request: Request, error: GolosError) -> Response:
    """A domain error as its caller takes it: JSON for the API, a page (or, for
    401, the login page) for a person's browser."""
    if is_page_request(request):
        return error_page(request, get_settings(), error)
    return _answer(error)


def _retry_later(field: str, message: str) -> JSONResponse:
    """503 with Retry-After: a part the platform needs (``field``) is down for now."""
    answer = _answer(ServiceUnavailable(field, message))
    answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return answer


_frozen = False


def _freeze_once() -> None:
    """Set what the process holds by now (routes, models, modules: ~200,000 objects)
    apart from the garbage collector's generations, once per process (a test run
    starts many apps in one). A full collection otherwise walks all of it, 0.1-0.3 s
    on this machine during which the process answers nobody: an upload's p99."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Codes that are not really sent must not go unnoticed (GOLOS_VERIFIER=dev).
    warn_if_development(get_settings())
    one_thread_per_process()  # one process per core (infra.threads)
    # Made here, before the first request: the dependencies that hand them out run
    # on the event loop (api.deps), where opening them would block it.
    db.get_pool()
    photo_store(get_settings())
    # The queue the routes defer jobs to (JobQueue), opened for the server's life.
    job_queue = queue_app(get_settings())
    async with job_queue.open_async():
        app.state.queue = job_queue
        _freeze_once()
        yield
    db.close_pool()


def create_app() -> FastAPI:
    # No /docs or /redoc: FastAPI's pages load Swagger UI and ReDoc from a CDN, and
    # the platform loads nothing from outside (it is used where outside services
    # are blocked). The schema itself is at /openapi.json for any OpenAPI viewer.
    app = FastAPI(title="Golos", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.exception_handler(GolosError)
    async def golos_error(request: Request, exc: GolosError) -> Response:
        """Every domain error, answered with its status and the field at fault (the
        one place an error becomes an answer): JSON for the API, a page (or, for
        401, the login page) for a person's browser."""
        return _answer_for(request, exc)

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(ConnectorException)
    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        """The database cannot be reached or broke off the connection: 503 with
        Retry-After, so that phones and load balancers retry rather than take it for
        a bug. The job queue (on the same database) failing a request is the same
        when its cause is (typically the database going away between storing a
        submission and queueing its job: the retry is answered from what was
        stored, and queues the job again). A conflict with another transaction (a
        deadlock, a lock not granted in time) is answered 503 too, since the request
        retried passes, but logged with its traceback: it is also a bug to look at.
        Any other error (a statement timeout, the queue's own) is a bug: logged with
        its traceback, answered 500."""
        queue = isinstance(exc, ConnectorException)
        cause = exc.__cause__ if queue else exc
        source = "job queue" if queue else "database"
        if cause is not None and transient_conflict(cause):
            log.error("%s conflict on %s", source, request.url.path, exc_info=exc)
            return _retry_later("database", "the request met a conflicting one; retry")
        if cause is None or not database_unreachable(cause):
            log.error("%s error on %s", source, request.url.path, exc_info=exc)
            return JSONResponse({"detail": "Internal Server Error"}, status_code=500)
        log.warning("%s unavailable on %s: %s", source, request.url.path, cause)
        return _retry_later("database", "the database is unavailable; retry later")

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        """The caller hung up before its body had all arrived (a phone losing its
        network mid-upload): nothing of it was stored, and no one is left to hear
        the answer. Not a server error: logged as what it is, without a traceback."""
        log.info("client disconnected mid-request on %s", request.url.path)
        return _answer(BadRequest("body", "the connection closed before the body was whole"))

    @app.exception_handler(psycopg.DataError)
    async def data_error(request: Request, exc: psycopg.DataError) -> Response:
        """A value the database cannot take (a NUL character in a text, a number out
        of its column's range) reached a statement: the caller's input, answered 422
        like any invalid value (the statement and value go to the log only)."""
        log.warning("value refused by the database on %s: %s", request.url.path, exc.sqlstate)
        error = Invalid(
            "request", "a value cannot be taken (a NUL character, or a number out of range)"
        )
        return _answer_for(request, error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """FastAPI's own refusals: a body it cannot parse (400) is answered as every
        other error, naming the body; any other (an unknown path, a method the path
        does not take) as FastAPI answers it."""
        if exc.status_code == 400:
            return _answer(BadRequest("body", str(exc.detail)))
        return await http_exception_handler(request, exc)

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        """The photo store is full or out of reach: 503 with Retry-After; nothing of
        the request was stored (its transaction rolled back, no file left)."""
        log.error("photo store unavailable on %s: %s", request.url.path, exc)
        return _retry_later("photo", "photos cannot be stored now; retry later")

    app.include_router(submissions_router)
    app.include_router(elections_router)
    app.include_router(reports_router)
    app.include_router(accounts_router)
    app.include_router(voters_router)
    app.include_router(review_router)
    app.include_router(analysts_router)
    app.include_router(public_router)
    app.include_router(protocols_router)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", tags=["ops"], dependencies=[PUBLIC])
    def health(conn: Conn) -> dict[str, str]:
        conn.execute("SELECT 1")
        return {"status": "ok"}

    describe_callers(app)
    _describe_errors(app)
    return app


def _page_path(path: str) -> bool:
    """Whether the routes of ``path`` (an OpenAPI path template) answer with pages,
    errors included (``api.web.is_page_request``)."""
    return is_page_request(
        Request({"type": "http", "path": path, "query_string": b"", "headers": []})
    )


def _describe_errors(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI schema document every operation's error answers
    (``api.errors.describe_errors``), on top of what it says already."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        if not schema.get("components", {}).get("schemas", {}).get("Error"):
            describe_errors(schema, _page_path)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
