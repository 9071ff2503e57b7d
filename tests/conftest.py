"""Test session fixtures: a real PostgreSQL cluster started from the machine's binaries."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from playwright.sync_api import Browser, sync_playwright
from psycopg import sql

from api.elections.service import load_election
from api.main import create_app
from infra import db
from infra.migrate import migrate
from infra.pg import EmbeddedPostgres
from infra.settings import get_settings
from infra.storage import photo_store
from infra.threads import one_thread_per_process
from ocr.template import BallotTemplate, load_template


def pytest_configure(config: pytest.Config) -> None:
    """The test session runs as every Golos process does: one Tesseract and one
    BLAS thread (infra.threads)."""
    one_thread_per_process()


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    # Not under pytest's tmp_path: that is private to root, and the server may run
    # as an unprivileged user.
    folder = Path(tempfile.mkdtemp(prefix="golos-test-"))
    folder.chmod(0o711)
    pg = EmbeddedPostgres(folder / "pg", fast_unsafe=True)
    pg.start()
    dsn = pg.dsn()
    migrate(dsn)
    os.environ["GOLOS_DATABASE_URL"] = dsn
    os.environ["GOLOS_DATA_DIR"] = str(folder / "data")
    os.environ["GOLOS_VOTER_SECRET"] = "test-secret-" + "x" * 32
    get_settings.cache_clear()
    db.close_pool()
    try:
        yield dsn
    finally:
        db.close_pool()
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def conn(database: str) -> Iterator[psycopg.Connection]:
    """A connection to an emptied database (and an emptied photo store)."""
    with psycopg.connect(database, autocommit=True) as c:
        # The audit log refuses TRUNCATE (append-only, enforced by the database):
        # tests that read it look only at entries after the ones they found.
        tables = [t for t in db.data_tables(c) if t != "audit_log"]
        c.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(map(sql.Identifier, tables))
            )
        )
    shutil.rmtree(get_settings().photos_path, ignore_errors=True)
    with psycopg.connect(database) as c:
        yield c


@pytest.fixture(scope="session")
def ballot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from seeds.ballot import BY2020_DESIGN, write_template

    folder = tmp_path_factory.mktemp("ballot")
    write_template(BY2020_DESIGN, folder)
    return folder


@pytest.fixture(scope="session")
def by_reference() -> tuple[Image.Image, BallotTemplate]:
    """The seeded ballot's rendered reference image and its template (no Tesseract)."""
    from seeds.ballot import BY2020_DESIGN, render_reference

    return render_reference(BY2020_DESIGN)


OPTIONS = ["dmitriyev", "kanapatskaya", "lukashenko", "tsikhanouskaya", "charachen", "against_all"]


def write_election(folder: Path, ballot_dir: Path | None, precincts: int = 3) -> Path:
    """A small election/1 folder for tests."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "election.json").write_text(
        json.dumps(
            {
                "format": "election/1",
                "id": "by-2020-president",
                "name": "Presidential election, Republic of Belarus",
                "date": "2020-08-09",
                "options": [{"id": o, "label": o.title()} for o in OPTIONS],
            }
        ),
        encoding="utf-8",
    )
    rows = ["precinct_id,region,district,name,registered"]
    rows += [
        f"p{i},Region,District {i % 2},Station {i},{1000 + i}" for i in range(1, precincts + 1)
    ]
    (folder / "precincts.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    if ballot_dir is not None:
        shutil.copytree(ballot_dir, folder / "ballot")
    return folder


def official_csv(rows: dict[str, dict[str, int]]) -> str:
    header = ["precinct_id", "registered", "ballots_issued", "ballots_cast", "invalid", *OPTIONS]
    lines = [",".join(header)]
    for precinct, votes in rows.items():
        cast = sum(votes.values()) + 5
        lines.append(
            ",".join(
                [
                    precinct,
                    "1000",
                    str(cast),
                    str(cast),
                    "5",
                    *(str(votes.get(o, 0)) for o in OPTIONS),
                ]
            )
        )
    return "\n".join(lines) + "\n"


@pytest.fixture
def election_dir(tmp_path: Path, ballot_dir: Path) -> Path:
    return write_election(tmp_path / "election", ballot_dir)


@pytest.fixture
def make_official() -> Callable[[dict[str, dict[str, int]]], str]:
    """Renders official-results/1 CSV text from {precinct: {option: votes}}."""
    return official_csv


@pytest.fixture
def loaded(conn: psycopg.Connection, election_dir: Path, make_official: Callable) -> str:
    (election_dir / "official.csv").write_text(
        make_official(
            {"p1": {"lukashenko": 300, "tsikhanouskaya": 1}, "p2": {"tsikhanouskaya": 200}}
        )
    )
    load_election(conn, election_dir, photo_store(get_settings()))
    conn.commit()
    return "by-2020-president"


@pytest.fixture
def app() -> Iterator[FastAPI]:
    """The HTTP application; a test replaces a dependency with
    ``app.dependency_overrides[api.deps.settings_dep] = ...`` (cleared afterwards)."""
    application = create_app()
    yield application
    application.dependency_overrides.clear()


@pytest.fixture
def client(app: FastAPI, loaded: str) -> Iterator[TestClient]:
    """A client of ``app``, its lifespan started (the job queue open), with the
    test election loaded."""
    with TestClient(app) as c:
        yield c


@pytest.fixture
def limits(app: FastAPI) -> Callable[..., None]:
    """``limits(submissions_per_voter=2)``: the app's settings with these values, for
    the rest of the test."""
    from api.deps import settings_dep

    def set_limits(**values: int) -> None:
        changed = get_settings().model_copy(update=values)
        app.dependency_overrides[settings_dep] = lambda: changed

    return set_limits


@pytest.fixture
def from_address(client: TestClient) -> Iterator[Callable[[str], None]]:
    """``from_address("203.0.113.5")`` makes ``client``'s next requests come from that
    address (Starlette's test transport hands its ``client`` pair to the app as the
    caller's), for the limits per network."""

    def switch(address: str) -> None:
        client._transport.client = (address, 50000)  # type: ignore[attr-defined]

    yield switch
    switch("testclient")


@pytest.fixture(scope="session")
def ballot_photo(ballot_dir: Path) -> Callable[..., bytes]:
    """A phone photo of a ballot marked for the given options."""
    from seeds.photos import mark_ballot, phone_photo

    template = load_template(ballot_dir).template
    reference = Image.open(ballot_dir / template.reference_image).convert("RGB")

    def make(marks: list[str], seed: int = 0) -> bytes:
        rng = np.random.default_rng(seed)
        return phone_photo(mark_ballot(reference, template, marks, rng, style="cross"), rng)

    return make


@pytest.fixture
def device_token(conn: psycopg.Connection) -> Callable[..., str]:
    """A device token for a voter (a phone number, spelled as the test likes), as
    if they had verified it; one per voter and election, cached."""
    from api.voters.service import issue_device_token

    tokens: dict[tuple[str, str], str] = {}

    def make(phone: str, election: str = "by-2020-president") -> str:
        if (election, phone) not in tokens:
            tokens[election, phone] = issue_device_token(conn, election, phone)
            conn.commit()
        return tokens[election, phone]

    return make


@pytest.fixture
def submit(client: TestClient, device_token: Callable[..., str]) -> Callable[..., httpx.Response]:
    """Uploads a photo as a verified voter: ``voter`` is their phone number (a new
    one per submission id unless the test says otherwise); ``headers`` replaces the
    voter's Authorization header (another token, or {} for nobody)."""
    made: dict[str, str] = {}

    def post(
        photo: bytes,
        *,
        precinct: str = "p1",
        choice: str = "tsikhanouskaya",
        sid: str | None = None,
        voter: str | None = None,
        election: str = "by-2020-president",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sid = sid or str(uuid.uuid4())
        # One voter per submission id unless the test says otherwise (+37533...: a
        # prefix the tests' own numbers do not use).
        phone = voter or made.setdefault(sid, f"+37533{len(made):07d}")
        data = {
            "election_id": election,
            "precinct_id": precinct,
            "declared_choice": choice,
            "submission_id": sid,
        }
        if headers is None:
            # The token is for the test election: another election's id is refused.
            headers = {"Authorization": f"Bearer {device_token(phone)}"}
        return client.post(
            "/v1/submissions",
            data=data,
            files={"photo": ("b.jpg", photo, "image/jpeg")},
            headers=headers,
        )

    return post


PASSWORD = "correct horse battery staple"


@pytest.fixture
def account(conn: psycopg.Connection) -> Callable[..., dict[str, str]]:
    """Makes an account and an API token for it; returns the Authorization header.
    ``account("observer")`` makes ``observer1``, the next ``observer2`` and so on;
    ``account("admin", username="root")`` names it."""
    from api.accounts import service as accounts
    from api.accounts.schemas import Principal, Role, Via

    made: dict[str, int] = {}

    def make(role: str, username: str | None = None) -> dict[str, str]:
        made[role] = made.get(role, 0) + 1
        name = username or f"{role}{made[role]}"
        user = accounts.add_user(conn, name, Role(role), PASSWORD, actor="test")
        owner = Principal(role=user.role, via=Via.SESSION, user_id=user.id, username=name)
        token, _ = accounts.create_token(conn, owner, "test", 1)
        conn.commit()
        return {"Authorization": f"Bearer {token}"}

    return make


# Debian's Chromium (`make system-deps`), never a downloaded browser build.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Per module, not per session: the sync API runs an event loop in the main thread
# while Playwright is started, and any later test that starts its own (another
# module's browser, asyncio.run for a worker) would fail inside it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium driven by Playwright, for the page tests (report.html, the web app)."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run `make system-deps`"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A local S3-compatible server, moto's in server mode (real HTTP on 127.0.0.1,
    not the in-process mock): its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


S3_TEST_ENV = {
    # Any credentials: moto checks none. Set so no developer's own AWS files are read.
    "AWS_ACCESS_KEY_ID": "golos-test",
    "AWS_SECRET_ACCESS_KEY": "golos-test-secret",
    "AWS_CONFIG_FILE": "/nonexistent/golos-test",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/golos-test",
}


@pytest.fixture
def s3_photos(database: str, s3_server: str) -> Iterator[str]:
    """The platform's photos in a new bucket of ``s3_server`` (GOLOS_PHOTO_STORE=s3,
    for every process setting read during the test): the bucket's name."""
    import boto3

    bucket = f"golos-{uuid.uuid4().hex[:12]}"
    env = {
        **S3_TEST_ENV,
        "GOLOS_PHOTO_STORE": "s3",
        "GOLOS_S3_BUCKET": bucket,
        "GOLOS_S3_ENDPOINT_URL": s3_server,
        "GOLOS_S3_REGION": "us-east-1",
        "GOLOS_S3_ADDRESSING_STYLE": "path",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    get_settings.cache_clear()
    boto3.session.Session().client(
        "s3", endpoint_url=s3_server, region_name="us-east-1"
    ).create_bucket(Bucket=bucket)
    try:
        yield bucket
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()
