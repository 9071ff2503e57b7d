"""What other domains read of the submissions tables (repository contract)."""

from __future__ import annotations

import uuid

import psycopg

from api.submissions import repository
from api.submissions.duplicates import check_and_record
from api.submissions.schemas import Reason, Status

ELECTION = "by-2020-president"


def _submission(conn: psycopg.Connection, status: Status, reasons: list[str]) -> uuid.UUID:
    sid = uuid.uuid4()
    photo = sid.hex * 2
    assert repository.insert(conn, sid, ELECTION, "p1", ["lukashenko"], "d", photo, sid.bytes * 2)
    repository.claim_photo(conn, ELECTION, photo, sid)
    if status != Status.RECEIVED:
        repository.record_decision(conn, sid, status, reasons, None, None)
    return sid


def test_counts_by_status_and_first_reason(conn: psycopg.Connection, loaded: str) -> None:
    waiting = [_submission(conn, Status.RECEIVED, []) for _ in range(2)]
    _submission(conn, Status.VERIFIED, [])
    _submission(conn, Status.REVIEW, [Reason.CHOICE_MISMATCH])
    _submission(conn, Status.REJECTED, ["blank", "no marks"])
    _submission(conn, Status.REJECTED, [Reason.DUPLICATE_PHOTO])
    _submission(conn, Status.SUPERSEDED, [Reason.REPLACED_BY_LATER_SUBMISSION])

    assert repository.count_by_status(conn, ELECTION) == {
        "received": 2,
        "rejected": 2,
        "review": 1,
        "superseded": 1,
        "verified": 1,
    }
    assert repository.not_counted_by_reason(conn, ELECTION) == {
        "blank": 1,
        "choice_mismatch": 1,
        "duplicate_photo": 1,
    }
    assert list(repository.not_counted_by_reason(conn, ELECTION)) == sorted(
        repository.not_counted_by_reason(conn, ELECTION)
    )
    assert repository.progress(conn, ELECTION) == (7, 5)
    assert len(waiting) == 2
    assert repository.intake(conn, 0) == (2, 7, 7)  # seq restarts at 1 in each test
    assert repository.intake(conn, 5) == (2, 2, 7)
    assert repository.intake(conn, 7) == (2, 0, 7)
    assert repository.count_by_status(conn, "another-election") == {}
    conn.rollback()


def test_clear_election_deletes_every_row_of_the_election(
    conn: psycopg.Connection, loaded: str
) -> None:
    first = _submission(conn, Status.VERIFIED, [])
    second = _submission(conn, Status.REVIEW, [Reason.NEAR_DUPLICATE_PHOTO])
    assert check_and_record(conn, ELECTION, first, "9e3779b97f4a7c15") is None
    assert check_and_record(conn, ELECTION, second, "9e3779b97f4a7c14") is not None
    repository.clear_election(conn, ELECTION)
    for table in ("submissions", "photo_owners", "photo_fingerprints", "photo_fingerprint_bands"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
    conn.rollback()


def test_received_pages_follow_the_order_of_arrival(conn: psycopg.Connection, loaded: str) -> None:
    sids = [_submission(conn, Status.RECEIVED, []) for _ in range(5)]
    _submission(conn, Status.VERIFIED, [])
    first = repository.received_page(conn, 0, 3)
    rest = repository.received_page(conn, first[-1].seq, 3)
    assert [r.submission_id for r in first + rest] == sids
    assert repository.received_page(conn, rest[-1].seq, 3) == []
    conn.rollback()
