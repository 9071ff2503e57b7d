"""Loading elections and importing official figures into the real database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from api.elections.formats import FormatError
from api.elections.service import (
    ElectionNotFound,
    get_election,
    import_official,
    load_election,
)
from api.errors import NotFound
from infra.progress import Recorded
from infra.storage import LocalPhotoStore


def _counts(conn: psycopg.Connection) -> tuple[int, int, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM official_imports), (SELECT count(*) FROM official_results),"
        " (SELECT count(*) FROM official_votes)"
    ).fetchone()
    assert row is not None
    return row


def test_load_election_with_official_results(
    conn: psycopg.Connection, election_dir: Path, tmp_path: Path, make_official: Callable
) -> None:
    (election_dir / "official.csv").write_text(
        make_official({"p1": {"lukashenko": 10}, "p2": {"tsikhanouskaya": 7}})
    )
    result = load_election(conn, election_dir, LocalPhotoStore(tmp_path / "photos"))
    assert (result.created, result.precincts, result.official_rows) == (True, 3, 2)
    election = get_election(conn, "by-2020-president")
    assert election.precincts == 3 and election.precincts_with_official == 2
    assert election.has_ballot_template
    assert election.option_ids[2] == "lukashenko"

    again = load_election(conn, election_dir, LocalPhotoStore(tmp_path / "photos"))
    assert not again.created


def test_reimport_replaces_and_keeps_a_record(
    conn: psycopg.Connection, election_dir: Path, tmp_path: Path, make_official: Callable
) -> None:
    load_election(conn, election_dir, LocalPhotoStore(tmp_path / "photos"))
    first = import_official(
        conn, "by-2020-president", make_official({"p1": {"lukashenko": 10}}).encode(), "a.csv"
    )
    second = import_official(
        conn, "by-2020-president", make_official({"p1": {"lukashenko": 12}}).encode(), "b.csv"
    )
    assert second.replaced_import_id == first.import_id
    current = conn.execute(
        "SELECT votes FROM current_official_votes"
        " WHERE precinct_id = 'p1' AND option_id = 'lukashenko'"
    ).fetchall()
    assert current == [(12,)]
    history = conn.execute(
        "SELECT filename, is_current, replaces FROM official_imports ORDER BY id"
    ).fetchall()
    assert history == [("a.csv", False, None), ("b.csv", True, first.import_id)]


def test_malformed_official_csv_stores_nothing(
    conn: psycopg.Connection, election_dir: Path, tmp_path: Path, make_official: Callable
) -> None:
    load_election(conn, election_dir, LocalPhotoStore(tmp_path / "photos"))
    import_official(
        conn, "by-2020-president", make_official({"p1": {"lukashenko": 10}}).encode(), "ok.csv"
    )
    before = _counts(conn)
    bad = make_official({"p1": {"lukashenko": 10}, "p2": {}}).replace("p2,1000", "p2,lots")
    with pytest.raises(FormatError) as exc:
        import_official(conn, "by-2020-president", bad.encode(), "bad.csv")
    assert "bad.csv, line 3, column 'registered'" in str(exc.value)
    assert _counts(conn) == before
    unknown = make_official({"nowhere": {"lukashenko": 1}})
    with pytest.raises(FormatError, match="unknown precinct 'nowhere'"):
        import_official(conn, "by-2020-president", unknown.encode(), "bad.csv")
    assert _counts(conn) == before


def test_bad_official_csv_in_folder_refuses_the_whole_load(
    conn: psycopg.Connection, election_dir: Path, tmp_path: Path
) -> None:
    (election_dir / "official.csv").write_text("precinct_id,registered\np1,5\n")
    with pytest.raises(FormatError, match="required column is missing"):
        load_election(conn, election_dir, LocalPhotoStore(tmp_path / "photos"))
    assert conn.execute("SELECT count(*) FROM elections").fetchone() == (0,)
    assert not (tmp_path / "photos").exists()  # not even the template's reference image


def test_options_of_a_loaded_election_cannot_change(
    conn: psycopg.Connection, election_dir: Path, tmp_path: Path
) -> None:
    store = LocalPhotoStore(tmp_path / "photos")
    load_election(conn, election_dir, store)
    text = (election_dir / "election.json").read_text().replace('"against_all"', '"nobody"')
    (election_dir / "election.json").write_text(text)
    (election_dir / "ballot").rename(election_dir / "old-ballot")
    with pytest.raises(FormatError, match="cannot change"):
        load_election(conn, election_dir, store)
    assert get_election(conn, "by-2020-president").option_ids[-1] == "against_all"


def test_template_of_another_election_is_refused(
    conn: psycopg.Connection, election_dir: Path, tmp_path: Path
) -> None:
    text = (election_dir / "election.json").read_text().replace("by-2020-president", "other")
    (election_dir / "election.json").write_text(text)
    with pytest.raises(FormatError, match="field 'election'"):
        load_election(conn, election_dir, LocalPhotoStore(tmp_path / "photos"))


def test_unknown_election_is_a_404_on_election_id(conn: psycopg.Connection) -> None:
    with pytest.raises(ElectionNotFound) as exc:
        get_election(conn, "nowhere")
    assert isinstance(exc.value, NotFound) and exc.value.status_code == 404
    assert str(exc.value) == "no election 'nowhere'"  # what the command line prints
    assert exc.value.body() == {"field": "election_id", "message": "no election 'nowhere'"}
    with pytest.raises(ElectionNotFound, match="no election 'nowhere'"):
        import_official(conn, "nowhere", b"precinct_id\n", "a.csv")


def test_load_and_import_report_their_stages_with_totals(
    conn: psycopg.Connection, election_dir: Path, tmp_path: Path, make_official: Callable
) -> None:
    (election_dir / "official.csv").write_text(
        make_official({"p1": {"lukashenko": 10}, "p2": {"tsikhanouskaya": 7}})
    )
    progress = Recorded()
    load_election(conn, election_dir, LocalPhotoStore(tmp_path / "photos"), progress)
    totals = dict(progress.stages)
    assert totals["store precincts"] == progress.done["store precincts"] == 3
    assert totals["store protocols"] == progress.done["store protocols"] == 2
    assert progress.done["parse precincts"] == 3
    assert progress.done["parse official results"] == 2

    progress = Recorded()
    official = make_official({"p3": {"lukashenko": 1}}).encode()
    import_official(conn, "by-2020-president", official, "c.csv", progress)
    assert [name for name, _ in progress.stages] == [
        "parse official results",
        "store protocols",
        "store official votes",
    ]
    assert progress.done == dict.fromkeys(progress.done, 1)
