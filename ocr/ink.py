"""The ink hash: a perceptual fingerprint of the paper ballot in a photo, for
near-duplicates.

After alignment every ballot of an election looks the same except for what a
hand (or the commission) added: the pen marks and the stamp and signatures. So
the fingerprint hashes only that ink, taken relative to the clean reference,
in and around the marked boxes (optionally over the whole page: PAGE_WEIGHT),
at a resolution fixed by the template, not by the photo, and registered on the
printed box outline; 64 random projections of it give the bits (SimHash). The
same paper photographed twice gives nearly the same ink maps; two voters'
separately drawn marks in the same box mostly do not (see the measurements
printed by bench/ballot_reader.py: very similar plain crosses can still collide).

Works on plain arrays and box geometry: ``plan_ink`` prepares an ``InkPlan`` from
the reference image and the boxes (``ocr.template`` keeps one per template), and
``ink_fingerprint`` hashes an aligned photo with it. ``ocr.reader`` uses both.

Since issue 11 the plan carries ``ocr.scene``'s plan too, and ``ink_fingerprint``
is the scene descriptor's index key (``ocr.scene.scene_hash``: the strokes at a
higher resolution, mean-free, with their band-pass detail, which keeps two
voters' look-alike marks farther apart); ``scene_fingerprint`` gives the whole
descriptor that confirms a candidate. The ink descriptor below remains for a
plan without a scene part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ocr.align import project, warp_region

if TYPE_CHECKING:  # ocr.scene is imported where used: importing ocr.ink stays light
    from ocr.scene import ScenePlan

__all__ = [
    "BITS",
    "MARKED",
    "InkPlan",
    "box_ink",
    "fingerprints",
    "hamming",
    "ink_descriptor",
    "ink_fingerprint",
    "page_ink",
    "page_pose",
    "plan_ink",
    "pose_distance",
    "relative_ink",
    "scene_fingerprint",
    "to_hex",
]

BOX_PX = 24  # fingerprint pixels per box side
REACH = 0.5  # box sides of surroundings kept around a box (spilled ink)
PAGE_PX = 96  # fingerprint pixels on the page's long side (stamps, signatures)
PRINT_DILATE = 1  # printed ink is grown by this many fingerprint pixels, then ignored
INK_FLOOR = 0.12
INK_FULL = 0.45
SMOOTH = 1.5  # Gaussian sigma (fingerprint pixels) that absorbs resampling and blur
BITS = 64
PROJECTION_SEED = 20240817  # fixed forever: changing it changes every fingerprint
MARKED = 0.03  # box score (ink coverage) from which a box's ink enters the hash
# Weight of the page-wide ink (stamps, signatures) against the box ink. Measured:
# at weight 1 lighting and shadows on the low-resolution page dominate it and
# re-photographs of one paper differ by ~12 bits, so it is off for now.
PAGE_WEIGHT = 0.0

Rect = tuple[float, float, float, float]
Shift = tuple[float, float]  # residual misalignment of a box, reference pixels


@dataclass(frozen=True)
class InkPlan:
    """What the ink hash needs from the reference, computed once per template."""

    box_rects: list[Rect]  # reference pixels, box plus REACH, one per option
    box_scale: float
    box_print: list[np.ndarray]  # bool, printed ink (grown) in each box window
    page_rect: Rect
    page_scale: float
    page_print: np.ndarray  # printed ink and the box windows (hashed with the boxes)
    box_reference: list[np.ndarray] = field(default_factory=list)  # float32 windows
    projections: dict[int, np.ndarray] = field(default_factory=dict)  # filled lazily
    scene: ScenePlan | None = None  # the scene descriptor's plan (ocr.scene)


def _printed(reference_patch: np.ndarray) -> np.ndarray:
    printed = (reference_patch < 160).astype(np.uint8)
    size = 2 * PRINT_DILATE + 1
    return cv2.dilate(printed, np.ones((size, size), np.uint8)).astype(bool)


def plan_ink(reference: np.ndarray, boxes: Sequence[tuple[int, int, int, int]]) -> InkPlan:
    """The ink plan of a grayscale reference and its mark boxes (x, y, w, h, in
    reference pixels, in option order)."""
    side = float(np.median([min(w, h) for _, _, w, h in boxes]))
    box_scale = BOX_PX / side
    rects: list[Rect] = []
    prints: list[np.ndarray] = []
    patches: list[np.ndarray] = []
    for x, y, w, h in boxes:
        r = REACH * side
        rect = (x - r, y - r, x + w + r, y + h + r)
        rects.append(rect)
        patch = warp_region(reference, np.eye(3), rect, box_scale, border=255)
        prints.append(_printed(patch))
        patches.append(patch.astype(np.float32))
    height, width = reference.shape[:2]
    page_scale = PAGE_PX / max(width, height)
    page_rect = (0.0, 0.0, float(width), float(height))
    page = cv2.resize(
        reference,
        (round(width * page_scale), round(height * page_scale)),
        interpolation=cv2.INTER_AREA,
    )
    page_print = _printed(page)
    for x0, y0, x1, y1 in rects:  # box ink is hashed at box resolution, not here
        page_print[
            max(0, int(y0 * page_scale)) : int(np.ceil(y1 * page_scale)) + 1,
            max(0, int(x0 * page_scale)) : int(np.ceil(x1 * page_scale)) + 1,
        ] = True
    from ocr.scene import plan_scene

    return InkPlan(
        rects,
        box_scale,
        prints,
        page_rect,
        page_scale,
        page_print,
        patches,
        scene=plan_scene(reference, boxes),
    )


def relative_ink(
    patch: np.ndarray,
    printed: np.ndarray,
    window: int,
    floor: float = INK_FLOOR,
    full: float = INK_FULL,
) -> np.ndarray:
    """Hand ink in [0, 1]: darkness relative to the local paper (the brightest
    level nearby, over `window` pixels), from `floor` to `full`, print removed.
    Pure (also ocr.scene's)."""
    img = patch.astype(np.float32)
    paper = cv2.blur(cv2.dilate(img, np.ones((window, window), np.uint8)), (window, window))
    darkness = 1.0 - img / np.maximum(paper, 1.0)
    ink = np.clip((darkness - floor) / (full - floor), 0.0, 1.0)
    ink[printed] = 0.0
    return ink


def _ink(patch: np.ndarray, printed: np.ndarray) -> np.ndarray:
    """Hand ink in [0, 1]: darkness relative to the local paper, print removed."""
    return relative_ink(patch, printed, max(3, (min(patch.shape) // 3) | 1))


def box_ink(
    plan: InkPlan,
    index: int,
    photo: np.ndarray,
    homography: np.ndarray,
    shift: Shift = (0.0, 0.0),
) -> np.ndarray:
    """Ink map of box `index`; `shift` (reference pixels) corrects residual misalignment."""
    x0, y0, x1, y1 = plan.box_rects[index]
    dx, dy = shift
    patch = warp_region(
        photo,
        homography,
        (x0 + dx, y0 + dy, x1 + dx, y1 + dy),
        plan.box_scale,
        size=plan.box_print[index].shape[::-1],
    )
    return _ink(patch, plan.box_print[index])


def page_ink(plan: InkPlan, photo: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """Ink map of the whole page at PAGE_PX (stamps, signatures), print and boxes removed."""
    shape = plan.page_print.shape
    patch = warp_region(photo, homography, plan.page_rect, plan.page_scale, size=shape[::-1])
    return _ink(patch, plan.page_print)


def _projection(plan: InkPlan, key: int, size: int) -> np.ndarray:
    """Fixed Gaussian random directions for one part of the descriptor (SimHash)."""
    matrix = plan.projections.get(key)
    if matrix is None or matrix.shape[1] != size:
        rng = np.random.default_rng([PROJECTION_SEED, key])
        matrix = rng.standard_normal((BITS, size)).astype(np.float32)
        plan.projections[key] = matrix
    return matrix


def _register(plan: InkPlan, index: int, window: np.ndarray) -> Shift:
    """Sub-pixel residual shift (fingerprint pixels) of a box window against the
    reference, from the printed outline and rules (phase correlation)."""
    ref = plan.box_reference[index]
    (dx, dy), response = cv2.phaseCorrelate(ref, window.astype(np.float32))
    if response < 0.1 or max(abs(dx), abs(dy)) > 3:
        return 0.0, 0.0
    return float(dx), float(dy)


def ink_descriptor(
    plan: InkPlan,
    photo: np.ndarray,
    homography: np.ndarray,
    marked: Sequence[tuple[int, Shift]],
) -> np.ndarray:
    """Projection of the hand-made ink onto BITS fixed random directions.

    Ink maps are in coverage units over the reference's area, so a box's pen
    strokes and the page's stamps and signatures weigh by how much ink they are.
    `marked` lists (box index, residual shift in reference pixels).
    """
    total = np.zeros(BITS, np.float64)
    for index, shift in marked:
        window = box_ink(plan, index, photo, homography, shift)
        x0, y0, x1, y1 = plan.box_rects[index]
        sx, sy = shift
        raw = warp_region(
            photo,
            homography,
            (x0 + sx, y0 + sy, x1 + sx, y1 + sy),
            plan.box_scale,
            size=window.shape[::-1],
        )
        dx, dy = _register(plan, index, raw)
        if dx or dy:
            window = box_ink(
                plan,
                index,
                photo,
                homography,
                (sx + dx / plan.box_scale, sy + dy / plan.box_scale),
            )
        smooth = cv2.GaussianBlur(window, (0, 0), SMOOTH).ravel()
        total += _projection(plan, 1 + index, smooth.size) @ smooth
    if PAGE_WEIGHT > 0:
        page = cv2.GaussianBlur(page_ink(plan, photo, homography), (0, 0), SMOOTH * 0.5)
        # One page pixel covers (box_scale / page_scale)^2 box pixels of paper.
        weight = PAGE_WEIGHT * plan.box_scale / plan.page_scale
        total += weight * (_projection(plan, 0, page.size) @ page.ravel())
    return total


def ink_fingerprint(
    plan: InkPlan,
    photo: np.ndarray,
    homography: np.ndarray,
    box_scores: Sequence[float],
    box_shifts: Sequence[Shift],
) -> str:
    """16 hex digits: the signs of the ink descriptor (SimHash, Charikar 2002).

    ``box_scores`` and ``box_shifts`` give each box's ink coverage and residual
    misalignment (reference pixels), in option order; the boxes scoring at least
    MARKED are the ones hashed.
    """
    marked = [
        (i, shift)
        for i, (score, shift) in enumerate(zip(box_scores, box_shifts, strict=True))
        if score >= MARKED
    ]
    if plan.scene is not None:
        from ocr.scene import scene_arrays, scene_hash

        return scene_hash(scene_arrays(plan.scene, photo, homography, marked))
    return to_hex(ink_descriptor(plan, photo, homography, marked) > 0)


def to_hex(bits: np.ndarray) -> str:
    """The bits (most significant first) as 16 lowercase hex digits. Pure."""
    value = 0
    for b in bits.ravel():
        value = (value << 1) | int(b)
    return f"{value:016x}"


def hamming(a: str, b: str) -> int:
    """Bits in which two hex fingerprints differ. Pure."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def page_pose(homography: np.ndarray, ref_size: tuple[int, int]) -> list[float]:
    """Direction (degrees) of each side of the page as it lies in the photo.

    Re-saving, rescaling, cropping or brightening a photo keeps these to a
    tenth of a degree; two photographs, even of one paper, differ by degrees
    (the phone's tilt and rotation are never the same twice).
    """
    w, h = ref_size
    corners = project(homography, np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64))
    sides = np.roll(corners, -1, axis=0) - corners
    return [round(float(a), 3) for a in np.degrees(np.arctan2(sides[:, 1], sides[:, 0]))]


def pose_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Largest difference (degrees) between corresponding side directions."""
    return max(abs((x - y + 180.0) % 360.0 - 180.0) for x, y in zip(a, b, strict=True))


def poses_within(a: Sequence[float], b: Sequence[float], limit: float) -> bool:
    """``pose_distance(a, b) <= limit``, stopping at the first side further apart
    (two photographs' poses nearly always differ on the first side: the
    near-duplicate lookup orders ~200 candidates by it). Pure."""
    if len(a) != len(b):
        return False
    # A loop, not all(...): the generator doubles the cost (1.5 against 2.9 us).
    for x, y in zip(a, b, strict=True):  # noqa: SIM110
        if abs((x - y + 180.0) % 360.0 - 180.0) > limit:
            return False
    return True


def scene_fingerprint(
    plan: InkPlan,
    photo: np.ndarray,
    homography: np.ndarray,
    box_scores: Sequence[float],
    box_shifts: Sequence[Shift],
) -> str | None:
    """The scene descriptor (ocr.scene) of an aligned photo, as text: the marked
    boxes' strokes, the page's stamps and signatures, the table around the page.
    None when the plan has no scene part."""
    if plan.scene is None:
        return None
    marked = [
        (i, shift)
        for i, (score, shift) in enumerate(zip(box_scores, box_shifts, strict=True))
        if score >= MARKED
    ]
    from ocr.scene import scene_descriptor

    return scene_descriptor(plan.scene, photo, homography, marked)


def fingerprints(
    plan: InkPlan,
    photo: np.ndarray,
    homography: np.ndarray,
    box_scores: Sequence[float],
    box_shifts: Sequence[Shift],
) -> tuple[str, str | None]:
    """``ink_fingerprint`` and ``scene_fingerprint`` together, the scene's arrays
    taken once for both (half the cost of calling the two)."""
    if plan.scene is None:
        return ink_fingerprint(plan, photo, homography, box_scores, box_shifts), None
    marked = [
        (i, shift)
        for i, (score, shift) in enumerate(zip(box_scores, box_shifts, strict=True))
        if score >= MARKED
    ]
    from ocr.scene import encode, scene_arrays, scene_hash

    arrays = scene_arrays(plan.scene, photo, homography, marked)
    return scene_hash(arrays), encode(arrays)
