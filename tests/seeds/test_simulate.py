"""``golos simulate`` end to end on a small fleet, and the reconciliation's own
judgement of a loss and of a double count."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from infra.pg import EmbeddedPostgres
from seeds.fleet import Kind, Platform, Row, Told, reconcile


def test_a_small_fleet_through_a_cut_a_worker_kill_and_a_database_restart_loses_nothing() -> None:
    # A data folder (and embedded cluster) of its own: the simulation restarts its
    # PostgreSQL. Not under pytest's tmp_path: the server may run as another user.
    folder = Path(tempfile.mkdtemp(prefix="golos-sim-"))
    folder.chmod(0o711)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLOS_")}
    env["GOLOS_DATA_DIR"] = str(folder / "data")
    command = [
        sys.executable, "-m", "api.cli", "simulate",
        "--phones", "100", "--stations", "10", "--precincts", "40",
        "--time-scale", "7200", "--cut-start", "3", "--cut-hours", "8",
        "--faults", "--max-seconds", "150", "--out", str(folder / "out"),
    ]  # fmt: skip
    try:
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    finally:
        EmbeddedPostgres(folder / "data" / "pg").stop()
        shutil.rmtree(folder, ignore_errors=True)
    output = run.stdout + run.stderr[-3000:]
    assert run.returncode == 0, output
    assert "reconciled: nothing lost, nothing counted twice, every refusal explained" in output
    assert "fault: killed worker process" in output
    assert "fault: restarted PostgreSQL" in output
    assert "invented tokens: 30 requests answered 30x401" in output


def _told(sid: str, status: str, precinct: str = "p1", phone: int = 0) -> Told:
    return Told(phone, Kind.HONEST, sid, precinct, "delivered", 202, status=status, marks=("a",))


def _platform(rows: dict[str, Row], voters: int, votes: int) -> Platform:
    verified = [sid for sid, row in rows.items() if row.status == "verified"]
    return Platform(
        rows=rows,
        rows_total=len(rows),
        by_status={"verified": len(verified)},
        voters_per_station={"p1": voters},
        votes={("p1", "a"): votes},
        verified_per_station={"p1": verified},
    )


def test_the_reconciliation_finds_an_acknowledged_upload_the_platform_lost() -> None:
    row = Row("verified", "p1", (), ("a",))
    result = reconcile(
        [_told("s1", "verified"), _told("s2", "verified", phone=1)],
        _platform({"s1": row}, voters=1, votes=1),
    )
    assert not result.ok
    assert any("s2" in d and "not on the platform" in d for d in result.differences)


def test_the_reconciliation_finds_a_ballot_counted_twice_in_the_tally() -> None:
    row = Row("verified", "p1", (), ("a",))
    result = reconcile([_told("s1", "verified")], _platform({"s1": row}, voters=2, votes=2))
    assert any("crowd tally counts 2" in d for d in result.differences)
    assert any("a has 2 votes" in d for d in result.differences)


def test_the_reconciliation_accepts_a_fleet_whose_counts_agree() -> None:
    rows = {
        "s1": Row("verified", "p1", (), ("a",)),
        "s2": Row("review", "p1", ("near_duplicate_photo",), ("a",)),
    }
    told = [_told("s1", "verified"), _told("s2", "review", phone=1)]
    assert reconcile(told, _platform(rows, voters=1, votes=1)).ok
