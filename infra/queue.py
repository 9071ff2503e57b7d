"""The job queue: procrastinate, on the platform's own PostgreSQL (no extra server)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from procrastinate import App, PsycopgConnector

__all__ = ["App", "make_app", "retry_stalled_jobs"]

log = logging.getLogger(__name__)

# A worker that has sent no heartbeat for this long is taken for dead, and its
# running jobs are handed to another worker.
STALLED_AFTER_SECONDS = 30.0


def make_app(dsn: str, *registrations: Callable[[App], None]) -> App:
    app = App(
        connector=PsycopgConnector(conninfo=dsn, min_size=1, max_size=4),
        worker_defaults={
            "update_heartbeat_interval": 5.0,
            "stalled_worker_timeout": STALLED_AFTER_SECONDS,
        },
    )
    for register in registrations:
        register(app)
    return app


async def retry_stalled_jobs(
    app: App, seconds_since_heartbeat: float = STALLED_AFTER_SECONDS
) -> int:
    """Put back in the queue the jobs of workers that died mid-job."""
    stalled = list(
        await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds_since_heartbeat)
    )
    for job in stalled:
        log.warning("retrying job %s of a worker that stopped responding", job.id)
        await app.job_manager.retry_job(job)
    return len(stalled)
