"""Background jobs: generate a report; every ten minutes, delete expired ones.

Report jobs are limited per account (``infra.ratelimit``, ``GOLOS_REPORTS_PER_ACCOUNT``):
a new report and a retry each count one, 429 with Retry-After beyond the limit, and
a request that queues no job (an unknown election, a report that has not failed)
counts nothing.

Report jobs keep the default priority (0), below the ballots'
(api.submissions.jobs.BALLOT_PRIORITY): a worker takes every waiting ballot first.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from typing import NamedTuple

import anyio.from_thread
import psycopg
from procrastinate import App, JobContext, RetryStrategy

from api.accounts.schemas import Principal
from api.elections.service import get_election
from api.errors import Conflict, Forbidden, NotFound, TooManyRequests
from api.reports import service
from api.reports.schemas import Report, ReportState
from infra import db, ratelimit
from infra.settings import Settings, get_settings

GENERATE_TASK = "golos.generate_report"
EXPIRE_TASK = "golos.expire_reports"
REPORTS_QUEUE = "reports"
# A report is tried twice (a passing fault, e.g. a database restart), then marked
# failed for an analyst to retry.
ATTEMPTS = 2
# What a refusal by the limit per account says (the analysts' page translates it).
LIMITED_FIELD = "account"
LIMITED_MESSAGE = "too many reports asked for by this account; try again later"


class AccountLimit(NamedTuple):
    """The limit on one account's report jobs and that account's key in it."""

    limit: ratelimit.Limit
    key: bytes


def account_limit(settings: Settings, caller: Principal) -> AccountLimit:
    """The configured limit on report jobs, keyed by ``caller``'s account (a keyed
    hash of its user id). Reports are asked for by accounts only."""
    if caller.user_id is None:
        raise Forbidden("authorization", "reports are asked for by an account")
    return AccountLimit(
        settings.limit(ratelimit.Scope.REPORT_ACCOUNT),
        ratelimit.account_key(settings.app_key(), caller.user_id),
    )


def _counting(
    conn: psycopg.Connection, per_account: AccountLimit | None
) -> AbstractContextManager[ratelimit.Taken]:
    """Count one report job against the account's limit for a block
    (``ratelimit.counting``: given back if the block fails); entering it raises
    ``ratelimit.Exceeded`` beyond the limit. Ends the connection's read-only
    transaction first (the limit counts in its own)."""
    conn.commit()
    wanted = [(per_account.limit, per_account.key)] if per_account is not None else []
    return ratelimit.counting(conn, wanted)


def _limited(exc: ratelimit.Exceeded) -> TooManyRequests:
    return TooManyRequests(LIMITED_FIELD, LIMITED_MESSAGE, exc.retry_after)


def generate_report_job(context: JobContext, report_id: str) -> None:
    # A job runs outside any request: its settings and connection are its own.
    attempt = context.job.attempts + 1 if context.job else ATTEMPTS
    with db.connection() as conn:
        service.generate(
            conn,
            uuid.UUID(report_id),
            service.reports_root(get_settings()),
            final=attempt >= ATTEMPTS,
        )


def expire_reports_job(timestamp: int) -> None:
    with db.connection() as conn:
        service.expire(conn, service.reports_root(get_settings()), service.REPORT_MAX_AGE)


def register(app: App) -> None:
    app.task(
        name=GENERATE_TASK,
        queue=REPORTS_QUEUE,
        pass_context=True,
        retry=RetryStrategy(max_attempts=ATTEMPTS - 1, wait=10),
    )(generate_report_job)
    app.periodic(cron="*/10 * * * *")(
        app.task(name=EXPIRE_TASK, queue=REPORTS_QUEUE, queueing_lock=EXPIRE_TASK)(
            expire_reports_job
        )
    )


async def enqueue(app: App, report_id: uuid.UUID) -> None:
    await app.configure_task(GENERATE_TASK).defer_async(report_id=str(report_id))


def start(
    conn: psycopg.Connection,
    app: App,
    election_id: str,
    per_account: AccountLimit | None = None,
) -> Report:
    """Ask for the election's report (``ElectionNotFound`` for an unknown one) and
    queue its job; for a plain (threaded) route. ``per_account``: the caller's
    limit (429 beyond it, nothing stored); None: no limit.

    The report's row is committed before the job is queued, so a worker that picks
    the job at once finds the row. The job is queued on the event loop, which owns
    the queue's async connections (``anyio.from_thread.run`` waits for it there,
    holding this thread only), so the database calls never block the event loop.
    """
    get_election(conn, election_id)
    try:
        with _counting(conn, per_account):
            report = service.create(conn, election_id)
            conn.commit()
            anyio.from_thread.run(enqueue, app, report.id)
    except ratelimit.Exceeded as exc:
        raise _limited(exc) from None
    return report


def retry(
    conn: psycopg.Connection,
    app: App,
    report_id: uuid.UUID,
    per_account: AccountLimit | None = None,
) -> Report | None:
    """Queue a failed report again (None when it is not failed, counting nothing);
    for a plain route, like ``start``, and limited like it."""
    earlier = service.get(conn, report_id)
    if earlier is None or earlier.status != ReportState.FAILED:
        return None
    try:
        with _counting(conn, per_account) as taken:
            report = service.retry(conn, report_id)
            if report is None:  # retried meanwhile by someone else
                taken.undo()
                return None
            conn.commit()
            anyio.from_thread.run(enqueue, app, report.id)
    except ratelimit.Exceeded as exc:
        raise _limited(exc) from None
    return report


def retry_failed(
    conn: psycopg.Connection,
    app: App,
    report_id: uuid.UUID,
    per_account: AccountLimit | None = None,
) -> Report:
    """``retry``, refusing what cannot be retried: 404 for no such report, 409 for
    one that has not failed (the API's and the analysts' page's retry)."""
    report = retry(conn, app, report_id, per_account)
    if report is not None:
        return report
    if service.get(conn, report_id) is None:
        raise NotFound("report_id", "no such report")
    raise Conflict("report_id", "only a failed report can be retried")
