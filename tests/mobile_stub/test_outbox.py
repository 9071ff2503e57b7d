"""The phone's outbox delivers everything over a flaky link and across restarts,
never twice at once, and keeps what the server answered."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.voters.verifiers import DevCodeReader
from infra.settings import get_settings
from mobile_stub.client import FlakyTransport, GolosClient, Submission, VerificationFailed
from mobile_stub.outbox import DB_NAME, Outbox

ELECTION = "by-2020-president"


def _client(app_client: TestClient, drop_every: int = 0) -> GolosClient:
    # The real app, reached through the test client's in-process transport.
    transport = FlakyTransport(app_client._transport, drop_every=drop_every)
    return GolosClient(str(app_client.base_url), transport=transport)


def _no_sleep(_: float) -> None:
    pass


class _PowerCut(BaseException):
    """The phone dies: not an error the app handles, the process just stops."""


class _Cut(httpx.BaseTransport):
    """Passes requests to ``inner`` and cuts the power before the request leaves
    (``after_server=False``) or once the server has answered (True)."""

    def __init__(self, inner: httpx.BaseTransport, after_server: bool) -> None:
        self.inner, self.after_server = inner, after_server

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.after_server:
            self.inner.handle_request(request).read()
        raise _PowerCut


class _Recording(httpx.BaseTransport):
    """Passes requests to ``inner`` and records each answer's status."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.statuses: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.statuses.append(response.status_code)
        return response


class _Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _queue(outbox: Outbox, token: str, photo: bytes, precinct: str = "p1") -> str:
    sid = str(uuid.uuid4())
    outbox.add(Submission(sid, ELECTION, precinct, "tsikhanouskaya", token), photo)
    return sid


def _sid_of(request: httpx.Request) -> str:
    body = request.read()
    marker = b'name="submission_id"\r\n\r\n'
    start = body.index(marker) + len(marker)
    return body[start : body.index(b"\r\n", start)].decode()


def test_outbox_delivers_through_dropped_requests_and_keeps_the_receipts(
    conn: psycopg.Connection,
    client: TestClient,
    ballot_photo: Callable,
    device_token: Callable,
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox")
    sids = [
        _queue(outbox, device_token(f"+37529{i:07d}"), ballot_photo(["tsikhanouskaya"], 20 + i))
        for i in range(4)
    ]
    assert outbox.pending() == sids  # in the order they were taken
    assert [outbox.state(s).state for s in sids] == ["queued"] * 4

    phone = _client(client, drop_every=2)  # every other request is lost
    outcomes = [outbox.send(sid, phone, sleep=_no_sleep) for sid in outbox.pending()]
    assert all(o is not None and o.http_status == 202 for o in outcomes)
    assert sum(o.attempts for o in outcomes if o) > len(outcomes)
    assert outbox.pending() == []
    for sid in sids:
        item = outbox.state(sid)
        assert item.state == "delivered" and item.http_status == 202
        receipt = outbox.receipt(sid)
        assert receipt is not None and receipt["submission_id"] == sid
        assert item.status_url == receipt["status_url"] and sid in receipt["status_url"]
    # Nothing of a delivered ballot's photo stays on the phone.
    with sqlite3.connect(tmp_path / "outbox" / DB_NAME) as db:
        assert db.execute("SELECT count(*) FROM submissions WHERE photo IS NOT NULL").fetchone()[
            0
        ] == (0)
    conn.commit()
    assert conn.execute("SELECT count(*) FROM submissions").fetchone() == (4,)


def test_a_dead_network_keeps_the_submission_queued_with_its_last_error(
    client: TestClient, ballot_photo: Callable, device_token: Callable, tmp_path: Path
) -> None:
    clock = _Clock()
    outbox = Outbox(tmp_path / "outbox", clock=clock, jitter=lambda: 0.5)
    sid = _queue(outbox, device_token("+375290000001"), ballot_photo(["lukashenko"]))
    offline = GolosClient("http://127.0.0.1:9", transport=httpx.MockTransport(_unreachable))
    assert outbox.send(sid, offline, max_attempts=3, sleep=clock.sleep) is None
    item = outbox.state(sid)
    assert outbox.pending() == [sid] and item.state == "queued" and item.attempts == 3
    assert item.last_error is not None and item.last_error.startswith("network")
    # Full jitter at 0.5 of 1 s, 2 s, 4 s: the third wait is still ahead.
    assert clock.slept == [0.5, 1.0] and item.next_attempt_at == clock.now + 2.0
    assert outbox.send_due(_client(client)) == []  # not yet due
    clock.now += 2.0
    [delivered] = outbox.send_due(_client(client))
    assert delivered.http_status == 202 and delivered.attempts == 4


def test_the_outbox_survives_a_restart_in_the_middle_of_a_send(
    conn: psycopg.Connection,
    client: TestClient,
    ballot_photo: Callable,
    device_token: Callable,
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox")
    sid = _queue(outbox, device_token("+375290000003"), ballot_photo(["lukashenko"], 3))
    cut = GolosClient(str(client.base_url), transport=_Cut(client._transport, after_server=False))
    with pytest.raises(_PowerCut):
        outbox.send(sid, cut, sleep=_no_sleep)
    assert outbox.state(sid).state == "sending"  # as the dead process left it

    restarted = Outbox(tmp_path / "outbox")
    item = restarted.state(sid)
    assert item.state == "queued" and item.attempts == 1 and restarted.pending() == [sid]
    outcome = restarted.send(sid, _client(client), sleep=_no_sleep)
    assert outcome is not None and outcome.http_status == 202 and outcome.attempts == 2
    conn.commit()
    assert conn.execute("SELECT count(*) FROM submissions").fetchone() == (1,)


def test_a_crash_after_the_servers_202_resends_the_same_id_and_gets_the_replay(
    conn: psycopg.Connection,
    client: TestClient,
    ballot_photo: Callable,
    device_token: Callable,
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox")
    sid = _queue(outbox, device_token("+375290000002"), ballot_photo(["tsikhanouskaya"], 40))
    # The server stores the submission and answers 202; the phone dies before it
    # records the answer.
    cut = GolosClient(str(client.base_url), transport=_Cut(client._transport, after_server=True))
    with pytest.raises(_PowerCut):
        outbox.send(sid, cut, sleep=_no_sleep)

    restarted = Outbox(tmp_path / "outbox")
    recording = _Recording(client._transport)
    phone = GolosClient(str(client.base_url), transport=recording)
    outcome = restarted.send(sid, phone, sleep=_no_sleep)
    assert outcome is not None and outcome.http_status == 200  # answered from the first
    assert recording.statuses == [200]
    assert restarted.state(sid).state == "delivered"
    conn.commit()
    assert conn.execute("SELECT count(*) FROM submissions").fetchone() == (1,)
    assert conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone() == (1,)


def test_a_409_while_the_first_request_is_stored_is_retried_and_delivered_once(
    conn: psycopg.Connection,
    client: TestClient,
    ballot_photo: Callable,
    device_token: Callable,
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox")
    sid = _queue(outbox, device_token("+375290000004"), ballot_photo(["tsikhanouskaya"], 44))
    # Another request with this id is being stored: it holds the id's request lock.
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", (sid,))

    def first_request_done(_: float) -> None:
        conn.commit()  # releases the lock

    recording = _Recording(client._transport)
    phone = GolosClient(str(client.base_url), transport=recording)
    outcome = outbox.send(sid, phone, sleep=first_request_done)
    assert recording.statuses == [409, 202]
    assert outcome is not None and outcome.http_status == 202 and outcome.attempts == 2
    assert conn.execute("SELECT count(*) FROM submissions").fetchone() == (1,)


def test_429_and_503_are_retried_no_sooner_than_retry_after_with_the_same_id(
    tmp_path: Path,
) -> None:
    clock = _Clock()
    sent: list[tuple[float, str]] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append((clock.now, _sid_of(request)))
        if len(sent) == 1:
            return httpx.Response(
                429,
                json={"detail": {"field": "voter", "message": "slow down"}},
                headers={"Retry-After": "120"},
            )
        if len(sent) == 2:
            later = format_datetime(datetime.fromtimestamp(clock.now + 300, UTC), usegmt=True)
            return httpx.Response(503, json={"detail": "busy"}, headers={"Retry-After": later})
        return httpx.Response(
            202,
            json={"submission_id": sid, "status": "received", "reasons": [], "status_url": "/s"},
        )

    outbox = Outbox(tmp_path / "outbox", clock=clock, jitter=lambda: 0.0)
    sid = _queue(outbox, "golos_vt_test", b"photo")
    phone = GolosClient("http://golos.test", transport=httpx.MockTransport(server))
    assert outbox.send(sid, phone, max_attempts=1, sleep=clock.sleep) is None
    item = outbox.state(sid)
    assert item.next_attempt_at == clock.now + 120 and item.last_error == "HTTP 429: slow down"
    assert outbox.send_due(phone) == [] and len(sent) == 1  # asked to wait: it waits

    outcome = outbox.send(sid, phone, sleep=clock.sleep)
    assert outcome is not None and outcome.http_status == 202 and outcome.attempts == 3
    assert [t - sent[0][0] for t, _ in sent] == [0, 120, 420]
    assert clock.slept == [120, 300]
    assert {s for _, s in sent} == {sid}


def test_a_refused_submission_is_final_with_the_servers_field_and_message(
    client: TestClient, device_token: Callable, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox")
    sid = _queue(outbox, device_token("+375290000001"), b"not a photo")
    outcome = outbox.send(sid, _client(client), sleep=_no_sleep)
    assert outcome is not None and outcome.http_status == 422 and outcome.attempts == 1
    assert outcome.state == "failed" and outcome.status == "refused"
    assert outcome.error_field == "photo" and outcome.error_message
    item = outbox.state(sid)
    assert (item.state, item.error_field, item.error_message) == (
        "failed",
        "photo",
        outcome.error_message,
    )
    assert outbox.pending() == []
    # Sending it again asks the server nothing and says the same.
    assert outbox.send(sid, GolosClient("http://127.0.0.1:9")) == outcome


def test_an_unknown_device_token_is_final(client: TestClient, tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    sid = _queue(outbox, "golos_vt_unknown", b"photo")
    outcome = outbox.send(sid, _client(client), sleep=_no_sleep)
    assert outcome is not None and outcome.http_status == 401 and outbox.pending() == []


def test_two_threads_sending_the_same_submission_send_it_once_at_a_time(
    tmp_path: Path,
) -> None:
    in_flight = 0
    most_in_flight = 0
    requests = 0
    entered, release = threading.Event(), threading.Event()
    lock = threading.Lock()

    def server(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most_in_flight, requests
        with lock:
            in_flight += 1
            requests += 1
            most_in_flight = max(most_in_flight, in_flight)
        entered.set()
        release.wait(timeout=10)
        with lock:
            in_flight -= 1
        return httpx.Response(202, json={"status": "received", "reasons": [], "status_url": "/s"})

    outbox = Outbox(tmp_path / "outbox")
    sid = _queue(outbox, "golos_vt_test", b"photo")
    phone = GolosClient("http://golos.test", transport=httpx.MockTransport(server))
    results: dict[str, object] = {}
    first = threading.Thread(target=lambda: results.update(a=outbox.send(sid, phone)))
    first.start()
    assert entered.wait(timeout=10)
    second = threading.Thread(target=lambda: results.update(b=outbox.send(sid, phone)))
    second.start()
    second.join(timeout=10)
    assert results["b"] is None  # it found the submission in flight and left it
    release.set()
    first.join(timeout=10)
    assert requests == 1 and most_in_flight == 1
    assert outbox.state(sid).state == "delivered"


def test_the_outbox_sends_oldest_first(tmp_path: Path) -> None:
    clock = _Clock()
    outbox = Outbox(tmp_path / "outbox", clock=clock)
    ids = ["ffff" + str(uuid.uuid4())[4:], "0000" + str(uuid.uuid4())[4:]]
    for sid in ids:
        outbox.add(Submission(sid, "e", "p", "a", "golos_vt_test"), b"photo")
    assert outbox.pending() == ids
    order: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        order.append(_sid_of(request))
        return httpx.Response(202, json={"status": "received", "reasons": [], "status_url": "/"})

    outcomes = outbox.send_due(GolosClient("http://t", transport=httpx.MockTransport(server)))
    assert order == ids and [o.submission_id for o in outcomes] == ids


def test_adding_again_is_harmless_but_an_id_is_never_reused_for_other_content(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox")
    submission = Submission(str(uuid.uuid4()), "e", "p", "a", "golos_vt_test")
    outbox.add(submission, b"photo")
    outbox.add(submission, b"photo")
    with pytest.raises(ValueError, match="new id"):
        outbox.add(submission, b"another photo")
    with pytest.raises(TypeError):
        outbox.add(Submission(str(uuid.uuid4()), "e", "p", "a", object()), b"x")  # type: ignore[arg-type]
    assert outbox.pending() == [submission.submission_id]


def test_a_queued_submission_survives_closing_and_reopening(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox") as outbox:
        sid = _queue(outbox, "golos_vt_test", b"photo")
        outbox.save_device_token(ELECTION, "golos_vt_test")
    with Outbox(tmp_path / "outbox") as reopened:
        assert reopened.pending() == [sid] and reopened.state(sid).state == "queued"
        assert reopened.device_token(ELECTION) == "golos_vt_test"
        with sqlite3.connect(reopened.path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def _unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("no network", request=request)


def test_a_phone_verifies_over_a_lossy_link_then_sends(
    conn: psycopg.Connection, client: TestClient, ballot_photo: Callable, tmp_path: Path
) -> None:
    codes = DevCodeReader(get_settings().dev_codes_path)  # the simulated SMS inbox
    # The 4th answer is lost after the server acted on the request: the first code
    # is used up by a confirmation nobody heard back from, and the phone starts again.
    transport = FlakyTransport(client._transport, drop_every=4, lose_answers=True)
    transport.count = 2
    phone = GolosClient(str(client.base_url), transport=transport)
    token = phone.verify(ELECTION, "+375 29 555-00-01", codes, sleep=_no_sleep)
    assert token.startswith("golos_vt_")
    outbox = Outbox(tmp_path / "outbox")
    sid = _queue(outbox, token, ballot_photo(["tsikhanouskaya"], seed=41))
    outcome = outbox.send(sid, _client(client), sleep=_no_sleep)
    assert outcome is not None and outcome.http_status == 202
    assert _client(client).status(sid, token)["status"] == "received"


def test_a_refused_verification_is_said_so(client: TestClient) -> None:
    phone = _client(client)
    with pytest.raises(VerificationFailed, match="422"):
        phone.verify(ELECTION, "not a phone", lambda _: None, sleep=_no_sleep)
    with pytest.raises(VerificationFailed, match="no code"):
        phone.verify(ELECTION, "+375295550002", lambda _: None, sleep=_no_sleep)


def test_a_later_ballot_waits_until_the_voters_earlier_one_is_delivered(tmp_path: Path) -> None:
    # A voter who re-votes offline: the later ballot counts only if it reaches the
    # server last, so it is not sent while the earlier one waits for its retry.
    clock = _Clock()
    outbox = Outbox(tmp_path / "outbox", clock=clock, jitter=lambda: 0.5)
    first = _queue(outbox, "golos_vt_test", b"first photo")
    later = _queue(outbox, "golos_vt_test", b"later photo")
    other = _queue(outbox, "golos_vt_other", b"another voter's photo")
    order: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        sid = _sid_of(request)
        order.append(sid)
        if sid == first and order.count(first) == 1:
            return httpx.Response(409, json={"detail": {"field": "submission_id", "message": "x"}})
        return httpx.Response(202, json={"status": "received", "reasons": [], "status_url": "/"})

    phone = GolosClient("http://t", transport=httpx.MockTransport(server))
    assert [o.submission_id for o in outbox.send_due(phone)] == [other]
    assert order == [first, other]  # the later one held back behind the first
    assert outbox.next_due() == outbox.state(first).next_attempt_at
    clock.now = outbox.next_due() or clock.now
    assert [o.submission_id for o in outbox.send_due(phone)] == [first, later]
    assert order == [first, other, first, later]


def test_when_the_network_returns_what_waited_for_it_is_due_at_once(tmp_path: Path) -> None:
    clock = _Clock()
    outbox = Outbox(tmp_path / "outbox", clock=clock, jitter=lambda: 0.99)
    offline = _queue(outbox, "golos_vt_a", b"photo a")
    told_to_wait = _queue(outbox, "golos_vt_b", b"photo b")

    def server(request: httpx.Request) -> httpx.Response:
        if _sid_of(request) == offline:
            raise httpx.ConnectError("no network", request=request)
        return httpx.Response(503, json={"detail": "busy"}, headers={"Retry-After": "600"})

    phone = GolosClient("http://t", transport=httpx.MockTransport(server))
    for _ in range(6):  # the backoff grows to half a minute
        clock.now = outbox.state(offline).next_attempt_at or clock.now
        outbox.send_due(phone)
    assert (outbox.state(offline).next_attempt_at or 0) > clock.now + 10
    assert outbox.network_returned() == 1
    assert outbox.state(offline).next_attempt_at == clock.now
    # The server's Retry-After still holds.
    assert (outbox.state(told_to_wait).next_attempt_at or 0) > clock.now + 60


def test_a_phone_that_is_not_verified_cannot_queue_a_ballot(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    with pytest.raises(ValueError, match="not verified"):
        outbox.add(Submission(str(uuid.uuid4()), "e", "p", "a", ""), b"photo")
    assert outbox.items() == []
