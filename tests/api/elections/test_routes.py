"""GET /v1/elections/{id}: an election over HTTP, and the 404 for an unknown one."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_an_election_is_described(client: TestClient) -> None:
    response = client.get("/v1/elections/by-2020-president")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "by-2020-president"
    assert body["precincts"] == 3 and body["precincts_with_official"] == 2
    assert body["has_ballot_template"] is True
    assert "tsikhanouskaya" in body["option_ids"]


def test_an_unknown_election_is_404_naming_the_field(client: TestClient) -> None:
    response = client.get("/v1/elections/nowhere")
    assert response.status_code == 404
    assert response.json() == {
        "detail": {"field": "election_id", "message": "no election 'nowhere'"}
    }
