"""Background jobs of the submissions pipeline (procrastinate tasks)."""

from __future__ import annotations

import contextlib
import logging
import uuid

from procrastinate import App, JobContext, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued

from api.submissions.pipeline import give_up, process_submission
from api.submissions.service import pending_ids
from infra import db, queue
from infra.settings import get_settings
from infra.storage import get_store

log = logging.getLogger(__name__)

PROCESS_TASK = "golos.process_submission"
PHOTOS_QUEUE = "photos"
MAX_ATTEMPTS = 5


def process_submission_job(context: JobContext, submission_id: str) -> None:
    settings = get_settings()
    sid = uuid.UUID(submission_id)
    attempt = context.job.attempts + 1 if context.job else 1
    try:
        with db.connection() as conn:
            process_submission(conn, get_store(), sid, settings.data_dir.resolve() / "templates")
    except Exception:
        if attempt < MAX_ATTEMPTS:
            raise  # procrastinate retries it
        # Out of attempts: a person looks at it, rather than it waiting for ever.
        log.exception("submission %s could not be processed; sent to review", sid)
        with db.connection() as conn:
            give_up(conn, sid, "processing_failed")


async def sweep_job(context: JobContext, timestamp: int) -> None:
    """Every minute: hand out again the jobs of dead workers, and queue any
    submission that has no job (e.g. the queue was unreachable when it arrived)."""
    await queue.retry_stalled_jobs(context.app)
    with db.connection() as conn:
        orphans = pending_ids(conn)
    for sid in orphans:
        await enqueue(context.app, sid)


def register(app: App) -> None:
    """Register this module's tasks on a queue app (one app per process and use)."""
    app.task(
        name=PROCESS_TASK,
        queue=PHOTOS_QUEUE,
        pass_context=True,
        retry=RetryStrategy(max_attempts=MAX_ATTEMPTS - 1, wait=5),
    )(process_submission_job)
    app.periodic(cron="* * * * *")(
        app.task(name="golos.sweep", queueing_lock="golos.sweep", pass_context=True)(sweep_job)
    )


def job_lock(submission_id: uuid.UUID) -> str:
    return f"submission:{submission_id}"


async def enqueue(app: App, submission_id: uuid.UUID) -> None:
    with contextlib.suppress(AlreadyEnqueued):  # a job for it is already waiting
        await app.configure_task(PROCESS_TASK, queueing_lock=job_lock(submission_id)).defer_async(
            submission_id=str(submission_id)
        )
