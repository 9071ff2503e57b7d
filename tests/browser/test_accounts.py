"""Accounts in the browser: an admin makes an observer's account, the observer logs
in; a wrong password is announced; the login and account pages pass axe in each
language."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from api.accounts import service
from api.accounts.schemas import Role

PASSWORD = "correct horse battery staple"
ADMIN = "root"


@pytest.fixture(scope="module")
def admin(site: Any) -> str:
    with site.connect() as conn:
        service.add_user(conn, ADMIN, Role.ADMIN, PASSWORD, actor="test")
        conn.commit()
    return ADMIN


def test_an_admin_makes_an_observer_who_then_logs_in(
    log_in: Callable[..., None], new_page: Callable[..., Page], admin: str
) -> None:
    page = new_page()
    log_in(page, admin, PASSWORD)
    assert page.url.endswith("/admin/users")

    page.get_by_label("Username").fill("olga")
    page.get_by_label("Role").select_option("observer")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_have_text("Account olga created.")
    expect(page.get_by_role("row", name="olga")).to_contain_text("Observer")

    with page.expect_navigation():
        page.get_by_role("button", name="Log out").click()
    page.goto("/admin/users")
    assert "/login?next=" in page.url  # the session ended

    log_in(page, "olga", PASSWORD)
    assert page.url.endswith("/review")
    page.goto("/login")
    expect(page.get_by_text("You are logged in as olga.")).to_be_visible()


def test_a_wrong_password_is_announced(
    log_in: Callable[..., None], new_page: Callable[..., Page], admin: str
) -> None:
    page = new_page(locale="ru-RU")
    log_in(page, admin, "not the password at all")
    alert = page.get_by_role("alert")
    expect(alert).to_have_text("Неверное имя пользователя или пароль.")
    expect(page.locator("input[name=username]")).to_have_value(admin)
    expect(page.locator("input[name=password]")).to_have_attribute("aria-invalid", "true")


def test_a_page_for_admins_sends_a_visitor_to_log_in_and_back(
    new_page: Callable[..., Page], admin: str
) -> None:
    page = new_page()
    page.goto("/admin/audit")
    assert "/login?next=" in page.url
    page.locator("input[name=username]").fill(admin)
    page.locator("input[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/admin/audit")
    expect(page.get_by_role("status")).to_contain_text("The chain is intact")


@pytest.mark.parametrize("locale", ["ru-RU", "be-BY", "en-US"])
def test_login_and_account_pages_pass_axe(
    log_in: Callable[..., None],
    new_page: Callable[..., Page],
    accessible: Callable[[Page], None],
    admin: str,
    locale: str,
) -> None:
    page = new_page(locale=locale)
    page.goto("/login")
    assert page.locator("html").get_attribute("lang") == locale[:2]
    accessible(page)
    log_in(page, admin, PASSWORD)
    for path in ("/admin/users", "/admin/audit", "/account"):
        page.goto(path)
        accessible(page)
