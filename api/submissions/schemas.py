"""The submissions domain's vocabulary and shapes: the statuses and reasons stored in
``submissions``, what the upload receives, and what the API answers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, Field


class Status(StrEnum):
    """Where a submission stands (the ``submissions.status`` column)."""

    RECEIVED = "received"  # stored, waiting to be read
    VERIFIED = "verified"  # read, matches the declared choice: counts
    REVIEW = "review"  # a person decides
    REJECTED = "rejected"  # does not count
    SUPERSEDED = "superseded"  # the same voter's later verified submission counts instead
    # would count, but arrived beyond a quarantine threshold (api.submissions.abuse):
    # does not count until two observers approve it in the review
    QUARANTINED = "quarantined"


class Reason(StrEnum):
    """Every reason the pipeline itself writes into ``submissions.reasons``. The
    others are the reader's: its verdict (``unreadable``, ``blank``, ...) and the
    reasons it gives (``ocr.reader.BallotReading``)."""

    CHOICE_MISMATCH = "choice_mismatch"  # a valid ballot, not marked as declared
    DUPLICATE_PHOTO = "duplicate_photo"  # the very bytes of an earlier submission's photo
    NEAR_DUPLICATE_PHOTO = "near_duplicate_photo"  # an earlier photo re-saved, rescaled, cropped
    PROCESSING_FAILED = "processing_failed"  # every attempt to read it failed
    REPLACED_BY_LATER_SUBMISSION = "replaced_by_later_submission"  # with Status.SUPERSEDED
    # Status.QUARANTINED's first reason; the hold's reasons follow it:
    QUARANTINED = "quarantined"
    VOTER_BURST = "voter_burst"  # the voter's submissions within the hour beyond the plausible
    NETWORK_BURST = "network_burst"  # one network sent many to one station in a short window
    STATION_BURST = "station_burst"  # more arrivals at a station than its roll makes plausible


# Why a submission is held (api.submissions.abuse), in the order a hold lists them.
HOLD_REASONS: tuple[Reason, ...] = (Reason.VOTER_BURST, Reason.NETWORK_BURST, Reason.STATION_BURST)


class SubmissionStatus(BaseModel):
    """``GET /v1/submissions/{id}``: a submission's state."""

    submission_id: uuid.UUID
    election_id: str
    precinct_id: str
    status: Status
    reasons: list[str]
    marks: list[str] | None


class SubmissionAccepted(BaseModel):
    """The upload's answer (202 when new, 200 for a retry of the same request)."""

    submission_id: uuid.UUID
    status: Status
    reasons: list[str]
    status_url: str


@dataclass(frozen=True)
class NewSubmission:
    """An upload's fields, as received (checked by ``service.accept``)."""

    election_id: str
    precinct_id: str
    declared_choice: list[str]
    submission_id: str
    photo: bytes
    voter_key: bytes  # the verified voter's keyed hash, from their device token


class SubmissionForm(BaseModel):
    """The upload's ``multipart/form-data`` body. Documentation only (OpenAPI): the
    route parses the body itself, in memory and size-capped (``routes.read_form``).
    Who sends it is not a field: the voter's device token (``Authorization: Bearer
    golos_vt_...``, from ``POST /v1/elections/{id}/verification/{challenge_id}``)."""

    photo: bytes = Field(
        description="The ballot photo (JPEG, PNG, or HEIC/HEIF as iPhones take them). Its "
        "metadata is stripped before it is stored; the size is capped by "
        "GOLOS_MAX_UPLOAD_BYTES."
    )
    election_id: str = Field(
        description="The election's id, e.g. by-2020-president: the one the device token "
        "was verified for."
    )
    precinct_id: str = Field(description="The polling station's id within the election.")
    declared_choice: str = Field(
        description="The option ids the voter marked, comma-separated, e.g. tsikhanouskaya."
    )
    submission_id: uuid.UUID = Field(
        description="A UUID the client generates once per ballot and re-sends on every "
        "retry (idempotency key): a retry is answered with the first result."
    )
