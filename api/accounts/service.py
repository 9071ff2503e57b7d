"""Accounts: passwords, logins, sessions and API tokens.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second
recommended set: 64 MiB, 3 passes); sessions and tokens are 256-bit random values
of which only the SHA-256 is stored, so a copy of the database logs nobody in.
Every account change is appended to the audit log in the same transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
from datetime import datetime

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from api.accounts import repository
from api.accounts.schemas import ACCOUNT_ROLES, Principal, Role, TokenInfo, User, Via
from api.audit import service as audit
from api.errors import Conflict, Invalid, NotFound, TooManyRequests, Unauthorized
from infra import ratelimit

_hasher = PasswordHasher()

# Failed logins allowed within the window before the next is refused (ASVS 6.3.1:
# brute force is limited per account). Five wrong tries in a quarter of an hour for
# one username from one network is beyond a person mistyping and far below a
# guessing script. Counting per network as well keeps one planted insider from
# locking every observer out on election night by mistyping their names on
# purpose; the per-username cap over all networks still stops guessing spread
# over many networks, and the per-network cap one network trying many names.
MAX_LOGIN_FAILURES = 5
MAX_LOGIN_FAILURES_PER_USERNAME = 50
MAX_LOGIN_FAILURES_PER_NETWORK = 100
LOGIN_WINDOW_SECONDS = 15 * 60
MIN_PASSWORD_LENGTH = 12
# What a username may be (the users table checks the same): lower-case letters,
# digits and . _ - ; 2 to 40 characters, starting with a letter or digit.
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,39}$")

# An API token lives at most a year (a leaked one stops working by itself).
MAX_TOKEN_DAYS = 366
MAX_TOKEN_NAME = 80

SESSION_PREFIX = "golos_s_"
API_TOKEN_PREFIX = "golos_at_"


def token_sha256(token: str) -> bytes:
    """What the database keeps of a session or token. Pure."""
    return hashlib.sha256(token.encode()).digest()


def new_secret(prefix: str) -> str:
    """A fresh 256-bit random token with a prefix that says what it is (so that a
    leaked one is recognised by secret scanners)."""
    return prefix + secrets.token_urlsafe(32)


def check_password_rules(password: str) -> None:
    """Refuse a password too short to resist guessing (ASVS 6.2.1). Pure."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 256:
        raise Invalid("password", "must be at most 256 characters")


def normalise_username(username: str) -> str:
    """A username as stored (trimmed, lower case), or Invalid if it cannot be one. Pure."""
    name = username.strip().lower()
    if not USERNAME_PATTERN.fullmatch(name):
        raise Invalid(
            "username",
            "2 to 40 characters: latin letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return name


def add_user(
    conn: psycopg.Connection, username: str, role: Role, password: str, *, actor: str
) -> User:
    """Create an observer, analyst or admin account (audited)."""
    username = normalise_username(username)
    if role not in ACCOUNT_ROLES:
        raise Invalid("role", f"must be one of {', '.join(ACCOUNT_ROLES)}; voters have no account")
    check_password_rules(password)
    with conn.transaction():
        user = repository.insert_user(conn, username, role, _hasher.hash(password))
        if user is None:
            raise Conflict("username", f"{username!r} is taken")
        audit.append(conn, actor, "user.add", f"user:{username}", {"role": str(role)})
    return user


def set_disabled(conn: psycopg.Connection, username: str, disabled: bool, *, actor: str) -> User:
    """Disable (ending its sessions and tokens) or re-enable an account (audited)."""
    username = username.strip().lower()
    with conn.transaction():
        user = repository.user_by_name(conn, username)
        if user is None:
            raise NotFound("username", f"no account {username!r}")
        repository.set_disabled(conn, user.id, disabled)
        action = "user.disable" if disabled else "user.enable"
        audit.append(conn, actor, action, f"user:{username}", {})
    updated = repository.user_by_id(conn, user.id)
    assert updated is not None
    return updated


def network_key(secret: bytes, host: str | None) -> bytes:
    """What the login limit keeps of a caller's address: a keyed hash of its network
    (infra.ratelimit.network_prefix: the /24 or /48), never the address; hashed
    under its own label, so a login row and a submission-limit row of one network
    cannot be matched. Pure."""
    return ratelimit.keyed_hash(secret, "login-network", ratelimit.network_prefix(host))


def login(
    conn: psycopg.Connection,
    username: str,
    password: str,
    *,
    session_hours: float,
    network: bytes = b"",
) -> str:
    """Check a password and open a session; returns the session token for the cookie.

    Refuses with 429 after too many failures within the window (see the limits
    above) whether the name exists or not, and with 401 for a wrong name, password
    or disabled account; an unknown name costs the same argon2 work as a known one,
    so neither the answer nor its time tells which names exist. ``network`` is
    :func:`network_key` of the caller.
    """
    name = username.strip().lower()[:40]
    repository.lock_login(conn, name)
    same, per_name, per_network = repository.recent_login_failures(
        conn, name, network, LOGIN_WINDOW_SECONDS
    )
    if (
        same >= MAX_LOGIN_FAILURES
        or per_name >= MAX_LOGIN_FAILURES_PER_USERNAME
        or per_network >= MAX_LOGIN_FAILURES_PER_NETWORK
    ):
        raise TooManyRequests(
            "username", "too many failed logins; wait and try again", LOGIN_WINDOW_SECONDS
        )
    user = repository.user_by_name(conn, name)
    if user is None or user.disabled:
        _burn_time(password)
        ok = False
    else:
        ok = _verify(conn, user, password)
    if not ok or user is None:
        repository.record_login_failure(conn, name, network)
        conn.commit()  # the failure counts even though the request is refused
        raise Unauthorized("password", "wrong username or password")
    repository.delete_expired_sessions(conn)
    token = new_secret(SESSION_PREFIX)
    repository.insert_session(conn, token_sha256(token), user.id, session_hours)
    return token


_DUMMY_HASH = _hasher.hash("not anyone's password")


def _burn_time(password: str) -> None:
    """The argon2 work of checking a password, for a name that has none."""
    with contextlib.suppress(VerificationError, InvalidHashError):
        _hasher.verify(_DUMMY_HASH, password)


def _verify(conn: psycopg.Connection, user: User, password: str) -> bool:
    stored = repository.password_hash(conn, user.id)
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(stored):
        repository.set_password_hash(conn, user.id, _hasher.hash(password))
    return True


def logout(conn: psycopg.Connection, session_token: str) -> None:
    repository.delete_session(conn, token_sha256(session_token))


def list_users(conn: psycopg.Connection) -> list[User]:
    """Every account, by username."""
    return repository.list_users(conn)


def tokens_of(conn: psycopg.Connection, principal: Principal) -> list[TokenInfo]:
    """The caller's own API tokens (never their values: only hashes are kept), newest first."""
    assert principal.user_id is not None
    return [
        TokenInfo(name=name, created_at=created, expires_at=expires, revoked=revoked)
        for name, created, expires, revoked in repository.tokens_of(conn, principal.user_id)
    ]


def _principal(user: User, via: Via, session: bytes | None = None) -> Principal:
    return Principal(
        role=user.role, via=via, user_id=user.id, username=user.username, session_sha256=session
    )


def session_principal(conn: psycopg.Connection, session_token: str) -> Principal | None:
    """The caller behind a session cookie, or None when it is unknown or expired."""
    digest = token_sha256(session_token)
    user = repository.session_user(conn, digest)
    return None if user is None else _principal(user, Via.SESSION, digest)


def token_principal(conn: psycopg.Connection, api_token: str) -> Principal | None:
    """The caller behind an account's API token, or None when it is unknown,
    expired or revoked."""
    user = repository.token_user(conn, token_sha256(api_token))
    return None if user is None else _principal(user, Via.API_TOKEN)


def create_token(
    conn: psycopg.Connection, principal: Principal, name: str, days: int
) -> tuple[str, datetime]:
    """A new API token for the caller's own account (audited); shown once."""
    assert principal.user_id is not None
    name = name.strip()
    if not 1 <= len(name) <= MAX_TOKEN_NAME:
        raise Invalid("name", f"1 to {MAX_TOKEN_NAME} characters")
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise Invalid("days", f"from 1 to {MAX_TOKEN_DAYS} days")
    token = new_secret(API_TOKEN_PREFIX)
    with conn.transaction():
        expires = repository.insert_token(conn, token_sha256(token), principal.user_id, name, days)
        audit.append(
            conn, principal.actor, "token.add", f"user:{principal.username}", {"name": name}
        )
    return token, expires
