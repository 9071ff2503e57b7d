"""Fixtures of the protocols tests: the test election with a protocol template,
protocol photos (real JPEGs with EXIF and GPS), readings as the reader gives them,
photos uploaded and read through the platform's own functions, and accounts as
principals."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from PIL import Image, ImageDraw

from api.accounts import service as accounts
from api.accounts.schemas import Principal, Role, Via
from api.protocols import service
from api.protocols.schemas import NewProtocolPhoto, PhotoStatus, ProtocolReading, Uploader
from infra.settings import get_settings
from infra.storage import photo_store
from tests.conftest import OPTIONS, write_election

ELECTION = "by-2020-president"
PASSWORD = "correct horse battery staple"
LINES = ["registered", "ballots_issued", "ballots_cast", "invalid"]
FIELDS = [*LINES, *OPTIONS]
# The p1 protocol of the test election's official file (tests/conftest.py: official_csv),
# consistent with its checks (cast = invalid + options, cast <= issued <= registered).
GOOD = {
    "registered": 1000,
    "ballots_issued": 306,
    "ballots_cast": 306,
    "invalid": 5,
    "dmitriyev": 0,
    "kanapatskaya": 0,
    "lukashenko": 300,
    "tsikhanouskaya": 1,
    "charachen": 0,
    "against_all": 0,
}
# The field cells on the test photos (x, y, w, h), one line per field.
PHOTO_SIZE = (900, 1400)


def cell(index: int) -> tuple[int, int, int, int]:
    return (560, 120 + index * 120, 260, 80)


def quad(index: int) -> list[list[float]]:
    x, y, w, h = cell(index)
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]


def template_json() -> dict[str, Any]:
    return {
        "format": "protocol-template/1",
        "election": ELECTION,
        "reference_image": "reference.png",
        "ocr_languages": "rus+bel",
        "header_keywords": ["ПРОТОКОЛ"],
        "precinct_box": [600, 20, 200, 60],
        "fields": [
            {"id": f, "label": f"{i + 1}. {f.replace('_', ' ').title()}", "box": list(cell(i))}
            for i, f in enumerate(FIELDS)
        ],
        "checks": [
            {"left": ["ballots_cast"], "op": "==", "right": ["invalid", "@options"]},
            {"left": ["ballots_cast"], "op": "<=", "right": ["ballots_issued"]},
            {"left": ["ballots_issued"], "op": "<=", "right": ["registered"]},
        ],
    }


@pytest.fixture
def election_dir(tmp_path: Path, ballot_dir: Path) -> Path:
    """The test election (tests/conftest.py) with a protocol template: ``loaded`` and
    ``client`` load this one."""
    folder = write_election(tmp_path / "election", ballot_dir)
    (folder / "protocol").mkdir()
    (folder / "protocol" / "template.json").write_text(
        json.dumps(template_json(), ensure_ascii=False), encoding="utf-8"
    )
    # The form's reference image: blank, the size of the test photos (the tests here
    # give the readings themselves; the loader only checks the boxes fit in it).
    Image.new("L", PHOTO_SIZE, 255).save(folder / "protocol" / "reference.png")
    return folder


def _exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SECRET-MAKER"
    exif[0x8825] = {1: "N", 2: (53.0, 54.0, 1.5), 3: "E", 4: (27.0, 33.0, 2.5)}  # GPS
    return exif.tobytes()


def protocol_jpeg(seed: int = 0, figures: Mapping[str, int] | None = None) -> bytes:
    """A photo of a protocol form (a JPEG carrying EXIF with GPS): one ruled line per
    field, its number written in its cell; different bytes for each seed."""
    figures = GOOD if figures is None else figures
    image = Image.new("RGB", PHOTO_SIZE, (245, 245, 240))
    draw = ImageDraw.Draw(image)
    draw.text((40, 40), f"PROTOCOL {seed}", fill=(0, 0, 0))
    for i, field in enumerate(FIELDS):
        x, y, w, h = cell(i)
        draw.text((40, y + 30), field, fill=(0, 0, 0))
        draw.rectangle((x, y, x + w, y + h), outline=(0, 0, 0), width=3)
        draw.text((x + 20, y + 30), str(figures.get(field, "")), fill=(20, 20, 120))
    rng = np.random.default_rng(seed)
    noise = rng.integers(-6, 7, size=(PHOTO_SIZE[1], PHOTO_SIZE[0], 3))
    pixels = np.clip(np.asarray(image, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90, exif=_exif())
    return out.getvalue()


def reading(
    values: Mapping[str, int | None],
    *,
    verdict: str | None = None,
    precinct: str | None = "1",
    checks: list[bool | None] | None = None,
) -> ProtocolReading:
    """A reading as the reader gives it: ``values`` per field (None: not confident),
    quads where the test photo's cells are."""
    fields = {
        f: {
            "value": values.get(f),
            "confidence": 0.99 if values.get(f) is not None else 0.3,
            "quad": quad(i),
        }
        for i, f in enumerate(FIELDS)
    }
    if verdict is None:
        verdict = "read" if all(values.get(f) is not None for f in FIELDS) else "partial"
    held = checks if checks is not None else [True, True, True]
    return ProtocolReading.model_validate(
        {
            "photo": "p.jpg",
            "verdict": verdict,
            "precinct": precinct,
            "fields": fields,
            "checks": [{"check": i, "holds": h} for i, h in enumerate(held)],
            "reasons": [],
        }
    )


People = Callable[[str], Principal]


def send_photo(
    conn: psycopg.Connection, sender: int | None, photo: bytes, precinct: str = "p1"
) -> service.Accepted:
    """A protocol photo of ``precinct`` stored through ``service.accept`` as the
    account ``sender`` sent it, with a new id."""
    settings = get_settings()
    accepted, _ = service.accept(
        conn,
        photo_store(settings),
        NewProtocolPhoto(
            photo_id=str(uuid.uuid4()),
            election_id=ELECTION,
            precinct_id=precinct,
            photo=photo,
            uploader=Uploader(user_id=sender),
        ),
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_image_pixels,
        uploader_key=b"k" * 16,
    )
    return accepted


def principal_of(conn: psycopg.Connection, username: str) -> Principal:
    """The account ``username`` (made by the ``account`` fixture) as a principal."""
    row = conn.execute("SELECT id, role FROM users WHERE username = %s", (username,)).fetchone()
    conn.commit()
    assert row is not None
    return Principal(role=Role(row[1]), via=Via.API_TOKEN, user_id=row[0], username=username)


@pytest.fixture
def person(conn: psycopg.Connection) -> People:
    """An account of the given role (observer-a1, observer-a2, ...: not the names the
    ``account`` fixture gives) as a principal."""
    made: dict[str, int] = {}

    def make(role: str) -> Principal:
        made[role] = made.get(role, 0) + 1
        name = f"{role}-a{made[role]}"
        user = accounts.add_user(conn, name, Role(role), PASSWORD, actor="test")
        conn.commit()
        return Principal(role=user.role, via=Via.API_TOKEN, user_id=user.id, username=name)

    return make


MakePhoto = Callable[..., uuid.UUID]


@pytest.fixture
def read_photo(conn: psycopg.Connection, loaded: str, person: People) -> MakePhoto:
    """A protocol photo of ``precinct`` stored through ``service.accept`` (sent by
    ``uploader``, by default an admin of its own) and read as ``reading`` through
    ``service.record_reading``; returns its id."""
    store = photo_store(get_settings())
    settings = get_settings()
    state: dict[str, Any] = {"seed": 100, "sender": None}

    def make(
        values: Mapping[str, int | None] | ProtocolReading,
        *,
        precinct: str = "p1",
        uploader: Principal | None = None,
    ) -> uuid.UUID:
        if uploader is None:
            if state["sender"] is None:
                state["sender"] = person("admin")
            uploader = state["sender"]
        assert uploader is not None
        state["seed"] += 1
        accepted, created = service.accept(
            conn,
            store,
            NewProtocolPhoto(
                photo_id=str(uuid.uuid4()),
                election_id=ELECTION,
                precinct_id=precinct,
                photo=protocol_jpeg(state["seed"]),
                uploader=Uploader(user_id=uploader.user_id),
            ),
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels,
            uploader_key=b"k" * 16,
        )
        assert created and accepted.status is PhotoStatus.RECEIVED
        the_reading = (
            values
            if isinstance(values, ProtocolReading)
            else reading(values, precinct=precinct.lstrip("p"))
        )
        with conn.transaction():
            service.record_reading(conn, accepted.photo_id, the_reading)
        conn.commit()
        return accepted.photo_id

    return make
