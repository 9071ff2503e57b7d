"""Fixtures of the review tests: submissions in review with stored photos, flags,
observers' and admins' accounts (``person``), made through the platform's own
functions, and the helpers the decision tests share (``station_tally``,
``status_of``)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
import pytest
from PIL import Image

from api.accounts import service as accounts
from api.accounts.schemas import Principal, Role, Via
from api.submissions import duplicates
from api.submissions import repository as submissions
from api.submissions.schemas import Status
from infra.settings import get_settings
from infra.storage import photo_store
from tally import repository as tallies
from tally.proof import Finding
from tally.vocab import Flag, Source

ELECTION = "by-2020-president"
PASSWORD = "correct horse battery staple"
People = Callable[[str], Principal]


@pytest.fixture
def person(conn: psycopg.Connection) -> People:
    """An account of the given role (observer1, observer2, admin1 ...) as a principal."""
    made: dict[str, int] = {}

    def make(role: str) -> Principal:
        made[role] = made.get(role, 0) + 1
        name = f"{role}{made[role]}"
        user = accounts.add_user(conn, name, Role(role), PASSWORD, actor="test")
        conn.commit()
        return Principal(role=user.role, via=Via.API_TOKEN, user_id=user.id, username=name)

    return make


def station_tally(conn: psycopg.Connection, precinct: str = "p1") -> tuple[dict[str, int], int]:
    """The station's photo tally: votes per option and voters."""
    return tallies.station_photo_tally(conn, ELECTION, precinct)


def status_of(conn: psycopg.Connection, sid: uuid.UUID) -> tuple[str, list[str], list[str] | None]:
    """A submission's status, reasons and marks."""
    found = submissions.get_status(conn, sid)
    assert found is not None
    return found.status, found.reasons, found.marks


def photo_bytes(seed: int) -> bytes:
    """A small JPEG, different for each seed (a stand-in for a ballot photo)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(60, 40, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG")
    return out.getvalue()


MakeSubmission = Callable[..., uuid.UUID]


@pytest.fixture
def make_submission(conn: psycopg.Connection, loaded: str) -> MakeSubmission:
    """Stores a photo and records a submission with the given outcome, as the upload
    and the pipeline do (``submissions.repository``): by default a choice mismatch
    in review at p1, read as lukashenko, declared tsikhanouskaya."""
    store = photo_store(get_settings())
    made = 0

    def make(
        *,
        precinct: str = "p1",
        declared: list[str] | None = None,
        marks: list[str] | None = None,
        reasons: list[str] | None = None,
        status: Status = Status.REVIEW,
        voter: bytes | None = None,
        fingerprint: int | None = None,
        near_duplicate_of: uuid.UUID | None = None,
        distance: int | None = None,
        reading: dict[str, Any] | None = None,
    ) -> uuid.UUID:
        nonlocal made
        made += 1
        sid = uuid.uuid4()
        key = store.put(photo_bytes(made * 7919 + hash(sid) % 1000))
        voter_key = voter or uuid.uuid4().bytes * 2
        declared_choice = declared or ["tsikhanouskaya"]
        assert submissions.insert(
            conn, sid, ELECTION, precinct, declared_choice, f"digest-{sid}", key, voter_key
        )
        submissions.claim_photo(conn, ELECTION, key, sid)
        read = ["lukashenko"] if marks is None else marks
        verdict = "valid" if read else "unreadable"
        submissions.record_decision(
            conn,
            sid,
            status,
            ["choice_mismatch"] if reasons is None else reasons,
            read or None,
            json.dumps(
                reading or {"verdict": verdict, "marks": read, "confidence": 0.9, "reasons": []}
            ),
        )
        if status == Status.VERIFIED:
            tallies.count_ballot(conn, ELECTION, precinct, read, +1)
        if fingerprint is not None:
            match = (
                duplicates.Match(near_duplicate_of, distance or 0) if near_duplicate_of else None
            )
            duplicates.record_fingerprint(conn, ELECTION, sid, fingerprint, match)
        conn.commit()
        return sid

    return make


@pytest.fixture
def flags(conn: psycopg.Connection, loaded: str) -> dict[str, int]:
    """Stored flags of the small election: a proof flag at p1 (crowd 3 against
    official 1, excess 2), a bigger one at p2 (crowd 205 against 200), and two
    statistical ones at p3 and p1; returns their ids by name."""
    findings = [
        Finding("p1", Flag.CROWD_EXCEEDS_OFFICIAL, "tsikhanouskaya", Source.PHOTOS, 3, 1, "3 > 1"),
        Finding(
            "p2",
            Flag.CROWD_EXCEEDS_OFFICIAL,
            "tsikhanouskaya",
            Source.PHOTOS,
            205,
            200,
            "205 > 200",
        ),
        Finding(
            "p3",
            Flag.TURNOUT_OUTLIER,
            "",
            Source.PROTOCOL,
            None,
            None,
            "turnout 99%",
            statistic=4.0,
            p_value=0.001,
            q_value=0.02,
        ),
        Finding(
            "p1",
            Flag.INTEGER_PERCENT,
            "",
            Source.PROTOCOL,
            None,
            None,
            "50.0%",
            statistic=1.0,
            p_value=0.01,
            q_value=0.2,
        ),
    ]
    tallies.store_flags(conn, ELECTION, findings)
    conn.commit()
    return {
        f"{r.precinct_id}:{r.flag}": r.id
        for r in tallies.review_flag_page(
            conn,
            ELECTION,
            precinct_ids=None,
            flag=None,
            kind=None,
            status=None,
            after=None,
            limit=100,
        )
    }
