"""An analyst in a real browser: logs in, asks for a report, waits for it and
downloads the CSV."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from api.accounts import service as accounts
from api.accounts.schemas import Role
from api.worker import failed, spawn_workers
from tally.vocab import DISCREPANCY_COLUMNS

PASSWORD = "correct horse battery staple"
Site = Any  # tests/browser/conftest.py's Site


def test_an_analyst_downloads_the_reports_csv(
    site: Site,
    new_page: Callable[..., Page],
    log_in: Callable[..., None],
    accessible: Callable[[Page], None],
    tmp_path: Path,
) -> None:
    with site.connect() as conn:
        accounts.add_user(conn, "anna", Role.ANALYST, PASSWORD, actor="test")
        conn.commit()
    page = new_page(locale="en-US")
    log_in(page, "anna", PASSWORD, next="/analysts")
    expect(page).to_have_url(f"{site.url}/analysts")
    expect(page.get_by_role("heading", level=1)).to_have_text("Data for analysts")
    expect(page.get_by_role("link", name="your account's page")).to_have_attribute(
        "href", "/account"
    )
    accessible(page)

    page.get_by_label("Election").select_option(site.election_id)
    with page.expect_navigation():
        page.get_by_role("button", name="Write the report").click()
    queued = page.locator("tr[data-status]").first
    expect(queued).to_have_attribute("data-status", "queued")

    # A worker process writes the report (the browser's event loop runs in this thread).
    codes = spawn_workers(1, until_empty=True).wait()
    assert not failed(codes), codes

    # The page follows the report by itself (htmx, every 5 s) until it is ready.
    link = page.get_by_role("link", name="discrepancies.csv")
    expect(link).to_be_visible(timeout=20_000)
    expect(page.locator("tr[data-status]").first).to_have_attribute("data-status", "ready")
    accessible(page)
    with page.expect_download() as info:
        link.click()
    download = info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.name == f"{site.election_id}-discrepancies.csv"
    with saved.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == DISCREPANCY_COLUMNS
    assert len(rows) > 1  # the seeded election's protocols have flags
