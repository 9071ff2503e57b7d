"""Protocol photos in, people where the machine is unsure, a station's sources
reconciled.

1. **Upload** (``accept``): as a ballot photo's (``api.submissions.service``): the
   photo is checked from its header and stripped of its metadata in memory
   (``ocr.images.prepare_photo``), then one transaction records the photo, stores it
   under its hash and queues its reading (``jobs``). The id is the client's
   idempotency key: a retry is answered from the first result. The same bytes
   posted again for the same station are recorded as a duplicate of the first
   photo and count once (no second reading, no second figure).
2. **Reading** (``record_reading``, called by the worker with the reader's output):
   a confident value in a reading whose checks hold is the photo's figure for the
   field (``given``); every other field goes to people (``transcribing``), and so
   does every field of a reading whose checks fail: a reading is never corrected.
3. **Transcription** (``next_task``, ``enter``, ``decide``): observers type a
   field from its cropped image, never seeing the machine's guess or another
   person's entry; ``consensus.transcription_outcome`` decides after each entry.
   Three different entries are a dispute an admin decides (audit-logged).
4. **Reconciliation** (``station_protocol``, ``conflict_findings``): per station and
   field, the imported file and each counted photo's figure, with provenance;
   ``consensus.reconcile`` decides, computed on read.

Concurrency of entries: every entry and decision on a field first locks the
field's row (``repository.lock_field``, ``FOR UPDATE``), then reads the entries made
so far, adds its own and decides: two observers entering at once are taken one
after the other, the second seeing the first's entry, so none is lost and the
outcome is decided once. The primary key (photo, field, account) of
``transcription_entries`` keeps one entry per person and field even without the
lock. Lock order: the field's row, then the audit log's advisory lock (last, as
everywhere).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import cv2
import numpy as np
import psycopg

from api.accounts.schemas import Principal, Role
from api.audit import service as audit
from api.elections import repository as elections
from api.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound, TooLarge, TooManyRequests
from api.protocols import consensus, jobs, repository
from api.protocols.consensus import FigureSource, Reconciliation
from api.protocols.repository import NewField, PhotoRow, StationField
from api.protocols.schemas import (
    ENTRIES_NEEDED,
    AuditAction,
    DisputedField,
    FieldProgress,
    FieldReading,
    FieldSource,
    FieldState,
    FigureOut,
    FigureStatus,
    NewProtocolPhoto,
    PhotoReason,
    PhotoState,
    PhotoStatus,
    ProtocolReading,
    SourceKind,
    SourceOut,
    StationProtocol,
    Verdict,
)
from infra import queue, ratelimit
from infra.storage import PhotoStore
from ocr.images import ImageRejected, decode_gray, prepare_photo
from tally.proof import Finding
from tally.vocab import PROTOCOL_LINES

# Decoding (re-encoding a HEIC or WEBP upload, cropping a field) is bounded as in
# the submissions: a few hundred MB for the largest photos.
_decoding = threading.BoundedSemaphore(2)
_TOO_LARGE = ("too_large", "too_many_pixels")
# New protocol photos per uploader (a voter, an account) in an hour. A protocol is
# one or two pages, retaken when blurred; an observer may photograph several
# stations' doors in an hour. Beyond this, 429.
PHOTOS_PER_UPLOADER = 30
PHOTOS_PER_UPLOADER_SECONDS = 3600
UPLOADER_SCOPE = "protocol_photo_uploader"
NETWORK_SCOPE = "protocol_photo_network"
# How long a field handed to an observer is kept for them: typing one number takes
# seconds; an observer who leaves frees it after this.
CLAIM_SECONDS = 300
# The crop of a field: this much of the cell's height added around it, so that a
# digit written across the cell's border is seen whole.
CROP_MARGIN = 0.35
# The crop's height in pixels (the cell is scaled to it): legible on a phone.
CROP_HEIGHT = 160
# Without a quad (the reader gave none), the whole photo, at most this wide.
WHOLE_PHOTO_SIDE = 1600
DISPUTED_PAGE = 100
_LIMITED = {
    UPLOADER_SCOPE: ("authorization", "too many protocol photos from you; try again later"),
    NETWORK_SCOPE: ("network", "too many protocol photos from this network; try again later"),
}
_STATUS_OF_VERDICT = {
    Verdict.READ: PhotoStatus.READ,
    Verdict.PARTIAL: PhotoStatus.PARTIAL,
    Verdict.UNREADABLE: PhotoStatus.UNREADABLE,
    Verdict.NOT_A_PROTOCOL: PhotoStatus.NOT_A_PROTOCOL,
}


# -- the upload ---------------------------------------------------------------------


def request_digest(new: NewProtocolPhoto) -> str:
    """What makes a retry 'the same request' (IETF Idempotency-Key semantics). Pure."""
    h = hashlib.sha256()
    for part in (new.election_id, new.precinct_id):
        h.update(part.encode())
        h.update(b"\x00")
    if new.uploader.voter_key is not None:
        h.update(b"voter\x00" + new.uploader.voter_key)
    else:
        h.update(f"account\x00{new.uploader.user_id}".encode())
    h.update(hashlib.sha256(new.photo).digest())
    return h.hexdigest()


def uploader_limit() -> ratelimit.Limit:
    return ratelimit.Limit(UPLOADER_SCOPE, PHOTOS_PER_UPLOADER, PHOTOS_PER_UPLOADER_SECONDS)


class Accepted(NamedTuple):
    photo_id: uuid.UUID
    status: PhotoStatus
    duplicate_of: uuid.UUID | None


def _parse_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadRequest("photo_id", "must be a UUID generated by the client") from None


def _replay(conn: psycopg.Connection, photo_id: uuid.UUID, digest: str) -> Accepted | None:
    """The first result of an earlier request with this id, if it was the same
    request; Invalid when the id was used for another."""
    row = repository.photo(conn, photo_id)
    if row is None:
        return None
    if not hmac.compare_digest(row.request_digest, digest):
        raise Invalid(
            "photo_id", "this id was already used for a different photo; generate a new id"
        )
    return Accepted(row.id, _shown_status(conn, row), row.duplicate_of)


def _shown_status(conn: psycopg.Connection, row: PhotoRow) -> PhotoStatus:
    """A photo's status; a duplicate's is the first photo's."""
    if row.duplicate_of is None:
        return PhotoStatus(row.status)
    first = repository.photo(conn, row.duplicate_of)
    return PhotoStatus(first.status if first is not None else row.status)


def check_station(conn: psycopg.Connection, election_id: str, precinct_id: str) -> None:
    """NotFound for an unknown election, Conflict for one without a protocol template
    (its photos cannot be read), Invalid for a station not in it."""
    if elections.protocol_template(conn, election_id) is None:
        if elections.find_election(conn, election_id) is None:
            raise NotFound("election_id", f"unknown election {election_id!r}")
        raise Conflict("election_id", f"election {election_id!r} does not take protocol photos")
    if not elections.precinct_exists(conn, election_id, precinct_id):
        raise Invalid("precinct_id", f"unknown precinct {precinct_id!r} in this election")


def accept(
    conn: psycopg.Connection,
    store: PhotoStore,
    new: NewProtocolPhoto,
    *,
    max_bytes: int,
    max_pixels: int,
    uploader_key: bytes,
    network: bytes = b"",
    per_uploader: ratelimit.Limit | None = None,
    per_network: ratelimit.Limit | None = None,
    job_queue: queue.App | None = None,
) -> tuple[Accepted, bool]:
    """Record a protocol photo; returns its state and whether it is new.

    ``conn`` holds nothing uncommitted when called (the limits count in a
    transaction of their own). ``uploader_key``: the uploader's key for the limit
    (a voter's voter_key, ``ratelimit.account_key`` of an account). With
    ``job_queue``, a new photo's reading is queued in the transaction that stores it.
    """
    photo_id = _parse_id(new.photo_id)
    digest = request_digest(new)
    conn.autocommit = True
    try:
        earlier = _replay(conn, photo_id, digest)
        if earlier is not None:
            return earlier, False
        check_station(conn, new.election_id, new.precinct_id)
    finally:
        conn.autocommit = False

    try:
        counted = ratelimit.counting(conn, [(per_uploader, uploader_key), (per_network, network)])
        with counted as taken:
            accepted, created = _store(
                conn, store, new, photo_id, digest, max_bytes, max_pixels, job_queue
            )
            if not created or accepted.duplicate_of is not None:
                taken.undo()
    except ratelimit.Exceeded as exc:
        field, message = _LIMITED.get(exc.scope, ("network", "too many photos; try again later"))
        raise TooManyRequests(field, message, exc.retry_after) from None
    return accepted, created


def _store(
    conn: psycopg.Connection,
    store: PhotoStore,
    new: NewProtocolPhoto,
    photo_id: uuid.UUID,
    digest: str,
    max_bytes: int,
    max_pixels: int,
    job_queue: queue.App | None,
) -> tuple[Accepted, bool]:
    try:
        clean = prepare_photo(
            new.photo, max_bytes=max_bytes, max_pixels=max_pixels, decoding=_decoding
        )
    except ImageRejected as exc:
        error = TooLarge if exc.reason in _TOO_LARGE else Invalid
        raise error("photo", exc.reason + ": " + str(exc)) from exc
    with conn.transaction():
        repository.set_lock_timeout(conn)
        # Twice at most: the second time after a concurrent upload of the same bytes
        # for the station committed first (this one is then its duplicate).
        for _ in range(2):
            inserted, duplicate_of = repository.insert_photo(
                conn,
                photo_id,
                new.election_id,
                new.precinct_id,
                user_id=new.uploader.user_id,
                voter_key=new.uploader.voter_key,
                digest=digest,
                photo_sha256=clean.sha256,
                orientation=clean.orientation,
            )
            if inserted:
                break
            concurrent = _replay(conn, photo_id, digest)
            if concurrent is not None:
                return concurrent, False
        else:  # pragma: no cover - a third upload of the bytes cannot win twice
            raise Conflict("photo", "the same photo is being stored; retry")
        if duplicate_of is not None:
            # The same bytes are stored already, and read (or being read) once.
            first = repository.photo(conn, duplicate_of)
            status = PhotoStatus(first.status) if first is not None else PhotoStatus.RECEIVED
            return Accepted(photo_id, status, duplicate_of), True
        stored = store.put(clean.data, sha256=clean.sha256)
        assert stored == clean.sha256
        if job_queue is not None:
            _queue_job(conn, job_queue, photo_id)
    return Accepted(photo_id, PhotoStatus.RECEIVED, None), True


def _queue_job(conn: psycopg.Connection, job_queue: queue.App, photo_id: uuid.UUID) -> None:
    """Queue the photo's reading in the caller's transaction (as a ballot's)."""
    queue.defer_in_transaction(
        conn,
        job_queue,
        jobs.READ_TASK,
        lock=jobs.job_lock(photo_id),
        priority=jobs.PROTOCOL_PRIORITY,
        photo_id=str(photo_id),
    )


def photo_state(
    conn: psycopg.Connection, election_id: str, photo_id: uuid.UUID, caller: Principal
) -> PhotoState:
    """A photo's state, for whoever sent it (a voter, an observer) and for admins; to
    anyone else, and for another election, there is no such photo.

    Observers see only the photos they sent: a photo's station is not for the people
    typing its fields, who would otherwise find the station's other figures (the
    imported file's are public) and could copy one instead of reading the cell."""
    row = repository.photo(conn, photo_id)
    missing = NotFound("photo_id", "no such protocol photo")
    if row is None or row.election_id != election_id:
        raise missing
    if caller.role is Role.VOTER and (
        row.uploader_voter_key is None
        or caller.voter_key is None
        or not hmac.compare_digest(row.uploader_voter_key, caller.voter_key)
    ):
        raise missing
    if caller.role is Role.OBSERVER and row.uploader_user_id != caller.user_id:
        raise missing
    counted = row.duplicate_of or row.id
    return PhotoState(
        photo_id=row.id,
        election_id=row.election_id,
        precinct_id=row.precinct_id,
        status=_shown_status(conn, row),
        reasons=list(row.reasons),
        duplicate_of=row.duplicate_of,
        fields=[
            FieldProgress(field_id=f, state=FieldState(s))
            for f, s in repository.field_states(conn, counted)
        ],
    )


# -- the reading --------------------------------------------------------------------


def template_fields(conn: psycopg.Connection, election_id: str) -> list[tuple[str, str]]:
    """(field id, printed label) of the election's protocol template, in its order."""
    template = elections.protocol_template(conn, election_id) or {}
    fields = template.get("fields") or []
    return [(str(f["id"]), str(f.get("label") or f["id"])) for f in fields if isinstance(f, dict)]


def new_fields(field_ids: Sequence[str], reading: ProtocolReading) -> list[NewField]:
    """The rows of a reading's fields, in the template's order (a field the reader
    did not mention has no value). Pure.

    A value is the photo's figure only when the reader gave it (confident) and the
    reading's checks hold; every other field goes to people. A failed check sends
    every field to people: which figure is wrong the checks cannot say, and a reading
    is never corrected."""
    ids = list(field_ids) or list(reading.fields)
    checks_fail = reading.checks_fail
    rows = []
    for position, field_id in enumerate(ids):
        read = reading.fields.get(field_id) or FieldReading()
        quad = None if read.quad is None else [[float(x), float(y)] for x, y in read.quad]
        if read.value is not None and not checks_fail:
            state, value, source = FieldState.GIVEN, read.value, FieldSource.MACHINE
        else:
            state, value, source = FieldState.TRANSCRIBING, None, FieldSource.TRANSCRIPTION
        rows.append(
            NewField(field_id, position, read.value, read.confidence, quad, value, source, state)
        )
    return rows


def counted(precinct_id: str, reading: ProtocolReading) -> bool:
    """Whether a reading of a photo declared for ``precinct_id`` makes it a counted
    photo of the station (read, and not another station's form). Pure."""
    read = _STATUS_OF_VERDICT[reading.verdict] in (PhotoStatus.READ, PhotoStatus.PARTIAL)
    return read and (
        reading.precinct is None or consensus.same_station(precinct_id, reading.precinct)
    )


def record_reading(
    conn: psycopg.Connection,
    photo_id: uuid.UUID,
    reading: ProtocolReading,
    copy_of: uuid.UUID | None = None,
) -> PhotoStatus | None:
    """Store the reader's output for a received photo, in the caller's transaction:
    its status (the verdict), its fields (``new_fields``) and the reading itself.
    Returns the new status; None when the photo was read already (a job run twice
    records once: the photo's row is locked and must still be 'received').

    A photo read as another station's (its precinct number is not the declared
    station's) keeps its status but its figures are used nowhere and nobody is asked
    to type them (reason ``precinct_mismatch``); nor are those of a photo that is not
    a protocol or that could not be aligned. A counted photo found to be a copy of
    the station's counted photo ``copy_of`` counts as that one (reason
    ``copy_of_earlier_photo``, ``duplicate_of`` set, no fields of its own), unless
    the two readings give different values (``consensus.same_figures``)."""
    row = repository.lock_received(conn, photo_id)
    if row is None:
        return None
    status = _STATUS_OF_VERDICT[reading.verdict]
    reasons: list[str] = []
    mismatch = reading.precinct is not None and not consensus.same_station(
        row.precinct_id, reading.precinct
    )
    if mismatch:
        reasons.append(PhotoReason.PRECINCT_MISMATCH)
    if reading.checks_fail:
        reasons.append(PhotoReason.CHECKS_FAIL)
    reasons += [r for r in reading.reasons if r not in reasons]
    if (
        copy_of is not None
        and counted(row.precinct_id, reading)
        and _same_figures(conn, copy_of, reading)
    ):
        reasons.insert(0, PhotoReason.COPY_OF_EARLIER_PHOTO)
        repository.record_copy(
            conn, photo_id, copy_of, status, reasons, reading.model_dump(mode="json")
        )
        return status
    if status in (PhotoStatus.READ, PhotoStatus.PARTIAL) and not mismatch:
        ids = [f for f, _ in template_fields(conn, row.election_id)]
        fields = new_fields(ids, reading)
        repository.insert_fields(conn, photo_id, fields)
        if any(f.state is not FieldState.GIVEN for f in fields):
            status = PhotoStatus.PARTIAL
    repository.record_status(conn, photo_id, status, reasons, reading.model_dump(mode="json"))
    return status


def _same_figures(conn: psycopg.Connection, original: uuid.UUID, reading: ProtocolReading) -> bool:
    """Whether ``reading`` gives no value the original photo's reading gives otherwise
    (a photo and its copy show one picture: readings that differ are of two, and the
    disagreement is for people, as any two photos')."""
    stored = repository.stored_reading(conn, original)
    if stored is None:
        return False
    theirs = as_reading(stored)
    return consensus.same_figures(
        {f: r.value for f, r in theirs.fields.items()},
        {f: r.value for f, r in reading.fields.items()},
    )


def give_up(conn: psycopg.Connection, photo_id: uuid.UUID, reason: str) -> None:
    """A photo every attempt to read failed: 'unreadable', with the reason."""
    with conn.transaction():
        if repository.lock_received(conn, photo_id) is not None:
            repository.record_status(conn, photo_id, PhotoStatus.UNREADABLE, [reason], None)


# -- transcription ------------------------------------------------------------------


class Task(NamedTuple):
    photo_id: uuid.UUID
    field_id: str
    label: str


def _account(caller: Principal) -> int:
    if caller.user_id is None:  # pragma: no cover - the routes admit accounts only
        raise Forbidden("authorization", "this needs an observer's account")
    return caller.user_id


def next_task(conn: psycopg.Connection, election_id: str, caller: Principal) -> Task | None:
    """Claim the next field for ``caller`` to type (``repository.next_field``); None
    when nothing waits for them."""
    if elections.find_election(conn, election_id) is None:
        raise NotFound("election_id", f"unknown election {election_id!r}")
    found = repository.next_field(conn, election_id, _account(caller), CLAIM_SECONDS)
    if found is None:
        return None
    photo_id, field_id = found
    labels = dict(template_fields(conn, election_id))
    return Task(photo_id, field_id, labels.get(field_id, field_id))


def _subject(photo_id: uuid.UUID, field_id: str) -> str:
    return f"protocol:{photo_id}:{field_id}"


def enter(
    conn: psycopg.Connection,
    photo_id: uuid.UUID,
    field_id: str,
    caller: Principal,
    value: int | None,
) -> FieldState:
    """Record ``caller``'s entry for the field (None: "illegible") and decide what
    the entries make of it; returns the field's state. In the caller's transaction
    (the module docstring says why two at once are safe).

    Conflict when the field needs no more entries or the caller entered it already;
    Forbidden for a photo the caller sent (its figures are typed by others)."""
    account = _account(caller)
    repository.set_lock_timeout(conn)
    row = repository.lock_field(conn, photo_id, field_id)
    if row is None:
        raise NotFound("field_id", "no such field of a protocol photo")
    if row.uploader_user_id == account:
        raise Forbidden("photo_id", "you sent this photo: other observers type its figures")
    state = FieldState(row.state)
    if state not in ENTRIES_NEEDED:
        raise Conflict("field_id", "this field needs no more entries")
    made = repository.entries(conn, photo_id, field_id)
    if not repository.enter(conn, photo_id, field_id, account, value):
        raise Conflict("field_id", "you have entered this field already")
    outcome = consensus.transcription_outcome([*made, value])
    if outcome.state is not state:
        repository.set_field(
            conn, photo_id, field_id, outcome.state, outcome.value, FieldSource.TRANSCRIPTION
        )
    audit.append(
        conn,
        caller.actor,
        AuditAction.TRANSCRIBE,
        _subject(photo_id, field_id),
        {
            "election": row.election_id,
            "precinct": row.precinct_id,
            "field": field_id,
            "value": "illegible" if value is None else value,
            "state": str(outcome.state),
        },
    )
    return outcome.state


def decide(
    conn: psycopg.Connection,
    photo_id: uuid.UUID,
    field_id: str,
    caller: Principal,
    value: int | None,
    note: str = "",
) -> FieldState:
    """An admin's decision on a disputed field: its value (None: illegible), with the
    entries it overrules written to the audit log. Conflict unless it is disputed."""
    repository.set_lock_timeout(conn)
    row = repository.lock_field(conn, photo_id, field_id)
    if row is None:
        raise NotFound("field_id", "no such field of a protocol photo")
    if row.state != FieldState.DISPUTED:
        raise Conflict("field_id", "only a disputed field is decided by an admin")
    made = repository.entries(conn, photo_id, field_id)
    state = FieldState.ILLEGIBLE if value is None else FieldState.AGREED
    repository.set_field(conn, photo_id, field_id, state, value, FieldSource.DECISION)
    audit.append(
        conn,
        caller.actor,
        AuditAction.DECIDE,
        _subject(photo_id, field_id),
        {
            "election": row.election_id,
            "precinct": row.precinct_id,
            "field": field_id,
            "value": "illegible" if value is None else value,
            "entries": ["illegible" if v is None else v for v in made],
            "note": note[:500],
        },
    )
    return state


def disputed_fields(
    conn: psycopg.Connection, election_id: str
) -> list[tuple[uuid.UUID, str, str, str, list[int | None]]]:
    """The election's disputed fields for an admin: (photo, station, field, label,
    the entries without their authors)."""
    labels = dict(template_fields(conn, election_id))
    return [
        (
            row.photo_id,
            row.precinct_id,
            row.field_id,
            labels.get(row.field_id, row.field_id),
            repository.entries(conn, row.photo_id, row.field_id),
        )
        for row in repository.disputed(conn, election_id, DISPUTED_PAGE)
    ]


def disputed_out(
    item: tuple[uuid.UUID, str, str, str, list[int | None]], url: str
) -> DisputedField:
    photo_id, precinct_id, field_id, label, made = item
    return DisputedField(
        photo_id=photo_id,
        precinct_id=precinct_id,
        field_id=field_id,
        label=label,
        entries=made,
        image_url=url,
    )


def crop_quad(
    gray: np.ndarray, quad: Sequence[Sequence[float]], margin: float = CROP_MARGIN
) -> np.ndarray:
    """The cell of ``quad`` (4 points, clockwise from the top left) cut out of ``gray``
    and made upright and rectangular, ``margin`` of its height added around it,
    scaled to ``CROP_HEIGHT`` pixels high. Pure."""
    points = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    top_left, top_right, bottom_right, bottom_left = points
    width = max(
        float(np.linalg.norm(top_right - top_left)),
        float(np.linalg.norm(bottom_right - bottom_left)),
        1.0,
    )
    height = max(
        float(np.linalg.norm(bottom_left - top_left)),
        float(np.linalg.norm(bottom_right - top_right)),
        1.0,
    )
    scale = CROP_HEIGHT / (height * (1 + 2 * margin))
    pad = margin * height
    out_w = round((width + 2 * pad) * scale)
    out_h = round((height + 2 * pad) * scale)
    target = np.array(
        [
            [pad * scale, pad * scale],
            [(pad + width) * scale, pad * scale],
            [(pad + width) * scale, (pad + height) * scale],
            [pad * scale, (pad + height) * scale],
        ],
        dtype=np.float32,
    )
    matrix = cv2.getPerspectiveTransform(points.astype(np.float32), target)
    return cv2.warpPerspective(
        gray,
        matrix,
        (max(out_w, 1), max(out_h, 1)),
        flags=cv2.INTER_AREA,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=255,
    )


def field_image(
    conn: psycopg.Connection,
    store: PhotoStore,
    photo_id: uuid.UUID,
    field_id: str,
    caller: Principal,
) -> bytes:
    """The field's cell cut from the stored photo, as a PNG (the whole photo, scaled
    down, when the reader gave no quad). Observers see the fields still waiting for
    people; admins any."""
    row = repository.field(conn, photo_id, field_id)
    if row is None or (
        caller.role is not Role.ADMIN and FieldState(row.state) not in ENTRIES_NEEDED
    ):
        raise NotFound("field_id", "no such field waiting to be typed")
    data = store.get(row.photo_sha256)
    with _decoding:
        gray = decode_gray(data, orientation=row.photo_orientation)
    if row.quad is not None:
        image = crop_quad(gray, row.quad)
    else:
        factor = WHOLE_PHOTO_SIDE / max(gray.shape)
        image = (
            gray
            if factor >= 1
            else cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        )
    ok, png = cv2.imencode(".png", image)
    assert ok
    return png.tobytes()


# -- reconciliation -----------------------------------------------------------------


def _photo_source(field: StationField) -> FigureSource | None:
    """A counted photo's figure for a field, with its provenance; None while it is
    with people. Pure."""
    state = FieldState(field.state)
    if state is FieldState.GIVEN:
        return FigureSource(SourceKind.MACHINE, field.value, field.photo_id)
    if state in (FieldState.AGREED, FieldState.ILLEGIBLE):
        kind = (
            SourceKind.DECISION
            if field.source == FieldSource.DECISION
            else SourceKind.TRANSCRIPTION
        )
        transcribers = field.transcribers if kind is SourceKind.TRANSCRIPTION else 0
        return FigureSource(kind, field.value, field.photo_id, transcribers)
    return None


def station_sources(
    file: Mapping[str, int | None] | None,
    fields: Sequence[StationField],
    order: Sequence[str],
) -> tuple[dict[str, list[FigureSource]], dict[str, int]]:
    """A station's sources per field (the file's figure, each photo's), in ``order``
    then the file's other columns; and per field, how many photos' fields are still
    with people. Pure."""
    sources: dict[str, list[FigureSource]] = {f: [] for f in order}
    pending: dict[str, int] = {}
    for column, value in (file or {}).items():
        if value is not None:
            sources.setdefault(column, []).append(FigureSource(SourceKind.FILE, value))
    for field in fields:
        source = _photo_source(field)
        if source is None:
            pending[field.field_id] = pending.get(field.field_id, 0) + 1
        else:
            sources.setdefault(field.field_id, []).append(source)
    return sources, pending


def _file_order(option_ids: Sequence[str]) -> list[str]:
    return [*map(str, PROTOCOL_LINES), *option_ids]


def station_protocol(
    conn: psycopg.Connection, election_id: str, precinct_id: str, *, photo_ids: bool = True
) -> StationProtocol:
    """A station's reconciled figures with per-field provenance, and its conflicts.
    Without ``photo_ids`` (an observer asking), a photo's source is named by its kind
    only: the people typing a photo's fields are not told its station."""
    if not elections.precinct_exists(conn, election_id, precinct_id):
        raise NotFound("precinct_id", f"no station {precinct_id!r} in election {election_id!r}")
    labelled = template_fields(conn, election_id)
    labels = dict(labelled)
    order = [f for f, _ in labelled]
    order += [c for c in _file_order(elections.option_ids(conn, election_id)) if c not in labels]
    fields = repository.station_fields(conn, election_id, precinct_id)
    sources, pending = station_sources(
        elections.station_protocol(conn, election_id, precinct_id), fields, []
    )
    rank = {f: i for i, f in enumerate(order)}
    ordered = dict(sorted(sources.items(), key=lambda kv: rank.get(kv[0], len(rank))))
    result = consensus.reconcile(ordered, pending)
    return StationProtocol(
        election_id=election_id,
        precinct_id=precinct_id,
        figures=[
            FigureOut(
                field_id=f,
                label=labels.get(f, f),
                value=figure.value,
                status=figure.status,
                sources=[
                    SourceOut(
                        kind=s.kind,
                        value=s.value,
                        photo_id=s.photo_id if photo_ids else None,
                        transcribers=s.transcribers,
                    )
                    for s in figure.sources
                ],
                pending_photos=figure.pending_photos,
            )
            for f, figure in sorted(
                result.figures.items(), key=lambda kv: rank.get(kv[0], len(rank))
            )
            if figure.status is not FigureStatus.NONE
        ],
        conflict=result.conflict,
        conflicting_fields=list(result.conflicting_fields),
        different_protocols=[
            (a, b) if photo_ids else (_anonymous(a), _anonymous(b))
            for a, b, _ in result.different_protocols
        ],
        photos=len({f.photo_id for f in fields}),
    )


def _anonymous(origin: str) -> str:
    """A document's name without its photo's id ("file", "photo"). Pure."""
    return origin.split(":", 1)[0]


def reconciled_stations(
    conn: psycopg.Connection,
    election_id: str,
    files: Mapping[str, Mapping[str, int | None]] | None = None,
) -> dict[str, Reconciliation]:
    """Every station with a counted protocol photo, reconciled with the file
    (``files``: the imported protocols, ``elections.official_protocols``; read here
    when not given, and only when the election has protocol photos at all)."""
    by_station: dict[str, list[StationField]] = {}
    for field in repository.station_fields(conn, election_id):
        by_station.setdefault(field.precinct_id, []).append(field)
    if not by_station:
        return {}
    if files is None:
        files = elections.official_protocols(conn, election_id)
    result = {}
    for precinct_id, fields in sorted(by_station.items()):
        sources, pending = station_sources(files.get(precinct_id), fields, [])
        result[precinct_id] = consensus.reconcile(sources, pending)
    return result


class ElectionProtocols(NamedTuple):
    """The election's official figures reconciled with its protocol photos, and the
    ``conflicting_protocols`` findings of that reconciliation: what the flag stage
    needs, from one reading of the sources."""

    official: dict[str, dict[str, int | None]]
    conflicts: list[Finding]


def election_protocols(conn: psycopg.Connection, election_id: str) -> ElectionProtocols:
    """Each station's official figures as the flag stage and the reports should read
    them: the imported file's (``elections.official_protocols``), reconciled with
    the station's protocol photos where it has any. A figure the sources agree on is
    kept (a station known only from photos gets its figures); a figure in conflict
    is None (unknown: no source silently wins; the conflict is its own flag), as is
    one still with people and known from no other source."""
    files = elections.official_protocols(conn, election_id)
    merged = {precinct: dict(lines) for precinct, lines in files.items()}
    conflicts = []
    for precinct, reconciliation in reconciled_stations(conn, election_id, files).items():
        lines = merged.setdefault(precinct, {})
        for field_id, figure in reconciliation.figures.items():
            lines[field_id] = figure.value
        finding = consensus.conflict_finding(precinct, reconciliation)
        if finding is not None:
            conflicts.append(finding)
    return ElectionProtocols(merged, conflicts)


def conflict_findings(conn: psycopg.Connection, election_id: str) -> list[Finding]:
    """The election's ``conflicting_protocols`` flags (``election_protocols``)."""
    return election_protocols(conn, election_id).conflicts


def official_protocols(
    conn: psycopg.Connection, election_id: str
) -> dict[str, dict[str, int | None]]:
    """The election's reconciled official figures (``election_protocols``)."""
    return election_protocols(conn, election_id).official


def provenances(conn: psycopg.Connection, election_id: str) -> dict[str, str]:
    """Each station's figures' provenance (``consensus.provenance``): "file" for a
    station known from the imported file alone, else what its photos add, or
    "conflict"; for a report's column beside the official figures."""
    files = elections.official_protocols(conn, election_id)
    result = dict.fromkeys(files, "file")
    for precinct, reconciliation in reconciled_stations(conn, election_id, files).items():
        result[precinct] = consensus.provenance(reconciliation)
    return result


def option_votes(
    protocols: Mapping[str, Mapping[str, int | None]], option_ids: Sequence[str]
) -> dict[tuple[str, str], int | None]:
    """The options' votes per (station, option) of ``protocols`` (as
    ``elections.official_votes`` gives the file's). Pure."""
    return {
        (precinct, option): lines[option]
        for precinct, lines in protocols.items()
        for option in option_ids
        if option in lines
    }


def as_reading(output: Any) -> ProtocolReading:
    """The reader's output as a ``ProtocolReading``: the model itself, its JSON
    (a dict, as ``golos ocr protocol --json`` prints it), or any object with
    ``to_json()``/``as_dict()`` giving that dict, or a dataclass."""
    if isinstance(output, ProtocolReading):
        return output
    if isinstance(output, dict):
        return ProtocolReading.model_validate(output)
    for method in ("to_json", "as_dict", "model_dump"):
        if hasattr(output, method):
            return ProtocolReading.model_validate(getattr(output, method)())
    if dataclasses.is_dataclass(output) and not isinstance(output, type):
        return ProtocolReading.model_validate(dataclasses.asdict(output))
    raise TypeError(f"not a protocol reading: {type(output).__name__}")


# -- the reconciled figures, for the pages that show a station's official figures ------


def displayed_figures(protocol: StationProtocol) -> dict[str, int | None] | None:
    """The figures a page shows as a station's official ones: each field with a
    reconciled value (a field in conflict, pending or illegible has none); None when
    no source gives the station any figure at all. Pure."""
    if not protocol.figures:
        return None
    shown: dict[str, int | None] = {
        f.field_id: f.value for f in protocol.figures if f.value is not None
    }
    return shown


def station_figures(
    conn: psycopg.Connection, election_id: str, precinct_id: str, *, photo_ids: bool = False
) -> tuple[dict[str, int | None] | None, StationProtocol]:
    """A station's official figures as the pages show them (``displayed_figures``)
    and the reconciliation behind them, with provenance per line and any conflict
    (``station_protocol``; ``photo_ids`` as there: off for observers and the public)."""
    protocol = station_protocol(conn, election_id, precinct_id, photo_ids=photo_ids)
    return displayed_figures(protocol), protocol


def official_protocols_of(
    conn: psycopg.Connection, election_id: str, precinct_ids: Sequence[str]
) -> dict[str, dict[str, int | None]]:
    """The reconciled official figures of these stations (``election_protocols`` for
    a page of stations): the imported file's, reconciled with the stations' protocol
    photos where they have any (a figure in conflict, or still with people and known
    from no other source, is None)."""
    ids = list(precinct_ids)
    files = elections.official_protocols_of(conn, election_id, ids)
    merged = {precinct: dict(lines) for precinct, lines in files.items()}
    wanted = set(ids)
    fields = (
        repository.station_fields(conn, election_id, ids[0])
        if len(ids) == 1
        else [f for f in repository.station_fields(conn, election_id) if f.precinct_id in wanted]
    )
    by_station: dict[str, list[StationField]] = {}
    for field in fields:
        by_station.setdefault(field.precinct_id, []).append(field)
    for precinct, station in by_station.items():
        sources, pending = station_sources(files.get(precinct), station, [])
        lines = merged.setdefault(precinct, {})
        for field_id, figure in consensus.reconcile(sources, pending).figures.items():
            lines[field_id] = figure.value
    return merged


def photo_states(
    conn: psycopg.Connection, election_id: str, photo_ids: Sequence[uuid.UUID], caller: Principal
) -> list[PhotoState]:
    """The states of these photos that ``caller`` may see (``photo_state``), in the
    order given; the others are left out."""
    states = []
    for photo_id in photo_ids:
        try:
            states.append(photo_state(conn, election_id, photo_id, caller))
        except NotFound:
            continue
    return states


def photo_station_votes(
    conn: psycopg.Connection, election_id: str, option_ids: Sequence[str]
) -> dict[str, tuple[dict[str, int | None], dict[str, int | None]]]:
    """For each station with a counted protocol photo: its options' votes in the
    imported file and as reconciled (None where unknown: not in the file, in
    conflict, or still with people), for pages that sum the official figures of an
    area. Stations without photos are left out (their file figures stand)."""
    reconciled = reconciled_stations(conn, election_id)
    if not reconciled:
        return {}
    files = elections.official_protocols_of(conn, election_id, list(reconciled))
    return {
        precinct: (
            {o: (files.get(precinct) or {}).get(o) for o in option_ids},
            {o: r.figures[o].value if o in r.figures else None for o in option_ids},
        )
        for precinct, r in reconciled.items()
    }


def adjust_area_sums(
    sums: Mapping[str, Mapping[str, int]],
    area_of: Mapping[str, str],
    changes: Mapping[str, tuple[Mapping[str, int | None], Mapping[str, int | None]]],
) -> dict[str, dict[str, int]]:
    """Areas' official votes per option (``sums``, from the imported file) with each
    station of ``changes`` counted by its reconciled votes instead of its file's
    (``photo_station_votes``; an unknown figure counts 0). ``area_of``: each
    station's area; a station in none is left out. Pure."""
    adjusted = {area: dict(votes) for area, votes in sums.items()}
    for precinct, (file_votes, reconciled) in changes.items():
        area = area_of.get(precinct)
        if area is None:
            continue
        totals = adjusted.setdefault(area, {})
        for option, value in reconciled.items():
            before = file_votes.get(option) or 0
            totals[option] = totals.get(option, 0) - before + (value or 0)
    return adjusted
