"""Worker start-up, written once.

A worker is a process that runs the queue's jobs: reading photos, writing reports.
Workers are started three ways (``golos worker``, ``golos worker --processes N``,
and the demo beside its API server), all through here:

- ``queue_app`` builds the queue app with every task registered; the API server
  uses it too, so any process can queue any job and any worker runs it;
- ``run_worker`` is what a worker process runs: a waiting worker that loses its
  database (a restart, a network cut) reconnects by itself, with backoff, and
  never exits on its own; every few seconds it hands on the jobs of workers that
  died mid-job (``infra.queue.retry_stalled_jobs``), so a killed worker's photo
  is read again within about 20 s; a worker run until the queue is empty exits
  non-zero when the database fails it;
- ``spawn_workers`` starts N worker processes (``python -m api.worker``) and
  returns them as ``Workers``, to wait for or to stop; a waiting worker process
  that dies (killed, crashed) is replaced, with backoff, and the replacement
  logged;
- ``reading_progress`` shows, while workers run, how many waiting photos are read.

Workers scale by process, one job at a time each: reading a photo is CPU-bound,
much of it in Python, which runs one thread at a time per process.

Ballots before reports: every worker takes a waiting ballot before a waiting
report (the ballots' jobs have the higher priority,
api.submissions.jobs.BALLOT_PRIORITY), and of N worker processes only the first
writes reports at all (the others run ``--ballots-only``). A burst of report
requests therefore never holds a voter's photo back by more than the one report
the first worker may be writing, and not at all with two processes or more.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import IO

from api.protocols import jobs as protocol_jobs
from api.reports import jobs as report_jobs
from api.submissions import jobs as submission_jobs
from api.submissions import repository as submissions
from infra import db, queue
from infra.progress import Progress
from infra.settings import Settings, get_settings
from infra.threads import one_thread_per_process

# How often the progress bar of `golos worker --until-empty` counts the backlog:
# each count scans the waiting submissions' index, so not every second.
PROGRESS_SECONDS = 2.0
# How long stopped workers get to finish their current job before being killed:
# reading one photo takes a few seconds.
STOP_GRACE_SECONDS = 30.0
# Reconnecting (a worker to its database) and replacing (a dead worker process)
# wait 1 s, then twice as long after each failure in a row, up to 15 s: a
# database restart takes a few seconds, so the first tries usually succeed, and
# once the database is back a worker resumes within 15 s while a database that
# stays down costs four log lines a minute.
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 15.0
# A worker that ran this long before failing starts its backoff afresh: the
# failure is a new outage, not the same one again.
HEALTHY_RUN_SECONDS = 60.0
# How often the supervisor of worker processes looks for dead ones.
SUPERVISE_SECONDS = 0.5
# How often each waiting worker looks for the jobs of workers that died mid-job
# (no heartbeat for queue.STALLED_AFTER_SECONDS) and hands them on: one indexed
# query. The minutely sweep does it too, but then a photo whose worker was killed
# waited up to a minute and a half; now at most STALLED_AFTER_SECONDS + this.
STALLED_CHECK_SECONDS = 5.0
# How many times a worker run until the queue is empty starts procrastinate's
# worker again when it stopped with jobs ready (its listening connection broke):
# once is the usual case; three in a row means the database keeps failing it.
UNTIL_EMPTY_RUNS = 3

log = logging.getLogger("golos.worker")


def queue_app(settings: Settings) -> queue.App:
    """The queue app of every platform process, with every task registered."""
    return queue.make_app(
        settings.dsn, submission_jobs.register, report_jobs.register, protocol_jobs.register
    )


def backoff_seconds(failures: int) -> float:
    """How long to wait before the next try after ``failures`` failures in a row
    (1, 2, 4, 8, 15, 15, ... s). Pure."""
    return min(BACKOFF_FIRST_SECONDS * 2 ** max(failures - 1, 0), BACKOFF_MAX_SECONDS)


class WorkerStopped(RuntimeError):
    """A worker run until the queue is empty stopped with jobs still ready: its
    database connection broke (the process exits non-zero)."""


async def _catch_up(app: queue.App) -> None:
    """Hand the jobs of workers that died mid-job to this one, then queue every
    received submission no job is waiting for (recorded while the queue was
    unreachable). The minutely sweep does both as well; doing them at start-up
    means a restarted platform does not wait for it, and a worker run with
    ``wait=False`` does not stop before they are read."""
    await queue.retry_stalled_jobs(app)
    await submission_jobs.enqueue_pending(app)


def _queues(ballots_only: bool) -> list[str] | None:
    """The queues a worker takes jobs from: every queue, or the ballots' only. Pure."""
    return [submission_jobs.PHOTOS_QUEUE] if ballots_only else None


async def _until_empty(settings: Settings, ballots_only: bool) -> None:
    """Run jobs until none is ready. procrastinate's worker also stops when its
    listening connection breaks; it is run again while jobs are ready, and a
    database that cannot be reached raises (the process exits non-zero)."""
    app = queue_app(settings)
    async with app.open_async():
        await _catch_up(app)
        for _ in range(UNTIL_EMPTY_RUNS):
            await app.run_worker_async(
                wait=False,
                concurrency=1,
                fetch_job_polling_interval=queue.FETCH_POLL_SECONDS,
                install_signal_handlers=True,
                queues=_queues(ballots_only),  # type: ignore[arg-type]  # None: every queue
            )
            if not await queue.ready_jobs(app, _queues(ballots_only)):
                return
        raise WorkerStopped(f"the worker stopped {UNTIL_EMPTY_RUNS} times with jobs ready")


async def _hand_on_stalled(app: queue.App) -> None:
    """Every STALLED_CHECK_SECONDS, put back in the queue the jobs of workers that
    died mid-job (killed, their machine lost), until cancelled. A failure (the
    database going away) is logged and tried again next time: the worker notices a
    lost database by itself."""
    while True:
        await asyncio.sleep(STALLED_CHECK_SECONDS)
        try:
            await queue.retry_stalled_jobs(app)
        except Exception as exc:
            log.info("looking for stalled jobs failed: %s", type(exc).__name__)


async def _serve(settings: Settings, stop: asyncio.Event, ballots_only: bool) -> None:
    """One connection's worth of work: open the queue, catch up, run jobs until
    ``stop`` is set (returns once the current job is done) or the worker stops by
    itself (its listening connection or heartbeat failed) or raises. Meanwhile the
    jobs of dead workers are handed on (``_hand_on_stalled``)."""
    app = queue_app(settings)
    async with app.open_async():
        await _catch_up(app)
        if stop.is_set():
            return
        watchdog = asyncio.create_task(_hand_on_stalled(app))
        try:
            await _work(app, stop, ballots_only)
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog


async def _work(app: queue.App, stop: asyncio.Event, ballots_only: bool) -> None:
    """Run jobs until ``stop`` is set or procrastinate's worker stops or raises."""
    work = asyncio.create_task(
        app.run_worker_async(
            wait=True,
            concurrency=1,
            fetch_job_polling_interval=queue.FETCH_POLL_SECONDS,
            install_signal_handlers=False,
            queues=_queues(ballots_only),  # type: ignore[arg-type]  # None: every queue
        )
    )
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not work.done():  # asked to stop: procrastinate finishes the job first
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
        return
    work.result()  # its exception, if any


async def run_worker(wait: bool, ballots_only: bool = False) -> None:
    """Run the queue's jobs until stopped (SIGTERM, SIGINT: the current job is
    finished first), or, with ``wait=False``, until no job is left; with
    ``ballots_only``, only the ballots' (photos queue: reading photos, the sweep).

    A waiting worker never stops on its own: when its database goes away (the
    worker's listening connection breaks, a query fails) it logs why, waits
    (``backoff_seconds``) and connects again, catching up at once (stalled jobs,
    submissions without a job). With ``wait=False`` a failure raises instead.
    """
    # Tesseract and OpenBLAS may start a thread per core for each call; with one
    # process per core, the threads of several processes would only contend.
    one_thread_per_process()
    settings = get_settings()
    if not wait:
        await _until_empty(settings, ballots_only)
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    failures = 0
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                await _serve(settings, stop, ballots_only)
            except Exception as exc:
                # The detail (a connection string's host, a file name) goes to the
                # log only, like every other error.
                log.warning("worker lost its database: %s: %s", type(exc).__name__, exc)
            else:
                if stop.is_set():
                    return
                log.warning("worker stopped by itself: its database connection broke")
            healthy = time.monotonic() - started >= HEALTHY_RUN_SECONDS
            failures = 1 if healthy else failures + 1
            delay = backoff_seconds(failures)
            log.warning("worker reconnecting in %.0f s (failure %d in a row)", delay, failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


class Workers:
    """Worker processes started by ``spawn_workers``.

    Waiting workers (not ``until_empty``) are supervised by a thread: a process that
    exits failed (``failed``: killed, crashed, exited non-zero) while no stop was
    asked is replaced after ``backoff_seconds`` (counted per slot, afresh after a
    process that ran HEALTHY_RUN_SECONDS), and the replacement is logged. A worker
    run until the queue is empty is not replaced: its failure is the run's answer.
    """

    def __init__(self, commands: list[list[str]], log_fd: int | None, supervise: bool) -> None:
        self._commands = commands  # one per process
        # Our own copy of the log's descriptor: the caller may close its file once
        # the workers are started, and a replacement needs it later.
        self._log_fd = os.dup(log_fd) if log_fd is not None else None
        self._lock = threading.Lock()
        self._stopping = False
        self._started_at: list[float] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        self.replaced = 0  # processes started in place of dead ones
        for slot in range(len(commands)):
            self.processes.append(self._start(slot))
            self._started_at.append(time.monotonic())
        self._supervisor: threading.Thread | None = None
        if supervise:
            self._supervisor = threading.Thread(
                target=self._supervise, name="worker-supervisor", daemon=True
            )
            self._supervisor.start()

    def _start(self, slot: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self._commands[slot],
            stdout=self._log_fd,
            stderr=subprocess.STDOUT if self._log_fd is not None else None,
        )

    def _supervise(self) -> None:
        failures = [0] * len(self.processes)
        restart_at: dict[int, float] = {}
        while True:
            with self._lock:
                if self._stopping:
                    return
                now = time.monotonic()
                for slot, process in enumerate(self.processes):
                    code = process.poll()
                    if code is None or not failed([code]):
                        continue
                    if slot not in restart_at:
                        healthy = now - self._started_at[slot] >= HEALTHY_RUN_SECONDS
                        failures[slot] = 1 if healthy else failures[slot] + 1
                        delay = backoff_seconds(failures[slot])
                        restart_at[slot] = now + delay
                        log.warning(
                            "worker process %d (pid %d) exited with %d; "
                            "starting another in %.0f s",
                            slot, process.pid, code, delay,
                        )  # fmt: skip
                    elif now >= restart_at[slot]:
                        del restart_at[slot]
                        self.processes[slot] = self._start(slot)
                        self._started_at[slot] = now
                        self.replaced += 1
                        log.warning(
                            "worker process %d replaced (pid %d)", slot, self.processes[slot].pid
                        )
            time.sleep(SUPERVISE_SECONDS)

    def running(self) -> bool:
        """Whether they are still at work: any is running, or a dead one is about to
        be replaced."""
        return self._settled() is None

    def _settled(self) -> list[int] | None:
        """Their exit codes once all have exited for good (none is to be replaced)."""
        with self._lock:
            codes = [process.poll() for process in self.processes]
            if any(code is None for code in codes):
                return None
            exited = [code for code in codes if code is not None]
            if self._supervisor is not None and not self._stopping and failed(exited):
                return None  # a replacement is coming
            return exited

    def signal(self, signum: int) -> None:
        with self._lock:
            self._stopping = True
            for process in self.processes:
                if process.poll() is None:
                    process.send_signal(signum)

    def wait(self) -> list[int]:
        """Wait until all have exited for good, passing SIGTERM and SIGINT on to them
        meanwhile (each finishes its current job, then exits); their exit codes.

        Call from the main thread: that is where Python runs signal handlers."""

        def forward(signum: int, frame: FrameType | None) -> None:
            self.signal(signum)

        previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            while (codes := self._settled()) is None:
                time.sleep(SUPERVISE_SECONDS)
            return codes
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._close()

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
        self._close()

    def _close(self) -> None:
        with self._lock:
            self._stopping = True
            if self._log_fd is not None:
                os.close(self._log_fd)
                self._log_fd = None


def spawn_workers(
    processes: int,
    until_empty: bool,
    log: IO[bytes] | None = None,
    ballots_only: bool = False,
) -> Workers:
    """Start ``processes`` worker processes; with ``until_empty`` each exits when no
    job is left, else a dead one is replaced (``Workers``). Their output goes to
    ``log`` (inherited when None).

    The first takes every job, ballots first; the others take only ballots. So at
    most one report is written at a time, and with two processes or more at least
    one is always free for ballots, however many reports wait. ``ballots_only``: the
    first too (a machine added to read photos, while another writes the reports)."""
    command = [sys.executable, "-m", "api.worker", *(["--until-empty"] if until_empty else [])]
    commands = [
        command if slot == 0 and not ballots_only else [*command, "--ballots-only"]
        for slot in range(processes)
    ]
    return Workers(commands, log.fileno() if log is not None else None, supervise=not until_empty)


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
    parser.add_argument(
        "--ballots-only", action="store_true", help="read photos only, never write reports"
    )
    args = parser.parse_args()
    asyncio.run(run_worker(wait=not args.until_empty, ballots_only=args.ballots_only))


if __name__ == "__main__":
    main()
