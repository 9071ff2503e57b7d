"""Benchmark: the public pages, the map and the search on the seeded election.

Loads seeds/by-2020 (5,767 real stations, 1,310 known protocols), computes its
flags (--draws), counts --ballots verified photo ballots at random stations, then
requests each page --runs times through the application (FastAPI's test client:
routing, database, templates; no network) and prints the median and slowest time
of each, and its size as sent (gzip where the page is compressed) and unpacked.

    .venv/bin/python bench/public_pages.py [--runs 20] [--draws 200] [--ballots 2000]

Runs against a throwaway embedded cluster only (it loads the seeded election,
which would change a database in use).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEED = Path(__file__).resolve().parents[1] / "seeds" / "by-2020"
ELECTION = "by-2020-president"
URLS = (
    ("results page /", "/"),
    ("map, all 5,767 stations", f"/elections/{ELECTION}/map"),
    ("map of Minsk (731)", f"/elections/{ELECTION}/map?region=Минская городская"),
    ("region page, Minsk (731 rows)", f"/elections/{ELECTION}/regions/Минская городская"),
    ("station page", f"/elections/{ELECTION}/stations/01-010-0001"),
    ("search: a number", f"/v1/elections/{ELECTION}/stations?q=12"),
    ("search: street and number", f"/v1/elections/{ELECTION}/stations?q=Гоголя 7"),
    ("search: an id", f"/v1/elections/{ELECTION}/stations?q=01-010-0001"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--ballots", type=int, default=2000)
    args = parser.parse_args()
    if "GOLOS_DATABASE_URL" in os.environ:
        sys.exit("bench/public_pages.py runs on its own embedded cluster: unset GOLOS_DATABASE_URL")

    scratch = Path(tempfile.mkdtemp(prefix="golos-bench-"))
    scratch.chmod(0o711)
    os.environ["GOLOS_DATA_DIR"] = str(scratch / "data")
    # A benchmark on a scratch database: its keys may be generated (no production
    # secret needed), and all its requests come from one host.
    os.environ.setdefault("GOLOS_DEVELOPMENT", "1")
    os.environ.setdefault("GOLOS_SUBMISSIONS_PER_NETWORK", "0")
    from fastapi.testclient import TestClient

    from api.cli import ensure_database
    from api.elections import repository as elections
    from api.elections.service import load_election
    from api.flags.service import run_flags
    from api.main import create_app
    from infra import db
    from infra.pg import EmbeddedPostgres
    from infra.settings import get_settings
    from infra.storage import photo_store
    from tally import repository as tallies

    ensure_database()
    timings: dict[str, list[float]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    try:
        with db.connection() as conn:
            load_election(conn, SEED, photo_store(get_settings()))
            ids = sorted(elections.precinct_ids(conn, ELECTION))
            options = elections.option_ids(conn, ELECTION)
            rng = np.random.default_rng(1)
            for _ in range(args.ballots):
                station = ids[int(rng.integers(len(ids)))]
                option = options[int(rng.integers(len(options)))]
                tallies.count_ballot(conn, ELECTION, station, [option], 1)
            run_flags(conn, ELECTION, draws=args.draws)
            conn.commit()
        with TestClient(create_app()) as client:
            for label, url in URLS:
                client.get(url)  # warm: templates compiled, connections open
                samples = []
                for _ in range(args.runs):
                    started = time.perf_counter()
                    answer = client.get(url, headers={"Accept-Encoding": "gzip"})
                    samples.append(time.perf_counter() - started)
                    assert answer.status_code == 200, (url, answer.status_code)
                timings[label] = samples
                sent = int(answer.headers.get("content-length", len(answer.content)))
                sizes[label] = (sent, len(answer.content))
    finally:
        db.close_pool()
        EmbeddedPostgres(get_settings().pg_dir).stop()
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"\n{args.runs} requests each ({args.ballots} photo ballots, {args.draws} draws):")
    for label, samples in timings.items():
        sent, unpacked = sizes[label]
        print(
            f"  {label:<32} median {statistics.median(samples) * 1000:6.1f} ms"
            f"  max {max(samples) * 1000:6.1f} ms  sent {sent / 1024:7.1f} KiB"
            f"  ({unpacked / 1024:.1f} KiB unpacked)"
        )


if __name__ == "__main__":
    main()
