"""Uploading protocol photos through the real HTTP app: accepted and queued with
the metadata stripped, idempotent on the photo's id, the same bytes for a station
counted once, and every bad input refused naming its field."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.protocols import jobs
from infra.settings import get_settings
from infra.storage import photo_store
from tests.api.protocols.conftest import ELECTION, protocol_jpeg

URL = f"/v1/elections/{ELECTION}/protocol-photos"
Post = Callable[..., httpx.Response]


@pytest.fixture
def post(client: TestClient, account: Callable[..., dict[str, str]]) -> Post:
    """Uploads a protocol photo as ``who`` (an observer of its own by default)."""
    observer = account("observer")

    def send(
        photo: bytes | None,
        *,
        photo_id: str | None = None,
        precinct: str | None = "p1",
        who: dict[str, str] | None = None,
        election: str = ELECTION,
    ) -> httpx.Response:
        data = {}
        if photo_id != "":
            data["photo_id"] = photo_id or str(uuid.uuid4())
        if precinct is not None:
            data["precinct_id"] = precinct
        files = None if photo is None else {"photo": ("p.jpg", photo, "image/jpeg")}
        return client.post(
            f"/v1/elections/{election}/protocol-photos",
            data=data,
            files=files,
            headers=observer if who is None else who,
        )

    return send


def _rows(conn: psycopg.Connection) -> tuple[int, int]:
    conn.commit()
    photos = conn.execute("SELECT count(*) FROM protocol_photos").fetchone()
    queued = conn.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s", (jobs.READ_TASK,)
    ).fetchone()
    assert photos is not None and queued is not None
    return photos[0], queued[0]


def test_a_protocol_photo_is_accepted_stripped_and_queued(
    conn: psycopg.Connection, post: Post
) -> None:
    photo_id = str(uuid.uuid4())
    answer = post(protocol_jpeg(1), photo_id=photo_id)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["photo_id"] == photo_id and body["status"] == "received"
    assert body["duplicate_of"] is None
    assert body["status_url"].endswith(f"{URL}/{photo_id}")
    assert _rows(conn) == (1, 1)
    row = conn.execute(
        "SELECT photo_sha256, uploader_user_id, uploader_voter_key, received_hour"
        " FROM protocol_photos"
    ).fetchone()
    assert row is not None and row[1] is not None and row[2] is None
    assert row[3].minute == 0 and row[3].second == 0  # cut to the hour
    stored = photo_store(get_settings()).get(row[0])
    assert b"SECRET" not in stored and b"Exif" not in stored
    assert not Image.open(io.BytesIO(stored)).getexif()


def test_a_retry_is_answered_from_the_first_result_and_stored_once(
    conn: psycopg.Connection, post: Post
) -> None:
    photo_id = str(uuid.uuid4())
    first = post(protocol_jpeg(2), photo_id=photo_id)
    again = post(protocol_jpeg(2), photo_id=photo_id)
    assert first.status_code == 202 and again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["photo_id"] == photo_id
    assert _rows(conn) == (1, 1)


def test_the_same_id_for_another_photo_is_refused(conn: psycopg.Connection, post: Post) -> None:
    photo_id = str(uuid.uuid4())
    assert post(protocol_jpeg(3), photo_id=photo_id).status_code == 202
    other = post(protocol_jpeg(4), photo_id=photo_id)
    assert other.status_code == 422
    assert other.json()["detail"]["field"] == "photo_id"
    assert _rows(conn) == (1, 1)


def test_the_same_photo_sent_again_for_the_station_counts_once(
    conn: psycopg.Connection, post: Post, account: Callable[..., dict[str, str]]
) -> None:
    first = post(protocol_jpeg(5))
    second = post(protocol_jpeg(5), who=account("observer"))
    assert first.status_code == second.status_code == 202
    assert second.json()["duplicate_of"] == first.json()["photo_id"]
    assert _rows(conn) == (2, 1)  # recorded, but read once
    # For another station the same bytes are a photo of their own (a mistake to
    # look at, not a copy of this station's).
    elsewhere = post(protocol_jpeg(5), precinct="p2")
    assert elsewhere.status_code == 202 and elsewhere.json()["duplicate_of"] is None


def test_a_verified_voter_may_send_one_and_read_its_state_but_not_anothers(
    client: TestClient, post: Post, device_token: Callable[..., str]
) -> None:
    voter = {"Authorization": f"Bearer {device_token('+375291111111')}"}
    other = {"Authorization": f"Bearer {device_token('+375292222222')}"}
    answer = post(protocol_jpeg(6), who=voter)
    assert answer.status_code == 202, answer.text
    url = answer.json()["status_url"]
    mine = client.get(url, headers=voter)
    assert mine.status_code == 200 and mine.json()["status"] == "received"
    assert client.get(url, headers=other).status_code == 404


@pytest.mark.parametrize(
    ("change", "status", "field", "says"),
    [
        ({"photo_id": ""}, 400, "photo_id", "required"),
        ({"photo_id": "not-a-uuid"}, 400, "photo_id", "UUID"),
        ({"precinct": None}, 422, "precinct_id", "required"),
        ({"precinct": "p999"}, 422, "precinct_id", "unknown precinct"),
        ({"photo": b""}, 422, "photo", "required"),
        ({"photo": b"GIF89a not really"}, 422, "photo", "unsupported_format"),
        ({"photo": b"plain text, no picture"}, 422, "photo", "not_an_image"),
        ({"photo": b"\xff\xd8\xff\xe0 broken"}, 422, "photo", "malformed_image"),
        ({"election": "no-such-election"}, 404, "election_id", "unknown election"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    conn: psycopg.Connection,
    post: Post,
    change: dict[str, object],
    status: int,
    field: str,
    says: str,
) -> None:
    arguments: dict[str, object] = {"photo": protocol_jpeg(7)}
    arguments.update(change)
    photo = arguments.pop("photo")
    assert photo is None or isinstance(photo, bytes)
    answer = post(photo, **arguments)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]["field"] == field
    assert says in answer.json()["detail"]["message"]
    assert _rows(conn) == (0, 0)


def test_a_photo_too_small_or_too_large_is_refused(
    conn: psycopg.Connection, post: Post, limits: Callable[..., None]
) -> None:
    tiny = io.BytesIO()
    Image.new("RGB", (120, 90), "white").save(tiny, "JPEG")
    small = post(tiny.getvalue())
    assert small.status_code == 422 and "too_small" in small.json()["detail"]["message"]
    limits(max_upload_bytes=50_000)
    large = post(protocol_jpeg(8))
    assert large.status_code == 413 and large.json()["detail"]["field"] == "photo"
    assert _rows(conn) == (0, 0)


def test_a_voter_of_another_election_is_refused(
    post: Post, device_token: Callable[..., str]
) -> None:
    voter = {"Authorization": f"Bearer {device_token('+375293333333')}"}
    answer = post(protocol_jpeg(9), who=voter, election="another-election")
    assert answer.status_code == 403
    assert answer.json()["detail"]["field"] == "election_id"


def test_an_analyst_may_not_send_one(post: Post, account: Callable[..., dict[str, str]]) -> None:
    assert post(protocol_jpeg(10), who=account("analyst")).status_code == 403
    assert post(protocol_jpeg(10), who={}).status_code == 401


def test_a_network_past_its_limit_is_told_to_wait_and_nothing_is_stored(
    conn: psycopg.Connection, post: Post, limits: Callable[..., None]
) -> None:
    limits(submissions_per_network=1)
    assert post(protocol_jpeg(11)).status_code == 202
    refused = post(protocol_jpeg(12))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.json()["detail"]["field"] == "network"
    assert _rows(conn) == (1, 1)
