"""Reading a photo of a precinct's posted result protocol against its template.

``read_protocol(template, photo_bytes)`` gives the spec's reading
(protocol-template/1, "Reading a photo"): a verdict, the precinct number, every
field's value with its confidence (a value only when confident), the template's
checks on those values, and per field the cell's corners in the photo (``quad``)
so that people can transcribe what the machine would not give.

The steps, in order of cost:

1. **Decode** (EXIF orientation applied), refuse a photo too dark to read.
2. **Find the page.** ORB features of the reference's print, matched and fitted
   with a RANSAC homography (and, failing that, a rotation-scale-translation fit
   of the same matches), then *refined densely*: the photo is warped into the
   reference frame and registered to it by ECC (enhanced correlation
   coefficient) with the cells' insides masked out, so the handwriting, which the
   reference does not have, cannot pull the fit; the correlation reached is the
   evidence that the page is this form at all. Why not the ballot reader's
   ``ocr.align`` path: on a filled-in protocol the photo's ORB budget goes to
   the handwriting (48% of the keypoints on a ru-2018 page lie in its cells, 9%
   on by-2020) and the repeated structure (a column of digit squares, rules a row
   apart) gives matches that agree with each other but not with the page: 23% of
   the ratio-tested matches are right on ru-2018 (43% on by-2020), the inlier
   share sits around the ballot's 0.2 threshold, and some fits are degenerate
   (the page "behind the camera"). ECC uses every printed pixel, not corners.
3. **Header check.** Tesseract reads the printed title's keywords
   (``header_keywords``: ПРОТОКОЛ / ПРАТАКОЛ ...) where the fit puts them, as the
   ballot reader does: a ballot, another form or a blank page is
   ``not_a_protocol``. Blur is only judged when the keywords are not read; a
   title read whose smaller words are too soft for Tesseract passes when the
   keywords' places match the form's print blurred as much (``header_by_print``;
   the reasons say ``header_blurred``): the cells' own confidences decide.
4. **Each cell.** Its neighbourhood is warped at reference scale; the residual
   shift is found from the printed rules (long runs of ink), first for all cells
   together, then per cell near a plane through their shifts (a row of squares
   alone can match one square off). The photo's rules are removed (inpainted
   from the paper around them), paper is added around the cell, and
   ``ocr.digits.read_number`` reads the number with a calibrated confidence and
   its alternatives. A cell whose rules are not found abstains. A violet stamp
   over the cells is faded out by colour first (``ocr.protocol_colour``: pens
   are blue or black), and so is a second pen's signature across the cells: the
   figures' pen is told from the median cell's hue, and long strokes of the
   other hue are faded in each cell before its rules are removed. A box printed
   as a row of squares (found in the reference) is read one digit a square
   (``ocr.protocol_squares``), its shift
   searched past one square across so that the row cannot be read a square off.
   A cell that starts with a struck-out figure (``ocr.digits.struck_out``: a
   group struck through by a line or a zigzag, a gap, the right number after it)
   is read without it, at a capped confidence; the reasons say
   ``corrected:FIELD``. One hand writes the protocol: a cell whose own estimate
   of the writing's slant strays from the median of the others' is read again
   at the writer's slant (``writer_slants``).
5. **Joint reading** (:func:`joint_reading`, pure): among the fields'
   alternatives, the combination that satisfies the form's checks is preferred
   when it is nearly as likely as the best reading; a failing reading is never
   made to pass by an unlikely alternative, and keeps its failing checks, whose
   fields are then suspected in proportion to their odds of being misread in a
   way that explains the failure (a field whose other readings would not make
   the check hold is misread that way only when its truth is none of them).
   A value is given at CONFIDENT, or at CONFIDENT_FAILING on a failing reading,
   unless each failing check holds a field the reader doubts itself (DOUBTED):
   the failure is then that field's, and it goes to people (:func:`gives`).
6. **Verdict**: ``read`` when every field has a value, else ``partial``.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
import pytesseract
from PIL import Image
from pydantic import BaseModel, Field

from ocr.align import (
    N_FEATURES,
    RANSAC_PX,
    Features,
    detect,
    flatten_lighting,
    homography_problem,
    inside,
    match,
    project,
    reference_features,
    resize_long_side,
    warp_region,
)
from ocr.digits import (
    SHEARS,
    NumberReading,
    ink_mask,
    read_number,
    stray_probability,
    struck_out,
)
from ocr.header import (
    MIN_RATIO,
    TEXT_HEIGHT,
    HeaderPlan,
    check_keywords,
    edge_sharpness,
    estimate_blur,
    keyword_crops,
    plan_header,
)
from ocr.images import ImageRejected, decode_gray
from ocr.protocol_colour import (
    BLUE_PEN,
    PEN_DARK,
    decode_rgb,
    figures_pen,
    other_pen_faded,
    pen_hue,
    stamp_free,
)
from ocr.protocol_squares import combine_squares, square_spans
from ocr.protocol_template import (
    ALL_OPTIONS,
    ProtocolTemplate,
    load_protocol_template,
)
from ocr.template import read_photo_files
from tally.proof import Check

__all__ = [
    "CONFIDENT",
    "CONFIDENT_FAILING",
    "DOUBTED",
    "CheckReading",
    "FieldReading",
    "JointReading",
    "ProtocolReading",
    "Verdict",
    "gives",
    "header_by_print",
    "joint_reading",
    "read_protocol",
    "read_protocol_files",
]


class Verdict(StrEnum):
    """The reader's verdict (protocol-template/1)."""

    READ = "read"  # every field has a value
    PARTIAL = "partial"  # some fields are null: people transcribe them
    NOT_A_PROTOCOL = "not_a_protocol"  # not a protocol of this template
    UNREADABLE = "unreadable"  # blurred, too dark, cut off, cannot align


Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]


class FieldReading(BaseModel):
    value: int | None = Field(default=None, ge=0)  # given only when confident
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    # The cell's corners [x, y] (clockwise from top left) in the pixels of the photo
    # as stored, made upright by its EXIF orientation; None when it was not located.
    quad: Quad | None = None


class CheckReading(BaseModel):
    check: int = Field(ge=0)
    holds: bool | None  # None: a figure it needs has no value


class ProtocolReading(BaseModel):
    photo: str = ""
    verdict: Verdict
    precinct: str | None = None
    fields: dict[str, FieldReading] = Field(default_factory=dict)
    checks: list[CheckReading] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)


# -- thresholds (measured with bench/protocol_reader.py) ------------------------------

WORK_SIDE = 2000  # long side the photo is worked at: digits need the pixels
MAX_PIXELS = 40_000_000
DARK_LEVEL = 45  # paper darker than this (of 255) cannot be read reliably
BLURRY_EDGES = 0.24  # whole-photo edge steepness under which a failure is put to blur
BLUR_MAX = 0.1 * TEXT_HEIGHT  # header blur (sigma, crop pixels) beyond which nobody reads
BLUR_DOUBTFUL = 0.08 * TEXT_HEIGHT
UNCLEAR_RATIO = 0.65  # a keyword read this well (under MIN_RATIO) is damaged, not absent
# A header whose title is read where the form prints it, but whose smaller words are
# too soft for Tesseract (blur from BLUR_DOUBTFUL), is the form's when its keyword
# crops match the reference's print, blurred as the photo is, at least this well
# (ocr.header.estimate_blur's correlation). The tuning photos (seeds 5, 7, 23: 540
# protocols, 810 photos that are not) had three such headers (the subtitle's
# "голосования" read at 0.21 to 0.76 at an estimated blur of 4), matching at 0.906
# to 0.911; each lost its 14 fields to "blurred". Other print in the keywords'
# places (each reference shifted by up to 300 px, another design's page) matched
# at 0.77 at most, blurred by up to 5 px; the reference itself at 0.86 or more.
# No photo that is not a protocol got this far: the page fit rejected all 810.
PRINT_MATCH = 0.85
PRINT_BLUR_MAX = 5.0  # crop pixels: beyond, the reference's own match nears PRINT_MATCH

FIRST_SIDE = 1000  # ORB's first search, as the ballot reader's
SECOND_SIDE = 1600  # and its second, for a page filling little of the frame
SECOND_FEATURES = 5000
OUTLINE_SIDE = 800  # the page's outline is looked for at this size
MIN_FIRST_INLIERS = 12  # fewer consistent matches than this: no page to refine
ECC_SCALE = 0.25  # the dense refinement's sampling of the reference
ECC_SIGMA = 2.0
ECC_ITERATIONS = 60
# ECC correlation of the refined page with the reference (cells masked): clear
# photos of the form score 0.79-0.97; 30 photos that are not (a ballot, a text
# page, a blank page, another design's protocol) at most 0.45 once refined.
MIN_CORRELATION = 0.6
# Residual shift (reference pixels) the page fit may leave, searched for all cells
# together (ECC at quarter scale leaves up to ~15 on the ru-2018 form, whose print
# is sparse), then per cell around it.
WIDE_SEARCH = 28
MID_SEARCH = 12  # each cell's own best shift this near the common one
LOCAL_SEARCH = 3  # and the final search around the plane through those
PRECINCT = "@precinct"  # the precinct box among the cells (not a field id)
# Correlation of a cell's printed rules with the reference's: a cell whose rules are
# not where they should be (a fold, a bad fit) is not read. Located cells of the
# tuning photos match at 0.68 or more (clear photos: 0.73); a row of squares found
# one square off (the fault the common shift now prevents) matched at 0.50.
MIN_CELL_MATCH = 0.55
INK_LEVEL = 170  # reference pixels darker than this are print (rules, labels)
BOX_INSIDE = 3  # reference pixels a cell's box must keep inside the photo to be read
PRINT_REACH = 9  # pixels around the print where a cell's ink may be print, for its pen
MIN_WRITTEN = 40  # a box with fewer pixels of ink away from the print has no figure
# One hand writes a protocol's figures, at one slant (the generator: the writer's
# slant, each digit within a normal 0.04 of it), but each cell's own estimate
# (ocr.digits.estimate_shear, on a tenth's grid) wanders with few digits: one
# writer's cells of tuning seed 23 came out at 0.3 to 0.5, a lost 1 among them. A
# cell read at a slant further than this from the median of the photo's cells is
# read again within it (writer_slants): the next slant on the grid either side.
# Clear photos of tuning seeds 5, 7, 23, 37, 41, 43, 47: 10,811 -> 10,856 of 12,320
# fields given (by-2020 +15, landscape +25, ru-2018 +5), the same two values wrong;
# validation seeds 17, 19, 29, 31: +10, +7, +4, 0, the same six wrong. Every cell
# at the median itself, no choice left: seed 5 +1 (+5 with the choice).
WRITER_SLANT = 0.1

# A value is given when its probability of being right is at least this. Measured
# on the tuning photos (bench/protocol_reader.py's TUNING_SEED, 60 clear and 20 hard
# photos per design, 3,520 fields): no value given at or above 0.98 was wrong; at
# 0.97 two were (0.971, 0.973: a 1 touching the next digit lost), at 0.95 four.
# Re-measured with the lone digits' map and failing checks' suspicion (clear
# photos of seeds 5, 7 and 23, 4,752 fields): two values given wrong, both wrong
# before too (seed 23: 16 read as 6, a touching 1 lost; 81 read as 8, a 1 against
# its square's side inpainted with the rule); seed 7's 103 read as 105 (0.990, a
# lone 3 taken for a 5) is withheld by the sum it breaks. The 81 is now withheld:
# its square is doubtful, its rule lopsided by the 1 (SIDE_ROWS).
CONFIDENT = 0.98
# ... and at least this when the form's checks fail on the joint reading: the
# arithmetic says something is misread. Measured with the two networks' ensemble
# (ocr.digits) on the clear photos of seeds 5, 7 and 23 (13,680 fields, 4,560
# values given at CONFIDENT): on readings whose checks fail, 77 values between
# 0.98 and 0.99, two of them wrong (seed 23: a touching 1 lost, 16 as 6 at 0.990;
# 1800 under a stamp and a signature as 1890 at 0.982), against none wrong of
# 1,364 at 0.99 or more and none of the 3,119 values given where the checks
# held or could not be told.
CONFIDENT_FAILING = 0.99
# ... unless every failing check holds a field whose own reading is more likely
# wrong than right (its best reading under this): the failure is put to that field,
# which goes to people, and the rest of the reading is judged as though the checks
# could not yet be told (CONFIDENT), as when that field gives no reading at all.
# The joint step replayed on the per-field readings of the clear photos of tuning
# seeds 5, 7, 23, 37, 41, 43, 47 and validation seeds 17, 19, 29, 31 (19,360
# fields; seed 47 and the validation seeds read by the code of 2026-12-05, the
# others by this one): 17,057 -> 17,169 values given, the same eight wrong. At 0.3
# +68, at 0.65 +124, at 0.8 +137 and a ninth wrong (tuning seed 23's 16 read as 6
# at 0.989, a touching 1 lost).
DOUBTED = 0.5
MAX_DIGITS = 6
EDGE_PAD = 0.15  # paper added around a cleaned cell, a share of its size
PAPER = 235  # the level a cell's paper is brought to
COLOUR_MARGIN = 0.02  # share of the photo's long side kept around the cells for colour
SQUARE_SLACK = 12  # a row of squares' shift is searched this far past a square
SQUARE_CLEAR_WIN = 0.03  # the rows' match one square either way must be this much worse
SQUARE_SEARCH = 4  # reference pixels a square's rule is looked for around its place
SQUARE_INSET = 4  # and the pixels of the square left out beside it
# Paper added around a square's inside (shares of its width, height): its digit
# fills it, and the digit reader takes long strokes near a cell's edges (a 2's
# foot, a 7's bar) for ruled lines.
SQUARE_MARGIN = (1.0, 0.5)
SQUARE_FAINT = 0.08  # darker than its paper by less than this is never ink
SQUARE_STRONG = 0.5  # a row's strokes fainter than this are deepened to it
SQUARE_WRITTEN = 0.04  # a square whose middle is this much ink is written
SQUARE_EMPTY = 0.005  # one with this little, empty; between: doubtful
# Ink along a square's rule (_ink_beside_rules), which the rules' removal takes with
# the rule: a square beside the written ones with ink along a side over SIDE_ROWS
# of its rows in a run is doubtful. Measured on the clear photos of seeds 5, 7
# and 23 (ru-2018, 2,706 such squares): seed 23's faint 1 of 81, against the rule
# it shares with the 8, runs 0.45 of its square's rows; the others score at most
# 0.39, save a few at 0.4 or more (print and JPEG, no ink) which withhold 4 right
# values of the 2,284 given (3 more are given: checks that now hold); held-out
# seeds 11 and 13, one right value each. Folded at the rule's peak instead of
# its half-depth centre, or with SIDE_EXCESS 0.5, saturated or sharpened rules
# scored up to 1.0 and the 1 less than they. (Counted as a share of rows, not a
# run: one more right value withheld.)
SIDE_REACH = 9  # pixels either side of a rule's centre compared
SIDE_EXCESS = 0.3  # a row's one-sided ink, a share of the rule's depth summed
SIDE_ROWS = 0.4
# A doubtful square beside the written ones is a stray mark when the junk class
# gives each of its blobs at least this (see _read_squares). On the stamped ru-2018
# cells of tuning seed 5 that had no reading, the rings' remnants beside the
# numbers scored 0.96 to 1.0; others (0.42 to 0.85) mixed with pieces of lettering;
# every named writer's digits score under 0.01. Tuning seeds 5, 7, 23 (ru-2018,
# clear): 21 fields gained a reading, 17 of them right (the 4 wrong under 0.21);
# fields given +4, 0, +1, none wrong. A lone dash there is no digit either (1.0):
# with ocr.digits.DASH_RATIO at 2.0 a ring's flat remnant is a dash, and counted as
# a digit it withheld its row; tuning seeds 5, 7, 23, 37, 41, 43 (clear): fields
# given +2, 0, 0, 0, +3, 0, none wrong.
STRAY_JUNK = 0.9
# A written square standing alone, an empty square between it and the others, is a
# stray mark when the junk class gives each of its blobs at least this: digits are
# written in one run, so such a square is a digit only if the square between was
# misjudged empty. A dark arc of the stamp's ring two squares before 91 (tuning
# seed 5) scored 0.81; the named writers' digits score under 0.01. The number is
# then capped as for any stray mark (a digit dropped breaks the sum that would
# vouch for it). Clear photos, ru-2018: tuning seeds 5, 7, 23, 37, 41, 43 +2, +1,
# 0, 0, 0, 0 fields given; validation seeds 17, 19, 29, 31 0, +1, 0, -1 (a field
# now read made a check fail: 1250 at 0.989 then needed CONFIDENT_FAILING); none
# wrong.
APART_JUNK = 0.5
# A corrected figure (ocr.digits.struck_out): the rest of the cell is read with the
# struck-out group and the commission's "corrected, believe it" signature beside the
# box painted over. The signature starts in the box's last fifth (the generator:
# 0.8 to 1.0 of its width, 0.75 to 0.95 of its height) and runs out of it, to within
# SIGNATURE_REACH pixels of its right or bottom side (the rules' removal takes a few
# pixels beside each rule). A last digit that touches it goes with it: of 70
# corrected cells of the tuning photos (seeds 5, 7, 23) read this way, 22 read
# wrong, 19 of them for that (1410 as 141, at 0.996) -- hence CORRECTED_CAP.
CORRECTION_SIGNATURE = 0.22
SIGNATURE_REACH = 6
# A corrected cell's reading is worth at most this: under CONFIDENT, so that its
# value is given only when an equality of the form that holds on it vouches for it
# (EQUALITY_ODDS: 0.9 becomes 0.991); a value no equality checks goes to people.
CORRECTED_CAP = 0.9
# The odds that a corrected cell's reading is wrong, when a check of it fails: 22 of
# the 70 read on the tuning photos were wrong (22 / 48). Exempting the check's other
# fields from its failure instead gave benchmark seed 13's 912 read as 92 (its 1
# lost) at 0.980, beside a corrected field, in a sum that failed by 820.
REWRITTEN_ODDS = 22 / 48
DASH_ZERO = 0.9  # a lone dash in a number's cell is zero, as commissions write it
# A box the stamp crosses (_stamped_cells): this many of its pixels brightened by at
# least STAMP_FADED grey levels when the stamp was faded. Against the generator's
# labels (clear photos of seeds 5 and 41, all three forms, the photos where a stamp
# was found): 175 boxes the stamp's ink touches found, 16 missed, 47 more found
# (the ring's faint edge beside a box; a violet-blue pen the fading took for the
# stamp). Its cells' faint ink is left out (ocr.digits.FAINT).
STAMP_FADED = 10
STAMPED_PIXELS = 20

# Joint reading: a protocol whose checks hold is, a priori, this much likelier than
# one whose arithmetic fails (most posted protocols add up). An alternative reading
# that satisfies the checks must have a joint probability at least (1 - PRIOR) /
# PRIOR of the best reading's to be preferred over it.
CHECKS_PRIOR = 0.9
ALT_MIN = 0.02  # alternatives less likely than this are never considered
MAX_CHANGED = 2  # at most this many fields read as an alternative
# An equality of the form (ballots cast = invalid + the options' votes) that holds
# on the values read multiplies each of its fields' odds of being right by this.
# Measured on the tuning photos: of 920 fields in an equality that held, none was
# misread, where their own confidences expected 38.9; with at most 3.0 errors (95%
# upper bound for none seen), the odds of being right grow at least 13 times.
# Re-measured with the two networks' ensemble (2026-12-05, bench/joint_odds.py,
# clear photos): seeds 5, 7, 23, 37, 41, 43, 47, 4,612 such fields, 54.9
# misreadings expected, none seen; with seeds 17, 19, 29, 77.7 expected and 2 seen
# (one writer's touching 1s lost in two fields of one sum, 1923 as 923 and 1827 as
# 827, compensating; read at 0.22 and 0.51, not given), at most 6.3 at 95%: at
# least 12.3 times. Kept.
EQUALITY_ODDS = 12.0
# An inequality that holds with nothing to spare (ballots received = issued +
# cancelled, on a form whose check is >=: the ballots lost are few) vouches for its
# fields the same way: a misreading lands exactly on the tie only by chance. Measured
# on the tuning photos (seeds 5, 7, 23, clear): of 591 fields in such a tie between
# different numbers, none was misread, where their own confidences expected 15.6;
# with at most 3.0 errors, the odds grow at least 5.2 times. Re-measured with the
# ensemble (2026-12-05, bench/joint_odds.py, clear photos of seeds 5, 7, 23, 37, 41,
# 43, 47, 17, 19, 29): 2,151 fields in such ties, 45.1 misreadings expected, one
# seen (seed 17's 100 read as 99 at 0.42, not given), at most 4.74 at 95%: at least
# 9.5 times (against 5.0: 33 values more on the first seven seeds, 22 on the last
# three, none wrong). A tie between two equal numbers (cast = issued, or received =
# issued with none cancelled) vouches for nothing: the same digits in the same hand
# are misread the same way.
TIE_ODDS = 9.5
# A check that fails is blamed on a field only as far as its misreading can explain
# the failure: the truth among its listed alternatives only where such a value makes
# the check hold, and outside them (where it may be anything) this share of the
# time. Measured on held-out writers (seeds.train_digits.EVALUATION_SEED and the
# named styles; 18,000 cells as protocols carry them, half degraded, three runs):
# of 84 numbers misread at 0.9 or more, 58 (0.69; 95% interval about 0.58 to 0.79)
# had their truth outside the alternatives (a touching 1 lost: 16 read as 6), of
# 335 at 0.5 or more 198 (0.59); bench/digits.py prints it. On the tuning photos
# (seeds 5, 7, 23) 1 of 8: the share is held-out handwriting's, not the generator's.
# Replayed on the clear photos of seeds 5, 7, 23 (5,280 fields), 16 more values
# given, none wrong; at 0.85, 3.
UNLISTED_MISREADS = 0.7


# -- joint reading (pure) ------------------------------------------------------------


@dataclass(frozen=True)
class JointReading:
    """The chosen value per field (None: no reading at all), its probability given
    the cell and the form's arithmetic, and whether the choice differs from each
    field's own best reading."""

    values: dict[str, int | None]
    confidence: dict[str, float]
    changed: list[str]
    holds: bool | None  # all checks hold (None: a check could not be evaluated)
    # the checks fail, each failing one on a field read under DOUBTED (_explained)
    explained: bool = False


def _expand(check: Check, option_ids: Sequence[str]) -> tuple[list[str], str, list[str]]:
    def names(side: Sequence[str]) -> list[str]:
        return [n for f in side for n in (option_ids if f == ALL_OPTIONS else (f,))]

    return names(check.left), check.op, names(check.right)


def _holds(
    expanded: Sequence[tuple[list[str], str, list[str]]], values: Mapping[str, int | None]
) -> list[bool | None]:
    out: list[bool | None] = []
    for left, op, right in expanded:
        lv = [values.get(n) for n in left]
        rv = [values.get(n) for n in right]
        if any(v is None for v in lv) or any(v is None for v in rv):
            out.append(None)
            continue
        a = sum(v for v in lv if v is not None)
        b = sum(v for v in rv if v is not None)
        out.append(a == b if op == "==" else a <= b if op == "<=" else a >= b)
    return out


def joint_reading(
    alternatives: Mapping[str, Sequence[tuple[int, float]]],
    checks: Sequence[Check],
    option_ids: Sequence[str],
    prior: float = CHECKS_PRIOR,
    max_changed: int = MAX_CHANGED,
    equality_odds: float = EQUALITY_ODDS,
    rewritten: frozenset[str] = frozenset(),
    tie_odds: float = TIE_ODDS,
    capped: frozenset[str] = frozenset(),
) -> JointReading:
    """Choose the fields' values jointly. Pure.

    ``alternatives`` are each field's readings with their probabilities (best
    first; empty when the cell gave none). The best reading of every field is
    taken, unless its checks fail and changing at most ``max_changed`` fields to
    their alternatives makes every check hold with a joint probability at least
    (1 - prior) / prior of the best reading's (the prior: a posted protocol adds
    up); of those, the likeliest. A reading no plausible alternative repairs
    keeps its values and its failing checks: arithmetic is reported, never
    forced. Each field's confidence is then the posterior probability of its
    value among the readings considered (the best one, weighed as failing or
    holding, and the repairs). An equality that holds on the values kept raises
    its fields' confidences (``_corroborated``), whether or not the other checks
    hold, and so, by ``tie_odds``, does an inequality that holds with nothing to
    spare between different numbers (not a ``capped`` field's: a reading the
    cell's reader doubts, capped under CONFIDENT, is vouched for by an equality
    only); not on a repair, which the checks chose. A
    check still failing lowers its fields' confidences (``_suspected``), unless a
    field of it was read at no confidence (it explains the failure); a
    ``rewritten`` field (a corrected figure's rest, read at a capped confidence)
    takes the blame its measured error rate gives it (REWRITTEN_ODDS). A reading
    kept failing is ``explained`` when each failing check holds a field whose own
    best reading is under DOUBTED (gives).
    """
    expanded = [_expand(c, option_ids) for c in checks]
    best: dict[str, int | None] = {
        f: (alts[0][0] if alts else None) for f, alts in alternatives.items()
    }
    own = {f: (alts[0][1] if alts else 0.0) for f, alts in alternatives.items()}
    results = _holds(expanded, best)
    if False not in results:
        corroborated = _corroborated(own, expanded, best, equality_odds, tie_odds, capped)
        return JointReading(best, corroborated, [], None if None in results else True)
    # Candidate changes: a field's other readings, with the ratio of their
    # probability to its best reading's.
    changes: list[tuple[str, int, float]] = []
    for f, alts in alternatives.items():
        if not alts or alts[0][1] <= 0:
            continue
        for value, p in alts[1:]:
            if p >= ALT_MIN:
                changes.append((f, value, p / alts[0][1]))
    need = (1 - prior) / prior
    repairs: list[tuple[float, dict[str, int | None], list[str]]] = []
    for k in range(1, max_changed + 1):
        for combo in itertools.combinations(changes, k):
            fields = [c[0] for c in combo]
            if len(set(fields)) < k:
                continue
            ratio = math.prod(c[2] for c in combo)
            if ratio < need:
                continue
            values = {**best, **{c[0]: c[1] for c in combo}}
            if False not in _holds(expanded, values):
                repairs.append((ratio, values, fields))
    if not repairs:
        # Kept as read, failing: an equality that holds still vouches for its own
        # fields (a misreading hides only behind an exactly compensating one, and
        # the check that fails is another).
        corroborated = _corroborated(own, expanded, best, equality_odds, tie_odds, capped)
        suspected = _suspected(corroborated, expanded, best, prior, rewritten, alternatives)
        return JointReading(best, suspected, [], False, _explained(expanded, results, own))
    # Posterior weights: the best reading (failing: 1 - prior) against each repair
    # (holding: prior), relative to the best reading's probability.
    readings = [best, *(v for _, v, _ in repairs)]
    weights = [1 - prior, *(prior * r for r, _, _ in repairs)]
    total = sum(weights)
    _, chosen, changed = max(repairs, key=lambda t: t[0])
    confidence: dict[str, float] = {}
    for f, alts in alternatives.items():
        # The chosen value's share of the readings considered, times the cell's
        # probability that one of the values considered is right at all.
        share = sum(w for w, r in zip(weights, readings, strict=True) if r[f] == chosen[f])
        seen = {r[f] for r in readings}
        mass = min(1.0, sum(p for v, p in alts if v in seen))
        confidence[f] = share / total * mass
    final = _holds(expanded, chosen)
    # No corroboration here: the checks chose the repair, they cannot also vouch for it.
    return JointReading(dict(chosen), confidence, changed, None if None in final else True)


def gives(confidence: float, holds: bool | None, explained: bool = False) -> bool:
    """Whether a field's value read at ``confidence`` is given, the form's checks
    on the joint reading holding (True), failing (False) or not all known (None):
    CONFIDENT, or CONFIDENT_FAILING when they fail, unless their failure is
    ``explained`` by fields the reader doubts itself (JointReading). Pure."""
    strict = holds is False and not explained
    return confidence >= (CONFIDENT_FAILING if strict else CONFIDENT)


def _explained(
    expanded: Sequence[tuple[list[str], str, list[str]]],
    results: Sequence[bool | None],
    own: Mapping[str, float],
) -> bool:
    """Whether some check fails (``results``, _holds on the values kept) and each
    failing one holds a field whose own best reading is under DOUBTED. Pure."""
    failing = [c for c, ok in zip(expanded, results, strict=True) if ok is False]
    return bool(failing) and all(
        min(own.get(f, 0.0) for f in (*left, *right)) < DOUBTED for left, _, right in failing
    )


def _suspected(
    confidence: Mapping[str, float],
    expanded: Sequence[tuple[list[str], str, list[str]]],
    values: Mapping[str, int | None],
    prior: float,
    rewritten: frozenset[str],
    alternatives: Mapping[str, Sequence[tuple[int, float]]],
) -> dict[str, float]:
    """Confidences lowered for the fields of a check that fails. Pure.

    A check fails either because the protocol's own arithmetic is wrong (1 -
    ``prior``) or because one of its fields is misread so that its true value
    makes the check hold (``prior`` times that field's odds of such a misreading,
    _explaining); each field keeps the probability that the failure is not its
    own misreading, at most its confidence. A misread lone digit (seed 7: 103 read
    as 105 at 0.990, no alternative repairing the sum) is then no longer given; a
    field the protocol's own error put in a failing check loses little when it
    was read with confidence, and less when none of its other readings would
    make the check hold."""
    out = dict(confidence)
    for check, ok in zip(expanded, _holds(expanded, values), strict=True):
        if ok is not False:
            continue
        left, _, right = check
        names = list(dict.fromkeys([*left, *right]))
        odds = {
            f: _explaining(p, alternatives.get(f, ()), f, check, values) / p
            for f in names
            if (p := min(max(confidence.get(f, 0.0), 0.0), 1.0)) > 0.0
        }
        if len(odds) < len(names):  # a field read at no confidence explains it all
            continue
        for f in rewritten.intersection(odds):
            # a corrected figure's rest is misread far more often than its capped
            # confidence says (REWRITTEN_ODDS): it takes its measured share of the
            # blame, and a clearly read field of the check keeps the rest of its own
            odds[f] = max(odds[f], REWRITTEN_ODDS)
        total = (1 - prior) + prior * sum(odds.values())
        for f, o in odds.items():
            out[f] = min(out[f], 1.0 - prior * o / total)
    return out


def _explaining(
    p: float,
    alternatives: Sequence[tuple[int, float]],
    field: str,
    check: tuple[list[str], str, list[str]],
    values: Mapping[str, int | None],
) -> float:
    """The probability that a field read at ``p`` is misread so that its true value
    makes the failing ``check`` hold: of its misreading's 1 - p, the share
    UNLISTED_MISREADS outside its listed ``alternatives`` (best first), and of the
    rest the listed alternatives' share that would make the check hold; with none
    listed, all of it. Pure."""
    listed = list(alternatives[1:])
    total = sum(q for _, q in listed)
    if total <= 0:
        return 1.0 - p
    repairing = sum(
        q for v, q in listed if _holds([check], {**values, field: v})[0] is not False
    )  # fmt: skip
    return (1.0 - p) * (UNLISTED_MISREADS + (1.0 - UNLISTED_MISREADS) * repairing / total)


def _corroborated(
    confidence: Mapping[str, float],
    expanded: Sequence[tuple[list[str], str, list[str]]],
    values: Mapping[str, int | None],
    odds: float,
    tie_odds: float = 1.0,
    capped: frozenset[str] = frozenset(),
) -> dict[str, float]:
    """Confidences raised for the fields of an equality that holds, and of an
    inequality that holds as a tie between different numbers (``_tie``). Pure.

    A misread field leaves an equality holding only if another field of it is
    misread by exactly the compensating amount, or if the protocol's own
    arithmetic was wrong by exactly the misreading: the odds of the field being
    right are multiplied by ``odds`` (measured, see EQUALITY_ODDS); for a tie, by
    ``tie_odds`` (TIE_ODDS), except a ``capped`` field's. A field vouched for by
    both takes the larger."""
    out = dict(confidence)
    factor: dict[str, float] = {}
    equal, tied = vouching(expanded, values)
    for fields, gain in ((equal, odds), (tied - capped, tie_odds)):
        for f in fields:
            factor[f] = max(factor.get(f, 1.0), gain)
    for f, gain in factor.items():
        p = min(max(out.get(f, 0.0), 0.0), 1.0)
        if 0.0 < p < 1.0 and gain > 1.0:
            out[f] = p * gain / (p * gain + (1 - p))
    return out


def vouching(
    expanded: Sequence[tuple[list[str], str, list[str]]], values: Mapping[str, int | None]
) -> tuple[set[str], set[str]]:
    """The fields of the form's equalities that hold on ``values``, and those of its
    inequalities that hold as a tie between different numbers (``_tie``): the fields
    the checks vouch for (``_corroborated``; measured by bench/joint_odds.py).
    ``expanded``: the checks with ALL_OPTIONS expanded (``_expand``). Pure."""
    equal: set[str] = set()
    tied: set[str] = set()
    for (left, op, right), ok in zip(expanded, _holds(expanded, values), strict=True):
        if ok is not True:
            continue
        if op == "==":
            equal |= {*left, *right}
        elif _tie(left, right, values):
            tied |= {*left, *right}
    return equal, tied


def _tie(left: Sequence[str], right: Sequence[str], values: Mapping[str, int | None]) -> bool:
    """Both sides of a check sum to the same, and not merely because one number
    stands on each side with the same value (zeros aside). Pure."""
    lv = [values.get(n) for n in left]
    rv = [values.get(n) for n in right]
    if any(v is None for v in (*lv, *rv)):
        return False
    a = [v for v in lv if v]
    b = [v for v in rv if v]
    if sum(a) != sum(b) or not a:
        return False
    return not (len(a) == 1 and len(b) == 1)


# -- the template, prepared once ---------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    features: Features
    mask: np.ndarray  # uint8, reference size: 255 where ECC may look
    ecc_reference: np.ndarray  # float32, the blurred reference at ECC_SCALE
    ecc_mask: np.ndarray
    header: HeaderPlan


_T = TypeVar("_T")
_plans: dict[str, _Plan] = {}
_plans_lock = threading.Lock()
PLANS_KEPT = 8  # templates whose plans a process keeps (one election has one or two)


def _keep(cache: dict[str, _T], key: str, value: _T) -> None:
    """Remember ``value`` under ``key`` in one of this module's per-template caches,
    the oldest entries dropped beyond PLANS_KEPT."""
    with _plans_lock:
        cache[key] = value
        while len(cache) > PLANS_KEPT:
            cache.pop(next(iter(cache)))


def _plan(template: ProtocolTemplate) -> _Plan:
    ref = template.reference
    key = hashlib.sha256(ref.tobytes()).hexdigest() + repr(template.document.model_dump())
    with _plans_lock:
        if (plan := _plans.get(key)) is not None:
            return plan
    doc = template.document
    mask = np.full(ref.shape, 255, np.uint8)
    # The cells' insides, where the handwriting is; their printed borders stay (on a
    # form without table rules they are most of the structure there is).
    for x, y, w, h in [*template.boxes.values(), doc.precinct_box]:
        inset = max(2, min(w, h) // 10)
        mask[y + inset : y + h - inset, x + inset : x + w - inset] = 0
    h, w = ref.shape
    size = (max(1, round(w * ECC_SCALE)), max(1, round(h * ECC_SCALE)))
    small = cv2.resize(ref, size, interpolation=cv2.INTER_AREA)
    ecc_reference = cv2.GaussianBlur(small.astype(np.float32), (0, 0), ECC_SIGMA)
    ecc_mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    first_top = min([doc.precinct_box[1], *(b[1] for b in template.boxes.values())])
    header = plan_header(ref, first_top, list(doc.header_keywords), doc.ocr_languages)
    plan = _Plan(reference_features(ref), mask, ecc_reference, ecc_mask, header)
    _keep(_plans, key, plan)
    return plan


# -- finding the page ----------------------------------------------------------------


def _ecc_refine(
    plan: _Plan, photo: np.ndarray, homography: np.ndarray, ref_size: tuple[int, int]
) -> tuple[np.ndarray, float] | None:
    """Dense refinement of a first fit: (homography, correlation) or None."""
    w, h = ref_size
    out = (plan.ecc_reference.shape[1], plan.ecc_reference.shape[0])
    upright = warp_region(photo, homography, (0, 0, w, h), ECC_SCALE, size=out)
    image = cv2.GaussianBlur(upright.astype(np.float32), (0, 0), ECC_SIGMA)
    start = np.eye(3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_ITERATIONS, 1e-5)
    try:
        rho, warp = cv2.findTransformECC(
            plan.ecc_reference, image, start, cv2.MOTION_HOMOGRAPHY, criteria, plan.ecc_mask, 5
        )
    except cv2.error:
        return None
    # upright pixel u = S p for reference point p; ECC maps reference-sample pixels
    # to upright pixels: photo = H S^-1 C S p.
    scale = np.diag([ECC_SCALE, ECC_SCALE, 1.0])
    combined = homography @ np.linalg.inv(scale) @ warp.astype(np.float64) @ scale
    if abs(combined[2, 2]) < 1e-12:
        return None
    return combined / combined[2, 2], float(rho)


def _first_fits(
    plan: _Plan, flat: np.ndarray, long_side: int, count: int
) -> Iterator[tuple[np.ndarray, int]]:
    """First fits of the page from ORB matches at one matching size: the RANSAC
    homography, then a rotation-scale-translation fit of the same matches.

    The second exists for forms of repeated structure (a column of digit squares,
    row after row): matches a row apart can agree on a degenerate homography (the
    page "behind the camera"), while four degrees of freedom leave them no room;
    ECC then adds the perspective."""
    _, scale = resize_long_side(flat, long_side)
    found = detect(flat, long_side, count=count)
    src, dst = match(plan.features, found)
    if len(src) < MIN_FIRST_INLIERS:
        return
    cv2.setRNGSeed(12345)  # the same photo must always read the same
    homography, mask = cv2.findHomography(
        src, dst, cv2.USAC_MAGSAC, RANSAC_PX / scale, maxIters=3000, confidence=0.999
    )
    if homography is not None and mask is not None and int(mask.sum()) >= MIN_FIRST_INLIERS:
        yield np.asarray(homography, np.float64), int(mask.sum())
    cv2.setRNGSeed(12345)
    affine, mask = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX / scale, maxIters=3000
    )
    if affine is not None and mask is not None and int(mask.sum()) >= MIN_FIRST_INLIERS:
        yield np.vstack([np.asarray(affine, np.float64), [0.0, 0.0, 1.0]]), int(mask.sum())


def _outline_fits(flat: np.ndarray, ref_size: tuple[int, int]) -> Iterator[tuple[np.ndarray, int]]:
    """First fits from the page's outline (a bright quadrilateral on a darker
    table), each of its four turns: when the print gives no consistent matches."""
    small, scale = resize_long_side(flat, OUTLINE_SIDE)
    blurred = cv2.GaussianBlur(small, (0, 0), 2)
    _, bright = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return
    page = max(contours, key=cv2.contourArea)
    if cv2.contourArea(page) < 0.15 * small.shape[0] * small.shape[1]:
        return
    quad = cv2.approxPolyDP(page, 0.02 * cv2.arcLength(page, True), True).reshape(-1, 2)
    if len(quad) != 4:
        return
    corners = quad.astype(np.float64) / scale
    # clockwise in image coordinates (y down), starting anywhere: each turn is tried
    centre = corners.mean(axis=0)
    order = np.argsort(np.arctan2(corners[:, 1] - centre[1], corners[:, 0] - centre[0]))
    corners = corners[order]
    w, h = ref_size
    ref = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    for turn in range(4):
        rolled = np.roll(corners, -turn, axis=0)
        homography = cv2.getPerspectiveTransform(ref.astype(np.float32), rolled.astype(np.float32))
        yield np.asarray(homography, np.float64), 0


def _locate(
    plan: _Plan, template: ProtocolTemplate, photo: np.ndarray
) -> tuple[np.ndarray | None, float, int, str | None]:
    """(homography, ECC correlation, inliers, problem) of the page in the photo:
    first fits at two matching sizes, each refined by ECC, until one correlates."""
    flat = flatten_lighting(photo)
    size = (photo.shape[1], photo.shape[0])
    best: tuple[np.ndarray | None, float, int, str | None] = (None, 0.0, 0, "too_few_matches")
    tried = 0
    fits = itertools.chain(
        _first_fits(plan, flat, FIRST_SIDE, N_FEATURES),
        _first_fits(plan, flat, SECOND_SIDE, SECOND_FEATURES),
        _outline_fits(flat, template.size),
    )
    for first, inliers in fits:
        tried += 1
        if homography_problem(first, template.size, size) is not None:
            continue
        refined = _ecc_refine(plan, flat, first, template.size)
        if refined is None:
            continue
        homography, rho = refined
        if homography_problem(homography, template.size, size) is not None:
            continue
        if rho > best[1]:
            best = (homography, rho, inliers, None)
        if rho >= MIN_CORRELATION:
            return best
    if best[0] is None:
        return None, 0.0, 0, "no_plausible_fit" if tried else "too_few_matches"
    return best[0], best[1], best[2], "low_correlation"


# -- one cell ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cell:
    reading: NumberReading | None  # None: not read (cut off, rules not found)
    quad: Quad | None
    match: float
    reason: str | None = None
    corrected: bool = False  # a struck-out figure was found and the rest read


def _rules(gray: np.ndarray, w: int, h: int) -> np.ndarray:
    """The printed rules of a cell's neighbourhood: long horizontal and vertical
    runs of ink (handwritten strokes are shorter), blurred for matching. Pure."""
    ink = cv2.adaptiveThreshold(
        gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 25, 12
    )
    horizontal = cv2.morphologyEx(
        ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (max(9, w // 3), 1))
    )
    vertical = cv2.morphologyEx(
        ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(9, int(h * 0.85))))
    )
    rules = np.maximum(horizontal, vertical).astype(np.float32) / 255.0
    return np.asarray(cv2.GaussianBlur(rules, (0, 0), 1.5), dtype=np.float32)


@dataclass(frozen=True)
class _Patch:
    box: tuple[int, int, int, int]
    origin: tuple[int, int]  # reference pixel of the patch's top left
    patch: np.ndarray  # the photo warped into the reference frame around the box
    reference: np.ndarray  # the reference over the same rectangle
    rules: np.ndarray  # the photo's printed rules (see _rules)
    score: np.ndarray  # match of the reference's rules at each shift, (2R+1) square
    spans: Sequence[tuple[int, int]] | None = None  # a row of squares' (square_spans)
    hue: np.ndarray | None = None  # the pen hue over the patch (ocr.protocol_colour.pen_hue)
    whole: bool = True  # the neighbourhood lies wholly in the photo (see _patch)


def _reference_crop(ref: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """The reference over a rectangle that may reach past its edges (paper there)."""
    rh, rw = ref.shape
    crop = ref[max(0, y0) : min(rh, y1), max(0, x0) : min(rw, x1)]
    return np.pad(
        crop,
        ((max(0, -y0), max(0, y1 - rh)), (max(0, -x0), max(0, x1 - rw))),
        constant_values=255,
    )


def _patch(
    template: ProtocolTemplate,
    photo: np.ndarray,
    homography: np.ndarray,
    box: tuple[int, int, int, int],
    r: int = WIDE_SEARCH,
    spans: Sequence[tuple[int, int]] | None = None,
    hue: np.ndarray | None = None,
) -> _Patch | None:
    """A cell's neighbourhood and how well the printed rules match at each residual
    shift (up to ``r`` reference pixels); None when the box itself is not in the
    photo. The rules matched reach a little past the cell; past a whole square for
    a row of squares (``spans``), so that one square off leaves a rule on paper.
    A box near the photo's edge (a tight shot) has part of its neighbourhood
    outside: the edge's pixels are repeated there (no paper-white border to take
    for a rule), and the patch is not ``whole``."""
    x, y, w, h = box
    extra = max(4, h // 6)
    if spans:
        extra = max(extra, max(b - a for a, b in spans) + SQUARE_SLACK // 2)
    m = r + extra
    x0, y0, x1, y1 = x - m, y - m, x + w + m, y + h + m
    whole = inside(homography, (x0, y0, x1, y1), photo.shape[:2])
    if not whole and not _box_inside(homography, box, (0, 0), photo.shape[:2]):
        return None
    patch = warp_region(photo, homography, (x0, y0, x1, y1), border=None)
    reference = _reference_crop(template.reference, x0, y0, x1, y1)
    rules = _rules(patch, w, h)
    core = _rules(reference, w, h)[r:-r, r:-r]
    score = cv2.matchTemplate(rules, core, cv2.TM_CCOEFF_NORMED)
    hue_patch = None if hue is None else warp_region(hue, homography, (x0, y0, x1, y1), border=0)
    return _Patch(
        box, (x0, y0), patch, reference, rules, np.nan_to_num(score), spans, hue_patch, whole
    )


def _box_inside(
    homography: np.ndarray,
    box: tuple[int, int, int, int],
    shift: tuple[int, int],
    shape: tuple[int, ...],
) -> bool:
    """Whether a box, at a residual ``shift`` (reference pixels), lies wholly in the
    photo with BOX_INSIDE pixels to spare: a cell cut by the photo's edge may have
    lost a digit, and is not read."""
    x, y, w, h = box
    dx, dy = shift
    m = BOX_INSIDE
    rect = (x + dx - m, y + dy - m, x + w + dx + m, y + h + dy + m)
    return inside(homography, rect, (int(shape[0]), int(shape[1])))


def _cells(
    template: ProtocolTemplate,
    photo: np.ndarray,
    homography: np.ndarray,
    boxes: Mapping[str, tuple[int, int, int, int]],
    to_stored: tuple[float, float],
    hue: np.ndarray | None = None,
    stamped: frozenset[str] = frozenset(),
) -> dict[str, _Cell]:
    """Locate, clean and read the cells: the residual shift the page fit left is
    found first for all cells together (their rules' match maps summed: one row
    of squares alone can match a square off, the whole table cannot), then
    refined cell by cell within LOCAL_SEARCH of it. With the photo's pen ``hue``
    (ocr.protocol_colour.pen_hue), a second pen's strokes over the cells are
    faded once the figures' pen is known (_figures_pen); the cells named in
    ``stamped`` are read as under the stamp (_stamped_cells). A cell read at a
    slant far from the others' is read again at the writer's (writer_slants)."""
    squares = _squares(template)
    r = squares.radius
    patches = {
        name: _patch(template, photo, homography, box, r, squares.spans.get(box), hue)
        for name, box in boxes.items()
    }
    # The shift is found from the cells whose neighbourhood is wholly in the photo;
    # one beside the photo's edge follows it.
    maps = [p.score for n, p in patches.items() if p is not None and p.whole and n != PRECINCT]
    gx, gy = r, r
    ambiguous = False
    if maps:
        total = np.sum(maps, axis=0) / len(maps)
        # Across, past a square; down, no further than ever (rows of squares a
        # row apart look alike: the whole table one row off must not be found).
        (gx, gy), best = _best_shift(total, r, r, (r, WIDE_SEARCH))
        period = _period(squares)
        if period:
            # One square either way: the runner-up a row of squares can give.
            others = [
                _best_shift(total, gx + side * period, gy, SQUARE_SEARCH)[1] for side in (-1, 1)
            ]
            ambiguous = best - max(others) < SQUARE_CLEAR_WIN
    # Each cell's best shift near the common one, then a plane through them (the
    # residual grows across the page with a small rotation or scale left over).
    points: list[tuple[float, float, float, float, float]] = []
    for name, found in patches.items():
        if found is None or name == PRECINCT or not found.whole:
            continue
        (dx, dy), score = _best_shift(found.score, gx, gy, MID_SEARCH)
        x, y, w, h = found.box
        points.append((x + w / 2, y + h / 2, dx, dy, score))
    plane = _shift_plane(points)
    figures = _figures_pen(patches, gx - r, gy - r) if hue is not None else None
    out: dict[str, _Cell] = {}
    readers: dict[str, Callable[..., _Cell]] = {}
    for name, found in patches.items():
        if found is None:
            out[name] = _Cell(None, None, 0.0, "cut_off")
            continue
        x, y, w, h = found.box
        if name == PRECINCT or (plane is None and found.whole):
            # Away from the table (or no table to speak of): its own best shift.
            cx, cy = (gx, gy) if name != PRECINCT else (r, r)
            (dx, dy), match = _best_shift(found.score, cx, cy, (r, WIDE_SEARCH))
        else:
            px, py = gx, gy
            if plane is not None:
                at = np.array([1.0, x + w / 2, y + h / 2])
                px, py = round(float(plane[0] @ at)), round(float(plane[1] @ at))
            (dx, dy), match = _best_shift(found.score, px, py, LOCAL_SEARCH)
        shift = (dx - r, dy - r)
        if not found.whole and not _box_inside(homography, found.box, shift, photo.shape):
            out[name] = _Cell(None, None, 0.0, "cut_off")
            continue
        reader: Callable[..., _Cell] = partial(
            _read_cell, found, homography, dx - r, dy - r, match, to_stored, figures,
            name in stamped,
        )  # fmt: skip
        cell = reader()
        if ambiguous and found.spans and name != PRECINCT:
            # Not sure which square is which: located for people, not read.
            cell = _Cell(None, cell.quad, cell.match, "squares_ambiguous")
        elif cell.reading is not None:
            readers[name] = reader
        out[name] = cell
    # One secretary writes the whole protocol, at one slant: a cell whose own
    # estimate of it strayed from the writer's is read again at the writer's.
    slants = writer_slants([s for c in out.values() if c.reading for s in c.reading.shears])
    for name, reader in readers.items():
        own = out[name].reading
        if own is not None and any(not _near(s, slants) for s in own.shears):
            out[name] = reader(shears=slants)
    return out


def writer_slants(shears: Sequence[float]) -> np.ndarray:
    """The slants (ocr.digits.SHEARS) within WRITER_SLANT of the median of the
    slants a protocol's cells were read at: its writer's. Pure."""
    if not shears:
        return SHEARS
    middle = float(np.median(shears))
    return SHEARS[np.abs(SHEARS - middle) <= WRITER_SLANT + 1e-9]


def _near(shear: float, slants: np.ndarray) -> bool:
    """Whether a cell's slant is one of the writer's. Pure."""
    return bool(np.any(np.isclose(slants, shear)))


def _print_at(reference: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """The reference's print shifted by (dx, dy) (uint8, 255). Pure."""
    ph, pw = reference.shape
    src = (reference < INK_LEVEL).astype(np.uint8) * 255
    shifted = np.zeros_like(src)
    ys0, ys1 = max(0, dy), min(ph, ph + dy)
    xs0, xs1 = max(0, dx), min(pw, pw + dx)
    shifted[ys0:ys1, xs0:xs1] = src[ys0 - dy : ys1 - dy, xs0 - dx : xs1 - dx]
    return shifted


def _grown(mask: np.ndarray, reach: int) -> np.ndarray:
    """A mask grown by a ``reach``-pixel square: where the photo's ink may be what it
    marks. Pure."""
    return np.asarray(cv2.dilate(mask, np.ones((reach, reach), np.uint8)))


def _figures_pen(patches: Mapping[str, _Patch | None], dx: int, dy: int) -> str | None:
    """The pen that wrote the figures, "blue" or "black" (ocr.protocol_colour.
    figures_pen), from each field's box at the common shift (dx, dy): its ink away
    from the print; None when colour cannot tell."""
    shares: list[float] = []
    for name, found in patches.items():
        if found is None or found.hue is None or name == PRECINCT:
            continue
        x, y, w, h = found.box
        x0, y0 = found.origin
        bx, by = x - x0 + dx, y - y0 + dy
        patch = found.patch[max(0, by) : by + h, max(0, bx) : bx + w]
        if patch.size == 0:
            continue
        paper = cv2.morphologyEx(patch, cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8))
        paper = np.maximum(paper.astype(np.float32), 1.0)
        printed = _grown(_print_at(found.reference, dx, dy), PRINT_REACH)
        printed = printed[max(0, by) : by + h, max(0, bx) : bx + w]
        ink = ((paper - patch) / paper > PEN_DARK) & (printed == 0)
        if int(ink.sum()) >= MIN_WRITTEN:
            hue = found.hue[max(0, by) : by + h, max(0, bx) : bx + w]
            shares.append(float((hue[ink] >= BLUE_PEN).mean()))
    return figures_pen(shares)


def _period(squares: _Squares) -> int:
    """The fields' squares' width (the precinct's may differ); 0 without squares."""
    widths = [b - a for spans in squares.spans.values() for a, b in spans]
    return int(np.median(widths)) if widths else 0


@dataclass(frozen=True)
class _Squares:
    """The rows of squares of a template: each such box's squares (column spans in
    the box) and how far the cells' residual shift is searched."""

    spans: dict[tuple[int, int, int, int], list[tuple[int, int]]]
    radius: int


_squares_known: dict[str, _Squares] = {}


def _squares(template: ProtocolTemplate) -> _Squares:
    """The template's rows of squares (ocr.protocol_squares.square_spans), once.

    The search radius is WIDE_SEARCH, or past the widest square of a row of
    squares: a page fit one square off (which ECC on a sparse form can leave)
    otherwise matches all but one of a row's rules and is taken for the right
    place. Past it, and with the paper beside the row in the match (``_patch``),
    the whole row's rules win."""
    ref = template.reference
    key = hashlib.sha256(ref.tobytes()).hexdigest() + repr(template.document.model_dump())
    with _plans_lock:
        if (known := _squares_known.get(key)) is not None:
            return known
    found: dict[tuple[int, int, int, int], list[tuple[int, int]]] = {}
    for x, y, w, h in [*template.boxes.values(), template.document.precinct_box]:
        spans = square_spans(_reference_crop(ref, x, y, x + w, y + h))
        if spans is not None:
            found[(x, y, w, h)] = spans
    widest = max((b - a for spans in found.values() for a, b in spans), default=0)
    radius = max(WIDE_SEARCH, widest + SQUARE_SLACK) if widest else WIDE_SEARCH
    squares = _Squares(found, radius)
    _keep(_squares_known, key, squares)
    return squares


def _best_shift(
    score: np.ndarray, cx: int, cy: int, radius: int | tuple[int, int]
) -> tuple[tuple[int, int], float]:
    """The best match of a score map within ``radius`` (or (across, down)) of
    (cx, cy), in map pixels."""
    rx, ry = radius if isinstance(radius, tuple) else (radius, radius)
    n = score.shape[0]
    cx, cy = min(max(cx, 0), n - 1), min(max(cy, 0), n - 1)
    x0, y0 = max(0, cx - rx), max(0, cy - ry)
    window = score[y0 : cy + ry + 1, x0 : cx + rx + 1]
    _, match, _, (wx, wy) = cv2.minMaxLoc(window)
    return (x0 + wx, y0 + wy), float(match)


def _shift_plane(
    points: Sequence[tuple[float, float, float, float, float]],
) -> tuple[np.ndarray, np.ndarray] | None:
    """Shift (dx, dy) as planes a + b x + c y through the cells' shifts, weighted
    by their match, one outlier pass (a cell under a stamp); None with too few
    cells. Pure."""
    good = [p for p in points if p[4] >= MIN_CELL_MATCH]
    if len(good) < 4:
        return None
    arr = np.array(good, dtype=np.float64)
    keep = np.ones(len(arr), dtype=bool)
    coef = (np.zeros(3), np.zeros(3))
    for _ in range(2):
        a = np.c_[np.ones(int(keep.sum())), arr[keep, 0], arr[keep, 1]]
        wts = np.sqrt(arr[keep, 4])[:, None]
        cx = np.linalg.lstsq(a * wts, arr[keep, 2] * wts[:, 0], rcond=None)[0]
        cy = np.linalg.lstsq(a * wts, arr[keep, 3] * wts[:, 0], rcond=None)[0]
        coef = (cx, cy)
        full = np.c_[np.ones(len(arr)), arr[:, 0], arr[:, 1]]
        err = np.hypot(full @ cx - arr[:, 2], full @ cy - arr[:, 3])
        keep = err <= 4.0
        if keep.sum() < 4:
            break
    return coef


def _read_cell(
    found: _Patch,
    homography: np.ndarray,
    dx: int,
    dy: int,
    match: float,
    to_stored: tuple[float, float],
    figures: str | None = None,
    stamped: bool = False,
    shears: np.ndarray = SHEARS,
) -> _Cell:
    """Clean and read one located cell (its rules at shift dx, dy); with the
    ``figures``' pen known, another pen's strokes faded first
    (ocr.protocol_colour.other_pen_faded); ``stamped``: under the stamp, its faint
    remains left out (ocr.digits.FAINT); ``shears``: the slants its figures may be
    written at (the writer's, writer_slants)."""
    x, y, w, h = found.box
    x0, y0 = found.origin
    sx, sy = to_stored
    corners = project(
        homography, np.array([[x + dx, y + dy], [x + w + dx, y + dy], [x + w + dx, y + h + dy],
                              [x + dx, y + h + dy]], dtype=np.float64)
    )  # fmt: skip
    quad = tuple((round(float(px) * sx, 1), round(float(py) * sy, 1)) for px, py in corners)
    quad4: Quad = (quad[0], quad[1], quad[2], quad[3])
    if match < MIN_CELL_MATCH:
        return _Cell(None, quad4, float(match), "cell_not_found")
    # The printed rules as the photo shows them (long runs of ink: a handwritten
    # stroke is shorter), where the reference has rules nearby: removed. The photo's
    # own lines, not the reference's, because a few per cent of residual scale
    # puts the far rules of a row of squares pixels away from the reference's.
    patch, reference = found.patch, found.reference
    bx, by = x - x0 + dx, y - y0 + dy  # the box's top left in the patch
    ph, pw = patch.shape
    print_at = _print_at(reference, dx, dy)
    near = _grown(print_at, 15)
    lines = cv2.dilate((found.rules > 0.25).astype(np.uint8) * 255, np.ones((5, 5), np.uint8))
    printed = cv2.bitwise_and(lines, near)
    pen = patch  # the patch with another pen's strokes faded: across a rule, they go with it
    if figures is not None and found.hue is not None:
        # Over the box and half its height around (enough to see a stroke across
        # it); the print there kept, its labels too (black, and no one's stroke).
        ys = slice(max(0, by - h // 2), by + h + h // 2)
        xs = slice(max(0, bx - h // 2), bx + w + h // 2)
        keep = (printed | _grown(print_at, 3))[ys, xs]
        pen = patch.copy()
        at = (bx - xs.start, by - ys.start, w, h)  # the box in that crop
        pen[ys, xs] = other_pen_faded(patch[ys, xs], found.hue[ys, xs], figures, at, keep)
    if found.spans:
        # A row of squares: its patch is wide (see _patch), only the row is inpainted,
        # then each square's inside read.
        m = SQUARE_SLACK
        ry0, rx0 = max(0, by - m), max(0, bx - m)
        ry1, rx1 = min(ph, by + h + m), min(pw, bx + w + m)
        if ry1 - ry0 < 8 or rx1 - rx0 < 8:
            return _Cell(None, quad4, float(match), "cut_off")
        clean = pen.copy() if pen is patch else pen  # the faded patch is a copy already
        clean[ry0:ry1, rx0:rx1] = cv2.inpaint(
            pen[ry0:ry1, rx0:rx1], printed[ry0:ry1, rx0:rx1], 3, cv2.INPAINT_TELEA
        )
        edges, top, bottom = _square_rules(patch, bx, by, w, h, found.spans)
        squares = _square_interiors(patch.shape, edges, top, bottom)
        beside = _ink_beside_rules(patch, edges, top, bottom)
        reading = _read_squares(clean, squares, beside, stamped, shears)
        return _Cell(reading, quad4, float(match))
    clean = cv2.inpaint(pen, printed, 3, cv2.INPAINT_TELEA)
    pad = 3
    cell = clean[max(0, by - pad) : by + h + pad, max(0, bx - pad) : bx + w + pad]
    if cell.size == 0:
        return _Cell(None, quad4, float(match), "cut_off")
    # The box in the prepared cell: its crop's margin, then the paper added.
    ch, cw = cell.shape
    left = max(8, round(cw * EDGE_PAD)) + min(pad, bx)
    top = max(4, round(ch * EDGE_PAD)) + min(pad, by)
    reading, corrected = _read_written(_prepared(cell), (left, top, w, h), stamped, shears)
    return _Cell(reading, quad4, float(match), corrected=corrected)


def _read_written(
    prepared: np.ndarray,
    box: tuple[int, int, int, int],
    stamped: bool = False,
    shears: np.ndarray = SHEARS,
) -> tuple[NumberReading, bool]:
    """A prepared cell's number (``box``: the printed box in it), and whether it was
    corrected: a number read with confidence as it stands; else, when the cell
    starts with a struck-out figure (ocr.digits.struck_out), the rest of it, read
    with the figure and the correction's signature painted over (_rewritten), its
    confidence capped (_capped). ``stamped``: read as under the stamp; ``shears``:
    the slants it may be written at. Pure."""
    reading = read_number(prepared, MAX_DIGITS, stamped=stamped, shears=shears)
    if reading.confidence >= CONFIDENT:
        return reading, False
    struck = struck_out(prepared)
    if struck is None:
        return reading, False
    rest = _rewritten(prepared, struck, box)
    return _capped(read_number(rest, MAX_DIGITS, stamped=stamped, shears=shears)), True


def _rewritten(
    prepared: np.ndarray, struck: np.ndarray, box: tuple[int, int, int, int]
) -> np.ndarray:
    """A corrected cell with its struck-out figure (``struck``, ocr.digits.struck_out)
    painted over with paper, and the "corrected, believe it" signature beside the
    box: ink starting in the box's last CORRECTION_SIGNATURE of its width that runs
    to its right or bottom side (digits are written inside the box). Pure."""
    out = prepared.copy()
    out[cv2.dilate(struck.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0] = PAPER
    x, y, w, h = box
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        ink_mask(out).astype(np.uint8), connectivity=8
    )
    for i in range(1, n):
        x0, y0, cw, ch = (int(v) for v in stats[i, :4])
        at_side = x0 + cw >= x + w - SIGNATURE_REACH or y0 + ch >= y + h - SIGNATURE_REACH
        if x0 >= x + (1 - CORRECTION_SIGNATURE) * w and at_side:
            out[cv2.dilate((labels == i).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0] = PAPER
    return out


def _capped(reading: NumberReading) -> NumberReading:
    """A corrected cell's reading (or a row of squares' with a stray mark left out),
    its probabilities scaled to sum to CORRECTED_CAP at most: such a value is given
    only when an equality of the form that holds on it vouches for it (a repair by
    the checks keeps it under the cap). Pure."""
    total = sum(p for _, p in reading.alternatives)
    scale = min(1.0, CORRECTED_CAP / total) if total > 0 else 1.0
    alternatives = [(v, p * scale) for v, p in reading.alternatives]
    return replace(
        reading, confidence=reading.confidence * scale, alternatives=alternatives, capped=True
    )


def _prepared(
    cell: np.ndarray, margin: tuple[float, float] = (EDGE_PAD, EDGE_PAD), gain: float = 1.0
) -> np.ndarray:
    """A cleaned cell as the digit reader wants it. Pure.

    The rules are gone: a margin of paper keeps strokes written close to the
    cell's edge (a 1 against the left rule) out of the digit reader's own search
    for borders along the edges. The cell is first divided by its paper (a shadow
    across it would otherwise meet the added margin in a step the reader takes
    for a stroke)."""
    ch, cw = cell.shape
    k = max(3, (ch // 2) | 1)
    paper = cv2.morphologyEx(cell, cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))
    paper = cv2.GaussianBlur(paper, (0, 0), k / 3)
    flat = cell.astype(np.float32) * (PAPER / np.maximum(paper.astype(np.float32), 1.0))
    if gain != 1.0:  # a faint pen's strokes deepened, the paper kept
        flat = PAPER - (PAPER - flat) * gain
    out = np.clip(flat, 0, 255).astype(np.uint8)
    px, py = max(8, round(cw * margin[0])), max(4, round(ch * margin[1]))
    return np.asarray(cv2.copyMakeBorder(out, py, py, px, px, cv2.BORDER_CONSTANT, value=PAPER))


def _rule_at(profile: np.ndarray, expected: int) -> int:
    """The darkest line of a profile within SQUARE_SEARCH of where the rule is
    expected (a residual scale puts the far rules of a row a pixel or two off). Pure."""
    lo = max(0, expected - SQUARE_SEARCH)
    hi = min(len(profile), expected + SQUARE_SEARCH + 1)
    if hi <= lo:
        return expected
    return lo + int(np.argmax(profile[lo:hi]))


def _square_rules(
    patch: np.ndarray, bx: int, by: int, w: int, h: int, spans: Sequence[tuple[int, int]]
) -> tuple[list[int], int, int]:
    """A row of squares' rules as the photo shows them: the columns of its upright
    rules (the box's sides included), the rows of its top and bottom. Pure."""
    dark = 255.0 - patch.astype(np.float32)
    rows = dark[max(0, by + h // 5) : max(1, by + h - h // 5), :]
    cols = dark[:, max(0, bx) : max(1, bx + w)]
    vprof = np.convolve(rows.mean(axis=0), np.ones(3) / 3, mode="same")
    hprof = np.convolve(cols.mean(axis=1), np.ones(3) / 3, mode="same")
    top = _rule_at(hprof, by)
    bottom = _rule_at(hprof, by + h)
    edges = [_rule_at(vprof, bx + a) for a, _ in spans] + [_rule_at(vprof, bx + spans[-1][1])]
    return edges, top, bottom


def _square_interiors(
    shape: tuple[int, ...], edges: Sequence[int], top: int, bottom: int
) -> list[tuple[int, int, int, int]]:
    """Each square's inside (x0, y0, x1, y1) in the patch: between its rules
    (_square_rules), SQUARE_INSET from each, so that no remnant of a rule is read
    as a stroke. Pure."""
    ph, pw = shape[:2]
    out = []
    for left, right in itertools.pairwise(edges):
        out.append((
            max(0, left + SQUARE_INSET), max(0, top + SQUARE_INSET),
            min(pw, right - SQUARE_INSET + 1), min(ph, bottom - SQUARE_INSET + 1),
        ))  # fmt: skip
    return out


def _ink_beside_rules(
    patch: np.ndarray, edges: Sequence[int], top: int, bottom: int
) -> list[tuple[float, float]]:
    """Per square, the share of its rows where ink lies along its left and its right
    rule, which the rules' removal inpaints with the rule. Row by row, a rule's
    profile across is folded about its centre (midway between where it crosses
    half its depth on each side); the ink one side has more than the other, over
    the SIDE_REACH pixels beside it, less the row's usual lopsidedness (a photo's
    blur or sharpening can leave every rule lopsided the same way), counts when it
    is SIDE_EXCESS of the rule's depth or more; a square's share is its longest run
    of such rows (a stroke is one piece). A printed rule is the same on both sides,
    a thicker or blurrier one too; one with a stroke along it is not. Pure."""
    ph, pw = patch.shape
    y0, y1 = max(0, top + SQUARE_INSET), min(ph, bottom - SQUARE_INSET + 1)
    r = SIDE_REACH
    n = max(0, len(edges) - 1)
    if y1 - y0 < 3:
        return [(0.0, 0.0)] * n
    # Rows smoothed (JPEG noise, not strokes).
    dark = np.asarray(cv2.blur(255.0 - patch[y0:y1].astype(np.float32), (1, 3)), np.float64)
    rows = np.arange(y1 - y0)
    offsets = np.arange(2, r + 1, dtype=np.float64)
    sides: list[np.ndarray] = []  # per rule, per row: ink right of it less ink left
    for e in edges:
        if e - r - 3 < 0 or e + r + 4 > pw:
            sides.append(np.zeros(y1 - y0))
            continue
        win = dark[:, e - r - 3 : e + r + 4]
        mid = r + 3  # e's column in the window
        at = mid - 2 + np.argmax(win[:, mid - 2 : mid + 3], axis=1)
        paper = win.min(axis=1)
        peak = win[rows, at]
        depth = np.maximum(peak - paper, 1.0)
        # The rule's centre: midway between where it crosses half its depth on each
        # side (a peak can be flat: a dark rule saturates the camera).
        half = (paper + 0.5 * depth)[:, None]
        cols = np.arange(win.shape[1])[None, :]
        below = win < half
        i_l = np.where(below & (cols < at[:, None]), cols, -1).max(axis=1)
        i_r = np.where(below & (cols > at[:, None]), cols, win.shape[1]).min(axis=1)
        ok = (i_l >= 0) & (i_r < win.shape[1])
        i_l, i_r = np.where(ok, i_l, at - 1), np.where(ok, i_r, at + 1)
        v_l, v_l1 = win[rows, i_l], win[rows, i_l + 1]
        v_r, v_r1 = win[rows, i_r], win[rows, i_r - 1]
        x_l = i_l + np.clip((half[:, 0] - v_l) / np.maximum(v_l1 - v_l, 1e-6), 0, 1)
        x_r = i_r - np.clip((half[:, 0] - v_r) / np.maximum(v_r1 - v_r, 1e-6), 0, 1)
        centre = np.where(ok, (x_l + x_r) / 2, at)
        right = _sampled(win, centre[:, None] + offsets[None, :])
        left = _sampled(win, centre[:, None] - offsets[None, :])
        sides.append((right - left).sum(axis=1) / depth)
    excess = np.asarray(sides) - np.median(sides, axis=0)
    # A square lies between rules k (its left side) and k + 1 (its right side).
    return [
        (_longest_run(excess[k] >= SIDE_EXCESS), _longest_run(-excess[k + 1] >= SIDE_EXCESS))
        for k in range(n)
    ]


def _longest_run(flags: np.ndarray) -> float:
    """The longest run of consecutive true flags, a share of them all. Pure."""
    best = run = 0
    for flag in flags.tolist():
        run = run + 1 if flag else 0
        best = max(best, run)
    return best / max(1, len(flags))


def _sampled(rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Each row of ``rows`` at its fractional columns ``x`` (linear). Pure."""
    i0 = np.clip(np.floor(x).astype(np.intp), 0, rows.shape[1] - 2)
    t = np.clip(x - i0, 0.0, 1.0)
    picked = np.arange(rows.shape[0])[:, None]
    return np.asarray(rows[picked, i0] * (1 - t) + rows[picked, i0 + 1] * t, dtype=np.float64)


def _read_squares(
    clean: np.ndarray,
    squares: Sequence[tuple[int, int, int, int]],
    beside: Sequence[tuple[float, float]] | None = None,
    stamped: bool = False,
    shears: np.ndarray = SHEARS,
) -> NumberReading | None:
    """A row of squares read one digit a square (ocr.protocol_squares). A square is
    written when its middle holds ink, ink being darker than its paper by half the
    row's strongest strokes (a faint pen reads like a dark one), at least
    SQUARE_FAINT. ``stamped``: the row is under the stamp; ``shears``: the slants
    its digits may be written at. Pure."""
    crops: list[np.ndarray] = []
    contrasts: list[np.ndarray] = []
    for x0, y0, x1, y1 in squares:
        square = clean[y0:y1, x0:x1]
        if square.shape[0] < 8 or square.shape[1] < 8:
            return None
        crops.append(square)
        contrasts.append(_contrast(square))
    cores = np.concatenate([_core(c).ravel() for c in contrasts])
    inked = cores[cores > SQUARE_FAINT]
    strong = float(np.percentile(inked, 95)) if inked.size >= 10 else 0.0
    level = max(SQUARE_FAINT, 0.5 * strong)
    gain = SQUARE_STRONG / strong if 0 < strong < SQUARE_STRONG else 1.0
    readings: list[NumberReading | None] = []
    states: list[str] = []
    anywhere: list[float] = []
    for square, contrast in zip(crops, contrasts, strict=True):
        share = float((_core(contrast) > level).mean())
        anywhere.append(float((contrast > 0.5 * level).mean()))
        if share >= SQUARE_WRITTEN:
            states.append("written")
            prepared = _prepared(square, SQUARE_MARGIN, gain)
            readings.append(read_number(prepared, 1, stamped=stamped, shears=shears))
        elif share <= SQUARE_EMPTY:
            states.append("empty")
            readings.append(None)
        else:
            states.append("doubtful")
            readings.append(None)
    # The squares just before and after the written ones are empty only with no ink
    # anywhere inside, not only in the middle, and none along their sides (removed
    # with the rules, see _ink_beside_rules): a thin 1 written against the square's
    # side must never be dropped from the number.
    # (Only empty and doubtful squares change state below: the squares beside the
    # written ones stay the same.)
    around = _beside_written(states)
    sides = beside if beside is not None else [(0.0, 0.0)] * len(states)
    for i in around:
        if states[i] == "empty" and (anywhere[i] > SQUARE_EMPTY or max(sides[i]) >= SIDE_ROWS):
            states[i] = "doubtful"
    # A doubtful square in which the digit reader, looking at the whole square, finds
    # no ink at all (JPEG noise, a stamp's faded trace, a rule's remnant) is empty;
    # not one with ink along a side, which the rules' removal took with the rule
    # and which the reader therefore cannot see. Clear photos of seeds 5, 7 and 23
    # (ru-2018, 1,920 fields): 16 more values given, none wrong; the doubtful
    # squares that held a digit (a thin 1, a faint 2) all showed the reader ink.
    for i, state in enumerate(states):
        if state == "doubtful" and max(sides[i]) < SIDE_ROWS:
            reading = read_number(_prepared(crops[i], SQUARE_MARGIN, gain), 1)
            if reading.empty:
                states[i] = "empty"
    # A doubtful square just before or after the written ones whose ink the reader
    # takes, all of it, for no digit (a stamp's ring the colour step left, a speck)
    # is empty too; the number is then capped (_capped) and given only where an
    # equality of the form that holds vouches for it: were the mark a digit after
    # all, the sum would fail.
    stray = False
    for i in around:
        if (
            states[i] == "doubtful"
            and max(sides[i]) < SIDE_ROWS
            and stray_probability(_prepared(crops[i], SQUARE_MARGIN, gain)) >= STRAY_JUNK
        ):
            states[i] = "empty"
            stray = True
    # A written square apart from the others (an empty square between) whose ink
    # the reader takes, all of it, for no digit is a stray mark too.
    for i in _apart(states):
        if stray_probability(_prepared(crops[i], SQUARE_MARGIN, gain)) >= APART_JUNK:
            states[i] = "empty"
            readings[i] = None
            stray = True
    combined = combine_squares(readings, states)
    if stray and combined is not None and combined.value is not None:
        return _capped(combined)
    return combined


def _apart(states: list[str]) -> list[int]:
    """The written squares that stand alone, an empty square either side of them,
    when the written squares are not one run (none when they are). Pure."""
    written = [i for i, state in enumerate(states) if state == "written"]
    if not written or written == list(range(written[0], written[-1] + 1)):
        return []
    return [
        i
        for i in written
        if (i == 0 or states[i - 1] == "empty")
        and (i == len(states) - 1 or states[i + 1] == "empty")
    ]


def _beside_written(states: list[str]) -> list[int]:
    """The squares just before and just after the written ones (none when nothing is
    written). Pure."""
    written = [i for i, state in enumerate(states) if state == "written"]
    if not written:
        return []
    return [i for i in (written[0] - 1, written[-1] + 1) if 0 <= i < len(states)]


def _core(square: np.ndarray) -> np.ndarray:
    """A square's middle: its outer fifth on each side left out, where the borders'
    remnants lie. Pure."""
    h, w = square.shape
    my, mx = max(1, h // 5), max(1, w // 5)
    return square[my : h - my, mx : w - mx]


def _contrast(cell: np.ndarray) -> np.ndarray:
    """How much darker than its own paper each pixel of a cell is, 0..1. Pure."""
    k = max(3, (cell.shape[0] // 2) | 1)
    paper = cv2.morphologyEx(cell, cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))
    paper = cv2.GaussianBlur(paper, (0, 0), k / 3).astype(np.float32)
    return np.asarray(np.clip((paper - cell.astype(np.float32)) / np.maximum(paper, 1.0), 0, 1))


def _alternatives(reading: NumberReading | None) -> list[tuple[int, float]]:
    """A cell's readings for the joint step; a lone dash is the form's zero."""
    if reading is None:
        return []
    if reading.dash:
        return [(0, DASH_ZERO)]
    return list(reading.alternatives)


# -- the reading --------------------------------------------------------------------


def _reading(verdict: Verdict, reasons: list[str]) -> ProtocolReading:
    return ProtocolReading(verdict=verdict, reasons=reasons)


Timings = dict[str, float]


def _lap(timings: Timings | None, stage: str, start: float) -> float:
    now = time.perf_counter()
    if timings is not None:
        timings[stage] = timings.get(stage, 0.0) + now - start
    return now


def _stored_size(image_bytes: bytes, orientation: int | None) -> tuple[int, int] | None:
    """The photo's upright size in pixels, from its header only."""
    try:
        with Image.open(io.BytesIO(image_bytes)) as img:
            width, height = img.size
            if orientation is None:
                orientation = int(img.getexif().get(0x0112, 1))
    except Exception:  # decode_gray already accepted the bytes
        return None
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return width, height


def _header(
    plan: _Plan, template: ProtocolTemplate, photo: np.ndarray, homography: np.ndarray
) -> tuple[ProtocolReading | None, list[str]]:
    """(None, notes) when the header is the form's: its keywords read, or the title
    read and the rest too soft for Tesseract but matching the form's print (notes:
    ``header_blurred``); else (the rejecting reading, [])."""
    doc = template.document
    found = check_keywords(
        plan.header, photo, homography, list(doc.header_keywords), doc.ocr_languages
    )
    weakest = min(found.values())
    if weakest >= MIN_RATIO:
        # Read: however soft the print looks, the cells decide what can be read.
        return None, []
    crops = keyword_crops(plan.header, photo, homography)
    blur, match = estimate_blur(crops, plan.header.reference_blurs)
    if header_by_print(max(found.values()), blur, match):
        return None, ["header_blurred"]
    return _rejected_header(found, blur), []


def header_by_print(best_keyword: float, blur: float, match: float) -> bool:
    """Whether a header whose keywords are not all read is the form's all the same:
    its best keyword read (``best_keyword``, similarity), the failure put to blur
    (``blur``, crop pixels) and the keyword crops matching the form's print blurred
    as much (``match``, correlation). Pure."""
    return (
        best_keyword >= MIN_RATIO
        and BLUR_DOUBTFUL <= blur <= PRINT_BLUR_MAX
        and match >= PRINT_MATCH
    )


def _rejected_header(found: dict[str, float], blur: float) -> ProtocolReading:
    """The reading of a photo whose header is not the form's, or cannot be told.
    Pure."""
    weakest = min(found.values())
    if blur > BLUR_MAX:
        return _reading(Verdict.UNREADABLE, ["blurred"])
    if blur >= BLUR_DOUBTFUL:
        return _reading(Verdict.UNREADABLE, ["blurred", "header_keywords_missing"])
    if weakest >= UNCLEAR_RATIO and max(found.values()) >= MIN_RATIO:
        return _reading(Verdict.UNREADABLE, ["header_keywords_unclear"])
    return _reading(Verdict.NOT_A_PROTOCOL, ["header_keywords_missing"])


def _read_gray(
    template: ProtocolTemplate,
    photo: np.ndarray,
    to_stored: tuple[float, float],
    timings: Timings | None,
    rgb: np.ndarray | None = None,
) -> ProtocolReading:
    start = time.perf_counter()
    if float(np.percentile(photo, 95)) < DARK_LEVEL:
        return _reading(Verdict.UNREADABLE, ["too_dark"])
    plan = _plan(template)
    homography, _rho, _inliers, problem = _locate(plan, template, photo)
    start = _lap(timings, "align", start)
    if homography is None or problem is not None:
        small, _ = resize_long_side(photo, 800)
        if edge_sharpness(small) < BLURRY_EDGES:
            return _reading(Verdict.UNREADABLE, ["blurred", "alignment_failed"])
        return _reading(Verdict.NOT_A_PROTOCOL, ["alignment_failed", problem or "no_fit"])
    rejected, notes = _header(plan, template, photo, homography)
    start = _lap(timings, "header_ocr", start)
    if rejected is not None:
        return rejected

    # The cells are read with the violet stamp faded out where the photo shows one
    # (ocr.protocol_colour); alignment and the header used the photo as it is.
    pen = _stamp_free_cells(template, photo, rgb, homography) if rgb is not None else None
    cells_gray = photo if pen is None else pen
    stamped = _stamped_cells(template, photo, pen, homography) if pen is not None else frozenset()
    hue = _cells_hue(template, cells_gray, rgb, homography) if rgb is not None else None
    start = _lap(timings, "colour", start)
    boxes = {f.id: f.box for f in template.document.fields}
    found = _cells(
        template, cells_gray, homography,
        {**boxes, PRECINCT: template.document.precinct_box}, to_stored, hue, stamped,
    )  # fmt: skip
    precinct_cell = found.pop(PRECINCT)
    cells = found
    start = _lap(timings, "cells", start)
    reasons: list[str] = list(notes)
    if all(c.reason == "cut_off" for c in cells.values()):
        return _reading(Verdict.UNREADABLE, ["cut_off"])
    alternatives = {f: _alternatives(c.reading) for f, c in cells.items()}
    rewritten = frozenset(f for f, c in cells.items() if c.corrected)
    capped = frozenset(f for f, c in cells.items() if c.reading is not None and c.reading.capped)
    joint = joint_reading(
        alternatives, template.checks, template.option_ids, rewritten=rewritten, capped=capped
    )
    fields: dict[str, FieldReading] = {}
    for f, c in cells.items():
        value = joint.values.get(f)
        confidence = float(np.clip(joint.confidence.get(f, 0.0), 0.0, 1.0))
        if value is not None and gives(confidence, joint.holds, joint.explained):
            fields[f] = FieldReading(value=value, confidence=round(confidence, 3), quad=c.quad)
        else:  # no value, and no hint of the machine's guess (spec: confidence 0.0)
            fields[f] = FieldReading(value=None, confidence=0.0, quad=c.quad)
        if c.reason is not None and c.reason not in reasons:
            reasons.append(c.reason)
        if c.corrected:  # struck out and rewritten: people may want to look
            reasons.append(f"corrected:{f}")
    values = {f: r.value for f, r in fields.items()}
    holds = template.check_results(values)
    checks = [CheckReading(check=i, holds=h) for i, h in enumerate(holds)]
    if joint.changed:
        reasons.append("read_with_checks")
    if any(h is False for h in holds):
        reasons.append("checks_fail")
    precinct: str | None = None
    pr = precinct_cell.reading
    if pr is not None and pr.value is not None and pr.confidence >= CONFIDENT:
        precinct = str(pr.value)
    else:
        reasons.append("precinct_unread")
    _lap(timings, "joint", start)
    verdict = Verdict.READ if all(v is not None for v in values.values()) else Verdict.PARTIAL
    return ProtocolReading(
        verdict=verdict, precinct=precinct, fields=fields, checks=checks, reasons=reasons
    )


def _stamp_free_cells(
    template: ProtocolTemplate, photo: np.ndarray, rgb: np.ndarray, homography: np.ndarray
) -> np.ndarray | None:
    """The photo with a violet stamp over the cells faded out (ocr.protocol_colour),
    worked out on the cells' part of the page only; None when no stamp is there."""
    at = project(homography, _cell_corners(template))
    x0, y0, x1, y1 = _around(at, photo.shape, COLOUR_MARGIN * max(photo.shape[:2]))
    if x1 - x0 < 16 or y1 - y0 < 16 or rgb.shape[:2] != photo.shape[:2]:
        return None
    page = _page_mask(template, photo.shape, homography)[y0:y1, x0:x1]
    inside_cells = np.zeros(photo.shape[:2], np.uint8)
    for quad in at.reshape(-1, 4, 2):  # corners: top left, top right, bottom left, right
        cv2.fillConvexPoly(inside_cells, np.round(quad[[0, 1, 3, 2]]).astype(np.int32), 1)
    cells = inside_cells[y0:y1, x0:x1].astype(bool)
    part = stamp_free(photo[y0:y1, x0:x1], rgb[y0:y1, x0:x1], page, cells)
    if part is None:
        return None
    out = photo.copy()
    out[y0:y1, x0:x1] = part
    return out


def _stamped_cells(
    template: ProtocolTemplate, photo: np.ndarray, pen: np.ndarray, homography: np.ndarray
) -> frozenset[str]:
    """The fields (and PRECINCT) whose box the stamp crosses: at least STAMPED_PIXELS
    of its pixels were faded by at least STAMP_FADED grey levels
    (_stamp_free_cells gave ``pen`` from ``photo``). Pure."""
    names = [*template.boxes, PRECINCT]
    at = project(homography, _cell_corners(template)).reshape(-1, 4, 2)
    out: set[str] = set()
    for name, quad in zip(names, at, strict=True):
        x0, y0, x1, y1 = _around(quad, photo.shape, 0)
        if x1 <= x0 or y1 <= y0:
            continue
        inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
        corners = np.round(quad[[0, 1, 3, 2]] - [x0, y0]).astype(np.int32)
        cv2.fillConvexPoly(inside, corners, 1)
        brightened = pen[y0:y1, x0:x1].astype(np.int16) - photo[y0:y1, x0:x1]
        if int((brightened[inside > 0] >= STAMP_FADED).sum()) >= STAMPED_PIXELS:
            out.add(name)
    return frozenset(out)


def _cells_hue(
    template: ProtocolTemplate, gray: np.ndarray, rgb: np.ndarray, homography: np.ndarray
) -> np.ndarray | None:
    """The pen hue (ocr.protocol_colour.pen_hue) over the photo, worked out where the
    cells' patches lie (_patch: a box and twice the search radius around it), zero
    elsewhere; None when the colour does not match the grey."""
    if rgb.shape[:2] != gray.shape[:2]:
        return None
    reach = 2 * _squares(template).radius + max(h for *_, h in template.boxes.values()) // 6
    x0, y0, x1, y1 = _around(project(homography, _cell_corners(template, reach)), gray.shape, 0)
    hue = np.zeros(gray.shape[:2], np.float32)
    if x1 - x0 >= 16 and y1 - y0 >= 16:
        hue[y0:y1, x0:x1] = pen_hue(gray[y0:y1, x0:x1], rgb[y0:y1, x0:x1])
    return hue


def _cell_corners(template: ProtocolTemplate, reach: int = 0) -> np.ndarray:
    """The corners of every field's box and the precinct's, each grown by ``reach``
    reference pixels: top left, top right, bottom left, bottom right. Pure."""
    boxes = [*template.boxes.values(), template.document.precinct_box]
    return np.array(
        [[x + dx, y + dy] for x, y, w, h in boxes
         for dx, dy in ((-reach, -reach), (w + reach, -reach), (-reach, h + reach),
                        (w + reach, h + reach))],
        dtype=np.float64,
    )  # fmt: skip


def _around(points: np.ndarray, shape: tuple[int, ...], margin: float) -> tuple[int, int, int, int]:
    """The photo's rectangle (x0, y0, x1, y1) around ``points`` with ``margin``
    pixels, within a photo of ``shape``. Pure."""
    ph, pw = shape[:2]
    x0 = max(0, int(points[:, 0].min() - margin))
    y0 = max(0, int(points[:, 1].min() - margin))
    x1 = min(pw, int(points[:, 0].max() + margin) + 1)
    y1 = min(ph, int(points[:, 1].max() + margin) + 1)
    return x0, y0, x1, y1


def _page_mask(
    template: ProtocolTemplate, shape: tuple[int, ...], homography: np.ndarray
) -> np.ndarray:
    """Where the page lies in the photo (boolean, the photo's shape). Pure."""
    w, h = template.size
    corners = project(homography, np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64))
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, np.round(corners).astype(np.int32), 1)
    return mask.astype(bool)


def read_protocol(
    template: ProtocolTemplate,
    image_bytes: bytes,
    *,
    orientation: int | None = None,
    timings: Timings | None = None,
) -> ProtocolReading:
    """Read one protocol photo. Never raises for a bad image: it is `unreadable`
    with a reason. ``orientation``: the EXIF orientation stripped from the stored
    photo (``ocr.images.decode_gray``); the quads are in the upright stored photo's
    pixels. With ``timings``, seconds per stage are added to it."""
    start = time.perf_counter()
    try:
        gray = decode_gray(
            image_bytes, max_pixels=MAX_PIXELS, max_side=WORK_SIDE, orientation=orientation
        )
    except ImageRejected as exc:
        return _reading(Verdict.UNREADABLE, [exc.reason])
    except MemoryError:
        return _reading(Verdict.UNREADABLE, ["too_many_pixels"])
    if min(gray.shape) < 32:
        return _reading(Verdict.UNREADABLE, ["too_small"])
    photo, _ = resize_long_side(gray, WORK_SIDE)
    stored = _stored_size(image_bytes, orientation)
    if stored is None:
        stored = (photo.shape[1], photo.shape[0])
    to_stored = (stored[0] / photo.shape[1], stored[1] / photo.shape[0])
    rgb = decode_rgb(image_bytes, WORK_SIDE, orientation)
    if rgb is not None:
        rgb, _ = resize_long_side(rgb, WORK_SIDE)
    _lap(timings, "decode", start)
    try:
        return _read_gray(template, photo, to_stored, timings, rgb)
    except (pytesseract.TesseractError, RuntimeError, OSError):
        return _reading(Verdict.UNREADABLE, ["ocr_failed"])
    except cv2.error:
        return _reading(Verdict.UNREADABLE, ["opencv_failed"])


def read_protocol_files(template_dir: Path, photos: Sequence[Path]) -> Iterator[dict[str, Any]]:
    """One spec-shaped dict per photo, in the order given; never raises for a photo
    (ocr.template.read_photo_files)."""
    readings = read_photo_files(
        template_dir,
        photos,
        load_protocol_template,
        read_protocol,
        lambda reason: _reading(Verdict.UNREADABLE, [reason]),
    )
    for photo, reading in readings:
        reading.photo = str(photo)
        yield reading.model_dump(mode="json")
