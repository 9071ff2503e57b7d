"""The public pages: national and regional figures, stations with proof, a page per
station, the map; aggregates only."""

from __future__ import annotations

import asyncio
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from api.public import service
from api.public.schemas import StationStatus
from api.worker import run_worker

Known = Any  # tests/api/public/conftest.py's Known

SVG = "{http://www.w3.org/2000/svg}"


def test_the_front_page_shows_the_latest_election(client: TestClient, two_regions: str) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "Two regions test election" in page.text
    # The older election is one click away, and has its own page.
    assert 'href="/elections/by-2020-president"' in page.text
    older = client.get("/elections/by-2020-president")
    assert "Presidential election, Republic of Belarus" in older.text


def test_national_figures_are_the_sums_of_the_regions(
    conn: psycopg.Connection, two_regions: str, known: Known
) -> None:
    overview = service.overview(conn, two_regions)
    national = {o.option_id: (o.official, o.crowd) for o in overview.national.options}
    assert national == {
        "alpha": (sum(a for a, _ in known.official.values()), known.photos["a-1", "alpha"]),
        "beta": (sum(b for _, b in known.official.values()), known.photos["b-3", "beta"]),
    }
    for option in ("alpha", "beta"):
        by_region = [
            next(o for o in r.figures.options if o.option_id == option) for r in overview.regions
        ]
        assert sum(o.official for o in by_region) == national[option][0]
        assert sum(o.crowd for o in by_region) == national[option][1]
    assert [r.region for r in overview.regions] == ["Region A", "Region B"]
    region_a = overview.regions[0].figures
    assert (region_a.stations, region_a.stations_with_official, region_a.official_total) == (
        3,
        3,
        10 + 90 + 40 + 50 + 5 + 5,
    )
    alpha = overview.national.options[0]
    assert alpha.official_share == 125 / 290 and alpha.crowd_share == 30 / 32
    assert overview.national.by_status == {
        StationStatus.PROOF: 1,
        StationStatus.STATISTICAL: 1,
        StationStatus.CLEAN: 2,
        StationStatus.NODATA: 2,
    }
    assert sum(r.figures.stations for r in overview.regions) == overview.national.stations == 6


def test_the_results_page_shows_each_regions_figures_and_links_its_page(
    client: TestClient, two_regions: str
) -> None:
    text = client.get(f"/elections/{two_regions}").text
    assert f'href="/elections/{two_regions}/regions/Region%20A"' in text
    region_b = text[text.index('data-region="Region B"') :].split("</tr>")[0]
    assert 'data-option="alpha" data-official="70"' in region_b
    assert 'data-option="beta" data-crowd="2"' in region_b


def test_stations_with_standing_proof_are_listed(
    conn: psycopg.Connection, client: TestClient, two_regions: str
) -> None:
    overview = service.overview(conn, two_regions)
    assert [(s.precinct_id, s.proof_flags) for s in overview.proof_stations] == [
        ("a-1", ("crowd_exceeds_official",))
    ]
    text = client.get(f"/elections/{two_regions}").text
    listed = text[text.index('class="proof-list"') :].split("</table>")[0]
    assert f'href="/elections/{two_regions}/stations/a-1"' in listed
    assert "stations/b-1" not in listed  # its proof flag was dismissed
    assert "Verified crowd votes for an option above the official votes for it" in listed


def test_a_stations_status_comes_from_its_protocol_and_standing_flags(
    conn: psycopg.Connection, two_regions: str, known: Known
) -> None:
    assert service.statuses(conn, two_regions) == dict(known.status)


def test_a_region_page_lists_its_stations_with_their_status(
    client: TestClient, two_regions: str, known: Known
) -> None:
    text = client.get(f"/elections/{two_regions}/regions/Region B").text
    rows = re.findall(r'<tr data-status="(\w+)">\s*<td><a href="[^"]*/stations/([\w-]+)"', text)
    assert rows == [(known.status[p], p) for p in ("b-1", "b-2", "b-3")]
    assert "Brest, Gogol street 70" in text
    assert client.get(f"/elections/{two_regions}/regions/Nowhere").status_code == 404


def test_a_station_page_shows_the_protocol_the_crowd_per_source_and_the_flags(
    client: TestClient, two_regions: str, known: Known
) -> None:
    text = client.get(f"/elections/{two_regions}/stations/a-1").text
    assert "Minsk, Lenin street 1" in text
    for line, value in [("registered", 200), ("ballots_cast", 105), ("invalid", 5)]:
        assert f'data-line="{line}">{value}<' in text
    assert 'data-line="ballots_cancelled">—<' in text  # not in the file: shown as unknown
    assert 'data-option="alpha">10<' in text and 'data-option="beta">90<' in text
    # The platform's verified photos and the imported source, each with its counts.
    assert 'data-source="photos" data-option="alpha">30<' in text
    assert 'data-source="partner" data-option="alpha">25<' in text
    assert 'data-source="partner" data-option="beta">3<' in text
    # Each flag with its kind, detail and review status.
    assert "photos: 30 verified votes for alpha, the protocol says 10" in text
    assert (
        'class="review open"' in text
        and '<span class="badge proof">Proof of a false count</span>' in text
    )

    dismissed = client.get(f"/elections/{two_regions}/stations/b-1").text
    assert dismissed.count('class="review dismissed"') == 2
    assert '<span class="badge clean">Clean</span>' in dismissed

    nodata = client.get(f"/elections/{two_regions}/stations/b-2").text
    assert "The official protocol of this station is not known." in nodata
    assert "No crowd count for this station yet." in nodata


def test_a_station_page_shows_no_photo_no_voter_and_no_submission(
    conn: psycopg.Connection,
    client: TestClient,
    submit: Callable,
    ballot_photo: Callable,
) -> None:
    sid = str(uuid.uuid4())
    sent = submit(ballot_photo(["tsikhanouskaya"], seed=70), precinct="p1", sid=sid)
    assert sent.is_success, sent.text
    asyncio.run(run_worker(wait=False))  # read and counted
    row = conn.execute(
        "SELECT status, photo_sha256 FROM submissions WHERE id = %s", (sid,)
    ).fetchone()
    assert row is not None and row[0] == "verified"
    for url in (
        "/",
        "/elections/by-2020-president/stations/p1",
        "/elections/by-2020-president/map",
    ):
        text = client.get(url).text
        assert sid not in text and row[1] not in text
        assert "<img" not in text and "/photos/" not in text and "+37533" not in text
    text = client.get("/elections/by-2020-president/stations/p1").text
    assert 'data-source="photos" data-option="tsikhanouskaya">1<' in text


def test_unknown_elections_and_stations_are_404(client: TestClient) -> None:
    assert client.get("/elections/nowhere").status_code == 404
    assert client.get("/elections/nowhere/map").status_code == 404
    assert client.get("/elections/by-2020-president/stations/p9").status_code == 404
    assert client.get("/v1/elections/nowhere/stations?q=1").status_code == 404


def _svg(text: str) -> ET.Element:
    start, end = (
        text.index('<svg class="station-map"'),
        text.index("</svg>", text.index("<svg class")),
    )
    return ET.fromstring(text[start : end + len("</svg>")])


def test_the_map_links_every_station_with_coordinates_coloured_by_status(
    client: TestClient, two_regions: str, known: Known
) -> None:
    page = client.get(f"/elections/{two_regions}/map")
    assert page.status_code == 200
    svg = _svg(page.text)
    placed = {pid for pid, *_, lat, _lon in known.stations if lat}
    links: dict[str, str] = {}
    for group in svg.iter(f"{SVG}g"):
        status = group.attrib["class"].removeprefix("s-")
        for link in group.iter(f"{SVG}a"):
            pid = link.attrib["href"].removeprefix("stations/")
            assert pid not in links  # one link per station
            links[pid] = status
            assert link.attrib["aria-label"].endswith(
                {"proof": "Proven falsification", "statistical": "Statistical flag only",
                 "clean": "Clean", "nodata": "No data"}[status]
            )  # fmt: skip
            assert len(list(link.iter(f"{SVG}circle"))) == 1
    assert links == {pid: known.status[pid] for pid in placed}
    # The links resolve to the station pages; the strongest status is drawn last (on top).
    assert client.get(f"/elections/{two_regions}/stations/a-1").status_code == 200
    assert [g.attrib["class"] for g in svg.iter(f"{SVG}g")] == [
        "s-nodata", "s-clean", "s-statistical", "s-proof"
    ]  # fmt: skip
    # The legend counts the stations drawn; the one without coordinates is told apart.
    counts = dict(re.findall(r'data-status="(\w+)">(\d+)<', page.text))
    assert counts == {"proof": "1", "statistical": "1", "clean": "1", "nodata": "2"}
    assert "1 stations have no known coordinates" in page.text
    # Nothing is loaded from anywhere: no tile server, no script but the site's own.
    assert "http://" not in page.text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page.text


def test_the_map_is_sent_compressed_to_browsers_that_accept_it(
    client: TestClient, two_regions: str
) -> None:
    answer = client.get(f"/elections/{two_regions}/map", headers={"Accept-Encoding": "gzip"})
    assert answer.headers["content-encoding"] == "gzip"
    assert "<svg" in answer.text  # the client unpacks it
    plain = client.get(f"/elections/{two_regions}/map", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and "<svg" in plain.text


def test_a_regions_map_shows_its_stations_only(client: TestClient, two_regions: str) -> None:
    svg = _svg(client.get(f"/elections/{two_regions}/map?region=Region B").text)
    hrefs = sorted(a.attrib["href"] for a in svg.iter(f"{SVG}a"))
    assert hrefs == ["stations/b-1", "stations/b-2", "stations/b-3"]
    assert client.get(f"/elections/{two_regions}/map?region=Nowhere").status_code == 404


def test_the_map_address_opens_the_latest_elections_map(
    client: TestClient, two_regions: str
) -> None:
    answer = client.get("/map", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/elections/{two_regions}/map"


def test_pages_speak_russian_and_belarusian(client: TestClient, two_regions: str) -> None:
    for lang, word in (("ru", "Карта участков"), ("be", "Карта ўчасткаў")):
        text = client.get(f"/elections/{two_regions}/map?lang={lang}").text
        assert f'<html lang="{lang}">' in text and word in text
        station = client.get(f"/elections/{two_regions}/stations/a-1?lang={lang}").text
        assert "Official protocol" not in station and "Flags" not in station
