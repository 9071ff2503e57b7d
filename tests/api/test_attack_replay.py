"""The attack of issue 11, replayed: a forger tries to prove a falsification at an
honest station with twelve photos made by the project's own ballot generator
(seeds/photos.py, through the ``ballot_photo`` fixture).

At p3 the official protocol gives tsikhanouskaya 3 votes, and that is the truth.
Twelve photos for her would be a ``crowd_exceeds_official`` proof flag against
the station. Sent with invented voter ids and no token, they are refused; sent by
twelve freshly verified phones from one network in a burst, they are quarantined
and none counts; either way the worker and the flag stage find no proof. Honest
voters spread over networks are counted as before and do prove what they see, and
the same burst with the quarantine turned off would have been proof: the test can
fail. Nor can the other side take that honest proof out of the count: a flood of
photos over many networks at the station, after the honest ones, crosses the
station's threshold and is held beyond it, while the honest ballots stay counted.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.elections.service import import_official
from api.flags.service import run_flags
from api.submissions import abuse
from api.voters.verifiers import dev_code
from api.worker import run_worker
from infra.settings import get_settings
from tally import repository as tallies
from tally.vocab import Flag, Source

ELECTION = "by-2020-president"
STATION = "p3"
CANDIDATE = "tsikhanouskaya"
OFFICIAL = 3  # the protocol's (true) figure for the candidate at the station
PHOTOS = 12
DRAWS = 50


@pytest.fixture
def honest_station(
    conn: psycopg.Connection, client: TestClient, make_official: Callable[..., str]
) -> str:
    """The test election with p3's protocol: 3 votes for the candidate (the truth)."""
    csv = make_official(
        {
            "p1": {"lukashenko": 300, CANDIDATE: 1},
            "p2": {CANDIDATE: 200},
            STATION: {"lukashenko": 700, CANDIDATE: OFFICIAL, "against_all": 40},
        }
    )
    import_official(conn, ELECTION, csv.encode(), "official.csv")
    conn.commit()
    return STATION


@pytest.fixture
def photos(ballot_photo: Callable[..., bytes]) -> list[bytes]:
    """Twelve different photos of ballots marked for the candidate."""
    return [ballot_photo([CANDIDATE], seed=1000 + i) for i in range(PHOTOS)]


def _verify(client: TestClient, phone: str) -> str:
    """A phone verified through the API, as a forger's SIM card would be: its token."""
    asked = client.post(f"/v1/elections/{ELECTION}/verification", json={"phone": phone})
    assert asked.status_code == 202, asked.text
    challenge = asked.json()["challenge_id"]
    code = dev_code(get_settings().dev_codes_path, challenge)
    assert code is not None
    confirmed = client.post(
        f"/v1/elections/{ELECTION}/verification/{challenge}", json={"code": code}
    )
    assert confirmed.status_code == 200, confirmed.text
    return str(confirmed.json()["device_token"])


def _upload(client: TestClient, photo: bytes, headers: dict[str, str], **extra: str) -> int:
    data = {
        "election_id": ELECTION,
        "precinct_id": STATION,
        "declared_choice": CANDIDATE,
        "submission_id": str(uuid.uuid4()),
        **extra,
    }
    response = client.post(
        "/v1/submissions",
        data=data,
        files={"photo": ("ballot.jpg", photo, "image/jpeg")},
        headers=headers,
    )
    return response.status_code


def _worker_and_flags(conn: psycopg.Connection) -> dict[tuple[str, str, str], tuple[int, int]]:
    """Read every waiting photo, run the flag stage; the station's photo proof flags
    as {(flag, option, source): (crowd, identities)}."""
    asyncio.run(run_worker(wait=False))
    run_flags(conn, ELECTION, draws=DRAWS)
    conn.commit()
    return {
        (r.flag, r.option, r.source): (r.crowd, r.identities)
        for r in tallies.flag_rows(conn, ELECTION)
        if r.precinct_id == STATION and r.kind == "proof"
    }


def _statuses(conn: psycopg.Connection) -> list[tuple[str, list[str]]]:
    conn.commit()
    rows = conn.execute(
        "SELECT status, reasons FROM submissions WHERE precinct_id = %s ORDER BY seq", (STATION,)
    )
    return [(str(status), list(reasons)) for status, reasons in rows]


def _counted(conn: psycopg.Connection) -> dict[str, int]:
    votes, _ = tallies.station_photo_tally(conn, ELECTION, STATION)
    return votes


PROOF = (Flag.CROWD_EXCEEDS_OFFICIAL, CANDIDATE, Source.PHOTOS)


def test_invented_voter_ids_without_a_device_token_are_all_refused_and_prove_nothing(
    conn: psycopg.Connection, client: TestClient, honest_station: str, photos: list[bytes]
) -> None:
    codes = [
        _upload(client, photo, {}, voter_id=f"invented-voter-{i}") for i, photo in enumerate(photos)
    ]
    assert codes == [401] * PHOTOS
    assert _statuses(conn) == []
    assert _worker_and_flags(conn) == {}
    assert _counted(conn) == {}


def test_a_burst_of_freshly_verified_phones_from_one_network_is_quarantined_and_proves_nothing(
    conn: psycopg.Connection,
    client: TestClient,
    honest_station: str,
    photos: list[bytes],
    from_address: Callable[[str], None],
) -> None:
    from_address("198.51.100.23")  # one router, a stack of SIM cards
    tokens = [_verify(client, f"+37544{7000000 + i}") for i in range(PHOTOS)]
    sent = [_upload(client, photo, {"Authorization": f"Bearer {token}"}) for photo, token in
            zip(photos[:8], tokens[:8], strict=True)]  # fmt: skip
    # The worker reads the first eight before the rest arrive: they look like anyone's
    # and count for now.
    asyncio.run(run_worker(wait=False))
    assert _counted(conn) == {CANDIDATE: 8}
    sent += [_upload(client, photo, {"Authorization": f"Bearer {token}"}) for photo, token in
             zip(photos[8:], tokens[8:], strict=True)]  # fmt: skip
    assert sent == [202] * PHOTOS  # acknowledged: the forger learns nothing

    # Once the burst shows, the whole of it is held, the eight counted ones too.
    assert _worker_and_flags(conn) == {}
    statuses = _statuses(conn)
    assert [status for status, _ in statuses] == ["quarantined"] * PHOTOS, statuses
    assert all(reasons[:2] == ["quarantined", "network_burst"] for _, reasons in statuses)
    assert _counted(conn) == {}
    _, voters = tallies.station_photo_tally(conn, ELECTION, STATION)
    assert voters == 0


def test_the_same_burst_without_the_quarantine_would_have_been_proof(
    conn: psycopg.Connection,
    client: TestClient,
    honest_station: str,
    photos: list[bytes],
    from_address: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    off = get_settings().model_copy(update={"quarantine_per_network_station": 0})
    monkeypatch.setattr(abuse, "get_settings", lambda: off)
    from_address("198.51.100.23")
    tokens = [_verify(client, f"+37544{7000000 + i}") for i in range(PHOTOS)]
    for photo, token in zip(photos, tokens, strict=True):
        assert _upload(client, photo, {"Authorization": f"Bearer {token}"}) == 202
    assert _worker_and_flags(conn) == {PROOF: (PHOTOS, PHOTOS)}


def test_honest_voters_spread_over_networks_are_verified_counted_and_prove_what_they_saw(
    conn: psycopg.Connection,
    client: TestClient,
    honest_station: str,
    photos: list[bytes],
    from_address: Callable[[str], None],
) -> None:
    for i, photo in enumerate(photos):
        from_address(f"203.0.{i}.{10 + i}")  # each over their own carrier's network
        token = _verify(client, f"+37529{1000000 + i}")
        assert _upload(client, photo, {"Authorization": f"Bearer {token}"}) == 202
    flags = _worker_and_flags(conn)
    assert [status for status, _ in _statuses(conn)] == ["verified"] * PHOTOS
    assert _counted(conn) == {CANDIDATE: PHOTOS}
    # Twelve distinct verified voters stand behind the twelve ballots.
    assert flags == {PROOF: (PHOTOS, PHOTOS)}


def test_a_flood_over_many_networks_at_the_station_takes_no_honest_proof_out_of_the_count(
    conn: psycopg.Connection,
    client: TestClient,
    honest_station: str,
    photos: list[bytes],
    ballot_photo: Callable[..., bytes],
    from_address: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The station's threshold just above its honest crowd (at the defaults, a share of
    # its roll; the same, scaled down).
    tight = get_settings().model_copy(
        update={"quarantine_station_min": PHOTOS + 2, "quarantine_station_share": 0}
    )
    monkeypatch.setattr(abuse, "get_settings", lambda: tight)
    for i, photo in enumerate(photos):
        from_address(f"203.0.{i}.{10 + i}")
        token = _verify(client, f"+37529{1000000 + i}")
        assert _upload(client, photo, {"Authorization": f"Bearer {token}"}) == 202
    asyncio.run(run_worker(wait=False))
    assert _counted(conn) == {CANDIDATE: PHOTOS}
    # Then, in the same window, a flood for the other side, each photo over its own
    # network (verified numbers on many carriers).
    flood = [ballot_photo(["lukashenko"], seed=2000 + i) for i in range(8)]
    for i, photo in enumerate(flood):
        from_address(f"198.18.{i}.{20 + i}")
        token = _verify(client, f"+37544{8000000 + i}")
        headers = {"Authorization": f"Bearer {token}"}
        assert _upload(client, photo, headers, declared_choice="lukashenko") == 202
    flags = _worker_and_flags(conn)
    statuses = _statuses(conn)
    # Only the flood's arrivals beyond the threshold are held; the honest ballots,
    # counted before it, stay counted and still prove what their voters saw.
    within = PHOTOS + 2
    assert [s for s, _ in statuses] == ["verified"] * within + ["quarantined"] * 6, statuses
    assert all(r == ["quarantined", "station_burst"] for _, r in statuses[within:])
    assert _counted(conn) == {CANDIDATE: PHOTOS, "lukashenko": 2}
    assert flags == {PROOF: (PHOTOS, PHOTOS)}
