"""Uploading ballot photos through the real HTTP app."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Callable

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from api.deps import settings_dep
from api.submissions import service
from api.submissions.schemas import NewSubmission
from infra.settings import get_settings
from infra.storage import photo_store


def _stored(conn: psycopg.Connection) -> tuple[int, int]:
    conn.commit()
    submissions = conn.execute("SELECT count(*) FROM submissions").fetchone()
    jobs = conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone()
    assert submissions is not None and jobs is not None
    return submissions[0], jobs[0]


def _photo_files() -> list[str]:
    root = get_settings().photos_path
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_upload_is_accepted_and_queued(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    sid = str(uuid.uuid4())
    response = submit(ballot_photo(["tsikhanouskaya"]), sid=sid)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["submission_id"] == sid and body["status"] == "received"
    assert body["status_url"].endswith(f"/v1/submissions/{sid}")
    assert _stored(conn) == (1, 1)
    row = conn.execute("SELECT photo_sha256, voter_key FROM submissions").fetchone()
    assert row is not None and len(row[1]) == 32
    stored = Image.open(io.BytesIO(photo_store(get_settings()).get(row[0])))
    assert stored.format == "JPEG" and not stored.getexif() and "exif" not in stored.info


def test_status_url_answers_the_voter_who_sent_it(
    client: TestClient, submit: Callable, ballot_photo: Callable, device_token: Callable
) -> None:
    sid = str(uuid.uuid4())
    submit(ballot_photo(["lukashenko"]), sid=sid, choice="lukashenko", voter="+375291234567")
    mine = {"Authorization": f"Bearer {device_token('+375291234567')}"}
    status = client.get(f"/v1/submissions/{sid}", headers=mine)
    assert status.status_code == 200
    assert status.json()["status"] == "received" and status.json()["precinct_id"] == "p1"
    assert client.get(f"/v1/submissions/{uuid.uuid4()}", headers=mine).status_code == 404


def test_voter_identity_is_kept_only_as_a_keyed_hash(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    phone = "+375291234567"
    assert submit(ballot_photo(["tsikhanouskaya"]), voter=phone).status_code == 202
    conn.commit()
    key = conn.execute("SELECT voter_key FROM submissions").fetchone()
    assert key is not None and len(key[0]) == 32
    dump = "\n".join(str(r) for r in conn.execute("SELECT * FROM submissions").fetchall())
    assert phone not in dump and phone[1:] not in dump


def test_repeated_submission_id_returns_the_first_result(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    sid, photo = str(uuid.uuid4()), ballot_photo(["tsikhanouskaya"])
    first = submit(photo, sid=sid)
    again = submit(photo, sid=sid)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["submission_id"] == sid
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _stored(conn) == (1, 1)


def test_the_schema_documents_the_replay_answer(app: FastAPI) -> None:
    answers = app.openapi()["paths"]["/v1/submissions"]["post"]["responses"]
    replay = answers["200"]
    assert (
        replay["content"]["application/json"]["schema"]
        == answers["202"]["content"]["application/json"]["schema"]
    )
    assert "Idempotent-Replayed" in replay["headers"]


def test_same_id_with_other_content_is_refused(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    sid, photo = str(uuid.uuid4()), ballot_photo(["tsikhanouskaya"])
    submit(photo, sid=sid)
    other = submit(photo, sid=sid, choice="lukashenko")
    assert other.status_code == 422
    assert other.json()["detail"]["field"] == "submission_id"
    assert _stored(conn) == (1, 1)


def _with_comment(jpeg: bytes, text: bytes) -> bytes:
    """The JPEG with a comment segment (metadata the upload strips) after its SOI."""
    return jpeg[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + jpeg[2:]


def test_a_retry_whose_photo_differs_only_in_metadata_is_the_same_request(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    sid, photo = str(uuid.uuid4()), ballot_photo(["tsikhanouskaya"])
    first = submit(_with_comment(photo, b"sent at 10:02:17"), sid=sid)
    again = submit(_with_comment(photo, b"sent at 10:04:51"), sid=sid)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    other = submit(ballot_photo(["tsikhanouskaya"], seed=7), sid=sid)
    assert other.status_code == 422 and other.json()["detail"]["field"] == "submission_id"
    assert _stored(conn) == (1, 1)


def test_a_retry_of_a_request_stored_before_the_digest_hashed_the_stored_photo_is_replayed(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    # A phone's retry across an upgrade: the row's digest hashes the file as sent.
    sid, photo = str(uuid.uuid4()), ballot_photo(["tsikhanouskaya"])
    assert submit(photo, sid=sid).status_code == 202
    conn.commit()
    row = conn.execute("SELECT voter_key FROM submissions WHERE id = %s", (sid,)).fetchone()
    assert row is not None
    sent = NewSubmission(
        submission_id=sid,
        election_id="by-2020-president",
        precinct_id="p1",
        declared_choice=["tsikhanouskaya"],
        photo=photo,
        voter_key=bytes(row[0]),
    )
    before = service.request_digest(sent, sent.voter_key, hashlib.sha256(photo).digest())
    conn.execute("UPDATE submissions SET request_digest = %s WHERE id = %s", (before, sid))
    conn.commit()
    again = submit(photo, sid=sid)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert submit(photo, sid=sid, choice="lukashenko").status_code == 422
    assert _stored(conn) == (1, 1)


def _broken_jpeg(photo: bytes) -> bytes:
    """Cut inside the EXIF segment: the segment structure is broken. (A photo cut in
    its image data passes the header checks and is rejected by the worker:
    test_ingest_strip.py.)"""
    return photo[:200]


@pytest.mark.parametrize(
    ("case", "status", "field", "text"),
    [
        ("not_an_image", 422, "photo", "not_an_image"),
        ("broken", 422, "photo", "malformed_image"),
        ("gif", 422, "photo", "unsupported_format"),
        ("unknown_precinct", 422, "precinct_id", "unknown precinct 'nowhere'"),
        ("other_election", 403, "election_id", "verified for another election"),
        ("unknown_choice", 422, "declared_choice", "'putin' is not an option"),
        ("two_choices", 422, "declared_choice", "at most 1"),
        ("bad_id", 400, "submission_id", "must be a UUID"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(
    conn: psycopg.Connection,
    submit: Callable,
    ballot_photo: Callable,
    case: str,
    status: int,
    field: str,
    text: str,
) -> None:
    photo = ballot_photo(["tsikhanouskaya"])
    photos_before = _photo_files()  # the ballot template's reference image
    kwargs: dict[str, str] = {}
    if case == "not_an_image":
        photo = b"just some text, not a photo\n" * 100
    elif case == "broken":
        photo = _broken_jpeg(photo)
    elif case == "gif":
        buffer = io.BytesIO()
        Image.new("RGB", (600, 800), "white").save(buffer, format="GIF")
        photo = buffer.getvalue()
    elif case == "unknown_precinct":
        kwargs["precinct"] = "nowhere"
    elif case == "other_election":
        kwargs["election"] = "nowhere-2020"  # the voter's token is for by-2020-president
    elif case == "unknown_choice":
        kwargs["choice"] = "putin"
    elif case == "two_choices":
        kwargs["choice"] = "lukashenko,tsikhanouskaya"
    elif case == "bad_id":
        kwargs["sid"] = "not-a-uuid"
    response = submit(photo, **kwargs)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert detail["field"] == field and text in detail["message"]
    assert _stored(conn) == (0, 0)
    assert _photo_files() == photos_before


def _settings(app: FastAPI, **changes: object) -> None:
    """Serve the app's requests with the test settings changed."""
    changed = get_settings().model_copy(update=changes)
    app.dependency_overrides[settings_dep] = lambda: changed


def test_oversize_upload_is_refused(
    app: FastAPI, conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    photo = ballot_photo(["tsikhanouskaya"])
    before = _photo_files()
    _settings(app, max_upload_bytes=len(photo) // 2)
    response = submit(photo)
    assert response.status_code == 413
    assert response.json()["detail"]["field"] == "photo"
    assert "larger than" in response.json()["detail"]["message"]  # cut off while reading
    assert _stored(conn) == (0, 0)
    assert _photo_files() == before


def test_decompression_bomb_is_refused(
    app: FastAPI, conn: psycopg.Connection, submit: Callable
) -> None:
    buffer = io.BytesIO()
    Image.new("L", (6000, 6000), 255).save(buffer, format="PNG")  # tiny file, 36 Mpx
    _settings(app, max_image_pixels=10_000_000)
    response = submit(buffer.getvalue())
    assert response.status_code == 413
    assert "too_many_pixels" in response.json()["detail"]["message"]
    assert _stored(conn) == (0, 0)


def test_missing_fields_are_named(
    client: TestClient, conn: psycopg.Connection, device_token: Callable
) -> None:
    voter = {"Authorization": f"Bearer {device_token('+375291234567')}"}
    response = client.post(
        "/v1/submissions",
        data={"election_id": "by-2020-president", "submission_id": str(uuid.uuid4())},
        files={"photo": ("b.jpg", b"x", "image/jpeg")},
        headers=voter,
    )
    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "precinct_id"
    not_multipart = client.post("/v1/submissions", json={"election_id": "x"}, headers=voter)
    assert not_multipart.status_code == 415
    assert _stored(conn) == (0, 0)


def test_same_id_from_another_voter_is_refused(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    sid, photo = str(uuid.uuid4()), ballot_photo(["tsikhanouskaya"])
    assert submit(photo, sid=sid, voter="+375291111111").status_code == 202
    assert submit(photo, sid=sid, voter="+375 29 111-11-11").status_code == 200  # same person
    other = submit(photo, sid=sid, voter="+375292222222")
    assert other.status_code == 422
    assert _stored(conn) == (1, 1)


def test_a_retry_while_the_first_is_in_flight_gets_409(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable, database: str
) -> None:
    sid = str(uuid.uuid4())
    with psycopg.connect(database) as first_request:
        # What the first request holds while it stores the photo.
        first_request.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", (sid,))
        response = submit(ballot_photo(["tsikhanouskaya"]), sid=sid)
        assert response.status_code == 409
        assert response.json()["detail"]["field"] == "submission_id"
    assert _stored(conn) == (0, 0)
    assert submit(ballot_photo(["tsikhanouskaya"]), sid=sid).status_code == 202


def test_identity_and_key_are_required(
    client: TestClient, conn: psycopg.Connection, ballot_photo: Callable, device_token: Callable
) -> None:
    fields = {
        "election_id": "by-2020-president",
        "precinct_id": "p1",
        "declared_choice": "tsikhanouskaya",
        "submission_id": str(uuid.uuid4()),
    }
    voter = {"Authorization": f"Bearer {device_token('+375291234567')}"}
    photo = {"photo": ("b.jpg", ballot_photo(["tsikhanouskaya"]), "image/jpeg")}
    nobody = client.post("/v1/submissions", data=fields, files=photo)
    assert nobody.status_code == 401 and nobody.json()["detail"]["field"] == "authorization"
    no_key = {k: v for k, v in fields.items() if k != "submission_id"}
    response = client.post("/v1/submissions", data=no_key, files=photo, headers=voter)
    assert response.status_code == 400
    assert response.json()["detail"]["field"] == "submission_id"
    bad = client.post(
        "/v1/submissions", data={**fields, "precinct_id": "p1\x00"}, files=photo, headers=voter
    )
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "precinct_id"
    assert _stored(conn) == (0, 0)


def test_the_stored_photo_is_dated_to_the_hour_like_its_row(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    assert submit(ballot_photo(["tsikhanouskaya"])).status_code == 202
    conn.commit()
    row = conn.execute(
        "SELECT photo_sha256, extract(epoch FROM received_hour)::bigint FROM submissions"
    ).fetchone()
    assert row is not None
    key, received_hour = row
    path = get_settings().photos_path / key[:2] / key[2:4] / key
    # The same hour as the row's (the clocks of the API and the database may differ
    # across an hour's turn by the few milliseconds between them).
    assert abs(path.stat().st_mtime_ns - received_hour * 10**9) in (0, 3_600 * 10**9)
    assert path.stat().st_atime_ns == path.stat().st_mtime_ns
    assert path.parent.stat().st_mtime_ns == path.stat().st_mtime_ns
