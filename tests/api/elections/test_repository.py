"""The elections domain's reads, as other domains use them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from PIL import Image

from api.elections import repository
from api.elections.crowd import import_crowd
from api.elections.formats import FormatError
from api.elections.schemas import ElectionNotFound
from api.elections.service import load_election
from infra.storage import LocalPhotoStore
from tally.vocab import PROTOCOL_LINES, EvidenceLevel
from tests.api.protocols.conftest import PHOTO_SIZE, template_json

ELECTION = "by-2020-president"
OPTIONS = ["dmitriyev", "kanapatskaya", "lukashenko", "tsikhanouskaya", "charachen", "against_all"]
CROWD_HEADER = "precinct_id,source," + ",".join(OPTIONS)


@pytest.fixture
def election(
    conn: psycopg.Connection, election_dir: Path, tmp_path: Path, make_official: Callable
) -> str:
    (election_dir / "official.csv").write_text(
        make_official({"p2": {"lukashenko": 30}, "p1": {"tsikhanouskaya": 10}})
    )
    load_election(conn, election_dir, LocalPhotoStore(tmp_path / "photos"))
    conn.commit()
    return ELECTION


def test_unknown_election_has_no_options(conn: psycopg.Connection) -> None:
    with pytest.raises(ElectionNotFound, match="no election 'nowhere'"):
        repository.option_ids(conn, "nowhere")
    assert repository.option_labels(conn, "nowhere") == {}
    assert repository.find_election(conn, "nowhere") is None


def test_options_come_in_ballot_order(conn: psycopg.Connection, election: str) -> None:
    assert repository.option_ids(conn, election) == OPTIONS
    assert list(repository.option_labels(conn, election).items())[2] == ("lukashenko", "Lukashenko")


def test_precincts_are_ordered_by_id(conn: psycopg.Connection, election: str) -> None:
    precincts = repository.precincts(conn, election)
    assert [p.precinct_id for p in precincts] == ["p1", "p2", "p3"]
    assert precincts[0] == ("p1", "Region", "District 1", "Station 1")
    assert repository.precinct_ids(conn, election) == {"p1", "p2", "p3"}
    assert repository.precinct_exists(conn, election, "p2")
    assert not repository.precinct_exists(conn, election, "p9")
    assert not repository.precinct_exists(conn, "nowhere", "p2")


def test_a_precinct_without_a_name_is_named_empty(
    conn: psycopg.Connection, election_dir: Path, tmp_path: Path
) -> None:
    text = (election_dir / "precincts.csv").read_text().replace("Station 1", "")
    (election_dir / "precincts.csv").write_text(text)
    load_election(conn, election_dir, LocalPhotoStore(tmp_path / "photos"))
    assert repository.precincts(conn, ELECTION)[0].name == ""


def test_official_protocols_hold_every_line_and_the_votes(
    conn: psycopg.Connection, election: str
) -> None:
    protocols = repository.official_protocols(conn, election)
    assert set(protocols) == {"p1", "p2"}
    p1 = protocols["p1"]
    assert set(p1) == {*PROTOCOL_LINES, *OPTIONS}
    assert (p1["registered"], p1["ballots_cast"], p1["tsikhanouskaya"]) == (1000, 15, 10)
    assert p1["ballots_cancelled"] is None  # not in the file
    votes = repository.official_votes(conn, election)
    assert votes[("p2", "lukashenko")] == 30 and len(votes) == 2 * len(OPTIONS)


def test_ballot_template_and_its_marks(conn: psycopg.Connection, election: str) -> None:
    template = repository.ballot_template_json(conn, election)
    assert template is not None and template["election"] == election
    assert repository.max_marks(conn, election) == template["max_marks"]
    assert repository.protocol_template(conn, election) is None
    with pytest.raises(ElectionNotFound):
        repository.ballot_template_json(conn, "nowhere")
    assert repository.max_marks(conn, "nowhere") == 1


def test_an_election_without_a_ballot_template_but_a_protocol_template(
    conn: psycopg.Connection, election_dir: Path, tmp_path: Path
) -> None:
    shutil.rmtree(election_dir / "ballot")
    (election_dir / "protocol").mkdir()
    protocol = template_json()
    (election_dir / "protocol" / "template.json").write_text(json.dumps(protocol))
    Image.new("L", PHOTO_SIZE, 255).save(election_dir / "protocol" / "reference.png")
    store = LocalPhotoStore(tmp_path / "photos")
    load_election(conn, election_dir, store)
    assert repository.ballot_template_json(conn, ELECTION) is None
    assert repository.max_marks(conn, ELECTION) == 1
    stored = repository.stored_protocol_template(conn, ELECTION)
    assert stored.template is not None and stored.reference_sha256 is not None
    assert stored.template["fields"] == protocol["fields"]
    assert stored.template["checks"] == protocol["checks"]
    assert (
        store.get(stored.reference_sha256)
        == (election_dir / "protocol" / "reference.png").read_bytes()
    )
    assert repository.find_election(conn, ELECTION) is not None


def test_a_protocol_template_off_its_spec_is_refused_naming_the_field(
    conn: psycopg.Connection, election_dir: Path, tmp_path: Path
) -> None:
    (election_dir / "protocol").mkdir()
    protocol = template_json()
    protocol["fields"][0]["box"] = [5000, 10, 20, 20]  # outside the reference image
    (election_dir / "protocol" / "template.json").write_text(json.dumps(protocol))
    Image.new("L", PHOTO_SIZE, 255).save(election_dir / "protocol" / "reference.png")
    with pytest.raises(FormatError) as refused:
        load_election(conn, election_dir, LocalPhotoStore(tmp_path / "photos"))
    assert "protocol/template.json" in str(refused.value)
    assert "fields[0].box" in str(refused.value)
    assert repository.find_election(conn, ELECTION) is None  # nothing stored


def test_crowd_sources_and_their_current_imports(conn: psycopg.Connection, election: str) -> None:
    def csv(source: str, votes: str) -> bytes:
        return f"{CROWD_HEADER}\np1,{source},{votes}\n".encode()

    import_crowd(conn, election, csv("zeta", "1,,0,4,0,0"), "z.csv", "declared")
    import_crowd(conn, election, csv("alpha", "0,0,0,9,0,0"), "a.csv", "verified")
    import_crowd(conn, election, csv("alpha", "0,0,0,7,0,0"), "a2.csv", "verified")
    assert repository.current_crowd_imports(conn, election) == [
        ("alpha", EvidenceLevel.VERIFIED, 1),
        ("zeta", EvidenceLevel.DECLARED, 1),
    ]
    sources = repository.crowd_sources(conn, election)
    level, counts = sources["alpha"]
    assert level is EvidenceLevel.VERIFIED and counts[("p1", "tsikhanouskaya")] == 7
    # An empty cell is no count: it is absent, not zero.
    assert ("p1", "kanapatskaya") not in sources["zeta"][1]
    assert sources["zeta"][1][("p1", "dmitriyev")] == 1


def test_deleting_an_election_removes_all_its_rows(conn: psycopg.Connection, election: str) -> None:
    import_crowd(
        conn, election, f"{CROWD_HEADER}\np1,s,0,0,0,1,0,0\n".encode(), "s.csv", "verified"
    )
    repository.delete_election(conn, election)
    assert repository.find_election(conn, election) is None
    assert repository.precincts(conn, election) == []
    assert repository.official_protocols(conn, election) == {}
    assert repository.crowd_sources(conn, election) == {}
    assert conn.execute("SELECT count(*) FROM official_imports").fetchone() == (0,)
