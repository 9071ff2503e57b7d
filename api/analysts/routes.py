"""HTTP routes of the analysts area: the reports page and the query API (precincts
and flags, filtered and paginated). Analysts and admins only, with a browser
session or an API token (``/account`` makes them)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.accounts.schemas import Principal, Role
from api.analysts import service
from api.analysts.schemas import FlagPage, PrecinctPage
from api.deps import AppSettings, Conn, JobQueue, require
from api.errors import TooManyRequests
from api.public import service as public
from api.public.schemas import StationStatus
from api.reports import jobs
from api.reports import service as reports
from api.reports.schemas import ReportState
from api.web import Page, PageContext
from tally.vocab import Flag, FlagKind, ReviewStatus

router = APIRouter(tags=["analysts"])

Analyst = Annotated[Principal, require(Role.ANALYST, Role.ADMIN)]


def _(message: str) -> str:
    """Marks a message for the catalogue (``make messages``); translated when shown."""
    return message


PAGE_TITLE = _("Data for analysts")
# The page's word for a refusal by the limit on report jobs per account.
TOO_MANY_REPORTS = _(
    "Your account has asked for too many reports in a short time. Try again in %(minutes)d min."
)

# How many of the latest reports the page lists.
RECENT_REPORTS = 20


def _values(values: Iterable[object]) -> str:
    """The values a filter takes, for its description. Pure."""
    return ", ".join(str(v) for v in values)


Region = Annotated[str | None, Query(description="the stations' region, exactly as loaded")]
District = Annotated[str | None, Query(description="the stations' district, exactly as loaded")]
Limit = Annotated[int, Query(description=f"rows per page, 1 to {service.LIMIT_MAX}")]


@router.get("/v1/elections/{election_id}/precincts")
def query_precincts(
    election_id: str,
    conn: Conn,
    analyst: Analyst,
    region: Region = None,
    district: District = None,
    status: Annotated[
        str | None, Query(description=f"the station's status: {_values(StationStatus)}")
    ] = None,
    after: Annotated[
        str | None, Query(description="the `next` of the previous page (a station id)")
    ] = None,
    limit: Limit = service.LIMIT_DEFAULT,
) -> PrecinctPage:
    """The election's stations with their official protocol, verified photo votes,
    flag counts and status, in station id order, one page at a time: pass the
    answer's ``next`` as ``after`` until it is null. A filter's value that is not
    one the election has is refused (422, naming the filter)."""
    return service.precincts(
        conn,
        election_id,
        region=region,
        district=district,
        status=status,
        after=after,
        limit=limit,
    )


@router.get("/v1/elections/{election_id}/flags")
def query_flags(
    election_id: str,
    conn: Conn,
    analyst: Analyst,
    region: Region = None,
    district: District = None,
    flag: Annotated[str | None, Query(description=f"the flag: {_values(Flag)}")] = None,
    kind: Annotated[str | None, Query(description=f"the kind: {_values(FlagKind)}")] = None,
    review_status: Annotated[
        str | None, Query(description=f"observers' decision: {_values(ReviewStatus)}")
    ] = None,
    after: Annotated[
        str | None, Query(description="the `next` of the previous page (a flag id)")
    ] = None,
    limit: Limit = service.LIMIT_DEFAULT,
) -> FlagPage:
    """The election's flags (report/1 discrepancies with each flag's id), in flag id
    order, one page at a time: pass the answer's ``next`` as ``after`` until it is
    null. A filter's value that is not one the platform knows is refused (422,
    naming the filter)."""
    return service.flags(
        conn,
        election_id,
        region=region,
        district=district,
        flag=flag,
        kind=kind,
        review_status=review_status,
        after=after,
        limit=limit,
    )


def _render(
    page: PageContext, conn: Conn, status_code: int = 200, error: str | None = None
) -> HTMLResponse:
    recent = reports.recent(conn, RECENT_REPORTS)
    return page.render(
        "analysts/analysts.html",
        status_code=status_code,
        title=page.gettext(PAGE_TITLE),
        elections=public.elections(conn),
        reports=recent,
        pending=any(r.status in (ReportState.QUEUED, ReportState.RUNNING) for r in recent),
        error=error,
    )


def _refused(page: PageContext, conn: Conn, refusal: TooManyRequests) -> Response:
    """The page again, saying in its language how long to wait (429, Retry-After)."""
    minutes = max(1, math.ceil(refusal.retry_after / 60))
    response = _render(page, conn, 429, page.gettext(TOO_MANY_REPORTS, minutes=minutes))
    response.headers.update(refusal.headers())
    return response


@router.get("/analysts", response_class=HTMLResponse)
def analysts_page(page: Page, conn: Conn, analyst: Analyst) -> Response:
    """Ask for a report, follow it, download its files; how to use the query API."""
    return _render(page, conn)


@router.post("/analysts/reports", response_class=HTMLResponse)
def ask_for_report(
    page: Page,
    conn: Conn,
    settings: AppSettings,
    job_queue: JobQueue,
    analyst: Analyst,
    election_id: Annotated[str, Form()],
) -> Response:
    """Ask for an election's report from the page; back to the page, which follows it
    (429 with the page saying how long to wait, past the limit per account)."""
    try:
        # ElectionNotFound: 404
        jobs.start(conn, job_queue, election_id, jobs.account_limit(settings, analyst))
    except TooManyRequests as refusal:
        return _refused(page, conn, refusal)
    return RedirectResponse("/analysts", status_code=303)


@router.post("/analysts/reports/{report_id}/retry", response_class=HTMLResponse)
def retry_report_from_page(
    report_id: uuid.UUID,
    page: Page,
    conn: Conn,
    settings: AppSettings,
    job_queue: JobQueue,
    analyst: Analyst,
) -> Response:
    """Try a failed report again from the page (as POST /v1/reports/{id}/retry: 404
    for no such report, 409 for one that has not failed); back to the page."""
    try:
        jobs.retry_failed(conn, job_queue, report_id, jobs.account_limit(settings, analyst))
    except TooManyRequests as refusal:
        return _refused(page, conn, refusal)
    return RedirectResponse("/analysts", status_code=303)
