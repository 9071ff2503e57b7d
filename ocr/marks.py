"""Scoring the mark boxes of an aligned ballot against the clean reference.

A box's score is the pen ink added inside it (and a little around it, where
marks spill over), measured relative to the paper's own brightness so shadows
and uneven light do not count as ink. Printed ink of the reference (the box
outline, table lines) is masked out with a tolerance for alignment error.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ocr.align import inside, project, warp_region

# Everything is proportional to the box side: no pixel constant depends on a layout.
PAD = 0.6  # context kept around the box for local re-alignment
SEARCH = 0.2  # residual misalignment searched for around each box
RING = 0.3  # how far outside the box spilled ink is looked for
TOLERANCE = 0.05  # printed ink is grown by this much before being masked out
INSET = 0.06  # interior starts this far inside the box edge
RING_WEIGHT = 0.5  # spilled ink counts half: it might belong to something else

INK_FLOOR = 0.15  # darkness (1 - pixel/paper) below this is paper texture or JPEG noise
INK_FULL = 0.6  # darkness at and above this is full-strength ink
PRINT_THRESHOLD = 128  # reference pixels darker than this are printed ink
MIN_MATCH = 0.2  # below this local-match score the box was not found where expected
# A photo smears printed ink over about this many of its own pixels (lens blur,
# JPEG, resampling). Where the photo shows a box with fewer pixels than the patch
# has (a small box, a distant shot), that smear covers more patch pixels than
# TOLERANCE, and the outline's halo inside the box would read as a faint mark: the
# print is grown by the smear at the box's own scale instead (score_box).
BLEED_PX = 2.5


Rect = tuple[int, int, int, int]


@dataclass(frozen=True)
class BoxReference:
    option_id: str
    rect: Rect  # reference pixels (x0, y0, x1, y1): box + pad (the template patch)
    scale: float  # sampling scale of every patch (frame pixels per reference pixel)
    search: int  # frame pixels searched around the expected position
    patch: np.ndarray  # reference sampled over `rect` at `scale`, uint8
    interior: np.ndarray  # bool masks in patch coordinates
    ring: np.ndarray
    paper: np.ndarray
    outline: np.ndarray
    printed: np.ndarray  # uint8 0/1, the reference's print in the patch
    inner: np.ndarray  # bool, the interior before the print is taken out
    around: np.ndarray  # bool, the ring before the print is taken out
    tolerance: int  # patch pixels the print is grown by in `interior` and `ring`
    side: float  # box side, reference pixels


@dataclass(frozen=True)
class BoxScore:
    option_id: str
    score: float  # ink coverage of the interior, spilled ink added at RING_WEIGHT
    interior: float
    ring: float
    contrast: float  # darkness of the printed outline in the photo (sharpness/exposure)
    shift: tuple[int, int]  # local correction found, frame pixels
    match: float  # local template-match score
    at_limit: bool  # the best match lay on the edge of the searched area
    visible: bool  # False when part of the box's surroundings lies outside the photo


def _rect_mask(shape: tuple[int, int], rect: tuple[float, float, float, float]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    x0, y0, x1, y1 = (round(v) for v in rect)
    mask[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = True
    return mask


def _disk(radius: int) -> np.ndarray:
    size = 2 * radius + 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def box_reference(
    option_id: str,
    box: tuple[int, int, int, int],
    reference: np.ndarray,
    scale: float,
    neighbours: list[tuple[int, int, int, int]] | None = None,
) -> BoxReference:
    """Precompute everything a box needs at read time (done once per template).

    `neighbours` are the other boxes: ink spilling from them must not count here,
    so their squares and spill zones are cut out of this box's ring.
    """
    x, y, w, h = box
    side = min(w, h)
    pad = PAD * side
    rect: Rect = (
        int(np.floor(x - pad)),
        int(np.floor(y - pad)),
        int(np.ceil(x + w + pad)),
        int(np.ceil(y + h + pad)),
    )
    patch = warp_region(reference, np.eye(3), rect, scale)
    shape = patch.shape[:2]
    printed = (patch < PRINT_THRESHOLD).astype(np.uint8)
    tol = max(2, round(TOLERANCE * side * scale))
    printed_grown = cv2.dilate(printed, _disk(tol)).astype(bool)

    def local(rx0: float, ry0: float, rx1: float, ry1: float) -> tuple[float, float, float, float]:
        return (
            (rx0 - rect[0]) * scale,
            (ry0 - rect[1]) * scale,
            (rx1 - rect[0]) * scale,
            (ry1 - rect[1]) * scale,
        )

    inset = max(INSET * side, 1.0)
    box_area = _rect_mask(shape, local(x, y, x + w, y + h))
    inner = _rect_mask(shape, local(x + inset, y + inset, x + w - inset, y + h - inset))
    out = RING * side
    around = _rect_mask(shape, local(x - out, y - out, x + w + out, y + h + out))
    ring_zone = around & ~box_area
    for nx, ny, nw, nh in neighbours or []:
        reach = RING * min(nw, nh) + TOLERANCE * side
        ring_zone &= ~_rect_mask(
            shape, local(nx - reach, ny - reach, nx + nw + reach, ny + nh + reach)
        )
    interior = inner & ~printed_grown
    ring = ring_zone & ~printed_grown
    paper = ~around & ~cv2.dilate(printed, _disk(2 * tol)).astype(bool)
    # The printed outline: reference ink near the box edge, used to gauge contrast.
    edge_zone = _rect_mask(shape, local(x - inset, y - inset, x + w + inset, y + h + inset))
    edge_zone &= ~inner
    outline = edge_zone & printed.astype(bool)
    return BoxReference(
        option_id=option_id,
        rect=rect,
        scale=scale,
        search=max(3, round(SEARCH * side * scale)),
        patch=patch,
        interior=interior,
        ring=ring,
        paper=paper,
        outline=outline,
        printed=printed,
        inner=inner,
        around=ring_zone,
        tolerance=tol,
        side=float(side),
    )


def masks_for(ref: BoxReference, photo_px: float) -> tuple[np.ndarray, np.ndarray]:
    """(interior, ring) of a box shown with `photo_px` photo pixels per patch pixel:
    the print grown by BLEED_PX photo pixels where that exceeds the template's
    tolerance. Pure."""
    grow = int(np.ceil(BLEED_PX / max(photo_px, 1e-3)))
    if grow <= ref.tolerance:
        return ref.interior, ref.ring
    grown = cv2.dilate(ref.printed, _disk(grow)).astype(bool)
    return ref.inner & ~grown, ref.around & ~grown


def photo_scale(ref: BoxReference, homography: np.ndarray) -> float:
    """Photo pixels per patch pixel at the box: the mean length, in the photo, of
    the box's sides over their length in the patch. Pure."""
    x0, y0, x1, y1 = ref.rect
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = ref.side / 2
    corners = np.array(
        [
            [cx - half, cy - half],
            [cx + half, cy - half],
            [cx + half, cy + half],
            [cx - half, cy + half],
        ]
    )
    pts = project(homography, corners)
    sides = np.hypot(*(np.roll(pts, -1, axis=0) - pts).T)
    return float(np.mean(sides)) / (ref.side * ref.scale)


def paper_level(patch: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """Brightness of bare paper across the patch: a plane fitted to the paper pixels.

    A plane follows a light gradient or a soft shadow across the box; the darkest
    third of the candidates is dropped first, as stray ink or dirt.
    """
    ys, xs = np.nonzero(paper)
    values = patch[ys, xs].astype(np.float64)
    if len(values) < 30:
        level = float(np.percentile(patch, 90))
        return np.full(patch.shape, max(level, 1.0), np.float32)
    keep = values >= np.percentile(values, 33)
    xs, ys, values = xs[keep], ys[keep], values[keep]
    design = np.c_[np.ones(len(xs)), xs, ys]
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    yy, xx = np.mgrid[0 : patch.shape[0], 0 : patch.shape[1]]
    plane = coef[0] + coef[1] * xx + coef[2] * yy
    return np.maximum(plane, 1.0).astype(np.float32)


def ink_strength(patch: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """Per-pixel ink amount in [0, 1] from darkness relative to the paper."""
    darkness = 1.0 - patch.astype(np.float32) / paper
    return np.clip((darkness - INK_FLOOR) / (INK_FULL - INK_FLOOR), 0.0, 1.0)


def locate(window: np.ndarray, template: np.ndarray) -> tuple[int, int, float]:
    """Best position of the reference patch inside the searched window."""
    result = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
    _, best, _, loc = cv2.minMaxLoc(result)
    return int(loc[0]), int(loc[1]), float(best)


def score_box(ref: BoxReference, photo: np.ndarray, homography: np.ndarray) -> BoxScore:
    """Score one box of a photo whose homography maps reference -> photo pixels."""
    s = ref.search / ref.scale
    x0, y0, x1, y1 = ref.rect
    window_rect = (x0 - s, y0 - s, x1 + s, y1 + s)
    ph, pw = ref.patch.shape
    window = warp_region(
        photo, homography, window_rect, ref.scale, size=(pw + 2 * ref.search, ph + 2 * ref.search)
    )
    dx, dy, match = locate(window, ref.patch)
    centre = ref.search
    if match < MIN_MATCH:
        dx, dy = centre, centre
    patch = window[dy : dy + ph, dx : dx + pw]
    visible = inside(homography, window_rect, photo.shape[:2])
    paper = paper_level(patch, ref.paper)
    ink = ink_strength(patch, paper)
    inner, around = masks_for(ref, photo_scale(ref, homography))
    n_interior = max(1, int(inner.sum()))
    interior = float(ink[inner].sum()) / n_interior
    ring = float(ink[around].sum()) / n_interior
    contrast = 0.0
    if ref.outline.any():
        contrast = float(np.median(1.0 - patch[ref.outline] / paper[ref.outline]))
    return BoxScore(
        option_id=ref.option_id,
        score=interior + RING_WEIGHT * ring,
        interior=interior,
        ring=ring,
        contrast=contrast,
        shift=(dx - centre, dy - centre),
        match=match,
        at_limit=max(abs(dx - centre), abs(dy - centre)) >= ref.search,
        visible=visible,
    )
