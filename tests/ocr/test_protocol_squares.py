"""Rows of digit squares (ocr.protocol_squares) and the violet stamp taken out by
colour (ocr.protocol_colour): real rendered photos of the seeded forms."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from ocr import protocol
from ocr.align import resize_long_side
from ocr.digits import NumberReading
from ocr.images import decode_gray
from ocr.protocol import CORRECTED_CAP, WORK_SIDE, _apart, _read_squares, read_protocol
from ocr.protocol_colour import decode_rgb, stamp_free, violetness
from ocr.protocol_squares import combine_squares, square_spans
from ocr.protocol_template import ProtocolTemplate
from seeds.handwriting import NAMED_WRITERS, Writer, write_number
from seeds.protocol_photos import consistent_figures, labelled_photos, protocol_photo
from tests.ocr.conftest import CLEAR_PROTOCOL

CLEAR = CLEAR_PROTOCOL


def _box(template: ProtocolTemplate, field: str) -> np.ndarray:
    x, y, w, h = template.boxes[field]
    return template.reference[y : y + h, x : x + w]


def _digit(d: int, p: float) -> NumberReading:
    return NumberReading(d, p, [(d, p), ((d + 1) % 10, 1 - p)], digits=1)


def test_a_row_of_squares_is_found_in_the_reference_print_and_a_plain_box_is_not(
    ru_protocol: ProtocolTemplate, by_protocol: ProtocolTemplate
) -> None:
    spans = square_spans(_box(ru_protocol, "registered"))
    assert spans is not None and len(spans) == 6
    widths = {b - a for a, b in spans}
    assert max(widths) - min(widths) <= 1
    assert all(a1 == b0 for (_, a1), (b0, _) in itertools.pairwise(spans))
    assert square_spans(_box(by_protocol, "registered")) is None


def test_squares_make_a_number_only_when_the_written_ones_are_contiguous() -> None:
    states = ["empty", "empty", "written", "written", "written", "empty"]
    readings = [None, None, _digit(3, 0.99), _digit(0, 0.99), _digit(7, 0.98), None]
    number = combine_squares(readings, states)
    assert number is not None and number.value == 307
    assert number.confidence == pytest.approx(0.99 * 0.99 * 0.98)
    assert number.alternatives[0] == (307, number.confidence)
    gap = ["written", "empty", "written", "empty", "empty", "empty"]
    assert combine_squares([_digit(1, 0.99), None, _digit(2, 0.99), None, None, None], gap) is None
    doubtful = ["empty", "doubtful", "written"]
    assert combine_squares([None, None, _digit(5, 0.99)], doubtful) is None
    unread = NumberReading(None, 0.0, [])
    assert combine_squares([unread], ["written"]) is None
    empty = combine_squares([None, None], ["empty", "empty"])
    assert empty is not None and empty.empty and empty.value is None


def test_a_dash_alone_in_its_row_is_a_dash_and_among_digits_no_number() -> None:
    dash = NumberReading(None, 0.0, [], dash=True)
    alone = combine_squares([None, None, dash], ["empty", "empty", "written"])
    assert alone is not None and alone.dash and alone.value is None and not alone.empty
    assert combine_squares([_digit(1, 0.99), dash], ["written", "written"]) is None


def test_a_row_of_squares_carries_the_slant_each_of_its_written_squares_was_read_at() -> None:
    def at(digit: int, shear: float) -> NumberReading:
        return replace(_digit(digit, 0.99), shears=(shear,))

    states = ["doubtful", "written", "written", "empty"]
    readings = [None, at(4, 0.3), at(2, 0.5), None]
    assert combine_squares(readings, states) is None  # doubtful: no number, no slants
    number = combine_squares(readings, ["empty", *states[1:]])
    assert number is not None and number.value == 42 and number.shears == (0.3, 0.5)


def test_a_clear_photo_of_a_form_with_digit_squares_is_read_square_by_square(
    ru_protocol: ProtocolTemplate,
) -> None:
    rng = np.random.default_rng(31)
    figures = consistent_figures("ru-2018", rng)
    photo, labels = protocol_photo(
        "ru-2018", figures, "1234", rng, CLEAR, writer=NAMED_WRITERS[1],
        corrections=0.0, stamp_over_fields=0.0, signature_over_fields=0.0, dash_for_zero=0.0,
    )  # fmt: skip
    reading = read_protocol(ru_protocol, photo)
    given = {f: r.value for f, r in reading.fields.items() if r.value is not None}
    assert all(given[f] == labels.figures[f] for f in given), given
    # Read whole, the row's square borders cost most of these fields (5 of 16 on
    # this photo); one digit a square, nearly all are given.
    assert len(given) >= 14


def test_a_row_of_squares_one_square_off_in_the_page_fit_is_read_in_the_right_place(
    ru_protocol: ProtocolTemplate,
) -> None:
    # A low-resolution, blurred photo whose page fit leaves the column of squares
    # one square to the left, where the rules match all but one of the row's: read
    # square by square there, 2667 lost its last digit and was given as 266 (with
    # 0.997). Searched past one square across, the whole row's rules win.
    sample = next(itertools.islice(labelled_photos("ru-2018", 27, 5, not_protocols=0.0), 26, None))
    assert sample.labels.figures["registered"] == 2667
    reading = read_protocol(ru_protocol, sample.photo)
    for field, truth in sample.labels.figures.items():
        assert reading.fields[field].value in (None, truth), field
    assert reading.fields["registered"].value == 2667


def test_a_thin_leading_one_against_its_squares_side_is_never_dropped(
    ru_protocol: ProtocolTemplate,
) -> None:
    # The 1 of 128 stands near its square's side, outside the square's middle:
    # taken for an empty square, the field was given as 28 (confidence 1.000).
    sample = next(itertools.islice(labelled_photos("ru-2018", 20, 17, not_protocols=0.0), 19, None))
    assert sample.labels.figures["yavlinsky"] == 128
    reading = read_protocol(ru_protocol, sample.photo)
    assert reading.fields["yavlinsky"].value in (None, 128)


def test_a_faint_one_along_its_squares_side_withholds_the_number_instead_of_dropping_the_one(
    ru_protocol: ProtocolTemplate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 81 written from the left: the 1 is a faint stroke hugging the rule between
    # its square and the 8's, and was inpainted away with the rule, leaving an empty
    # square: the field was given as 8 (confidence 1.000). Its rule is lopsided
    # where its siblings are not: the square is doubtful and the field withheld.
    sample = next(itertools.islice(labelled_photos("ru-2018", 31, 23, not_protocols=0.0), 30, None))
    assert sample.labels.figures["ballots_cancelled"] == 81
    reading = read_protocol(ru_protocol, sample.photo)
    assert reading.fields["ballots_cancelled"].value in (None, 81)
    for field, truth in sample.labels.figures.items():
        assert reading.fields[field].value in (None, truth), field
    # Without the check the fault is back: 81 given as 8. The check withholds that
    # row and at most one more (here an 8 whose rule beside an empty square is
    # lopsided by the print); the other rows read on.
    given = {f for f, r in reading.fields.items() if r.value is not None}
    monkeypatch.setattr(protocol, "SIDE_ROWS", 1.01)  # no square doubtful for its sides
    unchecked = read_protocol(ru_protocol, sample.photo)
    assert unchecked.fields["ballots_cancelled"].value == 8
    withheld = {f for f, r in unchecked.fields.items() if r.value is not None} - given
    assert "ballots_cancelled" in withheld
    assert len(withheld) <= 2, withheld


def _stamped_photo() -> tuple[bytes, list[str], dict[str, int]]:
    rng = np.random.default_rng(21)
    photo, labels = protocol_photo(
        "by-2020", consistent_figures("by-2020", rng), "77", rng, CLEAR,
        writer=NAMED_WRITERS[0], corrections=0.0, stamp_over_fields=1.0,
    )  # fmt: skip
    return photo, labels.stamped, labels.figures


def test_a_violet_stamp_fades_to_paper_while_pen_and_print_keep_their_values() -> None:
    photo, stamped, _ = _stamped_photo()
    assert stamped, "the stamp lands over cells"
    gray, _ = resize_long_side(decode_gray(photo, max_side=WORK_SIDE), WORK_SIDE)
    rgb = decode_rgb(photo, WORK_SIDE, None)
    assert rgb is not None
    rgb, _ = resize_long_side(rgb, WORK_SIDE)
    pen = stamp_free(gray, rgb)
    assert pen is not None
    violet = violetness(rgb)
    stamp = (violet > 0.06) & (gray < 200)
    assert stamp.sum() > 500
    before = float(np.median(gray[stamp]))
    after = float(np.median(pen[stamp]))
    assert after - before > 40  # the stamp's ink is (nearly) paper again
    # Blue pen and black print are not violet: every such pixel is as it was.
    assert np.array_equal(pen[violet <= 0], gray[violet <= 0])


def test_a_photo_without_violet_ink_is_left_to_the_grey_reading(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    page = np.full((400, 300, 3), 235, np.uint8)
    page[100:110, 50:250] = (30, 50, 150)  # a blue pen's stroke
    page[200:204, 20:280] = (20, 20, 20)  # print
    noise = rng.integers(-3, 4, page.shape)
    rgb = np.clip(page.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    gray = rgb.mean(axis=2).astype(np.uint8)
    assert stamp_free(gray, rgb) is None


def test_a_violet_blue_pen_is_not_taken_for_the_stamp() -> None:
    # Some ballpoints are violet-blue: colour cannot part such a pen from the
    # stamp, and fading it would erase the handwriting. Most of the cells' ink
    # having the stamp's hue says so: the photo is read in grey.
    page = np.full((300, 400, 3), 235, np.uint8)
    cells = np.zeros((300, 400), dtype=bool)
    for k in range(6):
        y = 30 + k * 45
        cells[y : y + 35, 100:300] = True
        for j in range(5):  # digit-like strokes
            x = 120 + j * 30
            page[y + 5 : y + 30, x : x + 4] = (70, 45, 150)
    gray = cv2.cvtColor(page, cv2.COLOR_RGB2GRAY)
    faded = stamp_free(gray, page)
    assert faded is not None and faded[40, 121] > gray[40, 121] + 100  # unaware, erased
    assert stamp_free(gray, page, cells=cells) is None


def test_a_field_under_a_violet_stamp_is_given_its_right_value(
    by_protocol: ProtocolTemplate,
) -> None:
    photo, stamped, figures = _stamped_photo()
    reading = read_protocol(by_protocol, photo)
    for field, truth in figures.items():
        assert reading.fields[field].value in (None, truth), field
    read = [f for f in stamped if f in figures and reading.fields[f].value == figures[f]]
    # In grey, the stamp's ring and lettering cost all four of these fields.
    assert len(stamped) == 4 and read == stamped


def test_the_cells_the_stamp_crosses_are_told_from_the_others(
    by_protocol: ProtocolTemplate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only there is faint ink left out as the stamp's remains (ocr.digits.FAINT):
    # elsewhere a thin 1 may be as faint beside its neighbours.
    found: list[frozenset[str]] = []
    original = protocol._stamped_cells

    def spy(*args: Any) -> frozenset[str]:
        found.append(original(*args))
        return found[-1]

    monkeypatch.setattr(protocol, "_stamped_cells", spy)
    photo, stamped, _ = _stamped_photo()
    read_protocol(by_protocol, photo)
    assert found == [frozenset(stamped)]


SQUARE = 60


def _row_of_squares(
    digits: str, writer: Writer, ring: bool, dash: bool = False
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Six cleaned squares (rules gone) with ``digits`` written in the last ones,
    with ``ring`` a stamp ring's faded dashes through the square before them, with
    ``dash`` a flat remnant of one in its lower half."""
    rng = np.random.default_rng(1)
    canvas = np.full((SQUARE + 20, 6 * SQUARE + 20), 235, np.uint8)
    squares = [(13 + i * SQUARE, 13, 7 + (i + 1) * SQUARE, 7 + SQUARE) for i in range(6)]
    for i, digit in zip(range(6 - len(digits), 6), digits, strict=True):
        ink = np.asarray(write_number(digit, writer, rng, 38).convert("LA"), dtype=np.float64)
        h, w = ink.shape[:2]
        x0 = squares[i][0] + (squares[i][2] - squares[i][0] - w) // 2
        y0 = squares[i][1] + (squares[i][3] - squares[i][1] - h) // 2
        alpha = ink[..., 1] / 255
        under = canvas[y0 : y0 + h, x0 : x0 + w].astype(np.float64)
        canvas[y0 : y0 + h, x0 : x0 + w] = (under * (1 - alpha) + ink[..., 0] * alpha).astype(
            np.uint8
        )
    if ring:
        first = squares[6 - len(digits) - 1][0]
        for angle in range(160, 200, 10):
            cv2.ellipse(canvas, (first + 150, 40), (125, 125), 0, angle, angle + 5, 170, 2,
                        cv2.LINE_AA)  # fmt: skip
    if dash:
        x0, y0 = squares[6 - len(digits) - 1][:2]
        cv2.line(canvas, (x0 + 16, y0 + 38), (x0 + 30, y0 + 38), 170, 3, cv2.LINE_AA)
    return canvas, squares


@pytest.mark.parametrize("writer", NAMED_WRITERS, ids=lambda w: w.name)
def test_a_stamp_rings_remnant_beside_the_number_is_left_out_at_a_capped_confidence(
    writer: Writer,
) -> None:
    # The colour step leaves a violet ring's faint dashes in the square before the
    # number: doubtful, it withheld the number. Taken for no digit, the number is
    # read, capped: it is given only where an equality of the form vouches for it.
    clean, squares = _row_of_squares("113", writer, ring=False)
    plain = _read_squares(clean, squares)
    assert plain is not None and plain.value == 113 and plain.confidence > CORRECTED_CAP
    stamped, squares = _row_of_squares("113", writer, ring=True)
    reading = _read_squares(stamped, squares)
    assert reading is not None and reading.value == 113
    assert 0.5 < reading.confidence <= CORRECTED_CAP
    assert sum(p for _, p in reading.alternatives) <= CORRECTED_CAP + 1e-9


@pytest.mark.parametrize("writer", NAMED_WRITERS, ids=lambda w: w.name)
def test_a_flat_remnant_beside_the_number_is_no_digit_and_left_out_at_a_capped_confidence(
    writer: Writer,
) -> None:
    # A ring's remnant cut flat by the colour step is a dash to the digit reader. A
    # dash beside written digits is no digit (a dash is a zero only alone in its
    # row): the number is read, capped, as with any stray mark. It withheld the
    # number when a dash counted as a digit (tuning seed 5's 113, two fields lost).
    clean, squares = _row_of_squares("113", writer, ring=False, dash=True)
    reading = _read_squares(clean, squares)
    assert reading is not None and reading.value == 113
    assert 0.5 < reading.confidence <= CORRECTED_CAP


@pytest.mark.parametrize("writer", NAMED_WRITERS, ids=lambda w: w.name)
def test_a_stamp_arc_apart_from_the_number_is_left_out_at_a_capped_confidence(
    writer: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A dark arc of the stamp's ring two squares before 91, an empty square between:
    # written squares that are not one run made no number. A lone written square
    # apart from the rest whose ink the reader takes for no digit is a stray mark.
    clean, squares = _row_of_squares("91", writer, ring=False)
    x0, y0 = squares[1][:2]
    cv2.ellipse(clean, (x0 + 70, y0 - 20), (60, 60), 0, 120, 165, 120, 3, cv2.LINE_AA)
    reading = _read_squares(clean, squares)
    assert reading is not None and reading.value == 91
    assert 0.5 < reading.confidence <= CORRECTED_CAP
    monkeypatch.setattr(protocol, "APART_JUNK", 1.01)  # no square apart is stray
    assert _read_squares(clean, squares) is None


def test_only_a_lone_written_square_apart_from_the_others_is_looked_at_as_a_stray() -> None:
    w, e, d = "written", "empty", "doubtful"
    assert _apart([e, w, e, e, w, w]) == [1]
    assert _apart([w, e, w, w, e, w]) == [0, 5]
    assert _apart([e, e, w, w, w, e]) == []  # one run: nothing apart
    assert _apart([w, w, e, w, w, e]) == []  # two runs, neither alone
    assert _apart([w, d, e, w, w, e]) == []  # beside a doubtful square: not alone
    assert _apart([e, e, e, e, e, e]) == []
