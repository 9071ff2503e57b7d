"""People where the machine is unsure: a reading's fields without a confident value
(or of a reading whose checks fail) go to observers, who type them from the
cropped cell without seeing the machine's guess or each other's entries; two that
agree make the figure, a disagreement goes to a third, three different readings to
an admin, whose decision is audit-logged. Through the real app and database."""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Callable

import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.audit import service as audit
from api.errors import Conflict
from api.protocols import repository, service
from api.protocols.schemas import FieldState, PhotoReason, PhotoStatus
from tests.api.protocols.conftest import (
    ELECTION,
    FIELDS,
    GOOD,
    MakePhoto,
    People,
    principal_of,
    reading,
)

Account = Callable[..., dict[str, str]]
TASK_KEYS = {"photo_id", "field_id", "label", "image_url", "submit_url", "claimed_seconds"}


def states(conn: psycopg.Connection, photo_id: uuid.UUID) -> dict[str, str]:
    conn.commit()
    return dict(repository.field_states(conn, photo_id))


def next_task(client: TestClient, who: dict[str, str]) -> dict[str, object] | None:
    answer = client.get("/v1/transcriptions/next", params={"election_id": ELECTION}, headers=who)
    if answer.status_code == 204:
        return None
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def type_in(
    client: TestClient, who: dict[str, str], task: dict[str, object], value: int | None
) -> int:
    return client.post(str(task["submit_url"]), json={"value": value}, headers=who).status_code


# -- what a reading sends to people -------------------------------------------------


def test_fields_without_a_confident_value_go_to_people(
    conn: psycopg.Connection, read_photo: MakePhoto
) -> None:
    photo_id = read_photo({**GOOD, "invalid": None, "lukashenko": None})
    found = states(conn, photo_id)
    assert {f for f, s in found.items() if s == FieldState.TRANSCRIBING} == {
        "invalid",
        "lukashenko",
    }
    assert all(
        s == FieldState.GIVEN for f, s in found.items() if f not in {"invalid", "lukashenko"}
    )
    photo = repository.photo(conn, photo_id)
    assert photo is not None and photo.status == PhotoStatus.PARTIAL


def test_every_field_of_a_reading_whose_checks_fail_goes_to_people(
    conn: psycopg.Connection, read_photo: MakePhoto
) -> None:
    photo_id = read_photo(reading(GOOD, checks=[False, True, True]))
    assert set(states(conn, photo_id).values()) == {FieldState.TRANSCRIBING}
    photo = repository.photo(conn, photo_id)
    assert photo is not None and PhotoReason.CHECKS_FAIL in photo.reasons


def test_a_photo_of_another_stations_protocol_sends_nobody_to_work(
    conn: psycopg.Connection, read_photo: MakePhoto
) -> None:
    photo_id = read_photo(reading({**GOOD, "invalid": None}, precinct="7"))
    assert states(conn, photo_id) == {}
    photo = repository.photo(conn, photo_id)
    assert photo is not None and photo.reasons[0] == PhotoReason.PRECINCT_MISMATCH


@pytest.mark.parametrize("verdict", ["unreadable", "not_a_protocol"])
def test_a_photo_that_is_not_read_sends_nobody_to_work(
    conn: psycopg.Connection, read_photo: MakePhoto, verdict: str
) -> None:
    photo_id = read_photo(reading({}, verdict=verdict, precinct=None))
    assert states(conn, photo_id) == {}
    photo = repository.photo(conn, photo_id)
    assert photo is not None and photo.status == verdict


def test_a_reading_is_recorded_once(conn: psycopg.Connection, read_photo: MakePhoto) -> None:
    photo_id = read_photo(GOOD)
    with conn.transaction():
        assert service.record_reading(conn, photo_id, reading({**GOOD, "invalid": None})) is None
    assert set(states(conn, photo_id).values()) == {FieldState.GIVEN}


# -- observers typing -----------------------------------------------------------------


def test_two_observers_who_agree_make_the_figure(
    conn: psycopg.Connection, client: TestClient, account: Account, read_photo: MakePhoto
) -> None:
    photo_id = read_photo({**GOOD, "invalid": None})
    first, second = account("observer"), account("observer")
    task = next_task(client, first)
    assert task is not None and set(task) == TASK_KEYS
    assert task["photo_id"] == str(photo_id) and task["field_id"] == "invalid"
    assert task["label"] == "4. Invalid"
    image = client.get(str(task["image_url"]), headers=first)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size[1] == service.CROP_HEIGHT
    assert type_in(client, first, task, 5) == 204
    assert states(conn, photo_id)["invalid"] == FieldState.TRANSCRIBING

    again = next_task(client, second)
    assert again is not None and again["field_id"] == "invalid"
    assert type_in(client, second, again, 5) == 204
    assert states(conn, photo_id)["invalid"] == FieldState.AGREED
    protocol = client.get(
        f"/v1/elections/{ELECTION}/stations/p1/protocol", headers=account("analyst")
    ).json()
    invalid = next(f for f in protocol["figures"] if f["field_id"] == "invalid")
    assert invalid["value"] == 5 and invalid["status"] == "confirmed"
    assert [(s["kind"], s["transcribers"]) for s in invalid["sources"]] == [
        ("file", 0),
        ("transcription", 2),
    ]


def test_an_observer_never_sees_the_machines_guess_nor_anothers_entry(
    conn: psycopg.Connection, client: TestClient, account: Account, read_photo: MakePhoto
) -> None:
    # The checks fail: every field goes to people, the machine's values kept aside.
    read_photo(reading({**GOOD, "lukashenko": 777}, checks=[False, True, True]))
    first, second = account("observer"), account("observer")
    task = next_task(client, first)
    assert task is not None and set(task) == TASK_KEYS and task["field_id"] == "registered"
    shown = {str(v) for k, v in task.items() if k != "claimed_seconds"}
    assert not any(str(GOOD["registered"]) in v for v in shown)
    assert type_in(client, first, task, 4321) == 204
    theirs = next_task(client, second)
    assert theirs is not None and theirs["field_id"] == "registered"
    answer = client.get(
        "/v1/transcriptions/next", params={"election_id": ELECTION}, headers=second
    ).text
    assert "4321" not in answer and "1000" not in answer


def test_an_observer_is_never_given_a_field_they_typed_nor_a_photo_they_sent(
    conn: psycopg.Connection, client: TestClient, account: Account, read_photo: MakePhoto
) -> None:
    sender, other = account("observer"), account("observer")
    read_photo(
        {**GOOD, "invalid": None, "charachen": None}, uploader=principal_of(conn, "observer1")
    )
    assert next_task(client, sender) is None
    task = next_task(client, other)
    assert task is not None and task["field_id"] == "invalid"
    assert type_in(client, other, task, 5) == 204
    after = next_task(client, other)
    assert after is not None and after["field_id"] == "charachen"
    # The sender may not type its figures by the URL either.
    assert type_in(client, sender, task, 5) == 403


def test_a_field_is_handed_to_no_more_people_than_it_needs(
    client: TestClient, account: Account, read_photo: MakePhoto
) -> None:
    read_photo({**GOOD, "invalid": None})
    first, second, third = account("observer"), account("observer"), account("observer")
    assert next_task(client, first) is not None
    assert next_task(client, second) is not None
    assert next_task(client, third) is None  # two claims already on the one field


def test_a_second_entry_by_the_same_person_is_refused(
    client: TestClient, account: Account, read_photo: MakePhoto
) -> None:
    read_photo({**GOOD, "invalid": None})
    first = account("observer")
    task = next_task(client, first)
    assert task is not None
    assert type_in(client, first, task, 5) == 204
    again = client.post(str(task["submit_url"]), json={"value": 6}, headers=first)
    assert again.status_code == 409 and again.json()["detail"]["field"] == "field_id"


def test_a_disagreement_goes_to_a_third_observer_who_decides_it(
    conn: psycopg.Connection, client: TestClient, account: Account, read_photo: MakePhoto
) -> None:
    photo_id = read_photo({**GOOD, "invalid": None})
    people = [account("observer") for _ in range(4)]
    for who, value in zip(people[:2], (5, 8), strict=True):
        task = next_task(client, who)
        assert task is not None and type_in(client, who, task, value) == 204
    assert states(conn, photo_id)["invalid"] == FieldState.NEEDS_THIRD
    task = next_task(client, people[2])
    assert task is not None and type_in(client, people[2], task, 8) == 204
    assert states(conn, photo_id)["invalid"] == FieldState.AGREED
    assert next_task(client, people[3]) is None
    assert type_in(client, people[3], task, 8) == 409
    # The photo's 8 contradicts the file's 5: a conflict, never a silent winner.
    protocol = client.get(
        f"/v1/elections/{ELECTION}/stations/p1/protocol", headers=people[0]
    ).json()
    assert protocol["conflict"] and protocol["conflicting_fields"] == ["invalid"]


def test_three_different_readings_go_to_an_admin_whose_decision_is_audited(
    conn: psycopg.Connection, client: TestClient, account: Account, read_photo: MakePhoto
) -> None:
    photo_id = read_photo({**GOOD, "invalid": None})
    people = [account("observer") for _ in range(3)]
    for who, value in zip(people, (5, 6, None), strict=True):
        task = next_task(client, who)
        assert task is not None and type_in(client, who, task, value) == 204
    assert states(conn, photo_id)["invalid"] == FieldState.DISPUTED
    admin = account("admin")
    disputed = client.get(
        "/v1/transcriptions/disputed", params={"election_id": ELECTION}, headers=admin
    )
    assert disputed.status_code == 200
    (item,) = disputed.json()
    assert item["entries"] == [5, 6, None] and item["field_id"] == "invalid"
    assert client.get(item["image_url"], headers=admin).status_code == 200
    url = f"/v1/transcriptions/{photo_id}/invalid/decision"
    assert client.post(url, json={"value": 5}, headers=people[0]).status_code == 403
    assert client.post(url, json={"value": 5, "note": "clear 5"}, headers=admin).status_code == 204
    assert states(conn, photo_id)["invalid"] == FieldState.AGREED
    assert client.post(url, json={"value": 6}, headers=admin).status_code == 409
    (entry,) = audit.recent(conn, 1, f"protocol:{photo_id}:invalid")
    assert entry.action == "protocol.decide" and entry.actor == "admin1"
    assert entry.detail["value"] == 5 and entry.detail["entries"] == [5, 6, "illegible"]
    protocol = client.get(f"/v1/elections/{ELECTION}/stations/p1/protocol", headers=admin).json()
    invalid = next(f for f in protocol["figures"] if f["field_id"] == "invalid")
    assert invalid["status"] == "confirmed"
    assert [s["kind"] for s in invalid["sources"]] == ["file", "decision"]


def test_two_illegible_entries_leave_the_field_illegible(
    conn: psycopg.Connection, client: TestClient, account: Account, read_photo: MakePhoto
) -> None:
    photo_id = read_photo({**GOOD, "invalid": None}, precinct="p3")  # p3: no file row
    for who in (account("observer"), account("observer")):
        task = next_task(client, who)
        assert task is not None and type_in(client, who, task, None) == 204
    assert states(conn, photo_id)["invalid"] == FieldState.ILLEGIBLE
    protocol = client.get(
        f"/v1/elections/{ELECTION}/stations/p3/protocol", headers=account("admin")
    ).json()
    invalid = next(f for f in protocol["figures"] if f["field_id"] == "invalid")
    assert invalid["status"] == "illegible" and invalid["value"] is None


def test_two_observers_entering_at_once_lose_no_entry_and_decide_once(
    database: str, conn: psycopg.Connection, read_photo: MakePhoto, person: People
) -> None:
    """The first entry's transaction holds the field's row lock; the second waits
    for it, then sees the first entry and decides: agreed, once."""
    photo_id = read_photo({**GOOD, "invalid": None})
    first, second = person("observer"), person("observer")
    outcome: list[FieldState] = []
    with psycopg.connect(database) as one, psycopg.connect(database) as two:
        assert service.enter(one, photo_id, "invalid", first, 5) is FieldState.TRANSCRIBING

        def second_enters() -> None:
            outcome.append(service.enter(two, photo_id, "invalid", second, 5))
            two.commit()

        waiting = threading.Thread(target=second_enters)
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()  # held by the first transaction's lock
        one.commit()
        waiting.join(10)
    assert outcome == [FieldState.AGREED]
    assert repository.entries(conn, photo_id, "invalid") == [5, 5]
    assert states(conn, photo_id)["invalid"] == FieldState.AGREED


def test_a_person_entering_twice_at_once_is_refused_once(
    database: str, conn: psycopg.Connection, read_photo: MakePhoto, person: People
) -> None:
    photo_id = read_photo({**GOOD, "invalid": None})
    first = person("observer")
    errors: list[BaseException] = []

    def enter(value: int) -> None:
        with psycopg.connect(database) as own:
            try:
                service.enter(own, photo_id, "invalid", first, value)
                own.commit()
            except Conflict as exc:
                errors.append(exc)

    threads = [threading.Thread(target=enter, args=(v,)) for v in (5, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(errors) == 1
    assert len(repository.entries(conn, photo_id, "invalid")) == 1


def test_fields_are_in_the_templates_order(conn: psycopg.Connection, read_photo: MakePhoto) -> None:
    photo_id = read_photo(GOOD)
    assert list(states(conn, photo_id)) == FIELDS


def test_an_observer_is_not_told_the_station_of_a_photo_they_type(
    client: TestClient, account: Account, read_photo: MakePhoto
) -> None:
    photo_id = read_photo({**GOOD, "invalid": None})
    observer, admin = account("observer"), account("admin")
    task = next_task(client, observer)
    assert task is not None and task["photo_id"] == str(photo_id)
    url = f"/v1/elections/{ELECTION}/protocol-photos/{photo_id}"
    assert client.get(url, headers=observer).status_code == 404
    assert client.get(url, headers=admin).json()["precinct_id"] == "p1"
    protocol = client.get(f"/v1/elections/{ELECTION}/stations/p1/protocol", headers=observer)
    sources = [s for f in protocol.json()["figures"] for s in f["sources"]]
    assert {s["kind"] for s in sources} == {"file", "machine"}
    assert all(s["photo_id"] is None for s in sources)
    assert str(photo_id) not in protocol.text


def test_the_sweep_drops_expired_claims_and_keeps_entries_and_live_claims(
    conn: psycopg.Connection, read_photo: MakePhoto, person: People
) -> None:
    from api.protocols import jobs

    read_photo({**GOOD, "invalid": None, "registered": None})
    ids = [person("observer").user_id for _ in range(3)]
    assert None not in ids
    typist, late, waiting = (int(i or 0) for i in ids)
    typed = repository.next_field(conn, ELECTION, typist, 600)
    assert typed is not None
    assert repository.enter(conn, *typed, typist, 5)
    expired = repository.next_field(conn, ELECTION, late, -1)
    live = repository.next_field(conn, ELECTION, waiting, 600)
    assert expired is not None and live is not None
    conn.commit()

    assert jobs.drop_expired_claims() == 1
    rows = conn.execute(
        "SELECT account_id, entered_at IS NOT NULL FROM transcription_entries ORDER BY 1"
    ).fetchall()
    conn.commit()
    assert rows == sorted([(typist, True), (waiting, False)])
    assert jobs.drop_expired_claims() == 0
    # The late typist's entry is still taken: an entry needs no claim.
    assert repository.enter(conn, *expired, late, 7)
