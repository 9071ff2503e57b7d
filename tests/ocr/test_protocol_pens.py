"""A second pen over the cells (a member's signature in black across blue figures,
or in blue across black ones) is faded by colour; the figures, the print and a
figure's stroke under the other pen stay (ocr.protocol_colour)."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from ocr.protocol import read_protocol
from ocr.protocol_colour import FIGURES_BLACK, FIGURES_BLUE, figures_pen, other_pen_faded, pen_hue
from ocr.protocol_template import ProtocolTemplate
from seeds.handwriting import NAMED_WRITERS
from seeds.protocol_photos import consistent_figures, protocol_photo
from tests.ocr.conftest import CLEAR_PROTOCOL

BLUE = (30, 55, 150)
BLACK = (25, 25, 30)
PAPER_RGB = (232, 230, 226)
BOX = (40, 28, 190, 56)  # the cell in the synthetic patches: x, y, width, height

CLEAR = CLEAR_PROTOCOL


def _jpeg(rgb: np.ndarray) -> np.ndarray:
    """Through a phone's JPEG (colour at half resolution), back to RGB."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=88)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def _patch(figures: tuple[int, int, int], other: tuple[int, int, int]) -> np.ndarray:
    """Three "1"s and a "7" in one pen, a long flourish of the other across them,
    and a short tick of the other pen beside them."""
    page = np.full((120, 260, 3), PAPER_RGB, np.uint8)
    for x in (60, 100, 140):
        cv2.line(page, (x, 35), (x - 4, 80), figures, 4, cv2.LINE_AA)
    cv2.line(page, (170, 35), (205, 35), figures, 4, cv2.LINE_AA)
    cv2.line(page, (205, 35), (180, 80), figures, 4, cv2.LINE_AA)
    cv2.line(page, (30, 70), (230, 55), other, 4, cv2.LINE_AA)
    cv2.line(page, (235, 95), (241, 99), other, 4, cv2.LINE_AA)
    return _jpeg(page)


def _gray(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


@pytest.mark.parametrize(
    ("figures", "other", "name"), [(BLUE, BLACK, "blue"), (BLACK, BLUE, "black")]
)
def test_the_other_pens_flourish_fades_and_the_figures_stay(
    figures: tuple[int, int, int], other: tuple[int, int, int], name: str
) -> None:
    rgb = _patch(figures, other)
    gray = _gray(rgb)
    out = other_pen_faded(gray, pen_hue(gray, rgb), name, BOX)
    paper = float(np.median(gray))
    # the flourish between the figures (x 70..90: no figure's stroke near)
    flourish = gray[60:72, 70:90] < paper - 60
    assert flourish.sum() > 20
    assert (out[60:72, 70:90][flourish] > paper - 30).all()
    # each figure's stroke, away from the flourish, keeps its value exactly
    for x in (60, 100, 140):
        assert np.array_equal(out[38:50, x - 5 : x + 5], gray[38:50, x - 5 : x + 5])
    # where the flourish crosses a "1", the figure's stroke runs on under it
    for x, y in ((59, 67), (99, 64), (139, 62)):
        assert out[y - 2 : y + 3, x - 3 : x + 3].min() < paper - 60, (x, y)
    # a tick of the other pen too short to be a stroke across the cell stays
    assert out[94:100, 234:242].min() < paper - 60


def test_the_figures_pen_is_never_faded_as_the_other() -> None:
    # One pen only: nothing of another's hue, nothing changes.
    rgb = _patch(BLUE, BLUE)
    gray = _gray(rgb)
    assert np.array_equal(other_pen_faded(gray, pen_hue(gray, rgb), "blue", BOX), gray)


def test_a_number_written_wholly_in_the_other_pen_is_read_not_faded() -> None:
    # The protocol's figures are blue; this cell's number is black (filled in later,
    # another member's pen): no figure of the figures' pen in it, nothing faded.
    page = np.full((120, 260, 3), PAPER_RGB, np.uint8)
    for x in (80, 130):
        cv2.line(page, (x, 35), (x - 4, 80), BLACK, 4, cv2.LINE_AA)
    cv2.line(page, (60, 90), (230, 88), BLACK, 4, cv2.LINE_AA)
    rgb = _jpeg(page)
    gray = _gray(rgb)
    assert np.array_equal(other_pen_faded(gray, pen_hue(gray, rgb), "blue", BOX), gray)


def test_the_rules_are_left_to_their_own_removal() -> None:
    # Black print across blue figures is another pen's hue: given as print, it stays.
    page = np.full((100, 240, 3), PAPER_RGB, np.uint8)
    cv2.line(page, (0, 20), (239, 20), BLACK, 3)
    cv2.line(page, (80, 30), (76, 80), BLUE, 4, cv2.LINE_AA)
    rgb = _jpeg(page)
    gray = _gray(rgb)
    printed = np.zeros(gray.shape, np.uint8)
    printed[16:25, :] = 255
    out = other_pen_faded(gray, pen_hue(gray, rgb), "blue", BOX, printed)
    assert np.array_equal(out[16:25], gray[16:25])
    assert other_pen_faded(gray, pen_hue(gray, rgb), "blue", BOX)[18:23, 100:200].min() > 150


@pytest.mark.parametrize(
    ("shares", "pen"),
    [
        ([0.6, 0.7, 0.0, 0.65, 0.5], "blue"),  # one cell crossed by a black signature
        ([0.0, 0.01, 0.9, 0.0, 0.02], "black"),  # one crossed by a blue one
        ([0.1, 0.15, 0.12, 0.2], None),  # a washed-out photo: colour cannot tell
        ([0.7, 0.8], None),  # too few written cells to tell
    ],
)
def test_the_median_written_cell_tells_the_figures_pen(shares: list[float], pen: str) -> None:
    assert FIGURES_BLACK < FIGURES_BLUE
    assert figures_pen(shares) == pen


def _grey_jpeg(photo: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(photo)).convert("L").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_fields_under_another_pens_signature_are_read_right_more_often_in_colour(
    by_protocol: ProtocolTemplate,
) -> None:
    right = {"colour": 0, "grey": 0}
    signed = 0
    for seed in range(6):
        rng = np.random.default_rng([seed, 0x5167])
        photo, labels = protocol_photo(
            "by-2020", consistent_figures("by-2020", rng), "77", rng, CLEAR,
            writer=NAMED_WRITERS[seed % len(NAMED_WRITERS)], corrections=0.0,
            stamp_over_fields=0.0, signature_over_fields=1.0, signature_pen="other",
        )  # fmt: skip
        signed += len(labels.signed_over)
        for kind, data in (("colour", photo), ("grey", _grey_jpeg(photo))):
            reading = read_protocol(by_protocol, data)
            for field in labels.signed_over:
                if field not in reading.fields:
                    continue
                value = reading.fields[field].value
                assert value in (None, labels.figures[field]), (seed, kind, field)
                right[kind] += value == labels.figures[field]
    assert signed >= 6
    assert right["colour"] > right["grey"], right
