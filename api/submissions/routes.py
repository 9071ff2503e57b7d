"""HTTP routes for voters' submissions: thin, they call the service."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from api.submissions import jobs, service
from infra import db
from infra.settings import get_settings
from infra.storage import get_store

router = APIRouter(prefix="/v1/submissions", tags=["submissions"])

FORM_OVERHEAD = 64 * 1024


class _InMemoryParser(MultiPartParser):
    # Keep the uploaded photo in memory: it must not touch the disk before its
    # metadata is stripped. The request size is capped before parsing.
    spool_max_size = 1 << 62


class SubmissionAccepted(BaseModel):
    submission_id: uuid.UUID
    status: str
    reasons: list[str]
    status_url: str


class _TooLarge(Exception):
    pass


async def _capped(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _TooLarge
        yield chunk


def _error(status_code: int, field: str, message: str) -> HTTPException:
    return HTTPException(status_code, detail={"field": field, "message": message})


async def _read_form(request: Request, limit: int) -> dict[str, str | bytes]:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise _error(415, "body", "send the photo and its fields as multipart/form-data")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _error(413, "photo", f"the upload is larger than {limit - FORM_OVERHEAD} bytes")
    parser = _InMemoryParser(
        request.headers,
        _capped(request, limit),
        max_files=1,
        max_fields=10,
        max_part_size=64 * 1024,
    )
    try:
        form = await parser.parse()
    except _TooLarge:
        raise _error(
            413, "photo", f"the upload is larger than {limit - FORM_OVERHEAD} bytes"
        ) from None
    except MultiPartException as exc:
        raise _error(400, "body", exc.message) from None
    fields: dict[str, str | bytes] = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                fields[name] = await value.read()
            else:
                fields[name] = value
    finally:
        await form.close()
    return fields


def _text(fields: dict[str, str | bytes], name: str, missing_status: int = 422) -> str:
    value = fields.get(name)
    if value is None or value == "":
        raise _error(missing_status, name, "this field is required")
    if not isinstance(value, str):
        raise _error(422, name, "must be a text field, not a file")
    if len(value) > 200 or not value.isprintable():
        raise _error(422, name, "must be at most 200 printable characters")
    return value.strip()


@router.post("", status_code=202, response_model=SubmissionAccepted)
async def submit(request: Request, response: Response) -> SubmissionAccepted:
    """Submit a ballot photo. Idempotent on ``submission_id``: a retry returns the first
    result (200) and is never counted twice; the same id with other content is refused."""
    settings = get_settings()
    fields = await _read_form(request, settings.max_upload_bytes + FORM_OVERHEAD)
    photo = fields.get("photo")
    if not isinstance(photo, bytes) or not photo:
        raise _error(422, "photo", "a photo file is required")
    new = service.NewSubmission(
        # IETF Idempotency-Key: a request without its key is malformed (400).
        submission_id=_text(fields, "submission_id", missing_status=400),
        election_id=_text(fields, "election_id"),
        precinct_id=_text(fields, "precinct_id"),
        declared_choice=[c.strip() for c in _text(fields, "declared_choice").split(",")],
        voter_id=_text(fields, "voter_id"),
        photo=photo,
    )

    def accept() -> tuple[service.SubmissionStatus, bool]:
        with db.connection() as conn:
            return service.accept(
                conn,
                get_store(),
                new,
                voter_secret=settings.voter_key(),
                max_bytes=settings.max_upload_bytes,
                max_pixels=settings.max_image_pixels,
            )

    try:
        status, created = await run_in_threadpool(accept)
    except service.SubmissionError as exc:
        raise _error(exc.status_code, exc.field, exc.message) from None
    if created or status.status == "received":
        # On a replay too: the first request may have been stored but not queued.
        await jobs.enqueue(request.app.state.queue, status.submission_id)
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return SubmissionAccepted(
        submission_id=status.submission_id,
        status=status.status,
        reasons=status.reasons,
        status_url=str(request.url_for("submission_status", submission_id=status.submission_id)),
    )


@router.get("/{submission_id}", name="submission_status")
def submission_status(submission_id: uuid.UUID) -> service.SubmissionStatus:
    with db.connection() as conn:
        status = service.get_status(conn, submission_id)
    if status is None:
        raise _error(404, "submission_id", "no such submission")
    return status
