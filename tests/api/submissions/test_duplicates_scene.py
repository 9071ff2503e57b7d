"""The index with the pipeline's confirmation on stored readings: a re-used photo's
reading is matched (and recorded for the reviewer), a look-alike honest reading
whose index key collides is not."""

from __future__ import annotations

import uuid

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from api.submissions.duplicates import Candidate, check_and_record
from ocr.reader import BallotReading, Verdict, same_photo
from ocr.scene import PAPER_LENGTH, decode, encode, paper_key_of, scene_key_of

ELECTION = "by-2020-president"
KEY = "9e3779b97f4a7c15"


def _scene(seed: int) -> str:
    """A descriptor: a stroke in box 2, a table around the page, the light."""
    rng = np.random.default_rng(seed)
    stroke = np.zeros((40, 40), np.uint8)
    for _ in range(3):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(4, 36, 4))
        n = max(abs(x1 - x0), abs(y1 - y0)) + 1
        stroke[np.linspace(y0, y1, n).astype(int), np.linspace(x0, x1, n).astype(int)] = 15
    ring = (rng.random((48, 40)) * 120 + 60).astype(np.uint8)
    ring[8:40, 8:32] = 0  # the page
    yy, xx = np.mgrid[0:12, 0:9]
    light = (150 + 40 * np.cos(rng.uniform(0, 6.3)) * xx / 9 + 30 * yy / 12).astype(np.uint8)
    return encode({"m2": stroke, "ring": ring, "light": light})


def _reading(scene: str, key: str = KEY) -> BallotReading:
    return BallotReading(
        verdict=Verdict.VALID,
        marks=["tsikhanouskaya"],
        confidence=0.9,
        fingerprint=key,
        pose=[1.0, 91.0, 181.0, -89.0],
        scene=scene,
    )


def _submission(conn: psycopg.Connection, reading: BallotReading) -> uuid.UUID:
    sid = uuid.uuid4()
    conn.execute(
        """
        INSERT INTO submissions (id, election_id, precinct_id, declared_choice,
                                 request_digest, photo_sha256, status, reading)
        VALUES (%s, %s, 'p1', '{tsikhanouskaya}', 'd', %s, 'verified', %s)
        """,
        (sid, ELECTION, sid.hex, Jsonb(reading.model_dump(mode="json"))),
    )
    return sid


def _check(
    conn: psycopg.Connection,
    sid: uuid.UUID,
    reading: BallotReading,
    seen: list[Candidate] | None = None,
) -> object:
    def same(candidate: Candidate) -> bool:
        if seen is not None:
            seen.append(candidate)
        if candidate.reading is None:
            return False
        return same_photo(reading, BallotReading.model_validate(candidate.reading))

    assert reading.fingerprint is not None
    return check_and_record(
        conn, ELECTION, sid, reading.fingerprint, confirm=same, scene=reading.scene
    )


def test_a_colliding_look_alike_is_not_matched_but_a_re_used_copy_is(
    conn: psycopg.Connection, loaded: str
) -> None:
    first = _reading(_scene(1))
    a = _submission(conn, first)
    assert _check(conn, a, first) is None

    # Another voter's ballot whose index key happens to collide: other strokes,
    # another table, other light.
    other = _reading(_scene(2))
    b = _submission(conn, other)
    seen: list[Candidate] = []
    assert _check(conn, b, other, seen) is None
    # Its second key (the strokes' finer detail) is far: not even a candidate.
    assert seen == []
    key = scene_key_of(other.scene)
    assert key is not None
    assert conn.execute(
        "SELECT scene_key FROM photo_fingerprints WHERE submission_id = %s", (b,)
    ).fetchone() == (f"{int(key, 16):0256b}",)

    # The first photo re-used: its key one bit off, the same scene.
    copy = _reading(first.scene or "", key=f"{int(KEY, 16) ^ 1:016x}")
    c = _submission(conn, copy)
    match = _check(conn, c, copy)
    assert match is not None
    assert match.submission_id == a and match.distance == 1  # type: ignore[attr-defined]
    row = conn.execute(
        "SELECT near_duplicate_of, distance FROM photo_fingerprints WHERE submission_id = %s",
        (c,),
    ).fetchone()
    assert row == (a, 1)


def test_readings_without_a_scene_fall_back_on_the_page_pose(
    conn: psycopg.Connection, loaded: str
) -> None:
    """Readings stored before the scene descriptor existed still confirm by pose."""
    old = _reading(_scene(3)).model_copy(update={"scene": None})
    a = _submission(conn, old)
    assert _check(conn, a, old) is None
    tilted = old.model_copy(update={"pose": [4.0, 94.0, 184.0, -86.0]})
    assert _check(conn, _submission(conn, tilted), tilted) is None
    again = old.model_copy()
    match = _check(conn, _submission(conn, again), again)
    assert match is not None and match.submission_id == a  # type: ignore[attr-defined]


def _with_paper(scene: str, sketch: np.ndarray) -> str:
    return encode({**decode(scene), "paper": sketch})


def test_another_sheet_with_the_same_strokes_is_turned_away_by_the_paper_key_in_sql(
    conn: psycopg.Connection, loaded: str
) -> None:
    """Two voters' look-alike strokes (the same descriptor of the box, the same
    table and light) on two sheets: the paper keys are far, so the lookup does not
    even surface the earlier one; the first photo re-used keeps its paper and is
    matched."""
    rng = np.random.default_rng(7)
    sheet = rng.integers(60, 196, PAPER_LENGTH).astype(np.uint8)
    another = rng.integers(60, 196, PAPER_LENGTH).astype(np.uint8)
    strokes = _scene(4)
    first = _reading(_with_paper(strokes, sheet))
    a = _submission(conn, first)
    assert _check(conn, a, first) is None
    stored = conn.execute(
        "SELECT paper_key FROM photo_fingerprints WHERE submission_id = %s", (a,)
    ).fetchone()
    key = paper_key_of(first.scene)
    assert key is not None and stored == (f"{int(key, 16):0512b}",)

    look_alike = _reading(_with_paper(strokes, another))
    b = _submission(conn, look_alike)
    seen: list[Candidate] = []
    assert _check(conn, b, look_alike, seen) is None
    assert seen == []  # not surfaced: no confirmation spent on it

    copy = _reading(_with_paper(strokes, sheet))
    c = _submission(conn, copy)
    match = _check(conn, c, copy)
    assert match is not None and match.submission_id == a  # type: ignore[attr-defined]


def test_a_row_without_a_paper_key_is_still_surfaced_on_the_stroke_keys(
    conn: psycopg.Connection, loaded: str
) -> None:
    """Rows recorded before the paper key existed (NULL) are compared as before."""
    old = _reading(_scene(5))
    a = _submission(conn, old)
    assert _check(conn, a, old) is None
    assert conn.execute(
        "SELECT paper_key FROM photo_fingerprints WHERE submission_id = %s", (a,)
    ).fetchone() == (None,)
    sketch = np.random.default_rng(8).integers(60, 196, PAPER_LENGTH).astype(np.uint8)
    copy = _reading(_with_paper(old.scene or "", sketch))
    c = _submission(conn, copy)
    seen: list[Candidate] = []
    match = _check(conn, c, copy, seen)
    assert [s.submission_id for s in seen] == [a]
    assert match is not None
