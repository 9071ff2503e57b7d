"""A copy of a station's protocol photo (re-saved, rescaled, screenshotted...) found
by the reading job counts as the photo it copies: it confirms nothing, nobody types
its fields, and its state names the original. A second photo of the same sheet
confirms it. Of two copies read at once, one is recorded first and the other finds
it. Real rendered phone photos and the real comparison (``ocr.photo_copy``); the
reading itself is given (the reader's hook), as in test_jobs."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.protocols import jobs, repository, service
from api.protocols.repository import PhotoRow
from api.protocols.schemas import PhotoReason, PhotoStatus
from infra import db
from infra.settings import get_settings
from infra.storage import PhotoStore, photo_store
from seeds.photos import phone_photo, random_conditions
from seeds.protocol_photos import consistent_figures, protocol_page
from seeds.reuse import reuse
from tests.api.protocols.conftest import ELECTION, GOOD, People, reading, send_photo

Account = Callable[..., dict[str, str]]
STATION = "p3"  # no row in the imported file: the photos are the only sources


@lru_cache(maxsize=4)
def shot(number: int) -> bytes:
    """Photo ``number`` of one filled-in sheet of the seeded form (its own framing and
    light each)."""
    rng = np.random.default_rng([11, 1])
    page, _ = protocol_page("by-2020", consistent_figures("by-2020", rng), "3", rng)
    rng = np.random.default_rng([11, 2, number])
    return phone_photo(page, rng, random_conditions(rng))


def upload(conn: psycopg.Connection, sender: int | None, photo: bytes) -> uuid.UUID:
    accepted = send_photo(conn, sender, photo, STATION)
    assert accepted.duplicate_of is None
    return accepted.photo_id


def given_reading(c: psycopg.Connection, store: PhotoStore, photo: PhotoRow, data: bytes) -> Any:
    return reading(GOOD, precinct="3")


def protocol_of(client: TestClient, who: dict[str, str]) -> dict[str, Any]:
    answer = client.get(f"/v1/elections/{ELECTION}/stations/{STATION}/protocol", headers=who)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.parametrize("transform", ["resave", "rescale", "screenshot"])
def test_a_copy_of_a_protocol_photo_counts_as_the_photo_it_copies(
    conn: psycopg.Connection,
    client: TestClient,
    account: Account,
    person: People,
    loaded: str,
    transform: str,
) -> None:
    store = photo_store(get_settings())
    original = upload(conn, person("observer").user_id, shot(0))
    assert jobs.read_photo(conn, store, original, given_reading) is PhotoStatus.READ
    sender = person("observer")
    copy = upload(conn, sender.user_id, reuse(shot(0), transform, np.random.default_rng(5)))
    assert jobs.read_photo(conn, store, copy, given_reading) is PhotoStatus.READ

    state = service.photo_state(conn, ELECTION, copy, sender)
    assert state.duplicate_of == original
    assert state.reasons[0] == PhotoReason.COPY_OF_EARLIER_PHOTO
    assert repository.field_states(conn, copy) == []  # nothing of its own to type
    protocol = protocol_of(client, account("analyst"))
    assert protocol["photos"] == 1
    assert {f["status"] for f in protocol["figures"]} == {"single"}  # confirmed by nobody


def test_a_second_photo_of_the_protocol_confirms_the_first(
    conn: psycopg.Connection, client: TestClient, account: Account, person: People, loaded: str
) -> None:
    store = photo_store(get_settings())
    first = upload(conn, person("observer").user_id, shot(0))
    second = upload(conn, person("observer").user_id, shot(1))
    assert jobs.read_photo(conn, store, first, given_reading) is PhotoStatus.READ
    assert jobs.read_photo(conn, store, second, given_reading) is PhotoStatus.READ
    assert repository.photo(conn, second).duplicate_of is None  # type: ignore[union-attr]
    protocol = protocol_of(client, account("analyst"))
    assert protocol["photos"] == 2
    assert {f["status"] for f in protocol["figures"]} == {"confirmed"}


def test_of_two_copies_read_at_once_the_one_recorded_second_is_the_copy(
    conn: psycopg.Connection, person: People, loaded: str
) -> None:
    store = photo_store(get_settings())
    sender = person("observer").user_id
    ids = [
        upload(conn, sender, shot(0)),
        upload(conn, sender, reuse(shot(0), "resave", np.random.default_rng(1))),
    ]
    # Both readers finish before either photo is recorded: each compares with a
    # station that has no counted photo yet, and only the station's lock can tell.
    both_read = threading.Barrier(2, timeout=30)

    def reader(c: psycopg.Connection, s: PhotoStore, photo: PhotoRow, data: bytes) -> Any:
        both_read.wait()
        return reading(GOOD, precinct="3")

    results: dict[uuid.UUID, PhotoStatus | None] = {}
    errors: list[BaseException] = []

    def run(photo_id: uuid.UUID) -> None:
        try:
            with db.connection() as own:
                results[photo_id] = jobs.read_photo(own, store, photo_id, reader)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and results == {i: PhotoStatus.READ for i in ids}
    rows = [repository.photo(conn, i) for i in ids]
    conn.commit()
    copies = [r for r in rows if r is not None and r.duplicate_of is not None]
    assert len(copies) == 1
    (copy,) = copies
    assert copy.duplicate_of in ids and copy.duplicate_of != copy.id
    assert PhotoReason.COPY_OF_EARLIER_PHOTO in copy.reasons


def test_a_copy_read_with_other_figures_counts_as_a_photo_of_its_own(
    conn: psycopg.Connection, client: TestClient, account: Account, person: People, loaded: str
) -> None:
    """Two readings of one picture that differ cannot both be right: the copy is
    counted, and the disagreement goes to people as any two photos' would."""
    store = photo_store(get_settings())
    original = upload(conn, person("observer").user_id, shot(0))
    assert jobs.read_photo(conn, store, original, given_reading) is PhotoStatus.READ
    copy = upload(
        conn, person("observer").user_id, reuse(shot(0), "resave", np.random.default_rng(2))
    )

    def misread(c: psycopg.Connection, s: PhotoStore, photo: PhotoRow, data: bytes) -> Any:
        return reading({**GOOD, "lukashenko": 301}, precinct="3")

    assert jobs.read_photo(conn, store, copy, misread) is PhotoStatus.READ
    assert repository.photo(conn, copy).duplicate_of is None  # type: ignore[union-attr]
    protocol = protocol_of(client, account("analyst"))
    assert protocol["photos"] == 2 and protocol["conflicting_fields"] == ["lukashenko"]
