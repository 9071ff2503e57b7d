"""The phone's outbox: every submission stays on the device, in one SQLite file,
until the server has it, across restarts, flat batteries and days offline.

Each submission has a state::

    queued ──send──▶ sending ──2xx──────────────▶ delivered (receipt kept, photo dropped)
       ▲                │ ───400/401/403/404/413/415/422──▶ failed (server's field, message)
       └── retry later ─┘  (409, 429, 5xx, no answer: same id, after a backoff)

Every change of state is one SQLite transaction (WAL journal, ``synchronous=FULL``:
when ``add`` returns, the submission and its photo survive a power cut). The photo
is stored in the row itself, so a row never points at a missing or half-written file.

``sending`` is a claim: only one request per submission is in flight at a time,
across threads. A process that dies mid-send leaves the row ``sending``; opening the
outbox (the app's start) puts such rows back in the queue, and the re-send carries
the same submission id, which the server de-duplicates (a 200 "replayed" answer).
One app process owns the outbox file.

A failed submission keeps its photo (the voter sees what was refused and why, and
may take the photo again); a delivered one keeps only the server's receipt.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mobile_stub.client import GolosClient, Submission
from mobile_stub.retry import Backoff, Decision, decide, next_delay, parse_retry_after

DB_NAME = "outbox.sqlite3"

QUEUED, SENDING, DELIVERED, FAILED = "queued", "sending", "delivered", "failed"

# How long a concurrent writer waits for the file's write lock before failing: far
# longer than any of the outbox's transactions (a row, a photo of a few MB).
BUSY_TIMEOUT_MS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,      -- the order they were taken
    submission_id TEXT NOT NULL UNIQUE,
    election_id TEXT NOT NULL,
    precinct_id TEXT NOT NULL,
    declared_choice TEXT NOT NULL,
    device_token TEXT NOT NULL,
    photo BLOB,                                 -- NULL once delivered
    state TEXT NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'sending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    queued_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    http_status INTEGER,
    receipt TEXT,                               -- the server's answer (JSON), once delivered
    status_url TEXT,
    error_field TEXT,
    error_message TEXT
);
CREATE TABLE IF NOT EXISTS devices (
    election_id TEXT PRIMARY KEY,
    device_token TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Outcome:
    """Where a submission stands once the server has answered for good."""

    submission_id: str
    http_status: int
    status: str  # the server's status (e.g. "received"), or "refused"
    reasons: list[str]
    attempts: int
    state: str = DELIVERED
    status_url: str | None = None
    error_field: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class Item:
    """One submission in the outbox, as the app shows it."""

    submission_id: str
    election_id: str
    precinct_id: str
    declared_choice: str
    state: str
    attempts: int
    queued_at: float
    next_attempt_at: float | None
    last_error: str | None
    http_status: int | None
    receipt: dict[str, Any] | None
    status_url: str | None
    error_field: str | None
    error_message: str | None


def _error_of(body: Any, http_status: int) -> tuple[str, str]:
    """The server's field and message from an error body ``{"detail": {"field",
    "message"}}`` (FastAPI's own validation errors: a list). Pure."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        return str(detail.get("field", "")), str(detail.get("message", ""))
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        loc = first.get("loc") or [""]
        return str(loc[-1]), str(first.get("msg", ""))
    return "", str(detail) if detail is not None else f"HTTP {http_status}"


class Outbox:
    """Submissions kept on the device until the server has them (``folder/outbox.sqlite3``).

    ``clock`` (Unix seconds) and ``jitter`` (uniform in [0, 1)) are injectable so
    that tests never sleep.
    """

    def __init__(
        self,
        folder: Path,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.folder = folder
        self.path = folder / DB_NAME
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.jitter = jitter
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1e3
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._db.executescript(_SCHEMA)  # idempotent; before any transaction of ours
        with self._transaction() as db:
            # The app starts: a send that was in flight when it stopped never finished.
            db.execute(
                "UPDATE submissions SET state = 'queued', last_error = ? WHERE state = 'sending'",
                ("interrupted: the app stopped while sending",),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (taking the file's write lock at once), committed
        whole or not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, args))

    # -- what the app puts in and reads back -------------------------------------

    def add(self, submission: Submission, photo: bytes) -> None:
        """Keep a submission on the device. When this returns it survives a crash or
        a flat battery. Adding the same submission again changes nothing; the same
        id with other content is refused (ValueError): each ballot has its own id."""
        values = (
            submission.submission_id,
            submission.election_id,
            submission.precinct_id,
            submission.declared_choice,
            submission.device_token,
        )
        for value in values:
            if not isinstance(value, str):
                raise TypeError(f"submission fields are text, not {type(value).__name__}")
        if not submission.device_token:
            # Sent without one it could never be accepted (and an empty
            # "Bearer " header is not even a valid request): verify first.
            raise ValueError("the phone is not verified for this election: no device token")
        now = self.clock()
        with self._transaction() as db:
            existing = db.execute(
                "SELECT election_id, precinct_id, declared_choice, device_token, photo, state"
                " FROM submissions WHERE submission_id = ?",
                (submission.submission_id,),
            ).fetchone()
            if existing is not None:
                same = tuple(existing)[:4] == values[1:] and (
                    existing["photo"] == photo or existing["state"] == DELIVERED
                )
                if not same:
                    raise ValueError(
                        f"submission {submission.submission_id} is already in the outbox "
                        "with other content; use a new id"
                    )
                return
            db.execute(
                "INSERT INTO submissions (submission_id, election_id, precinct_id,"
                " declared_choice, device_token, photo, queued_at, next_attempt_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, photo, now, now),
            )

    def pending(self) -> list[str]:
        """Undelivered submissions (queued or being sent), oldest first: when a voter
        changed their mind offline, the later ballot must reach the server last, and
        count."""
        rows = self._read(
            "SELECT submission_id FROM submissions WHERE state IN ('queued', 'sending')"
            " ORDER BY seq"
        )
        return [r["submission_id"] for r in rows]

    def items(self) -> list[Item]:
        """Every submission and its state, oldest first."""
        return [
            _item(r) for r in self._read(f"SELECT {_ITEM_COLUMNS} FROM submissions ORDER BY seq")
        ]

    def state(self, submission_id: str) -> Item:
        """One submission's state; KeyError if the outbox never had it."""
        rows = self._read(
            f"SELECT {_ITEM_COLUMNS} FROM submissions WHERE submission_id = ?", (submission_id,)
        )
        if not rows:
            raise KeyError(submission_id)
        return _item(rows[0])

    def receipt(self, submission_id: str) -> dict[str, Any] | None:
        """The server's answer to a delivered submission (with its ``status_url``)."""
        return self.state(submission_id).receipt

    def next_due(self) -> float | None:
        """When the next submission may be sent (Unix seconds), or None: the earliest,
        over voters, of their oldest undelivered submission's time (``send_due`` sends
        each voter's in order); a voter whose oldest is being sent has none."""
        rows = self._read(
            "SELECT min(s.next_attempt_at) AS t FROM submissions s WHERE s.state = 'queued'"
            " AND NOT EXISTS (SELECT 1 FROM submissions e WHERE e.seq < s.seq"
            " AND e.election_id = s.election_id AND e.device_token = s.device_token"
            " AND e.state IN ('queued', 'sending'))"
        )
        value = rows[0]["t"]
        return None if value is None else float(value)

    def save_device_token(self, election_id: str, device_token: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO devices VALUES (?, ?) ON CONFLICT (election_id)"
                " DO UPDATE SET device_token = excluded.device_token",
                (election_id, device_token),
            )

    def device_token(self, election_id: str) -> str | None:
        rows = self._read("SELECT device_token FROM devices WHERE election_id = ?", (election_id,))
        return str(rows[0]["device_token"]) if rows else None

    # -- sending -----------------------------------------------------------------

    def send(
        self,
        submission_id: str,
        client: GolosClient,
        max_attempts: int = 8,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Outcome | None:
        """Send one submission now, retrying (same id) with backoff up to
        ``max_attempts`` times; waits first if the server asked the phone to come
        back later. The final outcome (delivered, or refused for good), or None while
        it stays queued, or while another thread is sending it."""
        for _ in range(max_attempts):
            due = self.state(submission_id).next_attempt_at
            if due is not None and (wait := due - self.clock()) > 0:
                sleep(wait)
            result = self._attempt(submission_id, client)
            if not isinstance(result, float):
                return result
        return None

    def send_due(self, client: GolosClient) -> list[Outcome]:
        """One attempt for each queued submission whose time has come, oldest first
        (the app calls this whenever it wakes or the network returns); the outcomes
        of those that are now final.

        In order, per voter (election and device token): a submission is sent only
        once every earlier one of the same voter has been delivered or refused. A voter who re-votes
        (a new photo, a new id) needs the server to receive the later ballot last,
        since the later one counts; an earlier one still waiting for its retry (409,
        5xx, no network) holds the later ones back."""
        now = self.clock()
        rows = self._read(
            "SELECT submission_id, election_id, device_token, state, next_attempt_at"
            " FROM submissions WHERE state IN ('queued', 'sending') ORDER BY seq"
        )
        blocked: set[tuple[str, str]] = set()
        outcomes = []
        for row in rows:
            voter = (row["election_id"], row["device_token"])
            if voter in blocked:
                continue
            if row["state"] == SENDING or row["next_attempt_at"] > now:
                blocked.add(voter)
                continue
            result = self._attempt(row["submission_id"], client)
            if isinstance(result, Outcome):
                outcomes.append(result)
            else:
                blocked.add(voter)
        return outcomes

    def network_returned(self) -> int:
        """The phone's system says the network is back: every submission waiting
        only because the network was unreachable is due at once (a server's
        ``Retry-After`` and its backoff after a server's answer still hold). The
        number made due. The app then calls ``send_due``."""
        now = self.clock()
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE submissions SET next_attempt_at = ? WHERE state = 'queued'"
                " AND next_attempt_at > ? AND last_error LIKE 'network:%'",
                (now, now),
            ).rowcount
        return int(changed)

    def _attempt(self, submission_id: str, client: GolosClient) -> Outcome | float | None:
        """One request: the final outcome, the seconds to wait before the next try,
        or None when another thread has the submission in flight."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT * FROM submissions WHERE submission_id = ?", (submission_id,)
            ).fetchone()
            if row is None:
                raise KeyError(submission_id)
            if row["state"] in (DELIVERED, FAILED):
                return _outcome(row)
            if row["state"] == SENDING:
                return None
            db.execute(
                "UPDATE submissions SET state = 'sending', attempts = attempts + 1"
                " WHERE submission_id = ?",
                (submission_id,),
            )
        attempts = int(row["attempts"]) + 1
        submission = Submission(
            row["submission_id"],
            row["election_id"],
            row["precinct_id"],
            row["declared_choice"],
            row["device_token"],
        )
        try:
            response: httpx.Response | None = client.submit(submission, bytes(row["photo"]))
            error = None
        except httpx.TransportError as exc:
            response, error = None, f"network: {type(exc).__name__}: {exc}"
        except Exception:
            self._requeue(submission_id, self.clock(), "interrupted by an error in the app")
            raise
        status = None if response is None else response.status_code
        decision = decide(status)
        body: Any = None
        if response is not None:
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text[:500]}
        if decision is Decision.RETRY:
            now = self.clock()
            retry_after = None
            if response is not None:
                retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
                field, message = _error_of(body, response.status_code)
                error = f"HTTP {response.status_code}: {message}"
            delay = next_delay(attempts, self.jitter(), self.backoff, retry_after)
            self._requeue(submission_id, now + delay, error)
            return delay
        assert response is not None
        receipt = body if isinstance(body, dict) else {"answer": body}
        with self._transaction() as db:
            if decision is Decision.DELIVERED:
                db.execute(
                    "UPDATE submissions SET state = 'delivered', http_status = ?, receipt = ?,"
                    " status_url = ?, photo = NULL, last_error = NULL WHERE submission_id = ?",
                    (status, json.dumps(receipt), receipt.get("status_url"), submission_id),
                )
            else:
                field, message = _error_of(body, response.status_code)
                db.execute(
                    "UPDATE submissions SET state = 'failed', http_status = ?, error_field = ?,"
                    " error_message = ?, last_error = ? WHERE submission_id = ?",
                    (status, field, message, f"HTTP {status}: {message}", submission_id),
                )
            row = db.execute(
                "SELECT * FROM submissions WHERE submission_id = ?", (submission_id,)
            ).fetchone()
        return _outcome(row)

    def _requeue(self, submission_id: str, at: float, error: str | None) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE submissions SET state = 'queued', next_attempt_at = ?, last_error = ?"
                " WHERE submission_id = ? AND state = 'sending'",
                (at, error, submission_id),
            )


_ITEM_COLUMNS = (
    "submission_id, election_id, precinct_id, declared_choice, state, attempts, queued_at,"
    " next_attempt_at, last_error, http_status, receipt, status_url, error_field, error_message"
)


def _item(row: sqlite3.Row) -> Item:
    values = dict(row)
    values["receipt"] = json.loads(values["receipt"]) if values["receipt"] else None
    if values["state"] not in (QUEUED, SENDING):
        values["next_attempt_at"] = None
    return Item(**values)


def _outcome(row: sqlite3.Row) -> Outcome:
    if row["state"] == DELIVERED:
        receipt = json.loads(row["receipt"])
        return Outcome(
            submission_id=row["submission_id"],
            http_status=row["http_status"],
            status=str(receipt.get("status", "")),
            reasons=list(receipt.get("reasons", [])),
            attempts=row["attempts"],
            state=DELIVERED,
            status_url=row["status_url"],
        )
    return Outcome(
        submission_id=row["submission_id"],
        http_status=row["http_status"],
        status="refused",
        reasons=[f"{row['error_field']}: {row['error_message']}"],
        attempts=row["attempts"],
        state=FAILED,
        error_field=row["error_field"],
        error_message=row["error_message"],
    )
