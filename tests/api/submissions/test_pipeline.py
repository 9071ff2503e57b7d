"""From upload to flag: the job queue, the reader, the tally and the report."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from PIL import Image

from api.reports.service import write_election_report
from api.submissions.pipeline import decide, process_submission
from api.submissions.repository import lock_fingerprints
from api.submissions.schemas import Reason
from api.worker import run_worker
from infra.settings import get_settings
from infra.storage import photo_store
from ocr.reader import NEAR_DUPLICATE_BITS, BallotReading, Verdict
from tally.vocab import DISCREPANCY_COLUMNS


def _drain() -> None:
    asyncio.run(run_worker(wait=False))


def _statuses(conn: psycopg.Connection) -> dict[str, tuple[str, list[str]]]:
    conn.commit()
    return {
        str(sid): (status, list(reasons))
        for sid, status, reasons in conn.execute("SELECT id, status, reasons FROM submissions")
    }


def _reading(verdict: str, marks: list[str]) -> BallotReading:
    return BallotReading(verdict=Verdict(verdict), marks=marks, confidence=0.9, reasons=[])


@pytest.mark.parametrize(
    ("verdict", "marks", "declared", "status", "reason"),
    [
        ("valid", ["a"], ["a"], "verified", None),
        ("valid", ["b"], ["a"], "review", "choice_mismatch"),
        ("unreadable", [], ["a"], "review", "unreadable"),
        ("blank", [], ["a"], "rejected", "blank"),
        ("overmarked", ["a", "b"], ["a"], "rejected", "overmarked"),
        ("not_a_ballot", [], ["a"], "rejected", "not_a_ballot"),
    ],
)
def test_decide(
    verdict: str, marks: list[str], declared: list[str], status: str, reason: str | None
) -> None:
    decision = decide(_reading(verdict, marks), declared)
    assert decision.status == status
    assert (decision.reasons[0] if decision.reasons else None) == reason


def test_upload_to_flag_end_to_end(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable, tmp_path: Path
) -> None:
    # Official: p1 gives tsikhanouskaya 1 vote, p2 gives her 200.
    sids = {}
    for i in range(3):
        sids[f"p1-{i}"] = submit(ballot_photo(["tsikhanouskaya"], seed=i), precinct="p1").json()
    sids["p2"] = submit(ballot_photo(["tsikhanouskaya"], seed=10), precinct="p2").json()
    sids["mismatch"] = submit(
        ballot_photo(["lukashenko"], seed=11), precinct="p2", choice="tsikhanouskaya"
    ).json()
    copy = ballot_photo(["tsikhanouskaya"], seed=0)
    sids["copy"] = submit(copy, precinct="p1").json()
    _drain()

    statuses = _statuses(conn)
    status_of = {name: statuses[body["submission_id"]] for name, body in sids.items()}
    assert [status_of[f"p1-{i}"][0] for i in range(3)] == ["verified"] * 3
    assert status_of["p2"][0] == "verified"
    assert status_of["mismatch"] == ("review", ["choice_mismatch"])
    assert status_of["copy"] == ("rejected", ["duplicate_photo"])

    summary = write_election_report(conn, "by-2020-president", tmp_path)
    with open(tmp_path / "discrepancies.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0].keys()) == DISCREPANCY_COLUMNS
    assert [
        (
            r["precinct_id"],
            r["flag"],
            r["kind"],
            r["option"],
            r["source"],
            r["crowd"],
            r["official"],
            r["review_status"],
        )
        for r in rows
    ] == [("p1", "crowd_exceeds_official", "proof", "tsikhanouskaya", "photos", "3", "1", "open")]
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == summary
    assert on_disk["format"] == "report/1" and on_disk["election"] == "by-2020-president"
    assert on_disk["precincts"] == 3 and on_disk["precincts_with_official"] == 2
    assert on_disk["flags"]["crowd_exceeds_official"] == 1
    assert sum(on_disk["flags"].values()) == 1
    assert on_disk["precincts_with_proof"] == 1
    assert on_disk["official_totals"]["options"]["lukashenko"] == 300
    assert on_disk["crowd"]["by_status"] == {"rejected": 1, "review": 1, "verified": 4}


def test_processing_twice_has_the_effect_of_once(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable, tmp_path: Path
) -> None:
    sid = uuid.UUID(
        submit(ballot_photo(["tsikhanouskaya"], seed=3), precinct="p1").json()["submission_id"]
    )
    _drain()
    before = _statuses(conn)
    cache = get_settings().data_dir.resolve() / "templates"
    assert process_submission(conn, photo_store(get_settings()), sid, cache) is None
    assert _statuses(conn) == before


def test_a_voter_counts_once_and_the_latest_ballot_counts(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    first = submit(
        ballot_photo(["lukashenko"], seed=4), choice="lukashenko", voter="+375 29 111"
    ).json()
    second = submit(ballot_photo(["tsikhanouskaya"], seed=5), voter="+37529111").json()
    _drain()
    statuses = _statuses(conn)
    assert statuses[first["submission_id"]][0] == "superseded"
    assert statuses[second["submission_id"]][0] == "verified"


def test_a_job_whose_worker_dies_is_retried(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable, database: str
) -> None:
    sid = submit(ballot_photo(["tsikhanouskaya"], seed=6)).json()["submission_id"]
    # Hold the submission's row so the worker's job stays in flight, then kill it.
    with psycopg.connect(database) as blocker:
        blocker.execute("SELECT 1 FROM submissions WHERE id = %s FOR UPDATE", (sid,))
        worker = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "worker"],
            env=os.environ.copy(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                conn.commit()
                doing = conn.execute(
                    "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'"
                ).fetchone()
                if doing == (1,):
                    break
                time.sleep(0.2)
            else:
                pytest.fail("the worker never started the job")
            time.sleep(1)  # it is now reading the photo or waiting on the lock
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        blocker.rollback()
    conn.commit()
    assert conn.execute("SELECT status FROM submissions WHERE id = %s", (sid,)).fetchone() == (
        "received",
    )
    # The dead worker's heartbeat is now stale; a new worker hands its job out again.
    conn.execute("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'")
    conn.commit()
    _drain()
    assert _statuses(conn)[sid][0] == "verified"


def test_recompute_keeps_decisions_on_unchanged_evidence_and_reopens_changed(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable, tmp_path: Path
) -> None:
    for i in range(2):
        submit(ballot_photo(["tsikhanouskaya"], seed=30 + i), precinct="p1")
    _drain()
    write_election_report(conn, "by-2020-president", tmp_path)
    conn.execute("UPDATE flags SET review_status = 'dismissed'")
    conn.commit()

    summary = write_election_report(conn, "by-2020-president", tmp_path)  # same evidence
    assert conn.execute("SELECT review_status, crowd FROM flags").fetchall() == [("dismissed", 2)]
    assert summary["flags"]["crowd_exceeds_official"] == 0
    assert summary["precincts_with_proof"] == 0

    submit(ballot_photo(["tsikhanouskaya"], seed=32), precinct="p1")
    _drain()
    summary = write_election_report(conn, "by-2020-president", tmp_path)  # new evidence
    assert conn.execute("SELECT review_status, crowd FROM flags").fetchall() == [("open", 3)]
    assert summary["precincts_with_proof"] == 1

    # An observer rejects the photos (as the review tools will): the tally drops.
    conn.execute("UPDATE submissions SET status = 'rejected'")
    conn.execute("UPDATE photo_tallies SET votes = 0")
    conn.commit()
    write_election_report(conn, "by-2020-president", tmp_path)  # the evidence is gone
    assert conn.execute("SELECT count(*) FROM flags").fetchone() == (0,)


def test_the_incremental_tally_equals_a_recount(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    submit(ballot_photo(["lukashenko"], seed=50), choice="lukashenko", voter="+375291000001")
    submit(ballot_photo(["tsikhanouskaya"], seed=51), voter="+375291000001")  # replaces it
    submit(ballot_photo(["tsikhanouskaya"], seed=52), precinct="p2")
    submit(ballot_photo(["against_all"], seed=53), choice="against_all", precinct="p2")
    _drain()
    conn.commit()
    recount = conn.execute(
        """
        SELECT precinct_id, mark, count(*) FROM submissions, unnest(marks) AS mark
        WHERE status = 'verified' GROUP BY 1, 2 ORDER BY 1, 2
        """
    ).fetchall()
    tally = conn.execute(
        "SELECT precinct_id, option_id, votes FROM photo_tallies WHERE votes > 0 ORDER BY 1, 2"
    ).fetchall()
    assert (
        tally
        == recount
        == [("p1", "tsikhanouskaya", 1), ("p2", "against_all", 1), ("p2", "tsikhanouskaya", 1)]
    )
    voters = conn.execute("SELECT precinct_id, voters FROM photo_voters ORDER BY 1").fetchall()
    assert voters == [("p1", 1), ("p2", 2)]


# ---------------------------------------------------------------- near-duplicates

ELECTION = "by-2020-president"


def _resaved(photo: bytes, scale: float = 0.8, quality: int = 85) -> bytes:
    """The same photo rescaled and saved again: other bytes, the same paper."""
    img = Image.open(io.BytesIO(photo)).convert("RGB")
    img = img.resize((round(img.width * scale), round(img.height * scale)))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _votes(conn: psycopg.Connection, option: str) -> int:
    conn.commit()
    row = conn.execute(
        "SELECT coalesce(sum(votes), 0) FROM photo_tallies WHERE option_id = %s", (option,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def _fingerprint_rows(conn: psycopg.Connection) -> dict[str, tuple[str | None, int | None]]:
    conn.commit()
    rows = conn.execute(
        "SELECT submission_id, near_duplicate_of, distance FROM photo_fingerprints"
    ).fetchall()
    return {str(s): (str(d) if d else None, n) for s, d, n in rows}


def test_a_resaved_copy_of_a_verified_photo_goes_to_review_and_counts_once(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    original = ballot_photo(["tsikhanouskaya"], seed=60)
    copy = _resaved(original)
    assert hashlib.sha256(copy).digest() != hashlib.sha256(original).digest()
    first = submit(original, precinct="p1", voter="+375291110001").json()["submission_id"]
    _drain()
    # Another voter sends the copy for another station.
    second = submit(copy, precinct="p2", voter="+375291110002").json()["submission_id"]
    _drain()

    statuses = _statuses(conn)
    assert statuses[first] == ("verified", [])
    assert statuses[second] == ("review", [Reason.NEAR_DUPLICATE_PHOTO])
    assert _votes(conn, "tsikhanouskaya") == 1
    rows = _fingerprint_rows(conn)
    assert rows[first] == (None, None)
    near, distance = rows[second]
    assert near == first and distance is not None and distance <= NEAR_DUPLICATE_BITS


def test_two_different_ballots_are_both_verified(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    a = submit(ballot_photo(["tsikhanouskaya"], seed=61)).json()["submission_id"]
    b = submit(ballot_photo(["lukashenko"], seed=62), choice="lukashenko").json()["submission_id"]
    _drain()
    statuses = _statuses(conn)
    assert statuses[a] == ("verified", []) and statuses[b] == ("verified", [])
    assert _fingerprint_rows(conn) == {a: (None, None), b: (None, None)}
    assert _votes(conn, "tsikhanouskaya") == 1 and _votes(conn, "lukashenko") == 1


def test_two_voters_look_alike_crosses_both_count(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    # Two papers whose plain crosses the ink fingerprint cannot tell apart (seeds 0
    # and 2 were 3 bits apart when written): two photographs, so the page lies at
    # different angles in them, and neither is a re-used photo.
    a = submit(ballot_photo(["tsikhanouskaya"], seed=0), voter="+375293330001").json()
    b = submit(ballot_photo(["tsikhanouskaya"], seed=2), voter="+375293330002").json()
    _drain()
    statuses = _statuses(conn)
    assert statuses[a["submission_id"]] == ("verified", [])
    assert statuses[b["submission_id"]] == ("verified", [])
    assert _votes(conn, "tsikhanouskaya") == 2
    # Two papers, two photographs: neither is recorded as a re-used photo.
    assert _fingerprint_rows(conn) == {
        a["submission_id"]: (None, None),
        b["submission_id"]: (None, None),
    }


def test_of_two_near_duplicates_processed_at_once_exactly_one_counts(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable, database: str
) -> None:
    original = ballot_photo(["tsikhanouskaya"], seed=63)
    sids = [
        uuid.UUID(submit(photo, voter=f"+37529222000{i}").json()["submission_id"])
        for i, photo in enumerate([original, _resaved(original, 0.7, 80)])
    ]
    cache = get_settings().data_dir.resolve() / "templates"
    results: dict[uuid.UUID, object] = {}

    def work(sid: uuid.UUID) -> None:
        with psycopg.connect(database) as c:
            results[sid] = process_submission(c, photo_store(get_settings()), sid, cache)

    # Hold the election's fingerprint lock until both workers have read their photo
    # and wait on it: without the lock both would find nothing and both would count.
    with psycopg.connect(database) as blocker:
        lock_fingerprints(blocker, ELECTION)
        threads = [threading.Thread(target=work, args=(sid,)) for sid in sids]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            waiting = blocker.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()
            if waiting == (2,):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the two workers never both waited on the election's lock")
        blocker.rollback()
    for t in threads:
        t.join(timeout=60)
    assert sorted(str(s) for s in results.values()) == ["review", "verified"]
    assert _votes(conn, "tsikhanouskaya") == 1
    rows = _fingerprint_rows(conn)
    (loser,) = [sid for sid, status in results.items() if status == "review"]
    (winner,) = [sid for sid in sids if sid != loser]
    assert rows[str(loser)][0] == str(winner)
