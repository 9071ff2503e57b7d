"""report/1 files written from a ReportData alone: no database."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from infra.progress import Recorded
from tally.flags import Evidence, FlagRun, evaluate
from tally.proof import Finding
from tally.report import ImportedSource, ReportData, flag_counts, write_report
from tally.repository import FlagRow
from tally.vocab import (
    DISCREPANCY_COLUMNS,
    FLAG_KIND,
    PHOTOS_VOTERS_COLUMN,
    PRECINCT_FLAG_COLUMNS,
    PRECINCT_ID_COLUMNS,
    PROTOCOL_LINES,
    EvidenceLevel,
    Flag,
    FlagKind,
    ReviewStatus,
    official_column,
    source_column,
)

OPTIONS = ("a", "b")
PRECINCTS = [("p1", "North", "N1", "One"), ("p2", "North", "N2", ""), ("p3", "South", "S1", "")]


def _protocol(a: int, b: int) -> dict[str, int | None]:
    cast = a + b + 2
    return {"registered": 1000, "ballots_issued": cast, "ballots_cast": cast, "invalid": 2,
            "a": a, "b": b}  # fmt: skip


@pytest.fixture(scope="module")
def run() -> FlagRun:
    protocols = {"p1": _protocol(10, 90), "p2": _protocol(50, 50)}
    evidence = Evidence(
        precincts=PRECINCTS,
        option_ids=OPTIONS,
        protocols=protocols,
        official_votes={(p, o): lines[o] for p, lines in protocols.items() for o in OPTIONS},
        photo_tally={("p1", "a"): 12, ("p3", "b"): 4},
        photo_voters={"p1": 12, "p3": 4},
        crowd_sources={"poll": (EvidenceLevel.DECLARED, {("p2", "b"): 70})},
    )
    return evaluate(evidence, draws=20)


def _row(finding: Finding, status: ReviewStatus = ReviewStatus.OPEN) -> FlagRow:
    f = finding
    return FlagRow(f.precinct_id, f.flag, f.kind, f.option, f.source, f.crowd, f.official,
                   f.statistic, f.p_value, f.q_value, f.detail, status)  # fmt: skip


def _data(run: FlagRun, flags: list[FlagRow]) -> ReportData:
    return ReportData(
        election_id="e1",
        run=run,
        flags=flags,
        option_labels={"a": "Alpha", "b": "Beta"},
        submissions_by_status={"verified": 16, "rejected": 2, "review": 0},
        not_counted_by_reason={"not_a_ballot": 2},
        imported_sources=[ImportedSource("poll", EvidenceLevel.DECLARED, 1)],
    )


def test_the_files_of_the_spec_from_data_alone(run: FlagRun, tmp_path: Path) -> None:
    proof, declared = run.proof
    assert (proof.flag, declared.flag) == (
        Flag.CROWD_EXCEEDS_OFFICIAL,
        Flag.DECLARED_EXCEEDS_OFFICIAL,
    )
    stray = FlagRow("p9", Flag.INTEGER_PERCENT, FlagKind.STATISTICAL, "", "protocol",
                    None, None, None, None, None, "unlisted", ReviewStatus.OPEN)  # fmt: skip
    recorder = Recorded()
    summary = write_report(
        _data(run, [_row(proof), _row(declared, ReviewStatus.DISMISSED), stray]),
        tmp_path,
        progress=recorder,
    )

    assert recorder.names == ["tables", "plots", "report.html"]
    assert {p.name for p in tmp_path.iterdir()} >= {
        "discrepancies.csv", "discrepancies.parquet", "precincts.csv", "precincts.parquet",
        "summary.json", "report.html",
    }  # fmt: skip
    assert json.loads((tmp_path / "summary.json").read_text(encoding="utf-8")) == summary

    with open(tmp_path / "discrepancies.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == DISCREPANCY_COLUMNS
    # Region and district from the precinct list; a flag on an unlisted precinct has no row.
    assert [(r["precinct_id"], r["region"], r["district"], r["flag"]) for r in rows] == [
        ("p1", "North", "N1", "crowd_exceeds_official"),
        ("p2", "North", "N2", "declared_exceeds_official"),
    ]
    assert pq.read_table(tmp_path / "discrepancies.parquet").num_rows == 2

    precincts = pq.read_table(tmp_path / "precincts.parquet")
    lines = [official_column(c) for c in (*PROTOCOL_LINES, *OPTIONS)]
    sources = [source_column(s, o) for s in ("photos", "poll") for o in OPTIONS]
    assert precincts.column_names == [
        *PRECINCT_ID_COLUMNS, *lines, PHOTOS_VOTERS_COLUMN, *sources, *PRECINCT_FLAG_COLUMNS
    ]  # fmt: skip
    by_id = {r["precinct_id"]: r for r in precincts.to_pylist()}
    assert by_id["p1"]["open_flags"] == 1 and by_id["p1"]["proof_flags"] == 1
    assert by_id["p2"]["open_flags"] == 0 and by_id["p2"]["poll_b"] == 70  # dismissed
    assert by_id["p3"]["official_registered"] is None and by_id["p3"]["photos_b"] == 4
    assert by_id["p2"]["name"] == ""

    assert summary["precincts"] == 3 and summary["precincts_with_official"] == 2
    assert summary["precincts_with_proof"] == 1
    assert summary["flags"]["crowd_exceeds_official"] == 1
    assert summary["flags"]["declared_exceeds_official"] == 0  # dismissed counts for nothing
    assert summary["crowd"] == {
        "photos_received": 18,
        "by_status": {"rejected": 2, "verified": 16},
        "not_counted_by_reason": {"not_a_ballot": 2},
        "imported_sources": [{"source": "poll", "level": "declared", "precincts": 1}],
    }
    assert summary["estimates"]["crowd_corrected"]["stations_corrected"] == 1
    assert "option_labels" not in summary  # a page's aid, not a report/1 key


def test_summary_lists_every_flag_of_the_vocabulary(run: FlagRun, tmp_path: Path) -> None:
    summary = write_report(_data(run, []), tmp_path)
    assert list(summary["flags"]) == [str(flag) for flag in Flag]
    assert set(summary["flags"].values()) == {0}


def test_flag_counts_keep_a_name_the_vocabulary_does_not_know() -> None:
    counts = flag_counts([{"flag": "legacy_rule", "review_status": "open"}])
    assert counts["legacy_rule"] == 1 and set(Flag) <= set(counts)


def test_every_vocabulary_flag_has_a_kind() -> None:
    assert set(FLAG_KIND) == set(Flag)
