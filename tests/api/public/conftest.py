"""A small election in two regions whose every figure is known: official protocols,
verified photo votes, an imported crowd source, and flags standing or dismissed."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

import psycopg
import pytest

from api.elections.crowd import import_crowd
from api.elections.service import load_election
from infra.settings import get_settings
from infra.storage import photo_store
from tally import repository as tallies
from tally.proof import Finding
from tally.vocab import Flag, ReviewStatus

TWO_REGIONS = "two-regions-2024"

# id, region, district, name, address, latitude, longitude
STATIONS = [
    ("a-1", "Region A", "District A1", "Station № 1", "Minsk, Lenin street 1", "53.90", "27.56"),
    ("a-2", "Region A", "District A1", "Station № 2", "Minsk, Gogol street 7", "53.91", "27.60"),
    ("a-3", "Region A", "District A2", "Station № 12", "Minsk, Park lane 3", "", ""),
    ("b-1", "Region B", "District B1", "Station № 1", "Brest, Gogol street 70", "52.09", "23.68"),
    ("b-2", "Region B", "District B1", "Station № 2", "Brest, Main square", "52.10", "23.70"),
    ("b-3", "Region B", "District B2", "Station № 3", "", "52.50", "24.00"),
]
# precinct: (alpha, beta); registered 200, invalid 5
OFFICIAL = {"a-1": (10, 90), "a-2": (40, 50), "a-3": (5, 5), "b-1": (70, 20)}
PHOTOS = {("a-1", "alpha"): 30, ("b-3", "beta"): 2}
PARTNER = {"a-1": (25, 3)}  # an imported verified crowd source, "partner"
EXPECTED_STATUS = {
    "a-1": "proof",
    "a-2": "statistical",
    "a-3": "clean",
    "b-1": "clean",  # its proof and statistical flags were dismissed
    "b-2": "nodata",
    "b-3": "nodata",
}
FLAGS = [
    Finding("a-1", Flag.CROWD_EXCEEDS_OFFICIAL, "alpha", "photos", 30, 10,
            "photos: 30 verified votes for alpha, the protocol says 10"),
    Finding("a-2", Flag.TURNOUT_OUTLIER, "", "protocol", None, None,
            "turnout 47.5 % against 30.1 % in the district", 4.2, 0.0001, 0.001),
    Finding("b-1", Flag.PROTOCOL_ARITHMETIC, "", "protocol", None, None,
            "ballots cast 95 != invalid 5 + votes 90"),
    Finding("b-1", Flag.INTEGER_PERCENT, "", "protocol", None, None,
            "turnout 47.0 %", 47.0, 0.01, 0.02),
]  # fmt: skip


def write_two_regions(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "election.json").write_text(
        json.dumps(
            {
                "format": "election/1",
                "id": TWO_REGIONS,
                "name": "Two regions test election",
                "date": "2024-05-01",
                "options": [{"id": "alpha", "label": "Alpha"}, {"id": "beta", "label": "Beta"}],
            }
        ),
        encoding="utf-8",
    )
    rows = ["precinct_id,region,district,name,registered,address,latitude,longitude"]
    rows += [
        f'{pid},{region},{district},{name},200,"{address}",{lat},{lon}'
        for pid, region, district, name, address, lat, lon in STATIONS
    ]
    (folder / "precincts.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    official = ["precinct_id,registered,ballots_issued,ballots_cast,invalid,alpha,beta"]
    official += [f"{pid},200,{a + b + 5},{a + b + 5},5,{a},{b}" for pid, (a, b) in OFFICIAL.items()]
    (folder / "official.csv").write_text("\n".join(official) + "\n", encoding="utf-8")
    return folder


class Known:
    """What the tests know of the two-region election."""

    id = TWO_REGIONS
    stations = tuple(STATIONS)
    official = MappingProxyType(OFFICIAL)
    photos = MappingProxyType(PHOTOS)
    status = MappingProxyType(EXPECTED_STATUS)


@pytest.fixture
def known() -> Known:
    return Known()


@pytest.fixture
def two_regions(conn: psycopg.Connection, loaded: str, tmp_path: Path) -> str:
    """The two-region election, loaded after (and dated later than) ``loaded``; its
    id (``known`` says what is in it)."""
    load_election(conn, write_two_regions(tmp_path / "two"), photo_store(get_settings()))
    for (precinct, option), votes in PHOTOS.items():
        for _ in range(votes):
            tallies.count_ballot(conn, TWO_REGIONS, precinct, [option], 1)
    partner = "precinct_id,source,alpha,beta\n" + "".join(
        f"{pid},partner,{a},{b}\n" for pid, (a, b) in PARTNER.items()
    )
    import_crowd(conn, TWO_REGIONS, partner.encode(), "partner.csv", "verified")
    tallies.store_flags(conn, TWO_REGIONS, FLAGS)
    conn.execute(
        "UPDATE flags SET review_status = %s WHERE election_id = %s AND precinct_id = 'b-1'",
        (str(ReviewStatus.DISMISSED), TWO_REGIONS),
    )
    conn.commit()
    return TWO_REGIONS
