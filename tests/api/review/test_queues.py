"""The two review queues: filters, order (strongest evidence first), pagination."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.review import service
from api.submissions.schemas import Status

from .conftest import ELECTION, MakeSubmission


def test_submissions_queue_puts_near_duplicates_first_by_distance_then_mismatch_then_unreadable(
    conn: psycopg.Connection, make_submission: MakeSubmission
) -> None:
    unreadable = make_submission(marks=[], reasons=["unreadable", "too_blurry"])
    mismatch_old = make_submission()
    mismatch_new = make_submission()
    original = make_submission(
        status=Status.VERIFIED, marks=["tsikhanouskaya"], reasons=[], fingerprint=0x1234
    )
    far = make_submission(
        reasons=["near_duplicate_photo"],
        marks=["tsikhanouskaya"],
        fingerprint=0x1237,
        near_duplicate_of=original,
        distance=2,
    )
    close = make_submission(
        reasons=["choice_mismatch", "near_duplicate_photo"],
        fingerprint=0x1234,
        near_duplicate_of=original,
        distance=0,
    )
    failed = make_submission(marks=[], reasons=["processing_failed"])

    page = service.submission_queue(conn, ELECTION)

    assert [i.submission_id for i in page.items] == [
        close,
        far,
        mismatch_old,
        mismatch_new,
        unreadable,
        failed,
    ]
    assert [i.near_duplicate_distance for i in page.items[:3]] == [0, 2, None]
    assert page.next_after is None


def test_submissions_queue_filters_by_region_district_and_reason(
    conn: psycopg.Connection, make_submission: MakeSubmission
) -> None:
    # The small election: p1 and p3 are in District 1, p2 in District 0.
    at_p1 = make_submission(precinct="p1")
    at_p2 = make_submission(precinct="p2")
    unreadable_p3 = make_submission(precinct="p3", marks=[], reasons=["unreadable"])

    def ids(**filters: Any) -> set[object]:
        return {i.submission_id for i in service.submission_queue(conn, ELECTION, **filters).items}

    assert ids(district="District 1") == {at_p1, unreadable_p3}
    assert ids(district="District 0") == {at_p2}
    assert ids(region="Region") == {at_p1, at_p2, unreadable_p3}
    assert ids(region="Nowhere") == set()
    assert ids(reason="unreadable") == {unreadable_p3}
    assert ids(reason="choice_mismatch", district="District 1") == {at_p1}


def test_submissions_queue_pages_through_every_item_once(
    conn: psycopg.Connection, make_submission: MakeSubmission
) -> None:
    original = make_submission(
        status=Status.VERIFIED, marks=["tsikhanouskaya"], reasons=[], fingerprint=0xABC
    )
    made = [make_submission() for _ in range(4)]
    made += [make_submission(marks=[], reasons=["unreadable"]) for _ in range(3)]
    made += [
        make_submission(
            reasons=["near_duplicate_photo"],
            fingerprint=0xABC + d,
            near_duplicate_of=original,
            distance=d,
        )
        for d in (1, 3)
    ]
    whole = [i.submission_id for i in service.submission_queue(conn, ELECTION, limit=100).items]

    seen = []
    after = None
    for _ in range(10):
        page = service.submission_queue(conn, ELECTION, after=after, limit=2)
        seen += [i.submission_id for i in page.items]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == whole
    assert sorted(map(str, seen)) == sorted(map(str, made))


def test_flags_queue_orders_proof_by_excess_then_statistical_by_q_value(
    conn: psycopg.Connection, flags: dict[str, int]
) -> None:
    page = service.flag_queue(conn, ELECTION)

    assert [i.id for i in page.items] == [
        flags["p2:crowd_exceeds_official"],  # excess 5
        flags["p1:crowd_exceeds_official"],  # excess 2
        flags["p3:turnout_outlier"],  # q 0.02
        flags["p1:integer_percent"],  # q 0.2
    ]
    assert page.items[0].excess == 5


def test_flags_queue_filters_and_pages(conn: psycopg.Connection, flags: dict[str, int]) -> None:
    def ids(**filters: Any) -> list[int]:
        return [i.id for i in service.flag_queue(conn, ELECTION, **filters).items]

    assert ids(kind="statistical") == [flags["p3:turnout_outlier"], flags["p1:integer_percent"]]
    assert ids(flag="integer_percent") == [flags["p1:integer_percent"]]
    assert ids(district="District 0") == [flags["p2:crowd_exceeds_official"]]
    assert ids(region="Region", kind="proof", status="open") == [
        flags["p2:crowd_exceeds_official"],
        flags["p1:crowd_exceeds_official"],
    ]
    assert ids(status="confirmed") == []

    first = service.flag_queue(conn, ELECTION, limit=3)
    assert first.next_after is not None
    rest = service.flag_queue(conn, ELECTION, after=first.next_after, limit=3)
    assert [i.id for i in first.items + rest.items] == ids()
    assert rest.next_after is None


def test_queues_answer_json_with_the_same_filters(
    client: TestClient, account: object, flags: dict[str, int], make_submission: MakeSubmission
) -> None:
    observer = account("observer")  # type: ignore[operator]
    make_submission(precinct="p2")
    answer = client.get(
        "/v1/review/flags", params={"kind": "proof", "district": "District 0"}, headers=observer
    )
    assert answer.status_code == 200, answer.text
    assert [i["id"] for i in answer.json()["items"]] == [flags["p2:crowd_exceeds_official"]]
    answer = client.get(
        "/v1/review/submissions", params={"reason": "choice_mismatch"}, headers=observer
    )
    assert answer.status_code == 200
    assert len(answer.json()["items"]) == 1


@pytest.mark.parametrize("after", ["x", "1.2", "nan_x"])
def test_a_forged_cursor_is_a_bad_request(client: TestClient, account: object, after: str) -> None:
    observer = account("observer")  # type: ignore[operator]
    answer = client.get("/v1/review/submissions", params={"after": after}, headers=observer)
    assert answer.status_code == 400
    assert answer.json()["detail"]["field"] == "after"


NUL_FILTERS = (
    [
        ("/v1/review/submissions", field)
        for field in ("election", "region", "district", "reason", "after")
    ]
    + [
        ("/v1/review/flags", field)
        for field in ("election", "region", "district", "flag", "kind", "status", "after")
    ]
    + [("/v1/review/decisions", "election")]
)


@pytest.mark.parametrize(("path", "field"), NUL_FILTERS)
def test_a_nul_in_a_queue_filter_is_refused_naming_the_filter(
    client: TestClient, account: object, path: str, field: str
) -> None:
    observer = account("observer")  # type: ignore[operator]
    answer = client.get(path, params={field: "p1\x00"}, headers=observer)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == {
        "field": field,
        "message": "must not contain a NUL character",
    }


@pytest.mark.parametrize("path", ["/review/submissions", "/review/flags"])
def test_a_nul_in_a_queue_page_filter_is_a_page_naming_the_filter(
    client: TestClient, account: object, path: str
) -> None:
    observer = account("observer")  # type: ignore[operator]
    answer = client.get(
        path,
        params={"region": "Minsk\x00", "lang": "en"},
        headers={**observer, "Accept": "text/html"},
    )
    assert answer.status_code == 422
    assert "region" in answer.text and "NUL" in answer.text
