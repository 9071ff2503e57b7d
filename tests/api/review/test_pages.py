"""The review pages and photos as an observer sees them: every page renders in each
language, shows the evidence, and never the voter's identity."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable

import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.submissions.schemas import Status
from tally import repository as tallies

from .conftest import ELECTION, MakeSubmission

VOTER = b"\x01\x02voter-key-bytes-that-are-secret!"


def _identity_marks(sid: object) -> list[str]:
    """Every spelling of the voter's identity a leak could take."""
    return [
        VOTER.hex(),
        base64.b64encode(VOTER).decode(),
        "voter-key-bytes",
        f"digest-{sid}",
        "voter_key",
        "request_digest",
    ]


@pytest.fixture
def evidence(
    conn: psycopg.Connection, make_submission: MakeSubmission, flags: dict[str, int]
) -> dict[str, object]:
    original = make_submission(
        status=Status.VERIFIED,
        marks=["tsikhanouskaya"],
        reasons=[],
        voter=VOTER,
        fingerprint=0xF0F0,
    )
    near = make_submission(
        reasons=["near_duplicate_photo"],
        marks=["tsikhanouskaya"],
        voter=VOTER,
        fingerprint=0xF0F1,
        near_duplicate_of=original,
        distance=1,
    )
    mismatch = make_submission(voter=VOTER)
    return {"original": original, "near": near, "mismatch": mismatch, "flags": flags}


@pytest.mark.parametrize("lang", ["ru", "be", "en"])
def test_every_review_page_renders_in_each_language_without_the_voters_identity(
    client: TestClient,
    account: Callable[..., dict[str, str]],
    evidence: dict[str, object],
    lang: str,
) -> None:
    observer = account("observer")
    near, mismatch = evidence["near"], evidence["mismatch"]
    pages = [
        "/review",
        "/review/submissions",
        "/review/submissions?reason=near_duplicate_photo&district=District+1",
        f"/review/submissions/{near}",
        f"/review/submissions/{mismatch}",
        "/review/flags",
        "/review/flags?kind=proof&status=open",
        f"/review/stations/{ELECTION}/p1",
        "/review/decisions",
    ]
    for path in pages:
        answer = client.get(path, params={"lang": lang}, headers=observer)
        assert answer.status_code == 200, (path, answer.text[:500])
        assert f'<html lang="{lang}">' in answer.text
        for secret in _identity_marks(near) + _identity_marks(mismatch):
            assert secret not in answer.text, (path, secret)
    jsons = [
        "/v1/review/submissions",
        f"/v1/review/submissions/{near}",
        f"/v1/review/submissions/{mismatch}",
        "/v1/review/flags",
        "/v1/review/decisions",
    ]
    for path in jsons:
        answer = client.get(path, headers=observer)
        assert answer.status_code == 200, path
        for secret in _identity_marks(near) + _identity_marks(mismatch):
            assert secret not in answer.text, (path, secret)


def test_the_submission_page_shows_the_photo_beside_the_reading_and_the_near_duplicate(
    client: TestClient, account: Callable[..., dict[str, str]], evidence: dict[str, object]
) -> None:
    observer = account("observer")
    near, original = evidence["near"], evidence["original"]
    detail = client.get(f"/v1/review/submissions/{near}", headers=observer).json()
    assert detail["photo_url"] == f"/review/photos/{near}"
    assert detail["near_duplicate_of"] == str(original)
    assert detail["near_duplicate_distance"] == 1
    assert detail["declared_choice"] == ["tsikhanouskaya"]
    assert detail["verdict"] == "valid"
    assert set(detail) >= {"marks", "reasons", "reader_reasons", "confidence"}
    page = client.get(f"/review/submissions/{near}", params={"lang": "en"}, headers=observer).text
    assert f'src="/review/photos/{near}"' in page
    assert f'src="/review/photos/{original}"' in page
    assert 'value="count_read"' in page and 'value="reject"' in page


def test_photos_and_thumbnails_are_served_to_observers(
    client: TestClient, account: Callable[..., dict[str, str]], evidence: dict[str, object]
) -> None:
    observer, admin = account("observer"), account("admin")
    near = evidence["near"]
    for headers in (observer, admin):
        photo = client.get(f"/review/photos/{near}", headers=headers)
        assert photo.status_code == 200
        assert photo.headers["content-type"] == "image/jpeg"
        assert "no-store" in photo.headers["cache-control"]
        thumb = client.get(f"/review/photos/{near}/thumbnail", headers=headers)
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(thumb.content)).format == "JPEG"
    assert (
        client.get(
            "/review/photos/00000000-0000-0000-0000-000000000000", headers=observer
        ).status_code
        == 404
    )


def test_a_thumbnail_is_at_most_320_pixels() -> None:
    from api.review.routes import shrink

    big = Image.new("RGB", (2000, 1500), "white")
    out = io.BytesIO()
    big.save(out, "JPEG")
    small = Image.open(io.BytesIO(shrink(out.getvalue())))
    assert max(small.size) <= 320


def test_the_station_page_sets_the_evidence_side_by_side(
    client: TestClient,
    account: Callable[..., dict[str, str]],
    conn: psycopg.Connection,
    evidence: dict[str, object],
) -> None:
    observer = account("observer")
    tallies.count_ballot(conn, ELECTION, "p1", ["tsikhanouskaya"], 1)
    conn.commit()
    page = client.get(
        f"/review/stations/{ELECTION}/p1", params={"lang": "en"}, headers=observer
    ).text
    flags = evidence["flags"]
    assert isinstance(flags, dict)
    # Official figures (lukashenko 300), the photo tally, thumbnails, flags with detail.
    assert ">300<" in page
    assert f'src="/review/photos/{evidence["original"]}/thumbnail"' in page
    assert f'id="flag-{flags["p1:crowd_exceeds_official"]}"' in page
    # The crowd flag's sentence in the page's language, from its numbers.
    assert "3 verified ballots for" in page and "the official protocol gives it 1." in page
    russian = client.get(
        f"/review/stations/{ELECTION}/p1", params={"lang": "ru"}, headers=observer
    ).text
    assert "3 проверенных бюллетеня за" in russian and "протоколу — 1." in russian
    assert "District" in page and "%" in page
    # Turnout: 306 cast of 1000 registered at p1.
    assert "30.6%" in page


def test_an_analyst_gets_no_review_page(
    client: TestClient, account: Callable[..., dict[str, str]], evidence: dict[str, object]
) -> None:
    analyst = account("analyst")
    for path in (
        "/review",
        "/review/submissions",
        f"/review/stations/{ELECTION}/p1",
        "/v1/review/flags",
    ):
        assert client.get(path, headers=analyst).status_code == 403, path


def test_json_decisions_name_observers_not_voters(
    client: TestClient, account: Callable[..., dict[str, str]], evidence: dict[str, object]
) -> None:
    first = account("observer")
    mismatch = evidence["mismatch"]
    client.post(
        f"/review/submissions/{mismatch}/decision",
        data={"action": "count_read"},
        headers=first,
        follow_redirects=False,
    )
    proposals = client.get("/v1/review/decisions", headers=first).json()
    assert [p["proposer"] for p in proposals] == ["observer1"]
    assert "voter" not in json.dumps(proposals)
