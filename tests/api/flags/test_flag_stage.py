"""The flag stage on its own: evidence in the database, flags stored, no files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from api.elections.service import ElectionNotFound, load_election
from api.flags.service import run_flags
from infra.settings import get_settings
from infra.storage import photo_store
from tally import repository as tallies
from tally.vocab import FLAG_KIND, Flag, FlagKind, ReviewStatus, Source

ELECTION = "by-2020-president"
DRAWS = 50  # the statistical tests run; three stations give them nothing to find


@pytest.fixture
def evidence(
    conn: psycopg.Connection, election_dir: Path, make_official: Callable[..., str]
) -> str:
    """The small election with p2's protocol broken (more ballots cast than issued) and
    two verified photos for tsikhanouskaya at p1, where the protocol gives her one."""
    official = make_official(
        {"p1": {"lukashenko": 300, "tsikhanouskaya": 1}, "p2": {"tsikhanouskaya": 200}}
    )
    assert "p2,1000,205,205," in official
    (election_dir / "official.csv").write_text(
        official.replace("p2,1000,205,205,", "p2,1000,204,205,")
    )
    load_election(conn, election_dir, photo_store(get_settings()))
    for _ in range(2):
        tallies.count_ballot(conn, ELECTION, "p1", ["tsikhanouskaya"], 1)
    conn.commit()
    return ELECTION


def _stored(conn: psycopg.Connection) -> dict[tuple[str, str, str, str], tuple[object, ...]]:
    return {
        (r.precinct_id, r.flag, r.option, r.source): (r.kind, r.crowd, r.official, r.review_status)
        for r in tallies.flag_rows(conn, ELECTION)
    }


def test_the_flag_stage_stores_proof_flags_and_writes_no_file(
    conn: psycopg.Connection, evidence: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def files() -> list[Path]:
        return sorted(tmp_path.rglob("*")) + (
            sorted(data_dir.rglob("*")) if data_dir.exists() else []
        )

    monkeypatch.chdir(tmp_path)
    data_dir = get_settings().data_dir.resolve()
    before = files()

    run = run_flags(conn, evidence, draws=DRAWS)
    conn.commit()

    stored = _stored(conn)
    assert stored[("p1", Flag.CROWD_EXCEEDS_OFFICIAL, "tsikhanouskaya", Source.PHOTOS)] == (
        FlagKind.PROOF, 2, 1, ReviewStatus.OPEN,
    )  # fmt: skip
    assert stored[("p2", Flag.PROTOCOL_ARITHMETIC, "", Source.PROTOCOL)][0] == FlagKind.PROOF
    assert {key[:2] for key in stored if FLAG_KIND[Flag(key[1])] is FlagKind.PROOF} == {
        ("p1", Flag.CROWD_EXCEEDS_OFFICIAL),
        ("p2", Flag.PROTOCOL_ARITHMETIC),
    }
    # What was stored is what the run found, and every stored kind is the vocabulary's.
    assert len(stored) == len(run.findings)
    assert all(kind == FLAG_KIND[Flag(key[1])] for key, (kind, *_) in stored.items())
    # The stations with proof stay out of the estimates.
    assert run.stations.excluded is not None
    excluded = dict(zip(run.stations.precinct_id, run.stations.excluded, strict=True))
    assert excluded == {"p1": True, "p2": True}
    # No report: nothing written, here or in the data folder.
    assert files() == before


def test_a_decision_stays_while_its_numbers_stay(conn: psycopg.Connection, evidence: str) -> None:
    key = ("p1", Flag.CROWD_EXCEEDS_OFFICIAL, "tsikhanouskaya", Source.PHOTOS)
    run_flags(conn, evidence, draws=DRAWS)
    conn.execute(
        "UPDATE flags SET review_status = %s WHERE precinct_id = 'p1'", (ReviewStatus.CONFIRMED,)
    )
    conn.commit()

    run_flags(conn, evidence, draws=DRAWS)  # the same evidence
    assert _stored(conn)[key] == (FlagKind.PROOF, 2, 1, ReviewStatus.CONFIRMED)

    tallies.count_ballot(conn, ELECTION, "p1", ["tsikhanouskaya"], 1)
    run_flags(conn, evidence, draws=DRAWS)  # new evidence: the decision was about other numbers
    assert _stored(conn)[key] == (FlagKind.PROOF, 3, 1, ReviewStatus.OPEN)

    for _ in range(3):
        tallies.count_ballot(conn, ELECTION, "p1", ["tsikhanouskaya"], -1)
    run_flags(conn, evidence, draws=DRAWS)  # the evidence is gone, and so is the flag
    assert key not in _stored(conn)
    assert tallies.flagged_precincts(conn, ELECTION, Flag.PROTOCOL_ARITHMETIC, Source.PROTOCOL) == {
        "p2"
    }


def test_an_unknown_election_has_no_flag_stage(conn: psycopg.Connection) -> None:
    with pytest.raises(ElectionNotFound):
        run_flags(conn, "nowhere", draws=DRAWS)
