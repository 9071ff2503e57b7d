"""HTTP routes of the accounts area: logging in and out, one's own API tokens, and
the admins' pages (accounts, the audit trail).

Forms post back to the page they came from; a form with a mistake is shown again
with the mistake announced (``role="alert"``) and the status of the error, so that
scripts and tests see the same answer as people. Every change is made by
``api.accounts.service``, which audits it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.accounts import service
from api.accounts.schemas import ACCOUNT_ROLES, Principal, Role
from api.audit import service as audit
from api.deps import PUBLIC, SESSION_COOKIE, AppSettings, Conn, Public, require
from api.errors import Conflict, GolosError, Invalid
from api.web import Page, PageContext

router = APIRouter(tags=["accounts"])

Admin = Annotated[Principal, require(Role.ADMIN)]
TokenHolder = Annotated[Principal, require(Role.ANALYST, Role.ADMIN)]

# Where each role starts after logging in.
HOME = {Role.OBSERVER: "/review", Role.ANALYST: "/analysts", Role.ADMIN: "/admin/users"}
AUDIT_LIMIT = 100


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site (so that a login link cannot send the
    browser elsewhere: no scheme, no ``//host``, no backslash), else None. Pure."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return None
    return target


def home_of(role: Role) -> str:
    """The page a person of ``role`` starts from. Pure."""
    return HOME.get(role, "/")


def when(at: datetime) -> str:
    """A time as people read it in a table (UTC, to the minute). Pure."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def gettext(message: str, page: PageContext, **values: object) -> str:
    """``message`` in the page's language (``page.gettext``, spelt so that the
    message is the first argument of a ``gettext`` call for extraction)."""
    return page.gettext(message, **values)


def _message(page: PageContext, error: GolosError) -> str:
    """A service's refusal in the page's language."""
    messages = {
        ("username", 422): gettext(
            "A username has 2 to 40 characters: latin letters, digits, '.', '_' or '-',"
            " starting with a letter or a digit.",
            page,
        ),
        ("username", 409): gettext("This username is taken.", page),
        ("username", 404): gettext("There is no such account.", page),
        ("username", 429): gettext(
            "Too many failed attempts. Wait a quarter of an hour and try again.", page
        ),
        ("password", 401): gettext("Wrong username or password.", page),
        ("password", 422): gettext("A password needs at least 12 characters.", page),
        ("role", 422): gettext("Choose observer, analyst or administrator.", page),
        ("name", 422): gettext("Give the token a name of 1 to 80 characters.", page),
        ("days", 422): gettext("A token lasts from 1 to 366 days.", page),
        ("self", 409): gettext("You cannot disable your own account.", page),
    }
    return messages.get((error.field, error.status_code), error.message)


def _answer_error(response: HTMLResponse, error: GolosError) -> HTMLResponse:
    for name, value in error.headers().items():
        response.headers[name] = value
    return response


# --- Logging in and out -------------------------------------------------------------


@router.get("/login", dependencies=[PUBLIC], response_class=HTMLResponse)
def login_page(page: Page, next: str = "") -> HTMLResponse:
    """The login form (observers, analysts, admins)."""
    return page.render(
        "accounts/login.html",
        title=gettext("Log in", page),
        next=safe_next(next) or "",
        username="",
        error=None,
    )


@router.post("/login", dependencies=[PUBLIC], response_class=HTMLResponse)
def login(
    request: Request,
    page: Page,
    conn: Conn,
    settings: AppSettings,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Check the password, open a session (an HttpOnly cookie) and go on to ``next``
    or the role's start page; 401 for a wrong name or password, 429 (with
    Retry-After) after too many failures."""
    try:
        token = service.login(
            conn,
            username,
            password,
            session_hours=settings.session_hours,
            network=service.network_key(
                settings.app_key(), request.client.host if request.client else None
            ),
        )
    except GolosError as error:
        response = page.render(
            "accounts/login.html",
            status_code=error.status_code,
            title=gettext("Log in", page),
            next=safe_next(next) or "",
            username=username,
            error=_message(page, error),
        )
        return _answer_error(response, error)
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:  # logging in afresh ends this browser's earlier session
        service.logout(conn, previous)
    principal = service.session_principal(conn, token)
    assert principal is not None
    target = safe_next(next) or home_of(principal.role)
    redirect = RedirectResponse(target, status_code=303)
    redirect.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=page.secure,
    )
    page.set_cookies(redirect)
    return redirect


@router.post("/logout", response_class=RedirectResponse)
def logout(request: Request, conn: Conn, settings: AppSettings, caller: Public) -> Response:
    """End this browser's session (on the server, not only the cookie)."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        service.logout(conn, token)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies or request.url.scheme == "https",
    )
    return response


# --- One's own account: API tokens ---------------------------------------------------


def _account_page(
    page: PageContext,
    conn: Conn,
    principal: Principal,
    *,
    status_code: int = 200,
    new_token: str | None = None,
    error: str | None = None,
    name: str = "",
    days: str = "90",
) -> HTMLResponse:
    tokens = [
        {
            "name": t.name,
            "created": when(t.created_at),
            "expires": when(t.expires_at),
            "revoked": t.revoked,
            "expired": t.expires_at <= datetime.now(UTC),
        }
        for t in service.tokens_of(conn, principal)
    ]
    return page.render(
        "accounts/account.html",
        status_code=status_code,
        title=gettext("Your account", page),
        tokens=tokens,
        new_token=new_token,
        error=error,
        name=name,
        days=days,
        max_days=service.MAX_TOKEN_DAYS,
    )


@router.get("/account", response_class=HTMLResponse)
def account_page(page: Page, conn: Conn, principal: TokenHolder) -> HTMLResponse:
    """Your API tokens (for scripts) and a form to make one."""
    return _account_page(page, conn, principal)


@router.post("/account/tokens", response_class=HTMLResponse)
def create_token(
    page: Page,
    conn: Conn,
    principal: TokenHolder,
    name: Annotated[str, Form()] = "",
    days: Annotated[str, Form()] = "90",
) -> HTMLResponse:
    """Make an API token for your own account; its value is shown on this answer
    only (the platform keeps its hash)."""
    try:
        try:
            lifetime = int(days)
        except ValueError:
            raise Invalid("days", "a whole number of days") from None
        token, _ = service.create_token(conn, principal, name, lifetime)
    except GolosError as error:
        return _account_page(
            page,
            conn,
            principal,
            status_code=error.status_code,
            error=_message(page, error),
            name=name,
            days=days,
        )
    return _account_page(page, conn, principal, new_token=token)


# --- Admins: accounts -------------------------------------------------------------------


def _users_page(
    page: PageContext,
    conn: Conn,
    principal: Principal,
    *,
    status_code: int = 200,
    error: str | None = None,
    notice: str | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    users = [
        {
            "username": u.username,
            "role": str(u.role),
            "disabled": u.disabled,
            "created": when(u.created_at),
            "me": u.username == principal.username,
        }
        for u in service.list_users(conn)
    ]
    return page.render(
        "accounts/users.html",
        status_code=status_code,
        title=gettext("Accounts", page),
        users=users,
        roles=[str(r) for r in ACCOUNT_ROLES],
        error=error,
        notice=notice,
        form=form or {"username": "", "role": str(Role.OBSERVER)},
    )


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(page: Page, conn: Conn, principal: Admin, added: str = "") -> HTMLResponse:
    """Every account, a form to make one, and a button to disable or enable each."""
    notice = None
    if added and any(u.username == added for u in service.list_users(conn)):
        notice = gettext("Account %(name)s created.", page, name=added)
    return _users_page(page, conn, principal, notice=notice)


@router.post("/admin/users", response_class=HTMLResponse)
def add_user(
    page: Page,
    conn: Conn,
    principal: Admin,
    username: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    """Make an observer, analyst or admin account (audited)."""
    try:
        if role not in {str(r) for r in ACCOUNT_ROLES}:
            raise Invalid("role", "observer, analyst or admin")
        user = service.add_user(conn, username, Role(role), password, actor=principal.actor)
    except GolosError as error:
        return _users_page(
            page,
            conn,
            principal,
            status_code=error.status_code,
            error=_message(page, error),
            form={"username": username, "role": role},
        )
    return RedirectResponse(f"/admin/users?added={user.username}", status_code=303)


def _set_disabled(
    page: PageContext, conn: Conn, principal: Principal, username: str, disabled: bool
) -> Response:
    try:
        if disabled and service.normalise_username(username) == principal.username:
            raise Conflict("self", "you cannot disable your own account")
        service.set_disabled(conn, username, disabled, actor=principal.actor)
    except GolosError as error:
        return _users_page(
            page, conn, principal, status_code=error.status_code, error=_message(page, error)
        )
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{username}/disable", response_class=HTMLResponse)
def disable_user(page: Page, conn: Conn, principal: Admin, username: str) -> Response:
    """Disable an account: its sessions end and its tokens stop working (audited)."""
    return _set_disabled(page, conn, principal, username, True)


@router.post("/admin/users/{username}/enable", response_class=HTMLResponse)
def enable_user(page: Page, conn: Conn, principal: Admin, username: str) -> Response:
    """Enable a disabled account again (audited)."""
    return _set_disabled(page, conn, principal, username, False)


# --- Admins: the audit trail ----------------------------------------------------------


def _problem(page: PageContext, check: audit.ChainCheck) -> str:
    """What is wrong with the first broken link, in the page's language."""
    if check.problem is None:
        return ""
    if check.problem.endswith("is missing"):
        return gettext("entry %(seq)s is missing", page, seq=check.checked + 1)
    known = {
        "does not link to the entry before it": gettext(
            "it does not link to the entry before it", page
        ),
        "its content was changed after it was written": gettext(
            "its content was changed after it was written", page
        ),
    }
    return known.get(check.problem, check.problem)


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(
    page: Page,
    conn: Conn,
    principal: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = AUDIT_LIMIT,
) -> HTMLResponse:
    """The newest entries of the audit trail and whether its chain is intact."""
    check = audit.verify(conn)
    entries = [
        {
            "seq": e.seq,
            "at": when(e.at),
            "actor": e.actor,
            "action": e.action,
            "subject": e.subject,
            "detail": json.dumps(e.detail, ensure_ascii=False, sort_keys=True) if e.detail else "",
        }
        for e in audit.recent(conn, limit)
    ]
    return page.render(
        "accounts/audit.html",
        title=gettext("Audit trail", page),
        check=check,
        problem=_problem(page, check),
        entries=entries,
        limit=limit,
    )
