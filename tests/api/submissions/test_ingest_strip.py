"""The fast upload path: a JPEG or PNG is stripped of its metadata without being
decoded, no metadata byte reaches the disk, its EXIF orientation is kept in the
row and applied by the worker, and pixels that do not decode are the worker's to
reject."""

from __future__ import annotations

import asyncio
import hashlib
import io
import struct
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg
import pytest
from PIL import Image, PngImagePlugin

from api.submissions import service
from api.worker import run_worker
from infra.settings import get_settings
from infra.storage import photo_store

SECRETS = (b"SECRET", b"Exif", b"http://ns.adobe.com/xap/1.0/", b"ICC_PROFILE", b"8BIM")


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SECRET-MAKER"
    exif[0x0112] = orientation
    exif[0xA431] = "SECRET-SERIAL"
    exif[0x8825] = {1: "N", 2: (53.0, 54.0, 1.5), 3: "E", 4: (27.0, 33.0, 2.5)}  # GPS
    return exif.tobytes()


def _with_metadata(jpeg: bytes, *, rotate: int = 0) -> bytes:
    """The photo re-encoded (turned ``rotate`` degrees, with the EXIF orientation that
    turns it back), carrying EXIF with GPS, XMP, an ICC profile, Photoshop data, a
    comment and data after its end."""
    picture = Image.open(io.BytesIO(jpeg)).convert("RGB")
    orientation = {0: 1, 90: 6, 270: 8}[rotate]
    if rotate:
        # Stored turned, as a phone's sensor saw it; orientation 6 means "turn 90°
        # clockwise to show", so the stored pixels are the upright ones turned back.
        picture = picture.rotate(rotate, expand=True)
    buffer = io.BytesIO()
    picture.save(
        buffer,
        "JPEG",
        quality=92,
        exif=_exif(orientation),
        icc_profile=b"\x00\x00\x02\x0cSECRET-ICC" + bytes(300),
        comment=b"SECRET-COMMENT",
    )
    data = buffer.getvalue()
    extra = _segment(
        0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>SECRET-XMP</x:xmpmeta>"
    ) + _segment(0xED, b"Photoshop 3.0\x008BIM SECRET-PHOTOSHOP")
    return data[:2] + extra + data[2:] + b"SECRET-TRAILER"


def _row(conn: psycopg.Connection, sid: str) -> tuple[str, int | None, str, list[str]]:
    conn.commit()
    row = conn.execute(
        "SELECT photo_sha256, photo_orientation, status, reasons FROM submissions WHERE id = %s",
        (sid,),
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2], list(row[3])


def _files_on_disk() -> list[Path]:
    root = get_settings().photos_path
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_no_metadata_byte_reaches_the_disk(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    upload = _with_metadata(ballot_photo(["tsikhanouskaya"]), rotate=90)
    for secret in SECRETS:
        assert secret in upload
    before = set(_files_on_disk())
    sid = str(uuid.uuid4())
    assert submit(upload, sid=sid).status_code == 202
    key, orientation, status, _ = _row(conn, sid)
    assert (orientation, status) == (6, "received")
    written = [p for p in _files_on_disk() if p not in before]
    assert [p.name for p in written] == [key]  # one file, named by its own hash
    stored = written[0].read_bytes()
    assert hashlib.sha256(stored).hexdigest() == key
    for secret in SECRETS:
        assert secret not in stored, secret
    # Not re-encoded: the very pixels that were sent.
    assert np.array_equal(
        np.asarray(Image.open(io.BytesIO(stored))), np.asarray(Image.open(io.BytesIO(upload)))
    )


def test_png_text_and_exif_chunks_never_reach_the_disk(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "SECRET-TEXT")
    info.add_itxt("Description", "SECRET-ITXT")
    buffer = io.BytesIO()
    Image.open(io.BytesIO(ballot_photo(["tsikhanouskaya"]))).save(
        buffer, "PNG", pnginfo=info, exif=_exif(3)
    )
    tail = struct.pack(">I", 4) + b"tIME" + b"\x07\xe4\x08\x09"
    upload = buffer.getvalue() + tail + struct.pack(">I", zlib.crc32(b"tIME")) + b"SECRET"
    sid = str(uuid.uuid4())
    assert submit(upload, sid=sid).status_code == 202
    key, orientation, _, _ = _row(conn, sid)
    stored = photo_store(get_settings()).get(key)
    assert orientation == 3 and stored.startswith(b"\x89PNG")
    for secret in (b"SECRET", b"tEXt", b"iTXt", b"eXIf", b"tIME"):
        assert secret not in stored, secret


def test_the_worker_reads_a_stripped_photo_the_right_way_up(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    sids = {}
    for rotate in (0, 90, 270):
        upload = _with_metadata(ballot_photo(["tsikhanouskaya"], seed=rotate), rotate=rotate)
        sids[rotate] = str(uuid.uuid4())
        assert submit(upload, sid=sids[rotate], precinct="p1").status_code == 202
    asyncio.run(run_worker(wait=False))
    statuses = {rotate: _row(conn, sid)[1:] for rotate, sid in sids.items()}
    assert statuses == {
        0: (None, "verified", []),
        90: (6, "verified", []),
        270: (8, "verified", []),
    }


def test_a_photo_whose_pixels_do_not_decode_is_rejected_by_the_worker(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    photo = ballot_photo(["tsikhanouskaya"])
    cut = photo[: len(photo) * 2 // 3]  # the header is whole, the image data is not
    sid = str(uuid.uuid4())
    response = submit(cut, sid=sid)
    assert response.status_code == 202, response.text
    asyncio.run(run_worker(wait=False))
    _, _, status, reasons = _row(conn, sid)
    assert (status, reasons) == ("rejected", ["unreadable", "truncated_image"])


def test_a_broken_segment_structure_is_refused_naming_the_photo(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    photo = ballot_photo(["tsikhanouskaya"])
    broken = photo[:2] + b"\xff\xe1\xff\xf0" + photo[2:]  # an APP1 longer than the file
    response = submit(broken)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["field"] == "photo" and "malformed_image" in detail["message"]
    conn.commit()
    assert conn.execute("SELECT count(*) FROM submissions").fetchone() == (0,)


def test_a_station_added_by_a_reload_is_accepted_at_once(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    # The first upload caches the election; a station the cache does not know is
    # looked up again rather than refused.
    assert submit(ballot_photo(["tsikhanouskaya"], seed=1), precinct="p1").status_code == 202
    conn.execute(
        "INSERT INTO precincts (election_id, id, region, district, registered)"
        " VALUES ('by-2020-president', 'p-new', 'Region', 'District 9', 900)"
    )
    conn.commit()
    response = submit(ballot_photo(["tsikhanouskaya"], seed=2), precinct="p-new")
    assert response.status_code == 202, response.text
    service.forget_elections()


def test_made_up_stations_and_options_are_refused_without_reloading_the_election(
    conn: psycopg.Connection,
    submit: Callable,
    ballot_photo: Callable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert submit(ballot_photo(["tsikhanouskaya"], seed=1), precinct="p1").status_code == 202
    reloads: list[str] = []
    every_station = service.elections.precinct_ids

    def counted(c: psycopg.Connection, election_id: str) -> set[str]:
        reloads.append(election_id)
        return every_station(c, election_id)

    monkeypatch.setattr(service.elections, "precinct_ids", counted)
    try:
        for n in range(3):
            response = submit(ballot_photo(["tsikhanouskaya"], seed=1), precinct=f"nowhere-{n}")
            assert response.status_code == 422
            assert response.json()["detail"]["field"] == "precinct_id"
        # A made-up option is refused from the cache too.
        response = submit(ballot_photo(["tsikhanouskaya"], seed=1), choice="zzz")
        assert response.status_code == 422
        assert response.json()["detail"]["field"] == "declared_choice"
        assert reloads == []  # one indexed read each, not every station again
    finally:
        service.forget_elections()


def test_the_job_is_queued_in_the_storing_transaction(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    sid = str(uuid.uuid4())
    assert submit(ballot_photo(["tsikhanouskaya"]), sid=sid).status_code == 202
    conn.commit()
    jobs = conn.execute("SELECT queueing_lock, status, priority FROM procrastinate_jobs").fetchall()
    assert jobs == [(f"submission:{sid}", "todo", 10)]
    # A replay queues nothing more (one job waits per submission).
    assert submit(ballot_photo(["tsikhanouskaya"]), sid=sid).status_code == 200
    conn.commit()
    assert conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone() == (1,)
