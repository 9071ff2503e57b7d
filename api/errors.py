"""Domain errors. One base class carries the HTTP status and the field at fault;
one application-level handler (``api.main``) turns any of them into the answer
body ``{"detail": {"field": ..., "message": ...}}``. Services raise these; routes
never build error answers by hand.
"""

from __future__ import annotations


class GolosError(Exception):
    """Bad input or a state that refuses the request. Nothing was stored."""

    status_code: int = 422

    def __init__(self, field: str, message: str, status_code: int | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        if status_code is not None:
            self.status_code = status_code

    def headers(self) -> dict[str, str]:
        """Headers the answer carries besides the body (none by default)."""
        return {}

    def body(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class BadRequest(GolosError):
    """The request is malformed (a missing idempotency key, a body that is not a form)."""

    status_code = 400


class Unauthorized(GolosError):
    """No credential, or one that is wrong or expired: log in (or verify) first."""

    status_code = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(GolosError):
    """The caller is known but their role may not do this."""

    status_code = 403


class NotFound(GolosError):
    status_code = 404


class Conflict(GolosError):
    """The request clashes with the current state (e.g. a retry while the first is in flight)."""

    status_code = 409


class TooLarge(GolosError):
    status_code = 413


class UnsupportedMediaType(GolosError):
    status_code = 415


class Invalid(GolosError):
    """A field's value is wrong."""

    status_code = 422


class ServiceUnavailable(GolosError):
    """A part the platform needs is down for now (the database): retry later."""

    status_code = 503


class TooManyRequests(GolosError):
    """Too many attempts in a short time (a login, a verification code): wait."""

    status_code = 429

    def __init__(self, field: str, message: str, retry_after: int = 60) -> None:
        super().__init__(field, message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
