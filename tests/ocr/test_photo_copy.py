"""Copied protocol photos (``ocr.photo_copy``) on real rendered phone photos of the
seeded protocol form: each way of re-posting one photo is found; a second photo of
the same sheet, and a photo of another sheet, are not copies."""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from ocr.images import decode_gray
from ocr.photo_copy import GEOMETRY_PX, WORK_SIDE, copy_check, non_similarity
from seeds.photos import PhotoConditions, phone_photo, random_conditions
from seeds.protocol_photos import consistent_figures, protocol_page
from seeds.reuse import reuse

DESIGN = "by-2020"


@lru_cache(maxsize=4)
def sheet(seed: int) -> Image.Image:
    rng = np.random.default_rng([seed, 1])
    page, _ = protocol_page(DESIGN, consistent_figures(DESIGN, rng), "523", rng)
    return page


@lru_cache(maxsize=8)
def photo(seed: int, shot: int) -> bytes:
    """Photo number ``shot`` of sheet ``seed``: every shot its own framing and light."""
    rng = np.random.default_rng([seed, 2, shot])
    return phone_photo(sheet(seed), rng, random_conditions(rng))


def gray(data: bytes) -> np.ndarray:
    return decode_gray(data, max_side=WORK_SIDE)


@pytest.mark.parametrize("transform", ["resave", "rescale", "crop", "brightness", "screenshot"])
def test_a_reposted_copy_of_a_protocol_photo_is_found(transform: str) -> None:
    original = photo(1, 0)
    copy = reuse(original, transform, np.random.default_rng(7))
    assert copy != original
    check = copy_check(gray(original), gray(copy))
    assert check.copy, check
    assert check.geometry_px is not None and check.geometry_px <= GEOMETRY_PX


def test_a_second_photo_of_the_same_posted_sheet_is_not_a_copy() -> None:
    check = copy_check(gray(photo(1, 0)), gray(photo(1, 1)))
    assert check.matches > 0  # the same sheet: its print matches ...
    assert not check.copy, check  # ... but from another point and in another light


def test_two_photos_both_taken_square_on_are_not_copies() -> None:
    """The geometry's hardest honest case: little tilt in either photo."""
    shots = []
    for shot in range(2):
        rng = np.random.default_rng([3, 5, shot])
        square_on = PhotoConditions(
            rotation_deg=float(rng.uniform(-2, 2)),
            perspective=0.01,
            blur_sigma=0.5,
            light_gradient=0.1,
            shadow=False,
            jpeg_quality=90,
            long_side=1800,
            ballot_fraction=0.9,
        )
        shots.append(gray(phone_photo(sheet(3), rng, square_on)))
    assert not copy_check(shots[0], shots[1]).copy


def test_a_photo_of_another_protocol_is_not_a_copy() -> None:
    assert not copy_check(gray(photo(1, 0)), gray(photo(2, 0))).copy


def test_a_blank_image_is_not_a_copy_of_anything() -> None:
    blank = np.full((1200, 900), 240, np.uint8)
    check = copy_check(gray(photo(1, 0)), blank)
    assert not check.copy and check.geometry_px is None


@settings(max_examples=60, deadline=None)
@given(
    scale=st.floats(0.3, 3.0),
    angle=st.floats(-math.pi, math.pi),
    dx=st.floats(-500, 500),
    dy=st.floats(-500, 500),
)
def test_a_similarity_is_at_no_distance_from_a_similarity(
    scale: float, angle: float, dx: float, dy: float
) -> None:
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    similarity = np.array([[c, -s, dx], [s, c, dy], [0.0, 0.0, 1.0]])
    assert non_similarity(similarity, (1000, 750)) < 1e-6 * max(1.0, scale) * 1000


@settings(max_examples=40, deadline=None)
@given(tilt=st.floats(0.02, 0.1), corner=st.integers(0, 3))
def test_a_tilted_view_is_far_from_any_similarity(tilt: float, corner: int) -> None:
    """Moving one corner of the frame by ``tilt`` of its size (a photo from another
    point) is more than the copies' allowance away from every similarity."""
    w, h = 750.0, 1000.0
    frame = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    moved = frame.copy()
    moved[corner] += tilt * h * np.array([1.0, 1.0], np.float32) * (1 if corner < 2 else -1)
    homography = cv2.getPerspectiveTransform(frame, moved)
    assert non_similarity(homography, (int(h), int(w))) > GEOMETRY_PX
