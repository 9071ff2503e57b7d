"""HTTP routes of the voters area: verifying a phone (JSON) and the voters' pages.

The pages are a shell: ``api/static/voters.js`` does the work in the browser
(verify, find the station, choose, photograph, upload with progress and retries)
against the JSON API, keeping the device token in the browser's localStorage.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from api.deps import PUBLIC, AppSettings, Conn
from api.elections import repository as elections
from api.elections.schemas import ElectionNotFound
from api.errors import NotFound
from api.voters import service
from api.voters.schemas import ChallengeSent, CodeConfirmation, DeviceToken, VerificationRequest
from api.voters.verifiers import get_verifier
from api.web import Page
from infra import ratelimit

router = APIRouter(tags=["voters"])


@router.post(
    "/v1/elections/{election_id}/verification",
    status_code=202,
    dependencies=[PUBLIC],
    responses={429: {"description": "too many codes for this number or network (Retry-After)"}},
)
def start_verification(
    election_id: str,
    body: VerificationRequest,
    request: Request,
    conn: Conn,
    settings: AppSettings,
) -> ChallengeSent:
    """Send a one-time code to the voter's phone (by the configured verifier)."""
    return service.start_verification(
        conn,
        get_verifier(settings),
        election_id,
        body.phone,
        secret=settings.voter_key(),
        network=ratelimit.network_key(
            settings.app_key(), request.client.host if request.client else None
        ),
        per_network=settings.limit(ratelimit.Scope.VERIFICATION_NETWORK),
    )


@router.post(
    "/v1/elections/{election_id}/verification/{challenge_id}",
    dependencies=[PUBLIC],
    responses={
        410: {"description": "the code expired or was used"},
        429: {"description": "too many wrong codes"},
    },
)
def confirm_verification(
    election_id: str,
    challenge_id: uuid.UUID,
    body: CodeConfirmation,
    conn: Conn,
    settings: AppSettings,
) -> DeviceToken:
    """Exchange the code for a device token (``golos_vt_...``), shown once."""
    return service.confirm(
        conn,
        election_id,
        challenge_id,
        body.code,
        secret=settings.voter_key(),
        token_days=settings.device_token_days,
    )


def _election_context(conn: Conn, election_id: str | None) -> dict[str, Any]:
    """What the voters' page shows of the election: its name and ballot options."""
    chosen = election_id or elections.latest_photo_election(conn)
    if chosen is None:
        raise NotFound("election", "no election accepts ballot photos now")
    try:
        template = elections.ballot_template_json(conn, chosen)
    except ElectionNotFound:
        raise NotFound("election", f"no election {chosen!r}") from None
    found = elections.find_election(conn, chosen)
    if template is None or found is None:
        raise NotFound("election", f"election {chosen!r} does not accept ballot photos")
    labels = elections.option_labels(conn, chosen)
    return {
        "election": found,
        "options": list(labels.items()),
        "max_marks": int(template.get("max_marks", 1)),
    }


@router.get("/vote", response_class=HTMLResponse, dependencies=[PUBLIC])
def vote_page(
    page: Page, conn: Conn, election: Annotated[str | None, Query(max_length=100)] = None
) -> HTMLResponse:
    """The voters' page: verify the phone, find the station, choose, send the photo."""
    context = _election_context(conn, election)
    return page.render("voters/vote.html", **context)


@router.get("/vote/status/{submission_id}", response_class=HTMLResponse, dependencies=[PUBLIC])
def status_page(
    submission_id: uuid.UUID,
    page: Page,
    conn: Conn,
    election: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    """A submission's status, fetched by the browser with the voter's device token
    (the page itself shows nothing of the submission)."""
    context = _election_context(conn, election)
    return page.render("voters/status.html", submission_id=str(submission_id), **context)
