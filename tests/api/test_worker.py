"""Worker processes: started, waited for and stopped in one place."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psycopg

from api.worker import failed, spawn_workers


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
