"""Analysts' downloads: asked for over HTTP, generated in the background."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.reports import jobs, service
from api.worker import run_worker


def test_report_is_generated_in_the_background_and_downloaded(
    client: TestClient, submit: Callable, ballot_photo: Callable, account: Callable
) -> None:
    analyst = account("analyst")
    for i in range(2):
        submit(ballot_photo(["tsikhanouskaya"], seed=60 + i), precinct="p1")
    asked = client.post("/v1/elections/by-2020-president/reports", headers=analyst)
    assert asked.status_code == 202
    body = asked.json()
    assert body["status"] == "queued" and body["files"] == {}
    status_url = body["status_url"]

    asyncio.run(run_worker(wait=False))  # photos read, then the report written

    ready = client.get(status_url, headers=analyst).json()
    assert ready["status"] == "ready", ready
    assert {"discrepancies.csv", "summary.json"} <= set(ready["files"])
    summary = client.get(ready["files"]["summary.json"], headers=analyst)
    assert summary.status_code == 200
    assert json.loads(summary.content)["flags"]["crowd_exceeds_official"] == 1
    discrepancies = client.get(ready["files"]["discrepancies.csv"], headers=analyst)
    rows = list(csv.DictReader(io.StringIO(discrepancies.text)))
    assert [(r["precinct_id"], r["flag"]) for r in rows] == [("p1", "crowd_exceeds_official")]


def test_unknown_reports_and_files_are_404(client: TestClient, account: Callable) -> None:
    admin = account("admin")
    assert client.post("/v1/elections/nowhere/reports", headers=admin).status_code == 404
    assert client.get(f"/v1/reports/{uuid.uuid4()}", headers=admin).status_code == 404
    asked = client.post("/v1/elections/by-2020-president/reports", headers=admin).json()
    files = f"/v1/reports/{asked['report_id']}/files"
    # Not ready yet, and never a path outside the report's own files.
    assert client.get(f"{files}/summary.json", headers=admin).status_code == 404
    assert client.get(f"{files}/..%2F..%2Fvoter-secret", headers=admin).status_code == 404


def test_reports_are_for_analysts_and_admins(
    client: TestClient, account: Callable, device_token: Callable
) -> None:
    analyst = account("analyst")
    asked = client.post("/v1/elections/by-2020-president/reports", headers=analyst).json()
    asyncio.run(run_worker(wait=False))
    status_url = asked["status_url"]
    summary = client.get(status_url, headers=analyst).json()["files"]["summary.json"]
    for url, method in [
        ("/v1/elections/by-2020-president/reports", "POST"),
        (status_url, "GET"),
        (summary, "GET"),
    ]:
        assert client.request(method, url).status_code == 401
        voter = {"Authorization": f"Bearer {device_token('+375290000001')}"}
        for headers in (account("observer"), voter):
            assert client.request(method, url, headers=headers).status_code == 403, url
        assert client.request(method, url, headers=account("admin")).status_code < 300


def test_a_failed_report_is_retried_on_request(
    client: TestClient, account: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    analyst = account("analyst")
    asked = client.post("/v1/elections/by-2020-president/reports", headers=analyst).json()
    retry_url = f"/v1/reports/{asked['report_id']}/retry"
    assert client.post(retry_url, headers=analyst).status_code == 409  # not failed
    assert client.post(f"/v1/reports/{uuid.uuid4()}/retry", headers=analyst).status_code == 404

    writer = service.write_election_report

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise OSError(28, "No space left on device", "/srv/golos/data/reports")

    monkeypatch.setattr(service, "write_election_report", broken)
    monkeypatch.setattr(jobs, "ATTEMPTS", 1)  # fail at once, no retry 10 s later
    asyncio.run(run_worker(wait=False))
    failed = client.get(asked["status_url"], headers=analyst).json()
    assert failed["status"] == "failed"
    assert "/srv" not in failed["error"] and "No space" not in failed["error"]

    monkeypatch.setattr(service, "write_election_report", writer)
    retried = client.post(retry_url, headers=analyst)
    assert retried.status_code == 202
    assert (retried.json()["status"], retried.json()["error"]) == ("queued", None)
    asyncio.run(run_worker(wait=False))
    assert client.get(asked["status_url"], headers=analyst).json()["status"] == "ready"
    assert client.post(retry_url).status_code == 401
    assert client.post(retry_url, headers=account("observer")).status_code == 403
