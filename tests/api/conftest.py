"""Fixtures for the HTTP app: a loaded election and real ballot photos."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.elections.service import load_election
from api.main import create_app
from infra.storage import get_store
from ocr.template import load_template


@pytest.fixture
def loaded(conn: psycopg.Connection, election_dir: Path, make_official: Callable) -> str:
    (election_dir / "official.csv").write_text(
        make_official(
            {"p1": {"lukashenko": 300, "tsikhanouskaya": 1}, "p2": {"tsikhanouskaya": 200}}
        )
    )
    load_election(conn, election_dir, get_store())
    conn.commit()
    return "by-2020-president"


@pytest.fixture
def client(loaded: str) -> Iterator[TestClient]:
    with TestClient(create_app()) as c:
        yield c


@pytest.fixture(scope="session")
def ballot_photo(ballot_dir: Path) -> Callable[..., bytes]:
    """A phone photo of a ballot marked for the given options."""
    from seeds.photos import mark_ballot, phone_photo

    template = load_template(ballot_dir).template
    reference = Image.open(ballot_dir / template.reference_image).convert("RGB")

    def make(marks: list[str], seed: int = 0) -> bytes:
        rng = np.random.default_rng(seed)
        return phone_photo(mark_ballot(reference, template, marks, rng, style="cross"), rng)

    return make


@pytest.fixture
def submit(client: TestClient) -> Callable[..., object]:
    def post(
        photo: bytes,
        *,
        precinct: str = "p1",
        choice: str = "tsikhanouskaya",
        sid: str | None = None,
        voter: str | None = None,
        election: str = "by-2020-president",
    ):
        data = {
            "election_id": election,
            "precinct_id": precinct,
            "declared_choice": choice,
            "submission_id": sid or str(uuid.uuid4()),
        }
        if voter:
            data["voter_id"] = voter
        return client.post(
            "/v1/submissions", data=data, files={"photo": ("b.jpg", photo, "image/jpeg")}
        )

    return post
