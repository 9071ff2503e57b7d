"""The public pages in a real browser: the map and a station's page render in each
language, a station on the map opens its page (pointer and keyboard), axe finds no
serious violation."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from api.flags.service import run_flags

SVG = "{http://www.w3.org/2000/svg}"
Site = Any  # tests/browser/conftest.py's Site
LANGUAGES = [
    ("ru-RU", "ru", "Карта участков", "Официальный протокол"),
    ("be-BY", "be", "Карта ўчасткаў", "Афіцыйны пратакол"),
    ("en-US", "en", "Map of the stations", "Official protocol"),
]


@pytest.fixture(scope="module")
def flagged(site: Site) -> Site:
    """The seeded election with its flags computed: every status is on the map."""
    with site.connect() as conn:
        run_flags(conn, site.election_id, draws=50)
        conn.commit()
    return site


def _proof_station(flagged: Site) -> str:
    """A station with a proof flag (a protocol whose arithmetic fails)."""
    with flagged.connect() as conn:
        row = conn.execute(
            "SELECT min(precinct_id) FROM flags WHERE election_id = %s AND kind = 'proof'",
            (flagged.election_id,),
        ).fetchone()
    assert row is not None and row[0]
    return str(row[0])


def _uncovered_link(svg_markup: str) -> str:
    """The href of a station drawn where no later dot covers it (a click lands on it)."""
    svg = ET.fromstring(svg_markup)
    dots = [
        (a.attrib["href"], float(c.attrib["cx"]), float(c.attrib["cy"]), float(c.attrib["r"]))
        for a in svg.iter(f"{SVG}a")
        for c in a.iter(f"{SVG}circle")
    ]
    for i in range(len(dots) - 1, -1, -1):  # the strongest statuses are drawn last
        href, x, y, r = dots[i]
        later = dots[i + 1 :]
        if all((x - lx) ** 2 + (y - ly) ** 2 > (r + lr) ** 2 for _, lx, ly, lr in later):
            return href
    raise AssertionError("every dot is covered")


@pytest.mark.parametrize(("locale", "lang", "map_title", "protocol"), LANGUAGES)
def test_the_map_and_a_station_page_render_in_each_language(
    flagged: Site,
    new_page: Callable[..., Page],
    accessible: Callable[[Page], None],
    locale: str,
    lang: str,
    map_title: str,
    protocol: str,
) -> None:
    page = new_page(locale=locale)
    page.goto("/map")
    expect(page).to_have_url(re.compile(rf"/elections/{flagged.election_id}/map$"))
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_role("heading", level=1)).to_have_text(map_title)
    # Every station is a link: on the map, or listed apart when far away (abroad).
    drawn, far = page.locator("svg.station-map a").count(), page.locator("ul.far a").count()
    assert drawn + far == 5767 and 0 < far < 60
    for status in ("proof", "statistical", "clean", "nodata"):
        count = page.locator(f'.legend .count[data-status="{status}"]').inner_text()
        assert (
            int(re.sub(r"\D", "", count)) == page.locator(f"svg.station-map g.s-{status} a").count()
        )
    # The map fits the phone's width.
    box = page.locator("svg.station-map").bounding_box()
    assert box is not None and box["width"] <= 390
    accessible(page)

    station = _proof_station(flagged)
    page.goto(f"/elections/{flagged.election_id}/stations/{station}")
    expect(page.get_by_role("heading", name=protocol)).to_be_visible()
    expect(page.locator(".badge.proof").first).to_be_visible()
    assert page.locator("img").count() == 0
    accessible(page)


def test_a_station_on_the_map_opens_its_page(flagged: Site, new_page: Callable[..., Page]) -> None:
    page = new_page(viewport={"width": 1200, "height": 900})
    page.goto(f"/elections/{flagged.election_id}/map")
    href = _uncovered_link(page.locator("svg.station-map").evaluate("e => e.outerHTML"))
    link = page.locator(f'svg.station-map a[href="{href}"]')
    name = link.get_attribute("aria-label")
    assert name
    link.click()
    expect(page).to_have_url(re.compile(rf"/elections/{flagged.election_id}/{href}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(name.split(" (")[0])

    # With the keyboard: a station's link takes the focus and Enter opens it.
    page.go_back()
    first = page.locator("svg.station-map a").first
    first.focus()
    target = first.get_attribute("href")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/elections/{flagged.election_id}/{target}$"))


def test_a_regions_map_and_the_results_pass_axe(
    flagged: Site, new_page: Callable[..., Page], accessible: Callable[[Page], None]
) -> None:
    page = new_page(locale="ru-RU")
    page.goto(f"/elections/{flagged.election_id}/map?region=Минская городская")
    drawn = page.locator("svg.station-map a").count()
    far = [a.get_attribute("href") for a in page.locator("ul.far a").all()]
    assert drawn + len(far) == 731
    # Set apart: the stations at embassies abroad (district 07-002), and only they.
    assert far and all(str(href).startswith("stations/07-002-") for href in far)
    accessible(page)
    page.goto("/")
    expect(page.get_by_role("heading", name="Итоги по стране")).to_be_visible()
    accessible(page)
    page.get_by_role("link", name="Минская городская").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Минская городская")
    accessible(page)
