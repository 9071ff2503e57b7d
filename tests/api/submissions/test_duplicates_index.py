"""The near-duplicate index in the database (duplicates.py over repository.py)."""

from __future__ import annotations

import uuid

import psycopg

from api.submissions.duplicates import (
    Candidate,
    check_and_record,
    find_near_duplicate,
    record_fingerprint,
    recut_bands,
)
from ocr.reader import NEAR_DUPLICATE_BITS
from ocr.scene import KEY_BITS

ELECTION = "by-2020-president"


def _bare_submission(conn: psycopg.Connection, status: str = "verified") -> uuid.UUID:
    sid = uuid.uuid4()
    conn.execute(
        """
        INSERT INTO submissions (id, election_id, precinct_id, declared_choice,
                                 request_digest, photo_sha256, status)
        VALUES (%s, %s, 'p1', '{tsikhanouskaya}', 'd', %s, %s)
        """,
        (sid, ELECTION, sid.hex, status),
    )
    return sid


def test_fingerprint_index_rules(conn: psycopg.Connection, loaded: str) -> None:
    k = NEAR_DUPLICATE_BITS
    base = 0x9E3779B97F4A7C15
    near = base ^ ((1 << k) - 1)  # k bits apart
    far = base ^ ((1 << (k + 1)) - 1)  # k+1 bits from base (sharing k bands), 1 from near
    fp = f"{base:016x}"
    a = _bare_submission(conn)
    assert check_and_record(conn, ELECTION, a, fp) is None
    # Processed again (the same submission re-read), it does not match itself.
    assert check_and_record(conn, ELECTION, a, fp) is None
    assert conn.execute("SELECT count(*) FROM photo_fingerprint_bands").fetchone() == (k + 1,)

    b = _bare_submission(conn)
    seen: list[Candidate] = []

    def refuse(candidate: Candidate) -> bool:
        seen.append(candidate)
        return False

    # Each candidate within k bits goes, with its stored reading, to the confirmation.
    assert find_near_duplicate(conn, ELECTION, near, confirm=refuse) is None
    assert seen == [Candidate(a, k, None)]
    assert check_and_record(conn, ELECTION, b, f"{near:016x}") == (a, k)
    assert find_near_duplicate(conn, ELECTION, far) == (b, 1)
    # a shares k bands with far but is k+1 bits away: a candidate, not a match.
    assert find_near_duplicate(conn, ELECTION, far, exclude=b) is None
    # A candidate a reviewer rejected no longer counts; a rejected photo is never one.
    conn.execute("UPDATE submissions SET status = 'rejected' WHERE id = %s", (b,))
    assert find_near_duplicate(conn, ELECTION, far) is None
    assert find_near_duplicate(conn, ELECTION, near, exclude=b) == (a, k)

    # Bands cut for another NEAR_DUPLICATE_BITS are re-cut on the next check.
    assert recut_bands(conn, ELECTION, k) == 0
    c = _bare_submission(conn)
    assert check_and_record(conn, ELECTION, c, f"{far:016x}", bits=k + 1) == (a, k + 1)
    bits = conn.execute("SELECT DISTINCT band_bits FROM photo_fingerprint_bands").fetchall()
    assert bits == [(k + 1,)]
    rows = conn.execute("SELECT count(*) FROM photo_fingerprint_bands").fetchone()
    assert rows == (3 * (k + 2),)
    conn.rollback()


def test_a_candidate_needs_both_keys_near_and_an_old_row_the_first_alone(
    conn: psycopg.Connection, loaded: str
) -> None:
    k, k2 = NEAR_DUPLICATE_BITS, KEY_BITS
    base = 0x9E3779B97F4A7C15
    scene = int("0123456789abcdef" * 4, 16)  # 256 bits
    near_scene = scene ^ ((1 << k2) - 1)  # k2 bits apart
    far_scene = scene ^ ((1 << (k2 + 1)) - 1)  # k2+1 bits apart
    a = _bare_submission(conn)
    record_fingerprint(conn, ELECTION, a, base, scene_key=scene)
    assert conn.execute(
        "SELECT DISTINCT scene_key FROM photo_fingerprint_bands WHERE submission_id = %s", (a,)
    ).fetchall() == [(f"{scene:0256b}",)]

    near = base ^ 1
    assert find_near_duplicate(conn, ELECTION, near, scene_key=near_scene) == (a, 1)
    assert find_near_duplicate(conn, ELECTION, near, scene_key=far_scene) is None
    # A photo without a second key is compared on the first key alone.
    assert find_near_duplicate(conn, ELECTION, near) == (a, 1)

    # A row recorded before the second key existed (NULL) is surfaced on the first.
    old = _bare_submission(conn)
    record_fingerprint(conn, ELECTION, old, base ^ 3)
    assert find_near_duplicate(conn, ELECTION, near, scene_key=far_scene) == (old, 1)
    conn.execute("UPDATE submissions SET status = 'rejected' WHERE id = %s", (old,))

    # A held photo was still sent: a copy of it is a near-duplicate.
    conn.execute("UPDATE submissions SET status = 'quarantined' WHERE id = %s", (a,))
    assert find_near_duplicate(conn, ELECTION, near, scene_key=scene) == (a, 1)

    # Re-cut bands keep their second keys.
    assert recut_bands(conn, ELECTION, k + 1) == 2
    assert find_near_duplicate(conn, ELECTION, near, bits=k + 1, scene_key=far_scene) is None
    assert find_near_duplicate(conn, ELECTION, near, bits=k + 1, scene_key=scene) == (a, 1)
    conn.rollback()
