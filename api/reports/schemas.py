"""The reports domain's types: a report asked for, and where it stands."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel


class ReportStatus(StrEnum):
    """Where a report stands (the ``reports.status`` column)."""

    QUEUED = "queued"  # asked for; no worker has started it
    RUNNING = "running"  # a worker is writing its files
    READY = "ready"  # its files can be downloaded
    FAILED = "failed"  # the worker gave up; ``error`` says why


class Report(BaseModel):
    """A report generated in the background, and the files it has when ready."""

    id: uuid.UUID
    election_id: str
    status: ReportStatus
    files: list[str]
    error: str | None
