"""Discrepancy reports (``report/1``, ``../shared/spec/reports.md``): what analysts download.

``write_report(data, out)`` writes the files of the spec from a ``ReportData``:
discrepancies and precincts as CSV and Parquet, summary.json, the plots and a
self-contained report.html. No database: ``api.reports.service`` runs the flag
stage, gathers the data from the domains' repositories and calls it. The files'
columns, their order and the summary's keys are a public contract; their names
come from :mod:`tally.vocab`.

Everything here is pure but the files written and the progress reported.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from infra.files import atomic_write_bytes, atomic_write_text
from infra.pages import DEFAULT_LANGUAGE
from infra.progress import SILENT, Progress
from tally.flags import FlagRun, Precinct, verified_crowd
from tally.forensics.analysis import Analysis, Stations
from tally.forensics.crowd_estimate import crowd_corrected_estimate
from tally.plots import crowd_vs_official_png, fingerprint_png, histogram_png
from tally.report_page import render_report
from tally.repository import FlagRow
from tally.tables import write_table
from tally.vocab import (
    DISCREPANCY_COLUMNS,
    DISCREPANCY_TYPES,
    PHOTOS_VOTERS_COLUMN,
    PRECINCT_FLAG_COLUMNS,
    PRECINCT_ID_COLUMNS,
    PROTOCOL_LINES,
    SUMMARY_NOTE,
    EvidenceLevel,
    Flag,
    FlagKind,
    ForensicTest,
    ProtocolLine,
    ReportFile,
    ReviewStatus,
    Source,
    official_column,
    report_review_status,
    source_column,
)


@dataclass(frozen=True)
class ImportedSource:
    """A current crowd-tallies import, as summary.json lists it."""

    source: str
    level: EvidenceLevel
    precincts: int  # rows imported: one per precinct


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows, for one election. No connection."""

    election_id: str
    run: FlagRun  # the flag stage just run: evidence, findings, stations, analysis
    flags: Sequence[FlagRow]  # the stored flags with their review status, in report order
    option_labels: Mapping[str, str]  # option id -> label, for people
    submissions_by_status: Mapping[str, int]  # the election's photos, by status
    not_counted_by_reason: Mapping[str, int]  # rejected or in review, by first reason
    imported_sources: Sequence[ImportedSource]  # ordered by source


def discrepancy_rows(
    flags: Sequence[FlagRow], precincts: Sequence[Precinct]
) -> list[dict[str, Any]]:
    """discrepancies.csv: each flag with its precinct's region and district. Pure.

    A flag on a precinct the election does not list has no row (a flag is always
    computed for a listed precinct; this keeps the file's rows complete).
    """
    where = {p[0]: (p[1], p[2]) for p in precincts}
    rows = []
    for flag in flags:
        if flag.precinct_id not in where:
            continue
        region, district = where[flag.precinct_id]
        row = flag._asdict()
        # report/1 knows open, confirmed and dismissed: awaiting more evidence is open.
        row.update(
            region=region,
            district=district,
            review_status=report_review_status(row["review_status"]),
        )
        rows.append({column: row[column] for column in DISCREPANCY_COLUMNS})
    return rows


def _counts_proof(row: Mapping[str, Any]) -> bool:
    """A proof flag observers have not dismissed."""
    return row["kind"] == FlagKind.PROOF and row["review_status"] != ReviewStatus.DISMISSED


def _precinct_rows(
    data: ReportData, discrepancies: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[str], dict[str, str]]:
    """precincts.csv: official figures, each crowd source's figures, open flags. Pure."""
    evidence = data.run.evidence
    option_ids = list(evidence.option_ids)
    sources: dict[str, Mapping[tuple[str, str], int]] = {Source.PHOTOS: evidence.photo_tally}
    sources.update({name: counts for name, (_, counts) in evidence.crowd_sources.items()})
    open_flags: Counter[str] = Counter()
    proof_flags: Counter[str] = Counter()
    for d in discrepancies:
        if d["review_status"] == ReviewStatus.OPEN:
            open_flags[d["precinct_id"]] += 1
        if _counts_proof(d):
            proof_flags[d["precinct_id"]] += 1
    lines = (*PROTOCOL_LINES, *option_ids)
    official_columns = [official_column(c) for c in lines]
    crowd_columns = [source_column(source, o) for source in sources for o in option_ids]
    open_column, proof_column = PRECINCT_FLAG_COLUMNS
    columns = [*PRECINCT_ID_COLUMNS, *official_columns, PHOTOS_VOTERS_COLUMN, *crowd_columns,
               *PRECINCT_FLAG_COLUMNS]  # fmt: skip
    types = dict.fromkeys(
        (*official_columns, *crowd_columns, PHOTOS_VOTERS_COLUMN, *PRECINCT_FLAG_COLUMNS), "int"
    )
    rows = []
    for precinct in evidence.precincts:
        precinct_id = precinct[0]
        row: dict[str, Any] = dict(zip(PRECINCT_ID_COLUMNS, precinct, strict=True))
        row[PRECINCT_ID_COLUMNS[-1]] = precinct[3] or ""  # a station without a name
        row[PHOTOS_VOTERS_COLUMN] = evidence.photo_voters.get(precinct_id, 0)
        row[open_column] = open_flags[precinct_id]
        row[proof_column] = proof_flags[precinct_id]
        protocol = evidence.protocols.get(precinct_id, {})
        for line in lines:
            row[official_column(line)] = protocol.get(line)
        for source, counts in sources.items():
            for option in option_ids:
                row[source_column(source, option)] = counts.get((precinct_id, option))
        rows.append(row)
    return rows, columns, types


def _regional(
    stations: Stations, discrepancies: Sequence[Mapping[str, Any]], precincts: Sequence[Precinct]
) -> list[dict[str, Any]]:
    """The regions' rows of the page: stations, flags not dismissed, official shares. Pure."""
    flags_by_region: Counter[str] = Counter()
    region_of = {p[0]: p[1] for p in precincts}
    for d in discrepancies:
        if d["review_status"] != ReviewStatus.DISMISSED:
            flags_by_region[region_of.get(d["precinct_id"], "")] += 1
    all_regions = Counter(p[1] for p in precincts)
    rows = []
    for region in sorted(all_regions):
        here = stations.region == region
        votes = np.nansum(stations.votes[here], axis=0) if here.any() else None
        cast = float(np.nansum(stations.cast[here])) if here.any() else 0.0
        row: dict[str, Any] = {
            "region": region,
            "stations": all_regions[region],
            "stations_with_official": int(here.sum()),
            "flags": flags_by_region[region],
        }
        for j, option in enumerate(stations.option_ids):
            row[f"share_{option}"] = (
                round(float(votes[j]) / cast, 4) if votes is not None and cast > 0 else None
            )
        rows.append(row)
    return rows


def _images(analysis: Analysis, discrepancies: Sequence[Mapping[str, Any]]) -> dict[str, bytes]:
    """The plots, by file name. Pure (deterministic PNG bytes)."""
    figures = analysis.figures
    images: dict[str, bytes] = {}
    leader = str(figures.get("leader", ""))
    if isinstance(fp := figures.get(ForensicTest.KLIMEK), dict):
        images[ReportFile.KLIMEK_PLOT] = fingerprint_png(
            fp["hist"], fp["x_edges"], fp["y_edges"], leader
        )
    for key, name, title in (
        ("turnout", ReportFile.TURNOUT_PLOT, "Turnout"),
        ("leader_share", ReportFile.LEADER_SHARE_PLOT, f"Share of {leader}"),
    ):
        values = figures.get(key)
        if isinstance(values, np.ndarray):
            finite = values[np.isfinite(values)]
            images[name] = histogram_png(
                finite, None, f"{title} per station (official figures)", title, True
            )
    crowd_rows = [d for d in discrepancies if d["crowd"] is not None and d["option"]]
    if crowd_rows:
        images[ReportFile.CROWD_VS_OFFICIAL_PLOT] = crowd_vs_official_png(
            np.array([d["crowd"] for d in crowd_rows]),
            np.array([d["official"] for d in crowd_rows]),
            np.array([d["kind"] == FlagKind.PROOF for d in crowd_rows]),
            "the options concerned",
        )
    return images


def flag_counts(discrepancies: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Flags not dismissed, by name: every flag of the vocabulary, with zero counts
    too, then any other name found. Pure."""
    counts: dict[str, int] = dict.fromkeys(map(str, Flag), 0)
    for d in discrepancies:
        if d["review_status"] != ReviewStatus.DISMISSED:  # dismissals count for nothing
            counts[str(d["flag"])] = counts.get(str(d["flag"]), 0) + 1
    return counts


def _crowd_summary(data: ReportData) -> dict[str, Any]:
    statuses = {str(k): int(v) for k, v in data.submissions_by_status.items() if v}
    return {
        "photos_received": sum(statuses.values()),
        "by_status": dict(sorted(statuses.items())),
        "not_counted_by_reason": {k: int(v) for k, v in data.not_counted_by_reason.items() if v},
        "imported_sources": [
            {"source": i.source, "level": str(i.level), "precincts": int(i.precincts)}
            for i in data.imported_sources
        ],
    }


def _totals(stations: Stations) -> dict[str, Any]:
    def total(a: np.ndarray) -> int:
        return int(np.nansum(a)) if a.size else 0

    return {
        ProtocolLine.REGISTERED: total(stations.registered),
        ProtocolLine.BALLOTS_ISSUED: total(stations.issued),
        ProtocolLine.BALLOTS_CAST: total(stations.cast),
        ProtocolLine.INVALID: total(stations.invalid),
        "options": {o: total(stations.votes[:, j]) for j, o in enumerate(stations.option_ids)},
    }


def report_summary(data: ReportData, discrepancies: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """summary.json's content. Pure (the crowd-corrected estimate's bootstrap is seeded)."""
    run = data.run
    evidence, stations = run.evidence, run.stations
    estimates: dict[str, Any] = dict(run.analysis.estimates)
    estimates["crowd_corrected"] = crowd_corrected_estimate(
        stations.votes,
        verified_crowd(stations, evidence.photo_tally, evidence.crowd_sources),
        list(evidence.option_ids),
        stations.region,
    )
    with_proof = {d["precinct_id"] for d in discrepancies if _counts_proof(d)}
    return {
        "format": "report/1",
        "election": data.election_id,
        "precincts": len(evidence.precincts),
        "precincts_with_official": len(evidence.protocols),
        "flags": flag_counts(discrepancies),
        "precincts_with_proof": len(with_proof),
        "official_totals": _totals(stations),
        "tests": run.analysis.tests,
        "estimates": estimates,
        "crowd": _crowd_summary(data),
        "note": SUMMARY_NOTE,
    }


def write_report(
    data: ReportData, out: Path, *, lang: str = DEFAULT_LANGUAGE, progress: Progress = SILENT
) -> dict[str, Any]:
    """Write the report/1 files into ``out``; returns summary.json's content.
    ``lang``: the language of report.html (one of infra.pages.LANGUAGES); the data
    files are the same in every language.

    Each file is replaced whole (written beside it, then renamed), so a reader
    never sees half of one.
    """
    out.mkdir(parents=True, exist_ok=True)
    precincts = data.run.evidence.precincts
    discrepancies = discrepancy_rows(data.flags, precincts)

    progress.stage("tables")
    write_table(discrepancies, DISCREPANCY_COLUMNS, out / ReportFile.DISCREPANCIES_CSV,
                out / ReportFile.DISCREPANCIES_PARQUET, DISCREPANCY_TYPES)  # fmt: skip
    rows, columns, types = _precinct_rows(data, discrepancies)
    write_table(
        rows, columns, out / ReportFile.PRECINCTS_CSV, out / ReportFile.PRECINCTS_PARQUET, types
    )
    text = json.dumps(report_summary(data, discrepancies), ensure_ascii=False, indent=2,
                      default=_json_default) + "\n"  # fmt: skip
    atomic_write_text(out / ReportFile.SUMMARY, text)
    written: dict[str, Any] = json.loads(text)  # what readers of summary.json get

    progress.stage("plots")
    images = _images(data.run.analysis, discrepancies)
    for name, png in images.items():
        atomic_write_bytes(out / name, png)

    progress.stage("report.html")
    regional = _regional(data.run.stations, discrepancies, precincts)
    page_summary = json.loads(text)
    if data.option_labels:  # the page names options as people know them
        page_summary["option_labels"] = dict(data.option_labels)
    page = render_report(
        page_summary,
        discrepancies,
        regional,
        images,
        election_id=data.election_id,
        lang=lang,
    )
    atomic_write_text(out / ReportFile.PAGE, page)
    return written


def _json_default(value: object) -> object:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
