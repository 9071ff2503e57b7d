"""A corrected figure in a protocol's cell: the wrong number struck out, the right one
written after it (``ocr.digits.struck_out``, ``ocr.protocol._read_written``)."""

from __future__ import annotations

import numpy as np
import pytest

from ocr.digits import NumberReading, struck_out
from ocr.protocol import (
    CONFIDENT,
    CORRECTED_CAP,
    EDGE_PAD,
    PAPER,
    _prepared,
    _read_written,
    joint_reading,
)
from seeds.handwriting import NAMED_WRITERS, degrade_cell, number_cell
from tally.proof import Check

# Cells as the protocol reader has them once the printed rules are removed.
HEIGHT, WIDTH = 60, 300


def _cell(text: str, writer: int, seed: int, crossed_out: str | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cell = number_cell(
        text, NAMED_WRITERS[writer], rng, cell_height=HEIGHT, cell_width=WIDTH,
        border=False, crossed_out=crossed_out,
    )  # fmt: skip
    return cell.gray


def _read(gray: np.ndarray) -> tuple[NumberReading, bool]:
    h, w = gray.shape
    box = (max(8, round(w * EDGE_PAD)), max(4, round(h * EDGE_PAD)), w, h)
    return _read_written(_prepared(gray), box)


@pytest.mark.parametrize("writer", [0, 2, 3, 5, 9, 11, 13])
def test_a_corrected_cell_is_read_as_its_rewritten_value_never_as_sure(writer: int) -> None:
    reading, corrected = _read(_cell("245", writer, seed=1, crossed_out="254"))
    assert corrected and reading.capped  # a tie of the form will not vouch for it
    assert reading.value == 245
    # Alone it is never given: only an equality of the form can vouch for it.
    assert reading.confidence <= CORRECTED_CAP < CONFIDENT


def test_a_corrected_value_is_given_only_when_the_forms_equality_holds_on_it() -> None:
    checks = [Check(("cast",), "==", ("invalid", "@options")), Check(("cast",), "<=", ("issued",))]
    capped = [(245, CORRECTED_CAP)]
    holding = joint_reading(
        {"cast": [(300, 0.99)], "invalid": [(5, 0.99)], "a": capped, "b": [(50, 0.99)],
         "issued": [(310, 0.99)]},
        checks, ["a", "b"],
    )  # fmt: skip
    assert holding.values["a"] == 245 and holding.confidence["a"] >= CONFIDENT
    failing = joint_reading(
        {"cast": [(301, 0.99)], "invalid": [(5, 0.99)], "a": capped, "b": [(50, 0.99)],
         "issued": [(310, 0.99)]},
        checks, ["a", "b"],
    )  # fmt: skip
    assert failing.confidence["a"] < CONFIDENT
    outside = joint_reading(
        {"cast": [(300, 0.99)], "invalid": [(5, 0.99)], "a": [(245, 0.99)], "b": [(50, 0.99)],
         "issued": capped},
        checks, ["a", "b"],
    )  # fmt: skip
    assert outside.confidence["issued"] < CONFIDENT


def test_a_failing_sum_with_a_corrected_field_blames_it_not_the_fields_read_clearly() -> None:
    checks = [Check(("cast",), "==", ("invalid", "@options"))]
    # The corrected field's rest lost its last digit (1410 read as 141).
    alternatives = {
        "cast": [(1460, 0.99)], "invalid": [(50, 0.99)], "a": [(141, CORRECTED_CAP)],
    }  # fmt: skip
    blamed = joint_reading(alternatives, checks, ["a"], rewritten=frozenset({"a"}))
    assert blamed.holds is False
    assert blamed.confidence["cast"] >= CONFIDENT and blamed.confidence["invalid"] >= CONFIDENT
    assert blamed.confidence["a"] < CONFIDENT
    spread = joint_reading(alternatives, checks, ["a"])
    assert spread.confidence["cast"] < CONFIDENT


def test_a_corrected_field_does_not_clear_a_field_at_the_edge_of_confidence() -> None:
    # Seed 13's 912 read as 92 (its 1 lost) at 0.980, in a sum that fails by 820
    # beside a corrected field: the corrected field cannot take all the blame.
    checks = [Check(("cast",), "==", ("invalid", "@options"))]
    alternatives = {
        "cast": [(92, 0.9804)], "invalid": [(9, 0.9999)], "a": [(41, 0.882)],
        "b": [(821, 0.996)],
    }  # fmt: skip
    reading = joint_reading(alternatives, checks, ["a", "b"], rewritten=frozenset({"a"}))
    assert reading.holds is False
    assert reading.confidence["cast"] < CONFIDENT
    assert reading.confidence["invalid"] >= CONFIDENT and reading.confidence["b"] >= CONFIDENT


@pytest.mark.parametrize("text", ["1899", "17", "7415", "1234", "71", "4111", "1007"])
def test_a_plain_number_with_a_leading_1_or_7_is_never_taken_for_a_struck_out_one(
    text: str,
) -> None:
    for writer in range(len(NAMED_WRITERS)):
        gray = _cell(text, writer, seed=writer)
        degraded = degrade_cell(gray, np.random.default_rng(writer), 0.6)
        for cell in (gray, degraded):
            assert struck_out(_prepared(cell)) is None, (text, NAMED_WRITERS[writer].name)
            reading, corrected = _read(cell)
            assert not corrected
            assert reading.value == int(text) or reading.confidence < CONFIDENT


@pytest.mark.parametrize("writer", [0, 4, 9])
def test_a_struck_out_cell_with_nothing_readable_after_it_is_withheld(writer: int) -> None:
    rng = np.random.default_rng(7)
    cell = number_cell(
        "5", NAMED_WRITERS[writer], rng, cell_height=HEIGHT, cell_width=WIDTH, border=False,
        crossed_out="254",
    )  # fmt: skip
    gray = cell.gray.copy()
    gray[cell.owner >= 0] = PAPER  # only the struck-out figure is left
    assert (cell.owner == -1).any()
    reading, _ = _read(gray)
    assert reading.confidence < CONFIDENT
