"""HTTP routes of the protocols domain: thin, they parse the request, call the
service and shape the answer; refusals are ``api.errors`` errors.

- ``POST /v1/elections/{election_id}/protocol-photos``: a protocol photo in
  (observers, admins, verified voters);
- ``GET  /v1/elections/{election_id}/protocol-photos/{photo_id}``: its state;
- ``GET  /v1/transcriptions/next``, ``GET .../{photo_id}/{field_id}/image``,
  ``POST .../{photo_id}/{field_id}``: observers typing fields;
- ``GET  /v1/transcriptions/disputed``, ``POST .../{photo_id}/{field_id}/decision``:
  admins deciding disputed fields;
- ``GET  /v1/elections/{election_id}/stations/{precinct_id}/protocol``: the
  station's reconciled figures, with their provenance;
- the observers' pages under ``/review/protocols`` (``api.protocols.pages``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from psycopg_pool import ConnectionPool

from api.accounts.schemas import Principal, Role
from api.deps import AppSettings, Conn, JobQueue, Pool, Store, require
from api.errors import BadRequest, Forbidden, Invalid
from api.protocols import jobs, pages, service
from api.protocols.schemas import (
    DisputedField,
    FieldDecision,
    NewProtocolPhoto,
    PhotoAccepted,
    PhotoState,
    PhotoStatus,
    ProtocolPhotoForm,
    StationProtocol,
    TranscriptionEntry,
    TranscriptionTask,
    Uploader,
)

# The submissions' form reading: the body capped and parsed in memory, never
# spooled to disk before the photo is stripped.
from api.submissions.routes import FORM_OVERHEAD, form_text, read_form
from infra import queue, ratelimit
from infra.settings import Settings
from infra.storage import PhotoStore

router = APIRouter(tags=["protocols"])

FORM_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "content": {"multipart/form-data": {"schema": ProtocolPhotoForm.model_json_schema()}},
        "required": True,
    }
}
IMAGE_HEADERS = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}
FieldId = Annotated[str, Path(pattern=r"^[a-z0-9_]{1,64}$")]

Uploaders = Annotated[Principal, require(Role.OBSERVER, Role.ADMIN, Role.VOTER)]
Transcriber = Annotated[Principal, require(Role.OBSERVER)]
Admin = Annotated[Principal, require(Role.ADMIN)]


def _new_photo(
    fields: dict[str, str | bytes], election_id: str, caller: Principal
) -> NewProtocolPhoto:
    photo = fields.get("photo")
    if not isinstance(photo, bytes) or not photo:
        raise Invalid("photo", "a photo file is required")
    if caller.role is Role.VOTER:
        assert caller.voter_key is not None
        if caller.election_id != election_id:
            raise Forbidden(
                "election_id", "this phone was verified for another election; verify it again"
            )
        uploader = Uploader(voter_key=caller.voter_key)
    else:
        uploader = Uploader(user_id=caller.user_id)
    return NewProtocolPhoto(
        # IETF Idempotency-Key: a request without its key is malformed (400).
        photo_id=form_text(fields, "photo_id", missing=BadRequest),
        election_id=election_id,
        precinct_id=form_text(fields, "precinct_id", missing=Invalid),
        photo=photo,
        uploader=uploader,
    )


def accept_photo(
    pool: ConnectionPool,
    store: PhotoStore,
    settings: Settings,
    job_queue: queue.App,
    new: NewProtocolPhoto,
    client: str | None,
) -> tuple[service.Accepted, bool]:
    """``service.accept`` with the uploader's and the network's limits, on a pooled
    connection of its own (blocking: run it in the thread pool). The API's upload and
    the observers' upload page both send photos through here."""
    secret = settings.app_key()
    uploader_key = (
        new.uploader.voter_key
        if new.uploader.voter_key is not None
        else ratelimit.account_key(secret, int(new.uploader.user_id or 0))
    )
    per_network = ratelimit.Limit(
        service.NETWORK_SCOPE,
        settings.submissions_per_network,
        settings.submissions_per_network_seconds,
    )
    with pool.connection() as conn:
        return service.accept(
            conn,
            store,
            new,
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels,
            uploader_key=uploader_key,
            network=ratelimit.network_key(secret, client),
            per_uploader=service.uploader_limit(),
            per_network=per_network,
            job_queue=job_queue,
        )


@router.post(
    "/v1/elections/{election_id}/protocol-photos",
    status_code=202,
    response_model=PhotoAccepted,
    openapi_extra=FORM_OPENAPI,
    responses={
        200: {
            "model": PhotoAccepted,
            "description": "A retry of a request already stored (the same photo_id and "
            "content): the first result, with the header Idempotent-Replayed: true.",
            "headers": {
                "Idempotent-Replayed": {
                    "description": "true: this answers an earlier request with this id",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            },
        }
    },
)
async def upload_protocol_photo(
    election_id: str,
    request: Request,
    response: Response,
    pool: Pool,
    store: Store,
    settings: AppSettings,
    job_queue: JobQueue,
    caller: Uploaders,
) -> PhotoAccepted:
    """Send a photo of a station's posted protocol (observers, admins, verified
    voters). Idempotent on ``photo_id``; the same photo posted again for the station
    counts once (``duplicate_of`` names the first). New photos are limited per sender
    and per network (429 with Retry-After)."""
    fields = await read_form(request, settings.max_upload_bytes + FORM_OVERHEAD)
    new = _new_photo(fields, election_id, caller)
    client = request.client.host if request.client else None
    accepted, created = await run_in_threadpool(
        accept_photo, pool, store, settings, job_queue, new, client
    )
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
        if accepted.status is PhotoStatus.RECEIVED and accepted.duplicate_of is None:
            # Its job may have been lost with a worker; queueing it again is harmless.
            await jobs.enqueue(job_queue, accepted.photo_id)
    return PhotoAccepted(
        photo_id=accepted.photo_id,
        status=accepted.status,
        duplicate_of=accepted.duplicate_of,
        status_url=str(
            request.url_for(
                "protocol_photo_status", election_id=election_id, photo_id=accepted.photo_id
            )
        ),
    )


@router.get("/v1/elections/{election_id}/protocol-photos/{photo_id}", name="protocol_photo_status")
def protocol_photo_status(
    election_id: str,
    photo_id: uuid.UUID,
    conn: Conn,
    caller: Uploaders,
) -> PhotoState:
    """A protocol photo's state: for whoever sent it (a voter, an observer) and for
    admins. An observer typing fields is never told a photo's station."""
    return service.photo_state(conn, election_id, photo_id, caller)


# -- transcription ------------------------------------------------------------------


@router.get(
    "/v1/transcriptions/next",
    response_model=TranscriptionTask,
    responses={204: {"description": "Nothing waits for this observer now"}},
)
def next_transcription(
    request: Request,
    conn: Conn,
    caller: Transcriber,
    election_id: Annotated[str, Query(min_length=1, max_length=200)],
) -> Any:
    """One field for the observer to type, kept for them for ``claimed_seconds``:
    its label and its cropped image, never the machine's guess nor another person's
    entry; never a field of a photo they sent, never one they typed already."""
    task = service.next_task(conn, election_id, caller)
    if task is None:
        return Response(status_code=204)
    ids = {"photo_id": task.photo_id, "field_id": task.field_id}
    return TranscriptionTask(
        photo_id=task.photo_id,
        field_id=task.field_id,
        label=task.label,
        image_url=str(request.url_for("transcription_image", **ids)),
        submit_url=str(request.url_for("transcription_entry", **ids)),
        claimed_seconds=service.CLAIM_SECONDS,
    )


@router.get(
    "/v1/transcriptions/{photo_id}/{field_id}/image",
    name="transcription_image",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The field's cell"}},
)
def transcription_image(
    photo_id: uuid.UUID,
    field_id: FieldId,
    conn: Conn,
    store: Store,
    caller: Annotated[Principal, require(Role.OBSERVER, Role.ADMIN)],
) -> Response:
    """The field's cell cut from the photo (PNG, a margin around it)."""
    png = service.field_image(conn, store, photo_id, field_id, caller)
    return Response(png, media_type="image/png", headers=IMAGE_HEADERS)


@router.post(
    "/v1/transcriptions/{photo_id}/{field_id}", name="transcription_entry", status_code=204
)
def transcription_entry(
    photo_id: uuid.UUID,
    field_id: FieldId,
    entry: TranscriptionEntry,
    conn: Conn,
    caller: Transcriber,
) -> Response:
    """The observer's entry for the field: the number as written, or null for "I
    cannot read it". 409 for a second entry by the same person or a field that needs
    no more."""
    service.enter(conn, photo_id, field_id, caller, entry.value)
    return Response(status_code=204)


@router.get("/v1/transcriptions/disputed")
def disputed_transcriptions(
    request: Request,
    conn: Conn,
    caller: Admin,
    election_id: Annotated[str, Query(min_length=1, max_length=200)],
) -> list[DisputedField]:
    """The election's disputed fields (three people, three readings), for an admin:
    the entries without their authors, and the field's image."""
    return [
        service.disputed_out(
            item,
            str(request.url_for("transcription_image", photo_id=item[0], field_id=item[2])),
        )
        for item in service.disputed_fields(conn, election_id)
    ]


@router.post("/v1/transcriptions/{photo_id}/{field_id}/decision", status_code=204)
def transcription_decision(
    photo_id: uuid.UUID,
    field_id: FieldId,
    decision: FieldDecision,
    conn: Conn,
    caller: Admin,
) -> Response:
    """An admin's decision on a disputed field (null: illegible); audit-logged with
    the entries it decides between."""
    service.decide(conn, photo_id, field_id, caller, decision.value, decision.note)
    return Response(status_code=204)


# -- the station's reconciled protocol --------------------------------------------------


@router.get("/v1/elections/{election_id}/stations/{precinct_id}/protocol")
def station_protocol(
    election_id: str,
    precinct_id: str,
    conn: Conn,
    caller: Annotated[Principal, require(Role.OBSERVER, Role.ANALYST, Role.ADMIN)],
) -> StationProtocol:
    """The station's figures reconciled from every source (the imported file, each
    protocol photo's machine reading or transcription), with per-field provenance and
    any conflict. Observers are not told which photo a figure comes from (they type
    photos' fields, whose station they must not learn)."""
    return service.station_protocol(
        conn, election_id, precinct_id, photo_ids=caller.role is not Role.OBSERVER
    )


# The observers' pages (upload, transcription, disputed fields) are this domain's too.
router.include_router(pages.router)
