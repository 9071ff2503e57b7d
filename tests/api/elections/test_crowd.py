"""Crowd tallies from elsewhere: a named source beside the photos, never added to them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from api.elections.crowd import import_crowd
from api.elections.formats import FormatError
from api.elections.service import load_election
from api.flags.service import run_flags
from infra.storage import LocalPhotoStore
from tally.proof import Finding
from tally.vocab import EvidenceLevel, Flag, FlagKind

HEADER = "precinct_id,source,dmitriyev,kanapatskaya,lukashenko,tsikhanouskaya,charachen,against_all"


@pytest.fixture
def election(
    conn: psycopg.Connection, election_dir: Path, tmp_path: Path, make_official: Callable
) -> str:
    (election_dir / "official.csv").write_text(
        make_official({"p1": {"tsikhanouskaya": 10}, "p2": {"tsikhanouskaya": 10}})
    )
    load_election(conn, election_dir, LocalPhotoStore(tmp_path / "photos"))
    conn.commit()
    return "by-2020-president"


def _proof_rules(conn: psycopg.Connection, election: str) -> list[Finding]:
    """What the proof rules find (declared sources' leads included), as stored."""
    return run_flags(conn, election).proof


def _csv(source: str, rows: dict[str, int]) -> bytes:
    lines = [HEADER] + [f"{p},{source},0,0,0,{n},0,0" for p, n in rows.items()]
    return ("\n".join(lines) + "\n").encode()


def test_verified_source_proves_and_declared_only_reports(
    conn: psycopg.Connection, election: str
) -> None:
    partner = _csv("partner-photos", {"p1": 12, "p2": 3})
    import_crowd(conn, election, partner, "a.csv", EvidenceLevel.VERIFIED)
    import_crowd(conn, election, _csv("poll", {"p2": 40}), "b.csv", EvidenceLevel.DECLARED)
    findings = _proof_rules(conn, election)
    by_key = {(f.precinct_id, f.flag, f.source): f for f in findings}
    proof = by_key[("p1", Flag.CROWD_EXCEEDS_OFFICIAL, "partner-photos")]
    assert (proof.kind, proof.crowd, proof.official, proof.option) == (
        FlagKind.PROOF,
        12,
        10,
        "tsikhanouskaya",
    )
    declared = by_key[("p2", Flag.DECLARED_EXCEEDS_OFFICIAL, "poll")]
    assert declared.kind == FlagKind.STATISTICAL and declared.crowd == 40
    assert ("p2", Flag.CROWD_EXCEEDS_OFFICIAL, "poll") not in by_key
    # Never added to the platform's own counts.
    assert conn.execute("SELECT count(*) FROM photo_tallies").fetchone() == (0,)


def test_reimport_replaces_the_source_and_keeps_a_record(
    conn: psycopg.Connection, election: str
) -> None:
    first = import_crowd(conn, election, _csv("partner", {"p1": 12}), "a.csv", "verified")
    second = import_crowd(conn, election, _csv("partner", {"p1": 2}), "a2.csv", "verified")
    assert second.replaced_import_id == first.import_id
    assert conn.execute(
        "SELECT votes FROM current_crowd_counts WHERE option_id = 'tsikhanouskaya'"
    ).fetchall() == [(2,)]
    assert _proof_rules(conn, election) == []


@pytest.mark.parametrize(
    ("data", "level", "message"),
    [
        (_csv("x", {"nowhere": 1}), "verified", "line 2, column 'precinct_id': unknown precinct"),
        (_csv("x", {"p1": 1}).replace(b"p1,x", b"p1,"), "verified", "column 'source'"),
        (
            _csv("x", {"p1": 1, "p2": 1}).replace(b"p2,x", b"p2,y"),
            "verified",
            "line 3, column 'source': 'y' differs from 'x'",
        ),
        (_csv("photos", {"p1": 1}), "verified", "reserved"),
        (_csv("protocol", {"p1": 1}), "verified", "reserved"),
        (
            _csv("x", {"p1": 1}).replace(b",0,0,0,1", b",0,0,0,-1"),
            "verified",
            "column 'tsikhanouskaya': '-1' is not a non-negative integer",
        ),
        (
            HEADER.replace(",against_all", "").encode() + b"\np1,x,0,0,0,1,0\n",
            "verified",
            "column 'against_all': required column is missing",
        ),
        (_csv("x", {"p1": 1}), "rumoured", "level must be 'verified' or 'declared'"),
    ],
)
def test_bad_crowd_files_store_nothing(
    conn: psycopg.Connection, election: str, data: bytes, level: str, message: str
) -> None:
    with pytest.raises(FormatError) as exc:
        import_crowd(conn, election, data, "c.csv", level)
    assert message in str(exc.value)
    assert conn.execute("SELECT count(*) FROM crowd_imports").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM crowd_counts").fetchone() == (0,)


def test_gzip_files_are_read(conn: psycopg.Connection, election: str) -> None:
    import gzip

    result = import_crowd(
        conn, election, gzip.compress(_csv("zipped", {"p1": 3})), "c.csv.gz", "verified"
    )
    assert result.rows == 1 and result.source == "zipped"
    assert result.level is EvidenceLevel.VERIFIED
