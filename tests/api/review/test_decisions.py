"""Decisions under the two-person rule: proposals, agreement, disagreement, admin
override, rejections, flags; the tally moved in the same transaction; every step in
the audit log."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.audit import service as audit
from api.errors import Conflict, Forbidden, Invalid
from api.review import service
from api.review.schemas import State
from api.submissions.schemas import Status
from tally import repository as tallies

from .conftest import ELECTION, MakeSubmission, People, station_tally, status_of


def _audit_since(conn: psycopg.Connection, seq: int) -> list[tuple[str, str, str]]:
    return [
        (e.actor, e.action, e.subject)
        for e in reversed(audit.recent(conn, 1000))
        if e.seq > seq and e.action.startswith("review.")
    ]


def _last_seq(conn: psycopg.Connection) -> int:
    entries = audit.recent(conn, 1)
    return entries[0].seq if entries else 0


def test_counting_is_a_proposal_until_a_second_observer_agrees_then_the_tally_moves(
    conn: psycopg.Connection, make_submission: MakeSubmission, person: People
) -> None:
    first, second = person("observer"), person("observer")
    sid = make_submission()  # read lukashenko, declared tsikhanouskaya
    start = _last_seq(conn)

    proposed = service.decide_submission(conn, first, sid, "count_declared", note="clear cross")
    conn.commit()
    assert proposed.state is State.PROPOSED
    assert status_of(conn, sid)[0] == Status.REVIEW
    assert station_tally(conn) == ({}, 0)
    assert [d.id for d in service.awaiting(conn, ELECTION)] == [proposed.decision_id]

    agreed = service.agree(conn, second, proposed.decision_id, note="agreed")
    conn.commit()
    assert agreed.state is State.FINAL and agreed.result == Status.VERIFIED
    assert status_of(conn, sid) == (Status.VERIFIED, [], ["tsikhanouskaya"])
    assert station_tally(conn) == ({"tsikhanouskaya": 1}, 1)
    assert service.awaiting(conn, ELECTION) == []
    subject = f"submission:{sid}"
    assert _audit_since(conn, start) == [
        ("observer1", "review.propose", subject),
        ("observer2", "review.agree", subject),
        ("observer2", "review.final", subject),
    ]
    assert audit.verify(conn).ok


def test_the_observer_who_proposed_cannot_agree_with_themself(
    conn: psycopg.Connection, make_submission: MakeSubmission, person: People
) -> None:
    first = person("observer")
    sid = make_submission()
    proposed = service.decide_submission(conn, first, sid, "count_read")
    conn.commit()

    with pytest.raises(Forbidden):
        service.agree(conn, first, proposed.decision_id)
    conn.rollback()
    with pytest.raises(Forbidden):
        service.disagree(conn, first, proposed.decision_id)
    conn.rollback()
    # Proposing the same again is the same request: nothing new.
    again = service.decide_submission(conn, first, sid, "count_read")
    assert again.repeated and again.decision_id == proposed.decision_id
    conn.commit()
    assert status_of(conn, sid)[0] == Status.REVIEW
    assert station_tally(conn) == ({}, 0)


def test_a_second_observer_taking_the_same_action_agrees(
    conn: psycopg.Connection, make_submission: MakeSubmission, person: People
) -> None:
    first, second = person("observer"), person("observer")
    sid = make_submission()
    proposed = service.decide_submission(conn, first, sid, "count_read")
    same = service.decide_submission(conn, second, sid, "count_read")
    conn.commit()
    assert same.decision_id == proposed.decision_id and same.state is State.FINAL
    assert status_of(conn, sid) == (Status.VERIFIED, [], ["lukashenko"])
    assert station_tally(conn) == ({"lukashenko": 1}, 1)


def test_another_action_while_a_proposal_waits_is_refused(
    conn: psycopg.Connection, make_submission: MakeSubmission, person: People
) -> None:
    first, second = person("observer"), person("observer")
    sid = make_submission()
    service.decide_submission(conn, first, sid, "count_read")
    conn.commit()
    with pytest.raises(Conflict):
        service.decide_submission(conn, second, sid, "reject", reason="photo_reused")
    conn.rollback()


def test_disagreeing_sends_the_submission_back_to_the_queue(
    conn: psycopg.Connection, make_submission: MakeSubmission, person: People
) -> None:
    first, second = person("observer"), person("observer")
    sid = make_submission()
    start = _last_seq(conn)
    proposed = service.decide_submission(conn, first, sid, "count_declared")
    disagreed = service.disagree(conn, second, proposed.decision_id, note="the cross is elsewhere")
    conn.commit()

    assert disagreed.state is State.DISAGREED
    assert status_of(conn, sid)[0] == Status.REVIEW
    assert station_tally(conn) == ({}, 0)
    queue = service.submission_queue(conn, ELECTION)
    assert [(i.submission_id, i.awaiting) for i in queue.items] == [(sid, None)]
    assert [a for _, a, _ in _audit_since(conn, start)] == ["review.propose", "review.disagree"]
    # Agreeing now is too late; a fresh decision is possible.
    with pytest.raises(Conflict):
        service.agree(conn, person("observer"), proposed.decision_id)
    conn.rollback()
    assert service.decide_submission(conn, second, sid, "count_read").state is State.PROPOSED


def test_an_admin_finalises_alone_as_a_visible_override(
    conn: psycopg.Connection, make_submission: MakeSubmission, person: People
) -> None:
    admin = person("admin")
    sid = make_submission()
    start = _last_seq(conn)
    outcome = service.decide_submission(conn, admin, sid, "count_read", note="urgent")
    conn.commit()
    assert outcome.state is State.FINAL and outcome.override
    assert station_tally(conn) == ({"lukashenko": 1}, 1)
    assert _audit_since(conn, start) == [("admin1", "review.override", f"submission:{sid}")]
    assert service.submission_detail(conn, sid).decisions[0].override


def test_an_admin_agreeing_with_a_proposal_is_recorded_as_an_override(
    conn: psycopg.Connection, make_submission: MakeSubmission, person: People
) -> None:
    # An admin can make observer accounts: their agreement is no second independent person.
    observer, admin = person("observer"), person("admin")
    sid = make_submission()
    proposed = service.decide_submission(conn, observer, sid, "count_read")
    conn.commit()
    start = _last_seq(conn)
    outcome = service.agree(conn, admin, proposed.decision_id)
    conn.commit()
    assert outcome.state is State.FINAL and outcome.override
    actions = [action for _, action, _ in _audit_since(conn, start)]
    assert actions == ["review.agree", "review.override"]


def test_an_admin_overrides_a_waiting_proposal_with_another_decision(
    conn: psycopg.Connection, make_submission: MakeSubmission, person: People
) -> None:
    observer, admin = person("observer"), person("admin")
    sid = make_submission()
    proposed = service.decide_submission(conn, observer, sid, "count_read")
    outcome = service.decide_submission(conn, admin, sid, "reject", reason="photo_reused")
    conn.commit()
    assert outcome.override and outcome.result == Status.REJECTED
    states = {d.id: d.state for d in service.submission_detail(conn, sid).decisions}
    assert states[proposed.decision_id] is State.OVERRIDDEN
    assert station_tally(conn) == ({}, 0)


def test_rejecting_needs_a_second_observer_and_a_reason_from_the_list(
    conn: psycopg.Connection, make_submission: MakeSubmission, person: People
) -> None:
    first, second = person("observer"), person("observer")
    sid = make_submission()
    with pytest.raises(Invalid):
        service.decide_submission(conn, first, sid, "reject", reason="because")
    conn.rollback()
    with pytest.raises(Invalid):  # "other" needs a note
        service.decide_submission(conn, first, sid, "reject", reason="other")
    conn.rollback()
    with pytest.raises(Invalid):  # a note is text, not control characters
        service.decide_submission(conn, first, sid, "reject", reason="other", note="a\x00b")
    conn.rollback()
    start = _last_seq(conn)
    proposed = service.decide_submission(
        conn, first, sid, "reject", reason="photo_reused", note="same photo as at p2"
    )
    conn.commit()
    # One person cannot discard a ballot alone.
    assert proposed.state is State.PROPOSED
    assert status_of(conn, sid)[0] == Status.REVIEW
    # A double submit changes nothing; counting is refused while a rejection waits.
    assert service.decide_submission(conn, first, sid, "reject", reason="photo_reused").repeated
    with pytest.raises(Conflict):
        service.decide_submission(conn, second, sid, "count_read")
    conn.rollback()
    agreed = service.decide_submission(conn, second, sid, "reject", reason="photo_reused")
    conn.commit()
    assert agreed.state is State.FINAL and not agreed.override
    assert status_of(conn, sid) == (Status.REJECTED, ["photo_reused"], ["lukashenko"])
    assert _audit_since(conn, start) == [
        ("observer1", "review.propose", f"submission:{sid}"),
        ("observer2", "review.agree", f"submission:{sid}"),
        ("observer2", "review.final", f"submission:{sid}"),
    ]
    with pytest.raises(Conflict):
        service.decide_submission(conn, person("observer"), sid, "count_read")
    conn.rollback()


def test_counting_an_unreadable_photo_as_read_is_refused(
    conn: psycopg.Connection, make_submission: MakeSubmission, person: People
) -> None:
    sid = make_submission(marks=[], reasons=["unreadable"])
    with pytest.raises(Invalid):
        service.decide_submission(conn, person("observer"), sid, "count_read")
    conn.rollback()


def test_counting_keeps_one_vote_per_voter(
    conn: psycopg.Connection, make_submission: MakeSubmission, person: People
) -> None:
    """The pipeline's rule holds for a counted submission: the voter's latest verified
    submission counts, an earlier one is superseded and leaves the tally."""
    first, second = person("observer"), person("observer")
    voter = b"v" * 32
    earlier = make_submission(
        status=Status.VERIFIED, marks=["kanapatskaya"], reasons=[], voter=voter, precinct="p2"
    )
    later = make_submission(voter=voter)  # in review at p1
    assert station_tally(conn, "p2") == ({"kanapatskaya": 1}, 1)

    proposed = service.decide_submission(conn, first, later, "count_declared")
    service.agree(conn, second, proposed.decision_id)
    conn.commit()
    assert status_of(conn, earlier)[0] == Status.SUPERSEDED
    assert status_of(conn, later)[0] == Status.VERIFIED
    assert station_tally(conn, "p2") == ({}, 0)
    assert station_tally(conn, "p1") == ({"tsikhanouskaya": 1}, 1)

    # A submission older than the voter's counted one is superseded, counting nothing.
    oldest_in_review = make_submission(voter=b"w" * 32)
    make_submission(
        status=Status.VERIFIED, marks=["charachen"], reasons=[], voter=b"w" * 32, precinct="p3"
    )
    proposed = service.decide_submission(conn, first, oldest_in_review, "count_read")
    outcome = service.agree(conn, second, proposed.decision_id)
    conn.commit()
    assert outcome.result == Status.SUPERSEDED
    assert station_tally(conn, "p3") == ({"charachen": 1}, 1)
    assert station_tally(conn, "p1") == ({"tsikhanouskaya": 1}, 1)


def test_agreeing_twice_counts_once(
    conn: psycopg.Connection, make_submission: MakeSubmission, person: People
) -> None:
    first, second = person("observer"), person("observer")
    sid = make_submission()
    proposed = service.decide_submission(conn, first, sid, "count_read")
    service.agree(conn, second, proposed.decision_id)
    again = service.agree(conn, second, proposed.decision_id)
    conn.commit()
    assert again.repeated
    assert station_tally(conn) == ({"lukashenko": 1}, 1)


# -- flags ----------------------------------------------------------------------------


def test_a_proof_flag_needs_a_second_observer(
    conn: psycopg.Connection, flags: dict[str, int], person: People
) -> None:
    first, second = person("observer"), person("observer")
    flag_id = flags["p1:crowd_exceeds_official"]
    start = _last_seq(conn)
    proposed = service.decide_flag(conn, first, flag_id, "confirm", note="photos are clear")
    conn.commit()
    assert proposed.state is State.PROPOSED
    assert tallies.review_flag(conn, flag_id).review_status == "open"  # type: ignore[union-attr]
    agreed = service.agree(conn, second, proposed.decision_id)
    conn.commit()
    assert agreed.result == "confirmed"
    assert tallies.review_flag(conn, flag_id).review_status == "confirmed"  # type: ignore[union-attr]
    assert [a for _, a, s in _audit_since(conn, start) if s == f"flag:{flag_id}"] == [
        "review.propose",
        "review.agree",
        "review.final",
    ]


@pytest.mark.parametrize(
    ("action", "status"),
    [
        ("confirm", "confirmed"),
        ("dismiss", "dismissed"),
        ("more_evidence", "more_evidence"),
    ],
)
def test_a_decision_on_a_statistical_flag_is_final_at_once(
    conn: psycopg.Connection, flags: dict[str, int], person: People, action: str, status: str
) -> None:
    flag_id = flags["p3:turnout_outlier"]
    start = _last_seq(conn)
    outcome = service.decide_flag(conn, person("observer"), flag_id, action, note="n")
    conn.commit()
    assert outcome.state is State.FINAL and outcome.result == status
    assert tallies.review_flag(conn, flag_id).review_status == status  # type: ignore[union-attr]
    assert _audit_since(conn, start) == [("observer1", "review.final", f"flag:{flag_id}")]
    assert [i.id for i in service.flag_queue(conn, ELECTION, status=status).items] == [flag_id]


def test_a_proposal_on_a_flag_whose_numbers_changed_goes_stale(
    conn: psycopg.Connection, flags: dict[str, int], person: People
) -> None:
    from tally.proof import Finding
    from tally.vocab import Flag, Source

    first, second = person("observer"), person("observer")
    flag_id = flags["p1:crowd_exceeds_official"]
    proposed = service.decide_flag(conn, first, flag_id, "confirm")
    conn.commit()
    moved = Finding(
        "p1", Flag.CROWD_EXCEEDS_OFFICIAL, "tsikhanouskaya", Source.PHOTOS, 4, 1, "4 > 1"
    )
    tallies.store_flags(conn, ELECTION, [moved])
    conn.commit()
    start = _last_seq(conn)
    outcome = service.agree(conn, second, proposed.decision_id)
    conn.commit()
    assert outcome.state is State.STALE
    assert _audit_since(conn, start) == [("observer2", "review.stale", f"flag:{flag_id}")]
    assert tallies.review_flag(conn, flag_id).review_status == "open"  # type: ignore[union-attr]


def test_rerunning_the_flag_stage_keeps_decisions_on_flags_that_still_hold(
    conn: psycopg.Connection, loaded: str, person: People
) -> None:
    from api.flags.service import run_flags

    first, second = person("observer"), person("observer")
    for _ in range(3):
        tallies.count_ballot(conn, ELECTION, "p1", ["tsikhanouskaya"], 1)
    tallies.count_ballot(conn, ELECTION, "p1", ["dmitriyev"], 1)  # official: 0
    run_flags(conn, ELECTION, draws=50)
    conn.commit()
    proof = service.flag_queue(conn, ELECTION, kind="proof", flag="crowd_exceeds_official")
    by_option = {i.option: i.id for i in proof.items}
    flag_id = by_option["tsikhanouskaya"]
    proposed = service.decide_flag(conn, first, flag_id, "confirm")
    others = {i.id for i in service.flag_queue(conn, ELECTION).items} - {flag_id}
    for other in others:
        asked = service.decide_flag(conn, first, other, "more_evidence")
        if asked.state is State.PROPOSED:
            service.agree(conn, second, asked.decision_id)
    conn.commit()

    # A re-run between the proposal and the agreement: the flag still holds, with the
    # same numbers, so the proposal stands and the agreement takes effect.
    run_flags(conn, ELECTION, draws=50)
    conn.commit()
    assert service.agree(conn, second, proposed.decision_id).result == "confirmed"
    conn.commit()

    run_flags(conn, ELECTION, draws=50)
    conn.commit()
    after = {i.id: i.review_status for i in service.flag_queue(conn, ELECTION).items}
    assert after[flag_id] == "confirmed"
    assert others and all(after[o] == "more_evidence" for o in others if o in after)
    # The flag's numbers change with a fourth photo: the decision was about other
    # evidence, and the flag is open again.
    tallies.count_ballot(conn, ELECTION, "p1", ["tsikhanouskaya"], 1)
    run_flags(conn, ELECTION, draws=50)
    conn.commit()
    assert tallies.review_flag(conn, flag_id).review_status == "open"  # type: ignore[union-attr]


# -- over HTTP --------------------------------------------------------------------------


def test_decisions_over_http_follow_the_two_person_rule(
    client: TestClient,
    account: Callable[..., dict[str, str]],
    conn: psycopg.Connection,
    make_submission: MakeSubmission,
) -> None:
    first, second = account("observer"), account("observer")
    sid = make_submission()
    answer = client.post(
        f"/review/submissions/{sid}/decision",
        data={"action": "count_declared", "note": "ok"},
        headers=first,
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/review/submissions/{sid}?done=proposed"
    decision_id = client.get("/v1/review/decisions", headers=first).json()[0]["id"]
    refused = client.post(
        f"/review/decisions/{decision_id}/agree", headers=first, follow_redirects=False
    )
    assert refused.status_code == 403
    agreed = client.post(
        f"/review/decisions/{decision_id}/agree", headers=second, follow_redirects=False
    )
    assert agreed.status_code == 303 and agreed.headers["location"].endswith("done=final")
    conn.rollback()
    assert station_tally(conn) == ({"tsikhanouskaya": 1}, 1)


@pytest.mark.parametrize("role", ["analyst", "voter", None])
def test_only_observers_and_admins_may_decide(
    client: TestClient,
    account: Callable[..., dict[str, str]],
    make_submission: MakeSubmission,
    flags: dict[str, int],
    role: str | None,
) -> None:
    headers = account(role) if role in ("analyst",) else {}
    if role == "voter":
        headers = {"Authorization": "Bearer golos_vt_" + "x" * 40}
    sid = make_submission()
    posts = [
        (f"/review/submissions/{sid}/decision", {"action": "count_read"}),
        (f"/review/flags/{flags['p3:turnout_outlier']}/decision", {"action": "confirm"}),
        ("/review/decisions/1/agree", {}),
        ("/review/decisions/1/disagree", {}),
    ]
    for path, data in posts:
        answer = client.post(path, data=data, headers=headers, follow_redirects=False)
        assert answer.status_code in (401, 403, 303), path
        if answer.status_code == 303:  # a page request of an anonymous caller: log in
            assert answer.headers["location"].startswith("/login")
    for path in (
        "/v1/review/submissions",
        "/v1/review/flags",
        f"/v1/review/submissions/{sid}",
        f"/review/photos/{sid}",
        f"/review/photos/{sid}/thumbnail",
    ):
        answer = client.get(path, headers=headers, follow_redirects=False)
        assert answer.status_code in (401, 403, 303), path
