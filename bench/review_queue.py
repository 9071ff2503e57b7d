"""Benchmark: the observers' two review queues with tens of thousands of rows.

Creates one election with --precincts stations in 7 regions, --flags flags (a
tenth proof, the rest statistical; review statuses mixed) and --submissions
submissions in review (near-duplicates with their fingerprints, choice
mismatches, unreadable photos, failures) beside --verified verified ones. The
rows are written with COPY straight into the tables (a benchmark's shortcut: the
flag stage and the pipeline would take hours to make as many), then ANALYZEd.

Then times pages through the real HTTP app (FastAPI's TestClient: routing, the
observer's token, the queries, the HTML template), logged in as an observer: the
first page and a deep page (a keyset cursor --deep rows in) of each queue, each
with and without filters, and the JSON answer of the first pages. Prints the
median and the slowest of --runs timed requests per page (after one warm-up).

    .venv/bin/python bench/review_queue.py [--flags 50000] [--submissions 20000]
        [--verified 50000] [--precincts 5000] [--runs 7] [--deep 0.8] [--seed 1]

Runs against a throwaway embedded cluster unless GOLOS_DATABASE_URL is set (then
it creates and drops its own election, bench-review, and account, bench-observer).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

ELECTION = "bench-review"
OPTIONS = ("a", "b", "c", "d", "e", "f")
REGIONS = 7
DISTRICTS_PER_REGION = 20
STATISTICAL = ("share_outlier", "turnout_outlier", "integer_percent", "high_turnout_unanimity")
STATUSES = (("open", 0.8), ("confirmed", 0.1), ("dismissed", 0.05), ("more_evidence", 0.05))
REASONS = (
    (["near_duplicate_photo"], 0.05),
    (["choice_mismatch", "near_duplicate_photo"], 0.05),
    (["choice_mismatch"], 0.5),
    (["unreadable", "too_blurry"], 0.35),
    (["processing_failed"], 0.05),
)


def _precinct(i: int) -> tuple[str, str, str]:
    region = i % REGIONS
    district = (i // REGIONS) % DISTRICTS_PER_REGION
    return f"s{i:05d}", f"Region {region}", f"District {region}-{district}"


def _pick(rng: np.random.Generator, weighted: tuple[tuple[Any, float], ...], n: int) -> list[Any]:
    values = [v for v, _ in weighted]
    chosen = rng.choice(len(values), size=n, p=[w for _, w in weighted])
    return [values[int(i)] for i in chosen]


def _array(values: list[str]) -> str:
    return "{" + ",".join(values) + "}"


def _load(conn: psycopg.Connection, args: argparse.Namespace, rng: np.random.Generator) -> None:
    conn.execute("DELETE FROM review_decisions WHERE election_id = %s", (ELECTION,))
    conn.execute("DELETE FROM flags WHERE election_id = %s", (ELECTION,))
    for table in ("photo_fingerprint_bands", "photo_fingerprints", "photo_owners", "submissions"):
        conn.execute(f"DELETE FROM {table} WHERE election_id = %s", (ELECTION,))
    conn.execute("DELETE FROM elections WHERE id = %s", (ELECTION,))
    conn.execute(
        "INSERT INTO elections (id, name, definition) VALUES (%s, 'Review benchmark', '{}')",
        (ELECTION,),
    )
    with conn.cursor().copy("COPY options (election_id, id, label, position) FROM STDIN") as copy:
        for n, option in enumerate(OPTIONS):
            copy.write_row((ELECTION, option, option.upper(), n))
    with conn.cursor().copy(
        "COPY precincts (election_id, id, region, district, registered) FROM STDIN"
    ) as copy:
        for i in range(args.precincts):
            copy.write_row((ELECTION, *_precinct(i), 1500))

    # Flags: unique (precinct, flag, option, source); a tenth proof.
    proof = args.flags // 10
    keys: list[tuple[str, str, str, str, str]] = []
    for i in range(args.precincts):
        for option in OPTIONS[:2]:
            keys.append((_precinct(i)[0], "crowd_exceeds_official", option, "photos", "proof"))
    keys = keys[:proof]
    statistical = [
        (_precinct(i)[0], flag, option, "protocol", "statistical")
        for flag in STATISTICAL
        for option in OPTIONS
        for i in range(args.precincts)
    ]
    keys += statistical[: args.flags - len(keys)]
    assert len(keys) == args.flags, "more flags than the stations allow: raise --precincts"
    statuses = _pick(rng, STATUSES, len(keys))
    with conn.cursor().copy(
        "COPY flags (election_id, precinct_id, flag, kind, option_id, source, crowd, official,"
        " statistic, p_value, q_value, detail, review_status) FROM STDIN"
    ) as copy:
        for (precinct, flag, option, source, kind), status in zip(keys, statuses, strict=True):
            row: tuple[Any, ...]
            if kind == "proof":
                official = int(rng.integers(0, 300))
                crowd = official + 1 + int(rng.geometric(0.2))
                row = (crowd, official, None, None, None, f"{crowd} > {official}")
            else:
                p = float(rng.beta(0.5, 8))
                q = min(1.0, p * float(rng.uniform(1, 20)))
                row = (None, None, float(rng.normal(3, 1)), p, q, f"z, p = {p:.3g}")
            copy.write_row((ELECTION, precinct, flag, kind, option, source, *row, status))

    # Submissions: verified ones (near-duplicates point at them), then those in review.
    verified = [uuid.UUID(bytes=rng.bytes(16), version=4) for _ in range(args.verified)]
    review = [uuid.UUID(bytes=rng.bytes(16), version=4) for _ in range(args.submissions)]
    reasons = _pick(rng, REASONS, len(review))
    with conn.cursor().copy(
        "COPY submissions (id, election_id, precinct_id, declared_choice, request_digest,"
        " photo_sha256, voter_key, status, reasons, marks) FROM STDIN"
    ) as copy:
        for sid in verified:
            precinct = _precinct(int(rng.integers(args.precincts)))[0]
            option = OPTIONS[int(rng.integers(len(OPTIONS)))]
            copy.write_row(
                (
                    sid,
                    ELECTION,
                    precinct,
                    [option],
                    "bench",
                    sid.hex + sid.hex,
                    rng.bytes(32),
                    "verified",
                    [],
                    [option],
                )
            )
        for sid, why in zip(review, reasons, strict=True):
            precinct = _precinct(int(rng.integers(args.precincts)))[0]
            marks = None if why[0] in ("unreadable", "processing_failed") else ["b"]
            copy.write_row(
                (
                    sid,
                    ELECTION,
                    precinct,
                    ["a"],
                    "bench",
                    sid.hex + sid.hex,
                    rng.bytes(32),
                    "review",
                    why,
                    marks,
                )
            )
    with conn.cursor().copy(
        "COPY photo_fingerprints (submission_id, election_id, fingerprint, near_duplicate_of,"
        " distance) FROM STDIN"
    ) as copy:
        for sid in verified:
            copy.write_row((sid, ELECTION, int(rng.integers(-(2**62), 2**62)), None, None))
        for sid, why in zip(review, reasons, strict=True):
            if "near_duplicate_photo" in why or why[0] == "choice_mismatch":
                near = "near_duplicate_photo" in why
                copy.write_row(
                    (
                        sid,
                        ELECTION,
                        int(rng.integers(-(2**62), 2**62)),
                        verified[int(rng.integers(len(verified)))] if near else None,
                        int(rng.integers(0, 7)) if near else None,
                    )
                )
    conn.commit()
    for table in ("flags", "submissions", "photo_fingerprints", "precincts"):
        conn.execute(f"ANALYZE {table}")
    conn.commit()


def _cursors(conn: psycopg.Connection, deep: float) -> dict[str, str]:
    """Keyset cursors ``deep`` of the way into each queue, unfiltered and filtered, as
    a reviewer paging on would hold them."""
    from api.review.service import flag_cursor, submission_cursor

    def flag_at(where: str, params: tuple[Any, ...]) -> str:
        count = conn.execute(f"SELECT count(*) FROM flags WHERE {where}", params).fetchone()
        assert count is not None
        row = conn.execute(
            "SELECT review_flag_rank(kind, crowd, official, q_value, p_value), id FROM flags"
            f" WHERE {where} ORDER BY 1, 2 OFFSET %s LIMIT 1",
            (*params, int(count[0] * deep)),
        ).fetchone()
        assert row is not None
        return flag_cursor(float(row[0]), int(row[1]))

    def submission_at(where: str, params: tuple[Any, ...]) -> str:
        count = conn.execute(f"SELECT count(*) FROM submissions s WHERE {where}", params).fetchone()
        assert count is not None
        row = conn.execute(
            "SELECT review_submission_rank(s.reasons),"
            " CASE WHEN review_submission_rank(s.reasons) = 0"
            "      THEN coalesce(f.distance, 64) ELSE 0 END AS d, s.seq"
            " FROM submissions s LEFT JOIN photo_fingerprints f ON f.submission_id = s.id"
            f" WHERE {where} ORDER BY 1, 2, 3 OFFSET %s LIMIT 1",
            (*params, int(count[0] * deep)),
        ).fetchone()
        assert row is not None
        return submission_cursor(int(row[0]), int(row[1]), int(row[2]))

    e = (ELECTION,)
    return {
        "flags": flag_at("election_id = %s", e),
        "flags_statistical_open": flag_at(
            "election_id = %s AND kind = 'statistical' AND review_status = 'open'", e
        ),
        "submissions": submission_at("s.election_id = %s AND s.status = 'review'", e),
        "submissions_unreadable": submission_at(
            "s.election_id = %s AND s.status = 'review' AND s.reasons @> '{unreadable}'", e
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flags", type=int, default=50_000)
    parser.add_argument("--submissions", type=int, default=20_000)
    parser.add_argument("--verified", type=int, default=50_000)
    parser.add_argument("--precincts", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--deep", type=float, default=0.8, help="how far in the deep page is")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    scratch = None
    if "GOLOS_DATABASE_URL" not in os.environ:
        scratch = Path(tempfile.mkdtemp(prefix="golos-bench-"))
        scratch.chmod(0o711)
        os.environ["GOLOS_DATA_DIR"] = str(scratch / "data")
    # A benchmark on a scratch database: its keys may be generated (no production
    # secret needed), and all its requests come from one host.
    os.environ.setdefault("GOLOS_DEVELOPMENT", "1")
    os.environ.setdefault("GOLOS_SUBMISSIONS_PER_NETWORK", "0")
    from fastapi.testclient import TestClient

    from api.accounts import service as accounts
    from api.accounts.schemas import Principal, Role, Via
    from api.cli import ensure_database
    from api.main import create_app
    from infra import db
    from infra.pg import EmbeddedPostgres
    from infra.settings import get_settings

    rng = np.random.default_rng(args.seed)
    ensure_database()
    try:
        with db.connection() as conn:
            started = time.perf_counter()
            _load(conn, args, rng)
            print(
                f"{args.flags:,} flags, {args.submissions:,} submissions in review and "
                f"{args.verified:,} verified at {args.precincts:,} stations: loaded with COPY "
                f"in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            conn.execute(
                "DELETE FROM api_tokens WHERE user_id IN"
                " (SELECT id FROM users WHERE username = 'bench-observer')"
            )
            conn.execute(
                "DELETE FROM sessions WHERE user_id IN"
                " (SELECT id FROM users WHERE username = 'bench-observer')"
            )
            conn.execute("DELETE FROM users WHERE username = 'bench-observer'")
            user = accounts.add_user(
                conn, "bench-observer", Role.OBSERVER, "bench password 1234", actor="bench"
            )
            owner = Principal(
                role=user.role, via=Via.SESSION, user_id=user.id, username=user.username
            )
            token, _ = accounts.create_token(conn, owner, "bench", 1)
            conn.commit()
            cursors = _cursors(conn, args.deep)

        deep = f"{args.deep:.0%} in"
        e = f"election={ELECTION}"
        pages = [
            ("flags, first page", f"/review/flags?{e}"),
            (f"flags, deep page ({deep})", f"/review/flags?{e}&after={cursors['flags']}"),
            ("flags, region + status=open", f"/review/flags?{e}&region=Region+3&status=open"),
            ("flags, flag=share_outlier", f"/review/flags?{e}&flag=share_outlier"),
            (
                f"flags, kind=statistical + status=open, deep ({deep})",
                f"/review/flags?{e}&kind=statistical&status=open"
                f"&after={cursors['flags_statistical_open']}",
            ),
            ("flags, district (1 of 140)", f"/review/flags?{e}&district=District+3-7"),
            ("flags JSON, first page", f"/v1/review/flags?{e}"),
            ("submissions, first page", f"/review/submissions?{e}"),
            (
                f"submissions, deep page ({deep})",
                f"/review/submissions?{e}&after={cursors['submissions']}",
            ),
            ("submissions, reason=unreadable", f"/review/submissions?{e}&reason=unreadable"),
            (
                f"submissions, reason=unreadable, deep ({deep})",
                f"/review/submissions?{e}&reason=unreadable"
                f"&after={cursors['submissions_unreadable']}",
            ),
            ("submissions, district (1 of 140)", f"/review/submissions?{e}&district=District+3-7"),
            ("submissions JSON, first page", f"/v1/review/submissions?{e}"),
        ]
        headers = {"Authorization": f"Bearer {token}"}
        print(f"page (50 rows), median and slowest of {args.runs} requests, ms")
        with TestClient(create_app()) as client:
            for name, url in pages:
                samples = []
                for run in range(args.runs + 1):
                    started = time.perf_counter()
                    answer = client.get(url, headers=headers)
                    elapsed = time.perf_counter() - started
                    assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])
                    if run:  # the first request warms the caches
                        samples.append(elapsed * 1000)
                print(f"  {name:<55} {statistics.median(samples):7.1f} {max(samples):7.1f}")
    finally:
        db.close_pool()
        if scratch is not None:
            EmbeddedPostgres(get_settings().pg_dir).stop()
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
