"""The reports domain's types: a report asked for, and where it stands."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel


class ReportState(StrEnum):
    """Where a report stands (the ``reports.status`` column)."""

    QUEUED = "queued"  # asked for; no worker has started it
    RUNNING = "running"  # a worker is writing its files
    READY = "ready"  # its files can be downloaded
    FAILED = "failed"  # the worker gave up; ``error`` says why


class Report(BaseModel):
    """A report generated in the background, and the files it has when ready."""

    id: uuid.UUID
    election_id: str
    status: ReportState
    files: list[str]
    error: str | None
    created_at: datetime | None = None  # to the minute
    finished_at: datetime | None = None


class ReportStatus(BaseModel):
    """The answer about a report (OpenAPI component ``ReportStatus``): its state and,
    once ready, each file's download URL."""

    report_id: uuid.UUID
    election_id: str
    status: ReportState
    error: str | None
    status_url: str
    files: dict[str, str]  # name -> download URL
