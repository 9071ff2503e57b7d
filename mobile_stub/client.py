"""What the phone app does: verify the voter's phone once, then keep submissions on
the device until the server has them.

Verification (``GolosClient.verify``): the app asks the platform to send a one-time
code to the phone, reads it (from the SMS or the messenger; the demo's simulated
phones read the development verifier's file) and exchanges it for a device token,
which it keeps and sends with every submission (``Authorization: Bearer``).

During a shutdown a phone may be offline for days. Each submission waits in the
on-device outbox (``mobile_stub.outbox``), with its client-generated id and the
device token, and is re-sent until the server answers for good; re-sending is safe
because the server de-duplicates on that id.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from mobile_stub.retry import parse_retry_after


class VerificationFailed(Exception):
    """The phone could not be verified (refused, or no code came)."""


@dataclass(frozen=True)
class Submission:
    submission_id: str
    election_id: str
    precinct_id: str
    declared_choice: str
    device_token: str  # from GolosClient.verify: who sends it, for the server


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
            # A 5xx passes. A 409 here is final (the election takes no photos) and
            # a 429 limits codes per phone for minutes: the voter is told
            # (VerificationFailed), not kept waiting.
            if response.status_code >= 500:
                wait = parse_retry_after(response.headers.get("Retry-After"), time.time())
                sleep(backoff * 2**attempt if wait is None else wait)
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
