"""The order in which the near-duplicate index hands candidates to the
confirmation, and the stored readings it reads for them (duplicates.py)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb

from api.submissions import repository
from api.submissions.duplicates import (
    FIRST_BATCH,
    Candidate,
    find_near_duplicate,
    record_fingerprint,
)
from ocr.scene import KEY_BITS

ELECTION = "by-2020-president"
BASE = 0x9E3779B97F4A7C15
SCENE = int("0123456789abcdef" * 4, 16)  # a 256-bit second key


def _submission(conn: psycopg.Connection, note: str) -> uuid.UUID:
    sid = uuid.uuid4()
    conn.execute(
        """
        INSERT INTO submissions (id, election_id, precinct_id, declared_choice,
                                 request_digest, photo_sha256, status, reading)
        VALUES (%s, %s, 'p1', '{tsikhanouskaya}', 'd', %s, 'verified', %s)
        """,
        (sid, ELECTION, sid.hex, Jsonb({"note": note})),
    )
    return sid


def test_a_copy_is_confirmed_before_closer_look_alikes_near_the_second_keys_limit(
    conn: psycopg.Connection, loaded: str
) -> None:
    """Two honest look-alikes one bit away on the first key but at the second
    key's limit, and a copy two bits away whose second key is nearly its own: the
    copy's original goes to the confirmation first, and no other reading is read."""
    look_alikes = [_submission(conn, f"look-alike {i}") for i in range(2)]
    for i, sid in enumerate(look_alikes):
        record_fingerprint(
            conn, ELECTION, sid, BASE ^ (1 << i), scene_key=SCENE ^ ((1 << KEY_BITS) - 1)
        )
    original = _submission(conn, "original")
    record_fingerprint(conn, ELECTION, original, BASE ^ 0b1100, scene_key=SCENE ^ 0b111)
    seen: list[Candidate] = []

    def accept_the_original(candidate: Candidate) -> bool:
        seen.append(candidate)
        return candidate.reading == {"note": "original"}

    assert find_near_duplicate(
        conn, ELECTION, BASE, confirm=accept_the_original, scene_key=SCENE
    ) == (original, 2)
    assert seen == [Candidate(original, 2, {"note": "original"})]
    # Without a confirmation the closest on the first key comes first, as before.
    assert find_near_duplicate(conn, ELECTION, BASE, scene_key=SCENE) == (look_alikes[0], 1)
    conn.rollback()


def test_readings_are_read_in_growing_batches_until_one_is_confirmed(
    conn: psycopg.Connection, loaded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every candidate refused: each reading is read once, FIRST_BATCH first, then
    twice as many each time; every candidate reaches the confirmation with its own."""
    ids = [_submission(conn, f"honest {i}") for i in range(7)]
    for i, sid in enumerate(ids):
        record_fingerprint(conn, ELECTION, sid, BASE ^ (1 << i), scene_key=SCENE)
    batches: list[int] = []
    read = repository.stored_readings

    def counted(
        c: psycopg.Connection, submission_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, dict[str, object] | None]:
        batches.append(len(submission_ids))
        return read(c, submission_ids)

    monkeypatch.setattr(repository, "stored_readings", counted)
    seen: list[Candidate] = []

    def refuse(candidate: Candidate) -> bool:
        seen.append(candidate)
        return False

    assert find_near_duplicate(conn, ELECTION, BASE, confirm=refuse, scene_key=SCENE) is None
    assert batches == [FIRST_BATCH, 2 * FIRST_BATCH, 7 - 3 * FIRST_BATCH]
    assert sorted(c.submission_id for c in seen) == sorted(ids)
    assert all(c.reading == {"note": f"honest {ids.index(c.submission_id)}"} for c in seen)
    conn.rollback()
