"""Reading a ballot photo against a template: the verdict the platform records.

Order matters for both cost and correctness: cheap decoding and geometry first
(most junk is rejected there), then the header OCR that proves which election
the page belongs to, and only then the marks, so a look-alike ballot of another
election is called `not_a_ballot` rather than read.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytesseract
from pydantic import BaseModel, Field

from ocr.align import (
    MIN_INLIER_RATIO,
    MIN_INLIERS,
    REFINE_GATE,
    Alignment,
    align,
    displacement,
    flatten_lighting_fast,
    homography_problem,
    inside,
    is_confident,
    refine,
    resize_long_side,
)
from ocr.header import (
    MIN_RATIO,
    TEXT_HEIGHT,
    check_keywords,
    edge_sharpness,
    estimate_blur,
    keyword_crops,
)
from ocr.images import ImageRejected, decode_gray
from ocr.ink import fingerprints, hamming, page_pose, pose_distance
from ocr.marks import MIN_MATCH, BoxScore, score_box
from ocr.scene import same_scenes
from ocr.template import LoadedTemplate, load_template, read_photo_files


class Verdict(StrEnum):
    """The reader's verdict on a photo (ballot-template/1 ``verdict``)."""

    VALID = "valid"  # a ballot of the template with 1..max_marks marked boxes
    BLANK = "blank"  # a ballot of the template with no marked box
    OVERMARKED = "overmarked"  # more than max_marks marked boxes
    NOT_A_BALLOT = "not_a_ballot"  # not this template's ballot
    UNREADABLE = "unreadable"  # cannot decide: a person reviews it


WORK_SIDE = 1600  # long side the photo is worked at; more only costs time
MAX_PIXELS = 40_000_000

# Gates (shares of the page size) of the refinement rounds: the first reaches a
# first fit that is well off, the later ones only polish.
FIRST_REFINE_GATES = (REFINE_GATE / 2, REFINE_GATE, 2 * REFINE_GATE)
LATER_REFINE_GATES = (REFINE_GATE / 4, REFINE_GATE / 2)
REFINE_ROUNDS = 3
SECOND_MATCH_SIDE = 1600  # second try at finding the page, at full working size
SECOND_FEATURES = 5000
# Third try: the usual matching size with more features. A big photo of a page
# lying on a grained table among clutter spends the first try's features on the
# wood and the objects, and a page of small print (a long list of candidates)
# keeps too few distinctive ones for the second try's larger print to match.
THIRD_FEATURES = 5000
# Refinement inliers that confirm a plausible but unconfident third-try fit (the
# refinement keeps up to N_REFINE spread features; a right fit of a clear photo
# lines up several hundred of them).
CONFIRMED_INLIERS = 150
REFINE_CONVERGED_PX = 3.0  # reference pixels: a smaller correction ends the refinement

# Box decision. Scores are ink coverage of the box interior (0..1): an empty box
# reads ~0, the faintest pen dot several per cent.
MARK_MIN = 0.025  # a box is marked at or above this (and clearly above the noise)
EMPTY_MAX = 0.008  # and empty at or below this; in between nobody should guess
NOISE_MARGIN = 0.02  # marked boxes must also stand this far above the ballot's own noise
NOISE_FACTOR = 2.5  # ... and be this many times the noise
# "Noise" at the faintest mark's level is ink: the boxes taken for empty are marked
# (every box of a short ballot dotted, say). Empty boxes score under 0.011 on every
# photo of the evaluation set, the faintest marks 0.024.
NOISE_CAP = MARK_MIN

# Every box marked is believed only when every box's outline matched this well
# where the fit put it (every_box_marked_unsure).
ALL_MARKED_MATCH = 0.3

# A keyword read at least this well (but under MIN_RATIO) is damaged, not absent.
UNCLEAR_RATIO = 0.65

# Blur is estimated as a Gaussian sigma in the header crops, where text is scaled
# to TEXT_HEIGHT pixels, so these limits are relative to the print, not the photo.
BLUR_MAX = 0.1 * TEXT_HEIGHT  # beyond this Tesseract stops reading the header
BLUR_DOUBTFUL = 0.08 * TEXT_HEIGHT  # from here a failed OCR may be blur, not another document
# Edge steepness (see edge_sharpness) of the whole photo at 800 px below which a
# failed alignment is put down to blur: sharp photos of anything score 0.3-0.5.
BLURRY_EDGES = 0.24
DARK_LEVEL = 45  # paper darker than this (of 255) cannot be read reliably
CONTRAST_MIN = 0.15  # printed outlines fainter than this: washed out or very blurred


# Two readings are one photo, re-used, when their fingerprints (the strokes'
# index key, ocr.scene.scene_hash) differ in at most NEAR_DUPLICATE_BITS bits
# and their scene descriptors agree (ocr.scene.same_scene: the strokes' fine
# detail, the stamps and signatures, the table around the page, the light;
# measured by bench/near_duplicates.py). Where neither photo shows stamps,
# signatures or table, and for readings stored before the scene descriptor
# existed, the page must also lie in both at the same angles, within
# NEAR_DUPLICATE_POSE_DEG (the same photograph). The ink alone would also pair
# two voters' look-alike marks in one box (see bench/ballot_reader.py). Copies
# of one photo keep the pose within 0.45 deg in the benchmark; at 0.75 the demo
# sent 28 of 1,200 honest photos to review, each limit's false matches growing
# with its cube. At most 4 bits, so 5 exact-match bands of the 64 bits find
# every pair in the index.
NEAR_DUPLICATE_BITS = 4
NEAR_DUPLICATE_POSE_DEG = 0.5


class BallotReading(BaseModel):
    verdict: Verdict
    marks: list[str] = Field(default_factory=list)
    confidence: float = Field(ge=0.0, le=1.0)
    reasons: list[str] = Field(default_factory=list)
    # 64-bit perceptual hash (16 lowercase hex digits) of the hand-made ink on the
    # aligned ballot; None when no ballot of the template was aligned and read.
    # Directions (degrees) of the page's four sides in the photo (page_pose).
    # Neither is part of the spec's output: read_ballot_files leaves them out.
    fingerprint: str | None = None
    pose: list[float] | None = None
    # ocr.scene's descriptor (text) of the same aligned photo; None as fingerprint.
    scene: str | None = None


Timings = dict[str, float]


class _Clock:
    """Adds the seconds spent in each stage to an optional dict (benchmarks)."""

    def __init__(self, timings: Timings | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[stage] = self.timings.get(stage, 0.0) + now - self.last
        self.last = now


def _reading(
    verdict: Verdict, confidence: float, reasons: list[str], marks: list[str] | None = None
) -> BallotReading:
    return BallotReading(
        verdict=verdict,
        marks=marks or [],
        confidence=round(float(np.clip(confidence, 0.0, 1.0)), 3),
        reasons=reasons,
    )


@dataclass(frozen=True)
class MarkDecision:
    marked: list[str]
    ambiguous: list[str]
    confidence: float


def decide_marks(scores: list[BoxScore], max_marks: int) -> MarkDecision:
    """Split boxes into marked / empty / ambiguous using the ballot's own noise.

    A ballot that is valid or blank leaves at least len(boxes) - max_marks boxes
    empty, so the median of that many lowest scores tells how much "ink" paper
    texture, blur and JPEG produce on this very photo; a mark must stand out
    from it as well as pass the absolute floor. (If every box may be marked,
    only the absolute thresholds apply.)
    """
    values = np.sort(np.array([s.score for s in scores], dtype=np.float64))
    # One box fewer than a valid ballot leaves empty: an overmarked ballot (one
    # mark too many) must not have a mark taken for the noise.
    expected_empty = len(values) - max_marks - 1
    noise = float(np.median(values[:expected_empty])) if expected_empty > 0 else 0.0
    if noise >= NOISE_CAP:
        # Even the "empty" boxes carry a mark's worth of ink: every box is marked
        # (an overmarked ballot), so only the absolute thresholds can apply.
        noise = 0.0
    high = max(MARK_MIN, noise + NOISE_MARGIN, NOISE_FACTOR * noise)
    low = max(EMPTY_MAX, noise * 1.5)
    marked, ambiguous = [], []
    certainty = 1.0
    for s in scores:
        if s.score >= high:
            marked.append(s.option_id)
            certainty = min(certainty, 0.5 + 0.5 * min(1.0, (s.score - high) / high))
        elif s.score <= low:
            certainty = min(certainty, 0.75 + 0.25 * (low - s.score) / low)
        else:
            ambiguous.append(s.option_id)
    return MarkDecision(marked, ambiguous, certainty)


def bright_level(photo: np.ndarray) -> float:
    """np.percentile(photo, 95) of a uint8 image, from its histogram: the same
    value (linear interpolation), a sixth of the cost on a 1600-px photo. Pure."""
    counts = np.cumsum(cv2.calcHist([photo], [0], None, [256], [0, 256]).ravel())
    index = 0.95 * (photo.size - 1)
    low = int(index)
    below = int(np.searchsorted(counts, low, side="right"))
    above = int(np.searchsorted(counts, min(low + 1, photo.size - 1), side="right"))
    return below + (above - below) * (index - low)


def _alignment_confidence(alignment: Alignment) -> float:
    by_count = min(1.0, alignment.inliers / (4 * MIN_INLIERS))
    by_ratio = min(1.0, alignment.inlier_ratio / (2 * MIN_INLIER_RATIO))
    return 0.5 + 0.5 * min(by_count, by_ratio)


def _outside(template: LoadedTemplate, homography: np.ndarray, shape: tuple[int, int]) -> bool:
    """Whether any box (with its surroundings) or keyword crop falls off the photo."""
    rects = [b.rect for b in template.boxes] + [s.rect for s in template.header.spots]
    return not all(inside(homography, rect, shape) for rect in rects)


def _locate(template: LoadedTemplate, photo: np.ndarray) -> tuple[Alignment | None, str | None]:
    """Find the page and refine the fit: (alignment, None) or (best attempt, problem)."""
    flat = flatten_lighting_fast(photo)
    first = align(template.features, flat)
    refined = _refined(template, photo, first)
    if refined is None:
        # A ballot filling part of a cluttered frame (its print too small at the
        # usual matching size, or the features spent on the clutter), or a first
        # fit right where most features are and too far off elsewhere to refine.
        second = align(template.features, flat, SECOND_MATCH_SIDE, SECOND_FEATURES)
        refined = _refined(template, photo, second)
        third = None
        if refined is None:
            third = align(template.features, flat, count=THIRD_FEATURES)
            refined = _refined(template, photo, third, confirm=CONFIRMED_INLIERS)
        if refined is None:
            attempts = [a for a in (first, second, third) if a is not None]
            best = max(attempts, key=lambda a: a.inliers, default=None)
            if best is None or not is_confident(best):
                return best, "too_few_matches"
            return best, "alignment_not_refined"
    size = (photo.shape[1], photo.shape[0])
    return refined, homography_problem(refined.homography, template.size, size)


def _refined(
    template: LoadedTemplate,
    photo: np.ndarray,
    alignment: Alignment | None,
    confirm: int | None = None,
) -> Alignment | None:
    """Refine a confident first fit in the page's own frame, gate by gate, until the
    correction becomes negligible; None if the first refinement finds no fit.

    With `confirm`, a merely plausible first fit (MIN_INLIERS inliers, half the
    usual share) is refined too, and kept only if the refinement, matching the
    page's evenly spread features near where the fit puts them, finds at least
    `confirm` inliers: a wrong fit does not line up that many."""
    if alignment is None:
        return None
    if not is_confident(alignment):
        plausible = (
            alignment.inliers >= MIN_INLIERS and alignment.inlier_ratio >= MIN_INLIER_RATIO / 2
        )
        if confirm is None or not plausible:
            return None
    for round_ in range(REFINE_ROUNDS):
        gates = FIRST_REFINE_GATES if round_ == 0 else LATER_REFINE_GATES
        refined = refine(template.refinement, template.size, photo, alignment, gates)
        if refined is None:
            if round_ == 0:
                return None
            break
        moved = displacement(alignment.homography, refined.homography, template.size)
        alignment = refined
        if moved < REFINE_CONVERGED_PX:
            break
    if confirm is not None and alignment.inliers < confirm:
        return None
    return alignment


def _read_gray(template: LoadedTemplate, photo: np.ndarray, clock: _Clock) -> BallotReading:
    if bright_level(photo) < DARK_LEVEL:
        return _reading(Verdict.UNREADABLE, 0.9, ["too_dark"])

    alignment, problem = _locate(template, photo)
    clock.lap("align")
    if alignment is None or problem not in (None, "alignment_not_refined"):
        small, _ = resize_long_side(photo, 800)
        if edge_sharpness(small) < BLURRY_EDGES:
            return _reading(Verdict.UNREADABLE, 0.6, ["blurred", "alignment_failed"])
        inliers = alignment.inliers if alignment is not None else 0
        return _reading(
            Verdict.NOT_A_BALLOT,
            1.0 - 0.5 * min(1.0, inliers / MIN_INLIERS),
            ["alignment_failed", problem or "too_few_matches"],
        )
    homography = alignment.homography
    if _outside(template, homography, photo.shape[:2]):
        return _reading(Verdict.UNREADABLE, 0.8, ["cut_off"])
    header = _check_header(template, photo, homography)
    clock.lap("header_ocr")
    if problem == "alignment_not_refined":
        return _unrefined(photo, header)
    if isinstance(header, BallotReading):
        return header

    scores = [score_box(b, photo, homography) for b in template.boxes]
    clock.lap("marks")
    reading = _decide(template, alignment, header, scores)
    if template.ink is not None:
        # Box shifts are found in box-patch pixels; the ink hash wants reference pixels.
        shifts = [
            (s.shift[0] / b.scale, s.shift[1] / b.scale)
            for b, s in zip(template.boxes, scores, strict=True)
        ]
        reading.fingerprint, reading.scene = fingerprints(
            template.ink, photo, homography, [s.score for s in scores], shifts
        )
        reading.pose = page_pose(homography, template.size)
        clock.lap("fingerprint")
    return reading


def _unrefined(photo: np.ndarray, header: BallotReading | float) -> BallotReading:
    """The verdict on a page that matched the reference, but not closely enough to
    place the boxes. Its header crops may then miss the text, so blur is judged on
    the whole photo: a sharp photo without the header words is another document
    (another election's ballot, most often); one with them, or a soft one, goes
    to a person rather than have its boxes read by guesswork."""
    if isinstance(header, BallotReading) and "blurred" in header.reasons:
        small, _ = resize_long_side(photo, 800)
        if edge_sharpness(small) >= BLURRY_EDGES:
            reasons = ["alignment_not_refined", "header_keywords_missing"]
            return _reading(Verdict.NOT_A_BALLOT, 0.7, reasons)
        return _reading(Verdict.UNREADABLE, 0.6, ["blurred", "alignment_uncertain"])
    if isinstance(header, BallotReading) and header.verdict == Verdict.NOT_A_BALLOT:
        return header
    return _reading(Verdict.UNREADABLE, 0.6, ["alignment_uncertain"])


def _check_header(
    template: LoadedTemplate, photo: np.ndarray, homography: np.ndarray
) -> BallotReading | float:
    """The header words where the fit puts them: a rejecting reading, or the
    confidence that this is the template's election."""
    tpl = template.template
    crops = keyword_crops(template.header, photo, homography)
    blur, _ = estimate_blur(crops, template.header.reference_blurs)
    if blur > BLUR_MAX:
        return _reading(Verdict.UNREADABLE, 0.8, ["blurred"])
    found = check_keywords(
        template.header, photo, homography, tpl.header_keywords, tpl.ocr_languages
    )
    weakest = min(found.values())
    if weakest < MIN_RATIO:
        # The page matched the reference; if the text is soft, or the word was
        # half read (a signature across it), OCR may just have failed, and a
        # person should look rather than the vote be dropped.
        if blur >= BLUR_DOUBTFUL:
            return _reading(Verdict.UNREADABLE, 0.6, ["blurred", "header_keywords_missing"])
        if weakest >= UNCLEAR_RATIO:
            return _reading(Verdict.UNREADABLE, 0.6, ["header_keywords_unclear"])
        missing = [k for k, r in found.items() if r < MIN_RATIO]
        return _reading(
            Verdict.NOT_A_BALLOT,
            0.9 if len(missing) == len(found) else 0.7,
            ["header_keywords_missing"],
        )
    return 0.8 + 0.2 * min((r - MIN_RATIO) / (1 - MIN_RATIO) for r in found.values())


def every_box_marked_unsure(scores: list[BoxScore], decision: MarkDecision, max_marks: int) -> bool:
    """Whether an overmarked reading with every box marked rests on an alignment
    not proven box by box. Pure.

    Every box "marked" is what a fit slightly off the page gives: each box then
    samples a name, a rule or the next row. The page matched and the boxes were
    searched for, but a box whose own outline matched only weakly (under
    ALL_MARKED_MATCH; right boxes, even filled in, match at 0.33 and above in the
    evaluation set) may be print, not ink: a person decides."""
    if len(decision.marked) < len(scores) or len(scores) <= max_marks:
        return False
    return min(s.match for s in scores) < ALL_MARKED_MATCH


def _decide(
    template: LoadedTemplate,
    alignment: Alignment,
    header_confidence: float,
    scores: list[BoxScore],
) -> BallotReading:
    tpl = template.template
    if not all(s.visible for s in scores):
        return _reading(Verdict.UNREADABLE, 0.8, ["cut_off"])
    if any(s.match < MIN_MATCH or s.at_limit for s in scores):
        # A box not found where the page fit puts it: reading it could count
        # the printed outline as a mark, so nobody should guess.
        return _reading(Verdict.UNREADABLE, 0.6, ["alignment_uncertain"])
    if float(np.median([s.contrast for s in scores])) < CONTRAST_MIN:
        return _reading(Verdict.UNREADABLE, 0.7, ["low_contrast"])
    decision = decide_marks(scores, tpl.max_marks)
    confidence = min(_alignment_confidence(alignment), header_confidence, decision.confidence)
    if decision.ambiguous:
        return _reading(Verdict.UNREADABLE, 0.5, ["ambiguous_mark"])
    if not decision.marked:
        return _reading(Verdict.BLANK, confidence, [])
    if every_box_marked_unsure(scores, decision, tpl.max_marks):
        return _reading(Verdict.UNREADABLE, 0.5, ["alignment_uncertain", "every_box_marked"])
    if len(decision.marked) > tpl.max_marks:
        return _reading(Verdict.OVERMARKED, confidence, [], decision.marked)
    return _reading(Verdict.VALID, confidence, [], decision.marked)


def same_photo(a: BallotReading, b: BallotReading) -> bool:
    """Whether two readings are of one photo re-used (NEAR_DUPLICATE_BITS, the
    scene descriptors' second keys within ocr.scene.KEY_BITS as the index asks,
    and the descriptors themselves; the page pose for readings without one)."""
    from ocr.scene import KEY_BITS, PAPER_KEY_BITS, paper_key_of, scene_key_of

    if a.fingerprint is None or b.fingerprint is None:
        return False
    if hamming(a.fingerprint, b.fingerprint) > NEAR_DUPLICATE_BITS:
        return False
    key_a, key_b = scene_key_of(a.scene), scene_key_of(b.scene)
    if key_a is not None and key_b is not None and hamming(key_a, key_b) > KEY_BITS:
        return False
    paper_a, paper_b = paper_key_of(a.scene), paper_key_of(b.scene)
    if paper_a is not None and paper_b is not None and hamming(paper_a, paper_b) > PAPER_KEY_BITS:
        return False
    same_pose = (
        a.pose is not None
        and b.pose is not None
        and pose_distance(a.pose, b.pose) <= NEAR_DUPLICATE_POSE_DEG
    )
    if a.scene is not None and b.scene is not None:
        return same_scenes(a.scene, b.scene, same_pose)
    return same_pose


def read_ballot(
    template: LoadedTemplate,
    image_bytes: bytes,
    *,
    timings: Timings | None = None,
    orientation: int | None = None,
) -> BallotReading:
    """Read one photo. Never raises for a bad image: it is `unreadable` with a reason.

    With `timings`, the seconds spent in each stage (decode, align, header_ocr,
    marks, fingerprint) are added to it; the reading itself is the same.
    `orientation`: the EXIF orientation stripped from the stored photo (see
    ``ocr.images.decode_gray``).
    """
    clock = _Clock(timings)
    try:
        gray = decode_gray(
            image_bytes, max_pixels=MAX_PIXELS, max_side=WORK_SIDE, orientation=orientation
        )
    except ImageRejected as exc:
        return _reading(Verdict.UNREADABLE, 1.0, [exc.reason])
    except MemoryError:
        return _reading(Verdict.UNREADABLE, 1.0, ["too_many_pixels"])
    if min(gray.shape) < 32:
        return _reading(Verdict.UNREADABLE, 1.0, ["too_small"])
    photo, _ = resize_long_side(gray, WORK_SIDE)
    clock.lap("decode")
    try:
        return _read_gray(template, photo, clock)
    except (pytesseract.TesseractError, RuntimeError, OSError):
        # Tesseract missing, killed or timed out: a person must look at it.
        return _reading(Verdict.UNREADABLE, 0.0, ["ocr_failed"])
    except cv2.error:
        # Geometry so degenerate that OpenCV refuses it: not something to guess on.
        # (Not api.submissions.schemas.Reason.PROCESSING_FAILED: that one is the
        # pipeline giving up after its retries.)
        return _reading(Verdict.UNREADABLE, 0.0, ["opencv_failed"])


def read_ballot_files(template_dir: Path, photos: list[Path]) -> Iterator[dict[str, Any]]:
    """One spec-shaped dict per photo, in the order given; never raises for a photo
    (ocr.template.read_photo_files)."""
    readings = read_photo_files(
        template_dir,
        photos,
        load_template,
        read_ballot,
        lambda reason: _reading(Verdict.UNREADABLE, 1.0, [reason]),
    )
    for photo, reading in readings:
        yield {
            "photo": str(photo),
            **reading.model_dump(exclude={"fingerprint", "pose", "scene"}),
        }
