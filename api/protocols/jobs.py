"""Background jobs of the protocols domain (procrastinate tasks): reading a
received protocol photo.

One job per received photo, under the queueing lock ``protocol-photo:<id>``,
queued in the upload's transaction (``service.accept``). ``read_photo`` is
idempotent (``service.record_reading`` records a photo once, under its row lock),
so a job run twice has the effect of running once.

THE READER'S HOOK: ``read_photo`` takes the reader as an argument (``Reader``); the
job passes ``ocr_reader``, which calls ``ocr.protocol.read_protocol`` (imported when
first used) on the election's protocol template. Tests pass a reader of their own.
Copies of a station's earlier photo are found with ``ocr.photo_copy``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from procrastinate import App, JobContext

from api.protocols import repository
from api.protocols.repository import PhotoRow
from api.protocols.schemas import PhotoStatus
from infra import db, queue
from infra.settings import get_settings
from infra.storage import PhotoStore, photo_store

log = logging.getLogger(__name__)

READ_TASK = "golos.read_protocol_photo"
PHOTOS_QUEUE = queue.PHOTOS_QUEUE  # the ballots': a worker reading photos reads protocols too
MAX_ATTEMPTS = queue.MAX_ATTEMPTS
# After ballots (api.submissions.jobs.BALLOT_PRIORITY, 10), before reports (0): a
# voter's ballot is waited for on a phone; a protocol is read within minutes.
PROTOCOL_PRIORITY = 5
PROCESSING_FAILED = "processing_failed"
# Photos waiting to be read looked at per page by enqueue_pending (as the ballots').
ENQUEUE_PAGE = 500


# Reads one stored protocol photo (its row, its bytes): the reader's output, a
# ``ProtocolReading`` or anything ``service.as_reading`` takes (its JSON, a dataclass).
Reader = Callable[[psycopg.Connection, PhotoStore, PhotoRow, bytes], Any]


# A station's counted photos a new one is compared with, newest first: a comparison
# costs ~0.1 s of a worker (bench/protocol_copies.py), and a station has a handful.
MAX_COMPARED = 12


def job_lock(photo_id: uuid.UUID) -> str:
    return f"protocol-photo:{photo_id}"


async def enqueue(app: App, photo_id: uuid.UUID) -> bool:
    """Queue the photo's reading; False when a job for it is already waiting."""
    return await queue.defer_once(
        app, READ_TASK, lock=job_lock(photo_id), priority=PROTOCOL_PRIORITY, photo_id=str(photo_id)
    )


def read_photo(
    conn: psycopg.Connection,
    store: PhotoStore,
    photo_id: uuid.UUID,
    reader: Reader,
) -> PhotoStatus | None:
    """Read one received photo and record the reading; its new status, None when
    it was read already (or is a duplicate). No transaction is held open while the
    photo is read.

    A photo read as its station's is compared with the station's counted photos
    (``ocr.photo_copy``; at most MAX_COMPARED, newest first): a copy of one of them
    counts as that one (``service.record_reading``).
    The comparisons run outside any transaction; then, under the station's lock
    (``repository.lock_station``, before the photo's row lock), the photos recorded
    meanwhile are compared too and the reading is recorded: of two copies read at
    once, the one recorded first is the original and the other finds it."""
    from api.protocols import service  # service queues this module's jobs

    photo = repository.pending_photo(conn, photo_id)
    conn.commit()
    if photo is None:
        return None
    data = store.get(photo.photo_sha256)
    output = reader(conn, store, photo, data)
    conn.commit()
    reading = service.as_reading(output)
    compared: list[uuid.UUID] = []
    original = None
    if service.counted(photo.precinct_id, reading):
        original = _original(conn, store, photo, data, compared)
        conn.commit()
    with conn.transaction():
        repository.lock_station(conn, photo.election_id, photo.precinct_id)
        if original is None and service.counted(photo.precinct_id, reading):
            original = _original(conn, store, photo, data, compared)
        return service.record_reading(conn, photo_id, reading, copy_of=original)


def _original(
    conn: psycopg.Connection,
    store: PhotoStore,
    photo: PhotoRow,
    data: bytes,
    compared: list[uuid.UUID],
) -> uuid.UUID | None:
    """The station's counted photo (not in ``compared``, which grows) that ``photo``
    is a copy of, if any."""
    earlier = repository.counted_photos(
        conn,
        photo.election_id,
        photo.precinct_id,
        limit=max(0, MAX_COMPARED - len(compared)),
        exclude=[photo.id, *compared],
    )
    if not earlier:
        return None
    mine = _gray(data, photo.photo_orientation)
    for row in earlier:
        compared.append(row.id)
        theirs = _gray(store.get(row.photo_sha256), row.photo_orientation)
        if mine is not None and theirs is not None and _is_copy(theirs, mine):
            return row.id
    return None


def _gray(data: bytes, orientation: int | None) -> Any:
    """A stored photo, upright and grey at the comparison's size; None when it does
    not decode (it cannot be shown to be a copy)."""
    from ocr.images import ImageRejected, decode_gray
    from ocr.photo_copy import WORK_SIDE

    try:
        return decode_gray(data, max_side=WORK_SIDE, orientation=orientation)
    except (ImageRejected, MemoryError):
        return None


def _is_copy(earlier: Any, photo: Any) -> bool:
    """``ocr.photo_copy``'s verdict: ``photo`` is a copy of ``earlier``."""
    from ocr.photo_copy import copy_check  # imported when first used: OpenCV

    return copy_check(earlier, photo).copy


def ocr_reader(conn: psycopg.Connection, store: PhotoStore, photo: PhotoRow, data: bytes) -> Any:
    """The machine reader: ``ocr.protocol.read_protocol`` on the election's protocol
    template, the stored photo turned upright by its stored EXIF orientation (the
    quads it returns are in that upright photo's pixels, as ``service.field_image``
    crops them)."""
    from ocr.protocol import read_protocol  # imported when first used: heavy

    template = protocol_template(conn, store, photo.election_id)
    return read_protocol(template, data, orientation=photo.photo_orientation)


def protocol_template(conn: psycopg.Connection, store: PhotoStore, election_id: str) -> Any:
    """The election's ``ocr.protocol_template.ProtocolTemplate``, from a folder cached
    under the data folder (api.elections.service.protocol_template)."""
    from api.elections.service import protocol_template as stored_template

    return stored_template(
        conn, election_id, store, get_settings().data_dir.resolve() / "templates"
    )


def read_protocol_photo_job(context: JobContext, photo_id: str) -> None:
    # A job runs outside any request: its settings, store and connection are its own.
    pid = uuid.UUID(photo_id)
    attempt = context.job.attempts + 1 if context.job else 1
    try:
        with db.connection() as conn:
            read_photo(conn, photo_store(get_settings()), pid, ocr_reader)
    except Exception:
        if attempt < MAX_ATTEMPTS:
            raise  # procrastinate retries it
        log.exception("protocol photo %s could not be read; marked unreadable", pid)
        from api.protocols import service

        with db.connection() as conn:
            service.give_up(conn, pid, PROCESSING_FAILED)


def _waiting_page(after_seq: int, limit: int) -> list[tuple[int, uuid.UUID]]:
    with db.connection() as conn:
        return repository.waiting_photos(conn, after_seq, limit)


async def enqueue_pending(app: App, *, page_size: int = ENQUEUE_PAGE) -> int:
    """Queue every photo waiting to be read that no job waits for or runs (its job
    was never queued, or failed for good); how many. Run every minute by the sweep
    (``register``), as ``queue.enqueue_orphans`` describes (harmless races:
    ``read_photo`` records a photo once)."""
    queued = await queue.enqueue_orphans(app, _waiting_page, job_lock, enqueue, page_size=page_size)
    if queued:
        log.info("queued %d protocol photos that had no job", queued)
    return queued


def drop_expired_claims() -> int:
    """Delete the transcription claims that ran out without an entry; how many."""
    with db.connection() as conn:
        dropped = repository.drop_expired_claims(conn)
        conn.commit()
    if dropped:
        log.info("dropped %d expired transcription claims", dropped)
    return dropped


async def sweep_job(context: JobContext, timestamp: int) -> None:
    """Every minute: queue any protocol photo left without a job, and drop the
    transcription claims that ran out."""
    await enqueue_pending(context.app)
    await asyncio.to_thread(drop_expired_claims)


def register(app: App) -> None:
    """Register this module's tasks on a queue app (``api.worker.queue_app``): the
    reading, and its minutely sweep."""
    queue.register_photo_tasks(
        app,
        name=READ_TASK,
        job=read_protocol_photo_job,
        sweep_name="golos.sweep_protocol_photos",
        sweep=sweep_job,
        priority=PROTOCOL_PRIORITY,
    )
