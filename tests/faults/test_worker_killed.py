"""A worker process killed (SIGKILL) in the middle of reading a photo: its
supervisor starts another, the photo's job is handed on, and every acknowledged
photo is read and counted once. And the handing on itself: a stalled job found by
two workers at once is handed on once, never closed by the second."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg

from api.worker import failed, queue_app, spawn_workers
from infra import queue
from infra.settings import get_settings
from tests.faults.conftest import Phone, Server, settled, wait_for

PHOTOS = 16


def _running_photo_jobs(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT id FROM procrastinate_jobs WHERE status = 'doing'"
            " AND task_name = 'golos.process_submission'"
        ).fetchall()
    return [row[0] for row in rows]


def _job_status(dsn: str, job_id: int) -> str | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT status FROM procrastinate_jobs WHERE id = %s", (job_id,)
        ).fetchone()
    return None if row is None else str(row[0])


def test_a_worker_killed_mid_job_is_replaced_and_its_photo_is_read_once(
    database: str,
    loaded: str,
    serve: Callable[[], Server],
    phones: Callable[[str], Phone],
    tmp_path: Path,
) -> None:
    server = serve()
    phone = phones(database)
    uploads = [phone.new_upload() for _ in range(PHOTOS)]
    # Acknowledged while no worker runs: their jobs wait in the queue.
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for upload in uploads:
            assert phone.deliver(client, upload) == 202

    with open(tmp_path / "workers.log", "wb") as log:
        # One process: the job seen running is its own.
        workers = spawn_workers(1, until_empty=False, log=log)
    try:
        # Kill the worker while a photo's job is running (a job may end between the
        # look and the kill: then try with the next one).
        killed_job = None
        for _ in range(10):
            wait_for(lambda: bool(_running_photo_jobs(database)), 30, "a running photo job")
            victim = workers.processes[0]
            running = _running_photo_jobs(database)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            stuck = [job for job in running if _job_status(database, job) == "doing"]
            if stuck:
                killed_job = stuck[0]
                break
            replaced = workers.replaced
            wait_for(lambda: workers.replaced > replaced, 20, "a replacement")  # noqa: B023
        assert killed_job is not None, "no job was caught running"
        killed_at = time.monotonic()

        # The supervisor replaces the dead process, and the job it held is handed on.
        wait_for(lambda: workers.replaced >= 1 and workers.running(), 20, "a replacement")
        handed_on = wait_for(
            lambda: _job_status(database, killed_job) != "doing", 45, "the stalled job retried"
        )
        statuses = settled(database, uploads, get_settings().photos_path)
        print(f"killed job handed on {handed_on:.1f} s after the kill, "
              f"all read {time.monotonic() - killed_at:.1f} s after it")  # fmt: skip
    finally:
        workers.stop(grace=20)
    assert list(statuses.values()).count("verified") >= PHOTOS - 2, statuses
    assert not failed([p.returncode for p in workers.processes])
    assert "replaced" in (tmp_path / "workers.log").read_text() or workers.replaced >= 1


def _stalled_job(conn: psycopg.Connection, lock: str) -> int:
    """A photo job left running by a worker that stopped sending heartbeats."""
    worker = conn.execute(
        "INSERT INTO procrastinate_workers (last_heartbeat)"
        " VALUES (now() - interval '1 hour') RETURNING id"
    ).fetchone()
    assert worker is not None
    job = conn.execute(
        "INSERT INTO procrastinate_jobs (queue_name, task_name, queueing_lock, args, status,"
        " worker_id) VALUES ('photos', 'golos.process_submission', %s, '{}', 'doing', %s)"
        " RETURNING id",
        (lock, worker[0]),
    ).fetchone()
    assert job is not None
    conn.commit()
    return int(job[0])


def test_a_stalled_job_found_by_two_workers_is_handed_on_once(
    conn: psycopg.Connection, database: str
) -> None:
    job = _stalled_job(conn, "submission:stalled")
    app = queue_app(get_settings())

    async def both() -> tuple[int, int]:
        async with app.open_async():
            # Both workers looked before either handed the job on.
            seen = list(await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=15))
            first = await queue.retry_stalled_jobs(app)

            async def stale(**_: object) -> list[object]:
                return list(seen)

            app.job_manager.get_stalled_jobs = stale  # type: ignore[method-assign,assignment]
            second = await queue.retry_stalled_jobs(app)
            return first, second

    assert asyncio.run(both()) == (1, 0)
    # Waiting to run again, not closed by the second worker.
    assert _job_status(database, job) == "todo"


def test_a_stalled_job_whose_work_is_queued_anew_is_closed(
    conn: psycopg.Connection, database: str
) -> None:
    stalled = _stalled_job(conn, "submission:again")
    newer = conn.execute(
        "INSERT INTO procrastinate_jobs (queue_name, task_name, queueing_lock, args, status)"
        " VALUES ('photos', 'golos.process_submission', 'submission:again', '{}', 'todo')"
        " RETURNING id"
    ).fetchone()
    assert newer is not None
    conn.commit()
    app = queue_app(get_settings())

    async def look() -> int:
        async with app.open_async():
            return await queue.retry_stalled_jobs(app)

    assert asyncio.run(look()) == 0
    assert _job_status(database, stalled) == "failed"
    assert _job_status(database, int(newer[0])) == "todo"
