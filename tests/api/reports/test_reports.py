"""Analysts' downloads: asked for over HTTP, generated in the background."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import Callable

from fastapi.testclient import TestClient

from api.worker import run_worker


def test_report_is_generated_in_the_background_and_downloaded(
    client: TestClient, submit: Callable, ballot_photo: Callable
) -> None:
    for i in range(2):
        submit(ballot_photo(["tsikhanouskaya"], seed=60 + i), precinct="p1")
    asked = client.post("/v1/elections/by-2020-president/reports")
    assert asked.status_code == 202
    body = asked.json()
    assert body["status"] == "queued" and body["files"] == {}
    status_url = body["status_url"]

    asyncio.run(run_worker(wait=False))  # photos read, then the report written

    ready = client.get(status_url).json()
    assert ready["status"] == "ready", ready
    assert {"discrepancies.csv", "summary.json"} <= set(ready["files"])
    summary = client.get(ready["files"]["summary.json"])
    assert summary.status_code == 200
    assert json.loads(summary.content)["flags"]["crowd_exceeds_official"] == 1
    rows = list(csv.DictReader(io.StringIO(client.get(ready["files"]["discrepancies.csv"]).text)))
    assert [(r["precinct_id"], r["flag"]) for r in rows] == [("p1", "crowd_exceeds_official")]


def test_unknown_reports_and_files_are_404(client: TestClient) -> None:
    assert client.post("/v1/elections/nowhere/reports").status_code == 404
    assert client.get(f"/v1/reports/{uuid.uuid4()}").status_code == 404
    asked = client.post("/v1/elections/by-2020-president/reports").json()
    report_id = asked["report_id"]
    # Not ready yet, and never a path outside the report's own files.
    assert client.get(f"/v1/reports/{report_id}/files/summary.json").status_code == 404
    assert client.get(f"/v1/reports/{report_id}/files/..%2F..%2Fvoter-secret").status_code == 404
