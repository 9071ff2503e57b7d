"""Background jobs of the submissions pipeline (procrastinate tasks).

One job per received submission, under the queueing lock ``submission:<id>``: at
most one job per submission waits in the queue. The pipeline is idempotent, so a
second job for a submission (a retry, the sweep racing an upload) is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from procrastinate import App, JobContext
from procrastinate.exceptions import AlreadyEnqueued

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
    try:
        await app.configure_task(
            PROCESS_TASK, queueing_lock=job_lock(submission_id), priority=BALLOT_PRIORITY
        ).defer_async(submission_id=str(submission_id))
    except AlreadyEnqueued:
        return False
    return True


def _received_page(after_seq: int, limit: int) -> list[ReceivedRef]:
    with db.connection() as conn:
        return repository.received_page(conn, after_seq, limit)


async def enqueue_pending(app: App, *, page_size: int = ENQUEUE_PAGE) -> int:
    """Queue every received submission that no job is waiting for or running (its
    job was never queued, or failed for good); returns how many were queued. Run
    by the sweep every minute and when a worker starts.

    Cost with many received submissions: the queue is never listed whole. The
    submissions waiting to be read are walked oldest first, a page at a time (a
    seek on the partial index of migration 0005), and each page is checked against
    the queue in one query (``queue.waiting_locks``, one index probe per
    submission); the running jobs, one per worker slot, are listed once. The whole
    backlog is walked every time, because orphans can be anywhere in it (after a
    queue outage they are the newest), in memory one page at a time.

    Races are harmless: a submission whose job starts after the running jobs were
    listed and before its page is checked gets a second job, which finds it decided
    (the pipeline is idempotent); a job queued meanwhile by the upload makes the
    defer a no-op (queueing lock).
    """
    running = await queue.running_locks(app, PHOTOS_QUEUE)
    queued = 0
    after = 0
    while True:
        # The database call leaves the event loop free (the worker's other jobs run).
        page = await asyncio.to_thread(_received_page, after, page_size)
        locks = {ref.submission_id: job_lock(ref.submission_id) for ref in page}
        waiting = await queue.waiting_locks(app, list(locks.values()))
        for sid, lock in locks.items():
            if lock not in running and lock not in waiting and await enqueue(app, sid):
                queued += 1
        if len(page) < page_size:
            if queued:
                log.info("queued %d received submissions that had no job", queued)
            return queued
        after = page[-1].seq
