"""The quarantine in the observers' review, in a real browser at phone width, in
Russian, Belarusian and English: the queue shows held submissions with why they
are held, a held submission's page offers the two-person approve or reject, and a
proof flag says how many distinct verified voters stand behind it. Each page fits
the phone's width, speaks the page's language and passes axe.

With ``GOLOS_REVIEW_SHOTS`` set to a folder, each page is also saved there as a
screenshot (for a person to look at; the test does not need them)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from api.accounts import service as accounts
from api.accounts.schemas import Principal, Role, Via
from api.elections import repository as elections
from api.flags.service import run_flags
from api.review import service as review
from api.submissions.schemas import Status
from tally import repository as tallies
from tests.browser.conftest import PHONE, Site, stored_submission

PASSWORD = "correct horse battery staple"
HOLDS = ("voter_burst", "network_burst", "station_burst")
# (browser locale, html lang, the held reason's label, the flag's voters' label)
LANGUAGES = [
    ("ru-RU", "ru", "Часть всплеска отправок из одной сети на этот участок", "Разных проверенных"),
    ("be-BY", "be", "Частка ўсплёску адправак з адной сеткі на гэты ўчастак", "Розных правераных"),
    ("en-US", "en", "Part of a burst from one network at this station", "Distinct verified"),
]
# English words of the review pages that must not show on a Russian or Belarusian page.
ENGLISH = ("Quarantined", "burst", "Count as", "Reject", "Approve", "voters", "Submission")


class Scene:
    """Verified photos proving more votes than a protocol gives (a proof flag with
    its voters), three held submissions (one per burst), one of them with an
    approval proposed by a first observer."""

    def __init__(self, site: Site) -> None:
        self.site = site
        election = site.election_id
        with site.connect() as conn:
            users = {
                name: accounts.add_user(conn, name, Role.OBSERVER, PASSWORD, actor="test")
                for name in ("observer1", "observer2")
            }
            protocols = elections.official_protocols(conn, election)
            options = elections.option_ids(conn, election)
            votes, self.precinct, self.option = min(
                (v, p, o)
                for p, lines in sorted(protocols.items())
                for o in options
                if (v := lines.get(o)) is not None
            )
            for i in range(int(votes) + 3):
                stored_submission(
                    conn, election, self.precinct, Status.VERIFIED, [self.option], [], i
                )
            self.held = [
                stored_submission(
                    conn,
                    election,
                    self.precinct,
                    Status.QUARANTINED,
                    [self.option],
                    ["quarantined", hold],
                    100 + n,
                )
                for n, hold in enumerate(HOLDS)
            ]
            run_flags(conn, election, draws=20)
            first = users["observer1"]
            proposer = Principal(
                role=first.role, via=Via.SESSION, user_id=first.id, username="observer1"
            )
            review.decide_submission(conn, proposer, self.held[1], "count_read")
            conn.commit()
            flag = next(
                r
                for r in tallies.station_review_flags(conn, election, self.precinct)
                if r.flag == "crowd_exceeds_official" and r.source == "photos"
            )
            self.flag_id, self.identities = flag.id, flag.identities


@pytest.fixture(scope="module")
def scene(site: Site) -> Scene:
    return Scene(site)


def _fits_and_speaks(page: Page, lang: str, name: str) -> None:
    """The page is as wide as the phone (nothing pushes it sideways; wide tables
    scroll inside their own box), and no English shows on a ru or be page."""
    folder = os.environ.get("GOLOS_REVIEW_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}-{lang}.png"), full_page=True)
    expect(page.locator("html")).to_have_attribute("lang", lang)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} ({lang}) is {width} px wide"
    if lang != "en":
        text = page.locator("main").inner_text()
        leaks = [word for word in ENGLISH if word in text]
        assert not leaks, f"{name} ({lang}) shows English: {leaks}"


@pytest.mark.parametrize(
    ("locale", "lang", "network_label", "voters_label"),
    LANGUAGES,
    ids=[language[1] for language in LANGUAGES],
)
def test_held_submissions_and_proof_voters_read_on_a_phone_in_each_language(
    scene: Scene,
    new_page: Callable[..., Page],
    accessible: Callable[[Page], None],
    log_in: Callable[..., None],
    locale: str,
    lang: str,
    network_label: str,
    voters_label: str,
) -> None:
    election = scene.site.election_id
    page = new_page(locale=locale)
    log_in(page, "observer2", PASSWORD, "/review/submissions?reason=quarantined")
    rows = page.locator("table.queue tbody tr")
    expect(rows).to_have_count(len(HOLDS))
    expect(page.locator("table.queue")).to_contain_text(network_label)
    _fits_and_speaks(page, lang, "queue-quarantined")
    accessible(page)

    page.goto(f"/review/submissions/{scene.held[1]}")
    expect(page.locator("main")).to_contain_text(network_label)
    # The first observer proposed approving it: the second may agree or disagree.
    expect(page.locator("form[action$='/agree'] button:not([formaction])")).to_be_visible()
    expect(page.locator("button[formaction$='/disagree']")).to_be_visible()
    _fits_and_speaks(page, lang, "hold-decision")
    accessible(page)

    page.goto(f"/review/submissions/{scene.held[0]}")
    expect(page.locator("button[value=count_read]")).to_be_visible()
    expect(page.locator("button[value=reject]")).to_be_visible()
    _fits_and_speaks(page, lang, "hold-undecided")
    accessible(page)

    assert scene.identities is not None and scene.identities > 0
    page.goto(f"/review/stations/{election}/{scene.precinct}#flag-{scene.flag_id}")
    expect(page.locator(f"#flag-{scene.flag_id}")).to_contain_text(str(scene.identities))
    _fits_and_speaks(page, lang, "station-proof-flag")
    accessible(page)

    page.goto("/review/flags?kind=proof")
    expect(page.locator("table.queue thead")).to_contain_text(voters_label)
    _fits_and_speaks(page, lang, "flags-queue")
    accessible(page)
