"""Background job: generate a report."""

from __future__ import annotations

import uuid

import anyio.from_thread
import psycopg
from procrastinate import App, RetryStrategy

from api.elections.service import get_election
from api.reports import service
from api.reports.schemas import Report
from infra import db
from infra.settings import get_settings

GENERATE_TASK = "golos.generate_report"
REPORTS_QUEUE = "reports"


def generate_report_job(report_id: str) -> None:
    # A job runs outside any request: its settings and connection are its own.
    with db.connection() as conn:
        service.generate(conn, uuid.UUID(report_id), service.reports_root(get_settings()))


def register(app: App) -> None:
    app.task(name=GENERATE_TASK, queue=REPORTS_QUEUE, retry=RetryStrategy(max_attempts=2, wait=10))(
        generate_report_job
    )


async def enqueue(app: App, report_id: uuid.UUID) -> None:
    await app.configure_task(GENERATE_TASK).defer_async(report_id=str(report_id))


def start(conn: psycopg.Connection, app: App, election_id: str) -> Report:
    """Ask for the election's report (``ElectionNotFound`` for an unknown one) and
    queue its job; for a plain (threaded) route.

    The report's row is committed before the job is queued, so a worker that picks
    the job at once finds the row. The job is queued on the event loop, which owns
    the queue's async connections (``anyio.from_thread.run`` waits for it there,
    holding this thread only), so the database calls never block the event loop.
    """
    get_election(conn, election_id)
    report = service.create(conn, election_id)
    conn.commit()
    anyio.from_thread.run(enqueue, app, report.id)
    return report
