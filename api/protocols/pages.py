"""The observers' pages of the protocols domain, in the review app (``/review/protocols``).

- ``GET  /review/protocols``: the upload form (election, station, one or several
  photos) and the state of the photos just sent (observers, admins);
- ``POST /review/protocols/photos``: the upload (multipart, sent by htmx with the
  page's CSRF header); every photo goes through ``routes.accept_photo``, the same
  ``service.accept`` as the API's upload;
- ``GET  /review/protocols/transcribe``, ``POST .../transcribe/{photo_id}/{field_id}``:
  an observer types one field after another from its cropped image, never shown
  the machine's reading nor another person's entry (``service.next_task``,
  ``service.enter``);
- ``GET  /review/protocols/disputed``, ``POST .../disputed/{photo_id}/{field_id}``:
  an admin decides the fields three people read three ways (``service.decide``).

Thin, as every route: the rules are in ``api.protocols.service``. A form answers 303
to the page it came from with what happened in the query, so that a reload never
posts twice; bad input re-renders the page with each error under its field.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

import psycopg
from fastapi import APIRouter, Form, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from api.accounts.schemas import Principal, Role
from api.deps import AppSettings, Conn, JobQueue, Pool, Store, require
from api.elections import repository as elections
from api.elections.service import page_election
from api.errors import GolosError, Invalid
from api.protocols import service
from api.protocols.schemas import NewProtocolPhoto, PhotoState, TranscriptionEntry, Uploader
from api.submissions.routes import FORM_OVERHEAD, read_parts
from api.web import Page, PageContext

router = APIRouter(tags=["protocols"])

Uploaders = Annotated[Principal, require(Role.OBSERVER, Role.ADMIN)]
Transcriber = Annotated[Principal, require(Role.OBSERVER)]
Admin = Annotated[Principal, require(Role.ADMIN)]
FieldId = Annotated[str, Path(pattern=r"^[a-z0-9_]{1,64}$")]

# Photos in one upload from the page: a protocol is one or two pages, retaken once.
MAX_PHOTOS = 6
# Photos whose state the page shows (the ids in its address).
MAX_SHOWN = 20
MAX_VALUE = 100_000_000


def _(message: str, page: PageContext, **values: object) -> str:
    """``message`` in the page's language (pybabel extracts ``_("...")``)."""
    return page.gettext(message, **values)


def _see(url: str, **query: str) -> RedirectResponse:
    return RedirectResponse(url + ("?" + urlencode(query) if query else ""), status_code=303)


def photo_ids(text: str) -> list[uuid.UUID]:
    """The photo ids of a page's address (``a,b,c``), at most ``MAX_SHOWN``; anything
    that is not a UUID is left out. Pure."""
    ids = []
    for part in text.split(",")[:MAX_SHOWN]:
        try:
            ids.append(uuid.UUID(part.strip()))
        except ValueError:
            continue
    return ids


# --- the upload ---------------------------------------------------------------------


async def read_photos(
    request: Request, max_photo_bytes: int
) -> tuple[dict[str, str], list[tuple[str, bytes]]]:
    """The upload form's text fields and its photos (file name, bytes), in memory."""
    parts = await read_parts(
        request,
        MAX_PHOTOS * max_photo_bytes + FORM_OVERHEAD,
        max_files=MAX_PHOTOS,
        what="the photos together",
    )
    texts: dict[str, str] = {}
    photos: list[tuple[str, bytes]] = []
    for name, value in parts:
        if isinstance(value, str):
            texts[name] = value
        elif name == "photo" and value[1]:
            photos.append(value)
    return texts, photos


def _upload_page(
    page: PageContext,
    conn: psycopg.Connection,
    election_id: str | None,
    *,
    precinct_id: str = "",
    states: list[PhotoState] | None = None,
    sent: list[tuple[str, uuid.UUID | None, GolosError | None]] | None = None,
    errors: list[GolosError] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    shown = states or []
    return page.render(
        "protocols/upload.html",
        status_code=status_code,
        title=_("Protocol photos", page),
        election_id=election_id,
        elections=elections.elections_newest_first(conn),
        precinct_id=precinct_id,
        states=shown,
        sent=sent or [],
        errors=errors or [],
        error_fields={e.field for e in errors or []},
        refresh_query=urlencode(
            {"election": election_id or "", "photos": ",".join(str(s.photo_id) for s in shown)}
        ),
        max_photos=MAX_PHOTOS,
    )


@router.get("/review/protocols", response_class=HTMLResponse)
def upload_page(
    page: Page, conn: Conn, caller: Uploaders, election: str | None = None, photos: str = ""
) -> HTMLResponse:
    """Send photos of a station's posted protocol; the state of those just sent."""
    election_id = page_election(conn, election)
    states = (
        service.photo_states(conn, election_id, photo_ids(photos), caller) if election_id else []
    )
    return _upload_page(page, conn, election_id, states=states)


# The page's form, documented in /openapi.json (the route reads the body itself).
UPLOAD_FORM_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "election_id": {"type": "string"},
                        "precinct_id": {"type": "string"},
                        "photo": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "maxItems": MAX_PHOTOS,
                        },
                    },
                    "required": ["election_id", "precinct_id", "photo"],
                }
            }
        },
    }
}


@router.post(
    "/review/protocols/photos", response_class=HTMLResponse, openapi_extra=UPLOAD_FORM_OPENAPI
)
async def upload_photos(
    request: Request,
    page: Page,
    pool: Pool,
    store: Store,
    settings: AppSettings,
    job_queue: JobQueue,
    caller: Uploaders,
) -> HTMLResponse:
    """The upload form's photos, each one through the API's own acceptance
    (``routes.accept_photo``); the page again, with each photo's state or error."""
    from api.protocols.routes import accept_photo

    texts, photos = await read_photos(request, settings.max_upload_bytes)
    election_id = texts.get("election_id", "").strip()
    precinct_id = texts.get("precinct_id", "").strip()
    client = request.client.host if request.client else None

    def check() -> tuple[str | None, list[GolosError]]:
        errors: list[GolosError] = []
        chosen = None
        with pool.connection() as conn:
            known = {eid for eid, _name in elections.elections_newest_first(conn)}
            if not election_id:
                errors.append(Invalid("election_id", "choose the election"))
            elif election_id not in known:
                errors.append(Invalid("election_id", f"unknown election {election_id!r}"))
            else:
                chosen = election_id
            if not precinct_id:
                errors.append(Invalid("precinct_id", "give the station's number"))
            elif len(precinct_id) > 200 or not precinct_id.isprintable():
                errors.append(Invalid("precinct_id", "at most 200 printable characters"))
            elif chosen is not None:
                try:
                    service.check_station(conn, chosen, precinct_id)
                except GolosError as exc:
                    errors.append(exc)
        if not photos:
            errors.append(Invalid("photo", "choose at least one photo of the protocol"))
        return chosen, errors

    def accept_all(chosen: str) -> list[tuple[str, uuid.UUID | None, GolosError | None]]:
        sent: list[tuple[str, uuid.UUID | None, GolosError | None]] = []
        for name, data in photos:
            new = NewProtocolPhoto(
                photo_id=str(uuid.uuid4()),
                election_id=chosen,
                precinct_id=precinct_id,
                photo=data,
                uploader=Uploader(user_id=caller.user_id),
            )
            try:
                accepted, _created = accept_photo(pool, store, settings, job_queue, new, client)
            except GolosError as exc:
                sent.append((name, None, exc))
            else:
                sent.append((name, accepted.photo_id, None))
        return sent

    def work() -> HTMLResponse:
        chosen, errors = check()
        sent = [] if errors or chosen is None else accept_all(chosen)
        ids = [photo_id for _name, photo_id, _error in sent if photo_id is not None]
        with pool.connection() as conn:
            states = service.photo_states(conn, chosen, ids, caller) if chosen else []
            return _upload_page(
                page,
                conn,
                chosen,
                precinct_id=precinct_id,
                states=states,
                sent=sent,
                errors=errors,
                status_code=200 if ids else 422,
            )

    response = await run_in_threadpool(work)
    if request.headers.get("HX-Request") and response.status_code == 422:
        # htmx swaps only a 2xx answer into the page: the errors must show.
        response.status_code = 200
    return response


# --- transcription ------------------------------------------------------------------


def _transcribe_page(
    page: PageContext,
    conn: psycopg.Connection,
    election_id: str | None,
    task: service.Task | None,
    *,
    done: str = "",
    error: GolosError | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return page.render(
        "protocols/transcribe.html",
        status_code=status_code,
        title=_("Type a protocol figure", page),
        election_id=election_id,
        elections=elections.elections_newest_first(conn),
        task=task,
        done=done,
        error=error,
    )


@router.get("/review/protocols/transcribe", response_class=HTMLResponse)
def transcribe_page(
    page: Page, conn: Conn, caller: Transcriber, election: str | None = None, done: str = ""
) -> HTMLResponse:
    """The next field for this observer to type, kept for them a few minutes: its
    cropped image and its line on the form, nothing else."""
    election_id = page_election(conn, election)
    task = service.next_task(conn, election_id, caller) if election_id else None
    return _transcribe_page(page, conn, election_id, task, done=done)


def typed_value(action: str, text: str) -> int | None:
    """The entry a transcription form carries: None for "I cannot read it", else the
    number typed (digits only, spaces allowed between them); Invalid naming the field
    ``value`` otherwise. Pure."""
    if action == "illegible":
        return None
    digits = "".join(text.split())
    if not digits:
        raise Invalid("value", "type the number as it is written, or choose “I cannot read it”")
    if not (digits.isascii() and digits.isdigit()):
        raise Invalid("value", "type digits only")
    value = int(digits)
    if value > MAX_VALUE:
        raise Invalid("value", f"at most {MAX_VALUE}")
    return TranscriptionEntry(value=value).value


@router.post("/review/protocols/transcribe/{photo_id}/{field_id}", response_model=None)
def transcribe(
    page: Page,
    conn: Conn,
    caller: Transcriber,
    photo_id: uuid.UUID,
    field_id: FieldId,
    election: Annotated[str, Form(max_length=200)],
    action: Annotated[str, Form(max_length=20)] = "save",
    value: Annotated[str, Form(max_length=40)] = "",
) -> HTMLResponse | RedirectResponse:
    """The observer's entry for the field, then the next field."""
    election_id = page_election(conn, election)
    try:
        entry = typed_value(action, value)
    except Invalid as error:
        labels = dict(service.template_fields(conn, election_id or ""))
        task = service.Task(photo_id, field_id, labels.get(field_id, field_id))
        return _transcribe_page(page, conn, election_id, task, error=error, status_code=422)
    service.enter(conn, photo_id, field_id, caller, entry)
    return _see("/review/protocols/transcribe", election=election_id or "", done="saved")


# --- disputed fields (admins) -------------------------------------------------------


@router.get("/review/protocols/disputed", response_class=HTMLResponse)
def disputed_page(
    page: Page, conn: Conn, caller: Admin, election: str | None = None, done: str = ""
) -> HTMLResponse:
    """The fields three people read three ways, with their entries, for an admin to
    decide."""
    election_id = page_election(conn, election)
    items = service.disputed_fields(conn, election_id) if election_id else []
    return page.render(
        "protocols/disputed.html",
        title=_("Disputed protocol figures", page),
        election_id=election_id,
        elections=elections.elections_newest_first(conn),
        items=items,
        done=done,
    )


@router.post("/review/protocols/disputed/{photo_id}/{field_id}")
def decide_disputed(
    conn: Conn,
    caller: Admin,
    photo_id: uuid.UUID,
    field_id: FieldId,
    election: Annotated[str, Form(max_length=200)],
    action: Annotated[str, Form(max_length=20)] = "decide",
    value: Annotated[str, Form(max_length=40)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    """An admin's decision on a disputed field (audit-logged with its entries)."""
    election_id = page_election(conn, election)
    decided = typed_value(action, value)
    service.decide(conn, photo_id, field_id, caller, decided, note)
    return _see("/review/protocols/disputed", election=election_id or "", done="decided")
