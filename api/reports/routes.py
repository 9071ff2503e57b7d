"""HTTP routes for analysts' report downloads: ask, then download when ready."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel

from api.elections.service import ElectionNotFound, get_election
from api.reports import jobs, service
from infra import db

router = APIRouter(tags=["reports"])


class ReportStatus(BaseModel):
    report_id: uuid.UUID
    election_id: str
    status: service.ReportStatus
    error: str | None
    status_url: str
    files: dict[str, str]  # name -> download URL


def _status(request: Request, report: service.Report) -> ReportStatus:
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


@router.post("/v1/elections/{election_id}/reports", status_code=202)
async def request_report(election_id: str, request: Request) -> ReportStatus:
    """Start generating the election's report (report/1) in the background."""
    with db.connection() as conn:
        try:
            get_election(conn, election_id)
        except ElectionNotFound as exc:
            raise HTTPException(404, detail={"field": "election_id", "message": str(exc)}) from None
        report = service.create(conn, election_id)
    await jobs.enqueue(request.app.state.queue, report.id)
    return _status(request, report)


@router.get("/v1/reports/{report_id}", name="report_status")
def report_status(report_id: uuid.UUID, request: Request) -> ReportStatus:
    with db.connection() as conn:
        report = service.get(conn, report_id)
    if report is None:
        raise HTTPException(404, detail={"field": "report_id", "message": "no such report"})
    return _status(request, report)


@router.get("/v1/reports/{report_id}/files/{name}", name="report_file")
def report_file(report_id: uuid.UUID, name: str) -> FileResponse:
    with db.connection() as conn:
        report = service.get(conn, report_id)
    path = service.file_path(jobs.reports_root(), report, name) if report else None
    if path is None or not path.is_file():
        raise HTTPException(404, detail={"field": "name", "message": "no such file (yet)"})
    return FileResponse(path, filename=f"{report.election_id}-{name}" if report else name)
