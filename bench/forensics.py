"""Benchmark: import and full analysis of a national election (issue 4's targets).

On the real Russia 2018 results (97,699 stations, bench/data/ru2018): the import
of the election folder, then the complete report (every flag, every statistical
test with 1,000 Monte Carlo draws, all report files). Prints the median of
several runs, the peak memory of this process (the PostgreSQL server's memory is
its own), and the integer-percentage result against the published analysis.

    .venv/bin/python bench/forensics.py [--runs 3] [--draws 1000] [--folder bench/data/ru2018]

Runs against a throwaway embedded cluster unless GOLOS_DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from tally.vocab import ForensicTest

TARGETS = {"import_s": 30.0, "analysis_and_report_s": 60.0, "peak_memory_mb": 2048.0}
# Kobak, Shpilkin & Pshenichnikov (2016) and the brief: about 1,000-1,700 excess
# integer-percentage stations per federal election since 2004, null s.d. about 115.
PUBLISHED = "excess ~1,000-1,700 stations, null s.d. ~115"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--folder", type=Path, default=Path(__file__).parent / "data" / "ru2018")
    args = parser.parse_args()

    scratch = None
    if "GOLOS_DATABASE_URL" not in os.environ:
        scratch = Path(tempfile.mkdtemp(prefix="golos-bench-"))
        scratch.chmod(0o711)
        os.environ["GOLOS_DATA_DIR"] = str(scratch / "data")
    from api.cli import ensure_database
    from api.elections import repository as elections_repository
    from api.elections.service import load_election
    from api.protocols import repository as protocols_repository
    from api.reports import repository as reports_repository
    from api.reports.service import write_election_report
    from api.submissions import repository as submissions_repository
    from infra import db
    from infra.pg import EmbeddedPostgres
    from infra.settings import get_settings
    from infra.storage import photo_store
    from tally import repository as tally_repository

    ensure_database()
    election_id = json.loads((args.folder / "election.json").read_text())["id"]
    imports, reports, summary = [], [], {}
    try:
        for run in range(args.runs):
            with db.connection() as conn:
                # A fresh start: each domain clears its own rows of the election.
                protocols_repository.clear_election(conn, election_id)
                submissions_repository.clear_election(conn, election_id)
                tally_repository.clear_election(conn, election_id)
                reports_repository.clear_election(conn, election_id)
                elections_repository.delete_election(conn, election_id)
                conn.commit()
                started = time.perf_counter()
                load_election(conn, args.folder, photo_store(get_settings()))
                imports.append(time.perf_counter() - started)
                out = Path(tempfile.mkdtemp(prefix="golos-report-"))
                started = time.perf_counter()
                summary = write_election_report(conn, election_id, out, draws=args.draws)
                reports.append(time.perf_counter() - started)
                files = sorted(p.name for p in out.iterdir())
                shutil.rmtree(out)
            print(
                f"run {run + 1}: import {imports[-1]:.1f} s, report {reports[-1]:.1f} s", flush=True
            )
    finally:
        db.close_pool()
        if scratch is not None:
            EmbeddedPostgres(get_settings().pg_dir).stop()
            shutil.rmtree(scratch, ignore_errors=True)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "import_s": statistics.median(imports),
        "analysis_and_report_s": statistics.median(reports),
        "peak_memory_mb": peak_mb,
    }
    print(
        f"\n{election_id}: {summary['precincts']} precincts, {args.runs} runs, "
        f"{args.draws} Monte Carlo draws"
    )
    for key, value in figures.items():
        verdict = "ok" if value <= TARGETS[key] else "OVER TARGET"
        print(f"  {key:<24} median {value:8.1f}   target <= {TARGETS[key]:.0f}   {verdict}")
    ip = summary["tests"][ForensicTest.INTEGER_PERCENT]
    print(
        f"  integer percent: observed {ip['observed']}, null mean {ip['null_mean']:.1f}, "
        f"null s.d. {ip['null_sd']:.1f}, excess {ip['excess']:.1f}, significant "
        f"{ip['significant']} (published: {PUBLISHED})"
    )
    klimek = summary["tests"][ForensicTest.KLIMEK]
    print(
        f"  Klimek fit: f_incremental {klimek.get('f_incremental')}, "
        f"f_extreme {klimek.get('f_extreme')}"
    )
    print(f"  flags: {summary['flags']}")
    print(f"  files: {', '.join(files)}")


if __name__ == "__main__":
    main()
