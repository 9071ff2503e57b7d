"""Reports: the flag stage, then the report/1 files, for the command line and for
downloads generated in the background (a national report takes longer than an
HTTP request should).

``write_election_report`` is the one entry point: it runs the flag stage
(``api.flags.service.run_flags``), gathers what the report shows from each
domain's repository into a ``tally.report.ReportData`` and has
``tally.report.write_report`` write the files, which touches no database.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import psycopg

from api.elections import repository as elections
from api.flags.service import run_flags
from api.reports import repository
from api.reports.schemas import Report, ReportState
from api.submissions import repository as submissions
from infra.pages import DEFAULT_LANGUAGE
from infra.progress import SILENT, Progress
from infra.settings import Settings
from tally import repository as tallies
from tally.report import ImportedSource, ReportData, write_report

__all__ = [
    "Report",
    "ReportState",
    "create",
    "file_path",
    "folder",
    "generate",
    "get",
    "recent",
    "reports_root",
    "write_election_report",
]


def write_election_report(
    conn: psycopg.Connection,
    election_id: str,
    out: Path,
    *,
    draws: int = 1000,
    lang: str = DEFAULT_LANGUAGE,
    progress: Progress = SILENT,
) -> dict[str, Any]:
    """Recompute and store every flag, then write the report/1 files into ``out``
    (report.html in ``lang``);
    returns the summary (summary.json's content). In the caller's transaction: the
    caller commits the flags. ``ElectionNotFound`` for an unknown election."""
    run = run_flags(conn, election_id, draws=draws, progress=progress)
    data = ReportData(
        election_id=election_id,
        run=run,
        flags=tallies.flag_rows(conn, election_id),
        option_labels=elections.option_labels(conn, election_id),
        submissions_by_status=submissions.count_by_status(conn, election_id),
        not_counted_by_reason=submissions.not_counted_by_reason(conn, election_id),
        imported_sources=[
            ImportedSource(ref.source, ref.level, ref.precincts)
            for ref in elections.current_crowd_imports(conn, election_id)
        ],
    )
    return write_report(data, out, lang=lang, progress=progress)


def reports_root(settings: Settings) -> Path:
    """Where background reports keep their files: one folder per report."""
    return settings.data_dir.resolve() / "reports"


def create(conn: psycopg.Connection, election_id: str) -> Report:
    """A new report of the election, queued (the caller enqueues its job)."""
    return repository.create(conn, election_id)


def get(conn: psycopg.Connection, report_id: uuid.UUID) -> Report | None:
    """The report, or None when there is none of that id."""
    return repository.get(conn, report_id)


def recent(conn: psycopg.Connection, limit: int = 20) -> list[Report]:
    """The latest reports asked for, newest first."""
    return repository.recent(conn, limit)


def folder(root: Path, report_id: uuid.UUID) -> Path:
    return root / str(report_id)


def generate(conn: psycopg.Connection, report_id: uuid.UUID, root: Path) -> ReportState:
    """Write the report's files; idempotent (a retried job starts the folder afresh).

    Commits as it goes: the claim first (so the report shows as running), then the
    flags with the report's status. A failure rolls the flags back, records the
    error and re-raises, for the queue's retry.
    """
    election_id = repository.mark_running(conn, report_id)
    conn.commit()
    if election_id is None:
        return ReportState.READY
    out = folder(root, report_id)
    shutil.rmtree(out, ignore_errors=True)
    try:
        write_election_report(conn, election_id, out)
    except Exception as exc:
        conn.rollback()
        repository.mark_failed(conn, report_id, f"{type(exc).__name__}: {exc}")
        conn.commit()
        raise
    repository.mark_ready(conn, report_id, sorted(p.name for p in out.iterdir() if p.is_file()))
    conn.commit()
    return ReportState.READY


def file_path(root: Path, report: Report, name: str) -> Path | None:
    """A file of a ready report, by its listed name only (never a path from the client)."""
    if report.status != ReportState.READY or name not in report.files:
        return None
    return folder(root, report.id) / name
