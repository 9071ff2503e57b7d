"""Connections cut during an upload, on a raw socket as a phone losing its network
would: half a body stores nothing and its retry is accepted; a whole body whose
answer is never read may or may not be stored, and its retry is never counted
twice. The server serves on."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest

from tests.faults.conftest import (
    Phone,
    Server,
    Upload,
    multipart,
    read_then_settled,
    submission_rows,
)

BOUNDARY = "golos-fault-boundary"


def _raw_upload(url: str, upload: Upload, fraction: float) -> None:
    """Send the upload's headers and ``fraction`` of its body, then close the
    connection without reading any answer."""
    body = multipart(upload.fields(), upload.photo, BOUNDARY)
    address = urlsplit(url)
    head = (
        f"POST /v1/submissions HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\n"
        f"Authorization: Bearer {upload.token}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((address.hostname, address.port)) as s:
        s.sendall(head + body[: int(len(body) * fraction)])
        time.sleep(0.2)  # the server has read what was sent
        # RST rather than FIN: the connection is gone, as when a phone loses its network.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    upload.answers.append("cut")


@pytest.fixture
def online(
    database: str, loaded: str, serve: Callable[[], Server], phones: Callable[[str], Phone]
) -> tuple[Server, Phone]:
    """The API (``golos serve``) with the election loaded, and the test's phone."""
    return serve(), phones(database)


def _cut_uploads(server: Server, phone: Phone, count: int, fraction: float) -> list[Upload]:
    """``count`` new uploads, each cut off after ``fraction`` of its body
    (``_raw_upload``)."""
    uploads = [phone.new_upload() for _ in range(count)]
    for upload in uploads:
        _raw_upload(server.url, upload, fraction)
    return uploads


def test_an_upload_cut_midway_stores_nothing_and_its_retry_is_counted_once(
    database: str, online: tuple[Server, Phone]
) -> None:
    server, phone = online
    halves = _cut_uploads(server, phone, 3, 0.5)
    time.sleep(0.5)
    assert submission_rows(database) == {}, "half an upload was stored"
    # The same submissions, sent again whole, are accepted as new.
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for upload in halves:
            assert phone.deliver(client, upload) == 202
        assert client.get("/healthz").status_code == 200
    # Nothing but the accepted photos: no half-written file, no row.
    read_then_settled(database, halves)


def test_an_answer_never_read_is_answered_again_and_counted_once(
    database: str, online: tuple[Server, Phone]
) -> None:
    server, phone = online
    unread = _cut_uploads(server, phone, 4, 1.0)
    # The phone heard nothing, so it sends again at once: told it is being stored
    # (409), accepted (202, the first never stored), or answered from the first (200).
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for upload in unread:
            assert phone.deliver(client, upload) in (200, 202)
            # Once acknowledged, the same id is only ever a replay.
            again = client.post(
                "/v1/submissions",
                data=upload.fields(),
                files={"photo": ("b.jpg", upload.photo, "image/jpeg")},
                headers={"Authorization": f"Bearer {upload.token}"},
            )
            assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    print("answers after an unread answer:", [u.answers for u in unread])
    read_then_settled(database, unread)
