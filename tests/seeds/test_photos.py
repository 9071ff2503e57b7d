"""The ballot renderer and the synthetic phone photos the demo and checks rely on."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ocr.images import sanitize_photo
from ocr.template import BallotTemplate
from seeds.photos import mark_ballot, not_a_ballot_photo, phone_photo, random_conditions

Reference = tuple[Image.Image, BallotTemplate]


def test_boxes_are_where_the_squares_are_printed(by_reference: Reference) -> None:
    image, template = by_reference
    gray = np.asarray(image.convert("L"))
    for option in template.options:
        x, y, w, h = option.box
        assert gray[y, x + w // 2] < 64 and gray[y + h - 1, x + w // 2] < 64  # top, bottom
        assert gray[y + h // 2, x] < 64 and gray[y + h // 2, x + w - 1] < 64  # left, right
        assert gray[y + 8 : y + h - 8, x + 8 : x + w - 8].min() == 255  # empty inside
        assert gray[y - 3, x + w // 2] == 255  # and nothing just outside


def test_by2020_design(by_reference: Reference) -> None:
    _, template = by_reference
    assert template.ocr_languages == "rus+bel"
    assert template.header_keywords == ["БЮЛЛЕТЕНЬ", "Президента"]
    labels = {o.id: o.label for o in template.options}
    assert labels["tsikhanouskaya"] == "ТИХАНОВСКАЯ Светлана Георгиевна"
    assert labels["against_all"] == "ПРОТИВ ВСЕХ"


def test_marks_land_in_their_boxes(by_reference: Reference) -> None:
    image, template = by_reference
    marked = mark_ballot(image, template, ["lukashenko"], np.random.default_rng(0), "fill")
    before = np.asarray(image.convert("L"), dtype=np.int32)
    after = np.asarray(marked.convert("L"), dtype=np.int32)
    for option in template.options:
        x, y, w, h = option.box
        changed = (np.abs(after - before)[y + 6 : y + h - 6, x + 6 : x + w - 6] > 60).mean()
        assert (changed > 0.4) == (option.id == "lukashenko")


def test_phone_photo_is_deterministic_and_carries_phone_exif(by_reference: Reference) -> None:
    image, template = by_reference

    def shoot(seed: int) -> bytes:
        rng = np.random.default_rng(seed)
        return phone_photo(mark_ballot(image, template, ["dmitriyev"], rng), rng)

    first = shoot(42)
    assert first == shoot(42) and first != shoot(43)
    photo = Image.open(io.BytesIO(first))
    assert photo.format == "JPEG"
    exif = photo.getexif()
    assert exif.get(0x010F) and exif.get(0x0110)  # Make, Model
    assert exif.get_ifd(0x8825).get(2)  # GPS latitude
    clean = sanitize_photo(first)
    assert not Image.open(io.BytesIO(clean.jpeg)).getexif()


def test_random_conditions_stay_in_the_phone_range() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        c = random_conditions(rng)
        assert abs(c.rotation_deg) <= 15 and 0 <= c.blur_sigma <= 1.5
        assert 70 <= c.jpeg_quality <= 92 and 1200 <= c.long_side <= 2000
        assert 0.7 <= c.ballot_fraction <= 0.95


def test_not_a_ballot_photo_is_a_jpeg() -> None:
    data = not_a_ballot_photo(np.random.default_rng(1))
    assert Image.open(io.BytesIO(data)).format == "JPEG"
