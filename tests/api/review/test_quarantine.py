"""Quarantined submissions in the observers' review: last in the submissions queue
with their reasons, decided under the two-person rule; approving one counts it
exactly once (one vote per voter still applied), rejecting it counts nothing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.review import service
from api.review.schemas import State
from api.submissions import abuse
from api.submissions.schemas import Status
from infra import ratelimit
from infra.settings import get_settings

from .conftest import ELECTION, MakeSubmission, People, station_tally, status_of

HELD = ["quarantined", "network_burst"]
# The start of a ten-minute window; one network's address.
T0 = 1_800_000_000.0 - 1_800_000_000.0 % 3600
NETWORK = ratelimit.network_key(b"k" * 32, "198.51.100.23")


def _held(make_submission: MakeSubmission, voter: bytes | None = None) -> uuid.UUID:
    """A ballot read as declared (tsikhanouskaya) but held by a network burst."""
    return make_submission(
        status=Status.QUARANTINED, marks=["tsikhanouskaya"], reasons=HELD, voter=voter
    )


def _tally(conn: psycopg.Connection) -> tuple[dict[str, int], int]:
    conn.commit()
    return station_tally(conn)


def _status(conn: psycopg.Connection, sid: uuid.UUID) -> tuple[str, list[str]]:
    return status_of(conn, sid)[:2]


def test_quarantined_submissions_come_last_in_the_queue_and_page_once(
    conn: psycopg.Connection, make_submission: MakeSubmission
) -> None:
    held = [_held(make_submission) for _ in range(3)]
    in_review = [make_submission() for _ in range(2)]
    whole = service.submission_queue(conn, ELECTION, limit=100).items
    assert [i.submission_id for i in whole] == in_review + held
    assert [i.reasons for i in whole[2:]] == [HELD] * 3

    seen, after = [], None
    for _ in range(10):
        page = service.submission_queue(conn, ELECTION, after=after, limit=2)
        seen += [i.submission_id for i in page.items]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == in_review + held

    only = service.submission_queue(conn, ELECTION, reason="quarantined", limit=100).items
    assert [i.submission_id for i in only] == held
    burst = service.submission_queue(conn, ELECTION, reason="network_burst", limit=100).items
    assert [i.submission_id for i in burst] == held
    assert service.overview(conn, ELECTION).quarantined == 3


def test_approving_a_quarantined_ballot_needs_two_observers_and_counts_it_once(
    conn: psycopg.Connection, make_submission: MakeSubmission, person: People
) -> None:
    first, second, third = person("observer"), person("observer"), person("observer")
    sid = _held(make_submission)
    proposed = service.decide_submission(conn, first, sid, "count_read")
    conn.commit()
    assert proposed.state is State.PROPOSED
    assert _status(conn, sid) == ("quarantined", HELD) and _tally(conn) == ({}, 0)

    agreed = service.decide_submission(conn, second, sid, "count_read")
    conn.commit()
    assert (agreed.state, agreed.result) == (State.FINAL, "verified")
    assert _status(conn, sid) == ("verified", []) and _tally(conn) == ({"tsikhanouskaya": 1}, 1)

    # Approved again (a double click, a third observer): nothing more is counted.
    again = service.agree(conn, second, proposed.decision_id)
    conn.commit()
    assert again.repeated
    with pytest.raises(Exception, match="decided already"):
        service.decide_submission(conn, third, sid, "count_declared")
    conn.rollback()
    assert _tally(conn) == ({"tsikhanouskaya": 1}, 1)


def test_an_approved_quarantined_ballot_replaces_the_voters_earlier_one(
    conn: psycopg.Connection, make_submission: MakeSubmission, person: People
) -> None:
    voter = b"q" * 32
    earlier = make_submission(
        status=Status.VERIFIED, marks=["lukashenko"], declared=["lukashenko"], reasons=[],
        voter=voter,
    )  # fmt: skip
    sid = _held(make_submission, voter=voter)
    assert _tally(conn) == ({"lukashenko": 1}, 1)
    service.decide_submission(conn, person("observer"), sid, "count_declared")
    service.decide_submission(conn, person("observer"), sid, "count_declared")
    conn.commit()
    assert _status(conn, sid)[0] == "verified"
    assert _status(conn, earlier)[0] == "superseded"
    assert _tally(conn) == ({"tsikhanouskaya": 1}, 1)


def test_rejecting_a_quarantined_ballot_counts_nothing(
    conn: psycopg.Connection, make_submission: MakeSubmission, person: People
) -> None:
    sid = _held(make_submission)
    service.decide_submission(conn, person("observer"), sid, "reject", reason="other", note="farm")
    final = service.decide_submission(
        conn, person("observer"), sid, "reject", reason="other", note="agreed"
    )
    conn.commit()
    assert (final.state, final.result) == (State.FINAL, "rejected")
    assert _status(conn, sid) == ("rejected", ["other"])
    assert _tally(conn) == ({}, 0)


def test_an_admin_alone_approves_as_an_override(
    conn: psycopg.Connection, make_submission: MakeSubmission, person: People
) -> None:
    sid = _held(make_submission)
    outcome = service.decide_submission(conn, person("admin"), sid, "count_read")
    conn.commit()
    assert outcome.override and outcome.result == "verified"
    assert _tally(conn) == ({"tsikhanouskaya": 1}, 1)


@pytest.mark.parametrize("lang", ["ru", "be", "en"])
def test_the_pages_show_the_quarantine_and_its_reasons(
    client: TestClient,
    account: Callable[..., dict[str, str]],
    make_submission: MakeSubmission,
    lang: str,
) -> None:
    observer = account("observer")
    sid = _held(make_submission)
    labels = {
        "en": ("Quarantined: would count", "burst from one network", "quarantined: does not"),
        "ru": ("В карантине", "одной сети", "в карантине: не засчитан"),
        "be": ("У каранціне", "адной сеткі", "у каранціне: не залічаны"),
    }[lang]
    queue = client.get("/review/submissions", params={"lang": lang}, headers=observer)
    assert queue.status_code == 200 and str(sid)[:8] in queue.text
    assert labels[0] in queue.text and labels[1] in queue.text
    page = client.get(f"/review/submissions/{sid}", params={"lang": lang}, headers=observer)
    assert page.status_code == 200 and labels[2] in page.text
    assert f'action="/review/submissions/{sid}/decision"' in page.text  # it can be decided
    overview = client.get("/review", params={"lang": lang}, headers=observer)
    assert "reason=quarantined" in overview.text
    filtered = client.get(
        "/v1/review/submissions", params={"reason": "quarantined"}, headers=observer
    ).json()
    assert [i["submission_id"] for i in filtered["items"]] == [str(sid)]
    assert filtered["items"][0]["reasons"] == HELD


@pytest.fixture
def network_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    """The quarantine holds a network's burst at a station beyond two arrivals in its
    window (no other threshold)."""
    changed = get_settings().model_copy(
        update={
            "quarantine_per_network_station": 2,
            "quarantine_network_station_share": 0,
            "quarantine_per_voter": 0,
            "quarantine_station_min": 0,
        }
    )
    monkeypatch.setattr(abuse, "get_settings", lambda: changed)


def _arrive(conn: psycopg.Connection, sid: uuid.UUID, at: float) -> None:
    """The submission's arrival from NETWORK at p1, as its upload records it."""
    abuse.record_arrival(
        conn,
        submission_id=sid,
        election_id=ELECTION,
        precinct_id="p1",
        voter_key=uuid.uuid4().bytes * 2,
        network=NETWORK,
        now=at,
    )
    conn.commit()


def _listed(conn: psycopg.Connection, sids: list[uuid.UUID]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM burst_arrivals WHERE submission_id = ANY(%s)", (sids,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_held_ballot_two_observers_decided_is_not_held_again_by_its_bursts_later_arrivals(
    conn: psycopg.Connection, make_submission: MakeSubmission, person: People, network_burst: None
) -> None:
    # Three ballots from one network, read and counted before the third's arrival
    # shows the burst: all three held, out of the tally.
    burst = [
        make_submission(status=Status.VERIFIED, marks=["tsikhanouskaya"], reasons=[])
        for _ in range(3)
    ]
    for i, sid in enumerate(burst):
        _arrive(conn, sid, T0 + i)
    assert [_status(conn, sid) for sid in burst] == [("quarantined", HELD)] * 3
    assert _tally(conn) == ({}, 0)

    # Two observers approve one and reject another.
    approved, rejected, waiting = burst
    for observer in (person("observer"), person("observer")):
        service.decide_submission(conn, observer, approved, "count_read")
        service.decide_submission(conn, observer, rejected, "reject", reason="other", note="x")
    conn.commit()
    assert _status(conn, approved) == ("verified", []) and _status(conn, rejected)[0] == "rejected"
    assert _tally(conn) == ({"tsikhanouskaya": 1}, 1)
    # Decided, they are no burst's members any more; the one still waiting is.
    assert (_listed(conn, [approved, rejected]), _listed(conn, [waiting])) == (0, 1)

    # One more arrival from the network, in the next window: the burst crosses again.
    later = make_submission(status=Status.RECEIVED, marks=[], reasons=[])
    _arrive(conn, later, T0 + 700)
    assert abuse.held(conn, later) == ["network_burst"]
    # The decisions stand: the approved ballot stays verified and counted.
    assert _status(conn, approved) == ("verified", []) and _status(conn, rejected)[0] == "rejected"
    assert _status(conn, waiting) == ("quarantined", HELD)
    assert _tally(conn) == ({"tsikhanouskaya": 1}, 1)


def test_a_decision_committed_while_a_burst_waits_for_its_row_stands(
    conn: psycopg.Connection,
    database: str,
    make_submission: MakeSubmission,
    person: People,
    network_burst: None,
) -> None:
    # A ballot in review for a reason of its own, a member of a network's group, and
    # a second arrival of the group: not crossed yet.
    decided = make_submission(status=Status.REVIEW, marks=["tsikhanouskaya"], reasons=[])
    _arrive(conn, decided, T0)
    _arrive(conn, make_submission(status=Status.RECEIVED, marks=[], reasons=[]), T0 + 1)
    crossing = make_submission(status=Status.RECEIVED, marks=[], reasons=[])
    first, second = person("observer"), person("observer")
    service.decide_submission(conn, first, decided, "count_read")
    conn.commit()
    # The second observer's decision counts it, and leaves the burst: not committed yet.
    service.decide_submission(conn, second, decided, "count_read")
    errors: list[BaseException] = []

    def arrive() -> None:
        # The third arrival crosses; it finds the decided ballot still listed (the
        # decision is not committed) and waits for its row.
        try:
            with psycopg.connect(database) as other:
                _arrive(other, crossing, T0 + 2)
        except BaseException as exc:  # reported below
            errors.append(exc)

    waiting = threading.Thread(target=arrive)
    waiting.start()
    waiting.join(1.0)
    assert waiting.is_alive(), errors  # held up by the decision's row lock
    conn.commit()
    waiting.join(30)
    assert not waiting.is_alive() and errors == []
    assert _status(conn, decided) == ("verified", [])
    assert _tally(conn) == ({"tsikhanouskaya": 1}, 1)
    assert abuse.held(conn, crossing) == ["network_burst"]
