"""Discrepancy reports (``report/1``): what analysts download.

``write_report`` recomputes every flag (proof and statistical), then writes the
files of the spec: discrepancies and precincts as CSV and Parquet, summary.json,
the plots, and a self-contained report.html.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from tally.analysis import Analysis, Stations, analyse
from tally.crowd_estimate import crowd_corrected_estimate
from tally.html import render_report
from tally.plots import crowd_vs_official_png, fingerprint_png, histogram_png
from tally.proof import Finding
from tally.service import (
    FLAG_NAMES,
    PHOTOS,
    PROTOCOL_LINES,
    crowd_sources,
    crowd_tally,
    official_protocols,
    photo_voters,
    proof_findings,
    store_flags,
)
from tally.tables import write_table

DISCREPANCY_COLUMNS = (
    "precinct_id", "region", "district", "flag", "kind", "option", "source", "crowd",
    "official", "statistic", "p_value", "q_value", "detail", "review_status",
)  # fmt: skip
DISCREPANCY_TYPES = {
    "crowd": "int", "official": "int", "statistic": "float", "p_value": "float",
    "q_value": "float",
}  # fmt: skip
STATISTICAL_FLAGS = ("integer_percent", "turnout_outlier", "share_outlier",
                     "high_turnout_unanimity")  # fmt: skip


def _precincts(conn: psycopg.Connection, election_id: str) -> list[tuple[str, str, str, str]]:
    return conn.execute(
        "SELECT id, region, district, coalesce(name, '') FROM precincts WHERE election_id = %s"
        " ORDER BY id",
        (election_id,),
    ).fetchall()


def _option_ids(conn: psycopg.Connection, election_id: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT id FROM options WHERE election_id = %s ORDER BY position", (election_id,)
    )]  # fmt: skip


def stations_table(
    precincts: list[tuple[str, str, str, str]],
    protocols: dict[str, dict[str, int | None]],
    option_ids: list[str],
    excluded: set[str],
) -> Stations:
    """The official figures as arrays, one row per precinct with a known protocol."""
    known = [p for p in precincts if p[0] in protocols]

    def column(name: str) -> np.ndarray:
        values = [protocols[p[0]].get(name) for p in known]
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    votes = np.column_stack([column(o) for o in option_ids]) if known else np.zeros((0, 0))
    return Stations(
        precinct_id=np.array([p[0] for p in known], dtype=object),
        region=np.array([p[1] for p in known], dtype=object),
        district=np.array([p[2] for p in known], dtype=object),
        registered=column("registered"),
        issued=column("ballots_issued"),
        cast=column("ballots_cast"),
        invalid=column("invalid"),
        votes=votes.reshape(len(known), len(option_ids)),
        option_ids=option_ids,
        excluded=np.array([p[0] in excluded for p in known], dtype=bool),
    )


def _verified_crowd(conn: psycopg.Connection, election_id: str, stations: Stations) -> np.ndarray:
    """Per station and option, the largest count any verified source proved (sources are
    never added together)."""
    sources = [crowd_tally(conn, election_id)] + [
        counts for level, counts in crowd_sources(conn, election_id).values()
        if level == "verified"
    ]  # fmt: skip
    row = {p: i for i, p in enumerate(stations.precinct_id)}
    column = {o: j for j, o in enumerate(stations.option_ids)}
    crowd = np.zeros((len(row), len(column)))
    for counts in sources:
        for (precinct, option), votes in counts.items():
            if precinct in row and option in column:
                i, j = row[precinct], column[option]
                crowd[i, j] = max(crowd[i, j], votes)
    return crowd


def statistical_findings(analysis: Analysis) -> list[Finding]:
    return [
        Finding(
            precinct_id=f.precinct_id,
            flag=f.flag,
            kind="statistical",
            option=f.option,
            source="protocol",
            crowd=None,
            official=None,
            detail=f.detail,
            statistic=f.statistic,
            p_value=f.p_value,
            q_value=f.q_value,
        )
        for f in analysis.station_flags
    ]


def _discrepancies(conn: psycopg.Connection, election_id: str) -> list[dict[str, Any]]:
    cursor = conn.execute(
        """
        SELECT f.precinct_id, p.region, p.district, f.flag, f.kind, f.option_id AS option,
               f.source, f.crowd, f.official, f.statistic, f.p_value, f.q_value, f.detail,
               f.review_status
        FROM flags f JOIN precincts p ON p.election_id = f.election_id AND p.id = f.precinct_id
        WHERE f.election_id = %s
        ORDER BY f.kind, f.flag, f.precinct_id, f.option_id, f.source
        """,
        (election_id,),
    )
    names = [d.name for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def _precinct_rows(
    conn: psycopg.Connection,
    election_id: str,
    precincts: list[tuple[str, str, str, str]],
    protocols: dict[str, dict[str, int | None]],
    option_ids: list[str],
    discrepancies: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[str], dict[str, str]]:
    """precincts.csv: official figures, each crowd source's figures, open flags."""
    sources: dict[str, dict[tuple[str, str], int]] = {PHOTOS: crowd_tally(conn, election_id)}
    sources.update({name: counts for name, (_, counts) in crowd_sources(conn, election_id).items()})
    voters = photo_voters(conn, election_id)
    open_flags: Counter[str] = Counter()
    proof_flags: Counter[str] = Counter()
    for d in discrepancies:
        if d["review_status"] == "open":
            open_flags[d["precinct_id"]] += 1
        if d["kind"] == "proof" and d["review_status"] != "dismissed":
            proof_flags[d["precinct_id"]] += 1
    official_columns = [f"official_{c}" for c in (*PROTOCOL_LINES, *option_ids)]
    crowd_columns = [f"{source}_{o}" for source in sources for o in option_ids]
    columns = ["precinct_id", "region", "district", "name", *official_columns,
               "photos_voters", *crowd_columns, "open_flags", "proof_flags"]  # fmt: skip
    types = {c: "int" for c in (*official_columns, *crowd_columns, "photos_voters",
                                "open_flags", "proof_flags")}  # fmt: skip
    rows = []
    for precinct_id, region, district, name in precincts:
        row: dict[str, Any] = {
            "precinct_id": precinct_id, "region": region, "district": district, "name": name,
            "photos_voters": voters.get(precinct_id, 0),
            "open_flags": open_flags[precinct_id], "proof_flags": proof_flags[precinct_id],
        }  # fmt: skip
        protocol = protocols.get(precinct_id, {})
        for column in (*PROTOCOL_LINES, *option_ids):
            row[f"official_{column}"] = protocol.get(column)
        for source, counts in sources.items():
            for option in option_ids:
                row[f"{source}_{option}"] = counts.get((precinct_id, option))
        rows.append(row)
    return rows, columns, types


def _regional(
    stations: Stations,
    discrepancies: list[dict[str, Any]],
    precincts: list[tuple[str, str, str, str]],
) -> list[dict[str, Any]]:
    flags_by_region: Counter[str] = Counter()
    region_of = {p[0]: p[1] for p in precincts}
    for d in discrepancies:
        if d["review_status"] != "dismissed":
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


def _images(analysis: Analysis, discrepancies: list[dict[str, Any]]) -> dict[str, bytes]:
    figures = analysis.figures
    images: dict[str, bytes] = {}
    leader = str(figures.get("leader", ""))
    if isinstance(fp := figures.get("fingerprint"), dict):
        images["fingerprint.png"] = fingerprint_png(
            fp["hist"], fp["x_edges"], fp["y_edges"], leader
        )
    for key, title in (("turnout", "Turnout"), ("leader_share", f"Share of {leader}")):
        values = figures.get(key)
        if isinstance(values, np.ndarray):
            finite = values[np.isfinite(values)]
            images[f"{key}.png"] = histogram_png(
                finite, None, f"{title} per station (official figures)", title, True
            )
    crowd_rows = [d for d in discrepancies if d["crowd"] is not None and d["option"]]
    if crowd_rows:
        images["crowd_vs_official.png"] = crowd_vs_official_png(
            np.array([d["crowd"] for d in crowd_rows]),
            np.array([d["official"] for d in crowd_rows]),
            np.array([d["kind"] == "proof" for d in crowd_rows]),
            "the options concerned",
        )
    return images


def _flag_counts(discrepancies: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys((*FLAG_NAMES, *STATISTICAL_FLAGS), 0)
    for d in discrepancies:
        if d["review_status"] != "dismissed":  # observers' dismissals count for nothing
            counts[d["flag"]] = counts.get(d["flag"], 0) + 1
    return counts


def _crowd_summary(conn: psycopg.Connection, election_id: str) -> dict[str, Any]:
    statuses: dict[str, int] = dict(
        conn.execute(
            "SELECT status, count(*) FROM submissions WHERE election_id = %s GROUP BY status",
            (election_id,),
        ).fetchall()
    )
    reasons: dict[str, int] = dict(
        conn.execute(
            "SELECT reasons[1], count(*) FROM submissions WHERE election_id = %s"
            " AND status IN ('rejected', 'review') GROUP BY reasons[1] ORDER BY 1",
            (election_id,),
        ).fetchall()
    )
    sources = [
        {"source": s, "level": level, "precincts": n}
        for s, level, n in conn.execute(
            "SELECT source, level, row_count FROM crowd_imports"
            " WHERE election_id = %s AND is_current ORDER BY source",
            (election_id,),
        )
    ]
    return {
        "photos_received": int(sum(statuses.values())),
        "by_status": {k: int(v) for k, v in sorted(statuses.items())},
        "not_counted_by_reason": {k: int(v) for k, v in reasons.items()},
        "imported_sources": sources,
    }


def _totals(stations: Stations) -> dict[str, Any]:
    def total(a: np.ndarray) -> int:
        return int(np.nansum(a)) if a.size else 0

    return {
        "registered": total(stations.registered),
        "ballots_issued": total(stations.issued),
        "ballots_cast": total(stations.cast),
        "invalid": total(stations.invalid),
        "options": {o: total(stations.votes[:, j]) for j, o in enumerate(stations.option_ids)},
    }


def write_report(
    conn: psycopg.Connection, election_id: str, out: Path, *, draws: int = 1000
) -> dict[str, Any]:
    """Recompute every flag, then write the report/1 files into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    option_ids = _option_ids(conn, election_id)
    precincts = _precincts(conn, election_id)
    protocols = official_protocols(conn, election_id)
    proof = proof_findings(conn, election_id)
    stations = stations_table(
        precincts, protocols, option_ids, {f.precinct_id for f in proof if f.kind == "proof"}
    )
    analysis = analyse(stations, draws=draws)
    store_flags(conn, election_id, proof + statistical_findings(analysis))
    estimates = dict(analysis.estimates)
    estimates["crowd_corrected"] = crowd_corrected_estimate(
        stations.votes, _verified_crowd(conn, election_id, stations), option_ids,
        stations.region,
    )  # fmt: skip

    discrepancies = _discrepancies(conn, election_id)
    write_table(discrepancies, DISCREPANCY_COLUMNS, out / "discrepancies.csv",
                out / "discrepancies.parquet", DISCREPANCY_TYPES)  # fmt: skip
    rows, columns, types = _precinct_rows(
        conn, election_id, precincts, protocols, option_ids, discrepancies
    )
    write_table(rows, columns, out / "precincts.csv", out / "precincts.parquet", types)

    with_proof = {
        d["precinct_id"]
        for d in discrepancies
        if d["kind"] == "proof" and d["review_status"] != "dismissed"
    }
    summary: dict[str, Any] = {
        "format": "report/1",
        "election": election_id,
        "precincts": len(precincts),
        "precincts_with_official": len(protocols),
        "flags": _flag_counts(discrepancies),
        "precincts_with_proof": len(with_proof),
        "official_totals": _totals(stations),
        "tests": analysis.tests,
        "estimates": estimates,
        "crowd": _crowd_summary(conn, election_id),
        "note": (
            "proof flags are contradictions between numbers; statistical tests are never "
            "proof of anything at a single station; estimates rest on the assumptions "
            "written next to them"
        ),
    }
    (out / "summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2, default=_json_default) + "\n",
        encoding="utf-8",
    )
    images = _images(analysis, discrepancies)
    for name, data in images.items():
        (out / name).write_bytes(data)
    regional = _regional(stations, discrepancies, precincts)
    summary_for_page = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    (out / "report.html").write_text(
        render_report(summary_for_page, discrepancies, regional, images,
                      f"Golos report: {election_id}"),
        encoding="utf-8",
    )  # fmt: skip
    return summary_for_page


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
