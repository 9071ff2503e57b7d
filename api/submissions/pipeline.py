"""Reading a received photo and deciding what the submission proves.

Idempotent: a submission leaves 'received' once, under a row lock, so a job run
twice (a retried job, two workers) has the effect of running once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from api.elections.service import ballot_template
from api.submissions.duplicates import NEAR_DUPLICATE, Candidate, check_and_record
from api.submissions.service import Status
from infra.storage import PhotoStore
from ocr.reader import BallotReading, read_ballot, same_photo
from tally.service import count_ballot


@dataclass(frozen=True)
class Decision:
    status: Status
    reasons: list[str]
    marks: list[str] | None


def decide(reading: BallotReading, declared: list[str]) -> Decision:
    """What a reading means for a submission. Pure.

    Only a valid ballot whose marks are exactly the declared choice counts; a
    disagreement goes to a person, and so does a photo the reader is unsure of.
    """
    if reading.verdict == "valid":
        if sorted(reading.marks) == sorted(declared):
            return Decision("verified", [], reading.marks)
        return Decision("review", ["choice_mismatch"], reading.marks)
    if reading.verdict == "unreadable":
        return Decision("review", ["unreadable", *reading.reasons], None)
    reasons = [reading.verdict, *reading.reasons]
    return Decision("rejected", reasons, reading.marks or None)


@dataclass(frozen=True)
class _Pending:
    election_id: str
    precinct_id: str
    declared: list[str]
    photo_sha256: str
    voter_key: bytes | None
    seq: int
    owns_photo: bool


def _pending(conn: psycopg.Connection, sid: uuid.UUID) -> _Pending | None:
    row = conn.execute(
        """
        SELECT s.election_id, s.precinct_id, s.declared_choice, s.photo_sha256, s.voter_key,
               s.seq,
               o.submission_id = s.id
        FROM submissions s
        LEFT JOIN photo_owners o
               ON o.election_id = s.election_id AND o.photo_sha256 = s.photo_sha256
        WHERE s.id = %s AND s.status = 'received'
        """,
        (sid,),
    ).fetchone()
    if row is None:
        return None
    return _Pending(row[0], row[1], list(row[2]), row[3], row[4], row[5], bool(row[6]))


def process_submission(
    conn: psycopg.Connection, store: PhotoStore, sid: uuid.UUID, template_cache: Path
) -> Status | None:
    """Read and decide one submission; returns its new status, None if already done."""
    pending = _pending(conn, sid)
    conn.commit()  # no transaction held open while the photo is read
    if pending is None:
        return None
    reading: BallotReading | None = None
    if not pending.owns_photo:
        decision = Decision("rejected", ["duplicate_photo"], None)
    else:
        template = ballot_template(conn, pending.election_id, store, template_cache)
        conn.commit()
        reading = read_ballot(template, store.get(pending.photo_sha256))
        decision = decide(reading, pending.declared)

    with conn.transaction():
        locked = conn.execute(
            "SELECT 1 FROM submissions WHERE id = %s AND status = 'received' FOR UPDATE",
            (sid,),
        ).fetchone()
        if locked is None:
            return None
        status = decision.status
        reasons = decision.reasons
        if _near_duplicate(conn, pending, sid, decision, reading):
            status, reasons = "review", [*reasons, NEAR_DUPLICATE]
        if status == "verified" and pending.voter_key is not None:
            status = _one_vote_per_voter(conn, pending, sid)
        if status == "verified":
            assert decision.marks is not None
            count_ballot(conn, pending.election_id, pending.precinct_id, decision.marks, +1)
        conn.execute(
            """
            UPDATE submissions SET status = %s, reasons = %s, marks = %s, reading = %s
            WHERE id = %s
            """,
            (
                status,
                reasons if status != "superseded" else ["replaced_by_later_submission"],
                decision.marks,
                reading.model_dump_json() if reading else None,
                sid,
            ),
        )
    return status


def _near_duplicate(
    conn: psycopg.Connection,
    pending: _Pending,
    sid: uuid.UUID,
    decision: Decision,
    reading: BallotReading | None,
) -> bool:
    """Whether the photo is an earlier read submission's photo re-used (re-saved,
    rescaled, cropped): the reader's same_photo, i.e. fingerprints within
    NEAR_DUPLICATE_BITS and the page at the same angles. Then it does not count and
    a person decides, as a perceptual match is evidence, not certainty. Only photos
    that would count or go to a person are checked and recorded; rejected ones never.

    Takes the election's fingerprint lock before any voter lock (one order, no deadlock).
    """
    if reading is None or reading.fingerprint is None or decision.status == "rejected":
        return False

    def same(candidate: Candidate) -> bool:
        if candidate.reading is None:
            return False
        return same_photo(reading, BallotReading.model_validate(candidate.reading))

    match = check_and_record(conn, pending.election_id, sid, reading.fingerprint, confirm=same)
    return match is not None


def _one_vote_per_voter(conn: psycopg.Connection, pending: _Pending, sid: uuid.UUID) -> Status:
    """A voter's latest verified submission counts; earlier ones are superseded."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s || encode(%s, 'hex'), 0))",
        (pending.election_id, pending.voter_key),
    )
    later = conn.execute(
        """
        SELECT 1 FROM submissions
        WHERE election_id = %s AND voter_key = %s AND status = 'verified' AND seq > %s
        """,
        (pending.election_id, pending.voter_key, pending.seq),
    ).fetchone()
    if later is not None:
        return "superseded"
    replaced = conn.execute(
        """
        UPDATE submissions SET status = 'superseded', reasons = '{replaced_by_later_submission}'
        WHERE election_id = %s AND voter_key = %s AND status = 'verified' AND id <> %s
        RETURNING precinct_id, marks
        """,
        (pending.election_id, pending.voter_key, sid),
    ).fetchall()
    for precinct_id, marks in replaced:
        count_ballot(conn, pending.election_id, precinct_id, marks, -1)
    return "verified"


def give_up(conn: psycopg.Connection, sid: uuid.UUID, reason: str) -> None:
    """Send a submission that cannot be processed to a person."""
    conn.execute(
        "UPDATE submissions SET status = 'review', reasons = %s"
        " WHERE id = %s AND status = 'received'",
        ([reason], sid),
    )
