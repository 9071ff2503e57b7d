"""``golos simulate``: a fleet of phones through election day, a network cut of days
and faults, then a reconciliation of what the phones were told with what the
platform counted.

The platform runs for real: the HTTP API under uvicorn (``golos serve``, on
127.0.0.1) and the workers (``golos worker --processes N``), each a separate
process, on the seeded election (a subset of its stations). The phones are the
phone app's own code (``mobile_stub``): each verifies its number with the
development verifier, then keeps its ballot photos in its own outbox (an SQLite
file, as on a phone) and sends them with the client's backoff, jitter and
``Retry-After``.

Time is compressed: ``--time-scale`` simulated seconds pass per real second (one
hour a second by default). The phones live in simulated time (their outboxes'
clock, their backoff); the server lives in real time, so the simulated network
turns the server's ``Retry-After`` into the phones' time.

- **Arrivals**: each voter takes the photo at an hour of a 14-hour day with
  morning and evening peaks (``seeds.fleet.arrival_hours``).
- **The cut**: from ``--cut-start`` for ``--cut-hours`` no request gets through
  (the phones' transport fails). A phone tries with its backoff until the waits
  reach the cap; then its system, whose connectivity check fails too, reports no
  network and the app waits for it (phones keep taking photos meanwhile). When the
  cut ends the system reports the network back on every phone at once
  (``Outbox.network_returned``): the whole queue arrives together.
- **Duplicates**: phones whose first answer is lost (the outbox re-sends the same
  id), phones that re-send a delivered submission, voters who vote again with a new
  photo (the later one counts, the earlier is superseded).
- **Corrupt files**: a truncated JPEG, random bytes, a text file.
- **Abusive clients**, after the cut: one identity flooding, one network (many
  identities behind one /24) flooding, and requests with invented tokens.
- **Faults** (``--faults``), during the surge after the cut: a worker process is
  killed (``SIGKILL``; its supervisor replaces it) and PostgreSQL is restarted.

Every phone sends from its own simulated network address (127.x.y.1: one /24 per
PHONES_PER_NETWORK phones), so the per-network limits apply as they would.

Each phone's outbox is its own SQLite file, as on a phone, in a temporary folder
on a memory file system (/dev/shm when there is one): the file's fsyncs then cost
nothing and thousands of outboxes stay cheap (each keeps one connection open:
three descriptors).

At the end it waits until every outbox is empty and every photo is read, then
reconciles (``seeds.fleet.reconcile``), prints a table and every difference, and
exits 1 if there is any.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import heapq
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import numpy as np
import typer

from infra import db
from infra.migrate import ensure_database
from infra.settings import get_settings
from mobile_stub.client import GolosClient, Submission, VerificationFailed
from mobile_stub.outbox import DELIVERED, FAILED, Outbox
from mobile_stub.retry import Backoff, Decision, decide
from seeds.fleet import (
    CORRUPT,
    Abuse,
    Kind,
    PlannedPhone,
    Platform,
    Reconciliation,
    Row,
    Told,
    corrupt_file,
    plan_fleet,
    reconcile,
)

# The phone's system gives up on a network that fails its connectivity check after
# about this many failed tries in a row (the backoff's waits are at the cap by then).
OFFLINE_AFTER_FAILURES = 10
# Photos at this size read in ~0.15 s and weigh ~100 KB (the reader takes 800-4000 px).
PHOTO_LONG_SIDE = 1200
# The per-network limit the simulation sets (unless given): the honest networks
# (PHONES_PER_NETWORK phones, some of them sending twice) stay below it.
NETWORK_LIMIT = 150
# The abusive clients.
FLOOD_PER_IDENTITY_FACTOR = 3  # the flooding identity sends 3x the per-voter limit
NETWORK_FLOOD_IDENTITIES = 40
INVENTED_TOKENS = 30
ABUSER_PHOTOS = 3
# Faults: this many real seconds into the surge after the cut.
KILL_WORKER_AFTER = 1.0
RESTART_DB_AFTER = 3.0
POLL_SECONDS = 0.5
SHOW_SECONDS = 5.0
HELD_SECONDS = 60.0
STOP_GRACE_SECONDS = 20.0


def command(
    phones: Annotated[int, typer.Option(help="Simulated phones (voters)")] = 2000,
    stations: Annotated[int, typer.Option(help="Polling stations they vote at")] = 100,
    precincts: Annotated[int, typer.Option(help="Stations of the seeded election loaded")] = 300,
    workers: Annotated[int, typer.Option(help="Worker processes reading photos")] = 2,
    time_scale: Annotated[
        float, typer.Option(help="Simulated seconds per real second (3600: an hour a second)")
    ] = 3600.0,
    cut_start: Annotated[
        float, typer.Option(help="Hours after the polls open (07:00) when the network is cut")
    ] = 4.0,
    cut_hours: Annotated[float, typer.Option(help="How long the network stays cut (hours)")] = 61.0,
    faults: Annotated[
        bool, typer.Option(help="Kill a worker and restart PostgreSQL during the surge")
    ] = False,
    concurrency: Annotated[int, typer.Option(help="Phones sending at the same moment")] = 32,
    max_seconds: Annotated[
        float, typer.Option(help="Give up (and report what is missing) after this long")
    ] = 1200.0,
    out: Annotated[Path, typer.Option(help="Logs and the summary go here")] = Path("out/simulate"),
    seed: int = 11,
    reset: Annotated[
        bool,
        typer.Option(
            help="Allow clearing the seeded election's crowd data in an external "
            "database (GOLOS_DATABASE_URL)"
        ),
    ] = False,
) -> None:
    """Thousands of phones through election day, a multi-day network cut, retries,
    duplicates, corrupt files, abusers and faults; then what the phones were told is
    reconciled with what the platform counted (exit 1 on any difference)."""
    # A simulation, never a real election: keys may be generated into the data folder.
    os.environ.setdefault("GOLOS_DEVELOPMENT", "1")
    os.environ.setdefault("GOLOS_SUBMISSIONS_PER_NETWORK", str(NETWORK_LIMIT))
    _scale_quarantine_windows(time_scale)
    get_settings.cache_clear()
    settings = get_settings()
    if not settings.embedded and not reset:
        typer.secho(
            "the simulation clears the seeded election's crowd data; against "
            "GOLOS_DATABASE_URL it runs only with --reset",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(2)
    ensure_database(settings)
    # Stopped (SIGTERM): end as on Ctrl-C, stopping the server and workers it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1` prints where every thread is
    options = Options(
        phones=phones,
        stations=stations,
        precincts=precincts,
        workers=workers,
        time_scale=time_scale,
        cut_start=cut_start,
        cut_hours=cut_hours,
        faults=faults,
        concurrency=concurrency,
        max_seconds=max_seconds,
        out=out,
        seed=seed,
    )
    try:
        result = Simulation(options).run()
    except RuntimeError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None
    if not result.ok:
        raise typer.Exit(1)


def _scale_quarantine_windows(time_scale: float) -> None:
    """Compress the quarantine's windows like the day (unless set): the server counts
    arrivals per window of real time, and a day compressed into seconds would read as
    one implausible burst at every station. Its thresholds are kept; the rate limits
    are not scaled either (honest phones stay far below them; the abusers do not)."""
    from infra.settings import Settings

    for name, spec in Settings.model_fields.items():
        if name.startswith("quarantine_") and name.endswith("_seconds"):
            seconds = max(1, round(float(spec.default) / time_scale))
            os.environ.setdefault(f"GOLOS_{name.upper()}", str(seconds))


@dataclass(frozen=True)
class Options:
    phones: int
    stations: int
    precincts: int
    workers: int
    time_scale: float
    cut_start: float
    cut_hours: float
    faults: bool
    concurrency: int
    max_seconds: float
    out: Path
    seed: int


def _say(message: str) -> None:
    print(message, flush=True)


class Clock:
    """Simulated time: hour 0 is the polls' opening; ``scale`` simulated seconds pass
    per real second. ``now`` is the phones' clock (Unix-like seconds)."""

    EPOCH = 1_596_949_200.0  # 2020-08-09 05:00 UTC: 08:00 in Minsk... near enough

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.start = time.monotonic()

    def now(self) -> float:
        return self.EPOCH + (time.monotonic() - self.start) * self.scale

    def hours(self) -> float:
        return (time.monotonic() - self.start) * self.scale / 3600.0

    def real_at_hour(self, hour: float) -> float:
        return self.start + hour * 3600.0 / self.scale

    def real_at(self, phone_time: float) -> float:
        return self.start + (phone_time - self.EPOCH) / self.scale


class Network:
    """The country's network as the phones see it: cut between two hours."""

    def __init__(self, clock: Clock, cut_from: float, cut_to: float) -> None:
        self.clock, self.cut_from, self.cut_to = clock, cut_from, cut_to

    def down(self) -> bool:
        return self.cut_from <= self.clock.hours() < self.cut_to


def _address(network: int, base: int) -> str:
    """The source address of simulated network ``network`` (one /24 each) from the
    run's block of networks ``base`` (the platform's per-network limits remember
    earlier runs for ten minutes: each run sends from networks of its own). Pure."""
    return f"127.{base + network // 250}.{network % 250}.1"


class PhoneLink(httpx.BaseTransport):
    """One phone's link: through its network's connections to the server, failing
    while the network is cut, losing one answer when asked, and translating the
    server's ``Retry-After`` (real seconds) into the phone's compressed time."""

    def __init__(self, inner: httpx.BaseTransport, network: Network | None, scale: float) -> None:
        self.inner, self.network, self.scale = inner, network, scale
        self.failures_in_row = 0
        self.lose_next_answer = False
        self.lost_answers = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.network is not None and self.network.down():
            self.failures_in_row += 1
            raise httpx.ConnectError("network unreachable (the cut)", request=request)
        try:
            response = self.inner.handle_request(request)
        except httpx.TransportError:
            self.failures_in_row += 1
            raise
        self.failures_in_row = 0
        if (
            self.lose_next_answer
            and request.url.path == "/v1/submissions"
            and response.status_code < 300
        ):
            response.read()
            response.close()
            self.lose_next_answer = False
            self.lost_answers += 1
            raise httpx.ReadError("the answer was lost on the way (simulated)", request=request)
        retry_after = response.headers.get("Retry-After", "")
        if retry_after.strip().isdigit():
            response.headers["Retry-After"] = str(round(int(retry_after) * self.scale))
        return response

    def close(self) -> None:
        pass  # the network's connections are shared; the simulation closes them


@dataclass
class Phone:
    plan: PlannedPhone
    outbox: Outbox
    client: GolosClient
    link: PhoneLink
    token: str = ""
    taken: int = 0  # how many of its planned photos it has taken
    parked: bool = False  # its system reports no network: waits for it
    wake: bool = False  # woken while a step was running
    due_token: int = 0
    resend_status: int | None = None
    resent: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass
class Stats:
    attempts_in_cut: int = 0
    reconnected_at: float | None = None
    faults: list[str] = field(default_factory=list)
    resends: Counter[int] = field(default_factory=Counter)  # final answers to re-sends
    resend_retries: int = 0  # re-sends answered "later" (409, 429, 5xx), tried again


# -- photos (in worker processes) -----------------------------------------------------


def _render(args: tuple[str, str, str, int]) -> tuple[str, bytes]:
    """A phone photo of a ballot marked for ``choice``: distinct per submission."""
    from seeds.demo import _ballot
    from seeds.photos import mark_ballot, phone_photo, random_conditions

    submission_id, choice, template_dir, seed = args
    rng = np.random.default_rng([seed, uuid.UUID(submission_id).int & 0xFFFFFFFF])
    reference, template = _ballot(template_dir)
    conditions = dataclasses.replace(random_conditions(rng), long_side=PHOTO_LONG_SIDE)
    return submission_id, phone_photo(
        mark_ballot(reference, template, [choice], rng), rng, conditions
    )


# -- the simulation ------------------------------------------------------------------


class Simulation:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.settings = get_settings()
        self.rng = np.random.default_rng(options.seed)
        self.stats = Stats()
        self.phones: list[Phone] = []
        self.photos: dict[str, bytes] = {}
        self.abuse: list[Abuse] = []
        self.election_id = ""
        self.base = ""
        self.clock = Clock(options.time_scale)
        self._told_list: list[Told] = []
        self._tries = 0
        blocks = random.Random()  # new networks each run (limits remember ten minutes)
        self.net_base = blocks.randrange(1, 200)
        self.abuser_base = blocks.randrange(210, 250)

    # -- set-up --------------------------------------------------------------------

    def _load_election(self) -> tuple[str, list[str], list[str], Path]:
        from api.elections.service import load_election
        from infra.storage import photo_store
        from seeds.demo import _reset_crowd_data
        from seeds.generate import SEED_DIR, load_seed, write_subset

        folder = self.o.out / "seed-subset"
        write_subset(SEED_DIR, folder, self.o.precincts)
        election = load_seed(folder)
        with db.connection() as conn:
            load_election(conn, folder, photo_store(self.settings))
        _reset_crowd_data(election.election_id)
        ids = list(election.precincts)
        picked = self.rng.choice(len(ids), size=min(self.o.stations, len(ids)), replace=False)
        return election.election_id, election.option_ids, [ids[int(i)] for i in picked], folder

    def _start_platform(self, port: int) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        out = self.o.out
        with open(out / "server.log", "wb") as server_log, open(out / "worker.log", "wb") as log:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "api.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                stdout=server_log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            workers = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "worker", "--processes", str(self.o.workers)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return server, workers
            except httpx.TransportError:
                pass
            if server.poll() is not None:
                break
            time.sleep(0.3)
        _stop(server, workers)
        raise RuntimeError(f"the API server did not start; see {out / 'server.log'}")

    def _make_phones(
        self, plan: list[PlannedPhone], folder: Path
    ) -> dict[int, httpx.HTTPTransport]:
        limits = httpx.Limits(max_connections=self.o.concurrency, max_keepalive_connections=8)
        networks: dict[int, httpx.HTTPTransport] = {}
        jitter = random.Random(self.o.seed)
        for planned in plan:
            if planned.network not in networks:
                networks[planned.network] = httpx.HTTPTransport(
                    local_address=_address(planned.network, self.net_base), limits=limits
                )
            link = PhoneLink(networks[planned.network], None, self.o.time_scale)
            outbox = Outbox(
                folder / f"phone-{planned.index:06d}",
                backoff=Backoff(),
                clock=lambda: self.clock.now(),
                jitter=random.Random(jitter.random()).random,
            )
            self.phones.append(Phone(planned, outbox, GolosClient(self.base, transport=link), link))
        return networks

    def _verify(self, phone: Phone, codes: Callable[[str], str | None]) -> None:
        try:
            phone.token = phone.client.verify(self.election_id, phone.plan.phone, codes)
        except VerificationFailed as exc:
            phone.errors.append(f"not verified: {exc}")
            return
        phone.outbox.save_device_token(self.election_id, phone.token)
        # Its first upload's answer will be lost on the way (after verifying).
        phone.link.lose_next_answer = phone.plan.kind is Kind.LOST_ANSWER

    # -- the run -------------------------------------------------------------------

    def run(self) -> Reconciliation:
        from api.voters.verifiers import DevCodeReader

        o = self.o
        started = time.monotonic()
        o.out.mkdir(parents=True, exist_ok=True)
        self.election_id, options, stations, folder = self._load_election()
        plan = plan_fleet(o.phones, stations, options, self.rng, np.random.default_rng())
        kinds = Counter(p.kind for p in plan)
        _say(
            f"simulating {len(plan)} phones at {len(stations)} stations of {self.election_id} "
            f"on {1 + max(p.network for p in plan)} networks: "
            + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        )
        cut_to = o.cut_start + o.cut_hours
        simulated = max(14.0, cut_to if o.cut_hours else 0.0)
        _say(
            f"day 07:00-21:00 and a cut from hour {o.cut_start:g} for {o.cut_hours:g} h, "
            f"{o.time_scale:g}x: {simulated * 3600 / o.time_scale:.0f} s of simulated time; "
            f"faults {'on' if o.faults else 'off'}"
        )
        template_dir = str(folder / "ballot")
        jobs = [
            (s.submission_id, s.choice, template_dir, o.seed) for p in plan for s in p.submissions
        ]
        abuser_ids = [
            str(uuid.UUID(int=int(self.rng.integers(1, 2**62)))) for _ in range(ABUSER_PHOTOS)
        ]
        jobs += [(sid, options[0], template_dir, o.seed) for sid in abuser_ids]
        port = _free_port()
        self.base = f"http://127.0.0.1:{port}"
        shm = Path("/dev/shm")
        outboxes = Path(tempfile.mkdtemp(prefix="golos-phones-", dir=shm if shm.is_dir() else None))
        server, workers = self._start_platform(port)
        networks: dict[int, httpx.HTTPTransport] = {}
        try:
            with ProcessPoolExecutor(max_workers=2) as pool:
                rendering = pool.map(_render, jobs, chunksize=16)
                self.clock = Clock(o.time_scale)
                networks = self._make_phones(plan, outboxes)
                codes = DevCodeReader(self.settings.dev_codes_path)
                t = time.monotonic()
                with ThreadPoolExecutor(max_workers=8) as verifiers:
                    for _ in verifiers.map(lambda p: self._verify(p, codes), self.phones):
                        pass
                _say(
                    f"{len(self.phones)} phones verified their numbers in "
                    f"{time.monotonic() - t:.1f} s"
                )
                self.photos = dict(rendering)
            fix = np.random.default_rng(o.seed + 1)
            for p in plan:
                if p.kind in CORRUPT:
                    sid = p.submissions[0].submission_id
                    self.photos[sid] = corrupt_file(p.kind, self.photos[sid], fix)
            abuser_photos = [self.photos.pop(sid) for sid in abuser_ids]
            _say(
                f"{len(self.photos)} photos taken "
                f"({sum(map(len, self.photos.values())) / 1e6:.0f} MB)"
            )

            self.clock = Clock(o.time_scale)
            network = Network(self.clock, o.cut_start, cut_to if o.cut_hours > 0 else o.cut_start)
            for phone in self.phones:
                phone.link.network = network
            self._drive(network, workers, abuser_photos, started)
            self._wait_for_reading(workers, started)
            result = self._reconcile()
        finally:
            _stop(server, workers)
            for phone in self.phones:
                phone.outbox.close()
                phone.client.close()
            for transport in networks.values():
                transport.close()
            shutil.rmtree(outboxes, ignore_errors=True)
        seconds = time.monotonic() - started
        self._print(result, seconds)
        summary = {
            "phones": o.phones,
            "seconds": round(seconds, 1),
            "table": result.table,
            "notes": result.notes,
            "faults": self.stats.faults,
            "differences": result.differences,
        }
        (o.out / "simulate-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return result

    def _step(self, phone: Phone, network: Network) -> float | None:
        """What the phone's app does when it wakes: take the photos that are due,
        send what is due, re-send a delivered one if it is that kind of phone; the
        real time it next wants to wake, or None."""
        plan = phone.plan
        hour = self.clock.hours()
        if not phone.token:  # never verified: it cannot send (reported)
            return None
        while phone.taken < len(plan.submissions) and plan.submissions[phone.taken].hour <= hour:
            s = plan.submissions[phone.taken]
            phone.outbox.add(
                Submission(
                    s.submission_id, self.election_id, plan.precinct_id, s.choice, phone.token
                ),
                self.photos[s.submission_id],
            )
            phone.taken += 1
        if phone.parked and not network.down():
            phone.parked = False
            phone.outbox.network_returned()
        down = network.down()
        before = phone.link.failures_in_row
        phone.outbox.send_due(phone.client)
        if down:
            self.stats.attempts_in_cut += phone.link.failures_in_row - before
        if plan.kind is Kind.RESEND and not phone.resent and not down:
            first = plan.submissions[0]
            if phone.outbox.state(first.submission_id).state == DELIVERED:
                self._resend(phone)
        wants: list[float] = []
        if phone.taken < len(plan.submissions):
            wants.append(self.clock.real_at_hour(plan.submissions[phone.taken].hour))
        if down and phone.link.failures_in_row >= OFFLINE_AFTER_FAILURES:
            phone.parked = True  # woken when the network is back (or for its next photo)
            return min(wants) if wants else None
        due = phone.outbox.next_due()
        if due is not None:
            wants.append(self.clock.real_at(due))
        if plan.kind is Kind.RESEND and not phone.resent and phone.taken and self._first_ok(phone):
            wants.append(time.monotonic() + 0.05)  # to send it again once delivered
        return min(wants) if wants else None

    def _first_ok(self, phone: Phone) -> bool:
        """Whether the phone's first submission was not refused (it will be delivered)."""
        return phone.outbox.state(phone.plan.submissions[0].submission_id).state != FAILED

    def _resend(self, phone: Phone) -> None:
        first = phone.plan.submissions[0]
        submission = Submission(
            first.submission_id, self.election_id, phone.plan.precinct_id, first.choice, phone.token
        )
        try:
            response = phone.client.submit(submission, self.photos[first.submission_id])
        except httpx.TransportError:
            return
        if decide(response.status_code) is Decision.RETRY:
            self.stats.resend_retries += 1  # as the app does: the same id again, later
            return
        phone.resent = True
        phone.resend_status = response.status_code
        self.stats.resends[response.status_code] += 1

    def _drive(
        self,
        network: Network,
        workers: subprocess.Popen[bytes],
        abuser_photos: list[bytes],
        started: float,
    ) -> None:
        """Run the phones until every outbox is empty (or the time is up)."""
        o = self.o
        heap: list[tuple[float, int, int]] = []
        results: queue.Queue[tuple[int, float | None]] = queue.Queue()
        in_flight: set[int] = set()
        tokens = iter(range(1, 1 << 62))

        def schedule(index: int, at: float) -> None:
            phone = self.phones[index]
            phone.due_token = next(tokens)
            heapq.heappush(heap, (at, phone.due_token, index))

        def run(index: int) -> None:
            phone = self.phones[index]
            try:
                wants = self._step(phone, network)
            except Exception as exc:  # kept and reported, the phone retries
                phone.errors.append(f"{type(exc).__name__}: {exc}")
                wants = time.monotonic() + 1.0 if len(phone.errors) < 20 else None
            results.put((index, wants))

        for phone in self.phones:
            schedule(phone.plan.index, self.clock.real_at_hour(phone.plan.submissions[0].hour))
        surge = self.clock.real_at_hour(network.cut_to if o.cut_hours > 0 else 11.0)
        events: list[tuple[float, str, Callable[[], None]]] = [
            (surge + 0.5, "abusers", lambda: self._abusers(abuser_photos)),
        ]
        if o.faults:
            events.append(
                (surge + KILL_WORKER_AFTER, "kill a worker", lambda: self._kill_worker(workers))
            )
            events.append((surge + RESTART_DB_AFTER, "restart PostgreSQL", self._restart_database))
        side: list[threading.Thread] = []
        reconnected = o.cut_hours <= 0
        tidied = shown = 0.0
        deadline = started + o.max_seconds
        with ThreadPoolExecutor(max_workers=o.concurrency) as pool:
            while True:
                now = time.monotonic()
                while True:
                    try:
                        index, wants = results.get_nowait()
                    except queue.Empty:
                        break
                    in_flight.discard(index)
                    phone = self.phones[index]
                    if phone.wake:
                        phone.wake = False
                        schedule(index, now)
                    elif wants is not None:
                        schedule(index, wants)
                if not reconnected and not network.down() and self.clock.hours() >= network.cut_to:
                    reconnected = True
                    self.stats.reconnected_at = now - started
                    for phone in self.phones:
                        if phone.parked:
                            if phone.plan.index in in_flight:
                                phone.wake = True
                            else:
                                schedule(phone.plan.index, now)
                for event in [e for e in events if e[0] <= now]:
                    events.remove(event)
                    thread = threading.Thread(target=event[2], name=event[1], daemon=True)
                    thread.start()
                    side.append(thread)
                while heap and heap[0][0] <= now and len(in_flight) < o.concurrency:
                    _, token, index = heapq.heappop(heap)
                    if token != self.phones[index].due_token or index in in_flight:
                        continue
                    in_flight.add(index)
                    pool.submit(run, index)
                if now - shown >= SHOW_SECONDS:
                    shown = now
                    _say(
                        f"  {now - started:6.1f} s, hour {self.clock.hours():5.1f}"
                        f"{' (cut)' if network.down() else ''}: {len(in_flight)} phones sending,"
                        f" {sum(p.parked for p in self.phones)} waiting for the network,"
                        f" {len(heap)} scheduled"
                    )
                    if reconnected and len(heap) <= 3:
                        for _, _, index in heap:
                            waiting = [
                                f"{i.state} after {i.attempts} tries: {i.last_error}"
                                for i in self.phones[index].outbox.items()
                                if i.state not in (DELIVERED, FAILED)
                            ]
                            _say(f"    phone {index} ({self.phones[index].plan.kind}): {waiting}")
                if now - tidied >= POLL_SECONDS:  # drop the entries that were replaced
                    tidied = now
                    heap[:] = [h for h in heap if h[1] == self.phones[h[2]].due_token]
                    heapq.heapify(heap)
                    parked = any(p.parked for p in self.phones)
                    # Done when no phone wants to send again before HELD_SECONDS from
                    # now: those still waiting were told to come back much later (a
                    # 429's Retry-After) and are reported as such.
                    later = all(h[0] > now + HELD_SECONDS for h in heap)
                    if later and not in_flight and not events and (reconnected or not parked):
                        break
                if now > deadline:
                    _say(f"time is up ({o.max_seconds:.0f} s): stopping the phones")
                    break
                wait = 0.02
                if heap and len(in_flight) < o.concurrency:
                    wait = max(0.0, min(wait, heap[0][0] - now))
                if wait > 0:  # until a phone is due, or one's step ends
                    try:
                        item = results.get(timeout=wait)
                    except queue.Empty:
                        pass
                    else:
                        results.put(item)
        for thread in side:
            thread.join(timeout=120)

    # -- the abusive clients -------------------------------------------------------

    def _abusers(self, photos: list[bytes]) -> None:
        from api.voters.verifiers import DevCodeReader

        codes = DevCodeReader(self.settings.dev_codes_path)
        per_voter = self.settings.submissions_per_voter
        per_network = self.settings.submissions_per_network
        rng = np.random.default_rng()  # new numbers each run (limits last an hour)

        def identity(address: str) -> tuple[GolosClient, str]:
            client = GolosClient(
                self.base, transport=httpx.HTTPTransport(local_address=address), timeout=60
            )
            phone = f"+37544{int(rng.integers(0, 10**7)):07d}"
            return client, client.verify(self.election_id, phone, codes)

        def flood(
            name: str,
            senders: list[tuple[GolosClient, str]],
            each: int,
            allowed: int,
            station: str | None = None,
        ) -> None:
            messages: dict[int, str] = {}
            answers: Counter[int] = Counter()
            accepted: list[str] = []
            owner: dict[str, str] = {}
            bare_429 = 0
            for n in range(each):
                for k, (client, token) in enumerate(senders):
                    sid = str(uuid.UUID(bytes=rng.bytes(16), version=4))
                    at = (
                        station or self.phones[int(rng.integers(len(self.phones)))].plan.precinct_id
                    )
                    submission = Submission(sid, self.election_id, at, "tsikhanouskaya", token)
                    for _ in range(20):  # the same id again after no answer or a 5xx/409
                        try:
                            response = client.submit(submission, photos[(n + k) % len(photos)])
                        except httpx.TransportError:
                            time.sleep(0.5)
                            continue
                        if response.status_code in (409,) or response.status_code >= 500:
                            time.sleep(0.5)
                            continue
                        break
                    else:
                        continue
                    answers[response.status_code] += 1
                    if response.status_code >= 400 and response.status_code not in messages:
                        messages[response.status_code] = response.text[:160]
                    if response.status_code < 300:
                        accepted.append(sid)
                        owner[sid] = f"{name}#{k}"
                    elif response.status_code == 429 and "Retry-After" not in response.headers:
                        bare_429 += 1
            self.abuse.append(
                Abuse(
                    name,
                    sum(answers.values()),
                    dict(answers),
                    accepted,
                    allowed,
                    bare_429,
                    owner,
                    messages,
                )
            )

        try:
            one = identity(f"127.{self.abuser_base}.0.1")
            flood("one identity flooding", [one], FLOOD_PER_IDENTITY_FACTOR * per_voter, per_voter)
            crowd = [
                identity(f"127.{self.abuser_base}.1.1") for _ in range(NETWORK_FLOOD_IDENTITIES)
            ]
            each = max(1, min(per_voter - 1, per_network // NETWORK_FLOOD_IDENTITIES + 2))
            # All at one station: the burst of forged proof the quarantine is for.
            target = self.phones[0].plan.precinct_id
            flood("one network flooding", crowd, each, per_network, station=target)
            invented = GolosClient(
                self.base,
                transport=httpx.HTTPTransport(local_address=f"127.{self.abuser_base}.2.1"),
            )
            fake_tokens = [f"golos_vt_{rng.bytes(24).hex()}" for _ in range(INVENTED_TOKENS)]
            flood("invented tokens", [(invented, t) for t in fake_tokens], 1, 0)
        except Exception as exc:  # reported as a difference
            self.abuse.append(
                Abuse(f"abusers stopped: {type(exc).__name__}: {exc}", 0, {}, [], -1, 0)
            )

    # -- faults --------------------------------------------------------------------

    def _kill_worker(self, workers: subprocess.Popen[bytes]) -> None:
        children = Path(f"/proc/{workers.pid}/task/{workers.pid}/children")
        try:
            pids = [int(p) for p in children.read_text().split()]
        except OSError:
            pids = []
        if not pids:
            self.stats.faults.append("kill a worker: no worker process found")
            return
        os.kill(pids[-1], signal.SIGKILL)
        self.stats.faults.append(
            f"killed worker process {pids[-1]} (SIGKILL) at "
            f"{time.monotonic() - self.clock.start:.1f} s"
        )

    def _restart_database(self) -> None:
        from infra.pg import EmbeddedPostgres

        if not self.settings.embedded:
            self.stats.faults.append("restart PostgreSQL: skipped (not the embedded cluster)")
            return
        cluster = EmbeddedPostgres(self.settings.pg_dir)
        t = time.monotonic()
        cluster.stop()
        cluster.start()
        self.stats.faults.append(
            f"restarted PostgreSQL at {t - self.clock.start:.1f} s "
            f"(down {time.monotonic() - t:.1f} s)"
        )

    # -- the end -------------------------------------------------------------------

    def _wait_for_reading(self, workers: subprocess.Popen[bytes], started: float) -> None:
        from api.submissions import repository as submissions

        deadline = started + self.o.max_seconds
        shown = 0.0
        while time.monotonic() < deadline:
            try:
                with db.connection() as conn:
                    received, read = submissions.progress(conn, self.election_id)
            except Exception:  # the database may be restarting
                time.sleep(POLL_SECONDS)
                continue
            if read >= received:
                return
            if time.monotonic() - shown >= SHOW_SECONDS:
                shown = time.monotonic()
                _say(f"  {shown - started:6.1f} s: {read} of {received} photos read")
            if workers.poll() is not None:
                _say(
                    f"the workers stopped (exit {workers.returncode}); "
                    f"see {self.o.out / 'worker.log'}"
                )
                return
            time.sleep(POLL_SECONDS)
        _say(f"time is up ({self.o.max_seconds:.0f} s): not every photo was read")

    def _told(self) -> list[Told]:
        items: list[tuple[Phone, Any]] = [
            (phone, item) for phone in self.phones for item in phone.outbox.items()
        ]

        def final(pair: tuple[Phone, Any]) -> Told:
            phone, item = pair
            status, reasons, marks = None, (), ()
            if item.state == DELIVERED:
                for _ in range(5):
                    try:
                        answer = phone.client.status(item.submission_id, phone.token)
                    except httpx.HTTPError:
                        time.sleep(0.5)
                        continue
                    status = str(answer["status"])
                    reasons = tuple(answer["reasons"])
                    marks = tuple(answer["marks"] or ())
                    break
            return Told(
                phone=phone.plan.index,
                kind=phone.plan.kind,
                submission_id=item.submission_id,
                precinct_id=item.precinct_id,
                state=item.state,
                http_status=item.http_status,
                error_field=item.error_field if item.state == FAILED else None,
                status=status,
                reasons=reasons,
                marks=marks,
                last_error=item.last_error,
            )

        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(final, items))

    def _platform(self, told: list[Told]) -> Platform:
        from api.submissions import repository as submissions
        from tally import repository as tallies

        ids = {t.submission_id for t in told} | {s for a in self.abuse for s in a.accepted_ids}
        with db.connection() as conn:
            rows: dict[str, Row] = {}
            for sid in ids:
                status = submissions.get_status(conn, uuid.UUID(sid))
                if status is not None:
                    rows[sid] = Row(
                        str(status.status),
                        status.precinct_id,
                        tuple(status.reasons),
                        tuple(status.marks or ()),
                    )
            by_status = submissions.count_by_status(conn, self.election_id)
            voters = tallies.photo_voters(conn, self.election_id)
            votes = tallies.photo_tally(conn, self.election_id)
            stations = set(voters) | {r.precinct_id for r in rows.values()}
            verified = {
                p: [
                    str(s)
                    for s in submissions.station_verified_photos(conn, self.election_id, p, 10**7)
                ]
                for p in sorted(stations)
            }
        return Platform(rows, sum(by_status.values()), by_status, voters, votes, verified)

    def _reconcile(self) -> Reconciliation:
        told = self._told()
        for _ in range(10):
            try:
                platform = self._platform(told)
                break
            except Exception:  # the database may still be coming back
                time.sleep(1.0)
        else:
            platform = self._platform(told)
        result = reconcile(told, platform, self.abuse)
        for phone in self.phones:
            for error in phone.errors[:3]:
                result.differences.append(f"phone {phone.plan.index}: {error}")
        for code, n in sorted(self.stats.resends.items()):
            if code != 200:  # the same id again is answered from the first result
                result.differences.append(f"{n} re-sends of a delivered id answered {code}")
        self._told_list = told
        self._tries = sum(i.attempts for p in self.phones for i in p.outbox.items())
        return result

    def _print(self, r: Reconciliation, seconds: float) -> None:
        told = self._told_list
        tries = self._tries
        _say("")
        _say(f"Golos fleet simulation: {len(self.phones)} phones, {seconds:.1f} s")
        _say(
            f"  network cut {self.o.cut_hours:g} h from hour {self.o.cut_start:g}: "
            f"{self.stats.attempts_in_cut} tries failed during it; the network came back "
            f"at {self.stats.reconnected_at or 0:.1f} s"
        )
        resends = ", ".join(f"{n}x{c}" for c, n in sorted(self.stats.resends.items()))
        _say(
            f"  {tries} tries for {len(told)} submissions; answers lost (the outbox re-sent "
            f"the same id): {sum(p.link.lost_answers for p in self.phones)}; delivered ids "
            f"sent again, answered: {resends or 'none'} (after {self.stats.resend_retries} "
            "answers to try again later)"
        )
        for fault in self.stats.faults:
            _say(f"  fault: {fault}")
        for note in r.notes:
            _say(f"  {note}")
        refused = Counter(
            f"{t.kind}: HTTP {t.http_status} {t.error_field}" for t in told if t.state == FAILED
        )
        for what, n in sorted(refused.items()):
            _say(f"  refused at upload: {n} {what}")
        reasons = Counter(
            f"{t.status}: {t.reasons[0]}"
            for t in told
            if t.status not in (None, "verified") and t.reasons
        )
        for what, n in sorted(reasons.items()):
            _say(f"  not counted: {n} {what}")
        _say("")
        _say(f"  {'':<28} {'phones were told':>16} {'platform counted':>16}")
        for what, ours, theirs in r.table:
            mark = "" if ours == theirs else "  <- differs"
            _say(f"  {what:<28} {ours:>16} {theirs:>16}{mark}")
        _say("")
        if r.ok:
            _say("reconciled: nothing lost, nothing counted twice, every refusal explained")
        else:
            _say(f"{len(r.differences)} differences:")
            for d in r.differences[:50]:
                _say(f"  {d}")
            if len(r.differences) > 50:
                _say(f"  ... and {len(r.differences) - 50} more")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
