"""Worker processes: started, waited for and stopped in one place."""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from api.reports import jobs as report_jobs
from api.reports.jobs import EXPIRE_TASK
from api.submissions import jobs as submission_jobs
from api.worker import backoff_seconds, failed, queue_app, run_worker, spawn_workers
from infra.migrate import migrate
from infra.pg import EmbeddedPostgres
from infra.settings import get_settings


def test_a_stop_is_not_a_failure_but_a_crash_is() -> None:
    assert not failed([0, 0])
    assert not failed([-signal.SIGTERM, -signal.SIGINT, 0])
    assert failed([0, 1])
    assert failed([-signal.SIGKILL])


def test_workers_with_nothing_to_do_exit_when_the_queue_is_empty(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    with open(tmp_path / "worker.log", "wb") as log:
        workers = spawn_workers(2, until_empty=True, log=log)
        codes = workers.wait()
    assert codes == [0, 0], (tmp_path / "worker.log").read_text()
    assert not workers.running()


def test_waiting_workers_stop_when_asked(conn: psycopg.Connection, tmp_path: Path) -> None:
    with open(tmp_path / "worker.log", "wb") as log:
        workers = spawn_workers(2, until_empty=False, log=log)
    time.sleep(3)  # up and waiting for jobs
    assert workers.running()
    workers.stop(grace=30)
    assert not workers.running()
    codes = [process.returncode for process in workers.processes]
    assert not failed(codes), (tmp_path / "worker.log").read_text()


def test_reconnecting_waits_longer_after_each_failure_up_to_15_seconds() -> None:
    assert [backoff_seconds(n) for n in range(1, 8)] == [1, 2, 4, 8, 15, 15, 15]


def test_a_killed_worker_process_is_replaced(
    conn: psycopg.Connection, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with open(tmp_path / "worker.log", "wb") as log:
        workers = spawn_workers(2, until_empty=False, log=log)
    try:
        time.sleep(2)
        first = workers.processes[0]
        first.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 20
        while workers.replaced == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert workers.replaced == 1
        assert workers.processes[0] is not first and workers.running()
    finally:
        workers.stop(grace=30)
    assert not failed([process.returncode for process in workers.processes])
    assert "worker process 0 replaced" in caplog.text  # the supervisor's log


@pytest.fixture
def own_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL cluster for this test alone (restarting the session's would fail
    every other test), which worker processes started by the test use."""
    folder = Path(tempfile.mkdtemp(prefix="golos-restart-"))
    folder.chmod(0o711)
    pg = EmbeddedPostgres(folder / "pg", fast_unsafe=True)
    pg.start()
    migrate(pg.dsn())
    monkeypatch.setenv("GOLOS_DATABASE_URL", pg.dsn())
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _workers_registered(dsn: str) -> set[int]:
    with psycopg.connect(dsn) as c:
        return {row[0] for row in c.execute("SELECT id FROM procrastinate_workers")}


def _wait_for(condition: Callable[[], bool], seconds: float) -> float:
    """Seconds until ``condition`` held; fails the test after ``seconds``."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, "timed out"
        time.sleep(0.2)
    return time.monotonic() - start


def test_a_waiting_worker_resumes_by_itself_after_a_database_restart(
    own_cluster: EmbeddedPostgres, tmp_path: Path
) -> None:
    dsn = own_cluster.dsn()
    with open(tmp_path / "worker.log", "wb") as log:
        workers = spawn_workers(1, until_empty=False, log=log)
    try:
        _wait_for(lambda: bool(_workers_registered(dsn)), 30)
        before = _workers_registered(dsn)
        # A job queued before the restart, due after it (like an acknowledged photo
        # whose job waits). Under a queueing lock of its own: the worker's periodic
        # deferrer queues this task under the task's own lock at each minute, and a
        # test started just after one would collide with it.
        app = queue_app(get_settings().model_copy(update={"database_url": dsn}))

        async def defer() -> int:
            async with app.open_async():
                return await app.configure_task(
                    EXPIRE_TASK,
                    schedule_in={"seconds": 5},
                    queueing_lock=f"test-restart-{uuid.uuid4()}",
                ).defer_async(timestamp=0)

        job_id = asyncio.run(defer())
        own_cluster.stop()
        time.sleep(2)  # down for a while: the worker notices
        own_cluster.start()
        # Back at work: registered anew (the same process), and the job is done.
        resumed = _wait_for(lambda: bool(_workers_registered(dsn) - before), 30)

        def job_done() -> bool:
            with psycopg.connect(dsn) as c:
                sql = "SELECT 1 FROM procrastinate_jobs WHERE id = %s"
                return c.execute(sql, (job_id,)).fetchone() is None

        _wait_for(job_done, 30)
        print(f"worker resumed {resumed:.1f} s after the database came back")
        assert workers.running() and workers.replaced == 0  # the same process
    finally:
        workers.stop(grace=30)
    log_text = (tmp_path / "worker.log").read_text()
    assert "reconnecting" in log_text
    assert not failed([process.returncode for process in workers.processes]), log_text


def test_a_worker_takes_a_ballot_queued_after_a_report_first(conn: psycopg.Connection) -> None:
    app = queue_app(get_settings())

    async def first_job_taken() -> str:
        async with app.open_async():
            await report_jobs.enqueue(app, uuid.uuid4())
            await submission_jobs.enqueue(app, uuid.uuid4())
            worker_id = await app.job_manager.register_worker()
            job = await app.job_manager.fetch_job(queues=None, worker_id=worker_id)
            assert job is not None
            return job.task_name

    assert asyncio.run(first_job_taken()) == submission_jobs.PROCESS_TASK


def test_workers_after_the_first_take_ballots_only(conn: psycopg.Connection) -> None:
    app = queue_app(get_settings())

    async def queue_a_report() -> None:
        async with app.open_async():
            await report_jobs.enqueue(app, uuid.uuid4())  # of no report: a no-op job

    def waiting() -> int:
        return len(
            conn.execute(
                "SELECT id FROM procrastinate_jobs WHERE task_name = %s",
                (report_jobs.GENERATE_TASK,),
            ).fetchall()
        )

    asyncio.run(queue_a_report())
    asyncio.run(run_worker(wait=False, ballots_only=True))
    assert waiting() == 1  # left for a worker that writes reports
    asyncio.run(run_worker(wait=False))
    assert waiting() == 0

    workers = spawn_workers(3, until_empty=True)
    assert workers.wait() == [0, 0, 0]
    assert ["--ballots-only" in p.args for p in workers.processes] == [False, True, True]
