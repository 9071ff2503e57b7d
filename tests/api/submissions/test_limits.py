"""Limits on new submissions per verified voter and per network (429, Retry-After),
through the real HTTP app."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg

from infra.settings import get_settings

VOTER = "+375291234567"


def _counts(conn: psycopg.Connection) -> tuple[int, int]:
    conn.commit()
    row = conn.execute(
        "SELECT (SELECT count(*) FROM submissions), (SELECT count(*) FROM procrastinate_jobs)"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _photo_files() -> int:
    root = get_settings().photos_path
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def test_a_voter_past_the_limit_is_told_to_wait_and_nothing_is_stored(
    conn: psycopg.Connection,
    submit: Callable,
    ballot_photo: Callable,
    limits: Callable,
) -> None:
    limits(submissions_per_voter=2)
    first, first_photo = str(uuid.uuid4()), ballot_photo(["tsikhanouskaya"], seed=1)
    assert submit(first_photo, sid=first, voter=VOTER).status_code == 202
    second = submit(ballot_photo(["lukashenko"], seed=2), voter=VOTER, choice="lukashenko")
    assert second.status_code == 202

    files = _photo_files()
    photo = ballot_photo(["against_all"], seed=3)
    refused = submit(photo, voter=VOTER, choice="against_all")
    assert refused.status_code == 429, refused.text
    assert refused.json()["detail"]["field"] == "authorization"
    assert 1 <= int(refused.headers["Retry-After"]) <= 2 * 3600
    assert _counts(conn) == (2, 2)
    assert _photo_files() == files  # nor was its photo written

    # Replays of a stored submission are answered as ever, at the limit or not.
    for _ in range(3):
        replay = submit(first_photo, sid=first, voter=VOTER)
        assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    # Another voter is not held up.
    assert submit(photo, voter="+375297777777", choice="against_all").status_code == 202
    assert _counts(conn) == (3, 3)


def test_replays_and_refusals_do_not_count_against_the_voter(
    conn: psycopg.Connection,
    submit: Callable,
    ballot_photo: Callable,
    limits: Callable,
) -> None:
    limits(submissions_per_voter=2)
    sid = str(uuid.uuid4())
    photo = ballot_photo(["tsikhanouskaya"], seed=1)
    for _ in range(5):
        assert submit(photo, sid=sid, voter=VOTER).status_code in (200, 202)
    # Refused for what it is (not a photo): the voter's place is given back.
    assert submit(b"not a photo", voter=VOTER).status_code == 422
    other = ballot_photo(["lukashenko"], seed=2)
    assert submit(other, voter=VOTER, choice="lukashenko").status_code == 202
    conn.commit()
    [(hits,)] = conn.execute(
        "SELECT hits FROM rate_limits WHERE scope = 'submission_voter'"
    ).fetchall()
    assert hits == 2
    third = ballot_photo(["against_all"], seed=3)
    assert submit(third, voter=VOTER, choice="against_all").status_code == 429


def test_a_network_past_its_limit_is_told_to_wait_and_others_are_not(
    conn: psycopg.Connection,
    submit: Callable,
    ballot_photo: Callable,
    limits: Callable,
    from_address: Callable,
) -> None:
    limits(submissions_per_network=2)
    from_address("203.0.113.5")
    assert submit(ballot_photo(["tsikhanouskaya"], seed=1)).status_code == 202
    from_address("203.0.113.200")  # the same /24: a station's Wi-Fi, a carrier's NAT
    assert submit(ballot_photo(["tsikhanouskaya"], seed=2)).status_code == 202
    refused = submit(ballot_photo(["tsikhanouskaya"], seed=3))
    assert refused.status_code == 429 and refused.json()["detail"]["field"] == "network"
    assert 1 <= int(refused.headers["Retry-After"]) <= 2 * 600
    assert _counts(conn) == (2, 2)
    from_address("198.51.100.7")
    assert submit(ballot_photo(["tsikhanouskaya"], seed=3)).status_code == 202
    # The table keeps keyed hashes and counts, never an address.
    conn.commit()
    rows = conn.execute("SELECT key FROM rate_limits WHERE scope = 'submission_network'").fetchall()
    assert len(rows) == 2
    for (key,) in rows:
        assert b"203.0.113" not in bytes(key) and b"198.51.100" not in bytes(key)


def test_the_default_limits_let_a_voter_resend_and_a_station_vote() -> None:
    settings = get_settings()
    assert 3 <= settings.submissions_per_voter <= 20
    # A station's whole peak (~750 in ten minutes, see infra/settings.py) fits.
    per_ten_minutes = (
        settings.submissions_per_network * 600 / settings.submissions_per_network_seconds
    )
    assert per_ten_minutes >= 750
