"""The quarantine (api/submissions/abuse.py): each threshold, their expiry, what the
pipeline makes of a hold, and that nothing identifying is kept."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.deps import store_dep
from api.submissions import abuse
from api.submissions import repository as submissions
from api.submissions.schemas import Reason, Status
from api.worker import run_worker
from infra import ratelimit
from infra.settings import Settings, get_settings
from infra.storage import PhotoStore, photo_store
from tally import repository as tallies

ELECTION = "by-2020-president"
# A moment at the start of a ten-minute and of an hour window (the sliding estimate
# then weighs nothing of the previous window in).
T0 = 1_800_000_000.0 - 1_800_000_000.0 % 3600
NETWORK = ratelimit.network_key(b"k" * 32, "198.51.100.23")
OTHER_NETWORK = ratelimit.network_key(b"k" * 32, "203.0.113.9")

Configure = Callable[..., Settings]


@pytest.fixture
def quarantine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Configure]:
    """``quarantine(quarantine_per_voter=1, ...)``: the thresholds for the rest of the
    test (every other one as configured by default)."""

    def configure(**values: object) -> Settings:
        changed = get_settings().model_copy(update=values)
        monkeypatch.setattr(abuse, "get_settings", lambda: changed)
        return changed

    yield configure


def _arrive(
    conn: psycopg.Connection,
    *,
    at: float,
    voter: bytes | None = None,
    network: bytes = NETWORK,
    precinct: str = "p1",
) -> uuid.UUID:
    """A submission stored and its arrival recorded, as the upload does, in one
    transaction; returns its id."""
    sid = uuid.uuid4()
    voter_key = voter or uuid.uuid4().bytes * 2
    with conn.transaction():
        assert submissions.insert(
            conn, sid, ELECTION, precinct, ["tsikhanouskaya"], f"d-{sid}", f"photo-{sid}", voter_key
        )
        abuse.record_arrival(
            conn,
            submission_id=sid,
            election_id=ELECTION,
            precinct_id=precinct,
            voter_key=voter_key,
            network=network,
            now=at,
        )
    return sid


def _held(conn: psycopg.Connection, sids: list[uuid.UUID]) -> list[list[str]]:
    return [abuse.held(conn, sid) for sid in sids]


def test_a_voters_third_submission_within_the_hour_is_held_and_only_that_one(
    conn: psycopg.Connection, loaded: str, quarantine: Configure
) -> None:
    quarantine(quarantine_per_network_station=0)
    voter = b"v" * 32
    sids = [_arrive(conn, at=T0 + 60 * i, voter=voter) for i in range(4)]
    assert _held(conn, sids) == [[], [], [Reason.VOTER_BURST], [Reason.VOTER_BURST]]
    # Another voter is not held for it.
    assert _held(conn, [_arrive(conn, at=T0 + 300)]) == [[]]


def test_a_voters_count_slides_out_of_the_hour(
    conn: psycopg.Connection, loaded: str, quarantine: Configure
) -> None:
    quarantine(quarantine_per_network_station=0)
    voter = b"v" * 32
    early = [_arrive(conn, at=T0 + 10, voter=voter), _arrive(conn, at=T0 + 20, voter=voter)]
    # Two hours on, both windows have passed: the voter starts afresh.
    later = [_arrive(conn, at=T0 + 2 * 3600 + 10, voter=voter) for _ in range(2)]
    assert _held(conn, early + later) == [[], [], [], []]


def test_a_network_beyond_its_threshold_at_one_station_holds_the_whole_burst(
    conn: psycopg.Connection, loaded: str, quarantine: Configure
) -> None:
    quarantine(
        quarantine_per_network_station=4, quarantine_network_station_share=0, quarantine_per_voter=0
    )
    first = [_arrive(conn, at=T0 + i) for i in range(4)]
    assert _held(conn, first) == [[]] * 4
    # Other networks at the station, and the network at another station, are apart.
    apart = [
        _arrive(conn, at=T0 + 5, network=OTHER_NETWORK),
        _arrive(conn, at=T0 + 6, precinct="p2"),
    ]
    fifth = _arrive(conn, at=T0 + 7)
    assert _held(conn, [*first, fifth]) == [[Reason.NETWORK_BURST]] * 5
    assert _held(conn, apart) == [[], []]


def test_a_network_burst_expires_and_its_traces_are_deleted(
    conn: psycopg.Connection, loaded: str, quarantine: Configure
) -> None:
    quarantine(
        quarantine_per_network_station=2, quarantine_network_station_share=0, quarantine_per_voter=0
    )
    burst = [_arrive(conn, at=T0 + i) for i in range(3)]
    assert _held(conn, burst) == [[Reason.NETWORK_BURST]] * 3
    # Twenty minutes on (two windows), the network sends within the threshold again.
    later = [_arrive(conn, at=T0 + 1200 + i) for i in range(2)]
    assert _held(conn, later) == [[], []]
    # What counted the burst is gone once its windows end; the holds stay (reasons only).
    with conn.transaction():
        assert abuse.forget_expired(conn, T0 + 1200) > 0
    rows = conn.execute(
        "SELECT count(*) FROM burst_arrivals WHERE submission_id = ANY(%s)", (burst,)
    ).fetchone()
    assert rows == (0,)
    windows = conn.execute(
        "SELECT extract(epoch FROM window_start)::bigint FROM rate_limits"
        " WHERE scope LIKE 'quarantine_%%'"
    ).fetchall()
    assert windows and all(start >= T0 + 600 for (start,) in windows)


def test_a_station_burst_is_judged_against_its_roll_and_holds_only_what_goes_beyond_it(
    conn: psycopg.Connection, loaded: str, quarantine: Configure
) -> None:
    # p1 has 1001 voters on its roll: 0.5% of it is 6 arrivals in the window.
    quarantine(
        quarantine_per_network_station=0,
        quarantine_per_voter=0,
        quarantine_station_min=3,
        quarantine_station_share=0.005,
    )
    networks = [ratelimit.network_key(b"k" * 32, f"10.{i}.0.1") for i in range(8)]
    plausible = [_arrive(conn, at=T0 + i, network=networks[i]) for i in range(6)]
    assert _held(conn, plausible) == [[]] * 6
    seventh = _arrive(conn, at=T0 + 7, network=networks[6])
    assert _held(conn, [*plausible, seventh]) == [[]] * 6 + [[Reason.STATION_BURST]]
    # p2's arrivals are p2's own.
    assert _held(conn, [_arrive(conn, at=T0 + 8, network=networks[7], precinct="p2")]) == [[]]


def test_thresholds_set_to_zero_hold_nothing(
    conn: psycopg.Connection, loaded: str, quarantine: Configure
) -> None:
    quarantine(quarantine_per_voter=0, quarantine_per_network_station=0, quarantine_station_min=0)
    voter = b"v" * 32
    sids = [_arrive(conn, at=T0 + i, voter=voter) for i in range(25)]
    assert _held(conn, sids) == [[]] * 25


def test_the_pipeline_quarantines_a_held_ballot_that_would_count_and_counts_the_rest(
    conn: psycopg.Connection,
    submit: Callable,
    ballot_photo: Callable,
    quarantine: Configure,
) -> None:
    quarantine(quarantine_per_voter=1)
    voter = "+375291112233"
    first = submit(ballot_photo(["tsikhanouskaya"], seed=21), voter=voter).json()
    second = submit(ballot_photo(["lukashenko"], seed=22), voter=voter, choice="lukashenko")
    other = submit(ballot_photo(["against_all"], seed=23), choice="against_all").json()
    asyncio.run(run_worker(wait=False))
    conn.commit()
    statuses = {
        s: (found.status, found.reasons)
        for s in (first["submission_id"], second.json()["submission_id"], other["submission_id"])
        if (found := submissions.get_status(conn, uuid.UUID(s))) is not None
    }
    assert list(statuses.values()) == [
        ("verified", []),
        ("quarantined", ["quarantined", "voter_burst"]),
        ("verified", []),
    ]
    # The voter's first ballot still counts: a held re-send supersedes nothing.
    votes, voters = tallies.station_photo_tally(conn, ELECTION, "p1")
    assert votes == {"tsikhanouskaya": 1, "against_all": 1} and voters == 2


def test_nothing_identifying_is_kept_by_the_quarantine(
    conn: psycopg.Connection,
    submit: Callable,
    ballot_photo: Callable,
    quarantine: Configure,
    from_address: Callable[[str], None],
) -> None:
    quarantine(
        quarantine_per_network_station=1, quarantine_network_station_share=0, quarantine_per_voter=1
    )
    address, phone = "198.51.100.77", "+375297770011"
    from_address(address)
    for seed in (31, 32):
        assert submit(ballot_photo(["tsikhanouskaya"], seed=seed), voter=phone).status_code == 202
    conn.commit()
    secret = get_settings().app_key()
    prefix = ratelimit.network_prefix(address)
    forbidden = [
        address.encode(),
        prefix.encode(),
        phone.encode(),
        phone[1:].encode(),
        ratelimit.network_key(secret, address),  # the network's own key, unhashed again
    ]
    dumped = b""
    for query in (
        "SELECT * FROM submission_holds",
        "SELECT * FROM burst_arrivals",
        "SELECT * FROM rate_limits WHERE scope LIKE 'quarantine_%'",
    ):
        for row in conn.execute(query):
            for value in row:
                dumped += value if isinstance(value, bytes) else str(value).encode()
    assert dumped and not any(needle in dumped for needle in forbidden)
    # A hold says why, nothing else; an arrival's time is its window's start.
    columns = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_name IN ('submission_holds', 'burst_arrivals') ORDER BY 1, 2"
    ).fetchall()
    assert columns == [
        ("burst_arrivals", "expires_at"),
        ("burst_arrivals", "group_key"),
        ("burst_arrivals", "submission_id"),
        ("burst_arrivals", "window_start"),
        ("submission_holds", "reasons"),
        ("submission_holds", "submission_id"),
    ]
    starts = conn.execute(
        "SELECT extract(epoch FROM window_start)::bigint FROM burst_arrivals"
    ).fetchall()
    assert starts and all(start % 600 == 0 for (start,) in starts)


def test_a_burst_shows_its_hold_on_a_member_a_person_is_already_deciding(
    conn: psycopg.Connection, loaded: str, quarantine: Configure
) -> None:
    quarantine(
        quarantine_per_network_station=2, quarantine_network_station_share=0, quarantine_per_voter=0
    )
    first = _arrive(conn, at=T0)
    submissions.record_decision(conn, first, Status.REVIEW, ["choice_mismatch"], ["a"], None)
    conn.commit()
    _arrive(conn, at=T0 + 1)
    _arrive(conn, at=T0 + 2)  # the third from the network: the burst shows
    found = submissions.get_status(conn, first)
    assert found is not None
    assert (found.status, found.reasons) == ("review", ["choice_mismatch", "network_burst"])


def test_concurrent_arrivals_of_two_crossing_bursts_neither_deadlock_nor_escape(
    database: str, conn: psycopg.Connection, loaded: str, quarantine: Configure
) -> None:
    # Both the network's and the station's thresholds are crossed at once, by arrivals
    # racing each other on their own connections (as API processes do).
    quarantine(
        quarantine_per_network_station=3,
        quarantine_network_station_share=0,
        quarantine_per_voter=0,
        quarantine_station_min=3,
        quarantine_station_share=0.0,
    )
    arrivals = 12
    start = threading.Barrier(arrivals)
    made: list[uuid.UUID] = []
    errors: list[BaseException] = []

    def arrive(i: int) -> None:
        try:
            with psycopg.connect(database) as own:
                start.wait()
                made.append(_arrive(own, at=T0 + 1, network=NETWORK if i % 2 else OTHER_NETWORK))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=arrive, args=(i,)) for i in range(arrivals)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    conn.commit()
    assert len(made) == arrivals
    # Each network's six cross its threshold of three: all held, the earlier ones
    # too. The station holds only its arrivals beyond its own three.
    held = _held(conn, made)
    assert all(Reason.NETWORK_BURST in reasons for reasons in held)
    assert sum(Reason.STATION_BURST in reasons for reasons in held) == arrivals - 3


def test_a_networks_threshold_grows_with_the_stations_roll() -> None:
    limits = abuse.thresholds(get_settings())
    assert limits.network(None).max_hits == 10  # the floor, for a roll not known
    assert limits.network(1003).max_hits == 11  # a dozen from one /24 crosses it
    assert limits.network(7900).max_hits == 79  # the largest stations, after a cut
    assert limits.station(300).max_hits == 75 and limits.station(20).max_hits == 20
    off = abuse.thresholds(get_settings().model_copy(update={"quarantine_station_min": 0}))
    assert off.station(5000).off


def test_a_held_submission_is_in_review_to_its_sender_and_held_to_observers(
    conn: psycopg.Connection,
    client: TestClient,
    submit: Callable,
    device_token: Callable[..., str],
    account: Callable[..., dict[str, str]],
    ballot_photo: Callable,
    quarantine: Configure,
) -> None:
    quarantine(quarantine_per_voter=1)
    voter = "+375291112244"
    submit(ballot_photo(["tsikhanouskaya"], seed=31), voter=voter)
    photo = ballot_photo(["lukashenko"], seed=32)
    sid = str(uuid.uuid4())
    submit(photo, voter=voter, choice="lukashenko", sid=sid)
    asyncio.run(run_worker(wait=False))
    conn.commit()
    held = submissions.get_status(conn, uuid.UUID(sid))
    assert held is not None and held.status is Status.QUARANTINED
    # Its sender (the status URL, and a retry of the upload) is told "in review",
    # without the burst that held it.
    mine = {"Authorization": f"Bearer {device_token(voter)}"}
    seen = client.get(f"/v1/submissions/{sid}", headers=mine).json()
    assert (seen["status"], seen["reasons"]) == ("review", [])
    replay = submit(photo, voter=voter, choice="lukashenko", sid=sid)
    assert replay.status_code == 200
    assert (replay.json()["status"], replay.json()["reasons"]) == ("review", [])
    # An observer sees the hold as it is.
    told = client.get(f"/v1/submissions/{sid}", headers=account("observer")).json()
    assert (told["status"], told["reasons"]) == ("quarantined", ["quarantined", "voter_burst"])


def _counted(conn: psycopg.Connection, sid: uuid.UUID) -> None:
    """What the pipeline makes of an honest ballot read as declared: verified, counted."""
    with conn.transaction():
        submissions.record_decision(conn, sid, Status.VERIFIED, [], ["tsikhanouskaya"], None)
        tallies.count_ballot(conn, ELECTION, "p1", ["tsikhanouskaya"], +1)


def test_a_flood_from_many_networks_at_a_station_leaves_its_honest_ballots_counted(
    conn: psycopg.Connection, loaded: str, quarantine: Configure
) -> None:
    # p1 has 1001 voters on its roll: 1% of it is 11 arrivals in the window. The
    # networks' own thresholds stay as configured: one arrival each crosses none.
    quarantine(quarantine_per_voter=0, quarantine_station_min=3, quarantine_station_share=0.01)
    networks = [ratelimit.network_key(b"k" * 32, f"10.{i}.0.1") for i in range(20)]
    # The honest backlog after a cut, each voter over their own network, read and counted.
    honest = [_arrive(conn, at=T0 + i, network=networks[i]) for i in range(8)]
    for sid in honest:
        _counted(conn, sid)
    # In the same ten minutes, a flood from many networks crosses the station's threshold.
    flood = [_arrive(conn, at=T0 + 60 + i, network=networks[8 + i]) for i in range(12)]
    assert _held(conn, flood) == [[]] * 3 + [[Reason.STATION_BURST]] * 9
    # The honest ballots are neither held nor taken out of the count.
    assert _held(conn, honest) == [[]] * 8
    statuses = [submissions.get_status(conn, sid) for sid in honest]
    assert [s.status if s else None for s in statuses] == [Status.VERIFIED] * 8
    votes, voters = tallies.station_photo_tally(conn, ELECTION, "p1")
    assert votes == {"tsikhanouskaya": 8} and voters == 8
    # Nothing lists a station's arrivals: only a network's group is judged whole.
    listed = conn.execute(
        "SELECT count(*) FROM burst_arrivals WHERE group_key = %s",
        (abuse.station_key(ELECTION, "p1"),),
    ).fetchone()
    assert listed == (0,)


def test_a_networks_burst_holds_its_earlier_members_once_and_then_only_each_new_arrival(
    conn: psycopg.Connection, loaded: str, quarantine: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    quarantine(
        quarantine_per_network_station=2, quarantine_network_station_share=0, quarantine_per_voter=0
    )
    locked: list[int] = []
    lock_submissions = submissions.lock_submissions

    def counting(conn: psycopg.Connection, ids: list[uuid.UUID]) -> list:
        locked.append(len(ids))
        return lock_submissions(conn, ids)

    monkeypatch.setattr(submissions, "lock_submissions", counting)
    first = _arrive(conn, at=T0)
    _counted(conn, first)  # read and counted before the burst showed
    rest = [_arrive(conn, at=T0 + i) for i in range(1, 8)]
    # The crossing (the third arrival) holds the three; each later one only itself.
    assert locked == [3, 1, 1, 1, 1, 1]
    assert _held(conn, [first, *rest]) == [[Reason.NETWORK_BURST]] * 8
    # The counted one was taken out of the tally once, not once per later arrival.
    found = submissions.get_status(conn, first)
    assert found is not None and found.status is Status.QUARANTINED
    votes, voters = tallies.station_photo_tally(conn, ELECTION, "p1")
    assert votes.get("tsikhanouskaya", 0) == 0 and voters == 0


class _Probe:
    """The photo store, noting at each write whether another transaction could take
    the quarantine's station counter row at that moment (none waits on the write)."""

    def __init__(self, store: PhotoStore, database: str) -> None:
        self.store, self.database = store, database
        self.free: list[bool] = []

    def put(self, data: bytes, sha256: str | None = None) -> str:
        with psycopg.connect(self.database) as other:
            try:
                rows = other.execute(
                    "SELECT 1 FROM rate_limits WHERE scope = %s FOR UPDATE NOWAIT",
                    (abuse.STATION_SCOPE,),
                ).fetchall()
                self.free.append(bool(rows))
            except psycopg.errors.LockNotAvailable:
                self.free.append(False)
        return self.store.put(data, sha256=sha256)

    def get(self, key: str) -> bytes:
        return self.store.get(key)

    def exists(self, key: str) -> bool:
        return self.store.exists(key)


def test_an_uploads_photo_is_written_before_the_quarantines_counters_are_locked(
    app: FastAPI,
    conn: psycopg.Connection,
    database: str,
    submit: Callable,
    ballot_photo: Callable,
) -> None:
    probe = _Probe(photo_store(get_settings()), database)
    app.dependency_overrides[store_dep] = lambda: probe  # cleared by the fixture
    for seed in (41, 42):
        assert submit(ballot_photo(["tsikhanouskaya"], seed=seed)).status_code == 202
    # The first write found no counter yet; the second found the station's, and free
    # (before, the upload held it across its own write).
    assert probe.free == [False, True]


def test_an_uploads_transaction_waits_on_no_lock_longer_than_its_lock_timeout(
    conn: psycopg.Connection, loaded: str
) -> None:
    sid = uuid.uuid4()
    with conn.transaction():
        # The upload's first statement sets it for its own transaction only.
        locked, inserted = submissions.insert_received(
            conn, sid, ELECTION, "p1", ["tsikhanouskaya"], "d", "photo", b"v" * 32, None
        )
        assert (locked, inserted) == (True, True)
        assert conn.execute("SHOW lock_timeout").fetchone() == ("2s",)
    assert conn.execute("SHOW lock_timeout").fetchone() != ("2s",)


def test_a_senders_view_never_shows_a_holds_reasons() -> None:
    from api.submissions.schemas import SubmissionStatus
    from api.submissions.service import as_sender_sees

    def status(state: Status, reasons: list[str]) -> SubmissionStatus:
        return SubmissionStatus(
            submission_id=uuid.uuid4(),
            election_id=ELECTION,
            precinct_id="p1",
            status=state,
            reasons=reasons,
            marks=None,
        )

    held = as_sender_sees(status(Status.QUARANTINED, ["quarantined", "network_burst"]))
    assert (held.status, held.reasons) == (Status.REVIEW, [])
    # Held, and in review for a reason of its own: only that reason is told.
    mixed = as_sender_sees(status(Status.REVIEW, ["unreadable", "voter_burst"]))
    assert (mixed.status, mixed.reasons) == (Status.REVIEW, ["unreadable"])
    plain = status(Status.REJECTED, ["blank"])
    assert as_sender_sees(plain) == plain
