"""The photo store on an S3-compatible object store: moto's server over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.server
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.worker import run_worker
from infra.settings import Settings, get_settings
from infra.storage import (
    CorruptPhoto,
    LocalPhotoStore,
    S3Config,
    S3PhotoStore,
    StoreUnavailable,
    photo_store,
)
from tests.conftest import S3_TEST_ENV

PHOTO = b"\xff\xd8 a ballot photo \xff\xd9"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in S3_TEST_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def bucket(s3_server: str, aws_env: None) -> str:
    name = f"golos-{uuid.uuid4().hex[:12]}"
    _raw(s3_server).create_bucket(Bucket=name)
    return name


def _raw(endpoint: str) -> Any:
    """A plain client, for looking at the bucket behind the store's back."""
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1")


def _store(endpoint: str, bucket: str, **options: Any) -> S3PhotoStore:
    config = S3Config(
        bucket=bucket, endpoint_url=endpoint, region="us-east-1", addressing_style="path"
    )
    return S3PhotoStore(config._replace(**options))


def test_a_photo_round_trips_under_its_sha256(s3_server: str, bucket: str) -> None:
    store = _store(s3_server, bucket)
    key = store.put(PHOTO)
    assert key == hashlib.sha256(PHOTO).hexdigest()
    assert store.get(key) == PHOTO
    listed = _raw(s3_server).list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == [f"photos/{key}"]
    head = _raw(s3_server).head_object(Bucket=bucket, Key=f"photos/{key}")
    assert head["Metadata"] == {}  # nothing but the bytes: no time, no sender


def test_a_second_put_keeps_the_first_object_and_its_date(s3_server: str, bucket: str) -> None:
    store = _store(s3_server, bucket)
    key = store.put(PHOTO)
    first = _raw(s3_server).head_object(Bucket=bucket, Key=f"photos/{key}")["LastModified"]
    time.sleep(1.1)  # Last-Modified counts seconds
    assert store.put(PHOTO) == key
    again = _raw(s3_server).head_object(Bucket=bucket, Key=f"photos/{key}")["LastModified"]
    assert again == first  # a re-send dates nothing
    assert _raw(s3_server).list_objects_v2(Bucket=bucket)["KeyCount"] == 1


def test_exists_says_whether_a_photo_is_stored(s3_server: str, bucket: str) -> None:
    store = _store(s3_server, bucket)
    key = hashlib.sha256(PHOTO).hexdigest()
    assert not store.exists(key)
    store.put(PHOTO)
    assert store.exists(key)


def test_a_missing_photo_is_not_found(s3_server: str, bucket: str) -> None:
    with pytest.raises(FileNotFoundError):
        _store(s3_server, bucket).get("0" * 64)


@pytest.mark.parametrize("key", ["../../etc/passwd", "A" * 64, "0" * 63, f"{'0' * 64}/x"])
def test_a_key_that_is_not_a_sha256_is_refused(s3_server: str, bucket: str, key: str) -> None:
    store = _store(s3_server, bucket)
    with pytest.raises(ValueError, match="not a sha256 key"):
        store.get(key)
    with pytest.raises(ValueError, match="not a sha256 key"):
        store.exists(key)


def test_a_photo_changed_in_the_store_is_refused_on_reading(s3_server: str, bucket: str) -> None:
    store = _store(s3_server, bucket)
    key = store.put(PHOTO)
    _raw(s3_server).put_object(Bucket=bucket, Key=f"photos/{key}", Body=b"something else")
    with pytest.raises(CorruptPhoto):
        store.get(key)


def test_a_put_asks_the_store_to_check_the_body_and_keep_the_first_copy(
    s3_server: str, bucket: str
) -> None:
    """Content-MD5 and the SHA-256 checksum make a store refuse a body damaged on the
    way (moto stores without checking; S3, MinIO and Ceph check), and If-None-Match
    keeps the first copy."""
    store = _store(s3_server, bucket)
    sent: list[dict[str, str]] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append(
            {
                k.lower(): v.decode() if isinstance(v, bytes) else v
                for k, v in request.headers.items()
            }
        )

    store.client.meta.events.register("before-send.s3.PutObject", capture)
    try:
        store.put(PHOTO)
    finally:
        store.client.meta.events.unregister("before-send.s3.PutObject", capture)
    [headers] = sent
    assert headers["content-md5"] == base64.b64encode(hashlib.md5(PHOTO).digest()).decode()
    assert (
        headers["x-amz-checksum-sha256"]
        == base64.b64encode(hashlib.sha256(PHOTO).digest()).decode()
    )
    assert headers["if-none-match"] == "*"
    assert "x-amz-meta" not in " ".join(headers)


def test_server_side_encryption_is_asked_for_when_configured(s3_server: str, bucket: str) -> None:
    key = _store(s3_server, bucket, server_side_encryption="AES256").put(PHOTO)
    head = _raw(s3_server).head_object(Bucket=bucket, Key=f"photos/{key}")
    assert head["ServerSideEncryption"] == "AES256"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_store_out_of_reach_is_unavailable_not_a_bug(aws_env: None) -> None:
    store = _store(f"http://127.0.0.1:{_closed_port()}", "golos-photos")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as raised:
        store.put(PHOTO)
    assert time.monotonic() - started < 15  # three attempts, then the phone retries
    assert "127.0.0.1" not in str(raised.value)  # no endpoint in what may be shown
    with pytest.raises(StoreUnavailable):
        store.get(hashlib.sha256(PHOTO).hexdigest())
    with pytest.raises(StoreUnavailable):
        store.exists(hashlib.sha256(PHOTO).hexdigest())


@pytest.fixture
def refusing_store() -> Iterator[Callable[[int, str], str]]:
    """An HTTP server that answers every request with the given S3 error (a full
    MinIO, a throttling S3): its URL."""
    servers: list[http.server.HTTPServer] = []

    def start(status: int, code: str) -> str:
        class Refuse(http.server.BaseHTTPRequestHandler):
            def _refuse(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                body = f"<Error><Code>{code}</Code><Message>no</Message></Error>".encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_PUT = do_GET = do_HEAD = _refuse

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("status", "code"),
    [(507, "XMinioStorageFull"), (503, "SlowDown"), (403, "QuotaExceeded")],
)
def test_a_full_or_overloaded_store_is_unavailable(
    aws_env: None, refusing_store: Callable[[int, str], str], status: int, code: str
) -> None:
    store = _store(refusing_store(status, code), "golos-photos")
    with pytest.raises(StoreUnavailable, match=code):
        store.put(PHOTO)


def test_a_refused_credential_is_a_configuration_error_not_unavailable(
    aws_env: None, refusing_store: Callable[[int, str], str]
) -> None:
    from botocore.exceptions import ClientError

    store = _store(refusing_store(403, "AccessDenied"), "golos-photos")
    with pytest.raises(ClientError):
        store.put(PHOTO)


def test_the_settings_choose_the_backend(s3_server: str, aws_env: None) -> None:
    assert isinstance(photo_store(Settings()), LocalPhotoStore)
    chosen = photo_store(Settings(photo_store="s3", s3_bucket="b", s3_endpoint_url=s3_server))
    assert isinstance(chosen, S3PhotoStore) and chosen.config.bucket == "b"
    # One client per configuration and process, not one per request.
    again = photo_store(Settings(photo_store="s3", s3_bucket="b", s3_endpoint_url=s3_server))
    assert isinstance(again, S3PhotoStore) and again.client is chosen.client
    with pytest.raises(ValueError, match="GOLOS_S3_BUCKET"):
        photo_store(Settings(photo_store="s3"))


def test_an_upload_is_stored_in_the_bucket_and_verified_by_the_worker(
    s3_photos: str,
    s3_server: str,
    conn: psycopg.Connection,
    client: TestClient,
    submit: Callable[..., Any],
    ballot_photo: Callable[..., bytes],
) -> None:
    assert isinstance(photo_store(get_settings()), S3PhotoStore)
    sid = str(uuid.uuid4())
    response = submit(ballot_photo(["tsikhanouskaya"], seed=3), sid=sid)
    assert response.status_code == 202, response.text
    conn.commit()
    row = conn.execute("SELECT photo_sha256 FROM submissions WHERE id = %s", (sid,)).fetchone()
    assert row is not None
    keys = [o["Key"] for o in _raw(s3_server).list_objects_v2(Bucket=s3_photos)["Contents"]]
    assert f"photos/{row[0]}" in keys  # beside the ballot's reference image
    assert not get_settings().photos_path.exists() or not any(
        p.is_file() for p in get_settings().photos_path.rglob("*")
    )
    asyncio.run(run_worker(wait=False))
    conn.commit()
    status = conn.execute("SELECT status FROM submissions WHERE id = %s", (sid,)).fetchone()
    assert status == ("verified",)


def test_an_upload_answers_503_when_the_object_store_is_out_of_reach(
    s3_photos: str,
    conn: psycopg.Connection,
    client: TestClient,
    submit: Callable[..., Any],
    ballot_photo: Callable[..., bytes],
) -> None:
    os.environ["GOLOS_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{_closed_port()}"
    get_settings.cache_clear()
    response = submit(ballot_photo(["tsikhanouskaya"], seed=4))
    assert response.status_code == 503 and "Retry-After" in response.headers
    conn.commit()
    assert conn.execute("SELECT count(*) FROM submissions").fetchone() == (0,)
