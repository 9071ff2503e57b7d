"""The whole analysis on the seeded elections, whose truth is known."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import psycopg
import pyarrow.parquet as pq

from api.elections.crowd import import_crowd
from api.elections.service import load_election
from api.reports.service import write_election_report
from infra.storage import LocalPhotoStore
from seeds.crowd import honest_counts, provable_precincts, simulate_crowd
from seeds.generate import SEED_DIR, generate_election, load_seed
from tally.vocab import DISCREPANCY_COLUMNS

DRAWS = 200  # enough to tell a planted excess from the null; the benchmark uses 1,000


def _partner_csv(path: Path, option_ids: list[str], counts: dict) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["precinct_id", "source", *option_ids])
        for precinct, by_option in sorted(counts.items()):
            writer.writerow([precinct, "partner-photos", *(by_option[o] for o in option_ids)])
    return path


def test_falsified_seed_proof_and_signals(conn: psycopg.Connection, tmp_path: Path) -> None:
    seed = load_seed(SEED_DIR)
    load_election(conn, SEED_DIR, LocalPhotoStore(tmp_path / "photos"))
    # A partner's verified crowd count at 150 stations, from honest voters only.
    voters = simulate_crowd(seed, 4000, 150, np.random.default_rng(3))
    partner = _partner_csv(tmp_path / "partner.csv", seed.option_ids, honest_counts(voters))
    import_crowd(conn, seed.election_id, partner.read_bytes(), partner.name, "verified")
    conn.commit()

    out = tmp_path / "report"
    summary = write_election_report(conn, seed.election_id, out, draws=DRAWS)

    with open(out / "discrepancies.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == DISCREPANCY_COLUMNS
    proof = {(r["precinct_id"], r["flag"]) for r in rows if r["kind"] == "proof"}
    crowd_proof = {p for p, flag in proof if flag == "crowd_exceeds_official"}
    provable = set(provable_precincts(voters, seed.official))
    assert provable and crowd_proof == provable  # every provable one, nothing else
    # No station outside the documented set gets a proof flag.
    assert {p for p, _ in proof} <= set(seed.falsified)
    assert summary["precincts_with_proof"] == len({p for p, _ in proof})

    assert summary["tests"]["integer_percent"]["significant"] is True
    assert summary["flags"]["integer_percent"] > 0
    # Share outliers: leads, and nearly all of them at falsified stations.
    outliers = [r["precinct_id"] for r in rows if r["flag"] in ("turnout_outlier", "share_outlier")]
    assert len(outliers) >= 50 and summary["tests"]["outliers"]["significant"] is True
    assert sum(p in seed.falsified for p in outliers) >= 0.95 * len(outliers)
    corrected = summary["estimates"]["crowd_corrected"]
    assert corrected["stations_corrected"] == len(provable)
    tsikhanouskaya = corrected["national"]["tsikhanouskaya"]
    assert tsikhanouskaya["corrected_share"] > tsikhanouskaya["official_share"]
    assert summary["estimates"]["clean_stations"]["assumptions"]
    for name in ("discrepancies.parquet", "precincts.parquet"):
        assert pq.read_table(out / name).num_rows > 0
    precincts = pq.read_table(out / "precincts.parquet")
    assert precincts.num_rows == 5767 and "partner-photos_tsikhanouskaya" in precincts.column_names
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and "http://" not in html
    assert json.loads((out / "summary.json").read_text())["format"] == "report/1"


def test_clean_seed_has_no_proof_and_no_significant_signal(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    folder = tmp_path / "clean"
    generate_election(folder, clean=True)
    load_election(conn, folder, LocalPhotoStore(tmp_path / "photos"))
    conn.commit()
    summary = write_election_report(
        conn, "by-2020-president-clean", tmp_path / "report", draws=DRAWS
    )
    assert summary["precincts_with_proof"] == 0
    assert summary["tests"]["integer_percent"]["significant"] is False
    assert summary["flags"]["integer_percent"] == 0
    assert summary["flags"].get("turnout_outlier", 0) == 0
    assert summary["flags"].get("share_outlier", 0) == 0
    assert summary["tests"]["outliers"]["significant"] is False
