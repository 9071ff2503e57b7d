"""``golos demo``: the whole platform on the seeded election, over real HTTP.

Loads the seeds, starts the API server and workers as separate processes,
simulates voters' phones uploading ballot photos (some over a flaky network,
some re-sending, some attacking), waits for every photo to be read, writes the
report and says how the flags compare with the seeded falsifications.

The demo lives with the seeds: the product (``api/``) never imports it. The
``golos`` command finds it through the entry point ``golos.commands: demo``
(pyproject.toml), so every ``golos`` run imports this module to learn the
command's options (about 0.3 s more than the CLI loads anyway: OpenCV, the seed
generator, the phone stub).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import numpy as np
import typer
from PIL import Image
from rich.progress import Progress as RichProgress
from rich.progress import TaskID

from infra import db
from infra.migrate import ensure_database
from infra.progress import progress_bar, rich_bars
from infra.settings import get_settings
from infra.storage import photo_store
from mobile_stub.client import FlakyTransport, GolosClient, Submission
from mobile_stub.outbox import Outbox, Outcome
from mobile_stub.retry import Backoff
from ocr.template import BallotTemplate
from seeds.crowd import SimulatedVoter, provable_precincts, simulate_crowd
from seeds.generate import SEED_DIR, load_seed, write_subset
from tally.vocab import Flag, Source

if TYPE_CHECKING:
    from api.worker import Workers

# Every this-many-th request is dropped by the simulated network; phones retry.
DROP_EVERY = 9
# Every this-many-th voter's app re-sends a delivered submission (lost answer).
RESEND_EVERY = 25
READ_DEADLINE_SECONDS = 1800
# How often the demo reads back how many photos the server has received and read.
POLL_SECONDS = 1.0
# How long the API server gets to finish its requests when the demo stops it.
STOP_GRACE_SECONDS = 30.0


def command(
    voters: Annotated[int, typer.Option(help="Simulated voters uploading photos")] = 1200,
    stations: Annotated[int, typer.Option(help="Polling stations they vote at")] = 60,
    precincts: Annotated[
        int, typer.Option(help="Load only this many precincts (0: all 5,767)")
    ] = 0,
    workers: Annotated[int, typer.Option(help="Worker processes reading photos")] = 2,
    out: Annotated[Path, typer.Option(help="Where the report goes")] = Path("out/demo"),
    seed: int = 7,
    reset: Annotated[
        bool,
        typer.Option(
            help="Allow clearing the seeded election's crowd data in an "
            "external database (GOLOS_DATABASE_URL)"
        ),
    ] = False,
    serve: Annotated[
        bool | None,
        typer.Option(
            "--serve/--no-serve",
            help="Keep the web app running afterwards until Ctrl-C "
            "(default: when the output is a terminal)",
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="The web app's port when it keeps running")] = 8000,
) -> None:
    """The whole platform on the seeded election: upload, read, tally, flag, report;
    then the web app, with demo accounts for observers, an analyst and an admin."""
    # A laptop demo: its keys may be generated into the data folder
    # (GOLOS_DEVELOPMENT), and all its simulated phones come from 127.0.0.1, one
    # network, so the per-network limits are off. The server and workers it starts
    # inherit these; a production setting given in the environment is kept.
    os.environ.setdefault("GOLOS_DEVELOPMENT", "1")
    os.environ.setdefault("GOLOS_SUBMISSIONS_PER_NETWORK", "0")
    os.environ.setdefault("GOLOS_QUARANTINE_PER_NETWORK_STATION", "0")
    os.environ.setdefault("GOLOS_VERIFICATIONS_PER_NETWORK", "0")
    get_settings.cache_clear()
    settings = get_settings()
    ensure_database(settings)
    try:
        run_demo(
            voters=voters,
            stations=stations,
            precincts=precincts,
            workers=workers,
            out=out,
            seed=seed,
            reset=reset,
        )
        accounts = demo_accounts(settings.data_dir.resolve() / DEMO_ACCOUNTS_FILE)
    except RuntimeError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    if serve is None:
        serve = sys.stdout.isatty()
    if serve:
        _serve_until_interrupted(port, workers, out, accounts)
    else:
        _print_web_app(f"http://127.0.0.1:{port}", accounts, running=False)


# The demo's accounts: two observers (the two-person rule needs two), an analyst and
# an admin. Their passwords are made at random on the first run and kept, readable
# by the owner only, in the data folder, so that a demo database never has a
# password anyone could know from this source.
DEMO_ACCOUNTS: tuple[tuple[str, str], ...] = (
    ("observer1", "observer"),
    ("observer2", "observer"),
    ("analyst", "analyst"),
    ("admin", "admin"),
)
DEMO_ACCOUNTS_FILE = "demo-accounts.json"


def demo_accounts(path: Path) -> list[tuple[str, str, str]]:
    """(username, role, password) of the demo accounts, made on first use."""
    import secrets

    from api.accounts import repository as accounts_repository
    from api.accounts import service as accounts
    from api.accounts.schemas import Role
    from infra.files import atomic_write_bytes

    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    made: list[tuple[str, str, str]] = []
    with db.connection() as conn:
        for username, role in DEMO_ACCOUNTS:
            exists = accounts_repository.user_by_name(conn, username) is not None
            if exists and username in known:
                made.append((username, role, known[username]))
                continue
            if exists:  # made by someone else: not ours to reset
                continue
            password = secrets.token_urlsafe(12)
            accounts.add_user(conn, username, Role(role), password, actor="golos demo")
            known[username] = password
            made.append((username, role, password))
    atomic_write_bytes(path, json.dumps(known, indent=2).encode(), permissions=0o600)
    return made


def _print_web_app(base: str, accounts: list[tuple[str, str, str]], *, running: bool) -> None:
    settings = get_settings()
    _say("")
    if running:
        _say(f"The web app is running at {base}/  (Ctrl-C stops it)")
    else:
        _say(
            "The web app: run `GOLOS_DEVELOPMENT=1 golos serve --port "
            f"{base.rsplit(':', 1)[1]}` and `GOLOS_DEVELOPMENT=1 golos worker`, then open {base}/"
        )
    _say(f"  results and map     {base}/  {base}/map  (public: aggregates only)")
    _say(
        f"  voters              {base}/vote  (verification codes of the development "
        f"verifier: {settings.dev_codes_path})"
    )
    _say(f"  log in              {base}/login")
    for username, role, password in accounts:
        _say(f"    {role:<9} {username:<10} password {password}")
    _say(f"  (passwords kept in {settings.data_dir.resolve() / DEMO_ACCOUNTS_FILE})")


def _serve_until_interrupted(
    port: int, workers: int, out: Path, accounts: list[tuple[str, str, str]]
) -> None:
    processes = _start(port, workers, out)
    try:
        _print_web_app(f"http://127.0.0.1:{port}", accounts, running=True)
        while processes.server.poll() is None:
            time.sleep(1)
        _say(f"the web app stopped; see {out / 'server.log'}")
    except KeyboardInterrupt:
        _say("stopping the web app")
    finally:
        processes.stop()


def _say(message: str) -> None:
    print(message, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@lru_cache(maxsize=2)
def _ballot(template_dir: str) -> tuple[Image.Image, BallotTemplate]:
    from ocr.template import load_template

    loaded = load_template(Path(template_dir))
    reference = Image.open(Path(template_dir) / loaded.template.reference_image).convert("RGB")
    return reference, loaded.template


def voter_photo(voter: SimulatedVoter, template_dir: str, seed: int) -> bytes:
    """The photo a simulated voter's phone takes. Deterministic per voter."""
    from seeds.photos import mark_ballot, not_a_ballot_photo, phone_photo

    photo_of = voter.reuses or voter.submission_id
    rng = np.random.default_rng([seed, uuid.UUID(photo_of).int & 0xFFFFFFFF])
    if voter.kind == "not_a_ballot":
        return not_a_ballot_photo(rng)
    reference, template = _ballot(template_dir)
    marks = voter.marks
    if voter.reuses is not None:
        marks = _marks_of[voter.reuses]
    return phone_photo(mark_ballot(reference, template, marks, rng), rng)


# Each photo process's copy of every voter's marks: a re-used photo shows the
# ballot of the voter it was taken from.
_marks_of: dict[str, list[str]] = {}


def _init_photo_worker(marks_of: dict[str, list[str]]) -> None:
    _marks_of.update(marks_of)


def _photo_job(args: tuple[SimulatedVoter, str, int]) -> tuple[SimulatedVoter, bytes]:
    voter, template_dir, seed = args
    return voter, voter_photo(voter, template_dir, seed)


@dataclass
class _Processes:
    server: subprocess.Popen[bytes]
    workers: Workers

    def stop(self) -> None:
        if self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
        self.workers.stop()
        try:
            self.server.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.server.kill()


def _start(port: int, workers: int, logs: Path) -> _Processes:
    from api.worker import spawn_workers

    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    with open(logs / "server.log", "wb") as server_log, open(logs / "worker.log", "wb") as log:
        # The children keep their own copies of the log file descriptors.
        server = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
            stdout=server_log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        processes = _Processes(server, spawn_workers(workers, until_empty=False, log=log))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return processes
        except httpx.TransportError:
            pass
        if server.poll() is not None:
            break
        time.sleep(0.3)
    processes.stop()
    raise RuntimeError(f"the API server did not start; see {logs / 'server.log'}")


def _progress(election_id: str) -> tuple[int, int]:
    """Photos the server has received, and read, for the election."""
    from api.submissions import repository as submissions

    with db.connection() as conn:
        return submissions.progress(conn, election_id)


def _reset_crowd_data(election_id: str) -> None:
    """Clear the election's crowd data (submissions and their photos' records, tallies,
    flags, reports), each domain through its own repository, in one transaction."""
    from api.protocols import repository as protocols
    from api.reports import repository as reports
    from api.submissions import repository as submissions
    from tally import repository as tallies

    with db.connection() as conn:
        protocols.clear_election(conn, election_id)
        submissions.clear_election(conn, election_id)
        tallies.clear_election(conn, election_id)
        reports.clear_election(conn, election_id)


class _Phones:
    """What the phones have done, drawn as bars on stderr: photos taken, sent
    (delivered, or refused for good), and read by the workers."""

    def __init__(self, progress: RichProgress, phones: int) -> None:
        self._progress = progress
        self.taken = progress.add_task("photos taken", total=phones)
        self.sent = progress.add_task("photos sent", total=phones)
        self.read = progress.add_task("photos read", total=None)
        self._read_back_at = 0.0

    def advance(self, task: TaskID) -> None:
        self._progress.advance(task)

    def sent_when_done(self, future: Future[Outcome | None]) -> None:
        """Count the send once it is delivered (called on a sender thread; rich's
        progress takes a lock)."""
        if not future.cancelled() and future.exception() is None and future.result():
            self.advance(self.sent)

    def read_back(self, election_id: str) -> tuple[int, int]:
        """Photos the server has received and read by now; shown on the read bar."""
        self._read_back_at = time.monotonic()
        received, read = _progress(election_id)
        self._progress.update(self.read, completed=read, total=received)
        return received, read

    def read_back_now_and_then(self, election_id: str) -> None:
        """``read_back``, at most every ``POLL_SECONDS``."""
        if time.monotonic() - self._read_back_at >= POLL_SECONDS:
            self.read_back(election_id)


@contextmanager
def _phones_progress(phones: int) -> Iterator[_Phones]:
    with rich_bars() as progress:
        yield _Phones(progress, phones)


def run_demo(
    *,
    voters: int,
    stations: int,
    precincts: int,
    workers: int,
    out: Path,
    seed: int,
    reset: bool = False,
) -> dict[str, Any]:
    from api.elections.service import load_election
    from api.reports.service import write_election_report
    from api.voters.verifiers import DevCodeReader
    from tally import repository as tallies

    started = time.monotonic()
    settings = get_settings()
    if not settings.embedded and not reset:
        raise RuntimeError(
            "the demo clears the seeded election's crowd data; against GOLOS_DATABASE_URL "
            "it runs only with --reset"
        )
    out.mkdir(parents=True, exist_ok=True)
    folder = SEED_DIR
    if precincts:
        folder = out / "seed-subset"
        write_subset(SEED_DIR, folder, precincts)
    election = load_seed(folder)
    with db.connection() as conn, progress_bar() as bar:
        loaded = load_election(conn, folder, photo_store(settings), progress=bar)
    _say(
        f"loaded {loaded.election_id}: {loaded.precincts} precincts, "
        f"{loaded.official_rows} official protocols"
    )
    # The demo starts from no crowd data, so that its figures describe this run.
    _reset_crowd_data(election.election_id)

    crowd = simulate_crowd(election, voters, stations, np.random.default_rng(seed))
    kinds = Counter(v.kind for v in crowd)
    _say(
        f"simulating {len(crowd)} phones at {len({v.precinct_id for v in crowd})} stations: "
        + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    )

    port = _free_port()
    processes = _start(port, workers, out)
    outcomes: list[Outcome] = []
    replays = 0
    try:
        base = f"http://127.0.0.1:{port}"
        transport = FlakyTransport(httpx.HTTPTransport(), drop_every=DROP_EVERY)
        client = GolosClient(base, transport=transport)
        # Fresh phones each run (the crowd's submission ids repeat with the seed).
        shutil.rmtree(out / "phone-outbox", ignore_errors=True)
        # Waits for a local server: the first try again within 0.05 s, never above 2 s.
        outbox = Outbox(out / "phone-outbox", backoff=Backoff(base=0.05, cap=2.0))
        # The phones' SMS inbox: the development verifier's file (GOLOS_VERIFIER=dev).
        codes = DevCodeReader(settings.dev_codes_path)
        tokens: dict[str, str] = {}  # each phone's device token, once verified
        template_dir = str(folder / "ballot")
        marks_of = {v.submission_id: v.marks for v in crowd}
        with (
            _phones_progress(len(crowd)) as phones,
            ProcessPoolExecutor(
                max_workers=max(1, workers), initializer=_init_photo_worker, initargs=(marks_of,)
            ) as photos,
            ThreadPoolExecutor(max_workers=4) as senders,
        ):
            sends = []
            for voter, photo in photos.map(
                _photo_job, [(v, template_dir, seed) for v in crowd], chunksize=8
            ):
                # The phone verifies its number first (over the flaky network too).
                tokens[voter.phone] = client.verify(election.election_id, voter.phone, codes)
                outbox.add(
                    Submission(
                        submission_id=voter.submission_id,
                        election_id=election.election_id,
                        precinct_id=voter.precinct_id,
                        declared_choice=voter.declared_choice,
                        device_token=tokens[voter.phone],
                    ),
                    photo,
                )
                phones.advance(phones.taken)
                send = senders.submit(outbox.send, voter.submission_id, client)
                send.add_done_callback(phones.sent_when_done)
                sends.append(send)
                phones.read_back_now_and_then(election.election_id)
            for future in sends:
                if (outcome := future.result()) is not None:
                    outcomes.append(outcome)
            undelivered = outbox.pending()
            for sid in undelivered:  # the network came back: the outbox empties
                if (outcome := outbox.send(sid, GolosClient(base))) is not None:
                    outcomes.append(outcome)
                    phones.advance(phones.sent)

            # Some apps never saw the answer and send again: the server answers from the
            # first result and counts nothing twice.
            plain = GolosClient(base)
            for voter in crowd[::RESEND_EVERY]:
                resend = voter_photo(voter, template_dir, seed) if voter.reuses is None else None
                if resend is None:
                    continue
                response = plain.submit(
                    Submission(
                        voter.submission_id,
                        election.election_id,
                        voter.precinct_id,
                        voter.declared_choice,
                        tokens[voter.phone],
                    ),
                    resend,
                )
                replays += response.status_code == 200
                phones.read_back_now_and_then(election.election_id)

            deadline = time.monotonic() + READ_DEADLINE_SECONDS
            while True:
                received, read = phones.read_back(election.election_id)
                if read >= received:
                    break
                if time.monotonic() > deadline or not processes.workers.running():
                    raise RuntimeError(
                        f"photos are not being read ({read}/{received}); see {out / 'worker.log'}"
                    )
                time.sleep(0.5)
    finally:
        processes.stop()

    with db.connection() as conn:
        with progress_bar() as bar:
            summary = write_election_report(conn, election.election_id, out, progress=bar)
        flagged = tallies.flagged_precincts(
            conn, election.election_id, Flag.CROWD_EXCEEDS_OFFICIAL, Source.PHOTOS
        )
    provable = set(provable_precincts(crowd, election.official))
    falsified = {p for p, f in election.falsified.items() if f["scheme"] != "arithmetic_slip"}
    result = {
        "election": election.election_id,
        "phones": len(crowd),
        "photos_received": summary["crowd"]["photos_received"],
        "by_status": summary["crowd"]["by_status"],
        "not_counted_by_reason": summary["crowd"]["not_counted_by_reason"],
        "network_retries": sum(o.attempts - 1 for o in outcomes),
        "refused_at_upload": sum(o.http_status >= 400 for o in outcomes),
        "repeated_submissions_answered_from_first_result": replays,
        "precincts_flagged": len(flagged),
        "falsified_precincts_provable_by_crowd": len(provable),
        "caught": len(provable & flagged),
        "missed": sorted(provable - flagged),
        "clean_precincts_flagged": sorted(flagged - falsified),
        "seconds": round(time.monotonic() - started, 1),
    }
    (out / "demo-summary.json").write_text(json.dumps(result, indent=2) + "\n")
    _print_summary(result, out)
    return result


def _print_summary(r: dict[str, Any], out: Path) -> None:
    from api.submissions.schemas import Status

    statuses = r["by_status"]
    _say("")
    _say(f"Golos demo: {r['election']}, {r['seconds']} s")
    _say(
        f"  photos received      {r['photos_received']} from {r['phones']} phones "
        f"({r['network_retries']} re-sends over the flaky network)"
    )
    _say(f"  verified             {statuses.get(Status.VERIFIED, 0)}")
    for status in (Status.REVIEW, Status.REJECTED, Status.SUPERSEDED):
        if statuses.get(status):
            _say(f"  {status:<20} {statuses[status]}")
    for reason, n in r["not_counted_by_reason"].items():
        _say(f"    {reason:<18} {n}")
    _say(
        f"  repeated uploads     {r['repeated_submissions_answered_from_first_result']} "
        "answered from the first result, none counted twice"
    )
    _say(f"  precincts flagged    {r['precincts_flagged']} ({Flag.CROWD_EXCEEDS_OFFICIAL})")
    _say(
        f"  seeded falsified precincts the crowd can prove: "
        f"{r['falsified_precincts_provable_by_crowd']}, caught {r['caught']}, "
        f"missed {len(r['missed'])}"
    )
    _say(f"  clean precincts flagged: {len(r['clean_precincts_flagged'])}")
    _say(f"  report: {out}/report.html (and discrepancies, precincts, summary.json)")
