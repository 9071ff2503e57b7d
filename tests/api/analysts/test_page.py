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
from api.reports import repository as reports_repository
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


def _session(conn: psycopg.Connection, client: TestClient, account: Callable, name: str) -> str:
    """Logs ``client`` in as a new analyst with a browser session; the page's CSRF token."""
    account("analyst", username=name)
    session = accounts.login(conn, name, PASSWORD, session_hours=1)
    conn.commit()
    client.cookies.set(SESSION_COOKIE, session)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/analysts").text)
    assert token is not None
    return token.group(1)


def test_a_failed_report_is_tried_again_from_the_page(
    conn: psycopg.Connection, client: TestClient, account: Callable
) -> None:
    token = _session(conn, client, account, "ana")
    client.cookies.set("golos_lang", "ru")
    client.post(
        "/analysts/reports",
        data={"election_id": "by-2020-president", "csrf_token": token},
        follow_redirects=False,
    )
    [(report_id,)] = conn.execute("SELECT id FROM reports").fetchall()
    conn.commit()
    retry = f"/analysts/reports/{report_id}/retry"
    assert f'action="{retry}"' not in client.get("/analysts").text  # queued: nothing to retry
    not_failed = client.post(retry, data={"csrf_token": token}, follow_redirects=False)
    assert not_failed.status_code == 409

    reports_repository.mark_failed(conn, report_id, "broken")
    conn.commit()
    page = client.get("/analysts").text
    form = re.search(rf'<form method="post" action="{retry}"[^>]*>(.*?)</form>', page, re.S)
    assert form is not None
    assert 'name="csrf_token"' in form.group(1) and "Попробовать снова" in form.group(1)
    assert client.post(retry, follow_redirects=False).status_code == 403  # no CSRF token
    again = client.post(retry, data={"csrf_token": token}, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/analysts"
    page = client.get("/analysts").text
    assert 'data-status="queued"' in page and f'action="{retry}"' not in page


def test_the_page_says_in_its_language_when_an_account_asked_for_too_many(
    conn: psycopg.Connection, client: TestClient, account: Callable, limits: Callable
) -> None:
    limits(reports_per_account=1)
    token = _session(conn, client, account, "ana")
    client.cookies.set("golos_lang", "be")
    form = {"election_id": "by-2020-president", "csrf_token": token}
    assert client.post("/analysts/reports", data=form, follow_redirects=False).status_code == 303
    refused = client.post("/analysts/reports", data=form, follow_redirects=False)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 2 * 3600
    assert "заказаў занадта шмат справаздач" in refused.text
    assert refused.text.count('data-status="queued"') == 1  # nothing more was queued
    [(report_id,)] = conn.execute("SELECT id FROM reports").fetchall()
    reports_repository.mark_failed(conn, report_id, "broken")
    conn.commit()
    retried = client.post(
        f"/analysts/reports/{report_id}/retry", data={"csrf_token": token}, follow_redirects=False
    )
    assert retried.status_code == 429 and "заказаў занадта шмат" in retried.text
    assert 'data-status="failed"' in retried.text
