"""The observers' review: two queues, the evidence, and decisions under the
two-person rule.

**The queues, strongest evidence first.** A reviewer's time is best spent where
a decision is most certain to matter, so each queue puts first what the
evidence says most clearly (the order lives in migration 0009's
``review_flag_rank`` and ``review_submission_rank``, held by indexes):

* *Flags*: proof before statistical. A proof flag is a contradiction between
  numbers; the more the crowd's proven count exceeds the official figure, the
  more votes the protocol cannot account for and the less a miscount of one or
  two photos could explain it, so the largest excess (crowd − official) comes
  first. A statistical flag is a lead, never proof; the smaller its q-value
  (false discovery rate; the p-value when the test gives none) the less likely
  chance made it, so the smallest comes first. Leads with neither (a declared
  source's count above the official one) come last, the larger excess first.
* *Submissions*: a near-duplicate photo first, the closest fingerprint distance
  first: distance 0 is the same ballot paper re-used, the clearest sign of an
  attack on the count, and while it waits every copy of it stays uncounted.
  Then a choice mismatch: the reader read a valid ballot with confidence and it
  contradicts the declared choice, a definite reading a person confirms at a
  glance. Then an unreadable photo, where the reader offers nothing and the
  person must read the marks alone. Anything else (a photo that could not be
  processed) last. Within a group, the oldest first. After all of them, the
  *quarantined* submissions (``api.submissions.abuse``): ballots the reader read
  as declared, held only because of how they arrived (a voter's third in an hour,
  a burst from one network or at one station). Their photos say nothing against
  them and, while they wait, they do not count, so they harm nobody's count by
  waiting; the reasons of the hold are shown with the 'quarantined' reason, and
  approving one (count as read or as declared, two observers) counts it once,
  with the one-vote-per-voter rule, like any other.

Both queues page with a keyset cursor (the last row's sort key), so a deep page
costs what the first does.

**The two-person rule.** A decision that changes a count (counting a submission
as read or as declared), rejecting a submission (it takes a ballot out for good:
one planted observer must not be able to discard one candidate's ballots
quietly) and any decision on a ``proof`` flag is a *proposal* until a different
observer takes the same action (``agree``, or the same action from the form); a
disagreement sends the subject back to the queue. Decisions on statistical flags
are final at once. An admin may finalise alone: that is an *override*, recorded
as one in the decisions table, shown on the pages and written to the audit log
as ``review.override``. An admin agreeing with an observer's proposal is
recorded as an override too (an admin can make accounts, so an admin's
agreement is not a second independent person). A proposal voided because its
subject changed is written to the audit log (``review.stale``).

**Transactions and locks.** Every function here runs in the caller's transaction
(the route's); the decision, the submission's new status, the tally and the
audit entries commit together or not at all. Locks are taken in one order:
(1) the subject's advisory lock (``repository.lock_subject``), (2) the
subject's row (the submission, ``FOR UPDATE``, the same lock the pipeline
takes first; or the flag), (3) the voter's advisory lock (the pipeline's
one-vote-per-voter rule), (4) the station's ``photo_tallies`` and
``photo_voters`` rows (``tally.repository.count_ballot``), (5) the audit log's
advisory lock (``api.audit.service.append``, always last). The pipeline takes
(2), (3), (4) in the same order and never (1) or (5), so there is no cycle.

**Idempotency.** Decisions on a subject are serialised by (1); a request repeated
after it took effect (a double click, a retried form) finds the subject already
in the requested state and does nothing more (``Outcome.repeated``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from api.accounts.schemas import Principal, Role
from api.audit import service as audit
from api.elections import repository as elections
from api.elections.repository import PrecinctRef
from api.elections.service import page_election
from api.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound
from api.protocols import service as protocols
from api.protocols.schemas import StationProtocol
from api.review import repository
from api.review.schemas import (
    FLAG_ACTIONS,
    FLAG_STATUS,
    NOTE_MAX,
    PAGE_SIZE,
    SUBMISSION_ACTIONS,
    Action,
    AuditAction,
    Decision,
    FlagItem,
    FlagPage,
    Outcome,
    RejectReason,
    State,
    SubjectKind,
    SubmissionDetail,
    SubmissionItem,
    SubmissionPage,
    subject_of,
)
from api.submissions import abuse
from api.submissions import repository as submissions
from api.submissions.pipeline import one_vote_per_voter
from api.submissions.repository import ReviewCursor
from api.submissions.schemas import Reason, Status
from tally import repository as tallies
from tally.repository import FlagCursor, ReviewFlagRow
from tally.vocab import FlagKind, ProtocolLine, ReviewStatus

# The quarantined submissions' place in the submissions queue: after every rank of
# review_submission_rank (migration 0009).
QUARANTINE_RANK = 4
# A submission a reviewer can still decide: in review, or quarantined (it would count
# but was held: api.submissions.abuse; approving it counts it, once).
UNDECIDED = frozenset({Status.REVIEW, Status.QUARANTINED})
# The thumbnails of a station's verified photos on its page, at most.
STATION_PHOTOS = 24
# A note as the audit log keeps it (the decisions table keeps it whole).
AUDIT_NOTE_MAX = 500


# -- cursors (pure) -----------------------------------------------------------------


def submission_cursor(rank: int, distance: int, seq: int) -> str:
    """The submissions queue's keyset cursor as a URL parameter. Pure."""
    return f"{rank}.{distance}.{seq}"


def parse_submission_cursor(text: str | None) -> ReviewCursor | None:
    """Pure; BadRequest when ``text`` is not a cursor this module wrote."""
    if not text:
        return None
    try:
        rank, distance, seq = (int(part) for part in text.split("."))
    except ValueError:
        raise BadRequest("after", "not a page cursor; follow the queue's links") from None
    return rank, distance, seq


def flag_cursor(rank: float, flag_id: int) -> str:
    """The flags queue's keyset cursor (``repr`` of a float reads back exactly). Pure."""
    return f"{rank!r}_{flag_id}"


def parse_flag_cursor(text: str | None) -> FlagCursor | None:
    """Pure; BadRequest when ``text`` is not a cursor this module wrote."""
    if not text:
        return None
    try:
        rank, flag_id = text.rsplit("_", 1)
        return float(rank), int(flag_id)
    except ValueError:
        raise BadRequest("after", "not a page cursor; follow the queue's links") from None


# -- the queues ---------------------------------------------------------------------


def check_filters(**values: str | None) -> None:
    """Invalid, naming the first filter that holds a NUL character (no text column
    can hold one, and no name in the vocabulary has one). Pure."""
    for field, value in values.items():
        if value and "\x00" in value:
            raise Invalid(field, "must not contain a NUL character")


def election_choice(conn: psycopg.Connection, election_id: str | None) -> str | None:
    """The election a page is about: the one asked for (NotFound if unknown), else
    the newest; None when there is none at all."""
    check_filters(election=election_id)
    return page_election(conn, election_id)


def _precincts(
    conn: psycopg.Connection, election_id: str, region: str | None, district: str | None
) -> list[str] | None:
    if not region and not district:
        return None
    return elections.precinct_ids_in(conn, election_id, region or None, district or None)


def _place(refs: dict[str, PrecinctRef], precinct_id: str) -> tuple[str, str]:
    ref = refs.get(precinct_id)
    return (ref.region, ref.district) if ref else ("", "")


def submission_queue(
    conn: psycopg.Connection,
    election_id: str,
    *,
    region: str | None = None,
    district: str | None = None,
    reason: str | None = None,
    after: str | None = None,
    limit: int = PAGE_SIZE,
) -> SubmissionPage:
    """One page of the election's submissions in review, then the quarantined ones
    (module docstring: order)."""
    check_filters(region=region, district=district, reason=reason, after=after)
    cursor = parse_submission_cursor(after)
    precinct_ids = _precincts(conn, election_id, region, district)
    rows = []
    if cursor is None or cursor[0] < QUARANTINE_RANK:
        rows = submissions.review_queue_page(
            conn,
            election_id,
            precinct_ids=precinct_ids,
            reason=reason or None,
            after=cursor,
            limit=limit,
        )
    if len(rows) < limit:
        rows += submissions.quarantine_queue_page(
            conn,
            election_id,
            precinct_ids=precinct_ids,
            reason=reason or None,
            after_seq=cursor[2] if cursor is not None and cursor[0] >= QUARANTINE_RANK else 0,
            limit=limit - len(rows),
            rank=QUARANTINE_RANK,
        )
    refs = elections.precinct_refs(conn, election_id, sorted({r.precinct_id for r in rows}))
    waiting = repository.awaiting_for(
        conn, [subject_of(SubjectKind.SUBMISSION, r.submission_id) for r in rows]
    )
    items = [
        SubmissionItem(
            submission_id=r.submission_id,
            precinct_id=r.precinct_id,
            region=_place(refs, r.precinct_id)[0],
            district=_place(refs, r.precinct_id)[1],
            reasons=r.reasons,
            declared_choice=r.declared_choice,
            marks=r.marks,
            near_duplicate_distance=r.distance if r.rank == 0 and r.distance < 64 else None,
            awaiting=waiting.get(subject_of(SubjectKind.SUBMISSION, r.submission_id)),
        )
        for r in rows
    ]
    last = rows[-1] if len(rows) == limit else None
    return SubmissionPage(
        election_id=election_id,
        items=items,
        next_after=submission_cursor(last.rank, last.distance, last.seq) if last else None,
    )


def _flag_item(
    row: ReviewFlagRow, refs: dict[str, PrecinctRef], awaiting: Action | None
) -> FlagItem:
    excess = (
        row.crowd - row.official if row.crowd is not None and row.official is not None else None
    )
    region, district = _place(refs, row.precinct_id)
    return FlagItem(
        id=row.id,
        precinct_id=row.precinct_id,
        region=region,
        district=district,
        flag=row.flag,
        kind=row.kind,
        option=row.option,
        source=row.source,
        crowd=row.crowd,
        official=row.official,
        excess=excess,
        statistic=row.statistic,
        p_value=row.p_value,
        q_value=row.q_value,
        detail=row.detail,
        review_status=row.review_status,
        awaiting=awaiting,
        identities=row.identities,
    )


def flag_queue(
    conn: psycopg.Connection,
    election_id: str,
    *,
    region: str | None = None,
    district: str | None = None,
    flag: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    after: str | None = None,
    limit: int = PAGE_SIZE,
) -> FlagPage:
    """One page of the election's flags (module docstring: order)."""
    check_filters(
        region=region, district=district, flag=flag, kind=kind, status=status, after=after
    )
    rows = tallies.review_flag_page(
        conn,
        election_id,
        precinct_ids=_precincts(conn, election_id, region, district),
        flag=flag or None,
        kind=kind or None,
        status=status or None,
        after=parse_flag_cursor(after),
        limit=limit,
    )
    refs = elections.precinct_refs(conn, election_id, sorted({r.precinct_id for r in rows}))
    waiting = repository.awaiting_for(conn, [subject_of(SubjectKind.FLAG, r.id) for r in rows])
    items = [_flag_item(r, refs, waiting.get(subject_of(SubjectKind.FLAG, r.id))) for r in rows]
    last = rows[-1] if len(rows) == limit else None
    return FlagPage(
        election_id=election_id,
        items=items,
        next_after=flag_cursor(last.rank, last.id) if last else None,
    )


def awaiting(
    conn: psycopg.Connection, election_id: str, after_id: int | None = None, limit: int = PAGE_SIZE
) -> list[Decision]:
    """Proposals awaiting a second observer, oldest first."""
    return repository.awaiting(conn, election_id, after_id, limit)


@dataclass(frozen=True)
class Overview:
    election_id: str
    in_review: int
    awaiting: int
    flags: dict[tuple[str, str], int]  # (kind, review status) -> how many
    quarantined: int = 0  # held submissions that would count (api.submissions.abuse)

    def flags_of(self, kind: str, undecided: bool) -> int:
        """How many flags of ``kind`` are undecided (open or awaiting evidence), or decided."""
        wanted = {ReviewStatus.OPEN, ReviewStatus.MORE_EVIDENCE}
        return sum(
            n for (k, s), n in self.flags.items() if k == kind and (s in wanted) == undecided
        )


def overview(conn: psycopg.Connection, election_id: str) -> Overview:
    return Overview(
        election_id,
        submissions.count_with_status(conn, election_id, Status.REVIEW),
        repository.count_awaiting(conn, election_id),
        tallies.count_flags(conn, election_id),
        submissions.count_with_status(conn, election_id, Status.QUARANTINED),
    )


# -- the evidence -------------------------------------------------------------------


def photo_url(submission_id: uuid.UUID | str, thumbnail: bool = False) -> str:
    """Where an observer's browser fetches a submission's photo. Pure."""
    return f"/review/photos/{submission_id}" + ("/thumbnail" if thumbnail else "")


def submission_detail(conn: psycopg.Connection, submission_id: uuid.UUID) -> SubmissionDetail:
    """A submission as a reviewer sees it (no voter identity); NotFound if none."""
    found = submissions.review_submission(conn, submission_id)
    if found is None:
        raise NotFound("submission_id", "no such submission")
    ref = elections.precinct_refs(conn, found.election_id, [found.precinct_id]).get(
        found.precinct_id
    )
    reading = found.reading or {}
    return SubmissionDetail(
        submission_id=found.submission_id,
        election_id=found.election_id,
        precinct_id=found.precinct_id,
        region=ref.region if ref else "",
        district=ref.district if ref else "",
        station_name=ref.name if ref else "",
        status=found.status,
        reasons=found.reasons,
        declared_choice=found.declared_choice,
        marks=found.marks,
        verdict=reading.get("verdict"),
        confidence=reading.get("confidence"),
        reader_reasons=list(reading.get("reasons") or []),
        photo_url=photo_url(found.submission_id),
        near_duplicate_of=found.near_duplicate_of,
        near_duplicate_distance=found.distance,
        near_duplicate_photo_url=(
            photo_url(found.near_duplicate_of) if found.near_duplicate_of else None
        ),
        decisions=repository.history(conn, subject_of(SubjectKind.SUBMISSION, submission_id)),
    )


def photo_key(conn: psycopg.Connection, submission_id: uuid.UUID) -> str:
    """The photo-store key of a submission's photo; NotFound if there is none."""
    key = submissions.photo_key(conn, submission_id)
    if key is None:
        raise NotFound("submission_id", "no such submission")
    return key


def photo_orientation(conn: psycopg.Connection, submission_id: uuid.UUID) -> int | None:
    """The EXIF orientation (2..8) to turn a submission's stored photo by before it is
    shown (the upload strips the file and keeps it in the row); None: upright."""
    return submissions.photo_orientation(conn, submission_id)


def share(part: int | None, whole: int | None) -> float | None:
    """``part`` as a fraction of ``whole``; None when either is unknown or whole is 0. Pure."""
    if part is None or not whole:
        return None
    return part / whole


@dataclass(frozen=True)
class ShareRow:
    option: str
    label: str
    official: int | None
    station: float | None  # the option's share of the station's ballots cast
    district: float | None  # the same over the district's stations with a protocol


@dataclass(frozen=True)
class FlagView:
    item: FlagItem
    proposal: Decision | None  # awaiting a second observer
    history: list[Decision]


@dataclass(frozen=True)
class StationEvidence:
    """Everything the station page shows side by side (never a voter's identity)."""

    election_id: str
    precinct: PrecinctRef
    options: list[tuple[str, str]]  # (id, label) in ballot order
    protocol: dict[str, int | None] | None
    photo_votes: dict[str, int]
    photo_voters: int
    crowd: dict[str, tuple[str, dict[str, int]]]  # imported source -> (level, votes)
    photos: list[uuid.UUID]
    turnout: float | None
    district_turnout: float | None
    district_stations: int
    shares: list[ShareRow]
    flags: list[FlagView]
    # The official figures reconciled from every source, with provenance per line and
    # any conflict (``protocol`` holds its agreed figures).
    reconciled: StationProtocol | None = None


def district_totals(
    figures: Mapping[str, Mapping[str, int | None]],
) -> tuple[int, dict[str, int]]:
    """Over the stations whose registered voters and ballots cast are both known
    (``figures``: official figures per station, None where unknown): how many there
    are, and the sums of their registered voters, ballots cast and each option's
    known votes, for the shares a station page compares with its district's. A
    station with either figure unknown (in conflict, still with people) is left out
    whole, so the district's turnout and shares have one set of stations. Pure."""
    registered, cast = ProtocolLine.REGISTERED.value, ProtocolLine.BALLOTS_CAST.value
    totals: dict[str, int] = {registered: 0, cast: 0}
    stations = 0
    for lines in figures.values():
        if lines.get(registered) is None or lines.get(cast) is None:
            continue
        stations += 1
        for line, value in lines.items():
            if value is not None:
                totals[line] = totals.get(line, 0) + value
    return stations, totals


def station_evidence(
    conn: psycopg.Connection, election_id: str, precinct_id: str
) -> StationEvidence:
    """The station page's evidence; NotFound for an unknown station."""
    ref = elections.precinct_refs(conn, election_id, [precinct_id]).get(precinct_id)
    if ref is None:
        raise NotFound("precinct_id", "no such station in this election")
    labels = elections.option_labels(conn, election_id)
    options = [(o, labels.get(o, o)) for o in elections.option_ids(conn, election_id)]
    protocol, reconciled = protocols.station_figures(conn, election_id, precinct_id)
    # The district's figures as its stations' pages show them: reconciled with any
    # protocol photos, not the imported file's alone.
    stations, totals = district_totals(
        protocols.official_protocols_of(
            conn,
            election_id,
            elections.precinct_ids_in(conn, election_id, ref.region, ref.district),
        )
    )
    cast = protocol.get(ProtocolLine.BALLOTS_CAST) if protocol else None
    registered = protocol.get(ProtocolLine.REGISTERED) if protocol else None
    shares = [
        ShareRow(
            option,
            label,
            protocol.get(option) if protocol else None,
            share(protocol.get(option), cast) if protocol else None,
            share(totals.get(option), totals["ballots_cast"]),
        )
        for option, label in options
    ]
    votes, voters = tallies.station_photo_tally(conn, election_id, precinct_id)
    crowd = {
        source: (str(level), counts)
        for source, (level, counts) in elections.station_crowd_counts(
            conn, election_id, precinct_id
        ).items()
    }
    rows = tallies.station_review_flags(conn, election_id, precinct_id)
    refs = {precinct_id: ref}
    flags = []
    for row in rows:
        subject = subject_of(SubjectKind.FLAG, row.id)
        proposal = repository.open_proposal(conn, subject)
        flags.append(
            FlagView(
                _flag_item(row, refs, proposal.action if proposal else None),
                proposal,
                repository.history(conn, subject),
            )
        )
    return StationEvidence(
        election_id=election_id,
        precinct=ref,
        options=options,
        protocol=protocol,
        photo_votes=votes,
        photo_voters=voters,
        crowd=crowd,
        photos=submissions.station_verified_photos(conn, election_id, precinct_id, STATION_PHOTOS),
        turnout=share(cast, registered),
        district_turnout=share(totals["ballots_cast"], totals["registered"]),
        district_stations=stations,
        shares=shares,
        flags=flags,
        reconciled=reconciled,
    )


# -- decisions ----------------------------------------------------------------------


def _clean_note(note: str | None) -> str:
    text = (note or "").strip()
    if len(text) > NOTE_MAX:
        raise Invalid("note", f"a note has at most {NOTE_MAX} characters")
    if any((ord(c) < 0x20 and c not in "\n\r\t") or ord(c) == 0x7F for c in text):
        raise Invalid("note", "a note cannot contain control characters")
    return text


def _actor(principal: Principal) -> tuple[int, str]:
    if principal.user_id is None or principal.username is None:
        raise Forbidden("authorization", "only an account may decide")
    return principal.user_id, principal.username


def _audit(
    conn: psycopg.Connection,
    principal: Principal,
    action: AuditAction,
    decision: Decision,
    **extra: str | int,
) -> None:
    detail: dict[str, Any] = {
        "decision": decision.id,
        "action": str(decision.action),
        "election": decision.election_id,
        "precinct": decision.precinct_id,
    }
    if decision.reason:
        detail["reason"] = decision.reason
    detail.update(extra)
    audit.append(conn, principal.actor, str(action), decision.subject, detail)


def _note(text: str | None) -> str:
    return (text or "")[:AUDIT_NOTE_MAX]


@dataclass(frozen=True)
class _Subject:
    """A submission or a flag, locked, as the decision rules see it."""

    name: str
    election_id: str
    precinct_id: str
    two_person: bool  # this action on it needs a second observer
    evidence: dict[str, Any]  # what a proposal on it is about (stale when it changes)
    settled: bool  # already in the state the action would put it in


def _apply(conn: psycopg.Connection, decision: Decision) -> str:
    """Carry out a final decision on its (locked) subject; returns the submission's
    new status or the flag's new review status."""
    if decision.subject_kind is SubjectKind.FLAG:
        review_status = FLAG_STATUS[decision.action]
        tallies.set_review_status(conn, int(decision.subject_id), review_status)
        return str(review_status)
    sid = uuid.UUID(decision.subject_id)
    locked = submissions.lock_for_review(conn, sid)  # held already: returns at once
    assert locked is not None
    # Decided by people: no later burst of its groups may hold it again (every branch).
    abuse.leave_bursts(conn, sid)
    if decision.action is Action.REJECT:
        assert decision.reason is not None
        submissions.set_review_outcome(conn, sid, Status.REJECTED, [decision.reason], locked.marks)
        return str(Status.REJECTED)
    marks = locked.marks if decision.action is Action.COUNT_READ else locked.pending.declared
    assert marks
    status = Status.VERIFIED
    pending = locked.pending
    if pending.voter_key is not None:
        # The pipeline's rule: a voter's latest verified submission counts, earlier
        # ones are superseded (and taken out of the tally).
        status = one_vote_per_voter(conn, pending, pending.voter_key, sid)
    if status is Status.VERIFIED:
        tallies.count_ballot(conn, pending.election_id, pending.precinct_id, marks, +1)
        submissions.set_review_outcome(conn, sid, Status.VERIFIED, [], marks)
    else:
        reasons = [Reason.REPLACED_BY_LATER_SUBMISSION]
        submissions.set_review_outcome(conn, sid, Status.SUPERSEDED, reasons, marks)
    return str(status)


def _decide(
    conn: psycopg.Connection,
    principal: Principal,
    subject: _Subject,
    action: Action,
    reason: str | None,
    note: str,
) -> Outcome:
    user_id, username = _actor(principal)
    proposal = repository.open_proposal(conn, subject.name)
    if proposal is not None and proposal.evidence != subject.evidence:
        _go_stale(conn, principal, proposal)
        proposal = None
    overrode = False
    overridden: int | None = None  # the proposal an admin's other decision set aside
    if proposal is not None:
        if proposal.action is not action:
            if principal.role is Role.ADMIN:
                overrode = True
                overridden = proposal.id
                repository.settle(
                    conn, proposal.id, State.OVERRIDDEN, user_id=user_id, username=username,
                    note=note, override=True,
                )  # fmt: skip
            else:
                raise Conflict(
                    "action",
                    f"{proposal.proposer} proposed {proposal.action}; agree or disagree with "
                    "that proposal first",
                )
        elif proposal.proposed_by == user_id:
            return _outcome(proposal, repeated=True)
        else:
            return _agree(conn, principal, proposal, note)
    if subject.settled:
        latest = repository.latest(conn, subject.name)
        if latest is not None and latest.state is State.FINAL and latest.action is action:
            return _outcome(latest, repeated=True)
        raise Conflict("action", "this has been decided already")
    needs_second = subject.two_person and principal.role is not Role.ADMIN
    decision = repository.insert(
        conn,
        election_id=subject.election_id,
        precinct_id=subject.precinct_id,
        subject=subject.name,
        action=action,
        reason=reason,
        note=note,
        evidence=subject.evidence,
        state=State.PROPOSED if needs_second else State.FINAL,
        user_id=user_id,
        username=username,
        override=(subject.two_person or overrode) and not needs_second,
    )
    if needs_second:
        _audit(conn, principal, AuditAction.PROPOSE, decision, note=_note(note))
        return _outcome(decision)
    result = _apply(conn, decision)
    kind = AuditAction.OVERRIDE if decision.override else AuditAction.FINAL
    extra: dict[str, str | int] = {"overrode": overridden} if overridden is not None else {}
    _audit(conn, principal, kind, decision, note=_note(note), result=result, **extra)
    return _outcome(decision, result=result)


def _outcome(decision: Decision, result: str | None = None, repeated: bool = False) -> Outcome:
    return Outcome(
        decision_id=decision.id,
        subject=decision.subject,
        action=decision.action,
        state=decision.state,
        override=decision.override,
        result=result,
        repeated=repeated,
    )


def _go_stale(conn: psycopg.Connection, principal: Principal, proposal: Decision) -> None:
    """The subject changed under the proposal (a flag's numbers moved): it is void,
    and the audit log says so (noticed by ``principal``'s request)."""
    stale = repository.settle(
        conn, proposal.id, State.STALE, user_id=None, username=None, note=None
    )
    _audit(conn, principal, AuditAction.STALE, stale, proposer=proposal.proposer)


def _agree(
    conn: psycopg.Connection, principal: Principal, proposal: Decision, note: str
) -> Outcome:
    user_id, username = _actor(principal)
    if proposal.proposed_by == user_id:
        raise Forbidden("decision", "a second observer must agree: not the one who proposed it")
    by_admin = principal.role is Role.ADMIN
    decision = repository.settle(
        conn, proposal.id, State.FINAL, user_id=user_id, username=username, note=note,
        override=by_admin,
    )  # fmt: skip
    # The decision's effect first, the audit entries last: the audit lock is always
    # the last lock taken (see the module docstring), or an agreement and an admin's
    # direct decision at the same station could deadlock.
    result = _apply(conn, decision)
    _audit(
        conn, principal, AuditAction.AGREE, decision, proposer=proposal.proposer, note=_note(note)
    )
    _audit(
        conn, principal, AuditAction.OVERRIDE if by_admin else AuditAction.FINAL, decision,
        proposer=proposal.proposer, agreed_by=username, result=result,
    )  # fmt: skip
    return _outcome(decision, result=result)


def _submission_subject(conn: psycopg.Connection, sid: uuid.UUID, action: Action) -> _Subject:
    name = subject_of(SubjectKind.SUBMISSION, sid)
    repository.lock_subject(conn, name)
    locked = submissions.lock_for_review(conn, sid)
    if locked is None:
        raise NotFound("submission_id", "no such submission")
    if action is Action.COUNT_READ and locked.status in UNDECIDED and not locked.marks:
        raise Invalid("action", "the reader read no marks: count it as declared, or reject it")
    return _Subject(
        name=name,
        election_id=locked.pending.election_id,
        precinct_id=locked.pending.precinct_id,
        two_person=True,  # counting changes a count; rejecting discards a ballot
        evidence={"status": locked.status, "marks": locked.marks or []},
        settled=locked.status not in UNDECIDED,
    )


def _flag_subject(conn: psycopg.Connection, flag_id: int, action: Action) -> _Subject | None:
    name = subject_of(SubjectKind.FLAG, flag_id)
    repository.lock_subject(conn, name)
    row = tallies.review_flag(conn, flag_id, lock=True)
    if row is None:
        return None
    return _Subject(
        name=name,
        election_id=row.election_id,
        precinct_id=row.precinct_id,
        two_person=row.kind == FlagKind.PROOF,
        evidence={"crowd": row.crowd, "official": row.official, "detail": row.detail},
        settled=row.review_status == FLAG_STATUS[action],
    )


def decide_submission(
    conn: psycopg.Connection,
    principal: Principal,
    submission_id: uuid.UUID,
    action: str,
    *,
    reason: str | None = None,
    note: str | None = None,
) -> Outcome:
    """An observer's or admin's decision on a submission in review (module docstring)."""
    if action not in SUBMISSION_ACTIONS:
        raise Invalid("action", f"one of {', '.join(SUBMISSION_ACTIONS)}")
    chosen = Action(action)
    if chosen is Action.REJECT:
        if reason not in set(RejectReason):
            raise Invalid("reason", f"one of {', '.join(RejectReason)}")
    else:
        reason = None
    text = _clean_note(note)
    if chosen is Action.REJECT and reason == RejectReason.OTHER and not text:
        raise Invalid("note", "say why in the note")
    subject = _submission_subject(conn, submission_id, chosen)
    return _decide(conn, principal, subject, chosen, reason, text)


def decide_flag(
    conn: psycopg.Connection,
    principal: Principal,
    flag_id: int,
    action: str,
    *,
    note: str | None = None,
) -> Outcome:
    """An observer's or admin's decision on a flag (module docstring)."""
    if action not in FLAG_ACTIONS:
        raise Invalid("action", f"one of {', '.join(FLAG_ACTIONS)}")
    chosen = Action(action)
    text = _clean_note(note)
    subject = _flag_subject(conn, flag_id, chosen)
    if subject is None:
        raise NotFound("flag_id", "no such flag: the flag stage may have withdrawn it")
    return _decide(conn, principal, subject, chosen, None, text)


def _locked_proposal(
    conn: psycopg.Connection, decision_id: int
) -> tuple[Decision, _Subject | None]:
    found = repository.get(conn, decision_id)
    if found is None:
        raise NotFound("decision", "no such decision")
    subject: _Subject | None
    if found.subject_kind is SubjectKind.FLAG:
        subject = _flag_subject(conn, int(found.subject_id), found.action)
    else:
        subject = _submission_subject(conn, uuid.UUID(found.subject_id), found.action)
    proposal = repository.get(conn, decision_id)  # again, under the subject's lock
    assert proposal is not None
    return proposal, subject


def agree(
    conn: psycopg.Connection, principal: Principal, decision_id: int, note: str | None = None
) -> Outcome:
    """A second observer agrees with a proposal: it becomes final and takes effect.
    A proposal whose subject has changed or vanished goes stale instead."""
    text = _clean_note(note)
    proposal, subject = _locked_proposal(conn, decision_id)
    if proposal.state is not State.PROPOSED:
        if proposal.state is State.FINAL and proposal.decided_by == principal.user_id:
            return _outcome(proposal, repeated=True)
        raise Conflict("decision", f"this proposal is {proposal.state} already")
    if subject is None or proposal.evidence != subject.evidence:
        _go_stale(conn, principal, proposal)
        return _outcome(proposal.model_copy(update={"state": State.STALE}))
    return _agree(conn, principal, proposal, text)


def disagree(
    conn: psycopg.Connection, principal: Principal, decision_id: int, note: str | None = None
) -> Outcome:
    """A second observer disagrees: the proposal is closed, the subject stays open."""
    text = _clean_note(note)
    user_id, username = _actor(principal)
    proposal, _ = _locked_proposal(conn, decision_id)
    if proposal.state is not State.PROPOSED:
        if proposal.state is State.DISAGREED and proposal.decided_by == user_id:
            return _outcome(proposal, repeated=True)
        raise Conflict("decision", f"this proposal is {proposal.state} already")
    if proposal.proposed_by == user_id:
        raise Forbidden("decision", "a second observer must decide: not the one who proposed it")
    decision = repository.settle(
        conn, proposal.id, State.DISAGREED, user_id=user_id, username=username, note=text
    )
    _audit(
        conn,
        principal,
        AuditAction.DISAGREE,
        decision,
        proposer=proposal.proposer,
        note=_note(text),
    )
    return _outcome(decision)


def decision(conn: psycopg.Connection, decision_id: int) -> Decision:
    """One decision; NotFound if none."""
    found = repository.get(conn, decision_id)
    if found is None:
        raise NotFound("decision", "no such decision")
    return found


def subjects_url(decision: Decision) -> str:
    """The page of a decision's subject. Pure."""
    if decision.subject_kind is SubjectKind.FLAG:
        return f"/review/stations/{decision.election_id}/{decision.precinct_id}"
    return f"/review/submissions/{decision.subject_id}"
