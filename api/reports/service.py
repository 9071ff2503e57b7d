"""Reports: the flag stage, then the report/1 files, for the command line and for
downloads generated in the background (a national report takes longer than an
HTTP request should).

``write_election_report`` is the one entry point: it runs the flag stage
(``api.flags.service.run_flags``), gathers what the report shows from each
domain's repository into a ``tally.report.ReportData`` and has
``tally.report.write_report`` write the files, which touches no database.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from datetime import timedelta
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

log = logging.getLogger(__name__)

# What a failed report says: the exception's text may name server paths and
# settings, so it goes to the worker's log (with the report's id), never to the
# analyst.
FAILED_MESSAGE = "the report could not be written (the server's log says why); retry it"
# How long a report's files and row are kept after it finished: a report is
# a download of the moment (the next one has the newer counts), and each takes
# about 2 MB; a day lets an analyst come back for it.
REPORT_MAX_AGE = timedelta(hours=24)

__all__ = [
    "Report",
    "ReportState",
    "create",
    "expire",
    "file_path",
    "folder",
    "generate",
    "get",
    "recent",
    "reports_root",
    "retry",
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


def generate(
    conn: psycopg.Connection, report_id: uuid.UUID, root: Path, *, final: bool = True
) -> ReportState:
    """Write the report's files; idempotent (a retried job starts the folder afresh).

    Commits as it goes: the claim first (so the report shows as running), then the
    flags with the report's status. A failure rolls the flags back, logs it and
    re-raises; on the ``final`` attempt it also marks the report failed (with
    FAILED_MESSAGE), else the report stays running for the queue's retry to claim.
    """
    election_id = repository.mark_running(conn, report_id)
    conn.commit()
    if election_id is None:
        return ReportState.READY
    out = folder(root, report_id)
    shutil.rmtree(out, ignore_errors=True)
    try:
        write_election_report(conn, election_id, out)
    except Exception:
        conn.rollback()
        log.exception("report %s could not be written", report_id)
        if final:
            shutil.rmtree(out, ignore_errors=True)
            repository.mark_failed(conn, report_id, FAILED_MESSAGE)
            conn.commit()
        raise
    repository.mark_ready(conn, report_id, sorted(p.name for p in out.iterdir() if p.is_file()))
    conn.commit()
    return ReportState.READY


def retry(conn: psycopg.Connection, report_id: uuid.UUID) -> Report | None:
    """Queue a failed report again (the caller commits, then queues its job); None
    when it is not failed."""
    return repository.requeue_failed(conn, report_id)


def expire(conn: psycopg.Connection, root: Path, age: timedelta = REPORT_MAX_AGE) -> int:
    """Delete the reports finished more than ``age`` ago, rows and files, and any
    report folder whose row is gone (an election's data cleared); how many folders
    were removed. Commits the deletion before touching the files, so a listed
    report always has its files."""
    repository.delete_finished_before(conn, age)
    conn.commit()
    folders = {}
    for path in root.iterdir() if root.is_dir() else []:
        try:
            folders[uuid.UUID(path.name)] = path
        except ValueError:
            continue  # not a report's folder
    kept = repository.existing(conn, folders)
    conn.commit()
    removed = 0
    for report_id, path in folders.items():
        if report_id not in kept:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    if removed:
        log.info("removed %d expired reports' files", removed)
    return removed


def file_path(root: Path, report: Report, name: str) -> Path | None:
    """A file of a ready report, by its listed name only (never a path from the client)."""
    if report.status != ReportState.READY or name not in report.files:
        return None
    return folder(root, report.id) / name
