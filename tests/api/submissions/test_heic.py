"""iPhones' HEIC photos: accepted, stripped of every byte of metadata, and read."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Callable

import numpy as np
import pillow_heif
import psycopg
import pytest
from PIL import Image

from api.worker import run_worker
from ocr.images import ImageRejected, sanitize_photo

GPS_SECRET = b"GPS-SECRET-53.9N-27.5E"
MAKER_SECRET = b"SERIAL-F2LXK0QJ"
XMP_SECRET = b"XMP-SECRET-CAPTURED-AT-0807"


def heic(image: Image.Image, orientation: int = 1, quality: int = 85) -> bytes:
    """A HEIC file as an iPhone writes it: HEVC pixels, EXIF with GPS and a maker
    note, XMP (encoded by pillow-heif's libheif)."""
    exif = Image.Exif()
    exif[0x010F] = "Apple"
    exif[0x0110] = "iPhone 15"
    exif[0x0112] = orientation
    exif[0x8825] = {1: "N", 2: (53.0, 54.0, 1.5), 3: "E", 4: (27.0, 33.0, 2.0), 27: GPS_SECRET}
    exif[0x8769] = {0x927C: MAKER_SECRET}
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + XMP_SECRET + b"</x:xmpmeta>"
    buffer = io.BytesIO()
    pillow_heif.from_pillow(image).save(buffer, quality=quality, exif=exif.tobytes(), xmp=xmp)
    data = buffer.getvalue()
    assert data[4:12] == b"ftypheic"
    return data


def _portrait_with_red_top() -> Image.Image:
    image = Image.new("RGB", (300, 400), "white")
    image.paste((220, 20, 20), (0, 0, 300, 60))
    return image


def test_a_heic_photo_is_re_encoded_upright_without_metadata() -> None:
    # Orientation 6: stored turned back, "rotate 90° clockwise to view".
    stored = _portrait_with_red_top().transpose(Image.Transpose.ROTATE_90)
    data = heic(stored, orientation=6)
    assert GPS_SECRET in data and MAKER_SECRET in data  # the file does carry them
    clean = sanitize_photo(data)
    photo = Image.open(io.BytesIO(clean.jpeg))
    assert photo.format == "JPEG" and (clean.width, clean.height) == (300, 400)
    top = np.asarray(photo)[:40].mean(axis=(0, 1))
    assert top[0] > 150 and top[1] < 100  # the red band is at the top: upright
    for secret in (GPS_SECRET, MAKER_SECRET, XMP_SECRET, b"Apple", b"iPhone"):
        assert secret not in clean.jpeg
    assert not photo.getexif() and set(photo.info) <= {
        "jfif",
        "jfif_version",
        "jfif_unit",
        "jfif_density",
    }


def test_a_damaged_heic_photo_is_refused() -> None:
    data = heic(_portrait_with_red_top())
    with pytest.raises(ImageRejected) as refused:
        sanitize_photo(data[: len(data) // 3])
    assert refused.value.reason in ("truncated_image", "not_an_image")


def test_a_heic_ballot_photo_is_uploaded_and_counted(
    conn: psycopg.Connection, submit: Callable, ballot_photo: Callable
) -> None:
    jpeg = Image.open(io.BytesIO(ballot_photo(["tsikhanouskaya"], seed=30)))
    sid = str(uuid.uuid4())
    response = submit(heic(jpeg.convert("RGB"), quality=90), sid=sid)
    assert response.status_code == 202, response.text
    asyncio.run(run_worker(wait=False))
    conn.commit()
    row = conn.execute("SELECT status, marks FROM submissions WHERE id = %s", (sid,)).fetchone()
    assert row == ("verified", ["tsikhanouskaya"])
