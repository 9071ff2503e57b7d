"""Schemathesis over the whole OpenAPI schema (/openapi.json), against the real app
(ASGI, its lifespan running: the job queue open) on the real database.

Every operation gets generated requests, as the role the schema names for it (a
voter's device token, an observer's, analyst's or admin's API token; none for
public ones), on a database holding the test election, its official figures, a
submission and the accounts. The checks: no 5xx, and every answer documented in
the schema (its status, content type, headers and body). Bounded: a fixed number
of examples per operation, derandomised, so the run takes well under a minute and
fails the same way every time.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from psycopg import sql
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.accounts import service as accounts
from api.accounts.schemas import Principal, Role, Via
from api.elections.service import load_election
from api.main import create_app
from api.voters.service import issue_device_token
from infra import db
from infra.settings import get_settings
from infra.storage import photo_store
from tests.conftest import PASSWORD, official_csv, write_election

# GOLOS_FUZZ_EXAMPLES=200 GOLOS_FUZZ_SEED=random looks deeper, for a while.
EXAMPLES_PER_OPERATION = int(os.environ.get("GOLOS_FUZZ_EXAMPLES", "12"))
DERANDOMIZE = os.environ.get("GOLOS_FUZZ_SEED") != "random"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# The strongest role first: where several may call an operation, the one that
# reaches furthest into it.
ROLES = ["admin", "analyst", "observer", "voter"]


@pytest.fixture(scope="module")
def credentials(
    database: str, ballot_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, str]]:
    """An emptied database with the test election, its official figures, one
    submission and an account of each role; the Authorization header of each role."""
    with psycopg.connect(database, autocommit=True) as c:
        tables = [t for t in db.data_tables(c) if t != "audit_log"]
        c.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(map(sql.Identifier, tables))
            )
        )
    shutil.rmtree(get_settings().photos_path, ignore_errors=True)
    folder = write_election(tmp_path_factory.mktemp("fuzz") / "election", ballot_dir)
    (folder / "official.csv").write_text(
        official_csv({"p1": {"lukashenko": 300, "tsikhanouskaya": 1}, "p2": {"charachen": 9}})
    )
    headers: dict[str, dict[str, str]] = {}
    with psycopg.connect(database) as conn:
        load_election(conn, folder, photo_store(get_settings()))
        for role in ("admin", "analyst", "observer"):
            user = accounts.add_user(conn, f"fuzz-{role}", Role(role), PASSWORD, actor="test")
            owner = Principal(
                role=user.role, via=Via.SESSION, user_id=user.id, username=user.username
            )
            token, _ = accounts.create_token(conn, owner, "fuzz", 1)
            headers[role] = {"Authorization": f"Bearer {token}"}
        voter = issue_device_token(conn, "by-2020-president", "+375291234567")
        headers["voter"] = {"Authorization": f"Bearer {voter}"}
        conn.commit()
    return headers


@pytest.fixture(scope="module")
def seeded(credentials: dict[str, dict[str, str]], ballot_photo: Callable[..., bytes]) -> None:
    """A submission in the database, sent by the voter (its job queued, never run)."""
    with TestClient(create_app()) as client:
        answer = client.post(
            "/v1/submissions",
            data={
                "election_id": "by-2020-president",
                "precinct_id": "p1",
                "declared_choice": "tsikhanouskaya",
                "submission_id": str(uuid.uuid4()),
            },
            files={"photo": ("b.jpg", ballot_photo(["tsikhanouskaya"]), "image/jpeg")},
            headers=credentials["voter"],
        )
        assert answer.status_code == 202, answer.text


# The app is made at import (making it touches no database); its lifespan starts
# with the first request, once the fixtures have set the database up.
APP = create_app()
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP


def caller(case: Case, credentials: dict[str, dict[str, str]]) -> dict[str, str]:
    """The Authorization header of the strongest role the operation admits (none for
    a public one)."""
    roles = case.operation.definition.raw.get("x-golos-roles", [])
    for role in ROLES:
        if role in roles:
            return credentials[role]
    return {}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=DERANDOMIZE,
    database=None,  # nothing written into the working tree
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_its_schema_says(
    case: Case, credentials: dict[str, dict[str, str]], seeded: None
) -> None:
    case.call_and_validate(headers=caller(case, credentials), checks=CHECKS)
