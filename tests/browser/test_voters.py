"""A voter on a phone: confirms their number, finds their station by its address,
sends a photo of their marked ballot over a link that fails once, gets the receipt,
and later sees the ballot verified. In Russian; axe checks each page."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Page, Request, Route, expect

from api.voters.verifiers import dev_code
from api.worker import run_worker
from infra.settings import get_settings
from ocr.template import load_template

SEEDED_BALLOT = Path(__file__).resolve().parents[2] / "seeds" / "by-2020" / "ballot"
STATION = "01-010-0001"  # "г.Брест, ул.Гоголя, 7"


def _ballot_photo(marks: list[str], folder: Path) -> Path:
    """A phone photo of the seeded election's ballot, marked for ``marks``."""
    from seeds.photos import mark_ballot, phone_photo

    template = load_template(SEEDED_BALLOT).template
    reference = Image.open(SEEDED_BALLOT / template.reference_image).convert("RGB")
    rng = np.random.default_rng(5)
    path = folder / "ballot.jpg"
    path.write_bytes(phone_photo(mark_ballot(reference, template, marks, rng, style="cross"), rng))
    return path


def _read_queued_photos() -> None:
    """Run the worker until the queue is empty (in a thread of its own: Playwright's
    event loop runs in this one)."""
    reader = threading.Thread(target=lambda: asyncio.run(run_worker(wait=False)))
    reader.start()
    reader.join(timeout=120)
    assert not reader.is_alive()


def _submission_id(request: Request) -> str:
    body = request.post_data_buffer or b""
    found = re.search(rb'name="submission_id"\r\n\r\n([0-9a-f-]{36})', body)
    assert found is not None
    return found.group(1).decode()


def test_a_voter_sends_a_ballot_and_sees_it_verified(
    new_page: Callable[..., Page], accessible: Callable[[Page], None], tmp_path: Path
) -> None:
    page = new_page(locale="ru-RU")
    page.goto("/vote")
    expect(page.get_by_role("heading", name="Отправить бюллетень")).to_be_visible()
    accessible(page)

    # 1. The phone: a code is sent (the development verifier writes it to its file).
    page.get_by_label("Номер телефона с кодом страны").fill("+375 29 700-00-01")
    with page.expect_response(re.compile(r"/verification$")) as asked:
        page.get_by_role("button", name="Прислать код").click()
    challenge = asked.value.json()["challenge_id"]
    code = dev_code(get_settings().dev_codes_path, challenge)
    assert code is not None
    page.get_by_label("Код из сообщения").fill(code)
    page.get_by_role("button", name="Подтвердить").click()
    expect(page.get_by_text("Ваш телефон подтверждён.").first).to_be_visible()

    # 2. The station, by words of its address.
    page.get_by_label("Номер участка или адрес").fill("Брест Гоголя 7")
    page.get_by_label("Номер участка или адрес").press("Enter")
    station = page.get_by_label(re.compile(STATION))
    expect(station).to_be_visible()
    station.check()
    accessible(page)

    # 3. The choice by its label; 4. the photo.
    page.get_by_label("Sviatlana Tsikhanouskaya").check()
    page.get_by_label("Сфотографируйте или выберите фото").set_input_files(
        _ballot_photo(["tsikhanouskaya"], tmp_path)
    )

    # The first upload meets a server that cannot take it now: the page waits as
    # told and sends the same ballot (the same submission id) again.
    sent: list[str] = []

    def flaky(route: Route) -> None:
        sent.append(_submission_id(route.request))
        if len(sent) == 1:
            route.fulfill(
                status=503,
                headers={"Retry-After": "1", "Content-Type": "application/json"},
                body='{"detail": {"field": "database", "message": "retry"}}',
            )
        else:
            route.continue_()

    page.route("**/v1/submissions", flaky)
    page.get_by_role("button", name="Отправить", exact=True).click()
    expect(page.get_by_role("heading", name="Ваша квитанция")).to_be_visible()
    assert len(sent) == 2 and sent[0] == sent[1]
    receipt = page.locator("#receipt-id").inner_text()
    assert receipt == sent[0]
    expect(page.locator("#receipt-status")).to_have_text("Получен: ожидает распознавания")
    accessible(page)

    # The workers read the photo; the status page, with the phone's token, says so.
    _read_queued_photos()
    page.get_by_role("link", name="Проверить статус позже").click()
    expect(page.get_by_role("heading", name="Статус вашего бюллетеня")).to_be_visible()
    expect(page.locator("#status-text")).to_have_text("Проверен: ваш бюллетень учтён")
    accessible(page)


def test_another_browser_cannot_read_the_status(new_page: Callable[..., Page]) -> None:
    page = new_page(locale="ru-RU")
    page.goto("/vote/status/00000000-0000-4000-8000-000000000000?election=by-2020-president")
    expect(page.get_by_role("alert")).to_contain_text("нет подтверждённого телефона")
