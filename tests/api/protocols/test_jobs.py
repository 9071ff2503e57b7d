"""The reading job's hook: a queued photo read by the reader it is given (here a
stand-in for ``ocr.protocol``, the model or its JSON), recorded once; a duplicate
is never read; a photo every attempt failed on ends 'unreadable'."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from api.protocols import jobs, repository, service
from api.protocols.repository import PhotoRow
from api.protocols.schemas import FieldState, PhotoStatus
from infra import queue
from infra.settings import get_settings
from infra.storage import PhotoStore, photo_store
from tests.api.protocols.conftest import (
    GOOD,
    People,
    protocol_jpeg,
    reading,
    send_photo,
)


def _upload(conn: psycopg.Connection, sender: int | None, seed: int) -> service.Accepted:
    return send_photo(conn, sender, protocol_jpeg(seed))


def test_a_queued_photo_is_read_by_the_reader_it_is_given_and_recorded_once(
    conn: psycopg.Connection, loaded: str, person: People
) -> None:
    sender = person("observer").user_id
    accepted = _upload(conn, sender, 1)
    seen: list[bytes] = []

    def reader(c: psycopg.Connection, store: PhotoStore, photo: PhotoRow, data: bytes) -> Any:
        seen.append(data)
        assert photo.id == accepted.photo_id and photo.precinct_id == "p1"
        # The reader's JSON, as `golos ocr protocol --json` prints it.
        return reading({**GOOD, "invalid": None}).model_dump(mode="json")

    store = photo_store(get_settings())
    assert jobs.read_photo(conn, store, accepted.photo_id, reader) is PhotoStatus.PARTIAL
    assert seen and b"SECRET" not in seen[0]  # the stored, stripped photo
    assert jobs.read_photo(conn, store, accepted.photo_id, reader) is None
    assert len(seen) == 1
    states = dict(repository.field_states(conn, accepted.photo_id))
    assert states["invalid"] == FieldState.TRANSCRIBING and states["registered"] == FieldState.GIVEN


def test_a_duplicate_photo_is_never_read(
    conn: psycopg.Connection, loaded: str, person: People
) -> None:
    sender = person("observer").user_id
    first = _upload(conn, sender, 2)
    copy = _upload(conn, person("observer").user_id, 2)
    assert copy.duplicate_of == first.photo_id

    def reader(c: psycopg.Connection, store: PhotoStore, photo: PhotoRow, data: bytes) -> Any:
        raise AssertionError("a duplicate is not read")

    assert jobs.read_photo(conn, photo_store(get_settings()), copy.photo_id, reader) is None


def test_a_photo_every_attempt_failed_on_ends_unreadable(
    conn: psycopg.Connection, loaded: str, person: People
) -> None:
    accepted = _upload(conn, person("observer").user_id, 3)
    service.give_up(conn, accepted.photo_id, jobs.PROCESSING_FAILED)
    conn.commit()
    photo = repository.photo(conn, accepted.photo_id)
    assert photo is not None and photo.status == PhotoStatus.UNREADABLE
    assert photo.reasons == [jobs.PROCESSING_FAILED]


def test_every_photo_waiting_without_a_job_is_queued_once(
    conn: psycopg.Connection, loaded: str, person: People
) -> None:
    # Stored without a job (as when the queue was unreachable); a duplicate needs none.
    first = _upload(conn, person("observer").user_id, 4)
    _upload(conn, person("observer").user_id, 4)
    read = _upload(conn, person("observer").user_id, 5)
    with conn.transaction():
        service.record_reading(conn, read.photo_id, reading(GOOD))

    async def work() -> tuple[int, int, list[str]]:
        app = queue.make_app(get_settings().dsn, jobs.register)
        async with app.open_async():
            once = await jobs.enqueue_pending(app)
            again = await jobs.enqueue_pending(app)
            found = await app.job_manager.list_jobs_async(queue=jobs.PHOTOS_QUEUE, status="todo")
            return once, again, [j.queueing_lock or "" for j in found]

    once, again, locks = asyncio.run(work())
    assert (once, again) == (1, 0)
    assert jobs.job_lock(first.photo_id) in locks
