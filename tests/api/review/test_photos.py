"""Photos as observers see them: the upload strips the file and keeps its EXIF
orientation in the submission's row; the review pages serve the photo upright."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable

import httpx
import numpy as np
import psycopg
from fastapi.testclient import TestClient
from PIL import Image, ImageOps

from api.review.routes import THUMBNAIL_PIXELS
from api.review.service import photo_key
from infra.settings import get_settings
from infra.storage import photo_store

QUADRANTS = ((230, 20, 20), (20, 200, 20), (20, 20, 230), (240, 240, 240))


def _sideways_phone_photo() -> tuple[bytes, Image.Image]:
    """A JPEG stored sideways with EXIF orientation 6 (rotate 90° clockwise to show),
    as a phone held upright writes it, and the upright picture it stands for: four
    coloured quadrants, so that a turn in the wrong direction shows."""
    width, height = 480, 320
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    for i, colour in enumerate(QUADRANTS):
        top, left = (i // 2) * height // 2, (i % 2) * width // 2
        pixels[top : top + height // 2, left : left + width // 2] = colour
    stored = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    stored.save(out, "JPEG", quality=95, exif=exif.tobytes())
    data = out.getvalue()
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    return data, upright


def _quadrant_colours(image: Image.Image) -> list[tuple[int, ...]]:
    """The mean colour of each quadrant's centre, read left to right, top to bottom."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    h, w = rgb.shape[:2]
    means = []
    for row in (h // 4, 3 * h // 4):
        for col in (w // 4, 3 * w // 4):
            patch = rgb[row - h // 10 : row + h // 10, col - w // 10 : col + w // 10]
            means.append(tuple(int(v) for v in patch.reshape(-1, 3).mean(axis=0)))
    return means


def _close(a: list[tuple[int, ...]], b: list[tuple[int, ...]]) -> bool:
    return all(
        abs(x - y) <= 12 for pa, pb in zip(a, b, strict=True) for x, y in zip(pa, pb, strict=True)
    )


def test_a_photo_uploaded_sideways_is_served_to_observers_upright(
    conn: psycopg.Connection,
    client: TestClient,
    submit: Callable[..., httpx.Response],
    account: Callable[..., dict[str, str]],
) -> None:
    data, upright = _sideways_phone_photo()
    sid = str(uuid.uuid4())
    assert submit(data, sid=sid).status_code == 202
    observer = account("observer")

    served = client.get(f"/review/photos/{sid}", headers=observer)
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    shown = Image.open(io.BytesIO(served.content))
    assert shown.size == upright.size == (320, 480)
    assert 0x0112 not in shown.getexif()
    assert _close(_quadrant_colours(shown), _quadrant_colours(upright))
    # The stored file is sideways without its tag (the row keeps the turn): the page turned it.
    stored = Image.open(
        io.BytesIO(photo_store(get_settings()).get(photo_key(conn, uuid.UUID(sid))))
    )
    assert stored.size == (480, 320) and 0x0112 not in stored.getexif()

    thumb = client.get(f"/review/photos/{sid}/thumbnail", headers=observer)
    assert thumb.status_code == 200
    small = Image.open(io.BytesIO(thumb.content))
    assert max(small.size) <= THUMBNAIL_PIXELS and small.height > small.width
    assert _close(_quadrant_colours(small), _quadrant_colours(upright))


def test_an_upright_photo_is_served_as_stored(
    client: TestClient,
    submit: Callable[..., httpx.Response],
    account: Callable[..., dict[str, str]],
) -> None:
    _, upright = _sideways_phone_photo()
    out = io.BytesIO()
    upright.save(out, "JPEG", quality=95)
    sid = str(uuid.uuid4())
    assert submit(out.getvalue(), sid=sid).status_code == 202
    shown = Image.open(
        io.BytesIO(client.get(f"/review/photos/{sid}", headers=account("observer")).content)
    )
    assert shown.size == (320, 480)
    assert _close(_quadrant_colours(shown), _quadrant_colours(upright))
