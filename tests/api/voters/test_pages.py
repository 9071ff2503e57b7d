"""The voters' pages: rendered in the voter's language, with the election's ballot."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from infra.pages import catalogue_path


def _messages(html: str) -> dict[str, str]:
    found = re.search(r'<script type="application/json" id="voters-messages">(.*?)</script>', html)
    assert found is not None
    messages: dict[str, str] = json.loads(found.group(1))
    return messages


@pytest.mark.parametrize(
    ("lang", "heading", "send"),
    [
        ("ru", "Отправить бюллетень", "Прислать код"),
        ("be", "Даслаць бюлетэнь", "Даслаць код"),
        ("en", "Send your ballot", "Send me a code"),
    ],
)
def test_the_vote_page_speaks_the_voters_language(
    client: TestClient, lang: str, heading: str, send: str
) -> None:
    page = client.get("/vote", headers={"Accept-Language": lang})
    assert page.status_code == 200
    html = page.text
    assert f'<html lang="{lang}">' in html and heading in html and send in html
    assert 'data-election="by-2020-president"' in html
    # The ballot's options by their labels, one choice each (max_marks 1).
    assert html.count('type="radio" name="choice"') == 6 and "Tsikhanouskaya" in html
    assert 'accept="image/jpeg,image/png,image/heic,image/heif"' in html
    assert 'capture="environment"' in html
    for field in ("phone", "code", "station-q", "photo", "upload-progress"):
        assert f'<label for="{field}">' in html
    messages = _messages(html)
    assert messages["status_verified"] and "{percent}" in messages["uploading"]
    assert page.headers["Cache-Control"] == "no-store"


def test_the_status_page_is_a_shell_the_device_token_fills(client: TestClient) -> None:
    sid = uuid.uuid4()
    page = client.get(f"/vote/status/{sid}?election=by-2020-president&lang=ru")
    assert page.status_code == 200
    assert f'data-submission="{sid}"' in page.text and "Номер квитанции" in page.text
    assert client.get("/vote/status/not-a-uuid").status_code == 422
    assert client.get("/vote?election=nowhere").status_code == 404


def test_every_voters_message_is_translated() -> None:
    for lang in ("ru", "be"):
        with catalogue_path(lang, "voters").open("rb") as handle:
            catalogue = read_po(handle)
        untranslated = [m.id for m in catalogue if m.id and not m.string]
        assert not untranslated, (lang, untranslated)
