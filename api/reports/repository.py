"""Every SQL statement on the ``reports`` table.

Each function runs in the caller's transaction; none commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta

import psycopg
from psycopg.rows import class_row

from api.reports.schemas import Report, ReportState


def create(conn: psycopg.Connection, election_id: str) -> Report:
    """A new queued report of the election."""
    with conn.cursor(row_factory=class_row(Report)) as cur:
        report = cur.execute(
            "INSERT INTO reports (id, election_id) VALUES (%s, %s)"
            " RETURNING id, election_id, status, files, error, created_at, finished_at",
            (uuid.uuid4(), election_id),
        ).fetchone()
    assert report is not None
    return report


def get(conn: psycopg.Connection, report_id: uuid.UUID) -> Report | None:
    """The report, or None when there is none of that id."""
    with conn.cursor(row_factory=class_row(Report)) as cur:
        return cur.execute(
            "SELECT id, election_id, status, files, error, created_at, finished_at"
            " FROM reports WHERE id = %s",
            (report_id,),
        ).fetchone()


def recent(conn: psycopg.Connection, limit: int) -> list[Report]:
    """The latest reports asked for, of any election, newest first."""
    with conn.cursor(row_factory=class_row(Report)) as cur:
        return cur.execute(
            "SELECT id, election_id, status, files, error, created_at, finished_at"
            " FROM reports ORDER BY created_at DESC, finished_at DESC NULLS FIRST, id LIMIT %s",
            (limit,),
        ).fetchall()


def mark_running(conn: psycopg.Connection, report_id: uuid.UUID) -> str | None:
    """Claim a queued (or retried running) report; its election id, or None when the
    report is finished or unknown.

    Concurrency: the UPDATE locks the row until the caller commits, so of two
    workers claiming one report the second waits and then sees it as its first
    left it.
    """
    row = conn.execute(
        "UPDATE reports SET status = %s WHERE id = %s AND status IN (%s, %s) RETURNING election_id",
        (ReportState.RUNNING, report_id, ReportState.QUEUED, ReportState.RUNNING),
    ).fetchone()
    return None if row is None else str(row[0])


def mark_ready(conn: psycopg.Connection, report_id: uuid.UUID, files: Sequence[str]) -> None:
    """The report's files are written: these names can be downloaded."""
    conn.execute(
        "UPDATE reports SET status = %s, files = %s, finished_at = now() WHERE id = %s",
        (ReportState.READY, list(files), report_id),
    )


def mark_failed(conn: psycopg.Connection, report_id: uuid.UUID, error: str) -> None:
    """The report could not be written; ``error`` says why."""
    conn.execute(
        "UPDATE reports SET status = %s, error = %s, finished_at = now() WHERE id = %s",
        (ReportState.FAILED, error, report_id),
    )


def requeue_failed(conn: psycopg.Connection, report_id: uuid.UUID) -> Report | None:
    """Queue a failed report again (its error and files cleared); None when the
    report is not failed (or unknown)."""
    with conn.cursor(row_factory=class_row(Report)) as cur:
        return cur.execute(
            "UPDATE reports SET status = %s, error = NULL, files = '{}', finished_at = NULL"
            " WHERE id = %s AND status = %s"
            " RETURNING id, election_id, status, files, error, created_at, finished_at",
            (ReportState.QUEUED, report_id, ReportState.FAILED),
        ).fetchone()


def delete_finished_before(conn: psycopg.Connection, age: timedelta) -> list[uuid.UUID]:
    """Delete the reports that finished (ready or failed) more than ``age`` ago;
    their ids (their files are the caller's)."""
    rows = conn.execute(
        "DELETE FROM reports WHERE status IN (%s, %s) AND finished_at < now() - %s RETURNING id",
        (ReportState.READY, ReportState.FAILED, age),
    ).fetchall()
    return [row[0] for row in rows]


def existing(conn: psycopg.Connection, report_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these reports exist."""
    rows = conn.execute("SELECT id FROM reports WHERE id = ANY(%s)", (list(report_ids),)).fetchall()
    return {row[0] for row in rows}


def clear_election(conn: psycopg.Connection, election_id: str) -> None:
    """Delete the election's reports (their rows; the files are the caller's)."""
    conn.execute("DELETE FROM reports WHERE election_id = %s", (election_id,))
