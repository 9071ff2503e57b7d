"""``infra.queue.defer_in_transaction``: a job queued in the caller's transaction is
the row procrastinate's own defer makes, exists only once that transaction commits,
is refused a second time under one queueing lock, and is taken by a worker."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
from procrastinate.manager import JobManager
from procrastinate.sync_psycopg_connector import SyncPsycopgConnector

from api.submissions import jobs as submission_jobs
from api.worker import queue_app
from infra import queue
from infra.settings import get_settings

COLUMNS = "queue_name, task_name, priority, lock, queueing_lock, args, status, scheduled_at"


def job_row(conn: psycopg.Connection, job_id: int) -> tuple[object, ...]:
    row = conn.execute(f"SELECT {COLUMNS} FROM procrastinate_jobs WHERE id = %s", (job_id,))
    found = row.fetchone()
    assert found is not None
    return tuple(found)


def test_a_job_queued_in_a_transaction_is_the_row_procrastinate_would_make(
    conn: psycopg.Connection,
) -> None:
    app = queue_app(get_settings())
    ours_sid, theirs_sid = uuid.uuid4(), uuid.uuid4()
    with conn.transaction():
        ours = queue.defer_in_transaction(
            conn,
            app,
            submission_jobs.PROCESS_TASK,
            lock=submission_jobs.job_lock(ours_sid),
            priority=submission_jobs.BALLOT_PRIORITY,
            submission_id=str(ours_sid),
        )
    with conn.transaction():
        deferrer = app.configure_task(
            submission_jobs.PROCESS_TASK,
            queueing_lock=submission_jobs.job_lock(theirs_sid),
            priority=submission_jobs.BALLOT_PRIORITY,
        )
        job = JobManager(SyncPsycopgConnector()).defer_job(
            deferrer.make_new_job(submission_id=str(theirs_sid)), connection=conn
        )
    assert job.id is not None
    mine, procrastinates = job_row(conn, ours), job_row(conn, job.id)
    conn.commit()
    assert mine[0] == queue.PHOTOS_QUEUE and mine[6] == "todo"
    assert mine[3:5] == (None, submission_jobs.job_lock(ours_sid))
    assert mine[5] == {"submission_id": str(ours_sid)}
    # Everything but the lock and the arguments, which name their own submission.
    assert mine[:3] + mine[6:] == procrastinates[:3] + procrastinates[6:]


def test_a_job_queued_in_a_transaction_rolled_back_never_exists(
    conn: psycopg.Connection,
) -> None:
    app = queue_app(get_settings())
    sid = uuid.uuid4()
    with pytest.raises(RuntimeError), conn.transaction():
        queue.defer_in_transaction(
            conn, app, submission_jobs.PROCESS_TASK, lock=str(sid), priority=1, submission_id="x"
        )
        raise RuntimeError("the caller's work failed")
    count = conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone()
    assert count == (0,)


def test_a_second_job_under_a_waiting_jobs_lock_is_refused(conn: psycopg.Connection) -> None:
    app = queue_app(get_settings())
    with conn.transaction():
        queue.defer_in_transaction(
            conn, app, submission_jobs.PROCESS_TASK, lock="one", priority=1, submission_id="a"
        )
    with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
        queue.defer_in_transaction(
            conn, app, submission_jobs.PROCESS_TASK, lock="one", priority=1, submission_id="b"
        )


def test_a_job_queued_in_a_transaction_is_taken_by_a_worker(conn: psycopg.Connection) -> None:
    app = queue_app(get_settings())
    sid = uuid.uuid4()
    with conn.transaction():
        queue.defer_in_transaction(
            conn,
            app,
            submission_jobs.PROCESS_TASK,
            lock=submission_jobs.job_lock(sid),
            priority=submission_jobs.BALLOT_PRIORITY,
            submission_id=str(sid),
        )
    conn.commit()

    async def taken() -> tuple[str, dict[str, object]]:
        async with app.open_async():
            worker_id = await app.job_manager.register_worker()
            job = await app.job_manager.fetch_job(queues=None, worker_id=worker_id)
            assert job is not None
            return job.task_name, job.task_kwargs

    assert asyncio.run(taken()) == (submission_jobs.PROCESS_TASK, {"submission_id": str(sid)})


def test_queueing_a_job_notifies_no_one(conn: psycopg.Connection) -> None:
    # A NOTIFY would make every upload's commit wait in one database-wide line
    # (migration 0019). Listening on every channel procrastinate announces jobs on.
    app = queue_app(get_settings())
    with psycopg.connect(get_settings().dsn, autocommit=True) as listener:
        listener.execute('LISTEN "procrastinate_any_queue_v1"')
        listener.execute(f'LISTEN "procrastinate_queue_v1#{queue.PHOTOS_QUEUE}"')
        with conn.transaction():
            queue.defer_in_transaction(
                conn, app, submission_jobs.PROCESS_TASK, lock="n", priority=1, submission_id="a"
            )
        conn.commit()
        # The control: a NOTIFY on that channel does arrive.
        conn.execute("SELECT pg_notify('procrastinate_any_queue_v1', 'control')")
        conn.commit()
        heard = [n.payload for n in listener.notifies(timeout=2.0, stop_after=2)]
    assert heard == ["control"]
