"""The phone's retry decisions: which answers are final, and how long it waits."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

from hypothesis import given
from hypothesis import strategies as st

from mobile_stub.retry import (
    FINAL_CLIENT_ERRORS,
    Backoff,
    Decision,
    decide,
    next_delay,
    parse_retry_after,
)

statuses = st.integers(min_value=100, max_value=599)
backoffs = st.builds(
    Backoff,
    base=st.floats(min_value=0.001, max_value=60, allow_nan=False),
    cap=st.floats(min_value=0.001, max_value=3600, allow_nan=False),
)
jitters = st.floats(min_value=0, max_value=1, exclude_max=True)
attempts = st.integers(min_value=1, max_value=10_000)


def test_only_true_client_errors_are_final() -> None:
    assert {s for s in range(100, 600) if decide(s) is Decision.FINAL} == {
        400,
        401,
        403,
        404,
        413,
        415,
        422,
    }
    for status in (409, 429, 500, 502, 503, 504, None):
        assert decide(status) is Decision.RETRY
    assert decide(202) is Decision.DELIVERED and decide(200) is Decision.DELIVERED


@given(statuses)
def test_every_answer_is_delivered_final_or_retried_never_dropped(status: int) -> None:
    decision = decide(status)
    if 200 <= status < 300:
        assert decision is Decision.DELIVERED
    elif status in FINAL_CLIENT_ERRORS:
        assert decision is Decision.FINAL
    else:
        assert decision is Decision.RETRY


@given(attempts, jitters, backoffs)
def test_a_wait_without_retry_after_is_within_zero_and_the_cap(
    attempt: int, jitter: float, backoff: Backoff
) -> None:
    delay = next_delay(attempt, jitter, backoff)
    assert 0 <= delay <= min(backoff.cap, backoff.base * 2 ** min(attempt - 1, 64))


@given(attempts, jitters, backoffs, st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_the_phone_never_comes_back_before_retry_after(
    attempt: int, jitter: float, backoff: Backoff, retry_after: float
) -> None:
    assert next_delay(attempt, jitter, backoff, retry_after) >= retry_after


@given(st.integers(min_value=1, max_value=60), backoffs)
def test_the_ceiling_of_the_wait_grows_with_the_attempts_up_to_the_cap(
    attempt: int, backoff: Backoff
) -> None:
    almost_one = 1 - 1e-12
    first = next_delay(attempt, almost_one, backoff)
    later = next_delay(attempt + 1, almost_one, backoff)
    assert later >= first and later <= backoff.cap


@given(st.integers(min_value=0, max_value=10**9))
def test_retry_after_in_seconds(seconds: int) -> None:
    assert parse_retry_after(str(seconds), now=1e9) == seconds


@given(
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=1_000_000_000, max_value=2_000_000_000),
)
def test_retry_after_as_an_http_date_is_the_time_left(seconds: int, now: int) -> None:
    date = format_datetime(datetime.fromtimestamp(now + seconds, UTC), usegmt=True)
    assert parse_retry_after(date, now=now) == seconds


def test_a_retry_after_date_in_the_past_means_now_and_garbage_means_nothing() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=2e9) == 0
    assert parse_retry_after("soon", now=0) is None
    assert parse_retry_after("-5", now=0) is None
    assert parse_retry_after(None, now=0) is None
