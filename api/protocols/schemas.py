"""The protocols domain's vocabulary and shapes: the states stored in
``protocol_photos`` and ``protocol_fields``, the reader's output
(``ProtocolReading``, protocol-template/1 "Reading a photo"), what the upload
receives and what the API answers.

Nothing here carries a voter's identity: an uploader is named by nothing, a
transcriber by the count of people who typed a figure (their names are in the
audit log, for admins).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PhotoStatus(StrEnum):
    """Where a protocol photo stands (``protocol_photos.status``): received, then the
    reader's verdict."""

    RECEIVED = "received"  # stored, waiting to be read
    READ = "read"  # every field has a value (given or to be typed)
    PARTIAL = "partial"  # some fields went to people
    UNREADABLE = "unreadable"  # the reader could not align it to the form
    NOT_A_PROTOCOL = "not_a_protocol"


class Verdict(StrEnum):
    """The reader's verdict (protocol-template/1)."""

    READ = "read"
    PARTIAL = "partial"
    NOT_A_PROTOCOL = "not_a_protocol"
    UNREADABLE = "unreadable"


class PhotoReason(StrEnum):
    """Reasons this domain writes into ``protocol_photos.reasons`` (the reader's own
    reasons follow them)."""

    # The reader read another station's number on the form: the photo's figures are
    # not this station's, and nobody is asked to type them.
    PRECINCT_MISMATCH = "precinct_mismatch"
    # The reading's own checks fail: every field goes to people (never corrected).
    CHECKS_FAIL = "checks_fail"
    # A copy (re-saved, rescaled, cropped, brightened, screenshotted) of a photo of
    # this station read earlier (ocr.photo_copy): it counts as that photo, not as a
    # second one confirming it (``duplicate_of`` names it).
    COPY_OF_EARLIER_PHOTO = "copy_of_earlier_photo"


class FieldState(StrEnum):
    """Where one field of one photo stands (``protocol_fields.state``)."""

    GIVEN = "given"  # the machine's confident value, in a reading whose checks hold
    TRANSCRIBING = "transcribing"  # waiting for two people's entries
    NEEDS_THIRD = "needs_third"  # two entries disagree: a third person decides
    DISPUTED = "disputed"  # three different entries: an admin decides
    AGREED = "agreed"  # people agreed on the value (or an admin decided it)
    # People agreed that nobody can read it (two "illegible" entries, or an admin's
    # decision): the field has no value; shown as "illegible", never as a number.
    ILLEGIBLE = "illegible"


# The states in which a field waits for people's entries, and how many it needs then.
ENTRIES_NEEDED: dict[FieldState, int] = {FieldState.TRANSCRIBING: 2, FieldState.NEEDS_THIRD: 3}
# The states whose value (or its absence) is final.
SETTLED = frozenset({FieldState.GIVEN, FieldState.AGREED, FieldState.ILLEGIBLE})


class FieldSource(StrEnum):
    """Where a photo's figure for a field comes from (``protocol_fields.source``)."""

    MACHINE = "machine"
    TRANSCRIPTION = "transcription"
    DECISION = "decision"  # an admin's, on a disputed field (audit-logged)


class SourceKind(StrEnum):
    """The kinds of source a station's reconciled figure lists (provenance)."""

    FILE = "file"  # the imported official-results/1 file
    MACHINE = "machine"  # the machine reading of one photo
    TRANSCRIPTION = "transcription"  # typed by observers from one photo
    DECISION = "decision"  # an admin's decision on one photo's disputed field


class FigureStatus(StrEnum):
    """A reconciled figure's standing."""

    CONFIRMED = "confirmed"  # two or more sources, all agreeing
    SINGLE = "single"  # one source only
    CONFLICT = "conflict"  # sources disagree: no figure (conflicting_protocols)
    PENDING = "pending"  # no source yet; a photo's field is still with people
    ILLEGIBLE = "illegible"  # the only sources say nobody can read it
    NONE = "none"  # no source at all


class AuditAction(StrEnum):
    """The audit log's actions of this domain."""

    TRANSCRIBE = "protocol.transcribe"
    DECIDE = "protocol.decide"


# -- the reader's output ------------------------------------------------------------

Point = tuple[float, float]


class FieldReading(BaseModel):
    """One field as the reader read it."""

    model_config = ConfigDict(extra="ignore")

    value: int | None = Field(default=None, ge=0)  # given only when confident
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    # Where the field's cell is: 4 [x, y] points (clockwise from top left) in the
    # pixels of the stored photo made upright (its EXIF orientation applied, as
    # ``ocr.images.decode_gray(..., orientation=)`` decodes it). Optional.
    quad: tuple[Point, Point, Point, Point] | None = None


class CheckReading(BaseModel):
    """One of the template's checks on the reading: holds, fails, or None when a
    figure it needs is missing."""

    model_config = ConfigDict(extra="ignore")

    check: int = Field(ge=0)
    holds: bool | None


class ProtocolReading(BaseModel):
    """The reader's output for one photo, as ``golos ocr protocol --json`` writes it
    (protocol-template/1), with an optional ``quad`` per field."""

    model_config = ConfigDict(extra="ignore")

    photo: str = ""
    verdict: Verdict
    precinct: str | None = None
    fields: dict[str, FieldReading] = Field(default_factory=dict)
    checks: list[CheckReading] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)

    @property
    def checks_fail(self) -> bool:
        return any(c.holds is False for c in self.checks)


# -- the upload ---------------------------------------------------------------------


@dataclass(frozen=True)
class Uploader:
    """Who sent a photo: an account, or a verified voter's keyed hash (never both)."""

    user_id: int | None = None
    voter_key: bytes | None = None


@dataclass(frozen=True)
class NewProtocolPhoto:
    """An upload's fields, as received (checked by ``service.accept``)."""

    photo_id: str
    election_id: str
    precinct_id: str
    photo: bytes
    uploader: Uploader


class ProtocolPhotoForm(BaseModel):
    """The upload's ``multipart/form-data`` body. Documentation only (OpenAPI): the
    route parses the body itself, in memory and size-capped."""

    photo: bytes = Field(
        description="The photo of the station's posted protocol (JPEG, PNG, WEBP or "
        "HEIC). Its metadata is stripped before it is stored; the size is capped by "
        "GOLOS_MAX_UPLOAD_BYTES."
    )
    precinct_id: str = Field(description="The polling station whose protocol this is.")
    photo_id: uuid.UUID = Field(
        description="A UUID the client generates once per photo and re-sends on every "
        "retry (idempotency key): a retry is answered with the first result."
    )


class PhotoAccepted(BaseModel):
    """The upload's answer (202 when new, 200 for a retry of the same request)."""

    photo_id: uuid.UUID
    status: PhotoStatus
    # The earlier photo of the same bytes for this station, which counts instead
    # (a copy of it found when the photo is read is named in its state).
    duplicate_of: uuid.UUID | None = None
    status_url: str


class FieldProgress(BaseModel):
    """How many of a photo's fields stand in each state."""

    field_id: str
    state: FieldState


class PhotoState(BaseModel):
    """``GET .../protocol-photos/{photo_id}``: a photo's state (no figures: those are
    the station's, reconciled)."""

    photo_id: uuid.UUID
    election_id: str
    precinct_id: str
    status: PhotoStatus
    reasons: list[str]
    duplicate_of: uuid.UUID | None
    fields: list[FieldProgress]


# -- transcription ------------------------------------------------------------------


class TranscriptionTask(BaseModel):
    """One field to type: never the machine's guess, never another person's entry."""

    photo_id: uuid.UUID
    field_id: str
    label: str
    image_url: str
    submit_url: str
    # How long the field is kept for this observer (others are not handed it meanwhile).
    claimed_seconds: int


class TranscriptionEntry(BaseModel):
    """A typed figure: the number as written, or null for "I cannot read it"."""

    model_config = ConfigDict(extra="forbid")

    value: int | None = Field(ge=0, le=100_000_000)


class FieldDecision(BaseModel):
    """An admin's decision on a disputed field (audit-logged)."""

    model_config = ConfigDict(extra="forbid")

    value: int | None = Field(ge=0, le=100_000_000)
    note: str = Field(default="", max_length=500)


class DisputedField(BaseModel):
    """A field three people read three ways, for an admin: the entries (without
    their authors) and the image."""

    photo_id: uuid.UUID
    precinct_id: str
    field_id: str
    label: str
    entries: list[int | None]
    image_url: str


# -- a station's reconciled protocol --------------------------------------------------


class SourceOut(BaseModel):
    """One source of a figure: the file, or one photo's machine reading, people's
    transcription or an admin's decision."""

    kind: SourceKind
    value: int | None
    photo_id: uuid.UUID | None = None
    transcribers: int = 0  # how many people typed it (transcription)


class FigureOut(BaseModel):
    field_id: str
    label: str
    value: int | None  # None unless every source agrees
    status: FigureStatus
    sources: list[SourceOut]
    pending_photos: int = 0  # photos whose field is still with people


class StationProtocol(BaseModel):
    """``GET .../stations/{precinct_id}/protocol``: the reconciled figures."""

    election_id: str
    precinct_id: str
    figures: list[FigureOut]
    conflict: bool
    conflicting_fields: list[str]
    # Pairs of sources that disagree on so many fields that they are two different
    # protocols, not one misread digit ("file" or "photo:<id>").
    different_protocols: list[tuple[str, str]]
    photos: int  # counted photos of the station (duplicates and others' stations left out)


PhotoUse = Literal["counted", "duplicate", "other_station"]
