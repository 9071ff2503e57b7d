"""The observers' protocol pages, through the real app, database and browser
sessions (the login form, CSRF tokens): photos uploaded from the page and their
states, fields typed one after another without the machine's guess or another
person's entry ever on the page, an admin deciding a disputed field, and the
station pages showing the reconciled official figures with their sources, and a
conflict with each source's numbers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.protocols import repository, service
from api.protocols.schemas import FieldState
from tests.api.protocols.conftest import (
    ELECTION,
    GOOD,
    PASSWORD,
    MakePhoto,
    People,
    protocol_jpeg,
    reading,
)

Account = Callable[..., dict[str, str]]
# Figures no page shows by chance (a CSRF token is hex, a UUID is hex).
GUESS = 48213
OTHERS_ENTRY = 73196


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def browser(app: FastAPI, conn: psycopg.Connection, role: str, username: str) -> TestClient:
    """A browser of its own (cookies), logged in through the login form as a new
    account ``username`` of ``role``."""
    from api.accounts import service as accounts
    from api.accounts.schemas import Role

    accounts.add_user(conn, username, Role(role), PASSWORD, actor="test")
    conn.commit()
    person = TestClient(app)
    token = csrf_of(person.get("/login").text)
    answer = person.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return person


def upload(
    person: TestClient,
    photos: list[tuple[str, bytes]],
    *,
    precinct: str = "p1",
    election: str = ELECTION,
    csrf: bool = True,
) -> httpx.Response:
    token = csrf_of(person.get("/review/protocols").text)
    return person.post(
        "/review/protocols/photos",
        data={"election_id": election, "precinct_id": precinct},
        # A browser sends an empty file part when no file is chosen.
        files=[("photo", (name, data, "image/jpeg")) for name, data in photos]
        or [("photo", ("", b"", "application/octet-stream"))],
        headers={"X-CSRF-Token": token, "HX-Request": "true"} if csrf else {},
    )


def ids_on(html: str) -> list[uuid.UUID]:
    return [uuid.UUID(i) for i in re.findall(r'data-photo-id="([0-9a-f-]{36})"', html)]


@pytest.fixture
def observer(app: FastAPI, conn: psycopg.Connection, client: TestClient) -> TestClient:
    return browser(app, conn, "observer", "page-observer")


# -- the upload page -----------------------------------------------------------------


def test_an_observer_sends_two_photos_from_the_page_and_sees_each_ones_state(
    conn: psycopg.Connection, observer: TestClient
) -> None:
    page = observer.get("/review/protocols")
    assert page.status_code == 200
    assert 'name="photo"' in page.text and "multiple" in page.text

    sent = upload(observer, [("door.jpg", protocol_jpeg(1)), ("door-2.jpg", protocol_jpeg(2))])
    assert sent.status_code == 200, sent.text
    ids = ids_on(sent.text)
    assert len(ids) == 2
    assert sent.text.count('data-status="received"') == 2
    assert "door.jpg" in sent.text and "door-2.jpg" in sent.text

    # The worker reads one: some figures unsure, so they go to people.
    with conn.transaction():
        service.record_reading(conn, ids[0], reading({**GOOD, "registered": None}))
    conn.commit()
    again = observer.get("/review/protocols", params={"photos": ",".join(map(str, ids))})
    assert f'data-photo-id="{ids[0]}" data-status="partial"' in again.text
    assert "1 figure waits for observers" in again.text
    assert f'data-photo-id="{ids[1]}" data-status="received"' in again.text


def test_the_upload_page_names_each_field_that_is_wrong(observer: TestClient) -> None:
    nothing = upload(observer, [], precinct="")
    assert nothing.status_code == 200  # htmx swaps only 2xx answers in
    assert 'data-field="precinct_id"' in nothing.text
    assert 'data-field="photo"' in nothing.text
    assert 'aria-invalid="true"' in nothing.text

    unknown = upload(observer, [("a.jpg", protocol_jpeg(3))], precinct="p999")
    assert 'data-field="precinct_id"' in unknown.text
    assert "unknown precinct" in unknown.text
    assert ids_on(unknown.text) == []

    not_a_photo = upload(observer, [("notes.jpg", b"these are not pixels" * 20)])
    assert not_a_photo.status_code == 200
    assert ids_on(not_a_photo.text) == []
    assert 'data-photo="notes.jpg"' in not_a_photo.text


def test_a_page_upload_without_the_pages_csrf_header_is_refused(observer: TestClient) -> None:
    answer = upload(observer, [("a.jpg", protocol_jpeg(4))], csrf=False)
    assert answer.status_code == 403


def test_the_same_photo_sent_twice_from_the_page_counts_once(observer: TestClient) -> None:
    photo = protocol_jpeg(5)
    first = upload(observer, [("a.jpg", photo)])
    second = upload(observer, [("a.jpg", photo)])
    assert len(ids_on(first.text)) == 1
    assert "it counts once" in second.text


# -- transcription -------------------------------------------------------------------


def _fields_to_people(read_photo: MakePhoto) -> uuid.UUID:
    """A photo whose reading fails its checks: every field goes to people, the
    machine's values (GUESS among them) kept but never shown."""
    values = {**GOOD, "registered": GUESS}
    return read_photo(reading(values, checks=[True, True, False]))


def test_the_transcription_page_never_shows_the_machines_guess_nor_anothers_entry(
    app: FastAPI, conn: psycopg.Connection, observer: TestClient, read_photo: MakePhoto
) -> None:
    photo_id = _fields_to_people(read_photo)
    assert repository.field(conn, photo_id, "registered") is not None
    first_page = observer.get("/review/protocols/transcribe")
    assert first_page.status_code == 200
    assert f"/v1/transcriptions/{photo_id}/registered/image" in first_page.text
    assert "1. Registered" in first_page.text  # the line of the form
    assert str(GUESS) not in first_page.text
    typed = observer.post(
        f"/review/protocols/transcribe/{photo_id}/registered",
        data={
            "election": ELECTION,
            "value": str(OTHERS_ENTRY),
            "action": "save",
            "csrf_token": csrf_of(first_page.text),
        },
        follow_redirects=False,
    )
    assert typed.status_code == 303
    assert typed.headers["location"].endswith("done=saved")

    second = browser(app, conn, "observer", "page-observer-2")
    page = second.get("/review/protocols/transcribe")
    assert f"/v1/transcriptions/{photo_id}/registered/image" in page.text
    assert str(GUESS) not in page.text
    assert str(OTHERS_ENTRY) not in page.text
    image = second.get(f"/v1/transcriptions/{photo_id}/registered/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"


def test_two_observers_agree_on_a_field_through_the_page_and_the_next_one_follows(
    app: FastAPI, conn: psycopg.Connection, observer: TestClient, read_photo: MakePhoto
) -> None:
    photo_id = read_photo({**GOOD, "registered": None})
    second = browser(app, conn, "observer", "page-observer-2")
    for person in (observer, second):
        page = person.get("/review/protocols/transcribe")
        assert f"/review/protocols/transcribe/{photo_id}/registered" in page.text
        done = person.post(
            f"/review/protocols/transcribe/{photo_id}/registered",
            data={"election": ELECTION, "value": "1 000", "csrf_token": csrf_of(page.text)},
        )
        assert done.status_code == 200
        assert "Nothing is left for you to type" in done.text
        assert "Saved. Here is the next figure." in done.text
    conn.commit()
    field = repository.field(conn, photo_id, "registered")
    assert field is not None and field.state == FieldState.AGREED and field.value == 1000


def test_the_transcription_page_names_a_bad_entry_and_takes_i_cannot_read_it(
    conn: psycopg.Connection, observer: TestClient, read_photo: MakePhoto
) -> None:
    photo_id = read_photo({**GOOD, "invalid": None})
    page = observer.get("/review/protocols/transcribe")
    url = f"/review/protocols/transcribe/{photo_id}/invalid"
    bad = observer.post(
        url, data={"election": ELECTION, "value": "l2", "csrf_token": csrf_of(page.text)}
    )
    assert bad.status_code == 422
    assert 'data-field="value"' in bad.text and "digits only" in bad.text
    empty = observer.post(
        url, data={"election": ELECTION, "value": "", "csrf_token": csrf_of(page.text)}
    )
    assert empty.status_code == 422 and 'data-field="value"' in empty.text
    illegible = observer.post(
        url,
        data={"election": ELECTION, "action": "illegible", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert illegible.status_code == 303
    assert repository.entries(conn, photo_id, "invalid") == [None]


def test_an_observer_with_nothing_to_type_is_told_so(observer: TestClient) -> None:
    page = observer.get("/review/protocols/transcribe")
    assert page.status_code == 200
    assert "Nothing is left for you to type in this election now" in page.text


# -- disputed fields -----------------------------------------------------------------


def test_an_admin_decides_a_disputed_field_on_the_page(
    app: FastAPI,
    conn: psycopg.Connection,
    client: TestClient,
    person: People,
    read_photo: MakePhoto,
) -> None:
    photo_id = read_photo({**GOOD, "invalid": None})
    for value in (5, 6, 8):
        service.enter(conn, photo_id, "invalid", person("observer"), value)
    conn.commit()
    admin = browser(app, conn, "admin", "page-admin")
    page = admin.get("/review/protocols/disputed")
    assert page.status_code == 200
    entries = re.findall(r'<strong class="entry">(\d+)</strong>', page.text)
    assert sorted(entries) == ["5", "6", "8"]
    decided = admin.post(
        f"/review/protocols/disputed/{photo_id}/invalid",
        data={
            "election": ELECTION,
            "value": "5",
            "note": "the 5 is clear on the photo",
            "csrf_token": csrf_of(page.text),
        },
        follow_redirects=False,
    )
    assert decided.status_code == 303
    conn.commit()
    field = repository.field(conn, photo_id, "invalid")
    assert field is not None and field.state == FieldState.AGREED and field.value == 5
    assert "No disputed figure" in admin.get("/review/protocols/disputed").text


def test_observers_cannot_open_the_disputed_fields_nor_admins_type(
    app: FastAPI, conn: psycopg.Connection, observer: TestClient
) -> None:
    assert observer.get("/review/protocols/disputed").status_code == 403
    admin = browser(app, conn, "admin", "page-admin")
    assert admin.get("/review/protocols/transcribe").status_code == 403
    assert admin.get("/review/protocols").status_code == 200


# -- the station pages: reconciled figures and their sources -------------------------


def _row(html: str, field_id: str) -> str:
    found = re.search(rf'<tr data-field="{field_id}"[^>]*>.*?</tr>', html, re.S)
    assert found, f"no row for {field_id}"
    return found.group(0)


def test_the_station_pages_show_the_reconciled_figure_with_its_sources(
    conn: psycopg.Connection,
    client: TestClient,
    account: Account,
    observer: TestClient,
    read_photo: MakePhoto,
    person: People,
) -> None:
    photo_id = read_photo({**GOOD, "registered": None})
    for _ in range(2):
        service.enter(conn, photo_id, "registered", person("observer"), 1000)
    conn.commit()
    review = observer.get(f"/review/stations/{ELECTION}/p1")
    assert review.status_code == 200
    row = _row(review.text, "registered")
    assert 'data-status="confirmed"' in row
    assert "the imported file" in row and "typed from a photo by 2 observers" in row
    assert 'data-kind="machine"' in _row(review.text, "lukashenko")
    assert 'data-conflict="false"' in review.text
    assert str(photo_id)[:8] not in review.text  # observers never learn a photo's station

    public = client.get(f"/elections/{ELECTION}/stations/p1")
    assert public.status_code == 200
    assert "typed from a photo by 2 observers" in _row(public.text, "registered")


def test_conflicting_protocols_show_each_sources_number_and_no_official_figure(
    conn: psycopg.Connection,
    client: TestClient,
    account: Account,
    observer: TestClient,
    read_photo: MakePhoto,
) -> None:
    # The photo says 280 for lukashenko and 26 invalid where the file says 300 and 5:
    # two fields differ, two different protocols.
    read_photo({**GOOD, "lukashenko": 280, "invalid": 25})
    review = observer.get(f"/review/stations/{ELECTION}/p1")
    assert 'data-conflict="true"' in review.text
    assert "Conflicting protocols" in review.text
    row = _row(review.text, "lukashenko")
    assert 'data-status="conflict"' in row
    assert "<strong>300</strong>" in row and "<strong>280</strong>" in row
    assert "Two different protocols: the imported file and a protocol photo" in review.text

    public = client.get(f"/elections/{ELECTION}/stations/p1")
    assert 'data-conflict="true"' in public.text
    official_cell = re.search(r'<td class="num" data-option="lukashenko">([^<]*)</td>', public.text)
    assert official_cell is not None and "300" not in official_cell.group(1)
    assert "<strong>280</strong>" in _row(public.text, "lukashenko")

    page = client.get(
        f"/v1/elections/{ELECTION}/precincts", headers=account("analyst"), params={"limit": 10}
    ).json()
    p1 = next(p for p in page["items"] if p["id"] == "p1")
    assert p1["official"]["lukashenko"] is None
    assert p1["official"]["tsikhanouskaya"] == 1


def test_a_station_known_only_from_its_file_says_so(
    observer: TestClient, client: TestClient
) -> None:
    review = observer.get(f"/review/stations/{ELECTION}/p2")
    assert "comes from the imported file" in review.text
    public = client.get(f"/elections/{ELECTION}/stations/p2")
    assert "comes from the imported file" in public.text
    assert 'data-option="tsikhanouskaya">200<' in public.text


def _national_official(conn: psycopg.Connection, option: str) -> int:
    from api.public import service as public

    figures = public.overview(conn, ELECTION).national
    conn.commit()
    return next(o.official for o in figures.options if o.option_id == option)


def test_the_results_pages_sum_the_reconciled_official_figures(
    conn: psycopg.Connection, client: TestClient, read_photo: MakePhoto
) -> None:
    before = _national_official(conn, "lukashenko")
    # A station the imported file does not have, known from its posted protocol.
    read_photo(GOOD, precinct="p3")
    assert _national_official(conn, "lukashenko") == before + GOOD["lukashenko"]
    # A station whose posted protocol contradicts the file: its figure is unknown.
    read_photo({**GOOD, "lukashenko": 280, "invalid": 25})
    assert _national_official(conn, "lukashenko") == before
    assert client.get(f"/elections/{ELECTION}").status_code == 200


def test_area_sums_count_a_stations_reconciled_votes_instead_of_its_files() -> None:
    sums = {"North": {"a": 100, "b": 50}, "South": {"a": 7}}
    changes = {
        "n1": ({"a": 30, "b": None}, {"a": None, "b": 12}),
        "s9": ({"a": None, "b": None}, {"a": 5, "b": 1}),
        "elsewhere": ({"a": 1, "b": 1}, {"a": 99, "b": 99}),
    }
    area_of = {"n1": "North", "s9": "South"}
    assert service.adjust_area_sums(sums, area_of, changes) == {
        "North": {"a": 70, "b": 62},
        "South": {"a": 12, "b": 1},
    }
    assert sums == {"North": {"a": 100, "b": 50}, "South": {"a": 7}}


def test_a_station_page_compares_it_with_its_districts_reconciled_figures(
    conn: psycopg.Connection, read_photo: MakePhoto
) -> None:
    from api.review import service as review

    def lukashenko_share(evidence: review.StationEvidence) -> float | None:
        return next(r.district for r in evidence.shares if r.option == "lukashenko")

    def evidence() -> review.StationEvidence:
        seen = review.station_evidence(conn, ELECTION, "p1")
        conn.commit()
        return seen

    before = evidence()
    # p3, in p1's district, is not in the imported file: known from its photo only.
    read_photo(
        {**GOOD, "ballots_issued": 206, "ballots_cast": 206, "lukashenko": 200}, precinct="p3"
    )
    after = evidence()
    assert after.district_stations == before.district_stations + 1
    assert lukashenko_share(after) != lukashenko_share(before)
    # A conflict over p1's ballots cast leaves p1 out of its district's figures:
    # p3's alone remain.
    read_photo({**GOOD, "ballots_cast": 307, "invalid": 6})
    conflicted = evidence()
    assert conflicted.district_stations == 1
    assert conflicted.district_turnout == 206 / GOOD["registered"]
    assert lukashenko_share(conflicted) == 200 / 206


def test_district_totals_leave_out_a_station_whose_turnout_is_unknown() -> None:
    from api.review.service import district_totals

    figures: dict[str, dict[str, int | None]] = {
        "a": {"registered": 100, "ballots_cast": 60, "x": 40, "y": None},
        "b": {"registered": 50, "ballots_cast": None, "x": 10},
        "c": {"registered": 10, "ballots_cast": 5, "x": 1, "y": 3},
    }
    assert district_totals(figures) == (
        2,
        {"registered": 110, "ballots_cast": 65, "x": 41, "y": 3},
    )
    assert district_totals({}) == (0, {"registered": 0, "ballots_cast": 0})
