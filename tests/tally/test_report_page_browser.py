"""report.html in a real browser (Chromium, JavaScript off, network refused): it
reads on a phone and on a desktop, in every language, and loads nothing from
anywhere but itself.

Uses the system's Chromium (``make system-deps`` installs Debian's ``chromium``);
never downloads a browser. Set ``GOLOS_SCREENSHOTS=<folder>`` to keep a
screenshot of each page for a person to look at.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser, BrowserContext, Route, ViewportSize

from infra.pages import LANGUAGES, translations
from tally.plots import crowd_vs_official_png, fingerprint_png, histogram_png
from tally.report_page import render_report
from tally.vocab import FLAG_KIND, Flag, ReviewStatus

VIEWPORTS: dict[str, ViewportSize] = {
    "phone": {"width": 390, "height": 844},
    "desktop": {"width": 1280, "height": 900},
}
SECTION_TITLES = ("Proof", "Statistical signals", "Estimates")


def _offline(context: BrowserContext) -> list[str]:
    """Refuse every request that is not for a local file or inline data; the
    returned list fills with the refused addresses."""
    refused: list[str] = []

    def handle(route: Route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    context.route("**/*", handle)
    return refused


def _report() -> tuple[
    dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], dict[str, bytes]
]:
    rng = np.random.default_rng(3)
    turnout = np.clip(rng.normal(0.62, 0.08, 800), 0, 1)
    share = np.clip(rng.normal(0.7, 0.07, 800), 0, 1)
    hist, xe, ye = np.histogram2d(turnout, share, bins=40, range=[[0, 1], [0, 1]])
    images = {
        "fingerprint.png": fingerprint_png(hist, xe, ye, "Лукашенко"),
        "turnout.png": histogram_png(turnout, None, "Turnout", "Turnout", True),
        "crowd_vs_official.png": crowd_vs_official_png(
            np.array([5, 50, 12]), np.array([3, 80, 9]), np.array([True, False, True]), "opt2"
        ),
    }
    summary: dict[str, Any] = {
        "format": "report/1",
        "election": "by-2020-president",
        "precincts": 5767,
        "precincts_with_official": 1310,
        "precincts_with_proof": 46,
        "flags": {flag.value: 3 for flag in Flag},
        "option_labels": {"opt1": "Лукашенко", "opt2": "Тихановская"},
        "official_totals": {
            "registered": 1951958,
            "ballots_cast": 1550498,
            "options": {"opt1": 773542, "opt2": 626336},
        },
        "tests": {
            "integer_percent": {
                "observed": 439,
                "null_mean": 248.2,
                "null_sd": 14.1,
                "p_value": 0.004975,
                "significant": True,
                "leader": "opt1",
                "null_model": "leader votes ~ Binomial(ballots_cast, leader/ballots_cast)",
                "inclusion_rule": "registered >= 100",
            },
            "fingerprint": {
                "f_incremental": 0.39,
                "f_extreme": 7.9e-19,
                "image": "fingerprint.png",
            },
        },
        "estimates": {
            "clean_stations": {
                "assumptions": ["official figures of stations without a proof flag are correct"],
                "national": {"turnout": 0.79, "turnout_ci95": [0.78, 0.8]},
            }
        },
        "crowd": {"photos_received": 507477, "by_status": {"verified": 500000}},
    }
    rows = [
        {
            "precinct_id": f"01-011-{i:04d}",
            "region": "Брестская областная",
            "district": "Московская районная в г.Бресте",
            "flag": flag.value,
            "kind": FLAG_KIND[flag].value,
            "option": "opt2",
            "source": "photos",
            "crowd": 179,
            "official": 10,
            "statistic": None,
            "p_value": None,
            "q_value": None,
            "detail": f"179 verified ballots for opt2 at 01-011-{i:04d}, the protocol gives it 10",
            "review_status": ReviewStatus.OPEN.value,
        }
        for i, flag in enumerate(Flag)
    ]
    regional = [
        {"region": "Брестская областная", "stations": 910, "stations_with_official": 176,
         "flags": 66, "share_opt1": 0.5363, "share_opt2": 0.3876},
    ]  # fmt: skip
    return summary, rows, regional, images


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("lang", LANGUAGES)
def test_report_reads_offline_on_a_phone_and_a_desktop(
    browser: Browser, tmp_path: Path, lang: str, viewport: str
) -> None:
    summary, rows, regional, images = _report()
    report = tmp_path / "report.html"
    report.write_text(
        render_report(summary, rows, regional, images, "Выборы 2020", lang=lang), encoding="utf-8"
    )
    context = browser.new_context(viewport=VIEWPORTS[viewport], java_script_enabled=False)
    try:
        refused = _offline(context)
        page = context.new_page()
        page.goto(report.as_uri())
        page.wait_for_load_state("load")

        assert page.locator("html").get_attribute("lang") == lang
        # The proof section and its banner first, on screen.
        assert page.locator("#proof .banner.proof").is_visible()
        # The three kinds of evidence, in order, under their own headings.
        gettext = translations(lang).gettext
        headings = [
            page.locator(f"#{section} > h2") for section in ("proof", "signals", "estimates")
        ]
        assert [h.inner_text() for h in headings] == [gettext(t) for t in SECTION_TITLES]
        tops = [h.bounding_box()["y"] for h in headings]  # type: ignore[index]
        assert tops == sorted(tops)
        # Every image decoded (data: URIs), none broken.
        widths = page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth)")
        assert len(widths) == len(images) and all(w > 0 for w in widths), widths
        # Wide tables scroll inside the page; the page itself never scrolls sideways.
        assert page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
        assert refused == []

        if folder := os.environ.get("GOLOS_SCREENSHOTS"):
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"report_{lang}_{viewport}.png"))
    finally:
        context.close()


def test_the_offline_check_catches_an_external_request(browser: Browser, tmp_path: Path) -> None:
    page_file = tmp_path / "leaky.html"
    page_file.write_text(
        '<!DOCTYPE html><html><body><img src="http://example.invalid/pixel.png"></body></html>',
        encoding="utf-8",
    )
    context = browser.new_context(java_script_enabled=False)
    try:
        refused = _offline(context)
        page = context.new_page()
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        assert refused == ["http://example.invalid/pixel.png"]
    finally:
        context.close()
