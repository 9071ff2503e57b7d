"""Worker start-up, written once.

A worker is a process that runs the queue's jobs: reading photos, writing reports.
Workers are started three ways (``golos worker``, ``golos worker --processes N``,
and the demo beside its API server), all through here:

- ``queue_app`` builds the queue app with every task registered; the API server
  uses it too, so any process can queue any job and any worker runs it;
- ``run_worker`` is what a worker process runs;
- ``spawn_workers`` starts N worker processes (``python -m api.worker``) and
  returns them as ``Workers``, to wait for or to stop;
- ``reading_progress`` shows, while workers run, how many waiting photos are read.

Workers scale by process, one job at a time each: reading a photo is CPU-bound,
much of it in Python, which runs one thread at a time per process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import IO

from api.reports import jobs as report_jobs
from api.submissions import jobs as submission_jobs
from api.submissions import repository as submissions
from infra import db, queue
from infra.progress import Progress
from infra.settings import Settings, get_settings

# How often the progress bar of `golos worker --until-empty` counts the backlog:
# each count scans the waiting submissions' index, so not every second.
PROGRESS_SECONDS = 2.0
# How long stopped workers get to finish their current job before being killed:
# reading one photo takes a few seconds.
STOP_GRACE_SECONDS = 30.0


def queue_app(settings: Settings) -> queue.App:
    """The queue app of every platform process, with every task registered."""
    return queue.make_app(settings.dsn, submission_jobs.register, report_jobs.register)


async def run_worker(wait: bool) -> None:
    """Run the queue's jobs until stopped (SIGTERM, SIGINT), or, with ``wait=False``,
    until no job is left.

    Start-up first hands the jobs of workers that died mid-job to this one, then
    queues every received submission no job is waiting for (recorded while the
    queue was unreachable). The minutely sweep does both as well; doing them at
    start-up means a restarted platform does not wait for it, and a worker run with
    ``wait=False`` does not stop before they are read.
    """
    # Tesseract may start a thread per core for each photo; with one process per
    # core, the threads of several processes would only contend.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    app = queue_app(get_settings())
    async with app.open_async():
        await queue.retry_stalled_jobs(app)
        await submission_jobs.enqueue_pending(app)
        await app.run_worker_async(wait=wait, concurrency=1, install_signal_handlers=True)


class Workers:
    """Worker processes started by ``spawn_workers``."""

    def __init__(self, processes: list[subprocess.Popen[bytes]]) -> None:
        self.processes = processes

    def running(self) -> bool:
        """Whether any of them is still running."""
        return any(process.poll() is None for process in self.processes)

    def signal(self, signum: int) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signum)

    def wait(self) -> list[int]:
        """Wait until all have exited, passing SIGTERM and SIGINT on to them meanwhile
        (each finishes its current job, then exits); their exit codes.

        Call from the main thread: that is where Python runs signal handlers."""

        def forward(signum: int, frame: FrameType | None) -> None:
            self.signal(signum)

        previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            return [process.wait() for process in self.processes]
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Ask all to stop after their current job; kill those still running after
        ``grace`` seconds."""
        self.signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def spawn_workers(processes: int, until_empty: bool, log: IO[bytes] | None = None) -> Workers:
    """Start ``processes`` worker processes; with ``until_empty`` each exits when no
    job is left. Their output goes to ``log`` (inherited when None)."""
    command = [sys.executable, "-m", "api.worker", *(["--until-empty"] if until_empty else [])]
    return Workers(
        [
            subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT if log else None)
            for _ in range(processes)
        ]
    )


def failed(codes: list[int]) -> bool:
    """Whether a worker exited otherwise than done or stopped by a signal we pass on.
    Pure."""
    return any(code not in (0, -signal.SIGTERM, -signal.SIGINT) for code in codes)


@contextmanager
def reading_progress(progress: Progress) -> Iterator[None]:
    """While the block runs, show how many of the photos waiting to be read (in any
    election) have been read.

    A thread counts, every PROGRESS_SECONDS, the submissions waiting to be read and
    those that arrived since its last look (api.submissions.repository.intake: a
    scan of the backlog's partial index and a seek on seq): the total is what
    waited at the start plus what arrived, and what no longer waits has been read
    (or decided without reading). It reads through its own pooled connection, and
    only reads; it looks once more when the block ends, so the bar ends true.
    """
    done = threading.Event()

    def intake(after_seq: int | None) -> submissions.Intake:
        with db.connection() as conn:
            if after_seq is None:
                after_seq = submissions.newest_seq(conn)
            return submissions.intake(conn, after_seq)

    def poll() -> None:
        # total = what waited at the start + what arrived since; read = total - waiting.
        first = intake(None)
        total, last_seq = first.waiting, first.last_seq
        progress.stage("photos read", total=total)
        while True:
            stopping = done.wait(PROGRESS_SECONDS)
            now = intake(last_seq)
            total, last_seq = total + now.arrived, now.last_seq
            progress.update(max(total - now.waiting, 0), total=total)
            if stopping:
                return

    watcher = threading.Thread(target=poll, name="reading-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def main() -> None:
    """A worker process, as ``spawn_workers`` starts it (``python -m api.worker``)."""
    parser = argparse.ArgumentParser(prog="python -m api.worker", description=main.__doc__)
    parser.add_argument("--until-empty", action="store_true", help="exit when no job is left")
    asyncio.run(run_worker(wait=not parser.parse_args().until_empty))


if __name__ == "__main__":
    main()
