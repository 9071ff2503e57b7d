"""Report jobs are limited per account: new reports and retries alike."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
from fastapi.testclient import TestClient

from api.reports import jobs, repository
from infra.settings import get_settings

REPORTS = "/v1/elections/by-2020-president/reports"


def _queued(conn: psycopg.Connection) -> tuple[int, int]:
    """(report rows, report jobs queued)."""
    conn.commit()
    reports = conn.execute("SELECT count(*) FROM reports").fetchone()
    queued = conn.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s", (jobs.GENERATE_TASK,)
    ).fetchone()
    assert reports is not None and queued is not None
    return reports[0], queued[0]


def _fail(conn: psycopg.Connection, report_id: str) -> None:
    repository.mark_failed(conn, uuid.UUID(report_id), "broken")
    conn.commit()


def test_an_account_past_its_limit_is_told_to_wait_and_nothing_is_queued(
    conn: psycopg.Connection, client: TestClient, account: Callable, limits: Callable
) -> None:
    limits(reports_per_account=2)
    analyst = account("analyst")
    # What queues nothing counts nothing: an unknown election, a report not failed.
    assert client.post("/v1/elections/nowhere/reports", headers=analyst).status_code == 404
    first = client.post(REPORTS, headers=analyst).json()
    retry_url = f"/v1/reports/{first['report_id']}/retry"
    assert client.post(retry_url, headers=analyst).status_code == 409
    assert client.post(f"/v1/reports/{uuid.uuid4()}/retry", headers=analyst).status_code == 404
    assert client.post(REPORTS, headers=analyst).status_code == 202
    assert _queued(conn) == (2, 2)

    refused = client.post(REPORTS, headers=analyst)
    assert refused.status_code == 429, refused.text
    assert refused.json()["detail"]["field"] == "account"
    assert 1 <= int(refused.headers["Retry-After"]) <= 2 * 3600
    assert _queued(conn) == (2, 2)
    # A retry is a job too: refused alike, the report left failed and nothing queued.
    _fail(conn, first["report_id"])
    again = client.post(retry_url, headers=analyst)
    assert again.status_code == 429 and int(again.headers["Retry-After"]) >= 1
    assert client.get(first["status_url"], headers=analyst).json()["status"] == "failed"
    assert _queued(conn) == (2, 2)

    # Another account (an admin's too) is not held up, retrying included.
    other = account("analyst")
    assert client.post(REPORTS, headers=other).status_code == 202
    assert client.post(retry_url, headers=other).status_code == 202
    assert client.post(REPORTS, headers=account("admin")).status_code == 202
    assert _queued(conn) == (4, 5)
    # The table keeps keyed hashes of the accounts, one row each, counting what ran.
    rows = conn.execute(
        "SELECT key, hits FROM rate_limits WHERE scope = 'report_account' ORDER BY hits DESC"
    ).fetchall()
    assert [hits for _, hits in rows] == [2, 2, 1]
    assert all(len(bytes(key)) == 16 for key, _ in rows)


def test_a_limit_of_zero_is_no_limit(
    conn: psycopg.Connection, client: TestClient, account: Callable, limits: Callable
) -> None:
    limits(reports_per_account=0)
    analyst = account("analyst")
    for _ in range(4):
        assert client.post(REPORTS, headers=analyst).status_code == 202
    assert _queued(conn) == (4, 4)
    assert conn.execute("SELECT count(*) FROM rate_limits").fetchone() == (0,)


def test_the_default_limit_lets_an_analyst_work() -> None:
    settings = get_settings()
    assert 5 <= settings.reports_per_account <= 30
    assert settings.reports_per_account_seconds == 3600
