"""Warming the write-ahead log before a peak (infra/wal.py), on the test cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from infra.pg import EmbeddedPostgres
from infra.wal import WARM_TABLE, keep_at_least, parse_size, warm_wal

MB = 1024**2


@pytest.fixture
def admin(database: str) -> Iterator[psycopg.Connection]:
    """The test cluster's superuser; its log settings are put back afterwards."""
    socket = Path(str(conninfo_to_dict(database)["host"]))
    with psycopg.connect(EmbeddedPostgres(socket).admin_dsn(), autocommit=True) as conn:
        try:
            yield conn
        finally:
            conn.execute("ALTER SYSTEM RESET min_wal_size")
            conn.execute("ALTER SYSTEM RESET max_wal_size")
            conn.execute("SELECT pg_reload_conf()")


def _table_exists(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (WARM_TABLE,)).fetchone()
    return bool(row and row[0])


def _wal_files(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'")
    found = row.fetchone()
    assert found is not None
    return int(found[0])


def test_warming_writes_the_log_asked_for_and_leaves_no_table(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:  # the platform's own role
        warmed = warm_wal(conn, 40 * MB)
        assert warmed.written >= 40 * MB
        assert warmed.segments >= 3  # 16 MB segments
        assert not warmed.checkpointed  # no superuser, no pg_checkpoint: left to schedule
        assert not _table_exists(conn)


def test_warming_more_than_min_wal_size_keeps_is_refused_naming_the_setting(
    database: str,
) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        before = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
        with pytest.raises(ValueError, match="min_wal_size"):
            warm_wal(conn, 64 * 1024 * MB)
        after = conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)",
            (before[0] if before else None,),
        ).fetchone()
        assert after is not None and float(after[0]) < MB  # nothing was written
        assert not _table_exists(conn)


def test_the_cluster_keeps_the_warmed_segments_for_reuse(admin: psycopg.Connection) -> None:
    assert keep_at_least(admin, 160 * MB)
    assert admin.execute("SHOW min_wal_size").fetchone() == ("160MB",)
    assert not keep_at_least(admin, 160 * MB)  # already so
    warmed = warm_wal(admin, 160 * MB)
    assert warmed.checkpointed
    # After the checkpoint the finished segments stay, renamed for reuse, up to
    # min_wal_size: the next 160 MB of log need no new file.
    assert _wal_files(admin) >= 160 * MB // (16 * MB)


@given(st.integers(0, 10**6), st.sampled_from(["", "B", "kB", "MB", "GB", "TB"]))
def test_a_size_reads_as_postgresql_writes_it(number: int, unit: str) -> None:
    factor = {"": 1, "B": 1, "kB": 1024, "MB": MB, "GB": 1024 * MB, "TB": 1024**2 * MB}[unit]
    assert parse_size(f"{number}{unit}") == number * factor
    assert parse_size(f" {number} {unit.lower()} ") == number * factor


@pytest.mark.parametrize("text", ["", "MB", "1.5GB", "-1GB", "10 PB", "ten MB", "1 G B"])
def test_a_size_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)
