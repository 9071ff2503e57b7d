"""Every SQL statement on the review domain's table, ``review_decisions``
(migration 0009). Functions run in the caller's transaction and never commit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import class_row

from api.review.schemas import Action, Decision, State

_COLUMNS = """
    id, election_id, precinct_id, subject, action, reason, note, evidence, state,
    proposed_by, proposer, proposed_at, decided_by, decider, decided_note, decided_at,
    override
"""


def _one(conn: psycopg.Connection, query: str, params: Sequence[Any]) -> Decision | None:
    with conn.cursor(row_factory=class_row(Decision)) as cur:
        return cur.execute(query, params).fetchone()


def _many(conn: psycopg.Connection, query: str, params: Sequence[Any]) -> list[Decision]:
    with conn.cursor(row_factory=class_row(Decision)) as cur:
        return cur.execute(query, params).fetchall()


def lock_subject(conn: psycopg.Connection, subject: str) -> None:
    """Serialise decisions on one subject until the transaction ends: taken first,
    before any row of the subject, so two decisions on one subject queue here."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('review:' || %s, 0))", (subject,))


def open_proposal(conn: psycopg.Connection, subject: str) -> Decision | None:
    """The proposal awaiting a second observer on the subject, if any."""
    return _one(
        conn,
        f"SELECT {_COLUMNS} FROM review_decisions WHERE subject = %s AND state = %s",
        (subject, State.PROPOSED),
    )


def get(conn: psycopg.Connection, decision_id: int) -> Decision | None:
    return _one(conn, f"SELECT {_COLUMNS} FROM review_decisions WHERE id = %s", (decision_id,))


def latest(conn: psycopg.Connection, subject: str) -> Decision | None:
    """The subject's latest decision, whatever its state."""
    return _one(
        conn,
        f"SELECT {_COLUMNS} FROM review_decisions WHERE subject = %s ORDER BY id DESC LIMIT 1",
        (subject,),
    )


def history(conn: psycopg.Connection, subject: str) -> list[Decision]:
    """Every decision on the subject, the latest first."""
    return _many(
        conn,
        f"SELECT {_COLUMNS} FROM review_decisions WHERE subject = %s ORDER BY id DESC",
        (subject,),
    )


def insert(
    conn: psycopg.Connection,
    *,
    election_id: str,
    precinct_id: str,
    subject: str,
    action: Action,
    reason: str | None,
    note: str,
    evidence: dict[str, Any],
    state: State,
    user_id: int,
    username: str,
    override: bool = False,
) -> Decision:
    """Record a decision; a final one is decided by its proposer at once."""
    final = state is State.FINAL
    decision = _one(
        conn,
        f"""
        INSERT INTO review_decisions (election_id, precinct_id, subject, action, reason, note,
                                      evidence, state, proposed_by, proposer, decided_by,
                                      decider, decided_at, override)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                CASE WHEN %s THEN now() END, %s)
        RETURNING {_COLUMNS}
        """,
        (
            election_id, precinct_id, subject, action, reason, note, json.dumps(evidence),
            state, user_id, username, user_id if final else None, username if final else None,
            final, override,
        ),
    )  # fmt: skip
    assert decision is not None
    return decision


def settle(
    conn: psycopg.Connection,
    decision_id: int,
    state: State,
    *,
    user_id: int | None,
    username: str | None,
    note: str | None,
    override: bool = False,
) -> Decision:
    """Move a proposal to its end state, recording who settled it (None: nobody,
    e.g. it went stale)."""
    decision = _one(
        conn,
        f"""
        UPDATE review_decisions
        SET state = %s, decided_by = %s, decider = %s, decided_note = %s, decided_at = now(),
            override = %s
        WHERE id = %s
        RETURNING {_COLUMNS}
        """,
        (state, user_id, username, note, override, decision_id),
    )
    assert decision is not None
    return decision


def awaiting(
    conn: psycopg.Connection, election_id: str, after_id: int | None, limit: int
) -> list[Decision]:
    """Proposals awaiting a second observer, oldest first (partial index
    review_decisions_awaiting)."""
    return _many(
        conn,
        f"""
        SELECT {_COLUMNS} FROM review_decisions
        WHERE election_id = %s AND state = %s AND id > %s
        ORDER BY id LIMIT %s
        """,
        (election_id, State.PROPOSED, after_id or 0, limit),
    )


def awaiting_for(conn: psycopg.Connection, subjects: Sequence[str]) -> dict[str, Action]:
    """The action awaiting agreement on each of ``subjects`` that has one."""
    rows = conn.execute(
        "SELECT subject, action FROM review_decisions WHERE subject = ANY(%s) AND state = %s",
        (list(subjects), State.PROPOSED),
    )
    return {str(subject): Action(action) for subject, action in rows}


def count_awaiting(conn: psycopg.Connection, election_id: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM review_decisions WHERE election_id = %s AND state = %s",
        (election_id, State.PROPOSED),
    ).fetchone()
    assert row is not None
    return int(row[0])
