"""Background job: generate a report."""

from __future__ import annotations

import uuid

from procrastinate import App, RetryStrategy

from api.reports import service
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
