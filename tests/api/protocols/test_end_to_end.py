"""One protocol photo from the upload to a station's figures: a seeded phone photo
of the seeded protocol form is posted through the API, read by the real reader
(``ocr.protocol``), the fields it leaves to people typed by two observers each, and
the station's protocol then gives every figure written on the form, each with its
provenance."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.protocols import jobs
from infra.settings import get_settings
from infra.storage import photo_store
from ocr.protocol_template import load_protocol_template
from seeds.protocol_photos import consistent_figures, protocol_photo
from tests.api.protocols.conftest import ELECTION
from tests.conftest import write_election

SEEDED_FORM = Path(__file__).parents[3] / "seeds" / "by-2020" / "protocol"
Account = Callable[..., dict[str, str]]


@pytest.fixture
def election_dir(tmp_path: Path, ballot_dir: Path) -> Path:
    """The test election with the seeded protocol template (form and reference)."""
    folder = write_election(tmp_path / "election", ballot_dir)
    shutil.copytree(SEEDED_FORM, folder / "protocol")
    return folder


def test_a_posted_protocol_photo_ends_as_the_stations_figures(
    conn: psycopg.Connection, client: TestClient, account: Account, election_dir: Path
) -> None:
    template = load_protocol_template(election_dir / "protocol")
    rng = np.random.default_rng(3)
    figures = consistent_figures(template, rng)
    photo, _ = protocol_photo(template, figures, "3", rng)
    sender, first, second = account("observer"), account("observer"), account("observer")
    posted = client.post(
        f"/v1/elections/{ELECTION}/protocol-photos",
        data={"photo_id": "6f1c3c9e-0d7e-4c47-9a0e-0c8f6b1e2a11", "precinct_id": "p3"},
        files={"photo": ("protocol.jpg", photo, "image/jpeg")},
        headers=sender,
    )
    assert posted.status_code == 202, posted.text
    photo_id = posted.json()["photo_id"]

    # The worker's reader: the template rebuilt from the database and the photo store.
    status = jobs.read_photo(
        conn, photo_store(get_settings()), uuid.UUID(photo_id), jobs.ocr_reader
    )
    assert status is not None

    typed = 0
    for who in (first, second, first, second):
        while True:
            task = client.get(
                "/v1/transcriptions/next", params={"election_id": ELECTION}, headers=who
            )
            if task.status_code == 204:
                break
            body = task.json()
            assert client.get(body["image_url"], headers=who).status_code == 200
            value = figures[body["field_id"]]
            assert (
                client.post(body["submit_url"], json={"value": value}, headers=who).status_code
                == 204
            )
            typed += 1

    protocol = client.get(
        f"/v1/elections/{ELECTION}/stations/p3/protocol", headers=account("analyst")
    ).json()
    assert protocol["conflict"] is False and protocol["photos"] == 1
    got = {f["field_id"]: f["value"] for f in protocol["figures"]}
    assert got == {f: figures[f] for f in template.field_ids}
    kinds = {f["sources"][0]["kind"] for f in protocol["figures"]}
    assert kinds <= {"machine", "transcription"} and "machine" in kinds
    assert typed % 2 == 0
    assert all(
        f["sources"]
        == [{"kind": "transcription", "value": f["value"], "photo_id": photo_id, "transcribers": 2}]
        for f in protocol["figures"]
        if f["sources"][0]["kind"] == "transcription"
    )
