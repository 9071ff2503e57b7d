"""Background jobs: generate a report; every ten minutes, delete expired ones.

Report jobs keep the default priority (0), below the ballots'
(api.submissions.jobs.BALLOT_PRIORITY): a worker takes every waiting ballot first.
"""

from __future__ import annotations

import uuid

import anyio.from_thread
import psycopg
from procrastinate import App, JobContext, RetryStrategy

from api.elections.service import get_election
from api.reports import service
from api.reports.schemas import Report
from infra import db
from infra.settings import get_settings

GENERATE_TASK = "golos.generate_report"
EXPIRE_TASK = "golos.expire_reports"
REPORTS_QUEUE = "reports"
# A report is tried twice (a passing fault, e.g. a database restart), then marked
# failed for an analyst to retry.
ATTEMPTS = 2


def generate_report_job(context: JobContext, report_id: str) -> None:
    # A job runs outside any request: its settings and connection are its own.
    attempt = context.job.attempts + 1 if context.job else ATTEMPTS
    with db.connection() as conn:
        service.generate(
            conn,
            uuid.UUID(report_id),
            service.reports_root(get_settings()),
            final=attempt >= ATTEMPTS,
        )


def expire_reports_job(timestamp: int) -> None:
    with db.connection() as conn:
        service.expire(conn, service.reports_root(get_settings()), service.REPORT_MAX_AGE)


def register(app: App) -> None:
    app.task(
        name=GENERATE_TASK,
        queue=REPORTS_QUEUE,
        pass_context=True,
        retry=RetryStrategy(max_attempts=ATTEMPTS - 1, wait=10),
    )(generate_report_job)
    app.periodic(cron="*/10 * * * *")(
        app.task(name=EXPIRE_TASK, queue=REPORTS_QUEUE, queueing_lock=EXPIRE_TASK)(
            expire_reports_job
        )
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


def retry(conn: psycopg.Connection, app: App, report_id: uuid.UUID) -> Report | None:
    """Queue a failed report again (None when it is not failed); for a plain route,
    like ``start``."""
    report = service.retry(conn, report_id)
    if report is None:
        return None
    conn.commit()
    anyio.from_thread.run(enqueue, app, report.id)
    return report
