"""The API after a database restart: the pool checks its connections, so the first
requests after PostgreSQL comes back are answered, not failed with 500.

The test restarts a cluster of its own (in a temporary folder), never the session's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from infra.pg import EmbeddedPostgres
from tests import clusters


@pytest.fixture
def own_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL cluster for this test alone (``tests.clusters.own_cluster``)."""
    with clusters.own_cluster(monkeypatch, "golos-restart-") as pg:
        yield pg


def test_the_api_answers_the_first_requests_after_a_database_restart(
    own_cluster: EmbeddedPostgres,
) -> None:
    with TestClient(create_app()) as client:
        # Several pooled connections in use before the restart.
        for _ in range(5):
            assert client.get("/healthz").status_code == 200
            assert client.get("/v1/elections/nowhere").status_code == 404
        own_cluster.stop()
        own_cluster.start()
        answers = [client.get("/healthz").status_code for _ in range(20)]
        answers += [client.get("/v1/elections/nowhere").status_code for _ in range(20)]
    assert set(answers[:20]) == {200}
    assert set(answers[20:]) == {404}
