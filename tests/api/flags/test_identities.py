"""Proof flags say how many distinct verified identities stand behind them: computed
from distinct voter keys, stored with the flag, shown to reviewers, the analysts'
report and the flag's own sentence."""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from fastapi.testclient import TestClient

from api.flags.service import run_flags
from api.reports.service import write_election_report
from api.submissions import repository as submissions
from api.submissions.schemas import Status
from tally import repository as tallies
from tally.proof import crowd_exceeds_official
from tally.vocab import DISCREPANCY_COLUMNS, Flag, Source

ELECTION = "by-2020-president"
DRAWS = 50


def _verified(conn: psycopg.Connection, voter: bytes, option: str = "tsikhanouskaya") -> None:
    """A verified, counted submission at p1 from ``voter`` (as the pipeline leaves one)."""
    sid = uuid.uuid4()
    assert submissions.insert(
        conn, sid, ELECTION, "p1", [option], f"d-{sid}", f"photo-{sid}", voter
    )
    submissions.record_decision(
        conn, sid, Status.VERIFIED, [], [option], json.dumps({"verdict": "valid"})
    )
    tallies.count_ballot(conn, ELECTION, "p1", [option], +1)


def test_a_finding_carries_the_identities_behind_it_and_says_so() -> None:
    crowd = {("p1", "a"): 3, ("p2", "a"): 5}
    official = {("p1", "a"): 1, ("p2", "a"): 1}
    [p1, p2] = crowd_exceeds_official(crowd, official, identities={("p1", "a"): 3})
    assert (p1.identities, p2.identities) == (3, 0)
    assert "3 verified ballots from 3 distinct verified voters for a at p1" in p1.detail
    # An imported source's counts have no identities the platform knows of.
    [imported] = crowd_exceeds_official({("p1", "a"): 3}, official, "partner")
    assert imported.identities is None and "distinct" not in imported.detail


def test_no_minimum_beyond_the_excess_a_single_proven_vote_above_the_protocol_flags() -> None:
    [finding] = crowd_exceeds_official(
        {("p1", "a"): 1}, {("p1", "a"): 0}, identities={("p1", "a"): 1}
    )
    assert (finding.crowd, finding.official, finding.identities) == (1, 0, 1)


def test_the_flag_stage_counts_distinct_voter_keys_not_ballots(
    conn: psycopg.Connection, loaded: str, tmp_path: Path
) -> None:
    # Three counted ballots for her at p1 (the protocol gives her 1), but two come from
    # one voter key: only two distinct identities stand behind the three.
    _verified(conn, b"a" * 32)
    _verified(conn, b"a" * 32)
    _verified(conn, b"b" * 32)
    _verified(conn, b"c" * 32, option="lukashenko")
    conn.commit()
    run_flags(conn, ELECTION, draws=DRAWS)
    conn.commit()
    [row] = [
        r
        for r in tallies.flag_rows(conn, ELECTION)
        if (r.precinct_id, r.flag, r.source) == ("p1", Flag.CROWD_EXCEEDS_OFFICIAL, Source.PHOTOS)
    ]
    assert (row.crowd, row.official, row.identities) == (3, 1, 2)
    assert "from 2 distinct verified voters" in row.detail

    write_election_report(conn, ELECTION, tmp_path)
    with open(tmp_path / "discrepancies.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == DISCREPANCY_COLUMNS and DISCREPANCY_COLUMNS[-1] == "identities"
    proof = [r for r in rows if r["flag"] == Flag.CROWD_EXCEEDS_OFFICIAL]
    assert [(r["crowd"], r["official"], r["identities"]) for r in proof] == [("3", "1", "2")]


def test_the_identities_change_the_flag_and_reopen_its_review(
    conn: psycopg.Connection, loaded: str
) -> None:
    _verified(conn, b"a" * 32)
    _verified(conn, b"a" * 32)
    conn.commit()
    run_flags(conn, ELECTION, draws=DRAWS)
    conn.execute("UPDATE flags SET review_status = 'confirmed' WHERE precinct_id = 'p1'")
    conn.commit()
    # The same count from more identities is other evidence: open again.
    conn.execute(
        "UPDATE submissions SET voter_key = %s WHERE seq = (SELECT max(seq) FROM submissions)",
        (b"b" * 32,),
    )
    run_flags(conn, ELECTION, draws=DRAWS)
    conn.commit()
    [row] = [r for r in tallies.flag_rows(conn, ELECTION) if r.precinct_id == "p1"]
    assert (row.crowd, row.identities, row.review_status) == (2, 2, "open")


def test_reviewers_see_the_identities_behind_a_proof_flag(
    conn: psycopg.Connection,
    client: TestClient,
    account: Callable[..., dict[str, str]],
) -> None:
    for voter in (b"a" * 32, b"b" * 32, b"c" * 32):
        _verified(conn, voter)
    conn.commit()
    run_flags(conn, ELECTION, draws=DRAWS)
    conn.commit()
    observer = account("observer")
    queue = client.get("/v1/review/flags", params={"kind": "proof"}, headers=observer).json()
    [item] = [i for i in queue["items"] if i["flag"] == Flag.CROWD_EXCEEDS_OFFICIAL]
    assert (item["crowd"], item["official"], item["identities"]) == (3, 1, 3)
    page = client.get("/review/flags", params={"lang": "en"}, headers=observer)
    assert "Distinct verified voters" in page.text
    station = client.get(f"/review/stations/{ELECTION}/p1", params={"lang": "en"}, headers=observer)
    assert "distinct verified voters 3" in station.text
