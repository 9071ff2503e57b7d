"""The flag stage with protocol photos: disagreeing protocols of a station are a
stored ``conflicting_protocols`` flag (gone when the sources come to agree), and the
official figures the stage reads are the file's reconciled with the photos (a
station known only from photos gets its figures; a figure in conflict is unknown).
These need ``api/flags/service.py`` to read ``api.protocols.service`` (the lead's
edit: see the report of issue 12's protocols domain)."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

import api.flags.service as flags
from api.elections.service import import_official
from api.protocols import service
from tally import repository as tallies
from tally.vocab import Flag
from tests.api.protocols.conftest import ELECTION, GOOD, OPTIONS, MakePhoto

OTHER = {**GOOD, "lukashenko": 250, "tsikhanouskaya": 51}


def conflicting(conn: psycopg.Connection) -> dict[str, str]:
    return {
        row.precinct_id: row.detail
        for row in tallies.flag_rows(conn, ELECTION)
        if row.flag == Flag.CONFLICTING_PROTOCOLS
    }


def test_conflicting_photos_are_a_stored_flag(
    conn: psycopg.Connection, read_photo: MakePhoto
) -> None:
    read_photo(GOOD, precinct="p3")
    read_photo(OTHER, precinct="p3")
    flags.run_flags(conn, ELECTION, draws=10)
    conn.commit()
    found = conflicting(conn)
    assert list(found) == ["p3"]
    # Both numbers, each with its source (in the order of the photos' ids: any).
    detail = found["p3"]
    assert "lukashenko: " in detail and "300 (photo" in detail and "250 (photo" in detail


def test_the_flag_goes_when_the_file_comes_to_agree_with_the_photo(
    conn: psycopg.Connection,
    read_photo: MakePhoto,
    make_official: Callable[[dict[str, dict[str, int]]], str],
) -> None:
    # The photo of p1 says 200 for lukashenko and 105 invalid ballots; the file 300, 5.
    read_photo({**GOOD, "lukashenko": 200, "invalid": 105})
    flags.run_flags(conn, ELECTION, draws=10)
    conn.commit()
    assert list(conflicting(conn)) == ["p1"]
    csv = make_official({"p1": {"lukashenko": 200, "tsikhanouskaya": 1}})
    csv = csv.replace(",206,206,5,", ",306,306,105,")  # the corrected protocol
    import_official(conn, ELECTION, csv.encode(), "corrected.csv")
    flags.run_flags(conn, ELECTION, draws=10)
    conn.commit()
    assert conflicting(conn) == {}


def test_the_flag_stage_reads_the_reconciled_figures(
    conn: psycopg.Connection, read_photo: MakePhoto
) -> None:
    read_photo(GOOD, precinct="p3")  # known only from its photo
    read_photo({**GOOD, "lukashenko": 200, "invalid": 105})  # p1: two fields in conflict
    evidence = flags.gather_evidence(conn, ELECTION)
    assert evidence.protocols["p3"]["lukashenko"] == 300
    assert evidence.official_votes["p3", "lukashenko"] == 300
    assert evidence.protocols["p1"]["lukashenko"] is None  # in conflict: unknown
    assert evidence.protocols["p1"]["tsikhanouskaya"] == 1
    assert evidence.protocols["p2"] == service.official_protocols(conn, ELECTION)["p2"]
    assert set(OPTIONS) <= set(evidence.protocols["p3"])
