"""HTTP routes for voters' submissions: thin, they parse the request, call the
service and shape the answer; refusals are ``api.errors`` errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from api.accounts.schemas import Principal, Role
from api.deps import (
    AppSettings,
    Conn,
    Credentials,
    JobQueue,
    Pool,
    Store,
    require,
    require_in_call,
)
from api.errors import (
    BadRequest,
    Forbidden,
    GolosError,
    Invalid,
    TooLarge,
    UnsupportedMediaType,
)
from api.submissions import jobs, service
from api.submissions.schemas import (
    NewSubmission,
    Status,
    SubmissionAccepted,
    SubmissionForm,
    SubmissionStatus,
)
from infra import ratelimit

STATUS_PATH = "/v1/submissions"
router = APIRouter(prefix=STATUS_PATH, tags=["submissions"])

# Room for the form's text fields and multipart framing on top of the photo.
FORM_OVERHEAD = 64 * 1024

# The body, documented in /openapi.json for generated clients: the route reads it itself
# (below), so FastAPI would otherwise show none.
FORM_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "content": {"multipart/form-data": {"schema": SubmissionForm.model_json_schema()}},
        "required": True,
    }
}


class _InMemoryParser(MultiPartParser):
    # Keep the uploaded photo in memory: it must not touch the disk before its
    # metadata is stripped. The request size is capped before parsing.
    spool_max_size = 1 << 62


class _TooLarge(Exception):
    pass


async def _capped(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _TooLarge
        yield chunk


async def read_parts(
    request: Request, limit: int, *, max_files: int, what: str = "the upload"
) -> list[tuple[str, str | tuple[str, bytes]]]:
    """A multipart body's parts in order: (name, text) or (name, (file name, bytes)),
    the files in memory, the body capped at ``limit`` bytes (413 beyond, 400 for a
    malformed body or more than ``max_files`` files)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedMediaType("body", "send the photo and its fields as multipart/form-data")
    too_large = TooLarge("photo", f"{what} is larger than {limit - FORM_OVERHEAD} bytes")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    parser = _InMemoryParser(
        request.headers,
        _capped(request, limit),
        max_files=max_files,
        max_fields=10,
        max_part_size=64 * 1024,
    )
    try:
        form = await parser.parse()
    except _TooLarge:
        raise too_large from None
    except MultiPartException as exc:
        raise BadRequest("body", exc.message) from None
    parts: list[tuple[str, str | tuple[str, bytes]]] = []
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                parts.append((name, (value.filename or "", await value.read())))
            else:
                parts.append((name, value))
    finally:
        await form.close()
    return parts


async def read_form(request: Request, limit: int) -> dict[str, str | bytes]:
    """The upload's fields by name (the photo's bytes for a file), one file at most."""
    fields: dict[str, str | bytes] = {}
    for name, value in await read_parts(request, limit, max_files=1):
        fields[name] = value if isinstance(value, str) else value[1]
    return fields


def form_text(
    fields: dict[str, str | bytes], name: str, missing: type[Invalid | BadRequest]
) -> str:
    value = fields.get(name)
    if value is None or value == "":
        raise missing(name, "this field is required")
    if not isinstance(value, str):
        raise Invalid(name, "must be a text field, not a file")
    if len(value) > 200 or not value.isprintable():
        raise Invalid(name, "must be at most 200 printable characters")
    return value.strip()


def _new_submission(fields: dict[str, str | bytes], voter: Principal) -> NewSubmission:
    photo = fields.get("photo")
    if not isinstance(photo, bytes) or not photo:
        raise Invalid("photo", "a photo file is required")
    assert voter.voter_key is not None
    new = NewSubmission(
        # IETF Idempotency-Key: a request without its key is malformed (400).
        submission_id=form_text(fields, "submission_id", missing=BadRequest),
        election_id=form_text(fields, "election_id", missing=Invalid),
        precinct_id=form_text(fields, "precinct_id", missing=Invalid),
        declared_choice=[
            c.strip() for c in form_text(fields, "declared_choice", missing=Invalid).split(",")
        ],
        photo=photo,
        voter_key=voter.voter_key,
    )
    if new.election_id != voter.election_id:
        raise Forbidden(
            "election_id", "this phone was verified for another election; verify it again"
        )
    return new


@router.post(
    "",
    status_code=202,
    response_model=SubmissionAccepted,
    openapi_extra=FORM_OPENAPI,
    responses={
        200: {
            "model": SubmissionAccepted,
            "description": "A retry of a request already stored (the same submission_id"
            " and content): the first result, with the header Idempotent-Replayed: true;"
            " counted once.",
            "headers": {
                "Idempotent-Replayed": {
                    "description": "true: this answers an earlier request with this id",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            },
        }
    },
)
async def submit(
    request: Request,
    response: Response,
    pool: Pool,
    store: Store,
    settings: AppSettings,
    job_queue: JobQueue,
    credentials: Annotated[Credentials, require_in_call(Role.VOTER)],
) -> SubmissionAccepted:
    """Submit a ballot photo, as the verified voter of the device token. Idempotent on
    ``submission_id``: a retry returns the first result (200) and is never counted
    twice; the same id with other content (or from another voter) is refused. New
    submissions are limited per voter and per network (429 with Retry-After)."""
    # Async: the body is streamed and capped in memory on the event loop; the
    # blocking work (who sent it, stripping the photo, the database) runs in one
    # call to the thread pool. Only a caller with an authentic device token gets
    # here (``require_in_call``); their voter is looked up in that call, first. A
    # body that cannot be read is answered there too, once the caller is known: an
    # expired or revoked token is told 401 whatever they sent.
    try:
        fields = await read_form(request, settings.max_upload_bytes + FORM_OVERHEAD)
        unreadable: GolosError | None = None
    except GolosError as exc:
        fields, unreadable = {}, exc
    # The caller's network, as a keyed hash only (its address is never kept).
    network = ratelimit.network_key(
        settings.app_key(), request.client.host if request.client else None
    )

    def accept() -> tuple[SubmissionStatus, bool]:
        with pool.connection() as conn:  # committed here, before the job is queued
            voter = credentials.principal(conn)
            if unreadable is not None:
                raise unreadable
            return service.accept(
                conn,
                store,
                _new_submission(fields, voter),
                max_bytes=settings.max_upload_bytes,
                max_pixels=settings.max_image_pixels,
                network=network,
                per_voter=settings.limit(ratelimit.Scope.SUBMISSION_VOTER),
                per_network=settings.limit(ratelimit.Scope.SUBMISSION_NETWORK),
                job_queue=job_queue,  # a new submission's job is queued as it is stored
            )

    status, created = await run_in_threadpool(accept)
    if not created and status.status == Status.RECEIVED:
        # A replay: its job may have been taken by a worker that died, or be done with
        # the submission decided meanwhile; queueing it again is harmless (the
        # queueing lock keeps one waiting, the pipeline is idempotent).
        await jobs.enqueue(job_queue, status.submission_id)
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return SubmissionAccepted(
        submission_id=status.submission_id,
        status=status.status,
        reasons=status.reasons,
        # As request.url_for("submission_status", ...) would say, without its walk over
        # every route of the app (4% of the upload's CPU, measured with py-spy).
        status_url=f"{request.base_url}{STATUS_PATH.removeprefix('/')}/{status.submission_id}",
    )


@router.get("/{submission_id}", name="submission_status")
def submission_status(
    submission_id: uuid.UUID,
    conn: Conn,
    caller: Annotated[Principal, require(Role.VOTER, Role.OBSERVER, Role.ADMIN)],
) -> SubmissionStatus:
    """A submission's state: for the voter who sent it, observers and admins (to any
    other voter there is no such submission)."""
    return service.status_for(conn, submission_id, caller)
