"""Reports generated in the background, for download: a national report takes
longer than an HTTP request should."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Literal

import psycopg
from psycopg.rows import class_row
from pydantic import BaseModel

from tally.report import write_report

ReportStatus = Literal["queued", "running", "ready", "failed"]


class Report(BaseModel):
    id: uuid.UUID
    election_id: str
    status: ReportStatus
    files: list[str]
    error: str | None


def create(conn: psycopg.Connection, election_id: str) -> Report:
    with conn.cursor(row_factory=class_row(Report)) as cur:
        report = cur.execute(
            "INSERT INTO reports (id, election_id) VALUES (%s, %s)"
            " RETURNING id, election_id, status, files, error",
            (uuid.uuid4(), election_id),
        ).fetchone()
    assert report is not None
    return report


def get(conn: psycopg.Connection, report_id: uuid.UUID) -> Report | None:
    with conn.cursor(row_factory=class_row(Report)) as cur:
        return cur.execute(
            "SELECT id, election_id, status, files, error FROM reports WHERE id = %s",
            (report_id,),
        ).fetchone()


def folder(root: Path, report_id: uuid.UUID) -> Path:
    return root / str(report_id)


def generate(conn: psycopg.Connection, report_id: uuid.UUID, root: Path) -> ReportStatus:
    """Write the report's files; idempotent (a retried job starts the folder afresh)."""
    claimed = conn.execute(
        "UPDATE reports SET status = 'running' WHERE id = %s AND status IN ('queued', 'running')"
        " RETURNING election_id",
        (report_id,),
    ).fetchone()
    conn.commit()
    if claimed is None:
        return "ready"
    out = folder(root, report_id)
    shutil.rmtree(out, ignore_errors=True)
    try:
        write_report(conn, claimed[0], out)
    except Exception as exc:
        conn.rollback()
        conn.execute(
            "UPDATE reports SET status = 'failed', error = %s, finished_at = now() WHERE id = %s",
            (f"{type(exc).__name__}: {exc}", report_id),
        )
        conn.commit()
        raise
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    conn.execute(
        "UPDATE reports SET status = 'ready', files = %s, finished_at = now() WHERE id = %s",
        (files, report_id),
    )
    conn.commit()
    return "ready"


def file_path(root: Path, report: Report, name: str) -> Path | None:
    """A file of a ready report, by its listed name only (never a path from the client)."""
    if report.status != "ready" or name not in report.files:
        return None
    return folder(root, report.id) / name
