"""The HTTP application: its routers, one error handler, and the job queue it feeds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.deps import Conn
from api.elections.routes import router as elections_router
from api.errors import GolosError, ServiceUnavailable
from api.reports.routes import router as reports_router
from api.submissions.routes import router as submissions_router
from api.worker import queue_app
from infra import db
from infra.settings import get_settings


def _answer(error: GolosError) -> JSONResponse:
    return JSONResponse({"detail": error.body()}, status_code=error.status_code)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The queue the routes defer jobs to (JobQueue), opened for the server's life.
    job_queue = queue_app(get_settings())
    async with job_queue.open_async():
        app.state.queue = job_queue
        yield
    db.close_pool()


def create_app() -> FastAPI:
    app = FastAPI(title="Golos", version="0.1.0", lifespan=lifespan)

    @app.exception_handler(GolosError)
    async def golos_error(request: Request, exc: GolosError) -> JSONResponse:
        """Every domain error, answered with its status and the field at fault (the
        one place an error becomes an answer)."""
        return _answer(exc)

    @app.exception_handler(psycopg.OperationalError)
    async def database_unavailable(request: Request, exc: psycopg.OperationalError) -> JSONResponse:
        """The database cannot be reached (or broke off the request): 503, so that
        clients and load balancers retry later rather than take it for a bug."""
        return _answer(ServiceUnavailable("database", "the database is unavailable; retry later"))

    app.include_router(submissions_router)
    app.include_router(elections_router)
    app.include_router(reports_router)

    @app.get("/healthz", tags=["ops"])
    def health(conn: Conn) -> dict[str, str]:
        conn.execute("SELECT 1")
        return {"status": "ok"}

    return app
