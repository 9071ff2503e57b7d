"""Writing an election's report, and the background report's life: queued, running,
ready or failed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from api.elections.service import ElectionNotFound
from api.reports import repository, service
from api.reports.schemas import ReportState
from infra.progress import Recorded
from infra.settings import Settings
from tally.vocab import Flag

DRAWS = 50


def test_the_report_runs_the_flag_stage_then_writes_its_files(
    conn: psycopg.Connection, loaded: str, tmp_path: Path
) -> None:
    recorder = Recorded()
    out = tmp_path / "report"
    summary = service.write_election_report(conn, loaded, out, draws=DRAWS, progress=recorder)
    assert recorder.names == [
        "proof rules",
        f"statistical tests ({DRAWS} draws)",
        "tables",
        "plots",
        "report.html",
    ]
    assert {p.name for p in out.iterdir()} >= {
        "discrepancies.csv", "discrepancies.parquet", "precincts.csv", "precincts.parquet",
        "summary.json", "report.html",
    }  # fmt: skip
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left
    assert json.loads((out / "summary.json").read_text(encoding="utf-8")) == summary
    # Every flag the platform can emit is counted, with zero counts too.
    assert list(summary["flags"]) == [str(flag) for flag in Flag]
    assert summary["precincts"] == 3 and summary["precincts_with_official"] == 2
    assert summary["crowd"] == {
        "photos_received": 0,
        "by_status": {},
        "not_counted_by_reason": {},
        "imported_sources": [],
    }


def test_an_unknown_election_has_no_report(conn: psycopg.Connection, tmp_path: Path) -> None:
    with pytest.raises(ElectionNotFound):
        service.write_election_report(conn, "nowhere", tmp_path / "report", draws=DRAWS)
    assert not (tmp_path / "report").exists()


def test_a_background_report_is_written_once(
    conn: psycopg.Connection, loaded: str, tmp_path: Path
) -> None:
    report = service.create(conn, loaded)
    assert (report.status, report.files, report.error) == (ReportState.QUEUED, [], None)
    assert service.file_path(tmp_path, report, "summary.json") is None  # not ready

    assert service.generate(conn, report.id, tmp_path) is ReportState.READY
    ready = service.get(conn, report.id)
    assert ready is not None and ready.status is ReportState.READY
    assert "summary.json" in ready.files and "report.html" in ready.files
    path = service.file_path(tmp_path, ready, "summary.json")
    assert path is not None and path.is_file()
    assert service.file_path(tmp_path, ready, "../summary.json") is None

    # A retried job finds it done and writes nothing.
    path.unlink()
    assert service.generate(conn, report.id, tmp_path) is ReportState.READY
    assert not path.exists()


def test_a_failed_report_says_why(
    conn: psycopg.Connection, loaded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("disk full")

    monkeypatch.setattr(service, "write_election_report", broken)
    report = service.create(conn, loaded)
    conn.commit()
    with pytest.raises(RuntimeError):
        service.generate(conn, report.id, tmp_path)
    failed = service.get(conn, report.id)
    assert failed is not None
    assert (failed.status, failed.error) == (ReportState.FAILED, "RuntimeError: disk full")


def test_reports_of_an_election_are_cleared(conn: psycopg.Connection, loaded: str) -> None:
    report = service.create(conn, loaded)
    repository.clear_election(conn, loaded)
    assert service.get(conn, report.id) is None


def test_reports_live_in_the_data_folder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert service.reports_root(settings) == tmp_path.resolve() / "reports"
