"""What routes receive through ``Depends``: typed ``Annotated`` aliases.

Tests replace any of these through its provider function, e.g.
``app.dependency_overrides[settings_dep] = lambda: changed``;
nothing is patched. Database work is synchronous (psycopg), so routes that use
``Conn`` are plain ``def`` routes, which FastAPI runs in its thread pool: no
blocking call on the event loop. An ``async`` route that must touch the database
(the upload, which streams its body) takes ``Pool`` and hands the work to
``run_in_threadpool``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from api.accounts.schemas import Principal, Role, Via
from api.errors import Forbidden, Unauthorized
from infra import db, queue
from infra.settings import Settings, get_settings
from infra.storage import PhotoStore, photo_store

# The providers below that do no I/O are ``async def``: FastAPI runs a plain
# ``def`` dependency in its thread pool, a hand-off that cost more CPU than the
# provider itself (four of them on every upload: measured with py-spy on
# bench/ingest.py, a tenth of the API's CPU was the thread pool's wake-ups).


async def settings_dep() -> Settings:
    return get_settings()


AppSettings = Annotated[Settings, Depends(settings_dep)]


# One store per settings object (the process's, or a test's replacement): making
# one resolves its folder on the disk, a few system calls on every request.
_stores: dict[int, tuple[Settings, PhotoStore]] = {}


async def store_dep(settings: AppSettings) -> PhotoStore:
    # The S3 backend's client is made once per process, by api.main's lifespan
    # before the first request.
    kept = _stores.get(id(settings))
    if kept is None or kept[0] is not settings:
        if len(_stores) > 8:  # tests make many settings; a server has one
            _stores.clear()
        kept = (settings, photo_store(settings))
        _stores[id(settings)] = kept
    return kept[1]


Store = Annotated[PhotoStore, Depends(store_dep)]


async def pool_dep() -> ConnectionPool:
    # The pool is opened by api.main's lifespan, before the first request.
    return db.get_pool()


Pool = Annotated[ConnectionPool, Depends(pool_dep)]


def conn_dep(pool: Pool) -> Iterator[psycopg.Connection]:
    """One pooled connection per request, its transaction committed when the route
    returns, before the answer is sent (scope="function"): a client that reads
    back what it just wrote finds it."""
    with pool.connection() as conn:
        yield conn


Conn = Annotated[psycopg.Connection, Depends(conn_dep, scope="function")]


async def queue_dep(request: Request) -> queue.App:
    job_queue: queue.App = request.app.state.queue
    return job_queue


JobQueue = Annotated[queue.App, Depends(queue_dep)]


# --- Who is calling ----------------------------------------------------------------
#
# A caller proves who they are in one of three ways (api.accounts.schemas.Via):
# an account's browser session (cookie), an account's API token or a voter's device
# token (both ``Authorization: Bearer``, told apart by their prefix). Every route
# declares who may call it with exactly one of ``require(role, ...)``,
# ``require_in_call(role, ...)`` or ``PUBLIC``
# (tests/api/test_authorisation.py walks every route and checks both the declaration
# and that everyone else is refused). The roles show in the OpenAPI schema as the
# security requirement's role list (OpenAPI 3.1 allows role names for non-OAuth
# schemes).

SESSION_COOKIE = "golos_session"
CSRF_COOKIE = "golos_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_bearer = HTTPBearer(
    auto_error=False, description="an account's API token or a voter's device token"
)
_session_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="a browser session (pages)"
)


def principal_dep(
    pool: Pool,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    session: Annotated[str | None, Security(_session_cookie)],
) -> Principal | None:
    """The caller, or None for an anonymous one. A bearer token that is present but
    unknown or expired is refused outright (401), never taken for anonymous.

    Looked up on a connection of its own, returned to the pool at once: the upload
    route (async, ``Pool``) must not hold a second connection for the whole
    request just to know who sent it."""
    if bearer is None and not session:
        return None
    with pool.connection() as conn:
        return lookup_principal(conn, bearer.credentials if bearer else None, session)


def lookup_principal(
    conn: psycopg.Connection, token: str | None, session: str | None
) -> Principal | None:
    """``_principal`` on ``conn``, which holds nothing uncommitted: its reads are one
    statement each, in autocommit (no BEGIN before them, no ROLLBACK after)."""
    conn.autocommit = True
    try:
        return _principal(conn, token, session)
    finally:
        try:
            conn.autocommit = False
        except psycopg.Error:
            conn.close()  # never lent again in autocommit: the pool drops it


def _principal(
    conn: psycopg.Connection, token: str | None, session: str | None
) -> Principal | None:
    from api.accounts import service as accounts
    from api.voters import service as voters

    if token is not None:
        found: Principal | None = None
        if token.startswith(accounts.API_TOKEN_PREFIX):
            found = accounts.token_principal(conn, token)
        elif token.startswith(voters.DEVICE_TOKEN_PREFIX):
            found = voters.device_principal(conn, token)
        if found is None:
            raise Unauthorized("authorization", "unknown, expired or revoked token")
        return found
    if session:
        return accounts.session_principal(conn, session)
    return None


MaybePrincipal = Annotated[Principal | None, Depends(principal_dep)]


def csrf_token_for(settings: Settings, nonce: str, session_sha256: bytes | None) -> str:
    """The token a page's forms carry: an HMAC of the browser's CSRF cookie and its
    session (OWASP's signed double-submit cookie), so a token is worthless with
    another browser's cookie or after logging in or out. Pure."""
    session = session_sha256.hex() if session_sha256 else ""
    message = f"{nonce}|{session}".encode()
    return hmac.new(settings.app_key(), message, hashlib.sha256).hexdigest()


async def check_csrf(request: Request, settings: Settings, principal: Principal | None) -> None:
    """Refuse (403) an unsafe request carried by the browser's cookies unless it has
    the CSRF token of this browser's pages (form field or header). Requests that
    prove who they are with a bearer token carry no ambient credential and pass."""
    if request.method not in _UNSAFE_METHODS:
        return
    if principal is not None and principal.via is not Via.SESSION:
        return
    if principal is None and request.headers.get("content-type", "").startswith("application/json"):
        # No session is being used, and another site's page cannot send a JSON body
        # without a CORS preflight, which the platform never grants: nothing to forge.
        # (Phone apps verify voters this way: POST /v1/elections/{id}/verification.)
        return
    nonce = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "")
    # Only a urlencoded form's field is read here: a multipart body (a photo) must
    # bring the header. Parsing it here would spool a large file to disk before its
    # metadata is stripped and consume the stream the upload route reads itself.
    if not sent and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        value = (await request.form()).get(CSRF_FIELD, "")
        sent = value if isinstance(value, str) else ""
    session = principal.session_sha256 if principal is not None else None
    expected = csrf_token_for(settings, nonce, session)
    if not nonce or not hmac.compare_digest(sent, expected):
        raise Forbidden(
            CSRF_FIELD, "the form is stale or did not come from this site; reload the page"
        )


def admit(principal: Principal | None, roles: tuple[Role, ...]) -> Principal:
    """``principal`` if it has one of ``roles``: 401 for an anonymous caller, 403 for
    another role. Pure."""
    if principal is None:
        raise Unauthorized("authorization", "log in (or verify your phone) first")
    if principal.role not in roles:
        raise Forbidden("authorization", f"this needs the role {' or '.join(map(str, roles))}")
    return principal


def require(*roles: Role) -> Any:
    """A dependency admitting only callers with one of ``roles`` (401 for an
    anonymous caller, 403 for another role; forms also need their CSRF token).
    Use as ``principal: Annotated[Principal, require(Role.OBSERVER, Role.ADMIN)]``."""
    allowed = frozenset(roles)
    scopes = [*map(str, roles)]

    # A default, not an Annotated[...] alias: with postponed annotations FastAPI
    # resolves annotation strings in the module's namespace, where ``scopes``
    # (a closure variable) does not exist.
    async def dependency(
        request: Request,
        settings: AppSettings,
        principal: Principal | None = Security(principal_dep, scopes=scopes),
    ) -> Principal:
        admitted = admit(principal, roles)
        await check_csrf(request, settings, admitted)
        return admitted

    dependency.golos_roles = allowed  # type: ignore[attr-defined]
    return Depends(dependency)


@dataclass(frozen=True)
class Credentials:
    """Who a caller of a ``require_in_call`` route is, or is still to be looked up:
    the route does that in the one call to the thread pool where it does its
    database work."""

    roles: tuple[Role, ...]  # who may call the route
    device_token: str | None = None  # authentic (tagged by this server), not yet looked up
    known: Principal | None = None  # any other credential, already looked up and admitted

    def principal(self, conn: psycopg.Connection) -> Principal:
        """The caller (``conn`` holds nothing uncommitted): the one already known, or
        the device token's voter, 401 if that token expired or was revoked."""
        if self.known is not None:
            return self.known
        return admit(lookup_principal(conn, self.device_token, None), self.roles)


def _admit_in_call(principal: Principal | None, roles: tuple[Role, ...]) -> Principal:
    """``admit``, and a browser session refused like another role (403): these routes
    check no CSRF token, so no role that logs in with a session may call them. Pure."""
    admitted = admit(principal, roles)
    if admitted.via is Via.SESSION:
        raise Forbidden("authorization", "send the device token, not a browser session")
    return admitted


def require_in_call(*roles: Role) -> Any:
    """``require(*roles)`` for an async route that reads a large body and then does its
    database work in one call to the thread pool (the upload).

    A voter's device token is only checked for its tag here (pure: a forged one is
    refused, 401, before the body is read) and looked up by the route, in that one
    call (``Credentials.principal``); a token that expired or was revoked is refused
    there, after the body. Any other credential (an account's token, a browser
    session) is looked up here, before the body, as ``require`` does; so is a missing
    one. A stranger or another role is thus told 401 or 403 whatever body they sent,
    and nobody but a voter this server verified can make it read one.

    Why: ``require``'s lookup is a call to the thread pool of its own. On the upload,
    the busiest route, that hand-off was 7% of the API's CPU (py-spy on
    bench/ingest.py; the calls to the thread pool together, 14%)."""
    from api.voters import service as voters

    scopes = [*map(str, roles)]

    async def dependency(  # the schemes' scopes as ``require``'s: defaults, see there
        pool: Pool,
        settings: AppSettings,
        bearer: HTTPAuthorizationCredentials | None = Security(_bearer, scopes=scopes),
        session: str | None = Security(_session_cookie, scopes=scopes),
    ) -> Credentials:
        token = bearer.credentials if bearer else None
        if (
            token is not None
            and Role.VOTER in roles
            and token.startswith(voters.DEVICE_TOKEN_PREFIX)
        ):
            if not voters.device_token_authentic(settings.app_key(), token):
                raise Unauthorized("authorization", "unknown, expired or revoked token")
            return Credentials(roles, device_token=token)
        if token is None and not session:
            raise Unauthorized("authorization", "log in (or verify your phone) first")
        caller = await run_in_threadpool(principal_dep, pool, bearer, session)
        return Credentials(roles, known=_admit_in_call(caller, roles))

    dependency.golos_roles = frozenset(roles)  # type: ignore[attr-defined]
    return Depends(dependency)


async def _public(
    request: Request, settings: AppSettings, principal: MaybePrincipal
) -> Principal | None:
    """Anyone may call; a form posted with the browser's cookies still needs its CSRF
    token (the login form, the language switch)."""
    await check_csrf(request, settings, principal)
    return principal


_public.golos_roles = None  # type: ignore[attr-defined]
PUBLIC: Any = Depends(_public)
# The caller of a public route, if they are logged in: ``caller: Public``.
Public = Annotated[Principal | None, PUBLIC]
