"""Fault tests: the real pieces, broken on purpose.

The HTTP API runs under uvicorn in a process of its own (``golos serve``), the
workers are real worker processes under their supervisor (``spawn_workers``, what
``golos worker --processes N`` runs), the database is the embedded PostgreSQL. A
test breaks one of them (kills a worker, restarts the database, cuts a connection,
fills the photo disk) while phones upload, then checks the one promise that
matters: every upload the phone was told was accepted is counted exactly once,
every other can be sent again with the same ``submission_id`` and is then counted
once, and the platform recovers by itself.

``Phone.deliver`` is the phone's side: it sends until the platform acknowledges
(202, or 200 for a replay), retrying what a phone retries (a cut connection, 409,
429 and 5xx); the test's phones wait less than Retry-After asks, to keep the
tests short. ``settled`` is the check after the fault.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest
from PIL import Image

from api.voters.service import issue_device_token
from api.worker import spawn_workers
from infra.pg import EmbeddedPostgres
from infra.settings import get_settings
from ocr.template import load_template
from tests import clusters

ELECTION = "by-2020-president"
CHOICE = "tsikhanouskaya"
# Read and decided (quarantined: held for the review, like review).
FINAL = {"verified", "review", "rejected", "superseded", "quarantined"}
# How long the platform may take to read every acknowledged photo after a fault.
SETTLE_SECONDS = 50.0
GOLOS = Path(sys.executable).parent / "golos"
_KEY = re.compile(r"[0-9a-f]{64}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """``golos serve`` in a process of its own."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, f"the server exited:\n{log.read_text(errors='replace')}"
        assert time.monotonic() < deadline, "the server did not start within 60 s"
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)


@pytest.fixture(autouse=True)
def one_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test's phones all come from 127.0.0.1: the quarantine of one network's
    burst at a station is off, as in the demo and the benchmarks (the server and
    workers the test starts inherit it)."""
    monkeypatch.setenv("GOLOS_QUARANTINE_PER_NETWORK_STATION", "0")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[], Server]]:
    """``serve()`` starts the API (``golos serve``) with this process's environment
    (its database, data folder, photo folder and voter key); stopped afterwards."""
    started: list[Server] = []

    def start() -> Server:
        port = free_port()
        log = tmp_path / f"server-{port}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [str(GOLOS), "serve", "--port", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "GOLOS_VERIFIER": "dev"},
            )
        server = Server(f"http://127.0.0.1:{port}", process, log)
        started.append(server)
        _wait_until_up(server.url, process, log)
        return server

    yield start
    for server in started:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    for server in started:
        # No request failed inside the server (an answer 500, or one never sent).
        assert "Traceback" not in server.output(), server.output()


@pytest.fixture(scope="session")
def photos(ballot_dir: Path) -> Callable[[int], bytes]:
    """``photos(n)``: the n-th distinct phone photo of a ballot marked for CHOICE
    (cached: each takes a few tens of milliseconds to make)."""
    from seeds.photos import mark_ballot, phone_photo

    template = load_template(ballot_dir).template
    reference = Image.open(ballot_dir / template.reference_image).convert("RGB")
    made: dict[int, bytes] = {}

    def make(n: int) -> bytes:
        if n not in made:
            rng = np.random.default_rng(10_000 + n)
            made[n] = phone_photo(mark_ballot(reference, template, [CHOICE], rng, "cross"), rng)
        return made[n]

    return make


def multipart(fields: dict[str, str], photo: bytes, boundary: str) -> bytes:
    """The body of an upload, as a phone sends it. Pure."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="b.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + photo
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


@dataclass
class Upload:
    """One submission as the phone knows it: its id, photo, and what it was told."""

    sid: str
    photo: bytes
    token: str
    precinct: str = "p1"
    answers: list[int | str] = field(default_factory=list)  # statuses, or the error's name
    retry_after: list[str | None] = field(default_factory=list)  # of each 503

    @property
    def acknowledged(self) -> bool:
        return any(a in (200, 202) for a in self.answers)

    def fields(self) -> dict[str, str]:
        return {
            "election_id": ELECTION,
            "precinct_id": self.precinct,
            "declared_choice": CHOICE,
            "submission_id": self.sid,
        }


class Phone:
    """The phones of a test: one verified voter per upload."""

    def __init__(self, dsn: str, photos: Callable[[int], bytes]) -> None:
        self.dsn = dsn
        self.photos = photos
        self.made = 0

    def new_upload(self, precinct: str = "p1") -> Upload:
        n = self.made
        self.made += 1
        with psycopg.connect(self.dsn) as conn:
            token = issue_device_token(conn, ELECTION, f"+37529{n:07d}")
            conn.commit()
        return Upload(str(uuid.uuid4()), self.photos(n), token, precinct)

    @staticmethod
    def send(client: httpx.Client, upload: Upload) -> httpx.Response | None:
        """One try; None when the connection failed (the phone heard nothing)."""
        try:
            answer = client.post(
                "/v1/submissions",
                data=upload.fields(),
                files={"photo": ("b.jpg", upload.photo, "image/jpeg")},
                headers={"Authorization": f"Bearer {upload.token}"},
            )
        except httpx.TransportError as exc:
            upload.answers.append(type(exc).__name__)
            return None
        upload.answers.append(answer.status_code)
        if answer.status_code == 503:
            upload.retry_after.append(answer.headers.get("retry-after"))
        return answer

    def deliver(self, client: httpx.Client, upload: Upload, seconds: float = 40.0) -> int:
        """Send until acknowledged, retrying what a phone retries; the final status.
        A refusal that is final (another 4xx) fails the test."""
        deadline = time.monotonic() + seconds
        while True:
            answer = self.send(client, upload)
            if answer is not None:
                if answer.status_code in (200, 202):
                    return answer.status_code
                retry = answer.status_code in (409, 429) or answer.status_code >= 500
                assert retry, f"{upload.sid}: final refusal {answer.status_code} {answer.text}"
            assert time.monotonic() < deadline, f"{upload.sid} not delivered: {upload.answers}"
            time.sleep(0.3)


@pytest.fixture
def phones(photos: Callable[[int], bytes]) -> Callable[[str], Phone]:
    return lambda dsn: Phone(dsn, photos)


def submission_rows(dsn: str) -> dict[str, tuple[str, str]]:
    """Every stored submission: id -> (status, photo_sha256)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT id::text, status, photo_sha256 FROM submissions").fetchall()
    return {sid: (status, sha) for sid, status, sha in rows}


def photo_files(root: Path) -> tuple[set[str], list[str]]:
    """The photo store's files: (keys stored, any other file, such as a temporary
    one left behind)."""
    keys: set[str] = set()
    others: list[str] = []
    if root.exists():
        for path in root.rglob("*"):
            if path.is_file():
                if _KEY.fullmatch(path.name) and path.parent.name == path.name[2:4]:
                    keys.add(path.name)
                else:
                    others.append(str(path.relative_to(root)))
    return keys, others


def settled(dsn: str, uploads: list[Upload], photo_root: Path) -> dict[str, str]:
    """Wait until the workers have read every stored photo, then check that each
    upload is one row in a final state, nothing else is stored, and the crowd tally
    is exactly the verified rows; returns each submission's status.

    ``uploads`` are all the test's submissions, each acknowledged in the end."""
    assert all(u.acknowledged for u in uploads), [u.answers for u in uploads]
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        rows = submission_rows(dsn)
        waiting = [sid for sid, (status, _) in rows.items() if status == "received"]
        if not waiting:
            break
        assert time.monotonic() < deadline, f"{len(waiting)} photos still unread: {waiting[:5]}"
        time.sleep(0.5)
    # Exactly the acknowledged uploads, once each.
    assert sorted(rows) == sorted(u.sid for u in uploads)
    statuses = {sid: status for sid, (status, _) in rows.items()}
    assert set(statuses.values()) <= FINAL, statuses
    with psycopg.connect(dsn) as conn:
        tally: dict[str, int] = dict(
            conn.execute(
                "SELECT precinct_id || '/' || option_id, votes FROM photo_tallies"
                " WHERE election_id = %s AND votes <> 0",
                (ELECTION,),
            ).fetchall()
        )
        verified: dict[str, int] = dict(
            conn.execute(
                "SELECT precinct_id || '/' || m, count(*) FROM submissions, unnest(marks) m"
                " WHERE election_id = %s AND status = 'verified' GROUP BY 1",
                (ELECTION,),
            ).fetchall()
        )
        reference = conn.execute(
            "SELECT ballot_reference_sha256 FROM elections WHERE id = %s", (ELECTION,)
        ).fetchone()
    assert tally == verified, "the crowd tally is not the verified rows"
    # Each row's photo is stored, whole; no other photo, no temporary file.
    keys, others = photo_files(photo_root)
    assert not others, f"stray files in the photo store: {others}"
    wanted = {sha for _, sha in rows.values()} | {reference[0] if reference else ""}
    assert {sha for _, sha in rows.values()} <= keys
    assert keys <= wanted, f"photos stored without a submission: {keys - wanted}"
    return statuses


def read_then_settled(dsn: str, uploads: list[Upload]) -> dict[str, str]:
    """Read every waiting photo (one worker process, run until the queue is empty),
    then check them as ``settled`` does; returns each submission's status."""
    with open("/dev/null", "wb") as log:
        workers = spawn_workers(1, until_empty=True, log=log)
    assert workers.wait() == [0]
    return settled(dsn, uploads, get_settings().photos_path)


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> float:
    """Seconds until ``condition`` held; fails the test after ``seconds``."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, f"timed out waiting for {what}"
        time.sleep(0.1)
    return time.monotonic() - start


@pytest.fixture
def own_cluster(database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL cluster for this test alone (``tests.clusters.own_cluster``); the
    test's processes (server, workers) use it, with the session's settings otherwise
    (``database``: its voter key, data folder)."""
    with clusters.own_cluster(monkeypatch, "golos-faults-") as pg:
        yield pg
