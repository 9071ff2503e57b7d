"""The seeded election (5,767 real stations, 1,310 known protocols) with its flags
computed, served to analysts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.elections.service import load_election
from api.flags.service import run_flags
from infra.settings import get_settings
from infra.storage import photo_store
from tally import repository as tallies

SEEDED = Path(__file__).resolve().parents[3] / "seeds" / "by-2020"
SEEDED_ID = "by-2020-president"
DRAWS = 50  # enough for the statistical flags to exist; their exact set does not matter here


@pytest.fixture
def seeded(conn: psycopg.Connection) -> str:
    """The seeded election with every flag computed and one verified photo counted."""
    load_election(conn, SEEDED, photo_store(get_settings()))
    tallies.count_ballot(conn, SEEDED_ID, "01-010-0001", ["tsikhanouskaya"], 1)
    run_flags(conn, SEEDED_ID, draws=DRAWS)
    conn.commit()
    return SEEDED_ID


@pytest.fixture
def seeded_client(app: FastAPI, seeded: str) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c
