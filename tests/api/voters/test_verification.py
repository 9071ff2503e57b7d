"""Verifying a voter's phone: a code, a device token, and nothing that names them."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.voters import service
from api.voters.verifiers import DevVerifier, dev_code, load_verifier, warn_if_development
from infra.pg import find_bin_dir
from infra.settings import MissingVoterSecret, get_settings

ELECTION = "by-2020-president"
PHONE = "+375 29 765-43-21"
SPELLINGS = ("+375 29 765-43-21", "375297654321", "+375297654321", "7654321", "765-43-21")


def _ask(client: TestClient, phone: str = PHONE, election: str = ELECTION) -> str:
    response = client.post(f"/v1/elections/{election}/verification", json={"phone": phone})
    assert response.status_code == 202, response.text
    assert response.json()["expires_in"] == service.CODE_TTL_SECONDS
    return str(response.json()["challenge_id"])


def _code(challenge_id: str) -> str:
    code = dev_code(get_settings().dev_codes_path, challenge_id)
    assert code is not None and len(code) == service.CODE_DIGITS
    return code


def _confirm(
    client: TestClient, challenge_id: str, code: str, election: str = ELECTION
) -> httpx.Response:
    return client.post(f"/v1/elections/{election}/verification/{challenge_id}", json={"code": code})


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**service.CODE_DIGITS:0{service.CODE_DIGITS}d}"


def test_a_verified_phone_gets_a_device_token_that_submits(
    client: TestClient, ballot_photo: Callable
) -> None:
    challenge = _ask(client)
    answer = _confirm(client, challenge, _code(challenge))
    assert answer.status_code == 200, answer.text
    token = answer.json()["device_token"]
    assert token.startswith("golos_vt_") and answer.json()["election_id"] == ELECTION
    sid = str(uuid.uuid4())
    voter = {"Authorization": f"Bearer {token}"}
    sent = client.post(
        "/v1/submissions",
        data={
            "election_id": ELECTION,
            "precinct_id": "p1",
            "declared_choice": "tsikhanouskaya",
            "submission_id": sid,
        },
        files={"photo": ("b.jpg", ballot_photo(["tsikhanouskaya"]), "image/jpeg")},
        headers=voter,
    )
    assert sent.status_code == 202, sent.text
    assert client.get(f"/v1/submissions/{sid}", headers=voter).json()["status"] == "received"


def test_a_wrong_code_is_refused_and_the_right_one_still_works(client: TestClient) -> None:
    challenge = _ask(client)
    code = _code(challenge)
    wrong = _confirm(client, challenge, _wrong(code))
    assert wrong.status_code == 422
    assert wrong.json()["detail"] == {"field": "code", "message": "wrong code; 4 attempts left"}
    assert _confirm(client, challenge, code).status_code == 200
    again = _confirm(client, challenge, code)  # a code works once
    assert again.status_code == 410


def test_five_wrong_codes_end_the_challenge(client: TestClient) -> None:
    challenge = _ask(client)
    code = _code(challenge)
    statuses = [
        _confirm(client, challenge, _wrong(code)).status_code for _ in range(service.MAX_ATTEMPTS)
    ]
    assert statuses == [422] * (service.MAX_ATTEMPTS - 1) + [429]
    last = _confirm(client, challenge, code)
    assert last.status_code == 429 and last.json()["detail"]["field"] == "code"


def test_an_expired_code_is_refused(client: TestClient, conn: psycopg.Connection) -> None:
    challenge = _ask(client)
    conn.execute(
        "UPDATE voter_challenges SET expires_at = now() - interval '1 second' WHERE id = %s",
        (challenge,),
    )
    conn.commit()
    answer = _confirm(client, challenge, _code(challenge))
    assert answer.status_code == 410 and "expired" in answer.json()["detail"]["message"]


def test_a_challenge_answers_only_in_its_own_election(client: TestClient) -> None:
    challenge = _ask(client)
    assert _confirm(client, challenge, _code(challenge), election="other").status_code == 404
    assert _confirm(client, str(uuid.uuid4()), "123456").status_code == 404


def test_codes_per_phone_are_limited_per_hour(client: TestClient) -> None:
    # Every spelling of the number is the same phone.
    for spelling in SPELLINGS[: service.MAX_CHALLENGES_PER_WINDOW]:
        _ask(client, spelling if spelling.startswith(("+", "375")) else PHONE)
    refused = client.post(f"/v1/elections/{ELECTION}/verification", json={"phone": SPELLINGS[2]})
    assert refused.status_code == 429
    assert refused.json()["detail"]["field"] == "phone"
    assert 3500 < int(refused.headers["Retry-After"]) <= service.CHALLENGE_WINDOW_SECONDS
    _ask(client, "+375291112233")  # another phone is not held up


def test_codes_per_network_are_limited_and_a_refusal_does_not_count(
    client: TestClient, conn: psycopg.Connection, limits: Callable, from_address: Callable
) -> None:
    limits(verifications_per_network=service.MAX_CHALLENGES_PER_WINDOW + 1)
    from_address("203.0.113.5")
    for _ in range(service.MAX_CHALLENGES_PER_WINDOW):
        _ask(client)
    # Refused for the phone's own limit: that refusal takes no place of the network's.
    too_many = client.post(f"/v1/elections/{ELECTION}/verification", json={"phone": PHONE})
    assert too_many.status_code == 429 and too_many.json()["detail"]["field"] == "phone"
    from_address("203.0.113.99")  # the same /24
    _ask(client, "+375291112233")
    refused = client.post(f"/v1/elections/{ELECTION}/verification", json={"phone": "+375294445566"})
    assert refused.status_code == 429 and refused.json()["detail"]["field"] == "network"
    assert 1 <= int(refused.headers["Retry-After"]) <= 2 * 600
    conn.commit()
    assert conn.execute("SELECT count(*) FROM voter_challenges").fetchone() == (6,)
    from_address("198.51.100.7")  # another network is not held up
    _ask(client, "+375294445566")


def test_the_api_refuses_to_start_without_a_voter_secret(database: str) -> None:
    names = ("GOLOS_VOTER_SECRET", "GOLOS_DEVELOPMENT")
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    get_settings.cache_clear()
    try:
        with (
            pytest.raises(MissingVoterSecret, match="GOLOS_VOTER_SECRET is not set"),
            TestClient(create_app()),
        ):
            pass
        assert not (get_settings().data_dir / "voter-secret").exists()
    finally:
        os.environ.update(saved)
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("election", "phone", "status", "field"),
    [
        ("nowhere", PHONE, 404, "election_id"),
        (ELECTION, "call me", 422, "phone"),
        (ELECTION, "+375 29", 422, "phone"),
        (ELECTION, "+1234567890123456789", 422, "phone"),
    ],
)
def test_bad_requests_send_no_code(
    client: TestClient, election: str, phone: str, status: int, field: str
) -> None:
    path = get_settings().dev_codes_path
    before = path.read_text() if path.exists() else ""
    response = client.post(f"/v1/elections/{election}/verification", json={"phone": phone})
    assert response.status_code == status
    assert response.json()["detail"]["field"] == field
    assert (path.read_text() if path.exists() else "") == before


def test_an_expired_device_token_is_refused(
    client: TestClient, conn: psycopg.Connection, device_token: Callable
) -> None:
    token = device_token(PHONE)
    conn.execute("UPDATE device_tokens SET expires_at = now() - interval '1 second'")
    conn.commit()
    response = client.get(
        f"/v1/submissions/{uuid.uuid4()}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401


def _dump(dsn: str) -> str:
    """Everything the database holds, as pg_dump writes it (what a seizure takes)."""
    return subprocess.run(
        [str(find_bin_dir() / "pg_dump"), "--data-only", "--dbname", dsn],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_the_phone_number_and_address_are_never_stored_logged_or_returned(
    client: TestClient,
    database: str,
    ballot_photo: Callable,
    caplog: pytest.LogCaptureFixture,
    limits: Callable,
    from_address: Callable,
) -> None:
    caplog.set_level(logging.DEBUG)
    limits(submissions_per_voter=1)
    from_address("203.0.113.57")
    asked = client.post(f"/v1/elections/{ELECTION}/verification", json={"phone": PHONE})
    challenge = asked.json()["challenge_id"]
    confirmed = _confirm(client, challenge, _code(challenge))
    token = confirmed.json()["device_token"]

    def send(seed: int) -> httpx.Response:
        return client.post(
            "/v1/submissions",
            data={
                "election_id": ELECTION,
                "precinct_id": "p2",
                "declared_choice": "tsikhanouskaya",
                "submission_id": str(uuid.uuid4()),
            },
            files={"photo": ("b.jpg", ballot_photo(["tsikhanouskaya"], seed=seed), "image/jpeg")},
            headers={"Authorization": f"Bearer {token}"},
        )

    sent, limited = send(3), send(4)
    assert sent.status_code == 202 and limited.status_code == 429
    answers = [asked.text, confirmed.text, sent.text, limited.text]
    dump = _dump(database)
    assert "voter_challenges" in dump and "device_tokens" in dump  # the dump has them
    assert "rate_limits" in dump
    logged = "\n".join(r.getMessage() for r in caplog.records)
    codes = get_settings().dev_codes_path.read_text()
    for where in (dump, logged, codes, *answers):
        for spelling in SPELLINGS:
            assert spelling not in where
        assert "203.0.113" not in where
    assert token not in dump and token.removeprefix("golos_vt_") not in dump
    key = service.voter_key(get_settings().voter_key(), ELECTION, PHONE)
    assert key.hex() not in logged and token not in logged


def test_the_development_verifier_writes_codes_not_numbers(tmp_path: Path) -> None:
    path = tmp_path / "codes.jsonl"
    verifier = load_verifier("dev", path)
    assert isinstance(verifier, DevVerifier)
    challenge = uuid.uuid4()
    verifier.send_code("+375297654321", "012345", challenge)
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"challenge_id": str(challenge), "code": "012345"}
    ]
    assert dev_code(path, str(challenge)) == "012345"
    assert dev_code(tmp_path / "none.jsonl", str(challenge)) is None


class _Gateway:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send_code(self, phone: str, code: str, challenge_id: uuid.UUID) -> None:
        self.sent.append((phone, code))


def test_a_gateway_is_named_by_its_module_and_class(tmp_path: Path) -> None:
    gateway = load_verifier(f"{__name__}:_Gateway", tmp_path / "unused")
    assert isinstance(gateway, _Gateway)
    with pytest.raises(ValueError, match=r"package\.module:Class"):
        load_verifier("sms", tmp_path)
    with pytest.raises(TypeError, match="send_code"):
        load_verifier("pathlib:PurePath", tmp_path)


def test_starting_with_the_development_verifier_is_loud(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    warn_if_development(get_settings().model_copy(update={"verifier": "dev"}))
    assert any("NOT sent" in r.getMessage() for r in caplog.records)
    caplog.clear()
    warn_if_development(get_settings().model_copy(update={"verifier": "x.y:Z"}))
    assert not caplog.records
