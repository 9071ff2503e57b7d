"""The analysts' query API: precincts and flags, filtered, in keyset pages."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.public import service as public
from tally import repository as tallies

MINSK = "Минская городская"


def _all_pages(
    client: TestClient, url: str, headers: dict[str, str], **params: Any
) -> tuple[list[dict[str, Any]], int]:
    """Every item of a paginated answer, and how many pages it took."""
    items: list[dict[str, Any]] = []
    after: str | None = None
    pages = 0
    while True:
        query = {**params, **({"after": after} if after is not None else {})}
        answer = client.get(url, params=query, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items += body["items"]
        pages += 1
        after = body["next"]
        if after is None:
            return items, pages
        assert len(body["items"]) == params["limit"]


def test_paging_through_the_precincts_sees_every_station_once(
    conn: psycopg.Connection, seeded_client: TestClient, seeded: str, account: Callable
) -> None:
    analyst = account("analyst")
    items, pages = _all_pages(
        seeded_client, f"/v1/elections/{seeded}/precincts", analyst, limit=700
    )
    ids = [i["id"] for i in items]
    assert len(ids) == len(set(ids)) == 5767 and pages == 9
    assert ids == sorted(ids)
    statuses = public.statuses(conn, seeded)
    assert {i["id"]: i["status"] for i in items} == statuses
    first = next(i for i in items if i["id"] == "01-010-0001")
    assert first["address"] == "г.Брест, ул.Гоголя, 7"
    assert (first["latitude"], first["longitude"]) == (52.0895, 23.6806)
    assert first["photos"] == {"tsikhanouskaya": 1} and first["photo_voters"] == 1
    with_protocol = [i for i in items if i["official"] is not None]
    assert len(with_protocol) == 1310
    assert {"registered", "ballots_cast", "lukashenko"} <= set(with_protocol[0]["official"])


def test_precinct_filters_narrow_the_stations(
    conn: psycopg.Connection, seeded_client: TestClient, seeded: str, account: Callable
) -> None:
    analyst = account("analyst")
    url = f"/v1/elections/{seeded}/precincts"
    statuses = public.statuses(conn, seeded)
    by_status = Counter(statuses.values())
    assert by_status["proof"] > 0 and by_status["statistical"] > 0
    for status, count in by_status.items():
        items, _ = _all_pages(seeded_client, url, analyst, status=status, limit=1000)
        assert {i["status"] for i in items} == {status}
        assert len(items) == count
    minsk, _ = _all_pages(seeded_client, url, analyst, region=MINSK, limit=1000)
    assert len(minsk) == 731 and {i["region"] for i in minsk} == {MINSK}
    district = minsk[0]["district"]
    both, _ = _all_pages(
        seeded_client, url, analyst, region=MINSK, district=district, status="nodata", limit=50
    )
    assert both and all(
        (i["region"], i["district"], i["status"]) == (MINSK, district, "nodata") for i in both
    )


def test_paging_through_the_flags_sees_every_flag_once(
    conn: psycopg.Connection, seeded_client: TestClient, seeded: str, account: Callable
) -> None:
    analyst = account("analyst")
    items, pages = _all_pages(seeded_client, f"/v1/elections/{seeded}/flags", analyst, limit=200)
    stored = tallies.flag_rows(conn, seeded)
    assert len(items) == len({i["id"] for i in items}) == len(stored) and pages > 1
    assert Counter((i["precinct_id"], i["flag"], i["option"], i["source"]) for i in items) == (
        Counter((f.precinct_id, f.flag, f.option, f.source) for f in stored)
    )
    assert all(i["region"] and i["district"] for i in items)


def test_flag_filters_narrow_the_flags(
    conn: psycopg.Connection, seeded_client: TestClient, seeded: str, account: Callable
) -> None:
    admin = account("admin")
    url = f"/v1/elections/{seeded}/flags"
    stored = tallies.flag_rows(conn, seeded)
    proof, _ = _all_pages(seeded_client, url, admin, kind="proof", limit=1000)
    assert len(proof) == sum(f.kind == "proof" for f in stored) > 0
    assert {i["kind"] for i in proof} == {"proof"}
    arithmetic, _ = _all_pages(
        seeded_client, url, admin, flag="protocol_arithmetic", review_status="open", limit=1000
    )
    assert len(arithmetic) == sum(f.flag == "protocol_arithmetic" for f in stored) > 0
    minsk, _ = _all_pages(seeded_client, url, admin, region=MINSK, kind="statistical", limit=1000)
    assert minsk and {(i["region"], i["kind"]) for i in minsk} == {(MINSK, "statistical")}
    none, _ = _all_pages(seeded_client, url, admin, review_status="dismissed", limit=10)
    assert none == []


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("precincts", {"status": "dirty"}, "status"),
        ("precincts", {"region": "Nowhere"}, "region"),
        ("precincts", {"region": MINSK, "district": "Nowhere"}, "district"),
        ("precincts", {"limit": 0}, "limit"),
        ("precincts", {"limit": 5000}, "limit"),
        ("flags", {"flag": "crowd_exceeds"}, "flag"),
        ("flags", {"kind": "signal"}, "kind"),
        ("flags", {"review_status": "maybe"}, "review_status"),
        ("flags", {"district": "Nowhere"}, "district"),
        ("flags", {"after": "abc"}, "after"),
    ],
)
def test_a_bad_filter_is_refused_naming_it(
    seeded_client: TestClient,
    seeded: str,
    account: Callable,
    path: str,
    params: dict[str, Any],
    field: str,
) -> None:
    answer = seeded_client.get(
        f"/v1/elections/{seeded}/{path}", params=params, headers=account("analyst")
    )
    assert answer.status_code == 422
    assert answer.json()["detail"]["field"] == field


def test_the_query_api_is_for_analysts_and_admins(
    seeded_client: TestClient, seeded: str, account: Callable
) -> None:
    for path in ("precincts", "flags"):
        url = f"/v1/elections/{seeded}/{path}?limit=1"
        assert seeded_client.get(url).status_code == 401
        assert seeded_client.get(url, headers=account("observer")).status_code == 403
        assert seeded_client.get(url, headers=account("analyst")).status_code == 200
        assert seeded_client.get(url, headers=account("admin")).status_code == 200
        unknown = f"/v1/elections/nowhere/{path}"
        assert seeded_client.get(unknown, headers=account("analyst")).status_code == 404
