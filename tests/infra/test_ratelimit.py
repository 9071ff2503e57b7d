"""infra.ratelimit: the sliding-window maths, the keyed network, and the counters."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra import ratelimit
from infra.ratelimit import (
    Decision,
    Exceeded,
    Limit,
    account_key,
    decide,
    network_key,
    network_prefix,
)

HOUR = Limit("test", 6, 3600)


def _decide_at(limit: Limit, counts: dict[int, int], moment: float) -> Decision:
    """``decide`` at ``moment`` from hits counted per fixed window (by its start)."""
    start = ratelimit.window_start(moment, limit.window_seconds)
    return decide(limit, moment, counts.get(start - limit.window_seconds, 0), counts.get(start, 0))


def test_hits_up_to_the_limit_pass_and_the_next_waits_for_the_window() -> None:
    start = 100 * 3600
    assert decide(HOUR, start + 10, 0, 5) == Decision(True, 0)
    refused = decide(HOUR, start + 10, 0, 6)
    assert not refused.allowed
    # Nothing in the previous window: this window's hits weigh fully in the next one
    # until enough of it has slid out: 6 * (1 - h) + 1 <= 6, h = 1/6 of the next hour.
    assert refused.retry_after == 3600 - 10 + 600


def test_the_previous_window_weighs_as_much_of_it_as_is_still_covered() -> None:
    start = 100 * 3600
    # Three quarters in: a quarter of the previous window's 8 hits (2) still counts.
    assert decide(HOUR, start + 2700, 8, 3) == Decision(True, 0)
    assert not decide(HOUR, start + 2700, 8, 4).allowed
    # A burst at the end of one window is not followed by a full burst at the start
    # of the next (a fixed window would allow twice the limit across the boundary).
    assert not decide(HOUR, start + 1, 6, 0).allowed


def test_a_limit_of_zero_is_no_limit() -> None:
    assert decide(Limit("test", 0, 60), 0, 10**6, 10**6).allowed


@given(
    max_hits=st.integers(1, 50),
    window=st.integers(1, 7200),
    previous=st.integers(0, 120),
    current=st.integers(0, 120),
    offset=st.integers(0, 10**6),
    start_window=st.integers(1, 10**5),
)
def test_retry_after_is_the_first_whole_second_at_which_the_hit_fits(
    max_hits: int, window: int, previous: int, current: int, offset: int, start_window: int
) -> None:
    limit = Limit("test", max_hits, window)
    start = start_window * window
    now = start + offset % window
    counts = {start - window: previous, start: current}
    decision = _decide_at(limit, counts, now)
    if decision.allowed:
        return
    assert decision.retry_after >= 1
    assert _decide_at(limit, counts, now + decision.retry_after).allowed
    if decision.retry_after > 1:
        assert not _decide_at(limit, counts, now + decision.retry_after - 1).allowed


def test_a_network_is_its_24_or_48_and_is_kept_only_as_a_keyed_hash() -> None:
    assert network_prefix("203.0.113.77") == "203.0.113.0/24"
    assert network_prefix("::ffff:203.0.113.77") == "203.0.113.0/24"
    assert network_prefix("2001:db8:1234:5678::1") == "2001:db8:1234::/48"
    assert network_prefix("testclient") == "testclient"
    secret = b"k" * 32
    same = network_key(secret, "203.0.113.5")
    assert same == network_key(secret, "203.0.113.250") != network_key(secret, "203.0.114.5")
    assert same != network_key(b"j" * 32, "203.0.113.5") and len(same) == 16
    assert b"203.0.113" not in same


def test_an_account_is_kept_only_as_a_keyed_hash_of_its_user_id() -> None:
    secret = b"k" * 32
    key = account_key(secret, 7)
    assert key == account_key(secret, 7) != account_key(secret, 8)
    assert key != account_key(b"j" * 32, 7) and len(key) == 16
    # Not the hash a network or another account's number could collide with.
    assert key != network_key(secret, "7")


def _hits(conn: psycopg.Connection) -> list[tuple[str, int]]:
    rows = conn.execute("SELECT scope, hits FROM rate_limits ORDER BY scope").fetchall()
    conn.commit()
    return [(str(scope), int(hits)) for scope, hits in rows]


def test_counting_is_all_or_none_and_a_refusal_counts_nothing(conn: psycopg.Connection) -> None:
    two, many = Limit("a_two", 2, 60), Limit("b_many", 100, 60)
    moment = 1000 * 60 + 5.0
    for _ in range(2):
        ratelimit.take(conn, [(two, b"v" * 32), (many, b"n" * 16)], now=moment)
    with pytest.raises(Exceeded) as refused:
        ratelimit.take(conn, [(many, b"n" * 16), (two, b"v" * 32)], now=moment)
    assert refused.value.scope == "a_two" and refused.value.retry_after == 55 + 30
    assert _hits(conn) == [("a_two", 2), ("b_many", 2)]  # the refused one left no hit
    ratelimit.take(conn, [(two, b"w" * 32)], now=moment)  # another key is not held up


def test_each_keys_previous_window_weighs_on_its_own_count(conn: psycopg.Connection) -> None:
    four = Limit("four", 4, 60)
    busy, quiet = b"b" * 32, b"q" * 32
    for _ in range(4):  # busy fills its window 600..660; quiet sends once
        ratelimit.take(conn, [(four, busy)], now=610.0)
    ratelimit.take(conn, [(four, quiet)], now=610.0)
    # At 690, half the previous window still weighs: busy has room for 4 - 2 = 2,
    # quiet for 4 - 0.5 = 3; asked together, in either order, each gets its own.
    for _ in range(2):
        ratelimit.take(conn, [(four, quiet), (four, busy)], now=690.0)
    with pytest.raises(Exceeded):
        ratelimit.take(conn, [(four, quiet), (four, busy)], now=690.0)
    ratelimit.take(conn, [(four, quiet)], now=690.0)
    with pytest.raises(Exceeded):
        ratelimit.take(conn, [(four, quiet)], now=690.0)


def test_the_counters_commit_without_waiting_for_the_disk_and_only_they_do(
    conn: psycopg.Connection,
) -> None:
    conn.execute("SET synchronous_commit = on")  # as in production
    conn.commit()  # take() runs outside any transaction of the caller's
    # The statement's own transaction sets it (SET LOCAL): seen from inside it ...
    inside = conn.execute(
        ratelimit._take_sql(1).replace(
            "SELECT c.scope IS NOT NULL, coalesce(p.hits, 0)",
            "SELECT current_setting('synchronous_commit'), 0",
        ),
        ["s", b"v" * 32, 0, -60, 120, 5, 1.0],
    ).fetchall()
    assert inside == [("off", 0)]
    conn.rollback()
    ratelimit.take(conn, [(HOUR, b"v" * 32)])
    # ... and only there: the connection's own setting is back once it is done.
    assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
    conn.commit()


def test_a_refused_key_gives_back_the_others_hits_and_names_itself(
    conn: psycopg.Connection,
) -> None:
    one, many = Limit("a_one", 1, 60), Limit("b_many", 100, 60)
    ratelimit.take(conn, [(one, b"v" * 32)], now=65.0)
    for order in ([(many, b"n" * 16), (one, b"v" * 32)], [(one, b"v" * 32), (many, b"n" * 16)]):
        with pytest.raises(Exceeded) as refused:
            ratelimit.take(conn, order, now=65.0)
        assert refused.value.scope == "a_one"
    assert _hits(conn) == [("a_one", 1), ("b_many", 0)]
    assert not conn.autocommit  # the caller's connection is as it was


def test_a_hit_given_back_frees_its_place(conn: psycopg.Connection) -> None:
    one = Limit("one", 1, 60)
    hits = ratelimit.take(conn, [(one, b"v" * 32)], now=60.0)
    with pytest.raises(Exceeded):
        ratelimit.take(conn, [(one, b"v" * 32)], now=61.0)
    ratelimit.give_back(conn, hits)
    ratelimit.take(conn, [(one, b"v" * 32)], now=62.0)
    assert _hits(conn) == [("one", 1)]


def test_counters_are_deleted_once_they_weigh_in_no_limit(conn: psycopg.Connection) -> None:
    limit = Limit("minute", 5, 60)
    ratelimit.take(conn, [(limit, b"v" * 32)], now=600.0)
    # Still weighed through the next window (600..720), gone after it.
    assert ratelimit.forget_expired(conn, now=719.0) == 0
    assert ratelimit.forget_expired(conn, now=720.0) == 1
    assert _hits(conn) == []


def test_counting_refuses_to_run_inside_the_callers_transaction(
    conn: psycopg.Connection,
) -> None:
    conn.execute("SELECT 1")
    with pytest.raises(RuntimeError, match="outside the caller's transaction"):
        ratelimit.take(conn, [(HOUR, b"v" * 32)])


def test_a_counting_block_keeps_its_hit_only_when_its_work_is_done(
    conn: psycopg.Connection,
) -> None:
    one = Limit("one", 1, 60)
    key = b"w" * 32
    with pytest.raises(RuntimeError), ratelimit.counting(conn, [(one, key)], now=60.0):
        raise RuntimeError("the work failed")
    with ratelimit.counting(conn, [(one, key)], now=61.0) as taken:
        taken.undo()  # a retry of work already done
    assert _hits(conn) == [("one", 0)]
    with ratelimit.counting(conn, [(one, key), (None, b"n" * 32)], now=62.0) as taken:
        assert len(taken.hits) == 1  # a None limit counts nothing
    assert _hits(conn) == [("one", 1)]
    ran = False
    with pytest.raises(Exceeded), ratelimit.counting(conn, [(one, key)], now=63.0):
        ran = True
    assert not ran
    assert _hits(conn) == [("one", 1)]
