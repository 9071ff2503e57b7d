"""Every SQL statement on the protocols domain's tables: ``protocol_photos``,
``protocol_fields`` and ``transcription_entries`` (migration 0016).

Functions run in the caller's transaction and never commit; the rules that decide
what to write live in ``service`` and ``consensus``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from api.protocols.schemas import (
    ENTRIES_NEEDED,
    FieldSource,
    FieldState,
    PhotoReason,
    PhotoStatus,
)

# -- photos -------------------------------------------------------------------------


class PhotoRow(NamedTuple):
    id: uuid.UUID
    election_id: str
    precinct_id: str
    status: str
    reasons: list[str]
    duplicate_of: uuid.UUID | None
    uploader_user_id: int | None
    uploader_voter_key: bytes | None
    photo_sha256: str
    photo_orientation: int | None
    request_digest: str


_PHOTO_COLUMNS = (
    "id, election_id, precinct_id, status, reasons, duplicate_of, uploader_user_id,"
    " uploader_voter_key, photo_sha256, photo_orientation, request_digest"
)


def set_lock_timeout(conn: psycopg.Connection) -> None:
    """Wait at most 2 s for any lock until the transaction ends (an upload or an
    entry that meets a stuck transaction answers 503, retry, rather than hang)."""
    conn.execute("SELECT set_config('lock_timeout', '2s', true)")


def photo(conn: psycopg.Connection, photo_id: uuid.UUID) -> PhotoRow | None:
    with conn.cursor(row_factory=class_row(PhotoRow)) as cur:
        return cur.execute(
            f"SELECT {_PHOTO_COLUMNS} FROM protocol_photos WHERE id = %s", (photo_id,)
        ).fetchone()


def insert_photo(
    conn: psycopg.Connection,
    photo_id: uuid.UUID,
    election_id: str,
    precinct_id: str,
    *,
    user_id: int | None,
    voter_key: bytes | None,
    digest: str,
    photo_sha256: str,
    orientation: int | None,
) -> tuple[bool, uuid.UUID | None]:
    """Record a received photo: (whether it was inserted, the earlier photo of the
    same bytes at this station it duplicates). Not inserted: the id exists already,
    or a concurrent upload of the same bytes for the station committed first (the
    caller looks again)."""
    row = conn.execute(
        """
        INSERT INTO protocol_photos (id, election_id, precinct_id, uploader_user_id,
                                     uploader_voter_key, request_digest, photo_sha256,
                                     photo_orientation, duplicate_of)
        VALUES (%(id)s, %(election)s, %(precinct)s, %(user)s, %(voter)s, %(digest)s,
                %(sha)s, %(orientation)s,
                (SELECT id FROM protocol_photos
                 WHERE election_id = %(election)s AND precinct_id = %(precinct)s
                   AND photo_sha256 = %(sha)s AND duplicate_of IS NULL))
        ON CONFLICT DO NOTHING
        RETURNING duplicate_of
        """,
        {
            "id": photo_id,
            "election": election_id,
            "precinct": precinct_id,
            "user": user_id,
            "voter": voter_key,
            "digest": digest,
            "sha": photo_sha256,
            "orientation": orientation,
        },
    ).fetchone()
    if row is None:
        return False, None
    return True, row[0]


def field_states(conn: psycopg.Connection, photo_id: uuid.UUID) -> list[tuple[str, str]]:
    """(field_id, state) of the photo's fields, in the template's order."""
    rows = conn.execute(
        "SELECT field_id, state FROM protocol_fields WHERE photo_id = %s ORDER BY position",
        (photo_id,),
    ).fetchall()
    return [(str(f), str(s)) for f, s in rows]


def lock_received(conn: psycopg.Connection, photo_id: uuid.UUID) -> PhotoRow | None:
    """Lock the photo's row until the transaction ends, if it is still 'received'
    (not a duplicate); None when it is read already (another run recorded it)."""
    with conn.cursor(row_factory=class_row(PhotoRow)) as cur:
        return cur.execute(
            f"SELECT {_PHOTO_COLUMNS} FROM protocol_photos"
            " WHERE id = %s AND status = %s AND duplicate_of IS NULL FOR UPDATE",
            (photo_id, PhotoStatus.RECEIVED),
        ).fetchone()


def pending_photo(conn: psycopg.Connection, photo_id: uuid.UUID) -> PhotoRow | None:
    """The photo if it still waits to be read (and is no duplicate)."""
    with conn.cursor(row_factory=class_row(PhotoRow)) as cur:
        return cur.execute(
            f"SELECT {_PHOTO_COLUMNS} FROM protocol_photos"
            " WHERE id = %s AND status = %s AND duplicate_of IS NULL",
            (photo_id, PhotoStatus.RECEIVED),
        ).fetchone()


def record_status(
    conn: psycopg.Connection,
    photo_id: uuid.UUID,
    status: PhotoStatus,
    reasons: Sequence[str],
    reading: dict[str, Any] | None,
) -> None:
    conn.execute(
        "UPDATE protocol_photos SET status = %s, reasons = %s, reading = %s WHERE id = %s",
        (status, list(reasons), None if reading is None else Jsonb(reading), photo_id),
    )


def counted_photos(
    conn: psycopg.Connection,
    election_id: str,
    precinct_id: str,
    *,
    limit: int,
    exclude: Sequence[uuid.UUID] = (),
) -> list[PhotoRow]:
    """The station's counted photos (read, no duplicate or copy, none read as another
    station's), newest first, at most ``limit``, leaving out ``exclude``."""
    with conn.cursor(row_factory=class_row(PhotoRow)) as cur:
        return cur.execute(
            f"SELECT {_PHOTO_COLUMNS} FROM protocol_photos"
            " WHERE election_id = %(election)s AND precinct_id = %(precinct)s"
            "   AND status = ANY (%(counted)s) AND duplicate_of IS NULL"
            "   AND NOT (%(mismatch)s = ANY (reasons)) AND id <> ALL (%(exclude)s)"
            " ORDER BY seq DESC LIMIT %(limit)s",
            {
                "election": election_id,
                "precinct": precinct_id,
                "counted": [PhotoStatus.READ, PhotoStatus.PARTIAL],
                "mismatch": PhotoReason.PRECINCT_MISMATCH,
                "exclude": list(exclude),
                "limit": limit,
            },
        ).fetchall()


def stored_reading(conn: psycopg.Connection, photo_id: uuid.UUID) -> dict[str, Any] | None:
    """The reader's output stored for a photo (None before it is read)."""
    row = conn.execute("SELECT reading FROM protocol_photos WHERE id = %s", (photo_id,)).fetchone()
    return None if row is None else row[0]


def lock_station(conn: psycopg.Connection, election_id: str, precinct_id: str) -> None:
    """Hold the station's protocol-photo lock until the transaction ends: a photo is
    compared with its station's counted photos and recorded under it, so of two
    copies read at once, one is recorded first and the other finds it. Taken before
    the photo's row (``lock_received``)."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('protocol_station:' || %s, 0))",
        (f"{election_id}/{precinct_id}",),
    )


def record_copy(
    conn: psycopg.Connection,
    photo_id: uuid.UUID,
    original: uuid.UUID,
    status: PhotoStatus,
    reasons: Sequence[str],
    reading: dict[str, Any],
) -> None:
    """Record a photo read as a copy of ``original``: it counts for nothing, as a
    duplicate of the same bytes (its status shown is the original's), and no field
    of it goes to people."""
    conn.execute(
        "UPDATE protocol_photos SET duplicate_of = %s, status = %s, reasons = %s, reading = %s"
        " WHERE id = %s",
        (original, status, list(reasons), Jsonb(reading), photo_id),
    )


class NewField(NamedTuple):
    field_id: str
    position: int
    machine_value: int | None
    machine_confidence: float
    quad: list[list[float]] | None
    value: int | None
    source: FieldSource
    state: FieldState


def insert_fields(
    conn: psycopg.Connection, photo_id: uuid.UUID, fields: Sequence[NewField]
) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO protocol_fields (photo_id, field_id, position, machine_value,
                                         machine_confidence, quad, value, source, state)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT DO NOTHING
            """,
            [
                (
                    photo_id,
                    f.field_id,
                    f.position,
                    f.machine_value,
                    f.machine_confidence,
                    None if f.quad is None else Jsonb(f.quad),
                    f.value,
                    f.source,
                    f.state,
                )
                for f in fields
            ],
        )


def waiting_photos(
    conn: psycopg.Connection, after_seq: int, limit: int
) -> list[tuple[int, uuid.UUID]]:
    """Up to ``limit`` photos waiting to be read, oldest first, after ``after_seq``:
    (seq, id). A seek on protocol_photos_waiting."""
    rows = conn.execute(
        "SELECT seq, id FROM protocol_photos WHERE status = %s AND duplicate_of IS NULL"
        " AND seq > %s ORDER BY seq LIMIT %s",
        (PhotoStatus.RECEIVED, after_seq, limit),
    ).fetchall()
    return [(int(s), i) for s, i in rows]


# -- transcription ------------------------------------------------------------------


class FieldRow(NamedTuple):
    photo_id: uuid.UUID
    field_id: str
    state: str
    value: int | None
    election_id: str
    precinct_id: str
    uploader_user_id: int | None
    quad: list[list[float]] | None
    photo_sha256: str
    photo_orientation: int | None


_FIELD_COLUMNS = (
    "f.photo_id, f.field_id, f.state, f.value, p.election_id, p.precinct_id,"
    " p.uploader_user_id, f.quad, p.photo_sha256, p.photo_orientation"
)


def field(conn: psycopg.Connection, photo_id: uuid.UUID, field_id: str) -> FieldRow | None:
    with conn.cursor(row_factory=class_row(FieldRow)) as cur:
        return cur.execute(
            f"SELECT {_FIELD_COLUMNS} FROM protocol_fields f"
            " JOIN protocol_photos p ON p.id = f.photo_id"
            " WHERE f.photo_id = %s AND f.field_id = %s",
            (photo_id, field_id),
        ).fetchone()


def lock_field(conn: psycopg.Connection, photo_id: uuid.UUID, field_id: str) -> FieldRow | None:
    """Lock the field's row until the transaction ends: every entry and decision on
    a field takes this lock first, so they are decided one at a time."""
    with conn.cursor(row_factory=class_row(FieldRow)) as cur:
        return cur.execute(
            f"SELECT {_FIELD_COLUMNS} FROM protocol_fields f"
            " JOIN protocol_photos p ON p.id = f.photo_id"
            " WHERE f.photo_id = %s AND f.field_id = %s FOR UPDATE OF f",
            (photo_id, field_id),
        ).fetchone()


_WAITING = "f.state IN ('transcribing', 'needs_third')"
_NEEDED = " ".join(
    ["CASE f.state"]
    + [f"WHEN '{state}' THEN {n}" for state, n in ENTRIES_NEEDED.items()]
    + ["ELSE 0 END"]
)


def next_field(
    conn: psycopg.Connection, election_id: str, account_id: int, claim_seconds: int
) -> tuple[uuid.UUID, str] | None:
    """Claim the next field for ``account_id`` to type, for ``claim_seconds``; None
    when there is none. A field is handed out while its entries plus the others'
    live claims are fewer than it needs; never one of a photo the account uploaded,
    never one it has typed already. A field half-way (needing its third entry)
    first, then the oldest photo's fields in the form's order. Fields locked by an
    entry being made are skipped (SKIP LOCKED), not waited for."""
    row = conn.execute(
        f"""
        SELECT f.photo_id, f.field_id FROM protocol_fields f
        JOIN protocol_photos p ON p.id = f.photo_id
        WHERE p.election_id = %(election)s AND {_WAITING}
          AND p.uploader_user_id IS DISTINCT FROM %(me)s
          AND NOT EXISTS (
              SELECT 1 FROM transcription_entries e
              WHERE e.photo_id = f.photo_id AND e.field_id = f.field_id
                AND e.account_id = %(me)s AND e.entered_at IS NOT NULL)
          AND (SELECT count(*) FROM transcription_entries e
               WHERE e.photo_id = f.photo_id AND e.field_id = f.field_id
                 AND e.account_id <> %(me)s
                 AND (e.entered_at IS NOT NULL OR e.claimed_until > now())) < {_NEEDED}
        ORDER BY f.state = 'needs_third' DESC, p.seq, f.position
        LIMIT 1
        FOR UPDATE OF f SKIP LOCKED
        """,
        {"election": election_id, "me": account_id},
    ).fetchone()
    if row is None:
        return None
    conn.execute(
        """
        INSERT INTO transcription_entries (photo_id, field_id, account_id, claimed_until)
        VALUES (%s, %s, %s, now() + make_interval(secs => %s))
        ON CONFLICT (photo_id, field_id, account_id) DO UPDATE
            SET claimed_until = EXCLUDED.claimed_until
            WHERE transcription_entries.entered_at IS NULL
        """,
        (row[0], row[1], account_id, claim_seconds),
    )
    return row[0], str(row[1])


def drop_expired_claims(conn: psycopg.Connection) -> int:
    """Delete the claims that ran out without an entry; how many. An expired claim
    already counts for nothing (``next_field`` looks only at live ones) and an entry
    needs no claim (``enter`` inserts its row), so this only keeps the table to the
    entries and the claims in hand."""
    cursor = conn.execute(
        "DELETE FROM transcription_entries WHERE entered_at IS NULL AND claimed_until < now()"
    )
    return cursor.rowcount


def enter(
    conn: psycopg.Connection,
    photo_id: uuid.UUID,
    field_id: str,
    account_id: int,
    value: int | None,
) -> bool:
    """Store the account's entry (its claim becomes the entry); False when it has
    entered this field already. The primary key (photo, field, account) holds one
    row per person and field. Entered at the clock's time, not the transaction's:
    entries on a field are made one at a time under its lock, so this orders them."""
    row = conn.execute(
        """
        INSERT INTO transcription_entries (photo_id, field_id, account_id, value, entered_at)
        VALUES (%s, %s, %s, %s, clock_timestamp())
        ON CONFLICT (photo_id, field_id, account_id) DO UPDATE
            SET value = EXCLUDED.value, entered_at = EXCLUDED.entered_at, claimed_until = NULL
            WHERE transcription_entries.entered_at IS NULL
        RETURNING 1
        """,
        (photo_id, field_id, account_id, value),
    ).fetchone()
    return row is not None


def entries(conn: psycopg.Connection, photo_id: uuid.UUID, field_id: str) -> list[int | None]:
    """The field's entries, in the order they were made."""
    rows = conn.execute(
        "SELECT value FROM transcription_entries"
        " WHERE photo_id = %s AND field_id = %s AND entered_at IS NOT NULL"
        " ORDER BY entered_at, account_id",
        (photo_id, field_id),
    ).fetchall()
    return [None if v is None else int(v) for (v,) in rows]


def set_field(
    conn: psycopg.Connection,
    photo_id: uuid.UUID,
    field_id: str,
    state: FieldState,
    value: int | None,
    source: FieldSource,
) -> None:
    conn.execute(
        "UPDATE protocol_fields SET state = %s, value = %s, source = %s"
        " WHERE photo_id = %s AND field_id = %s",
        (state, value, source, photo_id, field_id),
    )


def disputed(conn: psycopg.Connection, election_id: str, limit: int) -> list[FieldRow]:
    """The election's disputed fields, oldest photo first."""
    with conn.cursor(row_factory=class_row(FieldRow)) as cur:
        return cur.execute(
            f"SELECT {_FIELD_COLUMNS} FROM protocol_fields f"
            " JOIN protocol_photos p ON p.id = f.photo_id"
            " WHERE p.election_id = %s AND f.state = %s ORDER BY p.seq, f.position LIMIT %s",
            (election_id, FieldState.DISPUTED, limit),
        ).fetchall()


# -- the stations' sources ------------------------------------------------------------


class StationField(NamedTuple):
    """One field of one counted photo, with how many people typed its value."""

    precinct_id: str
    photo_id: uuid.UUID
    field_id: str
    position: int
    state: str
    value: int | None
    source: str
    transcribers: int


def station_fields(
    conn: psycopg.Connection, election_id: str, precinct_id: str | None = None
) -> list[StationField]:
    """The fields of the counted photos (no duplicate, none read as another station's)
    of one station, or of every station when ``precinct_id`` is None, oldest photo
    first. ``transcribers``: the people whose entry is the field's value."""
    with conn.cursor(row_factory=class_row(StationField)) as cur:
        return cur.execute(
            """
            SELECT p.precinct_id, f.photo_id, f.field_id, f.position, f.state, f.value,
                   f.source,
                   (SELECT count(*) FROM transcription_entries e
                    WHERE e.photo_id = f.photo_id AND e.field_id = f.field_id
                      AND e.entered_at IS NOT NULL
                      AND e.value IS NOT DISTINCT FROM f.value)::int AS transcribers
            FROM protocol_fields f JOIN protocol_photos p ON p.id = f.photo_id
            WHERE p.election_id = %(election)s
              AND (%(precinct)s::text IS NULL OR p.precinct_id = %(precinct)s)
              AND p.duplicate_of IS NULL AND NOT (%(mismatch)s = ANY (p.reasons))
            ORDER BY p.precinct_id, p.seq, f.position
            """,
            {
                "election": election_id,
                "precinct": precinct_id,
                "mismatch": PhotoReason.PRECINCT_MISMATCH,
            },
        ).fetchall()


def clear_election(conn: psycopg.Connection, election_id: str) -> None:
    """Delete the election's protocol photos (their fields and entries cascade)."""
    conn.execute(
        "DELETE FROM protocol_photos WHERE election_id = %s AND duplicate_of IS NOT NULL",
        (election_id,),
    )
    conn.execute("DELETE FROM protocol_photos WHERE election_id = %s", (election_id,))
