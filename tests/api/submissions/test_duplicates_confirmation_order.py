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
    check_and_record,
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


POSE = [0.4, 90.2, -179.7, -89.9]  # the page's four sides in the photo, degrees


def test_a_candidate_in_the_new_photos_pose_is_confirmed_first(
    conn: psycopg.Connection, loaded: str
) -> None:
    """A brightened copy whose paper clipped: no paper key prunes the look-alikes,
    and its original sits further than they do on the second key. The original lies
    in the frame as the copy does (a tenth of a degree off), the look-alikes do not
    (nor one read without a pose): the original is confirmed first, alone."""
    look_alikes = [_submission(conn, f"look-alike {i}") for i in range(4)]
    poses: list[list[float] | None] = [
        [p + 3.0 for p in POSE],
        [p - 0.8 for p in POSE],  # just outside the pose limit
        [*POSE[:3], POSE[3] + 2.0],  # three sides alike, the fourth not
        None,
    ]
    for i, (sid, pose) in enumerate(zip(look_alikes, poses, strict=True)):
        record_fingerprint(conn, ELECTION, sid, BASE ^ (1 << i), scene_key=SCENE, pose=pose)
    original = _submission(conn, "original")
    record_fingerprint(
        conn,
        ELECTION,
        original,
        BASE ^ 0b1110000,
        scene_key=SCENE ^ ((1 << KEY_BITS) - 1),
        pose=[p + 0.1 for p in POSE],
    )
    seen: list[uuid.UUID] = []

    def accept_the_original(candidate: Candidate) -> bool:
        seen.append(candidate.submission_id)
        return candidate.reading == {"note": "original"}

    found = find_near_duplicate(
        conn, ELECTION, BASE, confirm=accept_the_original, scene_key=SCENE, pose=POSE
    )
    assert found == (original, 3)
    assert seen == [original]
    # Without the new photo's pose, the stroke keys alone order them, as before.
    seen.clear()
    assert find_near_duplicate(conn, ELECTION, BASE, confirm=accept_the_original, scene_key=SCENE)
    assert seen == [*look_alikes, original]
    conn.rollback()


def _no(candidate: Candidate) -> bool:
    return False


def test_the_pose_recorded_with_a_photo_orders_the_lookups_after_it(
    conn: psycopg.Connection, loaded: str
) -> None:
    look_alike = _submission(conn, "look-alike")
    record_fingerprint(conn, ELECTION, look_alike, BASE ^ 1, scene_key=SCENE, pose=None)
    original = _submission(conn, "original")
    fingerprint = f"{BASE ^ 0b110:016x}"
    assert check_and_record(conn, ELECTION, original, fingerprint, confirm=_no, pose=POSE) is None
    row = conn.execute(
        "SELECT pose FROM photo_fingerprints WHERE submission_id = %s", (original,)
    ).fetchone()
    assert row is not None and row[0] == pytest.approx(POSE, abs=1e-4)
    seen: list[uuid.UUID] = []

    def refuse(candidate: Candidate) -> bool:
        seen.append(candidate.submission_id)
        return False

    find_near_duplicate(conn, ELECTION, BASE, confirm=refuse, pose=POSE)
    assert seen == [original, look_alike]
    conn.rollback()
