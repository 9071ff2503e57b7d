"""Who may call what, proved route by route.

Every route of the application declares its callers with exactly one of
``require(...)`` or ``PUBLIC``; for every route with roles, an anonymous caller is
refused with 401 (a page sends the browser to the login page instead) and a caller
of every other role with 403. Then the rest of the locks: CSRF on forms carried by
the browser's cookies, the login rate limit, sessions that expire, accounts that
are disabled, an observer trying the admins' actions, and the OpenAPI schema
listing the roles of each route.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.accounts import service
from api.accounts.openapi import ROLES_KEY, RouteInfo, api_routes, describe_security, route_access
from api.accounts.schemas import Role
from api.main import create_app

PASSWORD = "correct horse battery staple"
ROUTES = api_routes(create_app())
WITH_ROLES = [r for r in ROUTES if route_access(r.dependant) not in ([], [None])]
ACCOUNT_ROLES = (Role.OBSERVER, Role.ANALYST, Role.ADMIN)


def label(route: RouteInfo) -> str:
    return f"{'|'.join(sorted(route.methods))} {route.path}"


def roles_of(route: RouteInfo) -> frozenset[Role]:
    (roles,) = route_access(route.dependant)
    assert roles is not None
    return roles


def dummy_path(route: RouteInfo) -> str:
    """The route's path with each parameter given a value of its type."""
    values: dict[str, Any] = {}
    for param in route.dependant.path_params:
        kind = param.field_info.annotation
        if kind is int:
            values[param.name] = 1
        elif kind is uuid.UUID:
            values[param.name] = uuid.UUID(int=1)
        elif param.name == "election_id":
            values[param.name] = "by-2020-president"
        else:
            values[param.name] = "p1"
    return route.path.format(**values)


def call(client: TestClient, route: RouteInfo, headers: dict[str, str]) -> httpx.Response:
    method = sorted(route.methods)[0]
    return client.request(method, dummy_path(route), headers=headers, follow_redirects=False)


def refused_as_anonymous(answer: httpx.Response) -> bool:
    """401 for the API; a page sends the browser to log in and come back."""
    if answer.status_code == 401:
        return True
    return answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def log_in(client: TestClient, username: str, password: str = PASSWORD) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )


@pytest.fixture
def callers(
    account: Callable[..., dict[str, str]], device_token: Callable[..., str]
) -> dict[Role, dict[str, str]]:
    """One caller of each role, by API token (accounts) or device token (a voter)."""
    made = {role: account(str(role)) for role in ACCOUNT_ROLES}
    made[Role.VOTER] = {"Authorization": f"Bearer {device_token('+375291234567')}"}
    return made


@pytest.mark.parametrize("route", ROUTES, ids=label)
def test_every_route_declares_who_may_call_it(route: RouteInfo) -> None:
    declared = route_access(route.dependant)
    assert len(declared) == 1, (
        f"{label(route)} must declare exactly one of require(...) or PUBLIC, has {declared}"
    )


@pytest.mark.parametrize("route", WITH_ROLES, ids=label)
def test_anonymous_callers_and_other_roles_are_refused(
    client: TestClient, callers: dict[Role, dict[str, str]], route: RouteInfo
) -> None:
    answer = call(client, route, {})
    assert refused_as_anonymous(answer), (answer.status_code, answer.text[:200])
    allowed = roles_of(route)
    for role, headers in callers.items():
        if role in allowed:
            continue
        answer = call(client, route, headers)
        assert answer.status_code == 403, (role, answer.status_code, answer.text[:200])


def test_a_form_posted_with_the_session_cookie_needs_its_csrf_token(
    client: TestClient, account: Callable[..., dict[str, str]]
) -> None:
    account("admin")
    assert log_in(client, "admin1").status_code == 303
    form = {"username": "olga", "role": "observer", "password": PASSWORD}
    without = client.post("/admin/users", data=form, follow_redirects=False)
    assert without.status_code == 403
    forged = client.post(
        "/admin/users", data={**form, "csrf_token": "0" * 64}, follow_redirects=False
    )
    assert forged.status_code == 403
    token = csrf_of(client.get("/admin/users").text)
    made = client.post("/admin/users", data={**form, "csrf_token": token}, follow_redirects=False)
    assert made.status_code == 303
    by_header = client.post(
        "/admin/users/olga/disable", headers={"X-CSRF-Token": token}, follow_redirects=False
    )
    assert by_header.status_code == 303


def test_the_login_form_itself_needs_its_csrf_token(
    client: TestClient, account: Callable[..., dict[str, str]]
) -> None:
    account("observer")
    client.get("/login")
    answer = client.post(
        "/login", data={"username": "observer1", "password": PASSWORD}, follow_redirects=False
    )
    assert answer.status_code == 403


def test_a_csrf_token_from_before_logging_in_is_worthless_after(
    client: TestClient, account: Callable[..., dict[str, str]]
) -> None:
    account("admin")
    anonymous_token = csrf_of(client.get("/login").text)
    log_in(client, "admin1")
    answer = client.post(
        "/admin/users",
        data={"username": "olga", "role": "observer", "password": PASSWORD},
        headers={"X-CSRF-Token": anonymous_token},
        follow_redirects=False,
    )
    assert answer.status_code == 403


def test_the_sixth_wrong_login_within_the_window_is_refused_with_retry_after(
    client: TestClient, account: Callable[..., dict[str, str]]
) -> None:
    account("observer")
    for _ in range(5):
        assert log_in(client, "observer1", "wrong password!!").status_code == 401
    sixth = log_in(client, "observer1", "wrong password!!")
    assert sixth.status_code == 429
    assert sixth.headers["retry-after"] == "900"
    assert 'role="alert"' in sixth.text
    # Even the right password waits now.
    assert log_in(client, "observer1").status_code == 429


def test_wrong_logins_from_one_network_do_not_lock_the_owner_out_elsewhere(
    conn: psycopg.Connection, account: Callable[..., dict[str, str]]
) -> None:
    from api.accounts import service as accounts
    from api.errors import TooManyRequests, Unauthorized

    account("observer")
    secret = b"k" * 32
    insider = accounts.network_key(secret, "10.1.2.3")
    assert insider == accounts.network_key(secret, "10.1.2.200")  # one /24, one network
    for _ in range(accounts.MAX_LOGIN_FAILURES):
        with pytest.raises(Unauthorized):
            accounts.login(conn, "observer1", "wrong!", session_hours=1, network=insider)
    with pytest.raises(TooManyRequests):
        accounts.login(conn, "observer1", PASSWORD, session_hours=1, network=insider)
    conn.rollback()
    owner = accounts.network_key(secret, "192.0.2.7")
    assert accounts.login(conn, "observer1", PASSWORD, session_hours=1, network=owner)


def test_an_unknown_username_costs_the_same_password_check_as_a_known_one(
    conn: psycopg.Connection,
    account: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from api.accounts import service as accounts
    from api.errors import Unauthorized

    account("observer")
    checks: list[str] = []
    real = accounts._hasher

    class Counting:
        def verify(self, stored: str, password: str) -> bool:
            checks.append(stored)
            return real.verify(stored, password)

        def check_needs_rehash(self, stored: str) -> bool:
            return real.check_needs_rehash(stored)

    monkeypatch.setattr(accounts, "_hasher", Counting())
    for name in ("observer1", "nobody-here"):
        with pytest.raises(Unauthorized):
            accounts.login(conn, name, "wrong password", session_hours=1)
        conn.rollback()
    assert len(checks) == 2


def test_an_expired_session_opens_nothing(
    client: TestClient, account: Callable[..., dict[str, str]], conn: psycopg.Connection
) -> None:
    account("admin")
    log_in(client, "admin1")
    assert client.get("/admin/users").status_code == 200
    conn.execute("UPDATE sessions SET expires_at = now() - interval '1 second'")
    conn.commit()
    answer = client.get("/admin/users", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_a_disabled_accounts_session_and_tokens_stop_working(
    client: TestClient, account: Callable[..., dict[str, str]], conn: psycopg.Connection
) -> None:
    token = account("analyst")
    log_in(client, "analyst1")
    scripted = TestClient(client.app)
    assert client.get("/account").status_code == 200
    assert scripted.get("/account", headers=token).status_code == 200

    service.set_disabled(conn, "analyst1", True, actor="test")
    conn.commit()
    for answer in (
        client.get("/account", follow_redirects=False),
        scripted.get("/account", headers=token, follow_redirects=False),
    ):
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    assert log_in(client, "analyst1").status_code == 401

    # Enabled again, the person logs in afresh; the old token stays revoked.
    service.set_disabled(conn, "analyst1", False, actor="test")
    conn.commit()
    assert log_in(client, "analyst1").status_code == 303
    assert scripted.get("/account", headers=token, follow_redirects=False).status_code == 303


ADMIN_ROUTES = [r for r in ROUTES if r.path.startswith("/admin")]


def test_there_are_admin_actions_to_try() -> None:
    assert {label(r) for r in ADMIN_ROUTES} >= {
        "GET /admin/users",
        "POST /admin/users",
        "POST /admin/users/{username}/disable",
        "POST /admin/users/{username}/enable",
        "GET /admin/audit",
    }


def test_an_observer_trying_every_admin_action_is_refused(
    client: TestClient, account: Callable[..., dict[str, str]], conn: psycopg.Connection
) -> None:
    token = account("observer")
    account("admin")
    log_in(client, "observer1")
    csrf = csrf_of(client.get("/login").text)
    for route in ADMIN_ROUTES:
        by_token = call(client, route, token)
        assert by_token.status_code == 403, label(route)
        # In the browser too, with a valid CSRF token: the role is what refuses.
        by_session = call(client, route, {"X-CSRF-Token": csrf})
        assert by_session.status_code == 403, label(route)
    assert [u.disabled for u in service.list_users(conn)] == [False, False]


def test_the_openapi_schema_lists_the_roles_of_each_route(app: FastAPI, client: TestClient) -> None:
    served = client.get("/openapi.json")
    assert served.status_code == 200
    schema = describe_security(served.json(), app)
    schemes = set(schema["components"]["securitySchemes"])
    for route in ROUTES:
        if not route.include_in_schema:
            continue
        (roles,) = route_access(route.dependant)
        for method in route.methods:
            operation = schema["paths"][route.path][method.lower()]
            if roles is None:
                assert operation["security"][0] == {}, label(route)
                assert operation[ROLES_KEY] == []
            else:
                names = sorted(map(str, roles))
                assert operation[ROLES_KEY] == names, label(route)
                listed = {
                    scheme: scopes
                    for item in operation["security"]
                    for scheme, scopes in item.items()
                }
                assert listed == dict.fromkeys(schemes, names), label(route)


def test_the_admin_pages_say_admin_in_the_schema(app: FastAPI) -> None:
    schema = describe_security(app.openapi(), app)
    assert schema["paths"]["/admin/users"]["post"][ROLES_KEY] == ["admin"]
    assert schema["paths"]["/account"]["get"][ROLES_KEY] == ["admin", "analyst"]
    assert schema["paths"]["/login"]["post"]["security"][0] == {}
