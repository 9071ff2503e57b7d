"""What the phone app does: verify the voter's phone once, then keep submissions on
the device until the server has them.

Verification (``GolosClient.verify``): the app asks the platform to send a one-time
code to the phone, reads it (from the SMS or the messenger; the demo's simulated
phones read the development verifier's file) and exchanges it for a device token,
which it keeps and sends with every submission (``Authorization: Bearer``).

During a shutdown a phone may be offline for days. Each submission waits in an
on-device outbox, with its client-generated id and the device token, and is
re-sent until the server answers; re-sending is safe because the server
de-duplicates on that id.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from infra.files import atomic_write_bytes, atomic_writer, sync_directory

# Answers after which re-sending cannot help: the submission itself is wrong, or
# the device token is (unknown or expired: the voter must verify again).
FINAL_CLIENT_ERRORS = frozenset({400, 401, 403, 404, 409, 413, 415, 422})


class VerificationFailed(Exception):
    """The phone could not be verified (refused, or no code came)."""


@dataclass(frozen=True)
class Submission:
    submission_id: str
    election_id: str
    precinct_id: str
    declared_choice: str
    device_token: str  # from GolosClient.verify: who sends it, for the server


def _retry_after(response: httpx.Response, default: float) -> float:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else default


@dataclass(frozen=True)
class Outcome:
    submission_id: str
    http_status: int
    status: str
    reasons: list[str]
    attempts: int


class GolosClient:
    def __init__(
        self, base_url: str, transport: httpx.BaseTransport | None = None, timeout: float = 30.0
    ) -> None:
        self.http = httpx.Client(base_url=base_url, transport=transport, timeout=timeout)

    def verify(
        self,
        election_id: str,
        phone: str,
        read_code: Callable[[str], str | None],
        max_attempts: int = 8,
        backoff: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> str:
        """Verify ``phone`` for the election; returns the device token.

        ``read_code(challenge_id)`` is the phone's inbox: the code, or None while it
        has not arrived. Lost requests are re-sent; a confirmation whose answer was
        lost (the code is then used up) starts again with a new code.
        """
        for attempt in range(max_attempts):
            if attempt:
                sleep(backoff * 2 ** (attempt - 1))
            challenge = self._send_json(
                f"/v1/elections/{election_id}/verification", {"phone": phone}, sleep, backoff
            )
            if challenge is None:
                continue
            challenge_id = str(challenge["challenge_id"])
            code = read_code(challenge_id)
            for wait in range(max_attempts):
                if code is not None:
                    break
                sleep(backoff * 2**wait)
                code = read_code(challenge_id)
            if code is None:
                raise VerificationFailed("no code arrived")
            confirmed = self._send_json(
                f"/v1/elections/{election_id}/verification/{challenge_id}",
                {"code": code},
                sleep,
                backoff,
            )
            if confirmed is not None:
                return str(confirmed["device_token"])
        raise VerificationFailed(f"not verified after {max_attempts} attempts")

    def _send_json(
        self,
        path: str,
        body: dict[str, str],
        sleep: Callable[[float], None],
        backoff: float,
        tries: int = 6,
    ) -> dict[str, Any] | None:
        """POST with retries over a lossy network; the answer's JSON, or None when the
        request may have been consumed (410: start again); VerificationFailed when
        the server refuses for good."""
        for attempt in range(tries):
            try:
                response = self.http.post(path, json=body)
            except httpx.TransportError:
                sleep(backoff * 2**attempt)
                continue
            if response.status_code < 300:
                answer: dict[str, Any] = response.json()
                return answer
            if response.status_code == 410:
                return None  # the code was used by a request whose answer was lost
            if response.status_code >= 500:
                sleep(_retry_after(response, backoff * 2**attempt))
                continue
            raise VerificationFailed(f"{response.status_code}: {response.text}")
        return None

    def submit(self, submission: Submission, photo: bytes) -> httpx.Response:
        data = asdict(submission)
        token = data.pop("device_token")
        return self.http.post(
            "/v1/submissions",
            data=data,
            files={"photo": ("ballot.jpg", photo, "image/jpeg")},
            headers={"Authorization": f"Bearer {token}"},
        )

    def status(self, submission_id: str, device_token: str) -> dict[str, Any]:
        response = self.http.get(
            f"/v1/submissions/{submission_id}",
            headers={"Authorization": f"Bearer {device_token}"},
        )
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def close(self) -> None:
        self.http.close()


class Outbox:
    """Submissions persisted on the device until delivered (one folder per submission)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, submission: Submission, photo: bytes) -> None:
        """Keep a submission on the device. When this returns, it survives a crash or
        a flat battery: each file is written whole, synced, and renamed into place."""
        item = self.folder / submission.submission_id
        try:
            item.mkdir()
        except FileExistsError:
            pass
        else:
            sync_directory(self.folder)
        atomic_write_bytes(item / "photo.jpg", photo, durable=True)
        record = {**asdict(submission), "queued_ns": time.time_ns()}
        # The record last: an item without it was never completely queued.
        with atomic_writer(item / "submission.json", "w", durable=True) as handle:
            json.dump(record, handle)

    def pending(self) -> list[str]:
        """Undelivered submissions, oldest first: when a voter changed their mind
        offline, the later ballot must reach the server last, and count."""
        records = []
        for item in self.folder.iterdir():
            record = item / "submission.json"
            if record.exists():
                records.append((json.loads(record.read_text())["queued_ns"], item.name))
        return [name for _, name in sorted(records)]

    def send(
        self,
        submission_id: str,
        client: GolosClient,
        max_attempts: int = 8,
        backoff: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Outcome | None:
        """Send one item, retrying with exponential backoff; None if still undelivered."""
        item = self.folder / submission_id
        record = json.loads((item / "submission.json").read_text())
        record.pop("queued_ns", None)
        submission = Submission(**record)
        photo = (item / "photo.jpg").read_bytes()
        for attempt in range(1, max_attempts + 1):
            try:
                response = client.submit(submission, photo)
            except httpx.TransportError:
                response = None
            if response is not None and (
                response.status_code < 300 or response.status_code in FINAL_CLIENT_ERRORS
            ):
                body = response.json()
                detail = body.get("detail") if response.status_code >= 300 else None
                outcome = Outcome(
                    submission_id=submission_id,
                    http_status=response.status_code,
                    status=body.get("status", "refused") if detail is None else "refused",
                    reasons=body.get("reasons", []) if detail is None else [str(detail)],
                    attempts=attempt,
                )
                # The record first: a crash half-way leaves an item that is no longer
                # pending, never a pending record without its photo.
                (item / "submission.json").unlink()
                for f in item.iterdir():
                    f.unlink()
                item.rmdir()
                return outcome
            sleep(backoff * 2 ** (attempt - 1))
        return None


class FlakyTransport(httpx.BaseTransport):
    """A network that loses some exchanges, like a throttled 2G link. Deterministic.

    Every ``drop_every``-th request never reaches the server; with
    ``lose_answers`` it does reach it, and the answer is what is lost.
    """

    def __init__(
        self, inner: httpx.BaseTransport, drop_every: int, lose_answers: bool = False
    ) -> None:
        self.inner = inner
        self.drop_every = drop_every
        self.lose_answers = lose_answers
        self.count = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.count += 1
            drop = bool(self.drop_every) and self.count % self.drop_every == 0
        if drop and not self.lose_answers:
            raise httpx.ConnectError("network unreachable (simulated)", request=request)
        response = self.inner.handle_request(request)
        if drop:
            response.read()
            raise httpx.ReadError("connection lost before the answer (simulated)", request=request)
        return response
