"""Logging in and out, one's own API tokens and the admins' account pages, as a
browser uses them (forms with their CSRF token, cookies kept by the client)."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.accounts import service
from api.accounts.routes import home_of, safe_next
from api.accounts.schemas import Role
from api.audit import service as audit

PASSWORD = "correct horse battery staple"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def log_in(
    client: TestClient, username: str, password: str = PASSWORD, next: str = ""
) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login",
        data={"username": username, "password": password, "next": next, "csrf_token": token},
        follow_redirects=False,
    )


@pytest.fixture
def person(conn: psycopg.Connection) -> Callable[[str, Role], None]:
    def make(username: str, role: Role) -> None:
        service.add_user(conn, username, role, PASSWORD, actor="test")
        conn.commit()

    return make


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/review?region=Minsk", "/review?region=Minsk"),
        ("/", "/"),
        ("//evil.example/x", None),
        ("https://evil.example/", None),
        ("/\\evil.example", None),
        ("javascript:alert(1)", None),
        ("/a\r\nSet-Cookie: x=1", None),
        ("", None),
        (None, None),
    ],
)
def test_only_a_path_on_this_site_is_followed_after_login(
    target: str | None, safe: str | None
) -> None:
    assert safe_next(target) == safe


def test_each_role_starts_on_its_own_page() -> None:
    assert home_of(Role.OBSERVER) == "/review"
    assert home_of(Role.ANALYST) == "/analysts"
    assert home_of(Role.ADMIN) == "/admin/users"


def test_login_page_labels_its_fields_and_carries_a_csrf_token(client: TestClient) -> None:
    page = client.get("/login?next=/review", headers={"Accept-Language": "ru"})
    assert page.status_code == 200
    assert '<label for="username">Имя пользователя</label>' in page.text
    assert '<label for="password">Пароль</label>' in page.text
    assert 'name="next" value="/review"' in page.text
    assert csrf_of(page.text)
    assert "golos_csrf" in page.cookies


def test_login_sets_a_strict_session_cookie_and_goes_to_the_role_home(
    client: TestClient, person: Callable[[str, Role], None]
) -> None:
    person("watcher", Role.OBSERVER)
    answer = log_in(client, "watcher")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/review"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("golos_session=golos_s_")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie
    assert "Secure" not in cookie  # off by default (the demo runs on http://127.0.0.1)


def test_login_follows_next_on_this_site_only(
    client: TestClient, person: Callable[[str, Role], None]
) -> None:
    person("boss", Role.ADMIN)
    assert log_in(client, "boss", next="/admin/audit").headers["location"] == "/admin/audit"
    client.cookies.clear()
    outside = log_in(client, "boss", next="//evil.example/")
    assert outside.headers["location"] == "/admin/users"


def test_a_wrong_password_is_announced_with_401(
    client: TestClient, person: Callable[[str, Role], None]
) -> None:
    person("watcher", Role.OBSERVER)
    answer = log_in(client, "watcher", "not the password!")
    assert answer.status_code == 401
    assert 'role="alert"' in answer.text and "Wrong username or password." in answer.text
    assert 'value="watcher"' in answer.text  # the name is kept, the password is not
    assert "golos_session" not in answer.headers.get("set-cookie", "")


def test_logout_ends_the_session_on_the_server(
    client: TestClient, person: Callable[[str, Role], None]
) -> None:
    person("boss", Role.ADMIN)
    log_in(client, "boss")
    session = client.cookies["golos_session"]
    page = client.get("/admin/users")
    assert page.status_code == 200
    out = client.post("/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert 'golos_session=""' in out.headers["set-cookie"]
    # The old cookie, replayed, no longer opens anything.
    client.cookies.set("golos_session", session)
    again = client.get("/admin/users", follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"] == "/login?next=%2Fadmin%2Fusers"


def test_an_analyst_makes_a_token_shown_once_that_then_works(
    client: TestClient, person: Callable[[str, Role], None], conn: psycopg.Connection
) -> None:
    person("numbers", Role.ANALYST)
    log_in(client, "numbers")
    page = client.get("/account")
    assert page.status_code == 200 and "You have no tokens yet." in page.text
    made = client.post(
        "/account/tokens",
        data={"name": "nightly script", "days": "30", "csrf_token": csrf_of(page.text)},
    )
    assert made.status_code == 200
    token = re.search(r'value="(golos_at_[^"]+)"', made.text)
    assert token, "the new token is shown"
    listed = client.get("/account").text
    assert "nightly script" in listed and token.group(1) not in listed
    scripted = TestClient(client.app).get(
        "/account", headers={"Authorization": f"Bearer {token.group(1)}"}
    )
    assert scripted.status_code == 200 and "nightly script" in scripted.text
    assert audit.recent(conn, 1)[0].action == "token.add"


def test_a_token_form_with_mistakes_is_shown_again_with_them(
    client: TestClient, person: Callable[[str, Role], None]
) -> None:
    person("numbers", Role.ANALYST)
    log_in(client, "numbers")
    token = csrf_of(client.get("/account").text)
    answer = client.post("/account/tokens", data={"name": "x", "days": "900", "csrf_token": token})
    assert answer.status_code == 422
    assert 'role="alert"' in answer.text and "from 1 to 366 days" in answer.text


def test_an_admin_creates_disables_and_enables_an_account_all_audited(
    client: TestClient, person: Callable[[str, Role], None], conn: psycopg.Connection
) -> None:
    person("boss", Role.ADMIN)
    log_in(client, "boss")
    token = csrf_of(client.get("/admin/users").text)
    made = client.post(
        "/admin/users",
        data={"username": "Olga", "role": "observer", "password": PASSWORD, "csrf_token": token},
    )
    assert made.status_code == 200
    assert "Account olga created." in made.text
    assert service.list_users(conn)[1].username == "olga"

    client.post("/admin/users/olga/disable", data={"csrf_token": token})
    assert [u.disabled for u in service.list_users(conn) if u.username == "olga"] == [True]
    client.post("/admin/users/olga/enable", data={"csrf_token": token})
    assert [u.disabled for u in service.list_users(conn) if u.username == "olga"] == [False]

    newest = audit.recent(conn, 3)
    assert [(e.actor, e.action, e.subject) for e in reversed(newest)] == [
        ("boss", "user.add", "user:olga"),
        ("boss", "user.disable", "user:olga"),
        ("boss", "user.enable", "user:olga"),
    ]


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"username": "boss", "role": "observer"}, 409, "This username is taken."),
        ({"username": "a b", "role": "observer"}, 422, "A username has 2 to 40 characters"),
        ({"username": "olga", "role": "voter"}, 422, "Choose observer, analyst or administrator."),
        (
            {"username": "olga", "role": "observer", "password": "short"},
            422,
            "A password needs at least 12 characters.",
        ),
    ],
)
def test_an_account_form_with_a_mistake_is_shown_again_with_it(
    client: TestClient,
    person: Callable[[str, Role], None],
    form: dict[str, str],
    status: int,
    message: str,
) -> None:
    person("boss", Role.ADMIN)
    log_in(client, "boss")
    token = csrf_of(client.get("/admin/users").text)
    answer = client.post("/admin/users", data={"password": PASSWORD, **form, "csrf_token": token})
    assert answer.status_code == status
    assert 'role="alert"' in answer.text and message in answer.text


def test_an_admin_cannot_disable_their_own_account(
    client: TestClient, person: Callable[[str, Role], None]
) -> None:
    person("boss", Role.ADMIN)
    log_in(client, "boss")
    token = csrf_of(client.get("/admin/users").text)
    answer = client.post("/admin/users/boss/disable", data={"csrf_token": token})
    assert answer.status_code == 409
    assert "You cannot disable your own account." in answer.text


def test_the_audit_page_shows_the_newest_entries_and_the_chain_check(
    client: TestClient, person: Callable[[str, Role], None]
) -> None:
    person("boss", Role.ADMIN)
    log_in(client, "boss")
    page = client.get("/admin/audit?lang=be")
    assert page.status_code == 200
    assert "user:boss" in page.text
    assert "Ланцуг цэлы" in page.text
