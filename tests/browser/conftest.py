"""Browser tests: the real app served by uvicorn on 127.0.0.1, driven by Debian's
Chromium through Playwright (never a downloaded browser), every request to
anywhere else refused, axe-core (vendored in the axe-playwright-python package)
checking each page. A failing test leaves a screenshot in ``GOLOS_SCREENSHOTS``
(default ``out/browser-failures``).

The module-scoped ``site`` fixture empties the database and loads the seeded
election (``seeds/by-2020``: real stations with addresses and coordinates)
once per test module; tests of a module share it and add what they need.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import psycopg
import pytest
import uvicorn
from axe_playwright_python.sync_playwright import Axe
from PIL import Image
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Route,
    ViewportSize,
)
from psycopg import sql

from api.elections.service import load_election
from api.main import create_app
from api.submissions import repository as submissions
from api.submissions.schemas import Status
from infra import db
from infra.settings import get_settings
from infra.storage import photo_store
from tally import repository as tallies

SEEDED = Path(__file__).resolve().parents[2] / "seeds" / "by-2020"
SEEDED_ID = "by-2020-president"
PHONE = {"width": 390, "height": 844}
# axe's impact levels that fail a test; "minor" and "moderate" are reported only.
SERIOUS = ("serious", "critical")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server(database: str) -> Iterator[str]:
    """The platform's app under uvicorn in a thread; yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert thread.is_alive(), "the server did not start"
        assert time.monotonic() < deadline, "the server did not start within 30 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=10)


@dataclass(frozen=True)
class Site:
    url: str
    election_id: str
    dsn: str

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn)


@pytest.fixture(scope="module")
def site(server: str, database: str) -> Site:
    """An emptied database with the seeded election loaded, served at ``url``."""
    with psycopg.connect(database, autocommit=True) as c:
        tables = [t for t in db.data_tables(c) if t != "audit_log"]
        c.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(map(sql.Identifier, tables))
            )
        )
    shutil.rmtree(get_settings().photos_path, ignore_errors=True)
    with psycopg.connect(database) as c:
        load_election(c, SEEDED, photo_store(get_settings()))
        c.commit()
    return Site(server, SEEDED_ID, database)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


def _offline(context: BrowserContext, base: str) -> list[str]:
    """Refuse every request not for the platform itself; the list fills with them."""
    refused: list[str] = []

    def handle(route: Route) -> None:
        url = route.request.url
        if url.startswith((base, "data:", "blob:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    context.route("**/*", handle)
    return refused


@pytest.fixture
def new_page(
    browser: Browser, site: Site, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Page]]:
    """Opens pages in fresh browser contexts (one per person: its own cookies),
    phone-sized unless told otherwise, with the network beyond the site refused.
    Every page of a failed test is saved as a screenshot."""
    contexts: list[tuple[BrowserContext, list[str]]] = []
    pages: list[Page] = []

    def make(locale: str = "en-US", viewport: dict[str, int] | None = None) -> Page:
        size: ViewportSize = {"width": PHONE["width"], "height": PHONE["height"]}
        if viewport is not None:
            size = {"width": viewport["width"], "height": viewport["height"]}
        context = browser.new_context(locale=locale, viewport=size, base_url=site.url)
        refused = _offline(context, site.url)
        contexts.append((context, refused))
        page = context.new_page()
        page.set_default_timeout(15_000)
        pages.append(page)
        return page

    yield make
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        folder = Path(os.environ.get("GOLOS_SCREENSHOTS", "out/browser-failures"))
        folder.mkdir(parents=True, exist_ok=True)
        for n, page in enumerate(pages):
            with contextlib.suppress(Exception):  # a closed page has nothing to show
                page.screenshot(path=str(folder / f"{request.node.name}-{n}.png"), full_page=True)
    for context, refused in contexts:
        context.close()
        assert not refused, f"pages asked for outside addresses: {refused}"


_axe = Axe()


@pytest.fixture
def accessible() -> Callable[[Page], None]:
    """Runs axe-core on the page and fails on any serious or critical violation."""

    def check(page: Page) -> None:
        results = _axe.run(page)
        serious = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"]
            if v["impact"] in SERIOUS
        ]
        assert not serious, f"axe on {page.url}:\n" + "\n".join(serious)

    return check


def _log_in(page: Page, username: str, password: str, next: str | None = None) -> None:
    """Log in through the login form as a person does (the page's own CSRF token
    goes with it) and wait for the page the form leads to."""
    page.goto("/login" + (f"?next={quote(next, safe='')}" if next else ""))
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    with page.expect_navigation():
        page.locator("form[action='/login'] button[type=submit]").click()


@pytest.fixture
def log_in() -> Callable[..., None]:
    """``log_in(page, username, password, next=None)``: through the login form."""
    return _log_in


# --- data the review pages' tests store --------------------------------------------


def phone_photo(seed: int) -> bytes:
    """A phone-shaped JPEG (portrait), different for each seed."""
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    pixels = rng.integers(60, 200, size=(240, 180, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(out, "JPEG")
    return out.getvalue()


def stored_submission(
    conn: psycopg.Connection,
    election: str,
    precinct: str,
    status: Status,
    marks: list[str],
    reasons: list[str],
    seed: int,
    declared: list[str] | None = None,
) -> uuid.UUID:
    """A stored photo and its submission, read as ``marks`` and declared as
    ``declared`` (the marks unless given), recorded as the upload and the pipeline
    do: a held one with its hold's reasons, a verified one counted."""
    sid = uuid.uuid4()
    key = photo_store(get_settings()).put(phone_photo(seed))
    voter = uuid.uuid4().bytes
    submissions.insert(conn, sid, election, precinct, declared or marks, f"d-{sid}", key, voter)
    submissions.claim_photo(conn, election, key, sid)
    reading = {"verdict": "valid", "marks": marks, "confidence": 0.95, "reasons": []}
    submissions.record_decision(conn, sid, status, reasons, marks, json.dumps(reading))
    if status == Status.QUARANTINED:
        submissions.add_hold(conn, [sid], [r for r in reasons if r != "quarantined"])
    if status == Status.VERIFIED:
        tallies.count_ballot(conn, election, precinct, marks, +1)
    return sid
