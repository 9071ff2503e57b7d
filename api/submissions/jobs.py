"""Background jobs of the submissions pipeline (procrastinate tasks)."""

from __future__ import annotations

import contextlib
import uuid

from procrastinate import App, JobContext, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued

from api.submissions.pipeline import process_submission
from infra import db, queue
from infra.settings import get_settings
from infra.storage import get_store

PROCESS_TASK = "golos.process_submission"
PHOTOS_QUEUE = "photos"


def process_submission_job(submission_id: str) -> None:
    settings = get_settings()
    with db.connection() as conn:
        process_submission(
            conn, get_store(), uuid.UUID(submission_id), settings.data_dir.resolve() / "templates"
        )


async def retry_stalled_jobs_job(context: JobContext, timestamp: int) -> None:
    await queue.retry_stalled_jobs(context.app)


def register(app: App) -> None:
    """Register this module's tasks on a queue app (one app per process and use)."""
    app.task(name=PROCESS_TASK, queue=PHOTOS_QUEUE, retry=RetryStrategy(max_attempts=5, wait=5))(
        process_submission_job
    )
    app.periodic(cron="* * * * *")(
        app.task(
            name="golos.retry_stalled_jobs", queueing_lock="retry_stalled_jobs", pass_context=True
        )(retry_stalled_jobs_job)
    )


def job_lock(submission_id: uuid.UUID) -> str:
    return f"submission:{submission_id}"


async def enqueue(app: App, submission_id: uuid.UUID) -> None:
    with contextlib.suppress(AlreadyEnqueued):  # a job for it is already waiting
        await app.configure_task(PROCESS_TASK, queueing_lock=job_lock(submission_id)).defer_async(
            submission_id=str(submission_id)
        )
