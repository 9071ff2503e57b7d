"""HTTP routes for analysts' report downloads: ask, then download when ready."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from api.accounts.schemas import Principal, Role
from api.deps import AppSettings, Conn, JobQueue, require
from api.errors import NotFound
from api.reports import jobs, service
from api.reports.schemas import Report, ReportStatus

router = APIRouter(tags=["reports"])

# Reports are analysts' work (and admins'): everyone else gets 401 or 403.
Analyst = Annotated[Principal, require(Role.ANALYST, Role.ADMIN)]


def _answer(request: Request, report: Report) -> ReportStatus:
    return ReportStatus(
        report_id=report.id,
        election_id=report.election_id,
        status=report.status,
        error=report.error,
        status_url=str(request.url_for("report_status", report_id=report.id)),
        files={
            name: str(request.url_for("report_file", report_id=report.id, name=name))
            for name in report.files
        },
    )


# Report jobs are limited per account (GOLOS_REPORTS_PER_ACCOUNT).
LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"description": "too many reports asked for by this account (Retry-After)"}
}


@router.post("/v1/elections/{election_id}/reports", status_code=202, responses=LIMITED)
def request_report(
    election_id: str,
    request: Request,
    conn: Conn,
    settings: AppSettings,
    job_queue: JobQueue,
    analyst: Analyst,
) -> ReportStatus:
    """Start generating the election's report (report/1) in the background."""
    # A plain route: FastAPI runs it in its thread pool (see jobs.start).
    per_account = jobs.account_limit(settings, analyst)
    report = jobs.start(conn, job_queue, election_id, per_account)  # ElectionNotFound: 404
    return _answer(request, report)


@router.get("/v1/reports/{report_id}", name="report_status")
def report_status(
    report_id: uuid.UUID, request: Request, conn: Conn, analyst: Analyst
) -> ReportStatus:
    report = service.get(conn, report_id)
    if report is None:
        raise NotFound("report_id", "no such report")
    return _answer(request, report)


@router.post("/v1/reports/{report_id}/retry", status_code=202, responses=LIMITED)
def retry_report(
    report_id: uuid.UUID,
    request: Request,
    conn: Conn,
    settings: AppSettings,
    job_queue: JobQueue,
    analyst: Analyst,
) -> ReportStatus:
    """Generate a failed report again (409 for a report that has not failed)."""
    per_account = jobs.account_limit(settings, analyst)
    report = jobs.retry_failed(conn, job_queue, report_id, per_account)  # 404, 409
    return _answer(request, report)


@router.get("/v1/reports/{report_id}/files/{name}", name="report_file")
def report_file(
    report_id: uuid.UUID, name: str, conn: Conn, settings: AppSettings, analyst: Analyst
) -> FileResponse:
    report = service.get(conn, report_id)
    path = service.file_path(service.reports_root(settings), report, name) if report else None
    if report is None or path is None or not path.is_file():
        raise NotFound("name", "no such file (yet)")
    return FileResponse(path, filename=f"{report.election_id}-{name}")
