"""Domain errors. One base class carries the HTTP status and the field at fault;
one application-level handler (``api.main``) turns any of them into the answer
body ``{"detail": {"field": ..., "message": ...}}``. Services raise these; routes
never build error answers by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


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


# What the schema says of the error answers (``describe_errors``).
ERROR_SCHEMA_NAME = "Error"
ERROR_SCHEMA: dict[str, Any] = {
    "title": ERROR_SCHEMA_NAME,
    "type": "object",
    "description": "An error: the field at fault and what was wrong with it.",
    "properties": {
        "detail": {
            "type": "object",
            "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            "required": ["field", "message"],
        }
    },
    "required": ["detail"],
}
_REASONS = {
    400: "Malformed request (the field says which part)",
    401: "No credential, or an unknown or expired one",
    403: "The caller may not do this (or a form's CSRF token is missing)",
    404: "No such thing (or not one the caller may see)",
    409: "The request clashes with the current state: retry",
    413: "The upload is too large",
    415: "The body is not of the media type the operation takes",
    422: "A field's value is wrong",
    429: "Too many requests: retry after Retry-After seconds",
    503: "A part the platform needs (the database, the photo store) is unavailable: "
    "retry after Retry-After seconds",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


def _error_statuses(operation: dict[str, Any], method: str) -> list[int]:
    """The error statuses an operation may answer (besides those it documents
    itself). Every operation: 400, 404, 422, 503 (the database out of reach); one
    with callers to check or a form to guard (any but a public read): 401, 403;
    one taking a body: 409, 413, 415; one that changes something: 429 (the
    limits). Pure."""
    statuses = [400, 404, 422, 503]
    if operation.get("security", [{}])[0] != {} or method != "get":
        statuses += [401, 403]
    if "requestBody" in operation:
        statuses += [409, 413, 415]
    if method != "get":
        statuses.append(429)
    return sorted(statuses)


def describe_errors(openapi: dict[str, Any], is_page: Callable[[str], bool]) -> dict[str, Any]:
    """The schema with every operation's error answers documented (changed in place
    and returned; calling it again changes nothing). Pure.

    An error of the JSON API is ``{"detail": {"field", "message"}}`` (the component
    ``Error``); a 422 may also be FastAPI's own validation error
    (``HTTPValidationError``), for a parameter of the wrong type. An operation whose
    path ``is_page`` answers its errors with a page (text/html), and sends a caller
    not logged in to the login page (303) rather than answering 401. Either way a
    database out of reach is the JSON 503, and 429 and 503 carry Retry-After."""
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    components[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    error = {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}}
    validation = {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
    page = {"schema": {"type": "string"}}
    for path, operations in openapi.get("paths", {}).items():
        pages = is_page(path)
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in _error_statuses(operation, method):
                content: dict[str, Any]
                if status == 503:
                    content = {"application/json": error}
                elif status == 422:
                    # A page's own refusals are pages; FastAPI's are JSON anyway.
                    either = {"anyOf": [error["schema"], validation["schema"]]}
                    content = (
                        {"text/html": page, "application/json": validation}
                        if pages
                        else {"application/json": {"schema": either}}
                    )
                elif pages and status == 400:  # a body that cannot be parsed: JSON
                    content = {"text/html": page, "application/json": error}
                elif pages and status == 401:
                    responses["303"] = {
                        "description": "Not logged in: to the login page, and back after",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    }
                    continue
                else:
                    content = {"text/html": page} if pages else {"application/json": error}
                answer: dict[str, Any] = {"description": _REASONS[status], "content": content}
                if status in (429, 503):
                    answer["headers"] = _RETRY_AFTER
                responses[str(status)] = answer
    return openapi
