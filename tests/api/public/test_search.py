"""The voters' station search: by number, by words of the name or address."""

from __future__ import annotations

from fastapi.testclient import TestClient


def _ids(client: TestClient, election: str, q: str, **params: object) -> list[str]:
    answer = client.get(f"/v1/elections/{election}/stations", params={"q": q, **params})
    assert answer.status_code == 200, answer.text
    return [s["id"] for s in answer.json()]


def test_a_station_is_found_by_its_number(client: TestClient, two_regions: str) -> None:
    assert _ids(client, two_regions, "1") == ["a-1", "b-1"]  # № 1 of each district
    assert _ids(client, two_regions, "№12") == ["a-3"]
    assert _ids(client, two_regions, "№ 2") == ["a-2", "b-2"]
    # A number narrowed by a word: the town.
    assert _ids(client, two_regions, "Brest 1") == ["b-1"]


def test_a_station_is_found_by_its_address_or_name(client: TestClient, two_regions: str) -> None:
    assert _ids(client, two_regions, "gogol") == ["a-2", "b-1"]
    # A number also matches in the address ("Gogol street 7" and "... 70").
    assert _ids(client, two_regions, "Gogol 7") == ["a-2", "b-1"]
    assert _ids(client, two_regions, "main SQUARE") == ["b-2"]
    assert _ids(client, two_regions, "park lane") == ["a-3"]


def test_the_station_whose_id_is_the_query_comes_first(
    client: TestClient, two_regions: str
) -> None:
    assert _ids(client, two_regions, "b-1")[0] == "b-1"


def test_a_match_says_where_the_station_is(client: TestClient, two_regions: str) -> None:
    answer = client.get(f"/v1/elections/{two_regions}/stations", params={"q": "main square"})
    assert answer.json() == [
        {
            "id": "b-2",
            "name": "Station № 2",
            "address": "Brest, Main square",
            "region": "Region B",
            "district": "District B1",
        }
    ]


def test_like_wildcards_are_plain_characters(client: TestClient, two_regions: str) -> None:
    assert _ids(client, two_regions, "%") == []
    assert _ids(client, two_regions, "_") == []


def test_the_search_answers_a_limited_list(client: TestClient, two_regions: str) -> None:
    assert len(_ids(client, two_regions, "station", limit=2)) == 2
    for params, field in (
        ({"q": ""}, "q"),
        ({"q": " № "}, "q"),
        ({"q": "1", "limit": 0}, "limit"),
        ({"q": "1", "limit": 101}, "limit"),
        ({"q": "x" * 201}, "q"),
    ):
        answer = client.get(f"/v1/elections/{two_regions}/stations", params=params)
        assert answer.status_code == 422, params
        assert answer.json()["detail"]["field"] == field


def test_the_results_page_finds_stations_too(client: TestClient, two_regions: str) -> None:
    text = client.get(f"/elections/{two_regions}", params={"q": "main square"}).text
    found = text[text.index('id="found-title"') :].split("</section>")[0]
    assert f'href="/elections/{two_regions}/stations/b-2"' in found
    assert "No station matches." in client.get(f"/elections/{two_regions}?q=zzz").text
