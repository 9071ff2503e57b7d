"""Queueing the reading of received submissions: every one gets exactly one job."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg

from api.submissions import repository
from api.submissions.jobs import PHOTOS_QUEUE, enqueue, enqueue_pending, job_lock
from api.submissions.schemas import Status
from api.worker import queue_app
from infra import queue
from infra.settings import get_settings

ELECTION = "by-2020-president"
T = TypeVar("T")


def _received(conn: psycopg.Connection, count: int) -> list[uuid.UUID]:
    """Submissions recorded with no job queued (as when the queue was unreachable)."""
    sids = [uuid.uuid4() for _ in range(count)]
    for sid in sids:
        assert repository.insert(
            conn, sid, ELECTION, "p1", ["tsikhanouskaya"], "d", sid.hex * 2, sid.bytes * 2
        )
    conn.commit()
    return sids


def _with_queue(work: Callable[[queue.App], Awaitable[T]]) -> T:
    async def run() -> T:
        app = queue_app(get_settings())
        async with app.open_async():
            return await work(app)

    return asyncio.run(run())


async def _waiting(app: queue.App) -> list[str]:
    found = await app.job_manager.list_jobs_async(queue=PHOTOS_QUEUE, status="todo")
    return [job.queueing_lock or "" for job in found]


def test_every_received_submission_without_a_job_is_queued_once(
    conn: psycopg.Connection, loaded: str
) -> None:
    sids = _received(conn, 3)
    decided = _received(conn, 1)[0]
    repository.record_decision(conn, decided, Status.REJECTED, ["blank"], None, None)
    conn.commit()

    async def work(app: queue.App) -> tuple[int, int, list[str]]:
        first = await enqueue_pending(app)
        again = await enqueue_pending(app)
        return first, again, await _waiting(app)

    first, again, waiting = _with_queue(work)
    assert (first, again) == (3, 0)
    assert sorted(waiting) == sorted(job_lock(sid) for sid in sids)


def test_a_submission_whose_job_waits_or_runs_gets_no_second_job(
    conn: psycopg.Connection, loaded: str
) -> None:
    running, waiting, orphan = _received(conn, 3)

    async def work(app: queue.App) -> tuple[int, list[str]]:
        await enqueue(app, running)
        worker = await app.job_manager.register_worker()
        started = await app.job_manager.fetch_job(queues=[PHOTOS_QUEUE], worker_id=worker)
        assert started is not None and started.queueing_lock == job_lock(running)
        assert await enqueue(app, waiting)
        assert not await enqueue(app, waiting)  # the queueing lock
        return await enqueue_pending(app), await _waiting(app)

    queued, waiting_locks = _with_queue(work)
    assert queued == 1
    assert sorted(waiting_locks) == sorted([job_lock(waiting), job_lock(orphan)])


def test_orphans_are_queued_page_after_page(conn: psycopg.Connection, loaded: str) -> None:
    sids = _received(conn, 5)
    queued = _with_queue(lambda app: enqueue_pending(app, page_size=2))
    assert queued == len(sids)


def test_orphans_behind_a_page_of_waiting_submissions_are_queued_in_the_same_sweep(
    conn: psycopg.Connection, loaded: str
) -> None:
    # After a queue outage the orphans are the newest uploads, behind older
    # submissions whose jobs still wait: one sweep must reach them all.
    ahead = _received(conn, 4)
    behind = _received(conn, 3)

    async def work(app: queue.App) -> tuple[int, list[str]]:
        for sid in ahead:
            await enqueue(app, sid)
        return await enqueue_pending(app, page_size=2), await _waiting(app)

    queued, waiting = _with_queue(work)
    assert queued == len(behind)
    assert sorted(waiting) == sorted(job_lock(sid) for sid in ahead + behind)
