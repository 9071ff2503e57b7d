"""The analysts' page: ask for a report, follow it, download its files."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Callable

import psycopg
from fastapi.testclient import TestClient

from api.accounts import service as accounts
from api.deps import SESSION_COOKIE
from api.worker import run_worker
from tally.vocab import DISCREPANCY_COLUMNS

PASSWORD = "correct horse battery staple"  # tests/conftest.py's, for every test account


def test_the_page_is_for_analysts_and_admins(client: TestClient, account: Callable) -> None:
    anonymous = client.get("/analysts", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=%2Fanalysts"
    assert client.get("/analysts", headers=account("observer")).status_code == 403
    for role in ("analyst", "admin"):
        page = client.get("/analysts", headers=account(role))
        assert page.status_code == 200
        assert "No report has been asked for yet." in page.text
        assert 'href="/account"' in page.text  # where API tokens are made
    refused = client.post(
        "/analysts/reports", data={"election_id": "by-2020-president"}, follow_redirects=False
    )
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
    assert (
        client.post(
            "/analysts/reports", data={"election_id": "x"}, headers=account("observer")
        ).status_code
        == 403
    )


def test_an_analyst_asks_for_a_report_and_downloads_its_files(
    client: TestClient, account: Callable
) -> None:
    analyst = account("analyst")
    asked = client.post(
        "/analysts/reports",
        data={"election_id": "by-2020-president"},
        headers=analyst,
        follow_redirects=False,
    )
    assert asked.status_code == 303 and asked.headers["location"] == "/analysts"
    queued = client.get("/analysts", headers=analyst).text
    assert 'data-status="queued"' in queued
    assert 'hx-trigger="every 5s"' in queued  # the page follows the report

    asyncio.run(run_worker(wait=False))

    ready = client.get("/analysts", headers=analyst).text
    assert 'data-status="ready"' in ready and "hx-trigger" not in ready
    link = re.search(r'href="(/v1/reports/[\w-]+/files/discrepancies\.csv)"', ready)
    assert link is not None
    download = client.get(link.group(1), headers=analyst)
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    assert tuple(next(csv.reader(io.StringIO(download.text)))) == DISCREPANCY_COLUMNS


def test_asking_from_a_browser_needs_the_pages_csrf_token(
    conn: psycopg.Connection, client: TestClient, account: Callable
) -> None:
    account("analyst", username="ana")
    session = accounts.login(conn, "ana", PASSWORD, session_hours=1)
    conn.commit()
    client.cookies.set(SESSION_COOKIE, session)
    page = client.get("/analysts")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    forged = client.post(
        "/analysts/reports", data={"election_id": "by-2020-president"}, follow_redirects=False
    )
    assert forged.status_code == 403
    sent = client.post(
        "/analysts/reports",
        data={"election_id": "by-2020-president", "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert client.get("/analysts").text.count('data-status="queued"') == 1
