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
from api.submissions import abuse, repository
from api.submissions.duplicates import Candidate, check_and_record
from api.submissions.repository import Pending
from api.submissions.schemas import Reason, Status
from infra.storage import PhotoStore
from ocr.images import UNDECODABLE
from ocr.reader import BallotReading, Verdict, read_ballot, same_photo
from tally.repository import count_ballot


@dataclass(frozen=True)
class Decision:
    status: Status
    reasons: list[str]
    marks: list[str] | None


def decide(reading: BallotReading, declared: list[str]) -> Decision:
    """What a reading means for a submission. Pure.

    Only a valid ballot whose marks are exactly the declared choice counts; a
    disagreement goes to a person, and so does a photo the reader is unsure of.
    The reasons are the reader's verdict and its reasons, or the pipeline's Reason.
    """
    if reading.verdict == Verdict.VALID:
        if sorted(reading.marks) == sorted(declared):
            return Decision(Status.VERIFIED, [], reading.marks)
        return Decision(Status.REVIEW, [Reason.CHOICE_MISMATCH], reading.marks)
    if reading.verdict == Verdict.UNREADABLE:
        return Decision(Status.REVIEW, [reading.verdict, *reading.reasons], None)
    return Decision(Status.REJECTED, [reading.verdict, *reading.reasons], reading.marks or None)


def process_submission(
    conn: psycopg.Connection, store: PhotoStore, sid: uuid.UUID, template_cache: Path
) -> Status | None:
    """Read and decide one submission; returns its new status, None if already done."""
    pending = repository.pending(conn, sid)
    conn.commit()  # no transaction held open while the photo is read
    if pending is None:
        return None
    reading: BallotReading | None = None
    if not pending.owns_photo:
        decision = Decision(Status.REJECTED, [Reason.DUPLICATE_PHOTO], None)
    else:
        template = ballot_template(conn, pending.election_id, store, template_cache)
        orientation = repository.photo_orientation(conn, sid)
        conn.commit()
        reading = read_ballot(template, store.get(pending.photo_sha256), orientation=orientation)
        decision = decide(reading, pending.declared)
        if reading.verdict == Verdict.UNREADABLE and set(reading.reasons) & UNDECODABLE:
            # The upload was checked from its header only: pixels that do not decode
            # (a truncated or corrupt scan) are a file that is no photo, not a photo
            # a person could read.
            decision = Decision(Status.REJECTED, [reading.verdict, *reading.reasons], None)

    with conn.transaction():
        if not repository.lock_received(conn, sid):
            return None
        status = decision.status
        reasons = decision.reasons
        if _near_duplicate(conn, pending, sid, decision, reading):
            status, reasons = Status.REVIEW, [*reasons, Reason.NEAR_DUPLICATE_PHOTO]
        # A held submission (api.submissions.abuse) that would count waits for two
        # observers instead; one going to a person anyway shows them the hold.
        held = abuse.held(conn, sid) if status in (Status.VERIFIED, Status.REVIEW) else []
        if held and status == Status.VERIFIED:
            status, reasons = Status.QUARANTINED, [Reason.QUARANTINED, *held]
        elif held:
            reasons = [*reasons, *held]
        if status == Status.VERIFIED and pending.voter_key is not None:
            status = one_vote_per_voter(conn, pending, pending.voter_key, sid)
        if status == Status.VERIFIED:
            assert decision.marks is not None
            count_ballot(conn, pending.election_id, pending.precinct_id, decision.marks, +1)
        if status == Status.SUPERSEDED:
            reasons = [Reason.REPLACED_BY_LATER_SUBMISSION]
        repository.record_decision(
            conn,
            sid,
            status,
            reasons,
            decision.marks,
            reading.model_dump_json() if reading else None,
        )
    return status


def _near_duplicate(
    conn: psycopg.Connection,
    pending: Pending,
    sid: uuid.UUID,
    decision: Decision,
    reading: BallotReading | None,
) -> bool:
    """Whether the photo is an earlier read submission's photo re-used (re-saved,
    rescaled, cropped, screenshotted, photographed from a screen): the reader's
    same_photo, i.e. fingerprints within NEAR_DUPLICATE_BITS and the scene
    descriptors agreeing (ocr.scene). Then it does not count and
    a person decides, as a perceptual match is evidence, not certainty. Only photos
    that would count or go to a person are checked and recorded; rejected ones never.

    Takes the election's fingerprint lock before any voter lock (one order, no deadlock).
    """
    if reading is None or reading.fingerprint is None or decision.status == Status.REJECTED:
        return False

    def same(candidate: Candidate) -> bool:
        if candidate.reading is None:
            return False
        return same_photo(reading, BallotReading.model_validate(candidate.reading))

    match = check_and_record(
        conn,
        pending.election_id,
        sid,
        reading.fingerprint,
        confirm=same,
        scene=reading.scene,
        pose=reading.pose,
    )
    return match is not None


def one_vote_per_voter(
    conn: psycopg.Connection, pending: Pending, voter_key: bytes, sid: uuid.UUID
) -> Status:
    """A voter's latest verified submission counts; earlier ones are superseded."""
    repository.lock_voter(conn, pending.election_id, voter_key)
    if repository.later_verified_exists(conn, pending.election_id, voter_key, pending.seq):
        return Status.SUPERSEDED
    for replaced in repository.supersede_verified(conn, pending.election_id, voter_key, sid):
        count_ballot(conn, pending.election_id, replaced.precinct_id, replaced.marks, -1)
    return Status.VERIFIED


def give_up(conn: psycopg.Connection, sid: uuid.UUID, reason: Reason) -> None:
    """Send a submission that cannot be processed to a person."""
    repository.send_to_review(conn, sid, reason)
