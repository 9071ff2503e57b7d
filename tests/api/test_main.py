"""The HTTP edge: one handler for every domain error, dependencies a test replaces,
and the upload's body documented in OpenAPI."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg_pool import PoolTimeout

from api import errors
from api.deps import conn_dep
from api.elections.schemas import ElectionNotFound
from api.errors import GolosError
from api.main import database_unreachable
from api.submissions.schemas import SubmissionForm

DOMAIN_ERRORS = [
    errors.BadRequest,
    errors.Unauthorized,
    errors.Forbidden,
    errors.NotFound,
    errors.Conflict,
    errors.TooLarge,
    errors.UnsupportedMediaType,
    errors.Invalid,
    errors.ServiceUnavailable,
    errors.TooManyRequests,
]


def test_the_error_list_covers_every_error_class() -> None:
    declared = {c for c in GolosError.__subclasses__() if c.__module__ == "api.errors"}
    assert declared == set(DOMAIN_ERRORS)


@pytest.mark.parametrize("error", DOMAIN_ERRORS, ids=lambda e: e.__name__)
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_every_domain_error_answers_its_status_with_field_and_message(
    app: FastAPI, error: type[GolosError], kind: str
) -> None:
    def sync_route() -> None:
        raise error("some_field", "what went wrong")

    async def async_route() -> None:
        raise error("some_field", "what went wrong")

    app.add_api_route("/v1/boom", sync_route if kind == "sync" else async_route)
    response = TestClient(app).get("/v1/boom")
    assert response.status_code == error.status_code
    assert response.json() == {"detail": {"field": "some_field", "message": "what went wrong"}}


def test_a_domain_subclass_and_an_explicit_status_use_the_same_handler(app: FastAPI) -> None:
    def unknown_election() -> None:
        raise ElectionNotFound("nowhere")

    def explicit() -> None:
        raise GolosError("state", "not now", status_code=423)

    app.add_api_route("/v1/unknown", unknown_election)
    app.add_api_route("/v1/explicit", explicit)
    client = TestClient(app)
    response = client.get("/v1/unknown")
    assert response.status_code == 404
    assert response.json() == {
        "detail": {"field": "election_id", "message": "no election 'nowhere'"}
    }
    response = client.get("/v1/explicit")
    assert (response.status_code, response.json()["detail"]["field"]) == (423, "state")


def test_path_parameter_validation_keeps_fastapis_answer(
    app: FastAPI, account: Callable[..., dict[str, str]]
) -> None:
    # An analyst may ask for reports, so the path is what is wrong here.
    response = TestClient(app).get("/v1/reports/not-a-uuid", headers=account("analyst"))
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)  # FastAPI's own list of problems


class _RecordingConnection:
    def __init__(self) -> None:
        self.queries: list[str] = []

    def execute(self, query: str) -> None:
        self.queries.append(query)


def test_health_answers_through_the_connection_dependency(app: FastAPI) -> None:
    connection = _RecordingConnection()

    def stub() -> Iterator[_RecordingConnection]:
        yield connection

    app.dependency_overrides[conn_dep] = stub
    response = TestClient(app).get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert connection.queries == ["SELECT 1"]


def test_health_answers_from_the_database(app: FastAPI, database: str) -> None:
    response = TestClient(app).get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_an_unreachable_database_is_503_with_a_clear_body(app: FastAPI) -> None:
    def unreachable() -> Iterator[psycopg.Connection]:
        raise psycopg.OperationalError("connection refused")
        yield  # a generator, like conn_dep

    app.dependency_overrides[conn_dep] = unreachable
    response = TestClient(app).get("/healthz")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json() == {
        "detail": {"field": "database", "message": "the database is unavailable; retry later"}
    }


@pytest.mark.parametrize(
    "conflict",
    [
        psycopg.errors.DeadlockDetected("deadlock detected"),
        psycopg.errors.SerializationFailure("could not serialize access"),
        psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"),
    ],
)
def test_a_conflict_is_retried_by_the_caller_and_logged_as_a_bug(
    app: FastAPI, caplog: pytest.LogCaptureFixture, conflict: Exception
) -> None:
    def conflicting() -> Iterator[psycopg.Connection]:
        raise conflict
        yield

    app.dependency_overrides[conn_dep] = conflicting
    response = TestClient(app, raise_server_exceptions=False).get("/healthz")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["detail"]["field"] == "database"
    assert any(r.levelname == "ERROR" and r.exc_info for r in caplog.records)


def test_a_statement_timeout_is_a_logged_500_not_an_outage(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    def cancelled() -> Iterator[psycopg.Connection]:
        raise psycopg.errors.QueryCanceled("canceling statement due to statement timeout")
        yield

    app.dependency_overrides[conn_dep] = cancelled
    response = TestClient(app, raise_server_exceptions=False).get("/healthz")
    assert response.status_code == 500
    assert "Retry-After" not in response.headers
    assert any(r.levelname == "ERROR" and r.exc_info for r in caplog.records)


@pytest.mark.parametrize(
    ("error", "unreachable"),
    [
        (psycopg.OperationalError("connection refused"), True),
        (psycopg.errors.AdminShutdown("terminating connection"), True),
        (psycopg.errors.ConnectionFailure("connection failure"), True),
        (PoolTimeout("couldn't get a connection after 30 sec"), True),
        (psycopg.errors.DeadlockDetected("deadlock detected"), False),
        (psycopg.errors.QueryCanceled("statement timeout"), False),
        (ValueError("not a database error"), False),
    ],
)
def test_only_a_database_out_of_reach_is_unreachable(error: Exception, unreachable: bool) -> None:
    assert database_unreachable(error) is unreachable


FORM_FIELDS = {
    "photo",
    "election_id",
    "precinct_id",
    "declared_choice",
    "submission_id",
}


def test_the_upload_documents_every_field_of_its_multipart_body(app: FastAPI) -> None:
    body = app.openapi()["paths"]["/v1/submissions"]["post"]["requestBody"]
    assert body["required"] is True
    schema = body["content"]["multipart/form-data"]["schema"]
    assert set(schema["properties"]) == FORM_FIELDS
    assert set(schema["required"]) == FORM_FIELDS
    photo = schema["properties"]["photo"]
    assert (photo["type"], photo["format"]) == ("string", "binary")
    assert schema["properties"]["submission_id"]["format"] == "uuid"
    assert all(field["description"] for field in schema["properties"].values())


@pytest.mark.parametrize("missing", sorted(FORM_FIELDS))
def test_every_documented_field_is_one_the_upload_requires(
    client: TestClient, conn: psycopg.Connection, device_token: Callable[..., str], missing: str
) -> None:
    fields = {
        "election_id": "by-2020-president",
        "precinct_id": "p1",
        "declared_choice": "tsikhanouskaya",
        "submission_id": str(uuid.uuid4()),
    }
    assert set(SubmissionForm.model_fields) == FORM_FIELDS
    data = {k: v for k, v in fields.items() if k != missing}
    files = {} if missing == "photo" else {"photo": ("b.jpg", b"jpeg bytes", "image/jpeg")}
    if not files:
        data["filler"] = "x"  # still a multipart body
        files = {"other": ("x.txt", b"", "text/plain")}
    voter = {"Authorization": f"Bearer {device_token('+375291000041')}"}
    response = client.post("/v1/submissions", data=data, files=files, headers=voter)
    assert response.status_code in (400, 422)
    assert response.json()["detail"]["field"] == missing
    # Refused before anything was stored or counted.
    conn.commit()
    assert conn.execute("SELECT count(*) FROM submissions").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM rate_limits").fetchone() == (0,)


def test_no_page_of_the_api_loads_scripts_from_a_cdn(app: FastAPI) -> None:
    client = TestClient(app)
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").json()["info"]["title"] == "Golos"


def test_a_started_app_leaves_its_startup_heap_out_of_garbage_collections(
    app: FastAPI, database: str
) -> None:
    import gc

    with TestClient(app) as client:  # the lifespan runs
        assert client.get("/healthz").status_code == 200
        # Frozen objects are in the permanent generation: full collections skip them.
        assert gc.get_freeze_count() > 10_000
