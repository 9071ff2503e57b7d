"""Benchmark: what a NOTIFY in a transaction costs its commit, on this machine.

Why migration 0019 disables procrastinate's job-inserted trigger. A transaction
that sent NOTIFY takes one database-wide lock at commit and holds it until its
commit record is flushed (PostgreSQL's async.c, PreCommit_Notify): such commits,
fsync and all, happen one at a time. Every upload queues its job in its own
transaction, so with the trigger on, every upload's commit waited in that line.

Starts a throwaway embedded cluster (durable: fsync on, as in production) and runs
--sessions sessions at once, each committing --commits transactions of one
statement: a row inserted, alone or beside a ``pg_notify`` (the same statement,
so the same round trips). Runs both kinds alternately, --runs times each, and
prints for each the commits per second, p50 and p99 latency (median of the runs),
and the ratio; then again while --photo-writers threads write 300 KB files and
fsync each, as uploads store their photos on the same disk (a commit's flush then
takes longer, and the line behind the lock grows with it).

    .venv/bin/python bench/queue_notify.py [--sessions 16] [--commits 150] [--runs 3]
        [--photo-writers 4]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.pg import EmbeddedPostgres

PLAIN = "INSERT INTO queued (payload) SELECT 'job'"
NOTIFYING = "INSERT INTO queued (payload) SELECT 'job' FROM (SELECT pg_notify('jobs', 'job')) n"


def run(dsn: str, statement: str, sessions: int, commits: int) -> tuple[float, float, float]:
    """(commits per second, p50 ms, p99 ms) of ``sessions`` sessions at once."""
    latencies: list[float] = []
    lock = threading.Lock()

    def session() -> None:
        mine = []
        with psycopg.connect(dsn) as conn:
            for _ in range(commits):
                started = time.perf_counter()
                conn.execute(statement)
                conn.commit()
                mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=session) for _ in range(sessions)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return (
        len(latencies) / elapsed,
        1000 * latencies[len(latencies) // 2],
        1000 * latencies[int(len(latencies) * 0.99)],
    )


@contextlib.contextmanager
def photo_writes(folder: Path, writers: int) -> Iterator[None]:
    """``writers`` threads writing 300 KB files and fsyncing each, until the block
    ends."""
    stop = threading.Event()
    data = os.urandom(300_000)

    def write(n: int) -> None:
        k = 0
        while not stop.is_set():
            path = folder / f"{n}-{k % 50}"
            with open(path, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            k += 1

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def report(title: str, results: dict[str, list[tuple[float, float, float]]]) -> None:
    print(title)
    print(f"  {'':<26}{'commits/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    rates = {}
    for kind, label in (("plain", "insert"), ("notify", "insert + pg_notify")):
        rate, p50, p99 = (statistics.median(r[i] for r in results[kind]) for i in range(3))
        rates[kind] = rate
        print(f"  {label:<26}{rate:>10.0f}{p50:>9.1f}{p99:>9.1f}")
    print(f"  with NOTIFY / without: {rates['notify'] / rates['plain']:.0%} of the commits")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--commits", type=int, default=150, help="per session and run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--photo-writers", type=int, default=4)
    args = parser.parse_args()
    cluster = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="golos-bench-notify-")))
    cluster.init()
    cluster.start()
    try:
        dsn = cluster.dsn()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE queued (id bigserial PRIMARY KEY, payload text)")
        photos = Path(tempfile.mkdtemp(prefix="golos-bench-notify-photos-"))
        for writers in (0, args.photo_writers):
            results: dict[str, list[tuple[float, float, float]]] = {"plain": [], "notify": []}
            with photo_writes(photos, writers):
                for _ in range(args.runs):
                    results["plain"].append(run(dsn, PLAIN, args.sessions, args.commits))
                    results["notify"].append(run(dsn, NOTIFYING, args.sessions, args.commits))
            report(
                f"{args.sessions} sessions x {args.commits} commits, median of {args.runs} runs"
                f" (embedded PostgreSQL, fsync on), {writers} photo writers beside",
                results,
            )
        shutil.rmtree(photos, ignore_errors=True)
    finally:
        cluster.stop()
        shutil.rmtree(cluster.folder, ignore_errors=True)


if __name__ == "__main__":
    main()
