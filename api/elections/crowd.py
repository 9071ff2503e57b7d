"""Crowd tallies from elsewhere (``crowd-tallies/1``): kept as named sources, apart
from the platform's own photo-verified votes and never added to them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg

from api.elections import repository
from api.elections.formats import decode, parse_crowd_csv, parse_level, unpack
from api.elections.schemas import CrowdImport


def import_crowd(
    conn: psycopg.Connection, election_id: str, data: bytes, filename: str, level: str
) -> CrowdImport:
    """Import one source's counts, all or nothing; re-importing a source replaces
    its counts and keeps the earlier import on record.

    ``level`` is an ``EvidenceLevel`` (or its name, as the command line gives it)."""
    evidence = parse_level(level, filename)
    text = decode(unpack(data, filename), filename)
    name = Path(filename).name
    with conn.transaction():
        repository.lock_election(conn, election_id)
        options = repository.option_ids(conn, election_id)
        known = repository.precinct_ids(conn, election_id)
        source, rows = parse_crowd_csv(text, options, known, file=name)
        ids = repository.create_crowd_import(
            conn, election_id, source, evidence, name, hashlib.sha256(data).hexdigest(), len(rows)
        )
        repository.copy_crowd_counts(conn, election_id, ids.import_id, rows)
    return CrowdImport(
        election_id, source, evidence, ids.import_id, len(rows), ids.replaced_import_id
    )
