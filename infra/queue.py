"""The job queue: procrastinate, on the platform's own PostgreSQL (no extra server)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg
from procrastinate import App, PsycopgConnector, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued, ConnectorException, UniqueViolation
from procrastinate.jobs import Status

__all__ = [
    "MAX_ATTEMPTS",
    "PHOTOS_QUEUE",
    "App",
    "defer_in_transaction",
    "defer_once",
    "enqueue_orphans",
    "make_app",
    "ready_jobs",
    "register_photo_tasks",
    "retry_stalled_jobs",
    "running_locks",
    "waiting_locks",
]

log = logging.getLogger(__name__)

# How long a request waits for one of the queue's connections, as long as for the
# platform's own pool (infra.db.WAIT_SECONDS), then fails (503), rather than the
# pool's default 30 s.
WAIT_SECONDS = 5.0

# A worker that has sent no heartbeat for this long is taken for dead, and its
# running jobs are handed to another worker (api.worker looks every 5 s). Three
# heartbeats missed (one every 5 s; a photo is read in a thread, so the heartbeat
# goes on meanwhile): a killed worker's photo waits about 15-20 s. Taking a live
# but slow worker for dead only runs its job twice, which the pipeline allows.
STALLED_AFTER_SECONDS = 15.0

# How often a waiting worker looks for new jobs. Queueing a job notifies no one
# (migration 0019: a NOTIFY made every upload's commit wait in one database-wide
# line: bench/queue_notify.py), so a job queued while every worker waits is taken
# within this time; busy workers take the next job as soon as they finish one.
# Each look is one indexed query per waiting worker: ten idle workers, 20 a second.
FETCH_POLL_SECONDS = 0.5


# The queue of the photos' reading (ballots and protocols: a worker that reads one
# reads the other; api.worker's ballots-only workers listen to it alone), and how
# many times a photo's job runs before a person is asked instead.
PHOTOS_QUEUE = "photos"
MAX_ATTEMPTS = 5


def register_photo_tasks(
    app: App,
    *,
    name: str,
    job: Callable[..., Any],
    sweep_name: str,
    sweep: Callable[..., Any],
    priority: int,
) -> None:
    """Register a photo-reading task (retried up to MAX_ATTEMPTS, 5 s apart) and its
    sweep, every minute, one at a time (its queueing lock), on the photos' queue at
    ``priority``: the shape both readers' jobs share."""
    app.task(
        name=name,
        queue=PHOTOS_QUEUE,
        priority=priority,
        pass_context=True,
        retry=RetryStrategy(max_attempts=MAX_ATTEMPTS - 1, wait=5),
    )(job)
    app.periodic(cron="* * * * *")(
        app.task(
            name=sweep_name,
            queue=PHOTOS_QUEUE,
            queueing_lock=sweep_name,
            priority=priority,
            pass_context=True,
        )(sweep)
    )


def make_app(dsn: str, *registrations: Callable[[App], None]) -> App:
    app = App(
        connector=PsycopgConnector(conninfo=dsn, min_size=1, max_size=4, timeout=WAIT_SECONDS),
        worker_defaults={
            "update_heartbeat_interval": 5.0,
            "stalled_worker_timeout": STALLED_AFTER_SECONDS,
            # Finished jobs name submissions with precise times: keep none.
            "delete_jobs": "successful",
        },
    )
    for register in registrations:
        register(app)
    return app


async def retry_stalled_jobs(
    app: App, seconds_since_heartbeat: float = STALLED_AFTER_SECONDS
) -> int:
    """Put back in the queue the jobs of workers that died mid-job; how many.

    Every waiting worker runs this every few seconds, so two may find the same
    stalled job: the one that comes second finds it no longer running and leaves it
    alone (it must not close a job the first put back, or one a live worker now
    runs). A stalled job whose work is already queued anew (a newer job holds its
    queueing lock, queued by the sweep or an upload's retry) is closed: the newer
    one does the work."""
    stalled = list(
        await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds_since_heartbeat)
    )
    retried = 0
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except UniqueViolation:
            log.info("stalled job %s already queued anew; closing it", job.id)
            with contextlib.suppress(ConnectorException):
                await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
        except ConnectorException:
            # Not running any more: another worker put it back first.
            log.info("stalled job %s already handed on", job.id)
        else:
            retried += 1
            log.warning("retrying job %s of a worker that stopped responding", job.id)
    return retried


# This module is the one place that knows the queue's tables. procrastinate's
# job manager lists jobs one filter value at a time; checking a page of
# submissions needs one query for many locks, on the unique index procrastinate
# keeps on the queueing lock of waiting jobs (procrastinate_jobs_queueing_lock_idx).
_WAITING_LOCKS = """
    SELECT queueing_lock FROM procrastinate_jobs
    WHERE queueing_lock = ANY(%(locks)s) AND status = 'todo'
"""


async def waiting_locks(app: App, queueing_locks: list[str]) -> set[str]:
    """Which of these queueing locks have a job waiting in the queue (not yet
    started). One index probe per lock, in one query."""
    if not queueing_locks:
        return set()
    rows = await app.connector.execute_query_all_async(_WAITING_LOCKS, locks=queueing_locks)
    return {row["queueing_lock"] for row in rows}


async def running_locks(app: App, queue_name: str) -> set[str]:
    """The queueing locks of the queue's running jobs: at most one job per worker
    slot runs at a time, so this is a short list however long the queue is."""
    running = await app.job_manager.list_jobs_async(queue=queue_name, status=Status.DOING.value)
    return {job.queueing_lock for job in running if job.queueing_lock is not None}


_READY_JOBS = """
    SELECT count(*) AS ready FROM procrastinate_jobs
    WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())
      AND (%(queues)s::text[] IS NULL OR queue_name = ANY(%(queues)s))
"""


async def ready_jobs(app: App, queues: list[str] | None = None) -> int:
    """How many jobs of these queues (None: of every queue) a worker could start
    now: waiting, and not scheduled for later."""
    row = await app.connector.execute_query_one_async(_READY_JOBS, queues=queues)
    return int(row["ready"])


# procrastinate's own function for queueing jobs (its schema, versioned "_v1"), given
# one job built from scalars: the query procrastinate sends passes an array of its
# composite type, which psycopg adapts in Python field by field, ~0.5 ms of an
# upload's CPU (a fifth of the upload's own work, py-spy); this is one round trip
# and a few scalars. Same rows, same queueing lock (tests/infra/test_queue.py).
_DEFER_ONE = """
    SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(
        %s::varchar, %s::varchar, %s::integer, %s::text, %s::text, %s::jsonb, %s::timestamptz
    )::procrastinate_job_to_defer_v1]))
"""


def defer_in_transaction(
    conn: psycopg.Connection, app: App, task: str, *, lock: str, priority: int, **kwargs: Any
) -> int:
    """Queue ``task`` with ``kwargs`` in the caller's transaction, under the queueing
    lock ``lock``: the job exists exactly when the caller's writes do, and a worker
    sees it once they are committed. Its id. A job already waiting under ``lock``
    fails the statement (psycopg's UniqueViolation; the transaction is then lost):
    for work whose lock cannot be taken yet, a new id's."""
    job = app.configure_task(task, queueing_lock=lock, priority=priority).make_new_job(**kwargs)
    row = conn.execute(
        _DEFER_ONE,
        (
            job.queue,
            job.task_name,
            job.priority,
            job.lock,
            job.queueing_lock,
            json.dumps(job.task_kwargs),
            job.scheduled_at,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


async def defer_once(app: App, task: str, *, lock: str, priority: int, **kwargs: Any) -> bool:
    """Queue ``task`` with ``kwargs`` under the queueing ``lock`` at ``priority``;
    False when a job holding that lock is already waiting (one waits at a time)."""
    try:
        await app.configure_task(task, queueing_lock=lock, priority=priority).defer_async(**kwargs)
    except AlreadyEnqueued:
        return False
    return True


async def enqueue_orphans(
    app: App,
    page: Callable[[int, int], Sequence[tuple[int, uuid.UUID]]],
    lock_of: Callable[[uuid.UUID], str],
    enqueue: Callable[[App, uuid.UUID], Awaitable[bool]],
    *,
    page_size: int,
) -> int:
    """Queue every item waiting for a photo job that no job waits for or runs (its
    job was never queued, or failed for good); how many were queued.

    ``page(after, limit)``: the waiting items after sequence number ``after``,
    oldest first, as (seq, id), read from the database (it runs in a thread, so
    the event loop stays free for the worker's other jobs); ``lock_of``: an item's
    queueing lock; ``enqueue``: queue its job (False when one is already waiting).

    Cost with a long backlog: the queue is never listed whole. The items are walked
    a page at a time and each page is checked against the queue in one query
    (``waiting_locks``, one index probe each); the running jobs, one per worker
    slot, are listed once. The whole backlog is walked every time, because orphans
    can be anywhere in it (after a queue outage they are the newest).

    Races are harmless: an item whose job starts after the running jobs were listed
    and before its page is checked gets a second job, which finds it done (the
    jobs are idempotent); a job queued meanwhile by the upload makes the defer a
    no-op (queueing lock)."""
    running = await running_locks(app, PHOTOS_QUEUE)
    queued = 0
    after = 0
    while True:
        items = await asyncio.to_thread(page, after, page_size)
        locks = {item_id: lock_of(item_id) for _, item_id in items}
        waiting = await waiting_locks(app, list(locks.values()))
        for item_id, lock in locks.items():
            if lock not in running and lock not in waiting and await enqueue(app, item_id):
                queued += 1
        if len(items) < page_size:
            return queued
        after = items[-1][0]
