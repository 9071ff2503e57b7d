"""Who may send a ballot photo and who may read a submission's status."""

from __future__ import annotations

import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.elections.service import load_election
from infra.settings import get_settings
from infra.storage import photo_store


def _count(conn: psycopg.Connection) -> int:
    conn.commit()
    row = conn.execute("SELECT count(*) FROM submissions").fetchone()
    assert row is not None
    return int(row[0])


def test_only_a_verified_voter_may_send_a_photo(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable, account: Callable
) -> None:
    photo = ballot_photo(["tsikhanouskaya"])
    nobody = submit(photo, headers={})
    assert nobody.status_code == 401 and nobody.json()["detail"]["field"] == "authorization"
    assert nobody.headers["WWW-Authenticate"] == "Bearer"
    forged = submit(photo, headers={"Authorization": "Bearer golos_vt_forged"})
    assert forged.status_code == 401
    for role in ("observer", "analyst", "admin"):
        refused = submit(photo, headers=account(role))
        assert refused.status_code == 403, role
    assert _count(conn) == 0
    assert submit(photo).status_code == 202


def test_an_upload_is_refused_for_an_expired_token_a_token_of_no_kind_or_a_cookie(
    conn: psycopg.Connection,
    client: TestClient,
    submit: Callable,
    ballot_photo: Callable,
    device_token: Callable,
    account: Callable,
) -> None:
    photo = ballot_photo(["tsikhanouskaya"])
    expired = device_token("+375291000077")
    conn.execute("UPDATE device_tokens SET expires_at = now() - interval '1 second'")
    conn.commit()
    late = submit(photo, headers={"Authorization": f"Bearer {expired}"})
    assert late.status_code == 401, late.text
    assert late.json()["detail"]["message"] == "unknown, expired or revoked token"
    odd = submit(photo, headers={"Authorization": "Bearer something-else"})
    assert odd.status_code == 401
    # A browser session is no credential on the phones' route (no CSRF to forge).
    account("observer")
    client.cookies.set("golos_session", "a-session-cookie")
    assert submit(photo, headers={}).status_code == 401
    assert _count(conn) == 0


def test_a_stranger_or_another_role_is_refused_before_their_body_is_judged(
    conn: psycopg.Connection,
    client: TestClient,
    device_token: Callable,
    account: Callable,
) -> None:
    # The upload looks its caller up in the same database call as the rest of its
    # work, after the body is read; the answer still puts who is calling first.
    def post(headers: dict[str, str], body: bytes = b"not a form", kind: str = "text/plain") -> int:
        answer = client.post(
            "/v1/submissions", content=body, headers={"Content-Type": kind, **headers}
        )
        return answer.status_code

    assert post({}) == 401
    assert post({"Authorization": "Bearer golos_vt_forged"}) == 401
    assert post(account("observer")) == 403
    assert post(account("admin")) == 403
    voter = {"Authorization": f"Bearer {device_token('+375291000031')}"}
    assert post(voter) == 415  # the body's own fault, told to the one who may send
    too_large = b"x" * (get_settings().max_upload_bytes + 128 * 1024)
    form = "multipart/form-data; boundary=x"
    assert post({"Authorization": "Bearer golos_vt_forged"}, too_large, form) == 401
    assert post(voter, too_large, form) == 413
    assert _count(conn) == 0


@pytest.fixture
def served(app: FastAPI, loaded: str) -> Iterator[tuple[str, int]]:
    """``app`` under uvicorn on 127.0.0.1 (a real socket, so a test sees what the
    server reads of a body and when it answers)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# The first 64 KiB of a photo's part, as a phone sends it.
_PHOTO_PART = (
    b'--x\r\nContent-Disposition: form-data; name="photo"; filename="b.jpg"\r\n'
    b"Content-Type: image/jpeg\r\n\r\n" + b"\xff" * (64 * 1024)
)


def _answer_to_a_body_begun(address: tuple[str, int], headers: dict[str, str]) -> int:
    """The status the server answers after the first 64 KiB of an upload declared
    just under the size cap, the rest never sent. Fails (socket timeout) if the
    server waits for the rest of the body first."""
    declared = get_settings().max_upload_bytes
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    with socket.create_connection(address, timeout=20) as sock:
        sock.sendall(
            (
                "POST /v1/submissions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: multipart/form-data; boundary=x\r\n{head}"
                f"Content-Length: {declared}\r\n\r\n"
            ).encode()
            + _PHOTO_PART
        )
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


def test_only_a_verified_voter_can_make_the_server_read_a_body(
    served: tuple[str, int], device_token: Callable, account: Callable
) -> None:
    # A flood of invented tokens costs the server no body read and no query.
    forged = "golos_vt_" + "A" * 65  # the shape of a token, not this server's tag
    assert _answer_to_a_body_begun(served, {"Authorization": f"Bearer {forged}"}) == 401
    assert _answer_to_a_body_begun(served, {}) == 401
    assert _answer_to_a_body_begun(served, account("observer")) == 403
    assert _answer_to_a_body_begun(served, {"Cookie": "golos_session=golos_s_x"}) == 401
    assert _answer_to_a_body_begun(served, {"Authorization": "Bearer something"}) == 401
    # A verified voter's body is read: no answer before the rest of it.
    voter = {"Authorization": f"Bearer {device_token('+375291000032')}"}
    with socket.create_connection(served, timeout=20) as sock:
        sock.sendall(
            b"POST /v1/submissions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: {voter['Authorization']}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=x\r\n"
            + b"Content-Length: 100000\r\n\r\n"
            + _PHOTO_PART
        )
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(4096)  # still waiting for the rest of the voter's body


def test_a_voter_reads_only_their_own_submission(
    client: TestClient,
    submit: Callable,
    ballot_photo: Callable,
    device_token: Callable,
    account: Callable,
) -> None:
    sid = str(uuid.uuid4())
    sent = submit(ballot_photo(["tsikhanouskaya"]), sid=sid, voter="+375291000001")
    assert sent.status_code == 202
    url = f"/v1/submissions/{sid}"

    def read(headers: dict[str, str]) -> int:
        return client.get(url, headers=headers).status_code

    def voter(phone: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {device_token(phone)}"}

    assert read(voter("+375 29 100-00-01")) == 200  # the same person, another device
    assert read(voter("+375291000002")) == 404  # another voter is not told it exists
    assert read({}) == 401
    assert read(account("observer")) == 200
    assert read(account("admin")) == 200
    assert read(account("analyst")) == 403


def _load_another_election(conn: psycopg.Connection, election_dir: Path, folder: Path) -> str:
    """The test election again under another id (its ballot template too)."""
    shutil.copytree(election_dir, folder)
    for name in ("election.json", "ballot/template.json"):
        path = folder / name
        path.write_text(path.read_text().replace("by-2020-president", "by-2025-president"))
    load_election(conn, folder, photo_store(get_settings()))
    conn.commit()
    return "by-2025-president"


def test_a_token_of_another_election_cannot_send_or_read(
    conn: psycopg.Connection,
    client: TestClient,
    submit: Callable,
    ballot_photo: Callable,
    device_token: Callable,
    election_dir: Path,
    tmp_path: Path,
) -> None:
    other = _load_another_election(conn, election_dir, tmp_path / "other")
    sid = str(uuid.uuid4())
    phone = "+375291000003"
    assert submit(ballot_photo(["tsikhanouskaya"]), sid=sid, voter=phone).status_code == 202
    elsewhere = {"Authorization": f"Bearer {device_token(phone, election=other)}"}
    refused = submit(ballot_photo(["tsikhanouskaya"], seed=1), headers=elsewhere)
    assert refused.status_code == 403 and refused.json()["detail"]["field"] == "election_id"
    # The same person verified for another election is another key: not their submission.
    assert client.get(f"/v1/submissions/{sid}", headers=elsewhere).status_code == 404
    assert _count(conn) == 1
