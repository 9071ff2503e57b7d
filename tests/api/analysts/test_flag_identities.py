"""The analysts' flag records carry how many distinct verified voters stand behind a
proof flag, as the flag sentence, the review pages and the CSV do."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from fastapi.testclient import TestClient

from tally import repository as tallies
from tally.proof import Finding
from tally.vocab import Flag, Source

ELECTION = "by-2020-president"


def test_a_proof_flag_record_says_how_many_voters_stand_behind_it(
    conn: psycopg.Connection, client: TestClient, account: Callable[..., dict[str, str]]
) -> None:
    tallies.store_flags(
        conn,
        ELECTION,
        [
            Finding(
                "p1",
                Flag.CROWD_EXCEEDS_OFFICIAL,
                "tsikhanouskaya",
                Source.PHOTOS,
                3,
                1,
                "3 > 1",
                identities=2,
            ),
            Finding(
                "p3",
                Flag.TURNOUT_OUTLIER,
                "",
                Source.PROTOCOL,
                None,
                None,
                "turnout 99%",
                statistic=4.0,
                p_value=0.001,
                q_value=0.02,
            ),
        ],
    )
    conn.commit()
    answer = client.get(f"/v1/elections/{ELECTION}/flags", headers=account("analyst"))
    assert answer.status_code == 200, answer.text
    by_flag = {item["flag"]: item for item in answer.json()["items"]}
    assert by_flag[Flag.CROWD_EXCEEDS_OFFICIAL]["identities"] == 2
    assert by_flag[Flag.CROWD_EXCEEDS_OFFICIAL]["crowd"] == 3
    assert by_flag[Flag.TURNOUT_OUTLIER]["identities"] is None
    schema = client.get("/openapi.json").json()["components"]["schemas"]["FlagRecord"]
    assert "identities" in schema["properties"]
