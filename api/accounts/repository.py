"""Every SQL statement on the accounts' tables: users, sessions, api_tokens,
login_failures. Plain psycopg, parameterised, typed rows."""

from __future__ import annotations

from datetime import datetime

import psycopg

from api.accounts.schemas import Role, User

_USER_COLUMNS = "id, username, role, disabled, created_at"


def _user_row(row: tuple[int, str, str, bool, datetime]) -> User:
    return User(id=row[0], username=row[1], role=Role(row[2]), disabled=row[3], created_at=row[4])


def insert_user(
    conn: psycopg.Connection, username: str, role: Role, password_hash: str
) -> User | None:
    """The new user, or None when the username is taken."""
    row = conn.execute(
        f"INSERT INTO users (username, role, password_hash) VALUES (%s, %s, %s)"
        f" ON CONFLICT (username) DO NOTHING RETURNING {_USER_COLUMNS}",
        (username, str(role), password_hash),
    ).fetchone()
    return None if row is None else _user_row(row)


def user_by_name(conn: psycopg.Connection, username: str) -> User | None:
    row = conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users WHERE username = %s", (username,)
    ).fetchone()
    return None if row is None else _user_row(row)


def user_by_id(conn: psycopg.Connection, user_id: int) -> User | None:
    row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s", (user_id,)).fetchone()
    return None if row is None else _user_row(row)


def password_hash(conn: psycopg.Connection, user_id: int) -> str:
    row = conn.execute("SELECT password_hash FROM users WHERE id = %s", (user_id,)).fetchone()
    assert row is not None
    return str(row[0])


def set_password_hash(conn: psycopg.Connection, user_id: int, new_hash: str) -> None:
    conn.execute("UPDATE users SET password_hash = %s WHERE id = %s", (new_hash, user_id))


def list_users(conn: psycopg.Connection) -> list[User]:
    rows = conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username").fetchall()
    return [_user_row(r) for r in rows]


def set_disabled(conn: psycopg.Connection, user_id: int, disabled: bool) -> None:
    """Disable (or re-enable) an account; disabling also ends its sessions and tokens."""
    conn.execute("UPDATE users SET disabled = %s WHERE id = %s", (disabled, user_id))
    if disabled:
        conn.execute("DELETE FROM sessions WHERE user_id = %s", (user_id,))
        conn.execute("UPDATE api_tokens SET revoked = true WHERE user_id = %s", (user_id,))


def insert_session(
    conn: psycopg.Connection, token_sha256: bytes, user_id: int, hours: float
) -> None:
    conn.execute(
        "INSERT INTO sessions (token_sha256, user_id, expires_at)"
        " VALUES (%s, %s, now() + make_interval(secs => %s))",
        (token_sha256, user_id, hours * 3600),
    )


def delete_session(conn: psycopg.Connection, token_sha256: bytes) -> None:
    conn.execute("DELETE FROM sessions WHERE token_sha256 = %s", (token_sha256,))


def delete_expired_sessions(conn: psycopg.Connection) -> None:
    conn.execute("DELETE FROM sessions WHERE expires_at <= now()")


def session_user(conn: psycopg.Connection, token_sha256: bytes) -> User | None:
    """The enabled user of a live session, or None."""
    row = conn.execute(
        f"SELECT {', '.join('u.' + c.strip() for c in _USER_COLUMNS.split(','))}"
        " FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.token_sha256 = %s AND s.expires_at > now() AND NOT u.disabled",
        (token_sha256,),
    ).fetchone()
    return None if row is None else _user_row(row)


def insert_token(
    conn: psycopg.Connection, token_sha256: bytes, user_id: int, name: str, days: int
) -> datetime:
    row = conn.execute(
        "INSERT INTO api_tokens (token_sha256, user_id, name, expires_at)"
        " VALUES (%s, %s, %s, now() + make_interval(days => %s)) RETURNING expires_at",
        (token_sha256, user_id, name, days),
    ).fetchone()
    assert row is not None
    return row[0]


def token_user(conn: psycopg.Connection, token_sha256: bytes) -> User | None:
    """The enabled user of a live, unrevoked API token, or None."""
    row = conn.execute(
        f"SELECT {', '.join('u.' + c.strip() for c in _USER_COLUMNS.split(','))}"
        " FROM api_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE t.token_sha256 = %s AND t.expires_at > now() AND NOT t.revoked"
        " AND NOT u.disabled",
        (token_sha256,),
    ).fetchone()
    return None if row is None else _user_row(row)


def tokens_of(conn: psycopg.Connection, user_id: int) -> list[tuple[str, datetime, datetime, bool]]:
    """(name, created_at, expires_at, revoked) of a user's tokens, newest first."""
    rows = conn.execute(
        "SELECT name, created_at, expires_at, revoked FROM api_tokens WHERE user_id = %s"
        " ORDER BY created_at DESC",
        (user_id,),
    ).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def lock_login(conn: psycopg.Connection, username: str) -> None:
    """Serialise logins to one username until the transaction ends, so that
    parallel guesses cannot all read the failure count before any is recorded."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('golos.login:' || %s))", (username,))


def record_login_failure(conn: psycopg.Connection, username: str, network: bytes) -> None:
    conn.execute(
        "INSERT INTO login_failures (username, network) VALUES (%s, %s)", (username, network)
    )


def recent_login_failures(
    conn: psycopg.Connection, username: str, network: bytes, window_seconds: int
) -> tuple[int, int, int]:
    """Failed logins within the window: for this username from this network, for
    this username from anywhere, and from this network for any username. Older
    rows are deleted first."""
    conn.execute(
        "DELETE FROM login_failures WHERE failed_at < now() - make_interval(secs => %s)",
        (window_seconds,),
    )
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE username = %(u)s AND network = %(n)s),"
        " count(*) FILTER (WHERE username = %(u)s),"
        " count(*) FILTER (WHERE network = %(n)s)"
        " FROM login_failures WHERE username = %(u)s OR network = %(n)s",
        {"u": username, "n": network},
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])
