"""``golos worker --ballots-only``: the workers added to scale out read photos and
never write a report, which waits for the one worker that writes them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.reports.jobs import EXPIRE_TASK, GENERATE_TASK, REPORTS_QUEUE
from api.submissions.schemas import Status

GOLOS = Path(sys.executable).parent / "golos"


def _worker(*options: str) -> subprocess.CompletedProcess[str]:
    """``golos worker --until-empty`` with ``options``, as an operator runs it."""
    return subprocess.run(
        [str(GOLOS), "worker", "--until-empty", *options],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _report_jobs(conn: psycopg.Connection) -> list[tuple[int, str, str, int]]:
    """The reports queue's jobs: (id, task, status, attempts)."""
    conn.commit()  # a fresh look
    return conn.execute(
        "SELECT id, task_name, status::text, attempts FROM procrastinate_jobs"
        " WHERE queue_name = %s ORDER BY id",
        (REPORTS_QUEUE,),
    ).fetchall()


@pytest.mark.parametrize("processes", [1, 2])
def test_a_ballots_only_worker_reads_the_ballot_and_leaves_the_report_job_waiting(
    processes: int,
    conn: psycopg.Connection,
    client: TestClient,
    submit: Callable,
    ballot_photo: Callable,
    account: Callable,
) -> None:
    analyst = account("analyst")
    sent = submit(ballot_photo(["tsikhanouskaya"], seed=70), choice="tsikhanouskaya")
    assert sent.status_code == 202, sent.text
    asked = client.post("/v1/elections/by-2020-president/reports", headers=analyst)
    assert asked.status_code == 202, asked.text
    status_url = asked.json()["status_url"]
    waiting = _report_jobs(conn)
    assert [job[1:] for job in waiting] == [(GENERATE_TASK, "todo", 0)]

    read = _worker("--ballots-only", "--processes", str(processes))
    assert read.returncode == 0, read.stderr
    assert "1/1" in read.stderr  # the photo waiting was read
    statuses: dict[str, str] = dict(
        conn.execute("SELECT id::text, status FROM submissions").fetchall()
    )
    assert statuses == {sent.json()["submission_id"]: Status.VERIFIED}
    # The report's job untouched: the same job, never started. (Any worker queues
    # the periodic expiry of old reports when it falls due; none here runs it.)
    after = _report_jobs(conn)
    assert [job for job in after if job[1] == GENERATE_TASK] == waiting
    assert {job[1:] for job in after if job[1] != GENERATE_TASK} <= {(EXPIRE_TASK, "todo", 0)}
    assert client.get(status_url, headers=analyst).json()["status"] == "queued"

    # The designated report writer (no --ballots-only) takes it.
    written = _worker()
    assert written.returncode == 0, written.stderr
    assert client.get(status_url, headers=analyst).json()["status"] == "ready"
