"""The phone's outbox delivers everything over a flaky link, and never twice."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
from fastapi.testclient import TestClient

from mobile_stub.client import FlakyTransport, GolosClient, Outbox, Submission


def _client(app_client: TestClient, drop_every: int) -> GolosClient:
    # The real app, reached through the test client's in-process transport.
    transport = FlakyTransport(app_client._transport, drop_every=drop_every)
    return GolosClient(str(app_client.base_url), transport=transport)


def test_outbox_delivers_through_dropped_requests(
    conn: psycopg.Connection, client: TestClient, ballot_photo: Callable, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox")
    sids = []
    for i in range(4):
        sid = str(uuid.uuid4())
        sids.append(sid)
        outbox.add(
            Submission(sid, "by-2020-president", "p1", "tsikhanouskaya"),
            ballot_photo(["tsikhanouskaya"], seed=20 + i),
        )
    assert outbox.pending() == sorted(sids)

    phone = _client(client, drop_every=2)  # every other request is lost
    outcomes = [outbox.send(sid, phone, sleep=lambda _: None) for sid in outbox.pending()]
    assert all(o is not None and o.http_status == 202 for o in outcomes)
    assert sum(o.attempts for o in outcomes if o) > len(outcomes)
    assert outbox.pending() == []
    conn.commit()
    assert conn.execute("SELECT count(*) FROM submissions").fetchone() == (4,)


def test_a_dead_network_keeps_the_submission_on_the_phone(
    client: TestClient, ballot_photo: Callable, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox")
    sid = str(uuid.uuid4())
    outbox.add(
        Submission(sid, "by-2020-president", "p1", "lukashenko"), ballot_photo(["lukashenko"])
    )
    offline = GolosClient("http://127.0.0.1:9", transport=httpx.MockTransport(_unreachable))
    assert outbox.send(sid, offline, max_attempts=3, sleep=lambda _: None) is None
    assert outbox.pending() == [sid]
    delivered = outbox.send(sid, _client(client, drop_every=0), sleep=lambda _: None)
    assert delivered is not None and delivered.http_status == 202


def test_a_refused_submission_leaves_the_outbox_with_the_reason(
    client: TestClient, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox")
    sid = str(uuid.uuid4())
    outbox.add(Submission(sid, "by-2020-president", "p1", "lukashenko"), b"not a photo")
    outcome = outbox.send(sid, _client(client, drop_every=0), sleep=lambda _: None)
    assert outcome is not None and outcome.http_status == 422 and outcome.status == "refused"
    assert "photo" in outcome.reasons[0]
    assert outbox.pending() == []


def _unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("no network", request=request)
