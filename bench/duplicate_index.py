"""Benchmark: the near-duplicate fingerprint index at a million photos per election.

Loads --photos random 64-bit fingerprints (uniform, or clustered around a few
centres with --centres to imitate many similar marks) as verified submissions of
one election, with COPY, then times lookups (api.submissions.duplicates): planted
near-duplicates (stored values with 0..k bits flipped), planted near misses (k+1
to k+3 bits flipped) and random values. Every answer is checked against a brute-
force scan of all stored values: each planted near-duplicate must be found, and
no answer may be farther than k bits. Prints the median and p99 milliseconds per
lookup for each run, and per check-and-record (lock, lookup, insert, commit) as the
pipeline does it (its commit, a WAL flush, timed apart). The photos here have no
second key (ocr.scene.scene_key; NULL, as for rows recorded before it), so the
first key alone decides; bench/near_duplicates.py times the lookup with both.

    .venv/bin/python bench/duplicate_index.py [--photos 1000000] [--lookups 1000]
        [--runs 3] [--centres 0] [--flip 0.15] [--seed 1]

Runs against a throwaway embedded cluster unless GOLOS_DATABASE_URL is set (then
it creates and drops its own election, bench-duplicates).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psycopg

ELECTION = "bench-duplicates"
CHUNK = 50_000


def _fingerprints(rng: np.random.Generator, n: int, centres: int, flip: float) -> np.ndarray:
    """n unsigned 64-bit values: uniform, or each a random centre with every bit
    flipped with probability `flip`."""
    if centres <= 0:
        return rng.integers(0, 2**64, size=n, dtype=np.uint64, endpoint=False)
    centre = rng.integers(0, 2**64, size=centres, dtype=np.uint64)[rng.integers(0, centres, n)]
    bits = rng.random((n, 64)) < flip
    noise = np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)
    return centre ^ noise


def flip(rng: np.random.Generator, value: int, count: int, bits: int = 64) -> int:
    """`value` with `count` of its `bits` bits, chosen at random, flipped."""
    for bit in rng.choice(bits, size=count, replace=False):
        value ^= 1 << int(bit)
    return value


@contextmanager
def bench_connection() -> Iterator[psycopg.Connection]:
    """A connection to a migrated database: a throwaway embedded cluster (stopped
    and deleted afterwards) unless GOLOS_DATABASE_URL is set."""
    scratch = None
    if "GOLOS_DATABASE_URL" not in os.environ:
        scratch = Path(tempfile.mkdtemp(prefix="golos-bench-"))
        scratch.chmod(0o711)
        os.environ["GOLOS_DATA_DIR"] = str(scratch / "data")
    from api.cli import ensure_database
    from infra import db
    from infra.pg import EmbeddedPostgres
    from infra.settings import get_settings

    ensure_database()
    try:
        with db.connection() as conn:
            yield conn
    finally:
        db.close_pool()
        if scratch is not None:
            EmbeddedPostgres(get_settings().pg_dir).stop()
            shutil.rmtree(scratch, ignore_errors=True)


def new_election(conn: psycopg.Connection, election: str) -> None:
    """An empty benchmark election (replacing one of that id) with one station, p1."""
    conn.execute("DELETE FROM elections WHERE id = %s", (election,))
    conn.execute(
        "INSERT INTO elections (id, name, definition) VALUES (%s, 'Benchmark', '{}')",
        (election,),
    )
    conn.execute(
        "INSERT INTO precincts (election_id, id, region, district) VALUES (%s, 'p1', 'r', 'd')",
        (election,),
    )


def drop_election(conn: psycopg.Connection, election: str) -> None:
    """Delete a benchmark election and everything recorded for it; commits."""
    conn.rollback()
    for statement in (
        "DELETE FROM photo_fingerprint_bands WHERE election_id = %s",
        "DELETE FROM photo_fingerprints WHERE election_id = %s",
        "DELETE FROM submissions WHERE election_id = %s",
        "DELETE FROM precincts WHERE election_id = %s",
        "DELETE FROM elections WHERE id = %s",
    ):
        conn.execute(statement, (election,))
    conn.commit()


def _load(conn: psycopg.Connection, values: np.ndarray, ids: list[uuid.UUID], bits: int) -> float:
    from api.submissions.duplicates import bands, to_signed

    started = time.perf_counter()
    new_election(conn, ELECTION)
    signed = values.view(np.int64)
    with conn.cursor() as cur:
        with cur.copy(
            "COPY submissions (id, election_id, precinct_id, declared_choice, request_digest,"
            " photo_sha256, status) FROM STDIN"
        ) as copy:
            for start in range(0, len(ids), CHUNK):
                copy.write(
                    "".join(
                        f"{sid}\t{ELECTION}\tp1\t{{a}}\tbench\t{sid.hex}\tverified\n"
                        for sid in ids[start : start + CHUNK]
                    )
                )
        with cur.copy(
            "COPY photo_fingerprints (submission_id, election_id, fingerprint) FROM STDIN"
        ) as copy:
            for start in range(0, len(ids), CHUNK):
                copy.write(
                    "".join(
                        f"{sid}\t{ELECTION}\t{v}\n"
                        for sid, v in zip(
                            ids[start : start + CHUNK],
                            signed[start : start + CHUNK].tolist(),
                            strict=True,
                        )
                    )
                )
        with cur.copy(
            "COPY photo_fingerprint_bands (election_id, band_bits, band_no, band_value,"
            " submission_id, fingerprint) FROM STDIN"
        ) as copy:
            for start in range(0, len(ids), CHUNK):
                lines = []
                for sid, u, s in zip(
                    ids[start : start + CHUNK],
                    values[start : start + CHUNK].tolist(),
                    signed[start : start + CHUNK].tolist(),
                    strict=True,
                ):
                    for no, band in enumerate(bands(u, bits)):
                        lines.append(f"{ELECTION}\t{bits}\t{no}\t{to_signed(band)}\t{sid}\t{s}\n")
                copy.write("".join(lines))
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE submissions, photo_fingerprints, photo_fingerprint_bands")
    conn.autocommit = False
    return time.perf_counter() - started


def _brute_min(values: np.ndarray, query: int) -> int:
    return int(np.bitwise_count(values ^ np.uint64(query)).min())


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"median {statistics.median(samples) * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=1000, help="per kind and run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--centres", type=int, default=0, help="0: uniform random values")
    parser.add_argument("--flip", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from api.submissions.duplicates import (
        check_and_record,
        find_near_duplicate,
        lookup_params,
    )
    from api.submissions.repository import LOOKUP_KEYS
    from ocr.reader import NEAR_DUPLICATE_BITS

    k = NEAR_DUPLICATE_BITS
    rng = np.random.default_rng(args.seed)
    values = _fingerprints(rng, args.photos, args.centres, args.flip)
    ids = [uuid.UUID(bytes=rng.bytes(16), version=4) for _ in range(args.photos)]
    by_id = {sid: int(v) for sid, v in zip(ids, values.tolist(), strict=True)}

    failures: list[str] = []
    with bench_connection() as conn:
        load_s = _load(conn, values, ids, k)
        sizes = conn.execute(
            """
            SELECT pg_total_relation_size('photo_fingerprint_bands'),
                   pg_relation_size('photo_fingerprint_bands_keys'),
                   pg_total_relation_size('photo_fingerprints')
            """
        ).fetchone()
        assert sizes is not None
        spread = "uniform" if args.centres <= 0 else f"{args.centres} centres, flip {args.flip}"
        print(
            f"{args.photos:,} fingerprints ({spread}), k = {k}, {k + 1} bands: "
            f"loaded with COPY in {load_s:.1f} s",
            flush=True,
        )
        print(
            f"  bands table {sizes[0] / 2**20:.0f} MiB (lookup index "
            f"{sizes[1] / 2**20:.0f} MiB), fingerprints table {sizes[2] / 2**20:.0f} MiB"
        )

        runs: dict[str, list[float]] = {
            "near": [],
            "miss": [],
            "random": [],
            "record": [],
            "commit": [],
        }
        found = planted = false_far = 0
        for run in range(args.runs):
            kinds: dict[str, list[float]] = {name: [] for name in runs}
            for kind in ("near", "miss", "random"):
                for _ in range(args.lookups):
                    base = by_id[ids[int(rng.integers(args.photos))]]
                    if kind == "near":
                        query = flip(rng, base, int(rng.integers(0, k + 1)))
                    elif kind == "miss":
                        query = flip(rng, base, int(rng.integers(k + 1, k + 4)))
                    else:
                        query = int(rng.integers(0, 2**64, dtype=np.uint64))
                    started = time.perf_counter()
                    match = find_near_duplicate(conn, ELECTION, query)
                    kinds[kind].append(time.perf_counter() - started)
                    best = _brute_min(values, query)
                    if match is not None:
                        stored = by_id[match.submission_id]
                        true = (stored ^ query).bit_count()
                        if true != match.distance or true > k:
                            false_far += 1
                            failures.append(f"{kind}: {query:016x} answered at {true}")
                        elif match.distance != best:
                            failures.append(f"{kind}: {query:016x} not the closest")
                    elif best <= k:
                        failures.append(f"{kind}: {query:016x} missed at {best}")
                    if kind == "near":
                        planted += 1
                        found += match is not None
                conn.rollback()
            # The pipeline's step: lock, re-cut check, lookup, record, commit.
            new_ids = [uuid.uuid4() for _ in range(args.lookups)]
            with conn.cursor().copy(
                "COPY submissions (id, election_id, precinct_id, declared_choice,"
                " request_digest, photo_sha256, status) FROM STDIN"
            ) as copy:
                for sid in new_ids:
                    copy.write_row((sid, ELECTION, "p1", ["a"], "bench", sid.hex, "verified"))
            conn.commit()
            for sid in new_ids:
                value = int(rng.integers(0, 2**64, dtype=np.uint64))
                started = time.perf_counter()
                check_and_record(conn, ELECTION, sid, f"{value:016x}")
                recorded = time.perf_counter()
                conn.commit()
                kinds["record"].append(recorded - started)
                kinds["commit"].append(time.perf_counter() - recorded)
                by_id[sid] = value
            values = np.array(list(by_id.values()), dtype=np.uint64)
            for name, samples in kinds.items():
                runs[name].append(statistics.median(samples))
            print(
                f"run {run + 1}: "
                + "; ".join(f"{name} {_ms(samples)}" for name, samples in kinds.items()),
                flush=True,
            )

        probe = by_id[ids[0]] ^ 1
        plan = conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + LOOKUP_KEYS,
            lookup_params(ELECTION, probe, None, k),
        ).fetchall()
        candidates = conn.execute(
            """
            SELECT avg(n) FROM (
                SELECT count(*) AS n FROM photo_fingerprint_bands
                WHERE election_id = %s AND band_bits = %s GROUP BY band_no, band_value) t
            """,
            (ELECTION, k),
        ).fetchone()
        drop_election(conn, ELECTION)

    assert candidates is not None
    print(f"\n{args.runs} runs of {args.lookups} lookups of each kind:")
    for name, label in (
        ("near", "lookup, planted near-duplicate"),
        ("miss", "lookup, near miss (k+1..k+3 bits)"),
        ("random", "lookup, random value"),
        ("record", "check-and-record (lock..insert)"),
        ("commit", "its commit (WAL flush)"),
    ):
        medians = [round(m * 1000, 3) for m in runs[name]]
        print(f"  {label:<36} median {statistics.median(runs[name]) * 1000:.3f} ms  runs {medians}")
    print(
        f"  rows per band value (average): {float(candidates[0]):.1f}, so about "
        f"{float(candidates[0]) * (k + 1):.0f} candidates per lookup"
    )
    print(
        f"  planted near-duplicates found: {found} of {planted}; answers farther than "
        f"k = {k}: {false_far}; disagreements with brute force: {len(failures)}"
    )
    for line in failures[:10]:
        print("   ", line)
    print("  plan of one lookup (a stored value with one bit flipped):")
    for (line,) in plan:
        print("   ", line)
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
