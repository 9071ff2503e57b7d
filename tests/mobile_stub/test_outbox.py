"""The phone's outbox delivers everything over a flaky link, and never twice."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.voters.verifiers import DevCodeReader
from infra.settings import get_settings
from mobile_stub.client import (
    FlakyTransport,
    GolosClient,
    Outbox,
    Submission,
    VerificationFailed,
)


def _client(app_client: TestClient, drop_every: int) -> GolosClient:
    # The real app, reached through the test client's in-process transport.
    transport = FlakyTransport(app_client._transport, drop_every=drop_every)
    return GolosClient(str(app_client.base_url), transport=transport)


def test_outbox_delivers_through_dropped_requests(
    conn: psycopg.Connection,
    client: TestClient,
    ballot_photo: Callable,
    device_token: Callable,
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox")
    sids = []
    for i in range(4):
        sid = str(uuid.uuid4())
        sids.append(sid)
        outbox.add(
            Submission(
                sid, "by-2020-president", "p1", "tsikhanouskaya", device_token(f"+37529{i:07d}")
            ),
            ballot_photo(["tsikhanouskaya"], seed=20 + i),
        )
    assert outbox.pending() == sids  # in the order they were taken

    phone = _client(client, drop_every=2)  # every other request is lost
    outcomes = [outbox.send(sid, phone, sleep=lambda _: None) for sid in outbox.pending()]
    assert all(o is not None and o.http_status == 202 for o in outcomes)
    assert sum(o.attempts for o in outcomes if o) > len(outcomes)
    assert outbox.pending() == []
    assert list(outbox.folder.iterdir()) == []  # nothing of a delivered ballot stays
    conn.commit()
    assert conn.execute("SELECT count(*) FROM submissions").fetchone() == (4,)


def test_a_dead_network_keeps_the_submission_on_the_phone(
    client: TestClient, ballot_photo: Callable, device_token: Callable, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox")
    sid = str(uuid.uuid4())
    outbox.add(
        Submission(sid, "by-2020-president", "p1", "lukashenko", device_token("+375290000001")),
        ballot_photo(["lukashenko"]),
    )
    offline = GolosClient("http://127.0.0.1:9", transport=httpx.MockTransport(_unreachable))
    assert outbox.send(sid, offline, max_attempts=3, sleep=lambda _: None) is None
    assert outbox.pending() == [sid]
    delivered = outbox.send(sid, _client(client, drop_every=0), sleep=lambda _: None)
    assert delivered is not None and delivered.http_status == 202


def test_a_refused_submission_leaves_the_outbox_with_the_reason(
    client: TestClient, device_token: Callable, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox")
    sid = str(uuid.uuid4())
    token = device_token("+375290000001")
    outbox.add(Submission(sid, "by-2020-president", "p1", "lukashenko", token), b"not a photo")
    outcome = outbox.send(sid, _client(client, drop_every=0), sleep=lambda _: None)
    assert outcome is not None and outcome.http_status == 422 and outcome.status == "refused"
    assert "photo" in outcome.reasons[0]
    assert outbox.pending() == []


def _unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("no network", request=request)


def test_a_lost_answer_and_the_resend_count_once(
    conn: psycopg.Connection,
    client: TestClient,
    ballot_photo: Callable,
    device_token: Callable,
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox")
    sid = str(uuid.uuid4())
    token = device_token("+375290000002")
    outbox.add(
        Submission(sid, "by-2020-president", "p2", "tsikhanouskaya", token),
        ballot_photo(["tsikhanouskaya"], seed=40),
    )
    # The server stores the first request; its answer is lost; the phone re-sends.
    transport = FlakyTransport(client._transport, drop_every=1, lose_answers=True)
    first_try = GolosClient(str(client.base_url), transport=transport)
    assert outbox.send(sid, first_try, max_attempts=1, sleep=lambda _: None) is None
    outcome = outbox.send(sid, _client(client, drop_every=0), sleep=lambda _: None)
    assert outcome is not None and outcome.http_status == 200  # answered from the first
    conn.commit()
    assert conn.execute("SELECT count(*) FROM submissions").fetchone() == (1,)
    assert conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone() == (1,)


def test_the_outbox_sends_oldest_first(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    ids = ["ffff" + str(uuid.uuid4())[4:], "0000" + str(uuid.uuid4())[4:]]
    for sid in ids:
        outbox.add(Submission(sid, "e", "p", "a", "golos_vt_test"), b"photo")
    assert outbox.pending() == ids


def test_a_record_whose_rewrite_fails_half_way_stays_as_it_was(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    sid = str(uuid.uuid4())
    outbox.add(Submission(sid, "e", "p", "a", "golos_vt_test"), b"photo")
    record = outbox.folder / sid / "submission.json"
    before = record.read_bytes()
    # A value that cannot be written: json.dump has written the fields before it,
    # then fails, as a write cut short by a crash or a full disk would.
    broken = Submission(sid, "e", "p", "b", object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        outbox.add(broken, b"photo")
    assert record.read_bytes() == before
    assert sorted(p.name for p in record.parent.iterdir()) == ["photo.jpg", "submission.json"]
    assert outbox.pending() == [sid]


def test_an_item_whose_record_was_never_written_is_not_pending(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    sid = str(uuid.uuid4())
    with pytest.raises(TypeError):
        outbox.add(Submission(sid, "e", "p", "a", object()), b"photo")  # type: ignore[arg-type]
    assert outbox.pending() == []


def test_a_phone_verifies_over_a_lossy_link_then_sends(
    conn: psycopg.Connection, client: TestClient, ballot_photo: Callable, tmp_path: Path
) -> None:
    codes = DevCodeReader(get_settings().dev_codes_path)  # the simulated SMS inbox
    # The 4th answer is lost after the server acted on the request: the first code
    # is used up by a confirmation nobody heard back from, and the phone starts again.
    transport = FlakyTransport(client._transport, drop_every=4, lose_answers=True)
    transport.count = 2
    phone = GolosClient(str(client.base_url), transport=transport)
    token = phone.verify("by-2020-president", "+375 29 555-00-01", codes, sleep=lambda _: None)
    assert token.startswith("golos_vt_")
    outbox = Outbox(tmp_path / "outbox")
    sid = str(uuid.uuid4())
    outbox.add(
        Submission(sid, "by-2020-president", "p1", "tsikhanouskaya", token),
        ballot_photo(["tsikhanouskaya"], seed=41),
    )
    outcome = outbox.send(sid, _client(client, drop_every=0), sleep=lambda _: None)
    assert outcome is not None and outcome.http_status == 202
    assert _client(client, drop_every=0).status(sid, token)["status"] == "received"


def test_a_refused_verification_is_said_so(client: TestClient) -> None:
    phone = _client(client, drop_every=0)
    with pytest.raises(VerificationFailed, match="422"):
        phone.verify("by-2020-president", "not a phone", lambda _: None, sleep=lambda _: None)
    with pytest.raises(VerificationFailed, match="no code"):
        phone.verify("by-2020-president", "+375295550002", lambda _: None, sleep=lambda _: None)


def test_an_unknown_device_token_is_final(client: TestClient, tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    sid = str(uuid.uuid4())
    outbox.add(Submission(sid, "by-2020-president", "p1", "a", "golos_vt_unknown"), b"photo")
    outcome = outbox.send(sid, _client(client, drop_every=0), sleep=lambda _: None)
    assert outcome is not None and outcome.http_status == 401 and outbox.pending() == []
