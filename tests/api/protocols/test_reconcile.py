"""A station's sources reconciled: the imported file and each protocol photo agree
and confirm each other, or disagree and raise ``conflicting_protocols`` with the
numbers and their sources; through the real database and app."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from fastapi.testclient import TestClient

from api.protocols import service
from tally.vocab import Flag
from tests.api.protocols.conftest import ELECTION, GOOD, MakePhoto

Account = Callable[..., dict[str, str]]
OTHER = {**GOOD, "lukashenko": 250, "tsikhanouskaya": 51}


def protocol_of(client: TestClient, who: dict[str, str], precinct: str) -> dict[str, object]:
    answer = client.get(f"/v1/elections/{ELECTION}/stations/{precinct}/protocol", headers=who)
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_a_photo_that_agrees_with_the_file_confirms_every_figure_with_both_sources(
    client: TestClient, account: Account, read_photo: MakePhoto
) -> None:
    photo_id = read_photo(GOOD)
    protocol = protocol_of(client, account("analyst"), "p1")
    assert protocol["conflict"] is False and protocol["photos"] == 1
    figures = {f["field_id"]: f for f in protocol["figures"]}  # type: ignore[attr-defined]
    assert {f: figures[f]["value"] for f in GOOD} == GOOD
    for field in GOOD:
        assert figures[field]["status"] == "confirmed"
        assert figures[field]["sources"] == [
            {"kind": "file", "value": GOOD[field], "photo_id": None, "transcribers": 0},
            {"kind": "machine", "value": GOOD[field], "photo_id": str(photo_id), "transcribers": 0},
        ]
    assert figures["lukashenko"]["label"] == "7. Lukashenko"


def test_two_photos_of_different_protocols_raise_conflicting_protocols(
    conn: psycopg.Connection, client: TestClient, account: Account, read_photo: MakePhoto
) -> None:
    first = read_photo(GOOD, precinct="p3")  # p3 has no row in the file
    second = read_photo(OTHER, precinct="p3")
    protocol = protocol_of(client, account("analyst"), "p3")
    assert protocol["conflict"] is True
    assert protocol["conflicting_fields"] == ["lukashenko", "tsikhanouskaya"]
    assert protocol["different_protocols"] == [[f"photo:{first}", f"photo:{second}"]]
    (finding,) = service.conflict_findings(conn, ELECTION)
    assert finding.precinct_id == "p3" and finding.flag is Flag.CONFLICTING_PROTOCOLS
    assert f"300 (photo {str(first)[:8]}, machine reading)" in finding.detail
    assert f"250 (photo {str(second)[:8]}, machine reading)" in finding.detail
    assert "two different protocols (2 fields differ)" in finding.detail


def test_a_photo_that_contradicts_the_file_is_a_conflict_not_a_correction(
    conn: psycopg.Connection, client: TestClient, account: Account, read_photo: MakePhoto
) -> None:
    read_photo({**GOOD, "lukashenko": 200, "invalid": 105})
    protocol = protocol_of(client, account("admin"), "p1")
    figures = {f["field_id"]: f for f in protocol["figures"]}  # type: ignore[attr-defined]
    assert figures["lukashenko"]["value"] is None
    assert figures["lukashenko"]["status"] == "conflict"
    assert [s["value"] for s in figures["lukashenko"]["sources"]] == [300, 200]
    (finding,) = service.conflict_findings(conn, ELECTION)
    assert "lukashenko: 300 (the imported file), 200 (photo" in finding.detail


def test_photos_that_agree_with_each_other_confirm_a_station_without_a_file(
    conn: psycopg.Connection, client: TestClient, account: Account, read_photo: MakePhoto
) -> None:
    read_photo(GOOD, precinct="p3")
    read_photo(GOOD, precinct="p3")
    protocol = protocol_of(client, account("analyst"), "p3")
    assert protocol["conflict"] is False and protocol["photos"] == 2
    assert {f["status"] for f in protocol["figures"]} == {"confirmed"}  # type: ignore[attr-defined]
    assert service.conflict_findings(conn, ELECTION) == []


def test_fields_still_with_people_are_pending_and_no_conflict(
    conn: psycopg.Connection, client: TestClient, account: Account, read_photo: MakePhoto
) -> None:
    read_photo({**GOOD, "invalid": None}, precinct="p3")
    protocol = protocol_of(client, account("analyst"), "p3")
    figures = {f["field_id"]: f for f in protocol["figures"]}  # type: ignore[attr-defined]
    assert figures["invalid"]["status"] == "pending" and figures["invalid"]["pending_photos"] == 1
    assert figures["lukashenko"]["status"] == "single"
    assert service.conflict_findings(conn, ELECTION) == []


def test_an_unknown_station_is_not_found(client: TestClient, account: Account) -> None:
    answer = client.get(
        f"/v1/elections/{ELECTION}/stations/p999/protocol", headers=account("analyst")
    )
    assert answer.status_code == 404 and answer.json()["detail"]["field"] == "precinct_id"


def test_each_stations_provenance_is_listed_for_the_reports(
    conn: psycopg.Connection, read_photo: MakePhoto
) -> None:
    read_photo(GOOD)  # p1: agrees with the file
    read_photo(OTHER, precinct="p3")  # p3: no file row
    assert service.provenances(conn, ELECTION) == {
        "p1": "file + 1 photo",
        "p2": "file",
        "p3": "1 photo",
    }
