"""The seeded election loads through the public format, as any election would."""

from __future__ import annotations

from pathlib import Path

import psycopg

from api.elections.service import get_election, load_election
from infra.storage import LocalPhotoStore
from seeds.generate import SEED_DIR, load_seed
from tally.vocab import Flag


def test_seeded_election_loads(conn: psycopg.Connection, tmp_path: Path) -> None:
    seed = load_seed(SEED_DIR)
    result = load_election(conn, SEED_DIR, LocalPhotoStore(tmp_path / "photos"))
    election = get_election(conn, seed.election_id)
    assert result.precincts == election.precincts == len(seed.precincts) == 5767
    assert election.precincts_with_official == len(seed.official) == 1310
    assert election.option_ids == seed.option_ids
    assert election.has_ballot_template
    stored: dict[str, int] = dict(
        conn.execute(
            "SELECT option_id, sum(votes) FROM current_official_votes GROUP BY option_id"
        ).fetchall()
    )
    assert stored == {o: sum(votes[o] for votes in seed.official.values()) for o in seed.option_ids}


def test_protocol_arithmetic_finds_exactly_the_seeded_slips(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    from api.flags.service import run_flags

    seed = load_seed(SEED_DIR)
    load_election(conn, SEED_DIR, LocalPhotoStore(tmp_path / "photos"))
    flagged = {
        f.precinct_id
        for f in run_flags(conn, seed.election_id).proof
        if f.flag == Flag.PROTOCOL_ARITHMETIC
    }
    slips = {p for p, f in seed.falsified.items() if f["scheme"] == "arithmetic_slip"}
    assert flagged == slips and len(slips) == 12
