"""Every SQL statement on the audit log (audit_log): append and read, never change."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

# The advisory lock that orders appends (one number for the whole platform; it
# does not collide with procrastinate's, which lock on job ids in another space).
APPEND_LOCK = 0x601_05_A0D17


@dataclass(frozen=True)
class Entry:
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


_COLUMNS = "seq, at, actor, action, subject, detail, prev_hash, hash"


def lock_for_append(conn: psycopg.Connection) -> None:
    """Held until the caller's transaction ends: one append at a time, so that each
    entry's predecessor is the last committed one."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))


def last(conn: psycopg.Connection) -> tuple[int, str] | None:
    row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def now(conn: psycopg.Connection) -> datetime:
    row = conn.execute("SELECT date_trunc('milliseconds', clock_timestamp())").fetchone()
    assert row is not None
    return row[0]


def insert(conn: psycopg.Connection, entry: Entry) -> None:
    conn.execute(
        f"INSERT INTO audit_log ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            entry.seq,
            entry.at,
            entry.actor,
            entry.action,
            entry.subject,
            Jsonb(entry.detail),
            entry.prev_hash,
            entry.hash,
        ),
    )


def entries(conn: psycopg.Connection, after: int = 0, batch: int = 5000) -> Iterator[Entry]:
    """Every entry after ``after``, in order, read in batches (keyset pages)."""
    while True:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM audit_log WHERE seq > %s ORDER BY seq LIMIT %s",
            (after, batch),
        ).fetchall()
        for row in rows:
            yield Entry(*row)
        if len(rows) < batch:
            return
        after = rows[-1][0]


def recent(conn: psycopg.Connection, limit: int, subject_prefix: str | None = None) -> list[Entry]:
    """The newest entries, newest first (optionally those whose subject starts with
    the prefix, e.g. ``flag:`` or ``submission:<id>``)."""
    if subject_prefix is None:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT %s", (limit,)
        ).fetchall()
    else:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM audit_log WHERE subject LIKE %s ORDER BY seq DESC LIMIT %s",
            (subject_prefix.replace("%", r"\%").replace("_", r"\_") + "%", limit),
        ).fetchall()
    return [Entry(*row) for row in rows]
