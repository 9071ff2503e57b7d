"""Who may call the platform: roles, the caller of a request, account models."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field


class Role(enum.StrEnum):
    """Least privilege (threats.md): voters send photos and read their own
    submissions; observers review (see photos, never identities); analysts read
    figures and reports; admins manage accounts and may override a review decision."""

    VOTER = "voter"
    OBSERVER = "observer"
    ANALYST = "analyst"
    ADMIN = "admin"


# Roles that have an account with a password (a voter has a device token instead).
ACCOUNT_ROLES: tuple[Role, ...] = (Role.OBSERVER, Role.ANALYST, Role.ADMIN)


class Via(enum.StrEnum):
    """How a caller proved who they are."""

    SESSION = "session"  # the browser's session cookie (forms need a CSRF token)
    API_TOKEN = "api_token"  # an account's token for scripts (Authorization: Bearer)
    DEVICE = "device"  # a voter's device token (Authorization: Bearer)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request.

    An account holder has ``user_id`` and ``username``; a voter has neither, only
    ``voter_key`` (the keyed hash of the verified identity, per election) and the
    ``election_id`` the identity was verified for.
    """

    role: Role
    via: Via
    user_id: int | None = None
    username: str | None = None
    voter_key: bytes | None = None
    election_id: str | None = None
    session_sha256: bytes | None = None

    @property
    def actor(self) -> str:
        """The name the audit log records for this caller (never a voter's identity)."""
        return self.username or f"{self.role}"


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: Role
    disabled: bool
    created_at: datetime


class UserOut(BaseModel):
    id: int
    username: str
    role: Role
    disabled: bool
    created_at: datetime


class NewUser(BaseModel):
    username: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{1,39}$")
    role: Role
    password: str = Field(min_length=12, max_length=256)


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    days: int = Field(default=90, ge=1, le=366)


class TokenCreated(BaseModel):
    """The token is shown once, here; the platform keeps only its hash."""

    token: str
    name: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenInfo:
    """What an account holder sees of one of their API tokens (not its value)."""

    name: str
    created_at: datetime
    expires_at: datetime
    revoked: bool
