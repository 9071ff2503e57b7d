"""HTTP routes of the analysts area: the reports page and the query API (precincts
and flags, filtered and paginated). Analysts and admins only, with a browser
session or an API token (``/account`` makes them)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.accounts.schemas import Principal, Role
from api.analysts import service
from api.analysts.schemas import FlagPage, PrecinctPage
from api.deps import Conn, JobQueue, require
from api.public import service as public
from api.public.schemas import StationStatus
from api.reports import jobs
from api.reports import service as reports
from api.reports.schemas import ReportState
from api.web import Page
from tally.vocab import Flag, FlagKind, ReviewStatus

router = APIRouter(tags=["analysts"])

Analyst = Annotated[Principal, require(Role.ANALYST, Role.ADMIN)]


def _(message: str) -> str:
    """Marks a message for the catalogue (``make messages``); translated when shown."""
    return message


PAGE_TITLE = _("Data for analysts")

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


@router.get("/analysts", response_class=HTMLResponse)
def analysts_page(page: Page, conn: Conn, analyst: Analyst) -> Response:
    """Ask for a report, follow it, download its files; how to use the query API."""
    recent = reports.recent(conn, RECENT_REPORTS)
    return page.render(
        "analysts/analysts.html",
        title=page.gettext(PAGE_TITLE),
        elections=public.elections(conn),
        reports=recent,
        pending=any(r.status in (ReportState.QUEUED, ReportState.RUNNING) for r in recent),
    )


@router.post("/analysts/reports", response_class=HTMLResponse)
def ask_for_report(
    conn: Conn,
    job_queue: JobQueue,
    analyst: Analyst,
    election_id: Annotated[str, Form()],
) -> Response:
    """Ask for an election's report from the page; back to the page, which follows it."""
    jobs.start(conn, job_queue, election_id)  # ElectionNotFound: 404
    return RedirectResponse("/analysts", status_code=303)
