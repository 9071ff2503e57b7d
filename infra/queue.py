"""The job queue: procrastinate, on the platform's own PostgreSQL (no extra server)."""

from __future__ import annotations

import logging

from procrastinate import App, Blueprint, PsycopgConnector

__all__ = ["App", "make_app", "retry_stalled_jobs"]

log = logging.getLogger(__name__)

# A worker that has sent no heartbeat for this long is taken for dead, and its
# running jobs are handed to another worker.
STALLED_AFTER_SECONDS = 30.0


def make_app(dsn: str, *blueprints: Blueprint) -> App:
    app = App(
        connector=PsycopgConnector(conninfo=dsn, min_size=1, max_size=4),
        worker_defaults={
            "update_heartbeat_interval": 5.0,
            "stalled_worker_timeout": STALLED_AFTER_SECONDS,
        },
    )
    for blueprint in blueprints:
        app.add_tasks_from(blueprint, namespace="golos")
    return app


async def retry_stalled_jobs(app: App, seconds_since_heartbeat: float = STALLED_AFTER_SECONDS) -> int:
    """Put back in the queue the jobs of workers that died mid-job."""
    stalled = list(
        await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds_since_heartbeat)
    )
    for job in stalled:
        log.warning("retrying job %s of a worker that stopped responding", job.id)
        await app.job_manager.retry_job(job)
    return len(stalled)
