"""Test session fixtures: a real PostgreSQL cluster started from the machine's binaries."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from infra import db
from infra.migrate import migrate
from infra.pg import EmbeddedPostgres
from infra.settings import get_settings

TABLES = (
    "flags",
    "photo_owners",
    "submissions",
    "official_votes",
    "official_results",
    "official_imports",
    "precincts",
    "options",
    "elections",
    "procrastinate_jobs",
)


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    # Not under pytest's tmp_path: that is private to root, and the server may run
    # as an unprivileged user.
    folder = Path(tempfile.mkdtemp(prefix="golos-test-"))
    folder.chmod(0o711)
    pg = EmbeddedPostgres(folder / "pg", fast_unsafe=True)
    pg.start()
    dsn = f"postgresql://golos@/golos?host={pg.socket_dir}"
    migrate(dsn)
    os.environ["GOLOS_DATABASE_URL"] = dsn
    os.environ["GOLOS_DATA_DIR"] = str(folder / "data")
    os.environ["GOLOS_VOTER_SECRET"] = "test-secret"
    get_settings.cache_clear()
    db.close_pool()
    try:
        yield dsn
    finally:
        db.close_pool()
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def conn(database: str) -> Iterator[psycopg.Connection]:
    """A connection to an emptied database (and an emptied photo store)."""
    with psycopg.connect(database, autocommit=True) as c:
        c.execute("TRUNCATE " + ", ".join(TABLES) + " RESTART IDENTITY CASCADE")
    shutil.rmtree(get_settings().photos_path, ignore_errors=True)
    with psycopg.connect(database) as c:
        yield c


@pytest.fixture(scope="session")
def ballot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from seeds.ballot import BY2020_DESIGN, write_template

    folder = tmp_path_factory.mktemp("ballot")
    write_template(BY2020_DESIGN, folder)
    return folder


OPTIONS = ["dmitriyev", "kanapatskaya", "lukashenko", "tsikhanouskaya", "charachen", "against_all"]


def write_election(folder: Path, ballot_dir: Path | None, precincts: int = 3) -> Path:
    """A small election/1 folder for tests."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "election.json").write_text(
        json.dumps(
            {
                "format": "election/1",
                "id": "by-2020-president",
                "name": "Presidential election, Republic of Belarus",
                "date": "2020-08-09",
                "options": [{"id": o, "label": o.title()} for o in OPTIONS],
            }
        ),
        encoding="utf-8",
    )
    rows = ["precinct_id,region,district,name,registered"]
    rows += [
        f"p{i},Region,District {i % 2},Station {i},{1000 + i}" for i in range(1, precincts + 1)
    ]
    (folder / "precincts.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    if ballot_dir is not None:
        shutil.copytree(ballot_dir, folder / "ballot")
    return folder


def official_csv(rows: dict[str, dict[str, int]]) -> str:
    header = ["precinct_id", "registered", "ballots_issued", "ballots_cast", "invalid", *OPTIONS]
    lines = [",".join(header)]
    for precinct, votes in rows.items():
        cast = sum(votes.values()) + 5
        lines.append(
            ",".join(
                [
                    precinct,
                    "1000",
                    str(cast),
                    str(cast),
                    "5",
                    *(str(votes.get(o, 0)) for o in OPTIONS),
                ]
            )
        )
    return "\n".join(lines) + "\n"


@pytest.fixture
def election_dir(tmp_path: Path, ballot_dir: Path) -> Path:
    return write_election(tmp_path / "election", ballot_dir)


@pytest.fixture
def make_official() -> object:
    """Renders official-results/1 CSV text from {precinct: {option: votes}}."""
    return official_csv
