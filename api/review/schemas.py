"""The review domain's vocabulary and shapes: what observers may decide, the states
of a decision, and what the queues and pages show.

Nothing here carries a voter's identity: no voter key, no request digest, no phone
number. A submission is named by its id, a station by its id, a person by their
username.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from tally.vocab import ReviewStatus

PAGE_SIZE = 50
NOTE_MAX = 2000


class SubjectKind(StrEnum):
    SUBMISSION = "submission"
    FLAG = "flag"


class Action(StrEnum):
    """Every decision an observer can take (``review_decisions.action``)."""

    COUNT_READ = "count_read"  # count the ballot as the reader read it
    COUNT_DECLARED = "count_declared"  # count it as the voter declared it
    REJECT = "reject"  # it does not count
    CONFIRM = "confirm"  # the flag stands
    DISMISS = "dismiss"  # the flag is wrong
    MORE_EVIDENCE = "more_evidence"  # the flag needs more evidence before a decision


SUBMISSION_ACTIONS: tuple[Action, ...] = (Action.COUNT_READ, Action.COUNT_DECLARED, Action.REJECT)
FLAG_ACTIONS: tuple[Action, ...] = (Action.CONFIRM, Action.DISMISS, Action.MORE_EVIDENCE)
# What a final decision on a flag makes its review status.
FLAG_STATUS: dict[Action, ReviewStatus] = {
    Action.CONFIRM: ReviewStatus.CONFIRMED,
    Action.DISMISS: ReviewStatus.DISMISSED,
    Action.MORE_EVIDENCE: ReviewStatus.MORE_EVIDENCE,
}


class RejectReason(StrEnum):
    """Why a reviewer rejects a submission: the fixed list the form offers, written
    into ``submissions.reasons`` (the voter's status page shows it)."""

    PHOTO_REUSED = "photo_reused"  # another submission's photo, re-saved or re-shot
    NOT_A_BALLOT = "not_a_ballot"  # not this election's ballot paper
    UNREADABLE = "unreadable"  # a person cannot read the marks either
    INVALID_MARKING = "invalid_marking"  # spoilt: several marks, no mark, writing
    WRONG_STATION = "wrong_station"  # evidence the ballot is from another station
    OTHER = "other"  # explained in the note


class State(StrEnum):
    """Where a decision stands (``review_decisions.state``)."""

    PROPOSED = "proposed"  # awaits a second observer (two-person rule)
    FINAL = "final"
    DISAGREED = "disagreed"  # a second observer disagreed: the subject is open again
    OVERRIDDEN = "overridden"  # an admin decided otherwise
    STALE = "stale"  # the subject changed under the proposal


class AuditAction(StrEnum):
    """What the review writes into the audit log (api.audit)."""

    PROPOSE = "review.propose"
    AGREE = "review.agree"
    DISAGREE = "review.disagree"
    FINAL = "review.final"
    OVERRIDE = "review.override"
    STALE = "review.stale"  # a proposal voided because its subject changed


def subject_of(kind: SubjectKind, subject_id: uuid.UUID | int) -> str:
    """The audit log's and the decisions table's name of a subject. Pure."""
    return f"{kind}:{subject_id}"


class Decision(BaseModel):
    """One row of ``review_decisions``."""

    id: int
    election_id: str
    precinct_id: str
    subject: str
    action: Action
    reason: str | None
    note: str
    evidence: dict[str, object]
    state: State
    proposed_by: int
    proposer: str
    proposed_at: datetime
    decided_by: int | None
    decider: str | None
    decided_note: str | None
    decided_at: datetime | None
    override: bool

    @property
    def subject_kind(self) -> SubjectKind:
        return SubjectKind(self.subject.split(":", 1)[0])

    @property
    def subject_id(self) -> str:
        return self.subject.split(":", 1)[1]


class Outcome(BaseModel):
    """What a decision request did (also the JSON answer of an action)."""

    decision_id: int
    subject: str
    action: Action
    state: State
    override: bool = False
    # The submission's status after a final decision on it (verified, superseded,
    # rejected), or the flag's review status.
    result: str | None = None
    repeated: bool = False  # the same request again: nothing new was done


class SubmissionItem(BaseModel):
    """A submission in the review queue (no voter identity)."""

    submission_id: uuid.UUID
    precinct_id: str
    region: str
    district: str
    reasons: list[str]
    declared_choice: list[str]
    marks: list[str] | None
    near_duplicate_distance: int | None
    awaiting: Action | None = None  # a proposal awaits a second observer


class SubmissionPage(BaseModel):
    election_id: str
    items: list[SubmissionItem]
    next_after: str | None = Field(description="pass as `after` for the next page")


class FlagItem(BaseModel):
    id: int
    precinct_id: str
    region: str
    district: str
    flag: str
    kind: str
    option: str
    source: str
    crowd: int | None
    official: int | None
    excess: int | None
    statistic: float | None
    p_value: float | None
    q_value: float | None
    detail: str
    review_status: str
    awaiting: Action | None = None
    # How many distinct verified voters stand behind ``crowd`` (crowd_exceeds_official
    # from the platform's photos); None for other flags.
    identities: int | None = None


class FlagPage(BaseModel):
    election_id: str
    items: list[FlagItem]
    next_after: str | None


class SubmissionDetail(BaseModel):
    """One submission in review as a reviewer sees it: the photo's URL, the reader's
    reading, the declared choice. Never the voter's identity."""

    submission_id: uuid.UUID
    election_id: str
    precinct_id: str
    region: str
    district: str
    station_name: str
    status: str
    reasons: list[str]
    declared_choice: list[str]
    marks: list[str] | None
    verdict: str | None
    confidence: float | None
    reader_reasons: list[str]
    photo_url: str
    near_duplicate_of: uuid.UUID | None
    near_duplicate_distance: int | None
    near_duplicate_photo_url: str | None
    decisions: list[Decision]
