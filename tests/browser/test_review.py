"""The observers' review in a real browser: an observer logs in, filters the queue,
opens a submission in review and counts it; a second observer agrees and the
station's tally moves; an observer confirms a proof flag and a second agrees; axe
finds no serious violation on the review pages."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from api.accounts import service as accounts
from api.accounts.schemas import Role
from api.elections import repository as elections
from api.flags.service import run_flags
from api.submissions.schemas import Status
from tally import repository as tallies
from tests.browser.conftest import Site, stored_submission

PASSWORD = "correct horse battery staple"


class Scene:
    """What the test module's data holds."""

    def __init__(self, site: Site) -> None:
        self.site = site
        with site.connect() as conn:
            for name in ("observer1", "observer2"):
                accounts.add_user(conn, name, Role.OBSERVER, PASSWORD, actor="test")
            protocols = elections.official_protocols(conn, site.election_id)
            options = elections.option_ids(conn, site.election_id)
            # The station and option with the fewest official votes: a few verified
            # photos prove more votes than the protocol gives.
            votes, self.precinct, self.option = min(
                (v, p, o)
                for p, lines in sorted(protocols.items())
                for o in options
                if (v := lines.get(o)) is not None
            )
            self.official = int(votes)
            ref = elections.precinct_refs(conn, site.election_id, [self.precinct])[self.precinct]
            self.district = ref.district
            for i in range(self.official + 2):
                stored_submission(
                    conn,
                    site.election_id,
                    self.precinct,
                    Status.VERIFIED,
                    [self.option],
                    [],
                    seed=100 + i,
                )
            # A submission in review: read as the option, declared as lukashenko.
            self.declared = "lukashenko" if self.option != "lukashenko" else "charachen"
            self.in_review = stored_submission(
                conn,
                site.election_id,
                self.precinct,
                Status.REVIEW,
                [self.option],
                ["choice_mismatch"],
                seed=7,
                declared=[self.declared],
            )
            run_flags(conn, site.election_id, draws=20)
            conn.commit()

    def tally(self) -> tuple[dict[str, int], int]:
        with self.site.connect() as conn:
            return tallies.station_photo_tally(conn, self.site.election_id, self.precinct)

    def proof_flag(self) -> tuple[int, str]:
        with self.site.connect() as conn:
            rows = tallies.station_review_flags(conn, self.site.election_id, self.precinct)
        flag = next(r for r in rows if r.flag == "crowd_exceeds_official" and r.source == "photos")
        return flag.id, flag.review_status


@pytest.fixture(scope="module")
def scene(site: Site) -> Scene:
    return Scene(site)


def test_an_observer_counts_a_submission_and_a_second_observer_agrees(
    scene: Scene,
    new_page: Callable[..., Page],
    accessible: Callable[[Page], None],
    log_in: Callable[..., None],
) -> None:
    before_votes, before_voters = scene.tally()
    first = new_page()
    log_in(first, "observer1", PASSWORD)
    accessible(first)

    first.goto("/review/submissions")
    first.select_option("#f-district", scene.district)
    first.get_by_role("button", name="Filter").click()
    first.wait_for_url(re.compile(r"district="))
    accessible(first)
    first.locator(f'a[href="/review/submissions/{scene.in_review}"]').click()
    expect(first.locator("main h1")).to_have_text("Submission in review")
    expect(first.locator(f'img[src="/review/photos/{scene.in_review}"]')).to_be_visible()
    accessible(first)
    first.get_by_role("button", name=re.compile("^Count as declared")).click()
    expect(first.get_by_role("status")).to_contain_text("A second observer must agree")
    assert scene.tally() == (before_votes, before_voters)

    second = new_page()
    log_in(second, "observer2", PASSWORD, "/review/decisions")
    accessible(second)
    second.get_by_role("button", name="Agree", exact=True).first.click()
    expect(second.get_by_role("status")).to_contain_text("The decision is final")

    votes, voters = scene.tally()
    assert voters == before_voters + 1
    assert votes[scene.declared] == before_votes.get(scene.declared, 0) + 1


def test_an_observer_confirms_a_proof_flag_with_a_second_observer(
    scene: Scene,
    new_page: Callable[..., Page],
    accessible: Callable[[Page], None],
    log_in: Callable[..., None],
) -> None:
    flag_id, status = scene.proof_flag()
    assert status == "open"
    first = new_page(locale="ru-RU")
    log_in(first, "observer1", PASSWORD, "/review/flags")
    first.select_option("#f-kind", "proof")
    first.locator("form.filters button[type=submit]").click()
    first.wait_for_url(re.compile(r"kind=proof"))
    accessible(first)
    first.locator(f'a[href$="#flag-{flag_id}"]').first.click()
    accessible(first)
    article = first.locator(f"#flag-{flag_id}")
    article.locator("textarea").fill("Фото ясные, протокол занижен")
    article.get_by_role("button", name="Подтвердить").click()
    expect(first.get_by_role("status")).to_be_visible()
    assert scene.proof_flag()[1] == "open"

    second = new_page()
    log_in(
        second, "observer2", PASSWORD, f"/review/stations/{scene.site.election_id}/{scene.precinct}"
    )
    box = second.locator(f"#flag-{flag_id}")
    box.get_by_role("button", name="Agree", exact=True).click()
    expect(second.get_by_role("status")).to_contain_text("The decision is final")
    accessible(second)
    assert scene.proof_flag()[1] == "confirmed"
