"""Background jobs of the submissions pipeline (procrastinate tasks).

One job per received submission, under the queueing lock ``submission:<id>``: at
most one job per submission waits in the queue. The pipeline is idempotent, so a
second job for a submission (a retry, the sweep racing an upload) is harmless.
"""

from __future__ import annotations

import logging
import uuid

from procrastinate import App, JobContext

from api.submissions import repository
from api.submissions.pipeline import give_up, process_submission
from api.submissions.repository import ReceivedRef
from api.submissions.schemas import Reason
from infra import db, queue
from infra.settings import get_settings
from infra.storage import photo_store

log = logging.getLogger(__name__)

PROCESS_TASK = "golos.process_submission"
PHOTOS_QUEUE = queue.PHOTOS_QUEUE
MAX_ATTEMPTS = queue.MAX_ATTEMPTS
# Ballots before reports: a worker takes the waiting job of highest priority
# first, and report jobs keep procrastinate's default, 0. Any positive number
# would do; 10 leaves room for something between them.
BALLOT_PRIORITY = 10
# Received submissions looked at per page by enqueue_pending: two queries a page
# (the page, then one index probe of the queue per submission). Measured: 500
# probes with 200,000 jobs waiting take 0.2-0.3 s.
ENQUEUE_PAGE = 500


def process_submission_job(context: JobContext, submission_id: str) -> None:
    # A job runs outside any request: its settings, store and connection are its own.
    settings = get_settings()
    sid = uuid.UUID(submission_id)
    attempt = context.job.attempts + 1 if context.job else 1
    try:
        with db.connection() as conn:
            process_submission(
                conn, photo_store(settings), sid, settings.data_dir.resolve() / "templates"
            )
    except Exception:
        if attempt < MAX_ATTEMPTS:
            raise  # procrastinate retries it
        # Out of attempts: a person looks at it, rather than it waiting for ever.
        log.exception("submission %s could not be processed; sent to review", sid)
        with db.connection() as conn:
            give_up(conn, sid, Reason.PROCESSING_FAILED)


async def sweep_job(context: JobContext, timestamp: int) -> None:
    """Every minute: hand out again the jobs of dead workers, and queue any
    submission that has no job (e.g. the queue was unreachable when it arrived)."""
    await queue.retry_stalled_jobs(context.app)
    await enqueue_pending(context.app)


def register(app: App) -> None:
    """Register this module's tasks on a queue app (one app per process and use)."""
    # The sweep queues ballots: it is a ballots' job (their queue, their priority),
    # run by every worker, also those that take ballots only (api.worker).
    queue.register_photo_tasks(
        app,
        name=PROCESS_TASK,
        job=process_submission_job,
        sweep_name="golos.sweep",
        sweep=sweep_job,
        priority=BALLOT_PRIORITY,
    )


def job_lock(submission_id: uuid.UUID) -> str:
    return f"submission:{submission_id}"


async def enqueue(app: App, submission_id: uuid.UUID) -> bool:
    """Queue the submission's job; False when one is already waiting."""
    return await queue.defer_once(
        app,
        PROCESS_TASK,
        lock=job_lock(submission_id),
        priority=BALLOT_PRIORITY,
        submission_id=str(submission_id),
    )


def _received_page(after_seq: int, limit: int) -> list[ReceivedRef]:
    with db.connection() as conn:
        return repository.received_page(conn, after_seq, limit)


async def enqueue_pending(app: App, *, page_size: int = ENQUEUE_PAGE) -> int:
    """Queue every received submission that no job is waiting for or running (its
    job was never queued, or failed for good); returns how many were queued. Run
    by the sweep every minute and when a worker starts. The received submissions
    are walked oldest first, a page at a time (a seek on the partial index of
    migration 0005), as ``queue.enqueue_orphans`` describes (its cost and races)."""
    queued = await queue.enqueue_orphans(
        app, _received_page, job_lock, enqueue, page_size=page_size
    )
    if queued:
        log.info("queued %d received submissions that had no job", queued)
    return queued
