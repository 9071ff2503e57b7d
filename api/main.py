"""The HTTP application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.elections.routes import router as elections_router
from api.reports import jobs as report_jobs
from api.reports.routes import router as reports_router
from api.submissions import jobs
from api.submissions.routes import router as submissions_router
from infra import db, queue
from infra.settings import get_settings


def queue_app() -> queue.App:
    return queue.make_app(get_settings().dsn, jobs.register, report_jobs.register)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    job_queue = queue_app()
    async with job_queue.open_async():
        app.state.queue = job_queue
        yield
    db.close_pool()


def create_app() -> FastAPI:
    app = FastAPI(title="Golos", version="0.1.0", lifespan=lifespan)
    app.include_router(submissions_router)
    app.include_router(elections_router)
    app.include_router(reports_router)

    @app.get("/healthz", tags=["ops"])
    def health() -> dict[str, str]:
        with db.connection() as conn:
            conn.execute("SELECT 1")
        return {"status": "ok"}

    return app
