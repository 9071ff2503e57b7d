"""The page layer (api/web.py): language choice, CSRF tokens, errors as pages,
vendored assets only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from api.deps import CSRF_COOKIE, PUBLIC, csrf_token_for
from api.errors import Forbidden, Unauthorized
from api.web import STATIC_DIR, Page, choose_language, is_page_request
from infra.pages import LANGUAGES
from infra.settings import get_settings


def test_the_switchers_choice_wins_then_the_remembered_one_then_the_browsers() -> None:
    assert choose_language("be", "ru", "en-US") == "be"
    assert choose_language(None, "ru", "be-BY,be;q=0.9") == "ru"
    assert choose_language(None, None, "be-BY,be;q=0.9,ru;q=0.8") == "be"
    assert choose_language("xx", "yy", None) == "en"


@given(st.text(max_size=20), st.text(max_size=20), st.text(max_size=60))
def test_the_chosen_language_is_always_one_the_platform_speaks(q: str, c: str, a: str) -> None:
    assert choose_language(q, c, a) in LANGUAGES


def test_csrf_tokens_differ_between_browsers_and_sessions(database: str) -> None:
    settings = get_settings()
    anonymous = csrf_token_for(settings, "nonce-a", None)
    assert anonymous == csrf_token_for(settings, "nonce-a", None)
    assert anonymous != csrf_token_for(settings, "nonce-b", None)
    assert anonymous != csrf_token_for(settings, "nonce-a", b"\x01" * 32)


@pytest.fixture
def pages(app: FastAPI, database: str) -> TestClient:
    def hello(page: Page) -> object:
        return page.render("error.html", error=Forbidden("thing", "<b>not</b> allowed"))

    def private(page: Page) -> object:
        raise Unauthorized("authorization", "log in")

    def form(page: Page) -> dict[str, str]:
        return {"ok": "yes"}

    app.add_api_route("/hello", hello, dependencies=[PUBLIC])
    app.add_api_route("/private", private, dependencies=[PUBLIC])
    app.add_api_route("/form", form, methods=["POST"], dependencies=[PUBLIC])
    return TestClient(app)


def test_a_page_speaks_the_browsers_language_and_remembers_a_switch(pages: TestClient) -> None:
    russian = pages.get("/hello", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert '<html lang="ru">' in russian.text
    assert "Что-то пошло не так" in russian.text
    switched = pages.get("/hello?lang=be")
    assert '<html lang="be">' in switched.text
    assert switched.cookies.get("golos_lang") == "be"
    # The cookie now outranks the browser's header.
    again = pages.get("/hello", headers={"Accept-Language": "en"})
    assert '<html lang="be">' in again.text


def test_data_on_a_page_is_escaped(pages: TestClient) -> None:
    text = pages.get("/hello").text
    assert "<b>not</b>" not in text
    assert "&lt;b&gt;not&lt;/b&gt;" in text


def test_a_page_that_needs_a_login_sends_the_browser_to_log_in_and_back(pages: TestClient) -> None:
    answer = pages.get("/private?x=1", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fprivate%3Fx%3D1"


def test_a_form_without_the_pages_csrf_token_is_refused(pages: TestClient) -> None:
    assert pages.post("/form", data={"a": "1"}).status_code == 403
    pages.get("/hello")  # sets this browser's CSRF cookie
    nonce = pages.cookies[CSRF_COOKIE]
    token = csrf_token_for(get_settings(), nonce, None)
    assert pages.post("/form", data={"a": "1", "csrf_token": "0" * 64}).status_code == 403
    assert pages.post("/form", data={"a": "1", "csrf_token": token}).status_code == 200
    assert pages.post("/form", headers={"X-CSRF-Token": token}).status_code == 200


def test_api_paths_answer_json_and_pages_html() -> None:
    class R:
        def __init__(self, path: str) -> None:
            self.url = type("U", (), {"path": path})()

    assert not is_page_request(R("/v1/submissions"))  # type: ignore[arg-type]
    assert not is_page_request(R("/healthz"))  # type: ignore[arg-type]
    assert not is_page_request(R("/static/golos.css"))  # type: ignore[arg-type]
    assert is_page_request(R("/review/flags"))  # type: ignore[arg-type]


def test_pages_load_nothing_from_outside_the_platform() -> None:
    api = Path(__file__).resolve().parents[2] / "api"
    templates = [*api.glob("templates/*.html"), *api.glob("*/templates/*/*.html")]
    assert templates
    outside = re.compile(r"""(src|href|action)\s*=\s*["']?(https?:)?//""", re.I)
    for template in templates:
        assert not outside.search(template.read_text()), template
    for asset in [*STATIC_DIR.rglob("*.css"), *STATIC_DIR.glob("*.js")]:
        text = asset.read_text()
        assert not re.search(r"@import|url\(\s*[\"']?(https?:)?//|https?://", text), asset


def test_pages_forbid_inline_scripts_framing_and_caching(pages: TestClient) -> None:
    headers = pages.get("/hello").headers
    assert "script-src 'self';" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
