"""Discrepancy reports (``report/1``): what analysts download."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from tally.service import FLAG_NAMES, recompute_flags
from tally.stats import integer_percent_test

DISCREPANCY_COLUMNS = (
    "precinct_id",
    "region",
    "district",
    "flag",
    "kind",
    "option",
    "source",
    "crowd",
    "official",
    "statistic",
    "p_value",
    "q_value",
    "detail",
    "review_status",
)


def _cell(value: Any) -> Any:
    return "" if value is None else value


def write_discrepancies(conn: psycopg.Connection, election_id: str, path: Path) -> int:
    rows = conn.execute(
        """
        SELECT f.precinct_id, p.region, p.district, f.flag, f.kind, f.option_id, f.source,
               f.crowd, f.official, f.statistic, f.p_value, f.q_value, f.detail, f.review_status
        FROM flags f JOIN precincts p ON p.election_id = f.election_id AND p.id = f.precinct_id
        WHERE f.election_id = %s
        ORDER BY f.kind, f.flag, f.precinct_id, f.option_id, f.source
        """,
        (election_id,),
    ).fetchall()
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(DISCREPANCY_COLUMNS)
        for row in rows:
            writer.writerow([_cell(v) for v in row])
    return len(rows)


def _official_totals(conn: psycopg.Connection, election_id: str) -> dict[str, Any]:
    totals = conn.execute(
        """
        SELECT coalesce(sum(registered), 0), coalesce(sum(ballots_issued), 0),
               coalesce(sum(ballots_cast), 0), coalesce(sum(invalid), 0), count(*)
        FROM current_official_results WHERE election_id = %s
        """,
        (election_id,),
    ).fetchone()
    assert totals is not None
    options = conn.execute(
        """
        SELECT o.id, coalesce(sum(v.votes), 0) FROM options o
        LEFT JOIN current_official_votes v ON v.election_id = o.election_id AND v.option_id = o.id
        WHERE o.election_id = %s GROUP BY o.id, o.position ORDER BY o.position
        """,
        (election_id,),
    ).fetchall()
    return {
        "registered": int(totals[0]),
        "ballots_issued": int(totals[1]),
        "ballots_cast": int(totals[2]),
        "invalid": int(totals[3]),
        "options": {o: int(n) for o, n in options},
        "_precincts": int(totals[4]),
    }


def _integer_percent(conn: psycopg.Connection, election_id: str, leader: str) -> dict[str, Any]:
    rows = conn.execute(
        """
        SELECT r.registered, r.ballots_issued, r.ballots_cast, v.votes
        FROM current_official_results r
        JOIN current_official_votes v
          ON v.election_id = r.election_id AND v.precinct_id = r.precinct_id AND v.option_id = %s
        WHERE r.election_id = %s AND r.registered IS NOT NULL AND r.ballots_issued IS NOT NULL
          AND r.ballots_cast IS NOT NULL AND v.votes IS NOT NULL
        """,
        (leader, election_id),
    ).fetchall()
    if not rows:
        return {"skipped": "no complete official protocols"}
    data = np.array(rows, dtype=np.int64)
    result = integer_percent_test(data[:, 0], data[:, 1], data[:, 2], data[:, 3], leader)
    return result.as_dict()


def _crowd_summary(conn: psycopg.Connection, election_id: str) -> dict[str, Any]:
    statuses: dict[str, int] = dict(
        conn.execute(
            "SELECT status, count(*) FROM submissions WHERE election_id = %s GROUP BY status",
            (election_id,),
        ).fetchall()
    )
    reasons: Counter[str] = Counter(
        dict(
            conn.execute(
                """
                SELECT reasons[1], count(*) FROM submissions
                WHERE election_id = %s AND status IN ('rejected', 'review')
                GROUP BY reasons[1]
                """,
                (election_id,),
            ).fetchall()
        )
    )
    return {
        "photos_received": sum(statuses.values()),
        "by_status": {k: int(v) for k, v in sorted(statuses.items())},
        "not_counted_by_reason": {k: int(v) for k, v in sorted(reasons.items())},
    }


def build_summary(conn: psycopg.Connection, election_id: str) -> dict[str, Any]:
    precincts = conn.execute(
        "SELECT count(*) FROM precincts WHERE election_id = %s", (election_id,)
    ).fetchone()
    # Flags observers dismissed are in discrepancies.csv with their status, but
    # count for nothing here.
    flag_counts: dict[str, int] = dict.fromkeys(FLAG_NAMES, 0)
    flag_counts.update(
        conn.execute(
            "SELECT flag, count(*) FROM flags WHERE election_id = %s"
            " AND review_status <> 'dismissed' GROUP BY flag ORDER BY flag",
            (election_id,),
        ).fetchall()
    )
    with_proof = conn.execute(
        "SELECT count(DISTINCT precinct_id) FROM flags WHERE election_id = %s AND kind = 'proof'"
        " AND review_status <> 'dismissed'",
        (election_id,),
    ).fetchone()
    totals = _official_totals(conn, election_id)
    precincts_with_official = totals.pop("_precincts")
    leader = max(totals["options"], key=lambda o: totals["options"][o]) if totals["options"] else ""
    tests: dict[str, Any] = {}
    if precincts_with_official and leader:
        tests["integer_percent"] = _integer_percent(conn, election_id, leader)
    return {
        "format": "report/1",
        "election": election_id,
        "precincts": int(precincts[0]) if precincts else 0,
        "precincts_with_official": precincts_with_official,
        "flags": {k: int(v) for k, v in flag_counts.items()},
        "precincts_with_proof": int(with_proof[0]) if with_proof else 0,
        "official_totals": totals,
        "crowd": _crowd_summary(conn, election_id),
        "tests": tests,
        "note": (
            "proof flags are contradictions between numbers; statistical tests are never "
            "proof of anything at a single station"
        ),
    }


def write_report(conn: psycopg.Connection, election_id: str, out: Path) -> dict[str, Any]:
    """Recompute flags, then write ``discrepancies.csv`` and ``summary.json`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    recompute_flags(conn, election_id)
    write_discrepancies(conn, election_id, out / "discrepancies.csv")
    summary = build_summary(conn, election_id)
    (out / "summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return summary
