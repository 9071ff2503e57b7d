"""Every SQL statement on the voters' domain's tables: ``voter_challenges`` and
``device_tokens``. Functions run in the caller's transaction and never commit."""

from __future__ import annotations

import uuid
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from api.voters.schemas import Challenge


def forget_old_challenges(conn: psycopg.Connection, older_than_seconds: int) -> None:
    """Delete challenges created longer ago than the rate limit's window: nothing
    needs them any more (data minimisation)."""
    conn.execute(
        "DELETE FROM voter_challenges WHERE created_at < now() - make_interval(secs => %s)",
        (older_than_seconds,),
    )


def lock_voter(conn: psycopg.Connection, election_id: str, voter_key: bytes) -> None:
    """Serialise challenges for one voter and election until the transaction ends,
    so that concurrent requests cannot all pass the per-hour limit. The hash seed
    (3) keeps these keys apart from the other domains' advisory locks."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s || encode(%s, 'hex'), 3))",
        (election_id, voter_key),
    )


def recent_challenges(
    conn: psycopg.Connection, election_id: str, voter_key: bytes, window_seconds: int
) -> list[datetime]:
    """When the voter's challenges within the window were created, oldest first."""
    return [
        row[0]
        for row in conn.execute(
            """
            SELECT created_at FROM voter_challenges
            WHERE election_id = %s AND voter_key = %s
              AND created_at >= now() - make_interval(secs => %s)
            ORDER BY created_at
            """,
            (election_id, voter_key, window_seconds),
        )
    ]


def seconds_until(conn: psycopg.Connection, moment: datetime, plus_seconds: int) -> int:
    """Whole seconds from now until ``moment`` + ``plus_seconds`` (at least 1)."""
    row = conn.execute(
        "SELECT ceil(extract(epoch FROM (%s + make_interval(secs => %s)) - now()))::int",
        (moment, plus_seconds),
    ).fetchone()
    return max(1, int(row[0])) if row is not None and row[0] is not None else 1


def insert_challenge(
    conn: psycopg.Connection,
    challenge_id: uuid.UUID,
    election_id: str,
    voter_key: bytes,
    code_hash: bytes,
    ttl_seconds: int,
) -> None:
    conn.execute(
        """
        INSERT INTO voter_challenges (id, election_id, voter_key, code_hash, expires_at)
        VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))
        """,
        (challenge_id, election_id, voter_key, code_hash, ttl_seconds),
    )


def lock_challenge(
    conn: psycopg.Connection, election_id: str, challenge_id: uuid.UUID
) -> Challenge | None:
    """The challenge, its row locked until the transaction ends (so that two guesses
    at once both count); None when there is none of that id in the election."""
    with conn.cursor(row_factory=class_row(Challenge)) as cur:
        return cur.execute(
            """
            SELECT id, election_id, voter_key, code_hash, expires_at, attempts, used,
                   expires_at <= now() AS expired
            FROM voter_challenges WHERE id = %s AND election_id = %s
            FOR UPDATE
            """,
            (challenge_id, election_id),
        ).fetchone()


def count_attempt(conn: psycopg.Connection, challenge_id: uuid.UUID) -> int:
    """Count one more guess at the challenge's code; returns the attempts so far."""
    row = conn.execute(
        "UPDATE voter_challenges SET attempts = attempts + 1 WHERE id = %s RETURNING attempts",
        (challenge_id,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def mark_used(conn: psycopg.Connection, challenge_id: uuid.UUID) -> None:
    conn.execute("UPDATE voter_challenges SET used = true WHERE id = %s", (challenge_id,))


def delete_expired_tokens(conn: psycopg.Connection) -> None:
    conn.execute("DELETE FROM device_tokens WHERE expires_at <= now()")


def insert_token(
    conn: psycopg.Connection, token_sha256: bytes, election_id: str, voter_key: bytes, days: int
) -> datetime:
    """Store a device token's hash; returns when it expires."""
    row = conn.execute(
        """
        INSERT INTO device_tokens (token_sha256, election_id, voter_key, expires_at)
        VALUES (%s, %s, %s, now() + make_interval(days => %s))
        RETURNING expires_at
        """,
        (token_sha256, election_id, voter_key, days),
    ).fetchone()
    assert row is not None
    expires: datetime = row[0]
    return expires


def token_voter(conn: psycopg.Connection, token_sha256: bytes) -> tuple[str, bytes] | None:
    """(election id, voter key) of an unexpired device token; None otherwise."""
    row = conn.execute(
        "SELECT election_id, voter_key FROM device_tokens"
        " WHERE token_sha256 = %s AND expires_at > now()",
        (token_sha256,),
    ).fetchone()
    return None if row is None else (str(row[0]), bytes(row[1]))
