"""Numbers written one digit a square (the Russian protocols' rows of squares).

A field whose printed box is a row of squares is read square by square: each
square holds one digit or nothing, so the digit reader never has to guess where
one digit ends and the next begins, and the squares' own borders (the hardest
print to remove from a whole row: five of them cross it) are each square's edges,
which the digit reader already strips. The squares are found in the template's
reference print, not assumed: a box without inner rules is read whole.

Each square is either written (its middle holds ink), empty (no ink at all) or
doubtful (a trace that is neither): a doubtful square, a gap between written
squares, or a written square the digit reader cannot read, and the field has no
reading (people transcribe it). All pure.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from ocr.digits import NumberReading

__all__ = ["combine_squares", "square_spans"]

INK_LEVEL = 170  # reference pixels darker than this are print
RULE_SHARE = 0.85  # a column of the box this inked (over its middle rows) is a rule
MIN_SQUARES = 2
SPACING_TOLERANCE = 0.15  # squares' widths may differ by this share of their mean
BEAM = 8


def square_spans(reference_box: np.ndarray) -> list[tuple[int, int]] | None:
    """The squares of a box, as column spans [x0, x1) in the box's pixels, from the
    reference's print over the box (its rectangle, borders included); None when the
    box has no evenly spaced inner rules. Pure."""
    h, w = reference_box.shape
    if h < 8 or w < 8:
        return None
    middle = reference_box[h // 5 : h - h // 5] < INK_LEVEL
    share = middle.mean(axis=0)
    ruled = share >= RULE_SHARE
    rules: list[tuple[int, int]] = []  # runs of ruled columns
    start: int | None = None
    for i, r in enumerate([*ruled.tolist(), False]):
        if r and start is None:
            start = i
        elif not r and start is not None:
            rules.append((start, i))
            start = None
    inner = [(a, b) for a, b in rules if a > 3 and b < w - 3]
    if len(inner) < MIN_SQUARES - 1:
        return None
    edges = [0.0, *((a + b) / 2 for a, b in inner), float(w)]
    widths = np.diff(edges)
    mean = float(widths.mean())
    if mean < 8 or float(np.abs(widths - mean).max()) > SPACING_TOLERANCE * mean:
        return None
    return [(round(a), round(b)) for a, b in itertools.pairwise(edges)]


def combine_squares(
    readings: Sequence[NumberReading | None], states: Sequence[str]
) -> NumberReading | None:
    """The number from its squares' readings. ``states`` per square: "written",
    "empty" or "doubtful". None (no reading: people transcribe it) when a square
    is doubtful, when written squares are not contiguous, or when a written square
    has no digit reading; an all-empty row is an empty reading, a dash alone in
    its row a dash. The number's
    alternatives are the likeliest digit combinations, each the product of its
    digits' probabilities, and the slants its squares were read at. Pure."""
    if "doubtful" in states:
        return None
    written = [i for i, s in enumerate(states) if s == "written"]
    if not written:
        return NumberReading(None, 0.0, [], empty=True)
    if written != list(range(written[0], written[-1] + 1)):
        return None
    lone = readings[written[0]]
    if len(written) == 1 and lone is not None and lone.dash:
        return NumberReading(None, 0.0, [], dash=True)  # a dash alone: the form's zero
    beam: list[tuple[str, float]] = [("", 1.0)]
    shears: list[float] = []
    for i in written:
        r = readings[i]
        if r is None or r.empty or r.dash or not r.alternatives:
            return None
        shears.extend(r.shears)
        digits = [(str(v), p) for v, p in r.alternatives if 0 <= v <= 9 and p > 0]
        if not digits:
            return None
        grown = [(s + d, ps * p) for s, ps in beam for d, p in digits]
        beam = sorted(grown, key=lambda t: -t[1])[:BEAM]
    merged: dict[int, float] = {}
    for s, p in beam:
        merged[int(s)] = merged.get(int(s), 0.0) + p
    ranked = sorted(merged.items(), key=lambda t: -t[1])
    value, top = ranked[0]
    if not math.isfinite(top) or top <= 0:
        return None
    return NumberReading(value, top, ranked, digits=len(written), shears=tuple(shears))
