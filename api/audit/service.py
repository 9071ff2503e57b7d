"""The audit trail: an append-only, hash-chained log of every review decision,
override and account change.

Each entry's hash is the SHA-256 of its own fields and the previous entry's hash
(:func:`entry_hash`), so changing, removing or reordering any entry breaks every
link after it; :func:`verify` walks the chain and names the first broken link.
The database refuses UPDATE, DELETE and TRUNCATE on the table (migration 0007);
the chain catches a change to an entry in the middle that someone with the
owner's rights makes after disabling that. What the chain alone cannot catch is
someone with those rights cutting off the newest entries, or rewriting an entry
and recomputing every hash after it: for that, the chain's *head* (its last seq
and hash, shown by ``golos audit verify`` and on /admin/audit) is written down
away from the server now and then, and ``golos audit verify --head SEQ:HASH``
checks that the stored chain still holds that entry unchanged.

Concurrency: :func:`append` takes a transaction-scoped advisory lock before it
reads the last entry, so appends are serialised and each links to the entry
committed before it; the lock is released when the caller's transaction commits,
which also makes the entry part of the same transaction as the decision it records
(a decision rolled back leaves no entry, an entry never lacks its decision).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from api.audit import repository
from api.audit.repository import Entry

GENESIS = "0" * 64


def entry_hash(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    detail: dict[str, Any],
    prev_hash: str,
) -> str:
    """The hash of one entry: SHA-256 over a canonical JSON of its fields. Pure."""
    canonical = json.dumps(
        {
            "seq": seq,
            # Microseconds: what the database keeps, so that no change to the time
            # of an entry, however small, leaves its hash unchanged.
            "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "subject": subject,
            "detail": detail,
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def append(
    conn: psycopg.Connection, actor: str, action: str, subject: str, detail: dict[str, Any]
) -> Entry:
    """Append an entry within the caller's transaction (see the module docstring).

    ``actor`` is an account's username (never a voter's identity); ``action`` a
    dotted name such as ``review.propose``; ``subject`` what it is about, such as
    ``submission:<uuid>``, ``flag:<id>`` or ``user:<name>``; ``detail`` a small JSON
    object of strings and integers.
    """
    repository.lock_for_append(conn)
    last = repository.last(conn)
    seq, prev = (1, GENESIS) if last is None else (last[0] + 1, last[1])
    at = repository.now(conn)
    digest = entry_hash(seq, at, actor, action, subject, detail, prev)
    entry = Entry(seq, at, actor, action, subject, detail, prev, digest)
    repository.insert(conn, entry)
    return entry


@dataclass(frozen=True)
class ChainCheck:
    """The outcome of :func:`check_chain`: how many entries were good, and the first
    broken link (its seq and what is wrong) if any."""

    checked: int
    broken_at: int | None = None
    problem: str | None = None
    # The last entry of an intact chain: write it down away from the server.
    head_seq: int | None = None
    head_hash: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def parse_head(text: str) -> tuple[int, str]:
    """``"SEQ:HASH"`` as written down from an earlier check. Pure; ValueError if not."""
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or int(seq) < 1 or len(digest) != 64:
        raise ValueError("a head is SEQ:HASH, e.g. 42:3f5a... (64 hex digits)")
    int(digest, 16)
    return int(seq), digest.lower()


def check_chain(entries: Iterable[Entry], head: tuple[int, str] | None = None) -> ChainCheck:
    """Walk entries in seq order and find the first broken link. Pure.

    A link is broken when an entry's seq is not the one after its predecessor's
    (an entry removed or inserted), its prev_hash is not its predecessor's hash
    (reordered or removed), or its hash does not match its own fields (changed).
    With ``head`` (a seq and hash written down earlier), the chain must also still
    reach that seq with that very hash (not cut short, not recomputed).
    """
    expected_seq, prev = 1, GENESIS
    checked = 0
    for entry in entries:
        if head is not None and entry.seq == head[0] and entry.hash != head[1]:
            return ChainCheck(
                checked, entry.seq, "differs from the head written down earlier (rewritten)"
            )
        if entry.seq != expected_seq:
            return ChainCheck(checked, entry.seq, f"entry {expected_seq} is missing")
        if entry.prev_hash != prev:
            return ChainCheck(checked, entry.seq, "does not link to the entry before it")
        recomputed = entry_hash(
            entry.seq,
            entry.at,
            entry.actor,
            entry.action,
            entry.subject,
            entry.detail,
            entry.prev_hash,
        )
        if recomputed != entry.hash:
            return ChainCheck(checked, entry.seq, "its content was changed after it was written")
        checked += 1
        expected_seq, prev = entry.seq + 1, entry.hash
    if head is not None and checked < head[0]:
        return ChainCheck(
            checked, checked + 1, f"the chain ends before entry {head[0]} (cut short)"
        )
    return ChainCheck(checked, head_seq=checked or None, head_hash=prev if checked else None)


def verify(conn: psycopg.Connection, head: tuple[int, str] | None = None) -> ChainCheck:
    """Check the whole stored chain (read in batches), and against ``head`` if given."""
    return check_chain(repository.entries(conn), head)


def recent(
    conn: psycopg.Connection, limit: int = 50, subject_prefix: str | None = None
) -> list[Entry]:
    return repository.recent(conn, limit, subject_prefix)
