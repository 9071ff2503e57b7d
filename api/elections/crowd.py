"""Crowd tallies from elsewhere (``crowd-tallies/1``): kept as named sources, apart
from the platform's own photo-verified votes and never added to them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg

from api.elections.formats import FormatError, Problem, parse_crowd_csv
from api.elections.service import decode, lock_election, option_ids, unpack

Level = Literal["verified", "declared"]
LEVELS: tuple[Level, ...] = ("verified", "declared")


@dataclass(frozen=True)
class CrowdImport:
    election_id: str
    source: str
    level: Level
    import_id: int
    rows: int
    replaced_import_id: int | None


def import_crowd(
    conn: psycopg.Connection, election_id: str, data: bytes, filename: str, level: str
) -> CrowdImport:
    """Import one source's counts, all or nothing; re-importing a source replaces
    its counts and keeps the earlier import on record."""
    if level not in LEVELS:
        raise FormatError(
            [Problem(filename, f"level must be 'verified' or 'declared', not {level!r}")]
        )
    text = decode(unpack(data, filename), filename)
    with conn.transaction():
        lock_election(conn, election_id)
        options = option_ids(conn, election_id)
        known = {
            r[0]
            for r in conn.execute("SELECT id FROM precincts WHERE election_id = %s", (election_id,))
        }
        source, rows = parse_crowd_csv(text, options, known, file=Path(filename).name)
        previous = conn.execute(
            "UPDATE crowd_imports SET is_current = false"
            " WHERE election_id = %s AND source = %s AND is_current RETURNING id",
            (election_id, source),
        ).fetchone()
        replaced = previous[0] if previous else None
        created = conn.execute(
            """
            INSERT INTO crowd_imports (election_id, source, level, filename, sha256, row_count,
                                       replaces)
            VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id
            """,
            (
                election_id,
                source,
                level,
                Path(filename).name,
                hashlib.sha256(data).hexdigest(),
                len(rows),
                replaced,
            ),
        ).fetchone()
        assert created is not None
        import_id = int(created[0])
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY crowd_counts (import_id, election_id, precinct_id, option_id, votes)"
                " FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                for option, votes in row.votes.items():
                    if votes is not None:
                        copy.write_row((import_id, election_id, row.precinct_id, option, votes))
    return CrowdImport(election_id, source, level, import_id, len(rows), replaced)
