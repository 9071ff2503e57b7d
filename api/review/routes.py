"""HTTP routes of the review area: the observers' pages, their forms' actions, the
photos (observers and admins only) and the same queues as JSON.

Every route admits observers and admins only. Forms post to ``/review/...`` and
answer 303 to the page of what was decided, with what happened in the query
(``?done=proposed`` ...), so that a reload never posts twice. The rules are in
``api.review.service``; nothing here decides anything.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from PIL import Image

from api.accounts.schemas import Principal, Role
from api.deps import Conn, Store, require
from api.elections import repository as elections
from api.errors import NotFound
from api.review import service
from api.review.schemas import (
    FLAG_ACTIONS,
    SUBMISSION_ACTIONS,
    Decision,
    FlagPage,
    Outcome,
    RejectReason,
    State,
    SubmissionDetail,
    SubmissionPage,
)
from api.submissions.schemas import Reason
from api.web import Page, PageContext
from ocr.images import upright_photo
from tally.vocab import Flag, FlagKind, ReviewStatus

router = APIRouter(tags=["review"])

Reviewer = Annotated[Principal, require(Role.OBSERVER, Role.ADMIN)]

# The reasons a submission is in review, as the queue's filter offers them.
QUEUE_REASONS: tuple[str, ...] = (
    Reason.NEAR_DUPLICATE_PHOTO,
    Reason.CHOICE_MISMATCH,
    "unreadable",
    Reason.PROCESSING_FAILED,
    Reason.QUARANTINED,
    Reason.VOTER_BURST,
    Reason.NETWORK_BURST,
    Reason.STATION_BURST,
)
THUMBNAIL_PIXELS = 320
PHOTO_HEADERS = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


def _(message: str, page: PageContext, **values: object) -> str:
    """``message`` in the page's language (pybabel extracts ``_("...")``)."""
    return page.gettext(message, **values)


def _see(url: str, **query: str) -> RedirectResponse:
    target = url + ("?" + urlencode(query) if query else "")
    return RedirectResponse(target, status_code=303)


def _filters_context(conn: Conn, election_id: str | None) -> dict[str, Any]:
    places = elections.election_places(conn, election_id) if election_id else []
    return {
        "elections": elections.elections_newest_first(conn),
        "regions": sorted({region for region, _ in places}),
        "districts": places,
    }


# --- overview -----------------------------------------------------------------------


@router.get("/review", response_class=HTMLResponse)
def review_home(
    page: Page, conn: Conn, principal: Reviewer, election: str | None = None
) -> HTMLResponse:
    """What waits for the observers in an election: the two queues and the proposals."""
    election_id = service.election_choice(conn, election)
    summary = service.overview(conn, election_id) if election_id else None
    return page.render(
        "review/overview.html",
        title=_("Review", page),
        election_id=election_id,
        summary=summary,
        FlagKind=FlagKind,
        **_filters_context(conn, election_id),
    )


def _queue_context(
    conn: Conn, queue: SubmissionPage | FlagPage | None, filters: dict[str, str], after: str
) -> dict[str, Any]:
    """What both queue pages show around their rows: the options' labels, the links
    to the next and the first page (the filters kept), and the filters' choices."""
    return {
        "labels": elections.option_labels(conn, queue.election_id) if queue else {},
        "next_query": (
            urlencode({"election": queue.election_id, **filters, "after": queue.next_after})
            if queue and queue.next_after
            else None
        ),
        "first_query": urlencode({"election": queue.election_id, **filters}) if queue else "",
        "paged": bool(after),
        **_filters_context(conn, queue.election_id if queue else None),
    }


# --- submissions --------------------------------------------------------------------


def _submission_page(
    conn: Conn,
    election: str | None,
    region: str,
    district: str,
    reason: str,
    after: str,
) -> SubmissionPage | None:
    election_id = service.election_choice(conn, election)
    if election_id is None:
        return None
    return service.submission_queue(
        conn, election_id, region=region, district=district, reason=reason, after=after
    )


@router.get("/review/submissions", response_class=HTMLResponse)
def submissions_queue(
    page: Page,
    conn: Conn,
    principal: Reviewer,
    election: str | None = None,
    region: str = "",
    district: str = "",
    reason: str = "",
    after: str = "",
) -> HTMLResponse:
    """The submissions in review, strongest evidence first, filterable."""
    queue = _submission_page(conn, election, region, district, reason, after)
    filters = {"region": region, "district": district, "reason": reason}
    return page.render(
        "review/submissions.html",
        title=_("Submissions in review", page),
        queue=queue,
        filters=filters,
        reasons=QUEUE_REASONS,
        **_queue_context(conn, queue, filters, after),
    )


@router.get("/v1/review/submissions", response_model=SubmissionPage)
def submissions_queue_json(
    conn: Conn,
    principal: Reviewer,
    election: str | None = None,
    region: str = "",
    district: str = "",
    reason: str = "",
    after: str = "",
) -> SubmissionPage:
    """The submissions queue as JSON (the page's filters and cursor)."""
    queue = _submission_page(conn, election, region, district, reason, after)
    if queue is None:
        raise NotFound("election", "there is no election yet")
    return queue


@router.get("/review/submissions/{submission_id}", response_class=HTMLResponse)
def submission_page(
    page: Page, conn: Conn, principal: Reviewer, submission_id: uuid.UUID, done: str = ""
) -> HTMLResponse:
    """One submission: its photo beside the reading and the declared choice."""
    detail = service.submission_detail(conn, submission_id)
    labels = elections.option_labels(conn, detail.election_id)
    proposal = next((d for d in detail.decisions if d.state is State.PROPOSED), None)
    return page.render(
        "review/submission.html",
        title=_("Submission in review", page),
        s=detail,
        labels=labels,
        proposal=proposal,
        done=done,
        actions=SUBMISSION_ACTIONS,
        reject_reasons=list(RejectReason),
    )


@router.get("/v1/review/submissions/{submission_id}", response_model=SubmissionDetail)
def submission_json(conn: Conn, principal: Reviewer, submission_id: uuid.UUID) -> SubmissionDetail:
    """One submission as JSON: the reading, the declared choice, the photo's URL."""
    return service.submission_detail(conn, submission_id)


@router.post("/review/submissions/{submission_id}/decision")
def decide_submission(
    conn: Conn,
    principal: Reviewer,
    submission_id: uuid.UUID,
    action: Annotated[str, Form()],
    reason: Annotated[str | None, Form()] = None,
    note: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Count as read, count as declared (both need a second observer), or reject."""
    outcome = service.decide_submission(
        conn, principal, submission_id, action, reason=reason or None, note=note
    )
    return _see(f"/review/submissions/{submission_id}", done=_done(outcome))


def _done(outcome: Outcome) -> str:
    if outcome.repeated:
        return "repeated"
    if outcome.override:
        return "override"
    return str(outcome.state)


# --- flags and stations -------------------------------------------------------------


def _flag_page(
    conn: Conn,
    election: str | None,
    region: str,
    district: str,
    flag: str,
    kind: str,
    status: str,
    after: str,
) -> FlagPage | None:
    election_id = service.election_choice(conn, election)
    if election_id is None:
        return None
    return service.flag_queue(
        conn,
        election_id,
        region=region,
        district=district,
        flag=flag,
        kind=kind,
        status=status,
        after=after,
    )


@router.get("/review/flags", response_class=HTMLResponse)
def flags_queue(
    page: Page,
    conn: Conn,
    principal: Reviewer,
    election: str | None = None,
    region: str = "",
    district: str = "",
    flag: str = "",
    kind: str = "",
    status: str = "",
    after: str = "",
) -> HTMLResponse:
    """The flags, strongest evidence first, filterable."""
    queue = _flag_page(conn, election, region, district, flag, kind, status, after)
    filters = {
        "region": region,
        "district": district,
        "flag": flag,
        "kind": kind,
        "status": status,
    }
    return page.render(
        "review/flags.html",
        title=_("Flags", page),
        queue=queue,
        filters=filters,
        flag_names=list(Flag),
        kinds=list(FlagKind),
        statuses=list(ReviewStatus),
        **_queue_context(conn, queue, filters, after),
    )


@router.get("/v1/review/flags", response_model=FlagPage)
def flags_queue_json(
    conn: Conn,
    principal: Reviewer,
    election: str | None = None,
    region: str = "",
    district: str = "",
    flag: str = "",
    kind: str = "",
    status: str = "",
    after: str = "",
) -> FlagPage:
    """The flags queue as JSON (the page's filters and cursor)."""
    queue = _flag_page(conn, election, region, district, flag, kind, status, after)
    if queue is None:
        raise NotFound("election", "there is no election yet")
    return queue


@router.get("/review/stations/{election_id}/{precinct_id}", response_class=HTMLResponse)
def station_page(
    page: Page,
    conn: Conn,
    principal: Reviewer,
    election_id: str,
    precinct_id: str,
    done: str = "",
) -> HTMLResponse:
    """A station's evidence side by side, and its flags with their actions."""
    service.election_choice(conn, election_id)
    evidence = service.station_evidence(conn, election_id, precinct_id)
    return page.render(
        "review/station.html",
        title=_("Station %(station)s", page, station=precinct_id),
        e=evidence,
        done=done,
        actions=FLAG_ACTIONS,
        photo_url=service.photo_url,
    )


@router.post("/review/flags/{flag_id}/decision")
def decide_flag(
    conn: Conn,
    principal: Reviewer,
    flag_id: int,
    action: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Confirm, dismiss or ask for more evidence (a proof flag needs a second observer)."""
    outcome = service.decide_flag(conn, principal, flag_id, action, note=note)
    decision = service.decision(conn, outcome.decision_id)
    return _see(service.subjects_url(decision), done=_done(outcome))


# --- proposals awaiting a second observer -------------------------------------------


@router.get("/review/decisions", response_class=HTMLResponse)
def decisions_page(
    page: Page,
    conn: Conn,
    principal: Reviewer,
    election: str | None = None,
    after: Annotated[int | None, Query(ge=0)] = None,
    done: str = "",
) -> HTMLResponse:
    """Proposals awaiting a second observer, oldest first."""
    election_id = service.election_choice(conn, election)
    proposals = service.awaiting(conn, election_id, after) if election_id else []
    return page.render(
        "review/decisions.html",
        title=_("Awaiting a second observer", page),
        election_id=election_id,
        proposals=proposals,
        done=done,
        subject_url=service.subjects_url,
        next_after=proposals[-1].id if len(proposals) == service.PAGE_SIZE else None,
        elections=elections.elections_newest_first(conn),
    )


@router.get("/v1/review/decisions", response_model=list[Decision])
def decisions_json(
    conn: Conn,
    principal: Reviewer,
    election: str | None = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> list[Decision]:
    """Proposals awaiting a second observer, oldest first, as JSON."""
    election_id = service.election_choice(conn, election)
    return service.awaiting(conn, election_id, after) if election_id else []


@router.post("/review/decisions/{decision_id}/agree")
def agree(
    conn: Conn,
    principal: Reviewer,
    decision_id: int,
    note: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """A second observer agrees: the proposal is final and takes effect."""
    outcome = service.agree(conn, principal, decision_id, note)
    return _see(_back(back, conn, decision_id), done=_done(outcome))


@router.post("/review/decisions/{decision_id}/disagree")
def disagree(
    conn: Conn,
    principal: Reviewer,
    decision_id: int,
    note: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """A second observer disagrees: the subject goes back to its queue."""
    outcome = service.disagree(conn, principal, decision_id, note)
    return _see(_back(back, conn, decision_id), done=_done(outcome))


def _back(back: str, conn: Conn, decision_id: int) -> str:
    """Where a form returns: the decisions list when it came from there, else the
    decision's subject."""
    if back == "decisions":
        return "/review/decisions"
    return service.subjects_url(service.decision(conn, decision_id))


# --- photos (observers and admins only) ---------------------------------------------


def _media_type(data: bytes) -> str:
    """The stored photo's type from its first bytes (the store keeps JPEG). Pure."""
    return "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"


def shrink(data: bytes, size: int = THUMBNAIL_PIXELS) -> bytes:
    """A JPEG at most ``size`` pixels on its longer side. Pure. A JPEG is decoded at
    a reduced scale (``draft``), several times faster than decoding it whole."""
    with Image.open(io.BytesIO(data), formats=["JPEG", "PNG"]) as image:
        image.draft("RGB", (size, size))
        small = image.convert("RGB")
    small.thumbnail((size, size))
    out = io.BytesIO()
    small.save(out, "JPEG", quality=80)
    return out.getvalue()


_thumbnails: OrderedDict[tuple[str, int | None], bytes] = OrderedDict()
_thumbnails_lock = threading.Lock()
THUMBNAILS_KEPT = 512  # about 15 kB each


def make_thumbnail(key: str, orientation: int | None, read: Callable[[str], bytes]) -> bytes:
    """The upright thumbnail of the stored photo ``key`` turned by its EXIF
    ``orientation``, made once per process: photos are stored under their hash, so a
    key's thumbnail never changes (two submissions of one file may differ in
    orientation, hence both in the cache's key). Shrunk first, then turned: the same
    picture as turning the whole photo, for a fraction of the work."""
    with _thumbnails_lock:
        if (key, orientation) in _thumbnails:
            _thumbnails.move_to_end((key, orientation))
            return _thumbnails[key, orientation]
    made = upright_photo(shrink(read(key)), orientation)
    with _thumbnails_lock:
        _thumbnails[key, orientation] = made
        while len(_thumbnails) > THUMBNAILS_KEPT:
            _thumbnails.popitem(last=False)
    return made


@router.get("/review/photos/{submission_id}")
def photo(conn: Conn, store: Store, principal: Reviewer, submission_id: uuid.UUID) -> Response:
    """A submission's photo as a person should see it: the stored file (metadata
    stripped at upload) turned by the EXIF orientation kept in its row."""
    key = service.photo_key(conn, submission_id)
    data = upright_photo(store.get(key), service.photo_orientation(conn, submission_id))
    return Response(data, media_type=_media_type(data), headers=PHOTO_HEADERS)


@router.get("/review/photos/{submission_id}/thumbnail")
def photo_thumbnail(
    conn: Conn, store: Store, principal: Reviewer, submission_id: uuid.UUID
) -> Response:
    """A small upright JPEG of a submission's photo (made with Pillow, kept in memory)."""
    key = service.photo_key(conn, submission_id)
    orientation = service.photo_orientation(conn, submission_id)
    return Response(
        make_thumbnail(key, orientation, store.get), media_type="image/jpeg", headers=PHOTO_HEADERS
    )
