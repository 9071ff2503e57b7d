"""Finding the template's ballot in a photo: ORB features + RANSAC homography.

All homographies here map reference-image pixels to photo pixels, so the
template's coordinates can be projected straight into the photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

# Matching runs on downscaled images: text strokes are then a few pixels wide,
# which keeps ORB's keypoints on stable structure and the cost low.
REF_MATCH_SIDE = 900
PHOTO_MATCH_SIDE = 1000
N_FEATURES = 2000  # for finding the page: enough to survive a busy background
N_REFINE = 1200  # for refining, evenly spread: plenty for 8 parameters
RATIO_TEST = 0.8
RANSAC_PX = 4.0  # reprojection tolerance, pixels of the photo's match image

GRID = 8  # features are spread over GRID x GRID cells of the image
REFINE_GATE = 0.04  # refinement matches must lie within this share of the page size
REFINE_PX = 2.0  # refinement reprojection tolerance, pixels of the match image
REFINE_MIN_RATIO = 0.25  # a right correction fits most of the gated matches

FLAT_SIDE = 200  # long side at which the paper's brightness is estimated
FLAT_PAPER = 230  # the level paper is brought to

MIN_INLIERS = 30
MIN_INLIER_RATIO = 0.2


@dataclass(frozen=True)
class Features:
    points: np.ndarray  # (N, 2) float32, in pixels of the image they were taken from
    descriptors: np.ndarray  # (N, 32) uint8


@dataclass(frozen=True)
class Alignment:
    homography: np.ndarray  # 3x3 float64, reference pixels -> photo pixels
    matches: int
    inliers: int

    @property
    def inlier_ratio(self) -> float:
        return self.inliers / self.matches if self.matches else 0.0


def resize_long_side(gray: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    """Downscale (never upscale) so the long side is at most `long_side`."""
    scale = min(1.0, long_side / max(gray.shape[:2]))
    if scale >= 1.0:
        return gray, 1.0
    out = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return out, scale


def flatten_lighting(gray: np.ndarray) -> np.ndarray:
    """The photo divided by its own paper brightness, so shadows and light
    gradients leave the print at one contrast.

    ORB's FAST detector uses one intensity threshold for the whole image: under
    a shadow or in a dim corner the print falls below it and the page loses its
    features there. The paper level is the local maximum of a coarse copy
    (print is thin and dark, paper is bright), smoothed and scaled back.
    """
    small, _ = resize_long_side(gray, FLAT_SIDE)
    paper = cv2.GaussianBlur(cv2.dilate(small, np.ones((7, 7), np.uint8)), (0, 0), 5)
    paper = cv2.resize(paper, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
    flat = gray.astype(np.float32) * (FLAT_PAPER / np.maximum(paper.astype(np.float32), 1.0))
    return np.clip(flat, 0, 255).astype(np.uint8)


def flatten_lighting_fast(gray: np.ndarray) -> np.ndarray:
    """flatten_lighting in 8-bit arithmetic (rounded where it truncates: a grey
    level at most apart), several times faster: the ballot reader's."""
    small, _ = resize_long_side(gray, FLAT_SIDE)
    paper = cv2.GaussianBlur(cv2.dilate(small, np.ones((7, 7), np.uint8)), (0, 0), 5)
    paper = cv2.resize(paper, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.divide(gray, np.maximum(paper, 1), scale=FLAT_PAPER)


def _spread(
    keypoints: Sequence[cv2.KeyPoint], shape: tuple[int, int], quota: int
) -> list[cv2.KeyPoint]:
    """Keep the strongest keypoints of each grid cell, at most `quota` in all.

    ORB's own selection piles its budget onto the densest print (small text),
    leaving whole rows of a ballot without a feature; a homography fitted to one
    corner of the page extrapolates badly to the rest.
    """
    h, w = shape
    per_cell = max(1, quota // (GRID * GRID))
    if not keypoints:
        return []
    # Vectorised, with the order a loop over cells would give: cells in the order
    # of their first keypoint, each cell's strongest first (ties in input order).
    # KeyPoint.convert: the same float32 coordinates as k.pt, without a Python loop
    # (1.45 ms for ORB's 3600 keypoints of a refinement, 0.02 ms so).
    pts = np.asarray(cv2.KeyPoint.convert(keypoints), np.float64)
    response = np.array([k.response for k in keypoints], np.float64)
    rows = np.minimum(GRID - 1, (pts[:, 1] * GRID / h).astype(np.int64))
    cols = np.minimum(GRID - 1, (pts[:, 0] * GRID / w).astype(np.int64))
    cell = rows * GRID + cols
    _, first = np.unique(cell, return_index=True)
    rank = np.empty(GRID * GRID, np.int64)
    rank[cell[np.sort(first)]] = np.arange(len(first))
    index = np.arange(len(keypoints))
    order = np.lexsort((index, -response, rank[cell]))
    ordered_cells = rank[cell][order]
    starts = np.searchsorted(ordered_cells, ordered_cells, side="left")
    chosen = order[(np.arange(len(order)) - starts) < per_cell]
    return [keypoints[i] for i in chosen]


def detect(
    gray: np.ndarray, long_side: int, spread: bool = False, count: int = N_FEATURES
) -> Features:
    """ORB features, in pixels of `gray`; `spread` evens them out over the image.

    Spreading suits an image that is all page (the reference, an upright warp);
    on a raw photo it would spend the budget on the table around the ballot.
    """
    small, scale = resize_long_side(gray, long_side)
    if spread:
        orb = cv2.ORB.create(nfeatures=3 * count, fastThreshold=10)
        chosen = _spread(orb.detect(small, None), small.shape[:2], count)
        keypoints, descriptors = orb.compute(small, chosen)
    else:
        orb = cv2.ORB.create(nfeatures=count, fastThreshold=10)
        keypoints, descriptors = orb.detectAndCompute(small, None)
    if descriptors is None or not keypoints:
        return Features(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8))
    points = np.asarray(cv2.KeyPoint.convert(keypoints), np.float32) / scale
    return Features(points, descriptors)


def reference_features(reference: np.ndarray) -> Features:
    """For finding the page: ORB's strongest features, the most distinctive."""
    return detect(reference, REF_MATCH_SIDE)


def refinement_features(reference: np.ndarray) -> Features:
    """For refining: features spread over the whole page, for a well-conditioned fit."""
    return detect(reference, REF_MATCH_SIDE, spread=True, count=N_REFINE)


def homography_problem(
    homography: np.ndarray, ref_size: tuple[int, int], photo_size: tuple[int, int]
) -> str | None:
    """Why a homography cannot be a photo of a flat page, or None if it can.

    Pure geometry: the projected page must be a convex, non-mirrored quadrilateral
    of plausible size whose sides keep their proportions within what a handheld
    shot produces.
    """
    w, h = ref_size
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    hom = np.c_[corners, np.ones(4)] @ homography.T
    if np.any(hom[:, 2] <= 1e-9):
        return "page_behind_camera"
    quad = hom[:, :2] / hom[:, 2:]
    edges = np.roll(quad, -1, axis=0) - quad
    cross = (
        edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1]
        - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    )
    if not (np.all(cross > 0) or np.all(cross < 0)):
        return "page_not_convex"
    if cross[0] < 0:  # image y points down, so a non-mirrored page turns clockwise
        return "page_mirrored"
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    top, right, bottom, left = lengths
    if min(top / bottom, bottom / top, left / right, right / left) < 0.5:
        return "perspective_too_strong"
    aspect_ref = w / h
    aspect = ((top + bottom) / 2) / ((left + right) / 2)
    if not 0.6 < aspect / aspect_ref < 1.6:
        return "page_distorted"
    area = 0.5 * abs(
        float(np.sum(quad[:, 0] * np.roll(quad[:, 1], -1) - np.roll(quad[:, 0], -1) * quad[:, 1]))
    )
    pw, ph = photo_size
    if area < 0.04 * pw * ph:
        return "page_too_small"
    return None


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) squared distances between two sets of points."""
    dx = np.subtract.outer(a[:, 0], b[:, 0])
    dy = np.subtract.outer(a[:, 1], b[:, 1])
    return dx * dx + dy * dy


def match(
    reference: Features,
    photo: Features,
    gate: float | None = None,
    distances2: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Ratio-tested nearest-neighbour matches: (reference points, photo points).

    With `gate`, a reference point is only compared with photo points within
    `gate` pixels of it (both sets must then be in the same frame), and the
    ratio test runs among those: on a ballot the same box corner repeats on
    every row, so across the whole page no match would pass it. `distances2`
    (squared_distances of the two point sets) saves recomputing them per gate.
    """
    if len(reference.points) < 2 or len(photo.points) < 2:
        empty = np.zeros((0, 2), np.float32)
        return empty, empty
    near = None
    if gate is not None:
        if distances2 is None:
            distances2 = squared_distances(reference.points, photo.points)
        near = (distances2 < gate * gate).astype(np.uint8)
    # The two nearest photo descriptors of each reference one, as BFMatcher.knnMatch
    # (k=2) finds them (it calls batchDistance; ties to the lower index), without
    # building its DMatch objects: 20 instead of 24 ms a photo for the first fit's
    # 2000 x 2000 features (tests/ocr/test_ocr_pure.py compares the two). An index
    # of -1: fewer candidates within the gate.
    distances, nearest = cv2.batchDistance(
        reference.descriptors,
        photo.descriptors,
        cv2.CV_32S,
        normType=cv2.NORM_HAMMING,
        K=2,
        mask=near,
    )
    first, second = nearest[:, 0], nearest[:, 1]
    good = (second >= 0) & (distances[:, 0] < RATIO_TEST * distances[:, 1])
    if gate is not None:
        good |= (first >= 0) & (second < 0)
    src = reference.points[good].astype(np.float32).reshape(-1, 2)
    dst = photo.points[first[good]].astype(np.float32).reshape(-1, 2)
    return src, dst


def estimate(reference: Features, photo: Features, scale: float) -> Alignment | None:
    """RANSAC homography between matched points; `scale` = photo match px per photo px."""
    src, dst = match(reference, photo)
    if len(src) < 8:
        return None
    cv2.setRNGSeed(12345)  # RANSAC sampling must not make the same photo read differently
    homography, mask = cv2.findHomography(
        src, dst, cv2.USAC_MAGSAC, RANSAC_PX / scale, maxIters=3000, confidence=0.999
    )
    if homography is None or mask is None:
        return None
    return Alignment(np.asarray(homography, np.float64), len(src), int(mask.sum()))


def refine(
    reference: Features,
    ref_size: tuple[int, int],
    photo: np.ndarray,
    alignment: Alignment,
    gates: Sequence[float] = (REFINE_GATE,),
) -> Alignment | None:
    """Second pass in the reference's own frame: warp the photo upright with the
    first homography, match again (now without rotation or perspective between
    the two, and only between nearby points) and compose the small correction.

    Each gate (a share of the page size) is tried on the same upright features
    and the correction with the most inliers kept: a wide gate reaches a first
    fit that is far off, a narrow one keeps the rows of a tightly printed
    ballot, which repeat the same boxes, from being matched to each other.
    None when no gate gives a consistent correction: the first fit is then too
    far off (or not this page).
    """
    w, h = ref_size
    scale = min(1.0, REF_MATCH_SIDE / max(w, h))
    upright = warp_region(photo, alignment.homography, (0, 0, w, h), scale)
    found = detect(upright, max(upright.shape), spread=True, count=N_REFINE)
    found = Features(found.points / scale, found.descriptors)  # -> reference pixels
    best: Alignment | None = None
    distances2 = squared_distances(reference.points, found.points)
    for gate in gates:
        src, dst = match(reference, found, gate * max(w, h), distances2)
        if len(src) < MIN_INLIERS:
            continue
        cv2.setRNGSeed(12345)
        correction, mask = cv2.findHomography(
            src, dst, cv2.USAC_MAGSAC, REFINE_PX / scale, maxIters=3000, confidence=0.999
        )
        if correction is None or mask is None:
            continue
        inliers = int(mask.sum())
        if inliers < MIN_INLIERS or inliers < REFINE_MIN_RATIO * len(src):
            continue
        # Every match moved a point by less than the gate: a correction moving
        # the page further is a fit to mismatched rows, not to the page.
        if displacement(np.eye(3), np.asarray(correction, np.float64), ref_size) > (
            2 * gate * max(w, h)
        ):
            continue
        if best is None or inliers > best.inliers:
            combined = alignment.homography @ np.asarray(correction, np.float64)
            best = Alignment(combined / combined[2, 2], len(src), inliers)
    return best


def align(
    reference: Features,
    photo: np.ndarray,
    long_side: int = PHOTO_MATCH_SIDE,
    count: int = N_FEATURES,
) -> Alignment | None:
    """Locate the reference page in a grayscale photo, or None if no model fits.

    A larger `long_side` (and `count`) finds a ballot that fills only part of a
    busy frame: its print is then at about the reference's matching scale.
    """
    scale = min(1.0, long_side / max(photo.shape[:2]))  # resize_long_side's, not resized twice
    return estimate(reference, detect(photo, long_side, count=count), scale)


def is_confident(alignment: Alignment) -> bool:
    """Enough consistent matches; twice as many excuse a lower share, as when
    clutter around the page adds matches that fit nothing (the header OCR still
    has to confirm the election)."""
    if alignment.inliers >= 2 * MIN_INLIERS:
        return alignment.inlier_ratio >= MIN_INLIER_RATIO / 2
    return alignment.inliers >= MIN_INLIERS and alignment.inlier_ratio >= MIN_INLIER_RATIO


def warp_region(
    photo: np.ndarray,
    homography: np.ndarray,
    rect: tuple[float, float, float, float],
    scale: float = 1.0,
    border: int | None = 255,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Warp the photo into reference rectangle (x0, y0, x1, y1), sampled at `scale`.

    `size` (width, height) forces the output size, e.g. to match a precomputed patch.
    Outside the photo: `border`, or the photo's edge pixels repeated (None).
    """
    x0, y0, x1, y1 = rect
    out_w, out_h = size or (round((x1 - x0) * scale), round((y1 - y0) * scale))
    # output pixel (u, v) <- reference point (x0 + u / scale, y0 + v / scale)
    to_ref = np.array([[1 / scale, 0, x0], [0, 1 / scale, y0], [0, 0, 1]], dtype=np.float64)
    return cv2.warpPerspective(
        photo,
        homography @ to_ref,
        (max(1, out_w), max(1, out_h)),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT if border is not None else cv2.BORDER_REPLICATE,
        borderValue=border if border is not None else 0,
    )


def inside(
    homography: np.ndarray, rect: tuple[float, float, float, float], shape: tuple[int, int]
) -> bool:
    """Whether reference rectangle `rect` lands wholly inside a photo of `shape` (h, w)."""
    x0, y0, x1, y1 = rect
    pts = project(homography, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
    h, w = shape
    return bool(np.all(pts >= -1) and np.all(pts[:, 0] <= w + 1) and np.all(pts[:, 1] <= h + 1))


def displacement(first: np.ndarray, second: np.ndarray, ref_size: tuple[int, int]) -> float:
    """Largest distance (reference pixels) by which two homographies disagree on
    where the page's corners and centre are."""
    w, h = ref_size
    pts = np.array([[0, 0], [w, 0], [w, h], [0, h], [w / 2, h / 2]], dtype=np.float64)
    try:
        back = project(np.linalg.inv(second) @ first, pts)
    except np.linalg.LinAlgError:
        return float("inf")
    return float(np.max(np.hypot(*(back - pts).T)))


def project(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    hom = np.c_[pts, np.ones(len(pts))] @ homography.T
    return hom[:, :2] / hom[:, 2:]
