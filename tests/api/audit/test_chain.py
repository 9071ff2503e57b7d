"""The audit trail: a hash chain the database keeps append-only, and a check that
names the first broken link however the log was changed.

The tests share the session's database, whose audit log is never emptied (it
refuses TRUNCATE): each looks at the chain as a whole and at the entries it adds.
Tampering happens inside a transaction that is rolled back, so the shared log
stays intact for the tests after it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb
from typer.testing import CliRunner

from api import cli
from api.audit import service as audit
from api.audit.repository import Entry


def append_some(conn: psycopg.Connection, count: int, actor: str = "tester") -> list[Entry]:
    with conn.transaction():
        made = [
            audit.append(
                conn, actor, "review.propose", f"flag:{n}", {"decision": "confirm", "n": n}
            )
            for n in range(count)
        ]
    conn.commit()
    return made


def test_a_chain_of_appends_verifies(conn: psycopg.Connection) -> None:
    before = audit.verify(conn)
    made = append_some(conn, 5)
    after = audit.verify(conn)
    assert after.ok and after.checked == before.checked + 5
    assert [e.seq for e in made] == list(range(made[0].seq, made[0].seq + 5))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(made))
    assert audit.recent(conn, 1)[0] == made[-1]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'someone else' WHERE seq = %(seq)s",
        "DELETE FROM audit_log WHERE seq = %(seq)s",
        "TRUNCATE audit_log",
    ],
)
def test_the_database_refuses_to_change_or_remove_entries(
    conn: psycopg.Connection, statement: str
) -> None:
    seq = append_some(conn, 1)[0].seq
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute(statement, {"seq": seq})
    conn.rollback()
    assert audit.verify(conn).ok


@contextmanager
def tampering(conn: psycopg.Connection) -> Iterator[None]:
    """What only someone with the owner's rights can do: switch the table's
    triggers off, within a transaction that is always rolled back."""
    conn.rollback()
    try:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        yield
    finally:
        conn.rollback()


def test_a_changed_detail_is_named_as_the_first_broken_link(conn: psycopg.Connection) -> None:
    made = append_some(conn, 3)
    target = made[1]
    with tampering(conn):
        conn.execute(
            "UPDATE audit_log SET detail = %s WHERE seq = %s",
            (Jsonb({"decision": "dismiss", "n": 1}), target.seq),
        )
        check = audit.verify(conn)
        assert (check.broken_at, check.problem) == (
            target.seq,
            "its content was changed after it was written",
        )
        assert check.checked == target.seq - 1
    assert audit.verify(conn).ok  # rolled back


def test_a_removed_entry_is_caught(conn: psycopg.Connection) -> None:
    made = append_some(conn, 3)
    with tampering(conn):
        conn.execute("DELETE FROM audit_log WHERE seq = %s", (made[1].seq,))
        check = audit.verify(conn)
        assert check.broken_at == made[2].seq
        assert check.problem == f"entry {made[1].seq} is missing"


def test_an_entry_rewritten_with_a_fresh_hash_breaks_the_next_link(
    conn: psycopg.Connection,
) -> None:
    made = append_some(conn, 3)
    first = made[0]
    forged = replace(first, actor="someone else")
    forged_hash = audit.entry_hash(
        forged.seq,
        forged.at,
        forged.actor,
        forged.action,
        forged.subject,
        forged.detail,
        forged.prev_hash,
    )
    with tampering(conn):
        conn.execute(
            "UPDATE audit_log SET actor = %s, hash = %s WHERE seq = %s",
            (forged.actor, forged_hash, first.seq),
        )
        check = audit.verify(conn)
        assert (check.broken_at, check.problem) == (
            made[1].seq,
            "does not link to the entry before it",
        )


@contextmanager
def this_connection(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    yield conn


def test_golos_audit_verify_names_the_first_broken_link_and_fails(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = append_some(conn, 3)
    runner = CliRunner()
    # The command reads the log on the test's connection, which sees the tampering
    # of its own uncommitted transaction (nothing tampered is ever committed).
    monkeypatch.setattr(cli, "ensure_database", lambda: None)
    monkeypatch.setattr(cli.db, "connection", lambda: this_connection(conn))

    intact = runner.invoke(cli.app, ["audit", "verify"])
    assert intact.exit_code == 0, intact.output
    assert f"audit log intact: {audit.verify(conn).checked} entries checked" in intact.output

    with tampering(conn):
        conn.execute(
            'UPDATE audit_log SET detail = \'{"decision": "dismiss"}\' WHERE seq = %s',
            (made[0].seq,),
        )
        broken = runner.invoke(cli.app, ["audit", "verify"])
    assert broken.exit_code == 1
    assert (
        f"audit log broken at entry {made[0].seq}: its content was changed after it was written"
        in broken.output
    )


def test_golos_audit_show_prints_the_newest_entries(conn: psycopg.Connection) -> None:
    made = append_some(conn, 2, actor="shower")
    shown = CliRunner().invoke(cli.app, ["audit", "show", "--limit", "2"])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(made[1].seq), str(made[0].seq)]
    assert lines[0].split("\t")[2:5] == ["shower", "review.propose", "flag:1"]


def test_entries_appended_from_two_connections_at_once_form_one_chain(
    conn: psycopg.Connection, database: str
) -> None:
    before = audit.verify(conn)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            with psycopg.connect(database) as own:
                start.wait()
                for n in range(15):
                    with own.transaction():
                        audit.append(own, name, "review.agree", f"submission:{name}-{n}", {})
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    after = audit.verify(conn)
    assert after.ok and after.checked == before.checked + 30


# --- The pure check, on chains built in memory --------------------------------------

FIELDS = ("seq", "at", "actor", "action", "subject", "detail", "prev_hash", "hash")
T0 = datetime(2026, 8, 9, 20, 0, tzinfo=UTC)


def chain(length: int) -> list[Entry]:
    entries: list[Entry] = []
    prev = audit.GENESIS
    for n in range(1, length + 1):
        at = T0 + timedelta(seconds=n, milliseconds=n)
        detail: dict[str, Any] = {"n": n, "note": f"entry {n}"}
        digest = audit.entry_hash(n, at, f"actor{n}", "review.final", f"flag:{n}", detail, prev)
        entries.append(Entry(n, at, f"actor{n}", "review.final", f"flag:{n}", detail, prev, digest))
        prev = digest
    return entries


def changed(entry: Entry, field: str, data: st.DataObject) -> Entry:
    """``entry`` with one field given another value, drawn by hypothesis."""
    old = getattr(entry, field)
    if field == "seq":
        new: Any = data.draw(st.integers(min_value=0, max_value=10**6).filter(lambda v: v != old))
    elif field == "at":
        shift = data.draw(st.integers(min_value=-(10**9), max_value=10**9).filter(lambda v: v != 0))
        new = old + timedelta(microseconds=shift)
    elif field == "detail":
        new = data.draw(
            st.dictionaries(
                st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=8)), max_size=3
            ).filter(lambda v: v != old)
        )
    elif field in ("prev_hash", "hash"):
        new = data.draw(
            st.text("0123456789abcdef", min_size=64, max_size=64).filter(lambda v: v != old)
        )
    else:
        new = data.draw(st.text(max_size=20).filter(lambda v: v != old))
    return replace(entry, **{field: new})


# Drawing a replacement detail or hash is slow now and then on a loaded 2-core
# machine (a fresh-clone run tripped the too_slow health check at 1.2 s); the
# test is about which link breaks, not about speed.
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    length=st.integers(min_value=1, max_value=6),
    data=st.data(),
)
def test_changing_any_field_of_any_entry_breaks_the_chain_at_that_entry(
    length: int, data: st.DataObject
) -> None:
    entries = chain(length)
    assert audit.check_chain(entries).ok
    position = data.draw(st.integers(min_value=0, max_value=length - 1))
    field = data.draw(st.sampled_from(FIELDS))
    tampered = [*entries]
    tampered[position] = changed(entries[position], field, data)
    check = audit.check_chain(tampered)
    assert not check.ok
    assert check.checked == position
    assert check.broken_at == tampered[position].seq


def rehashed(entries: list[Entry]) -> list[Entry]:
    """The chain recomputed from its fields, as someone with the owner's rights
    could after rewriting an entry."""
    out: list[Entry] = []
    prev = audit.GENESIS
    for e in entries:
        digest = audit.entry_hash(e.seq, e.at, e.actor, e.action, e.subject, e.detail, prev)
        out.append(replace(e, prev_hash=prev, hash=digest))
        prev = digest
    return out


def test_an_intact_chain_names_its_head_to_write_down() -> None:
    entries = chain(4)
    check = audit.check_chain(entries)
    assert (check.head_seq, check.head_hash) == (4, entries[-1].hash)
    assert audit.check_chain(entries, (2, entries[1].hash)).ok


def test_a_written_down_head_catches_a_chain_cut_short() -> None:
    entries = chain(5)
    head = (5, entries[-1].hash)
    check = audit.check_chain(entries[:3], head)
    assert not check.ok and check.broken_at == 4 and "cut short" in (check.problem or "")


def test_a_written_down_head_catches_a_chain_rewritten_and_rehashed() -> None:
    entries = chain(5)
    head = (4, entries[3].hash)
    forged = rehashed([*entries[:1], replace(entries[1], actor="someone else"), *entries[2:]])
    assert audit.check_chain(forged).ok  # the chain alone cannot tell
    check = audit.check_chain(forged, head)
    assert not check.ok and check.broken_at == 4


@pytest.mark.parametrize("text", ["", "4", "x:" + "0" * 64, "4:abc", "0:" + "0" * 64])
def test_a_malformed_head_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        audit.parse_head(text)
