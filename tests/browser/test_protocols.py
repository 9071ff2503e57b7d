"""Protocol photos in a real browser, on the seeded election: an observer sends a
seeded phone photo of the seeded protocol form from the review app's page, the
worker's reader reads it, two other observers type its fields one after another
from their cropped images (never shown the machine's reading nor each other's
entry), and the station pages show the official figures reconciled, each line
with its sources; a second station, whose photo differs from the imported file,
shows the conflict with each source's number. axe finds no serious violation."""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Callable

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from api.accounts import service as accounts
from api.accounts.schemas import Principal, Role, Via
from api.protocols import jobs, repository, service
from api.protocols.schemas import FieldState, PhotoStatus
from infra.settings import get_settings
from infra.storage import photo_store
from ocr.protocol_template import ProtocolTemplate, load_protocol_template
from seeds.photos import PhotoConditions
from seeds.protocol_photos import protocol_photo
from tests.browser.conftest import SEEDED, Site

PASSWORD = "correct horse battery staple"
OPTIONS = ("dmitriyev", "kanapatskaya", "lukashenko", "tsikhanouskaya", "charachen", "against_all")
# A phone photo taken with care: the test is about the pages, not the reader's limits.
CLEAR = PhotoConditions(
    rotation_deg=2.0,
    perspective=0.01,
    blur_sigma=0.3,
    light_gradient=0.1,
    shadow=False,
    jpeg_quality=90,
    long_side=1800,
    ballot_fraction=0.85,
)


def holds(v: dict[str, int]) -> bool:
    """The seeded form's checks on one protocol."""
    return (
        v["ballots_cast"] == v["invalid"] + sum(v[o] for o in OPTIONS)
        and v["ballots_cast"] <= v["ballots_issued"] <= v["registered"]
        and v["ballots_received"] >= v["ballots_issued"] + v["ballots_cancelled"]
        and v["ballots_issued"] >= v["ballots_issued_early"] + v["ballots_issued_home"]
    )


def file_rows() -> dict[str, dict[str, int]]:
    rows = {}
    with (SEEDED / "official.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            try:
                rows[row["precinct_id"]] = {k: int(v) for k, v in row.items() if k != "precinct_id"}
            except ValueError:
                continue
    return rows


def number_on_form(precinct_id: str) -> str:
    return str(int(re.findall(r"\d+", precinct_id)[-1]))


def photo_of(
    template: ProtocolTemplate, figures: dict[str, int], precinct: str, seed: int
) -> bytes:
    data, _labels = protocol_photo(
        template,
        {f: figures[f] for f in template.field_ids},
        number_on_form(precinct),
        np.random.default_rng(seed),
        CLEAR,
        corrections=0.0,
        stamp_over_fields=0.0,
        signature_over_fields=0.0,
        dash_for_zero=0.0,
    )
    return data


class Scene:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.template = load_protocol_template(SEEDED / "protocol")
        rows = file_rows()
        # A station whose imported protocol fails the form's own checks: the photo of
        # the same figures fails them too, so every field goes to people.
        failing = [p for p, v in sorted(rows.items()) if not holds(v)]
        self.typed_station, self.disputed_station = failing[:2]
        self.typed_figures = rows[self.typed_station]
        self.disputed_figures = rows[self.disputed_station]
        # A station whose posted protocol differs from the imported file: 20 votes
        # moved from one candidate to another (the form's checks still hold).
        self.conflict_station, good = next(
            (p, v) for p, v in sorted(rows.items()) if holds(v) and v["tsikhanouskaya"] >= 20
        )
        self.file_figures = good
        self.posted = {
            **good,
            "lukashenko": good["lukashenko"] + 20,
            "tsikhanouskaya": good["tsikhanouskaya"] - 20,
        }
        self.people: dict[str, Principal] = {}
        with site.connect() as conn:
            for name in ("psender", "ptyper1", "ptyper2", "ptyper3", "ptyper4"):
                user = accounts.add_user(conn, name, Role.OBSERVER, PASSWORD, actor="test")
                self.people[name] = Principal(
                    role=Role.OBSERVER, via=Via.API_TOKEN, user_id=user.id, username=name
                )
            conn.commit()

    def read(self, photo_id: uuid.UUID) -> PhotoStatus | None:
        """What the worker does with a received photo (tests/api/protocols/test_end_to_end)."""
        with self.site.connect() as conn:
            return jobs.read_photo(conn, photo_store(get_settings()), photo_id, jobs.ocr_reader)


@pytest.fixture(scope="module")
def scene(site: Site) -> Scene:
    return Scene(site)


def _main_html(page: Page) -> str:
    return page.locator("main").inner_html()


def _absent(number: int, html: str) -> bool:
    return re.search(rf"(?<![\w.-]){number}(?![\w.-])", html) is None


def test_a_photo_sent_from_the_page_is_read_typed_by_two_observers_and_shown_reconciled(
    scene: Scene,
    new_page: Callable[..., Page],
    accessible: Callable[[Page], None],
    log_in: Callable[..., None],
) -> None:
    station = scene.typed_station
    sender = new_page()
    log_in(sender, "psender", PASSWORD, "/review")
    sender.get_by_role("link", name="Protocols", exact=True).click()
    expect(sender.locator("main h1")).to_have_text("Protocol photos")
    accessible(sender)
    sender.locator("#p-station").fill(station)
    sender.locator("#p-photos").set_input_files(
        [
            {
                "name": "door.jpg",
                "mimeType": "image/jpeg",
                "buffer": photo_of(scene.template, scene.typed_figures, station, 11),
            }
        ]
    )
    sender.get_by_role("button", name="Send the photos").click()
    sent = sender.locator("[data-photo-id]")
    expect(sent).to_have_count(1)
    expect(sent).to_have_attribute("data-status", "received")
    accessible(sender)
    photo_id = uuid.UUID(sent.get_attribute("data-photo-id") or "")

    assert scene.read(photo_id) is PhotoStatus.PARTIAL
    sender.get_by_role("link", name="See their state now").click()
    expect(sender.locator(f'[data-photo-id="{photo_id}"]')).to_have_attribute(
        "data-status", "partial"
    )
    expect(sender.locator(f'[data-photo-id="{photo_id}"]')).to_contain_text(
        re.compile(r"\b\d+ figures? waits? for observers")  # "1 figure waits", "3 figures wait"
    )
    # The sender types none of their own photo's figures.
    sender.goto("/review/protocols/transcribe")
    expect(sender.get_by_role("status")).to_contain_text("Nothing is left for you to type")

    first_entries: dict[str, int] = {}
    for name in ("ptyper1", "ptyper2"):
        typer = new_page()
        log_in(typer, name, PASSWORD, "/review/protocols/transcribe")
        checked = False
        while typer.locator("#t-value").count():
            form = typer.locator(f'form[action^="/review/protocols/transcribe/{photo_id}/"]')
            field_id = (form.get_attribute("action") or "").rsplit("/", 1)[1]
            expect(typer.locator("figure.field-crop img")).to_be_visible()
            html = _main_html(typer)
            value = scene.typed_figures[field_id]
            if value >= 100:
                # The figure is on the page neither as the machine read it nor as
                # the first observer typed it.
                assert _absent(value, html), (name, field_id, value)
            if not checked:
                accessible(typer)
                checked = True
            typer.locator("#t-value").fill(str(value))
            with typer.expect_navigation():
                typer.get_by_role("button", name="Save", exact=True).click()
            if name == "ptyper1":
                first_entries[field_id] = value
        expect(typer.get_by_role("status").last).to_contain_text("Nothing is left for you to type")
    # The figures fail the form's checks: the reader cannot give them all, and
    # whatever it left to people was typed by both observers.
    assert first_entries

    with scene.site.connect() as conn:
        states = dict(repository.field_states(conn, photo_id))
    assert {states[f] for f in first_entries} == {FieldState.AGREED}
    typed = sorted(first_entries)[0]

    observer = new_page(viewport={"width": 1280, "height": 900})
    log_in(observer, "ptyper3", PASSWORD, f"/review/stations/{scene.site.election_id}/{station}")
    row = observer.locator(f'tr[data-field="{typed}"]')
    expect(row).to_have_attribute("data-status", "confirmed")
    expect(row).to_contain_text(str(scene.typed_figures[typed]))
    expect(row).to_contain_text("the imported file")
    expect(row).to_contain_text("typed from a photo by 2 observers")
    expect(observer.locator("section.reconciled")).to_have_attribute("data-conflict", "false")
    accessible(observer)

    public = new_page()
    public.goto(f"/elections/{scene.site.election_id}/stations/{station}")
    expect(public.locator(f'tr[data-field="{typed}"]')).to_contain_text(
        "typed from a photo by 2 observers"
    )
    accessible(public)


def test_a_photo_differing_from_the_imported_file_shows_the_conflict_with_each_number(
    scene: Scene,
    new_page: Callable[..., Page],
    accessible: Callable[[Page], None],
    log_in: Callable[..., None],
) -> None:
    station = scene.conflict_station
    settings = get_settings()
    with scene.site.connect() as conn:
        from api.protocols.schemas import NewProtocolPhoto, Uploader

        accepted, _created = service.accept(
            conn,
            photo_store(settings),
            NewProtocolPhoto(
                photo_id=str(uuid.uuid4()),
                election_id=scene.site.election_id,
                precinct_id=station,
                photo=photo_of(scene.template, scene.posted, station, 12),
                uploader=Uploader(user_id=scene.people["psender"].user_id),
            ),
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels,
            uploader_key=b"k" * 16,
        )
    assert scene.read(accepted.photo_id) in (PhotoStatus.READ, PhotoStatus.PARTIAL)
    # Whatever the reader left to people, two observers type as written.
    with scene.site.connect() as conn:
        for field_id, state in repository.field_states(conn, accepted.photo_id):
            if state == FieldState.TRANSCRIBING:
                for name in ("ptyper3", "ptyper4"):
                    service.enter(
                        conn,
                        accepted.photo_id,
                        field_id,
                        scene.people[name],
                        scene.posted[field_id],
                    )
        conn.commit()

    observer = new_page(viewport={"width": 1280, "height": 900})
    log_in(observer, "ptyper1", PASSWORD, f"/review/stations/{scene.site.election_id}/{station}")
    expect(observer.locator("section.reconciled")).to_have_attribute("data-conflict", "true")
    expect(observer.locator("section.reconciled")).to_contain_text("Conflicting protocols")
    row = observer.locator('tr[data-field="lukashenko"]')
    expect(row).to_have_attribute("data-status", "conflict")
    expect(row).to_contain_text(str(scene.file_figures["lukashenko"]))
    expect(row).to_contain_text(str(scene.posted["lukashenko"]))
    expect(observer.locator("section.reconciled")).to_contain_text("Two different protocols:")
    accessible(observer)

    public = new_page()
    public.goto(f"/elections/{scene.site.election_id}/stations/{station}")
    expect(public.locator('tr[data-field="lukashenko"]')).to_have_attribute(
        "data-status", "conflict"
    )
    # The official protocol's line shows no figure while its sources disagree.
    expect(public.locator('td[data-option="lukashenko"]')).not_to_contain_text(
        str(scene.file_figures["lukashenko"])
    )
    accessible(public)


def test_the_protocol_pages_speak_russian_and_belarusian(
    scene: Scene, new_page: Callable[..., Page], log_in: Callable[..., None]
) -> None:
    for locale, title in (("ru-RU", "Фото протоколов"), ("be-BY", "Фота пратаколаў")):
        page = new_page(locale=locale)
        log_in(page, "ptyper2", PASSWORD, "/review/protocols")
        expect(page.locator("main h1")).to_have_text(title)


def test_an_admin_decides_a_figure_three_observers_read_three_ways(
    scene: Scene,
    new_page: Callable[..., Page],
    accessible: Callable[[Page], None],
    log_in: Callable[..., None],
) -> None:
    settings = get_settings()
    with scene.site.connect() as conn:
        from api.protocols.schemas import NewProtocolPhoto, Uploader

        accepted, _created = service.accept(
            conn,
            photo_store(settings),
            NewProtocolPhoto(
                photo_id=str(uuid.uuid4()),
                election_id=scene.site.election_id,
                precinct_id=scene.disputed_station,
                photo=photo_of(scene.template, scene.disputed_figures, scene.disputed_station, 13),
                uploader=Uploader(user_id=scene.people["psender"].user_id),
            ),
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels,
            uploader_key=b"k" * 16,
        )
    assert scene.read(accepted.photo_id) in (PhotoStatus.READ, PhotoStatus.PARTIAL)
    with scene.site.connect() as conn:
        waiting = [
            f
            for f, state in repository.field_states(conn, accepted.photo_id)
            if state == FieldState.TRANSCRIBING
        ]
        # Its figures fail the form's checks: the reader cannot give them all.
        assert waiting
        field_id = waiting[0]
        for name, value in (("ptyper1", 901), ("ptyper2", 902), ("ptyper3", 903)):
            service.enter(conn, accepted.photo_id, field_id, scene.people[name], value)
        admin = accounts.add_user(conn, "padmin", Role.ADMIN, PASSWORD, actor="test")
        conn.commit()
    assert admin.id

    page = new_page()
    log_in(page, "padmin", PASSWORD, "/review/protocols/disputed")
    box = page.locator(f"#d-{accepted.photo_id}-{field_id}")
    expect(box.locator("strong.entry")).to_have_text(["901", "902", "903"])
    expect(box.locator("img")).to_be_visible()
    accessible(page)
    box.locator("input[name=value]").fill(str(scene.disputed_figures[field_id]))
    box.locator("textarea").fill("clear on the photo")
    box.get_by_role("button", name="Decide this figure").click()
    expect(page.get_by_role("status")).to_contain_text("Decided.")
    with scene.site.connect() as conn:
        decided = repository.field(conn, accepted.photo_id, field_id)
    assert decided is not None and decided.value == scene.disputed_figures[field_id]
