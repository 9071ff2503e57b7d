"""Writing an election's report, and the background report's life: queued, running,
ready or failed."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
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


def test_a_failed_report_names_no_server_path_and_the_log_has_the_detail(
    conn: psycopg.Connection,
    loaded: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise OSError(28, "No space left on device", "/var/lib/golos/reports/x/report.html")

    monkeypatch.setattr(service, "write_election_report", broken)
    report = service.create(conn, loaded)
    conn.commit()
    with pytest.raises(OSError):
        service.generate(conn, report.id, tmp_path)
    failed = service.get(conn, report.id)
    assert failed is not None
    assert (failed.status, failed.error) == (ReportState.FAILED, service.FAILED_MESSAGE)
    assert "/" not in service.FAILED_MESSAGE
    assert f"report {report.id} could not be written" in caplog.text
    assert "/var/lib/golos/reports/x/report.html" in caplog.text


def test_a_report_failing_before_its_last_attempt_stays_running_for_the_retry(
    conn: psycopg.Connection, loaded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = service.write_election_report

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("database restarted")

    report = service.create(conn, loaded)
    conn.commit()
    monkeypatch.setattr(service, "write_election_report", broken)
    with pytest.raises(RuntimeError):
        service.generate(conn, report.id, tmp_path, final=False)
    running = service.get(conn, report.id)
    assert running is not None and running.status is ReportState.RUNNING
    monkeypatch.setattr(service, "write_election_report", writer)
    assert service.generate(conn, report.id, tmp_path) is ReportState.READY
    ready = service.get(conn, report.id)
    assert ready is not None and "summary.json" in ready.files


def test_only_a_failed_report_can_be_retried(
    conn: psycopg.Connection, loaded: str, tmp_path: Path
) -> None:
    report = service.create(conn, loaded)
    assert service.retry(conn, report.id) is None  # queued: nothing to retry
    repository.mark_failed(conn, report.id, service.FAILED_MESSAGE)
    retried = service.retry(conn, report.id)
    assert retried is not None
    assert (retried.status, retried.error, retried.finished_at) == (ReportState.QUEUED, None, None)
    assert service.generate(conn, report.id, tmp_path) is ReportState.READY


def _age(conn: psycopg.Connection, report_id: uuid.UUID, hours: float) -> None:
    conn.execute(
        "UPDATE reports SET finished_at = now() - make_interval(secs => %s) WHERE id = %s",
        (hours * 3600, report_id),
    )


def test_reports_finished_longer_ago_than_the_limit_are_deleted_with_their_files(
    conn: psycopg.Connection, loaded: str, tmp_path: Path
) -> None:
    old, fresh, failed, waiting = (service.create(conn, loaded) for _ in range(4))
    conn.commit()
    for report in (old, fresh):
        service.generate(conn, report.id, tmp_path)
    repository.mark_failed(conn, failed.id, service.FAILED_MESSAGE)
    _age(conn, old.id, 25)
    _age(conn, failed.id, 25)
    _age(conn, fresh.id, 23)
    orphan = service.folder(tmp_path, uuid.uuid4())  # its row cleared with its election
    orphan.mkdir()
    (tmp_path / "not-a-report").mkdir()
    conn.commit()

    assert service.expire(conn, tmp_path, timedelta(hours=24)) == 2  # old's and orphan's

    assert service.get(conn, old.id) is None and service.get(conn, failed.id) is None
    assert not service.folder(tmp_path, old.id).exists() and not orphan.exists()
    kept = service.get(conn, fresh.id)
    assert kept is not None and service.folder(tmp_path, fresh.id).is_dir()
    assert service.get(conn, waiting.id) is not None  # queued: never expires
    assert (tmp_path / "not-a-report").is_dir()


def test_reports_of_an_election_are_cleared(conn: psycopg.Connection, loaded: str) -> None:
    report = service.create(conn, loaded)
    repository.clear_election(conn, loaded)
    assert service.get(conn, report.id) is None


def test_reports_live_in_the_data_folder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert service.reports_root(settings) == tmp_path.resolve() / "reports"


def test_reports_failed_before_the_fixed_message_are_given_it() -> None:
    migration = Path(repository.__file__).parents[2] / "infra/migrations/0011_report_errors.sql"
    assert service.FAILED_MESSAGE.replace("'", "''") in migration.read_text()
