"""The stored readings the near-duplicate confirmation reads (repository.stored_readings):
the scene descriptor is read as text beside the rest of the reading, and the dicts
handed to the confirmation are the stored JSON's, whatever the reading holds."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from api.submissions import repository
from ocr.reader import BallotReading, Verdict
from ocr.scene import encode

ELECTION = "by-2020-president"


def _submission(conn: psycopg.Connection, reading: object) -> uuid.UUID:
    sid = uuid.uuid4()
    conn.execute(
        """
        INSERT INTO submissions (id, election_id, precinct_id, declared_choice,
                                 request_digest, photo_sha256, status, reading)
        VALUES (%s, %s, 'p1', '{tsikhanouskaya}', 'd', %s, 'verified', %s)
        """,
        (sid, ELECTION, sid.hex, None if reading is None else Jsonb(reading)),
    )
    return sid


def _as_stored(conn: psycopg.Connection, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    rows = conn.execute("SELECT id, reading FROM submissions WHERE id = ANY(%s)", (ids,)).fetchall()
    return {row[0]: row[1] for row in rows}


def test_stored_readings_are_the_stored_json_with_the_descriptor_read_as_text(
    conn: psycopg.Connection, loaded: str
) -> None:
    """A reading with a descriptor, one without (null, or no key at all), a scene
    that JSON must escape, a reading that is not an object and no reading: each
    comes back equal to the JSONB column's own value, and a real reading still
    validates to the one stored."""
    stroke = np.zeros((40, 40), np.uint8)
    stroke[10:30, 20] = 15
    reading = BallotReading(
        verdict=Verdict.VALID,
        marks=["tsikhanouskaya"],
        confidence=0.9,
        fingerprint="9e3779b97f4a7c15",
        pose=[1.0, 91.0, 181.0, -89.0],
        scene=encode({"m2": stroke}),
    )
    stored: list[object] = [
        reading.model_dump(mode="json"),
        reading.model_copy(update={"scene": None}).model_dump(mode="json"),
        {"note": "no scene"},
        {"scene": 'quote " backslash \\ tab \t \u00e9 \u0416'},
        {"scene": {"not": "text"}},
        ["scene"],
        None,
    ]
    ids = [_submission(conn, value) for value in stored]
    got = repository.stored_readings(conn, ids)
    assert got == _as_stored(conn, ids)
    assert [got[sid] for sid in ids] == stored
    assert BallotReading.model_validate(got[ids[0]]) == reading
    conn.rollback()
