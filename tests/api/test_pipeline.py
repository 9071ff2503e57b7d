"""From upload to flag: the job queue, the reader, the tally and the report."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from api.cli import run_worker
from api.submissions.pipeline import decide, process_submission
from infra.settings import get_settings
from infra.storage import get_store
from ocr.reader import BallotReading
from tally.report import DISCREPANCY_COLUMNS, write_report


def _drain() -> None:
    asyncio.run(run_worker(wait=False))


def _statuses(conn: psycopg.Connection) -> dict[str, tuple[str, list[str]]]:
    conn.commit()
    return {
        str(sid): (status, list(reasons))
        for sid, status, reasons in conn.execute("SELECT id, status, reasons FROM submissions")
    }


def _reading(verdict: str, marks: list[str]) -> BallotReading:
    return BallotReading(verdict=verdict, marks=marks, confidence=0.9, reasons=[])  # type: ignore[arg-type]


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

    summary = write_report(conn, "by-2020-president", tmp_path)
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
    assert process_submission(conn, get_store(), sid, cache) is None
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
    write_report(conn, "by-2020-president", tmp_path)
    conn.execute("UPDATE flags SET review_status = 'dismissed'")
    conn.commit()

    summary = write_report(conn, "by-2020-president", tmp_path)  # same evidence
    assert conn.execute("SELECT review_status, crowd FROM flags").fetchall() == [("dismissed", 2)]
    assert summary["flags"]["crowd_exceeds_official"] == 0
    assert summary["precincts_with_proof"] == 0

    submit(ballot_photo(["tsikhanouskaya"], seed=32), precinct="p1")
    _drain()
    summary = write_report(conn, "by-2020-president", tmp_path)  # new evidence
    assert conn.execute("SELECT review_status, crowd FROM flags").fetchall() == [("open", 3)]
    assert summary["precincts_with_proof"] == 1

    # An observer rejects the photos (as the review tools will): the tally drops.
    conn.execute("UPDATE submissions SET status = 'rejected'")
    conn.execute("UPDATE photo_tallies SET votes = 0")
    conn.commit()
    write_report(conn, "by-2020-president", tmp_path)  # the evidence is gone
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
    assert tally == recount == [
        ("p1", "tsikhanouskaya", 1), ("p2", "against_all", 1), ("p2", "tsikhanouskaya", 1)
    ]
    voters = conn.execute("SELECT precinct_id, voters FROM photo_voters ORDER BY 1").fetchall()
    assert voters == [("p1", 1), ("p2", 2)]
