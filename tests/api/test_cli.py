"""The golos command, run as a user runs it."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg

from api.submissions.schemas import Status

ROOT = Path(__file__).resolve().parents[2]


def golos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    )


def test_election_load_official_import_and_report(
    conn: psycopg.Connection, election_dir: Path, tmp_path: Path, make_official: Callable
) -> None:
    loaded = golos("election", "load", str(election_dir))
    assert loaded.returncode == 0, loaded.stderr
    assert "created election by-2020-president: 3 precincts" in loaded.stdout

    good = tmp_path / "official.csv"
    good.write_text(make_official({"p1": {"lukashenko": 10}}))
    imported = golos("official", "import", "by-2020-president", str(good))
    assert imported.returncode == 0, imported.stderr
    assert "imported 1 protocols" in imported.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text(make_official({"p1": {"lukashenko": 10}}).replace(",10,", ",ten,"))
    refused = golos("official", "import", "by-2020-president", str(bad))
    assert refused.returncode == 1
    assert "bad.csv, line 2, column 'lukashenko': 'ten' is not a non-negative integer" in (
        refused.stderr
    )
    conn.commit()
    assert conn.execute("SELECT count(*) FROM official_imports").fetchone() == (1,)

    out = tmp_path / "report"
    reported = golos("report", "by-2020-president", "--out", str(out))
    assert reported.returncode == 0, reported.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["precincts_with_official"] == 1
    assert (out / "discrepancies.csv").read_text().startswith("precinct_id,region,district,flag")

    assert '<html lang="en"' in (out / "report.html").read_text()

    belarusian = golos("report", "by-2020-president", "--out", str(out), "--lang", "be")
    assert belarusian.returncode == 0, belarusian.stderr
    assert '<html lang="be"' in (out / "report.html").read_text()
    unknown = golos("report", "by-2020-president", "--out", str(out), "--lang", "xx")
    assert unknown.returncode == 2 and "--lang: 'xx' is not one of ru, be, en" in unknown.stderr

    missing = golos("report", "nowhere", "--out", str(out))
    assert missing.returncode == 1 and "no election 'nowhere'" in missing.stderr


def test_flags_runs_the_flag_stage_alone_and_stores_what_it_found(
    conn: psycopg.Connection, election_dir: Path, tmp_path: Path, make_official: Callable
) -> None:
    # p1's protocol gives more ballots cast than issued: protocol_arithmetic.
    broken = make_official({"p1": {"lukashenko": 10}}).replace(",1000,15,15,", ",1000,12,15,")
    (election_dir / "official.csv").write_text(broken)
    assert golos("election", "load", str(election_dir)).returncode == 0

    before = set(tmp_path.iterdir())
    flagged = subprocess.run(
        [sys.executable, "-m", "api.cli", "flags", "by-2020-president"],
        capture_output=True, text=True, env=os.environ.copy(), timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert flagged.returncode == 0, flagged.stderr
    assert "1 precincts with proof" in flagged.stdout
    assert set(tmp_path.iterdir()) == before  # a stage of its own: no report files
    conn.commit()
    stored = conn.execute("SELECT precinct_id, flag, kind FROM flags").fetchall()
    assert ("p1", "protocol_arithmetic", "proof") in stored

    missing = golos("flags", "nowhere")
    assert missing.returncode == 1 and "no election 'nowhere'" in missing.stderr


def test_ocr_ballot_reads_good_photos_and_survives_a_bad_one(
    ballot_dir: Path, ballot_photo: Callable, tmp_path: Path
) -> None:
    first, second, bad = tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "broken.jpg"
    first.write_bytes(ballot_photo(["tsikhanouskaya"], seed=1))
    second.write_bytes(ballot_photo(["against_all"], seed=2))
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    result = golos("ocr", "ballot", str(ballot_dir), str(first), str(bad), str(second), "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["photo"] for line in lines] == [str(first), str(bad), str(second)]
    assert [(line["verdict"], line["marks"]) for line in lines] == [
        ("valid", ["tsikhanouskaya"]),
        ("unreadable", []),
        ("valid", ["against_all"]),
    ]
    assert lines[1]["reasons"]
    assert all(0.0 <= line["confidence"] <= 1.0 for line in lines)


def test_db_status_names_the_external_database(database: str) -> None:
    result = golos("db", "status")
    assert result.returncode == 0
    assert "external database" in result.stdout


def test_db_warm_wal_writes_the_log_and_says_who_recycles_it(database: str) -> None:
    result = golos("db", "warm-wal", "--size", "32MB")
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "segments" in result.stdout
    # The platform's role may not CHECKPOINT: the command says what happens instead.
    assert "next scheduled checkpoint" in result.stdout
    refused = golos("db", "warm-wal", "--size", "lots")
    assert refused.returncode == 2 and "--size" in refused.stderr
    too_much = golos("db", "warm-wal", "--size", "64GB")
    assert too_much.returncode == 1 and "min_wal_size" in too_much.stderr


def test_embedded_database_starts_and_stops(database: str) -> None:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="golos-embedded-"))
    folder.chmod(0o711)
    env = {k: v for k, v in os.environ.items() if k != "GOLOS_DATABASE_URL"}
    env["GOLOS_DATA_DIR"] = str(folder / "data")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "api.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    try:
        assert "no cluster" in run("db", "status").stdout
        started = run("db", "start")
        assert started.returncode == 0, started.stderr
        assert run("db", "status").stdout.startswith("running")
        assert "schema up to date" in run("db", "migrate").stdout
        assert run("db", "stop").returncode == 0
        assert run("db", "status").stdout.startswith("stopped")
    finally:
        run("db", "stop")
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def test_the_demo_is_a_command_though_the_product_does_not_import_it() -> None:
    listed = golos("--help")
    assert listed.returncode == 0, listed.stderr
    assert "demo" in listed.stdout
    demo = golos("demo", "--help")
    assert demo.returncode == 0, demo.stderr
    for option in ("--voters", "--stations", "--precincts", "--workers", "--out", "--seed"):
        assert option in demo.stdout
    assert "--reset" in demo.stdout


def test_nothing_in_api_imports_the_seeds() -> None:
    offenders = []
    for path in sorted((ROOT / "api").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno} imports {module}"
                for module in modules
                if module == "seeds" or module.startswith("seeds.")
            ]
    assert offenders == []


def test_worker_until_empty_reads_what_waits_in_several_processes(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    sids = []
    for seed, choice in enumerate(["tsikhanouskaya", "lukashenko"]):
        response = submit(ballot_photo([choice], seed=60 + seed), choice=choice)
        assert response.status_code == 202, response.text
        sids.append(response.json()["submission_id"])
    worked = golos("worker", "--until-empty", "--processes", "2")
    assert worked.returncode == 0, worked.stderr
    # The progress bar, on stderr only: both photos were waiting, both were read.
    assert "photos read" in worked.stderr and "2/2" in worked.stderr
    assert worked.stdout == ""
    conn.commit()
    statuses: dict[str, str] = dict(
        conn.execute("SELECT id::text, status FROM submissions").fetchall()
    )
    assert statuses == {sid: Status.VERIFIED for sid in sids}
