"""Warming the write-ahead log before a peak (``golos db warm-wal``).

PostgreSQL writes its log into 16 MB segment files. A segment that is not there yet
is created and filled with zeros when the log reaches it, and every commit waits
meanwhile: watching ``pg_stat_activity`` during ``bench/ingest.py`` on a fresh
cluster, ten uploads at once waited on ``LWLock:WALWrite`` while one backend was in
``IO:WALInitWrite`` / ``WALInitSync``, ≈ 0.5 s, and two of six runs at 200 uploads/s
had a p99 of 2-2.8 s (``infra/CAPACITY.md`` §4). After a checkpoint, finished
segments are kept and renamed for reuse as long as the log on disk stays under
``min_wal_size``: then the log never waits for a new file. A database created
for an election has none to reuse on its first busy morning; this writes ``size``
bytes of log once, in a scratch table dropped at once, and asks for a checkpoint,
so that the segments are there, recycled, before the polls open.

It needs ``min_wal_size`` of at least ``size`` (otherwise the next checkpoints
remove the segments instead of keeping them), a role that may create a table
where it connects, and, for the checkpoint, a superuser or ``pg_checkpoint``
(otherwise the next scheduled checkpoint recycles them, within
``checkpoint_timeout``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import psycopg
from psycopg import errors, sql

WARM_TABLE = "golos_wal_warmup"
# Bytes of filler per row: under PostgreSQL's TOAST threshold (≈ 2 KB), so a row
# is stored and logged as it is, not compressed (a compressed row logs far less).
ROW_BYTES = 1900
RELOAD_SECONDS = 10.0  # how long a configuration reload is waited for
BATCH_ROWS = 20_000  # ≈ 38 MB of log a statement: a few segments each
_UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


@dataclass(frozen=True)
class Warmed:
    written: int  # bytes of log written
    segments: int  # 16 MB segments (or the cluster's size) they fill
    checkpointed: bool  # False: left to the next scheduled checkpoint


def parse_size(text: str) -> int:
    """Bytes in a size as PostgreSQL writes them (``1GB``, ``512MB``, ``4096``);
    ValueError for anything else. Pure."""
    found = re.fullmatch(r"\s*(\d+)\s*([KMGT]?B?)\s*", text.upper())
    if found is None or found.group(2) not in _UNITS:
        raise ValueError(f"not a size: {text!r} (write e.g. 512MB or 2GB)")
    return int(found.group(1)) * _UNITS[found.group(2)]


def _setting_bytes(conn: psycopg.Connection, name: str) -> int:
    row = conn.execute(
        "SELECT setting::bigint, unit FROM pg_settings WHERE name = %s", (name,)
    ).fetchone()
    assert row is not None, name
    value, unit = int(row[0]), str(row[1] or "B").upper()
    if unit not in _UNITS:
        raise ValueError(f"{name} is counted in {row[1]!r}, not a size unit")
    return value * _UNITS[unit]


def warm_wal(conn: psycopg.Connection, size: int) -> Warmed:
    """Write ``size`` bytes of log through a scratch table (created, filled, dropped),
    then ask for a checkpoint. ``conn`` is in autocommit. ValueError when
    ``min_wal_size`` is below ``size``, naming the setting to raise."""
    if not conn.autocommit:
        raise ValueError("warm_wal needs a connection in autocommit")
    keep = _setting_bytes(conn, "min_wal_size")
    if size > keep:
        raise ValueError(
            f"min_wal_size is {keep // 1024**2} MB: set it to at least {size // 1024**2} MB"
            " first, or the next checkpoints remove the log written instead of keeping it"
        )
    segment = _setting_bytes(conn, "wal_segment_size")
    table = sql.Identifier(WARM_TABLE)
    start = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
    assert start is not None
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    conn.execute(sql.SQL("CREATE TABLE {} (filler text)").format(table))
    written = 0
    try:
        while written < size:
            rows = max(1, min(BATCH_ROWS, (size - written) // ROW_BYTES + 1))
            conn.execute(
                sql.SQL("INSERT INTO {} SELECT repeat('x', %s) FROM generate_series(1, %s)").format(
                    table
                ),
                (ROW_BYTES, rows),
            )
            done = conn.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)::bigint", (start[0],)
            ).fetchone()
            assert done is not None
            written = int(done[0])
    finally:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    try:
        conn.execute("CHECKPOINT")
        checkpointed = True
    except errors.InsufficientPrivilege:
        checkpointed = False
    return Warmed(written, -(-written // segment), checkpointed)


def keep_at_least(conn: psycopg.Connection, size: int) -> bool:
    """Raise ``min_wal_size`` (and ``max_wal_size``, to twice it, if lower) to ``size``
    where it is lower, and reload the configuration: True when changed. Needs a
    superuser (ALTER SYSTEM): the embedded cluster's administrator."""
    if _setting_bytes(conn, "min_wal_size") >= size:
        return False
    megabytes = -(-size // 1024**2)
    conn.execute(
        sql.SQL("ALTER SYSTEM SET min_wal_size = {}").format(sql.Literal(f"{megabytes}MB"))
    )
    if _setting_bytes(conn, "max_wal_size") < 2 * size:
        conn.execute(
            sql.SQL("ALTER SYSTEM SET max_wal_size = {}").format(sql.Literal(f"{2 * megabytes}MB"))
        )
    conn.execute("SELECT pg_reload_conf()")
    # The reload is a signal: this session sees the new value only once the
    # postmaster has passed it on (a few milliseconds; a fresh-clone test run
    # read the old value right after the reload).
    deadline = time.monotonic() + RELOAD_SECONDS
    while _setting_bytes(conn, "min_wal_size") < size:
        if time.monotonic() > deadline:
            raise RuntimeError("PostgreSQL did not take the new min_wal_size (reload)")
        time.sleep(0.02)
    return True
