"""Is one protocol photo a copy of another? Deterministic, no I/O.

Several photos of one posted protocol confirm each other's figures only when they
are several *photos*: a re-saved, rescaled, cropped, brightened or screenshotted
copy of one photo is the same evidence twice. (Ballots ask a different question,
one *sheet* sent twice, answered by ``ocr.scene``; two observers photographing one
posted protocol is the normal, welcome case here, so the sheet's own texture, the
same in both, cannot decide it.)

What a copy keeps and a second photo does not:

* **The frame's geometry.** Every copy transform maps the original's pixels by a
  similarity (scale, shift; a quarter turn), so one similarity carries the
  features of one onto the other to within a pixel or two. Two photos of one
  sheet taken by two people, or by one person a moment apart, see it from two
  points: a perspective that no similarity undoes (``GEOMETRY_PX``).
* **The light.** A copy keeps the original's shading, shadows and background,
  up to a change of brightness and contrast; a second photo has its own
  (``MIN_CORRELATION``, measured on the overlap after an affine fit of the grey
  levels).

Both must hold. A photo of the original shown on a screen is a new photo of it in
these terms (a new perspective and light) and is not found; nor is a copy warped
by hand. Thresholds: ``bench/protocol_copies.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WORK_SIDE = 1000  # long side both photos are compared at
FEATURES = 3000
RATIO = 0.8  # Lowe's ratio test on the two nearest descriptors
MIN_MATCHES = 40  # fewer consistent matches: nothing to compare (not a copy)
RANSAC_PX = 3.0
# The refined homography's distance from a similarity (``non_similarity``), in
# WORK_SIDE pixels. bench/protocol_copies.py --sheets 20 (seed 1, 60 of each kind,
# three forms): copies 0.00-1.72 px (screenshots the most: they are small); second
# photos of one sheet 4.2 px and up; two photos both nearly square on (tilt under
# 1.5%, turned under 3 degrees) 2.41 px and up. A thin margin on that gentlest pair:
# a real second photo is rarely as close (a 1 degree turn of the phone about a
# horizontal axis already moves a corner ~10 px).
GEOMETRY_PX = 2.0
# Correlation of the overlapping grey levels (smoothed): copies 0.969 and up (the
# brightened ones, by a gain and an offset). It does not tell a copy from a second
# photo taken at once from one spot (those reach 0.995): it keeps two *different*
# sheets of one form that happen to line up (two scans) from being called copies.
MIN_CORRELATION = 0.95
SMOOTH_SIGMA = 1.5  # before the correlation: resampling and JPEG grain are not evidence
ECC_SIDE = 600  # the dense refinement's long side
ECC_ITERATIONS = 80
ECC_FILTER = 5
GRID = 5  # points a side over the frame where the homography is compared


@dataclass(frozen=True)
class CopyCheck:
    """The evidence for "``b`` is a copy of ``a``" and the verdict."""

    matches: int  # consistent feature matches (the homography's inliers)
    geometry_px: float | None  # see GEOMETRY_PX; None without enough matches
    correlation: float | None  # see MIN_CORRELATION; None when not computed
    copy: bool


def _work(gray: np.ndarray) -> np.ndarray:
    scale = WORK_SIDE / max(gray.shape)
    if scale >= 1.0:
        return gray
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def _matched(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Matching feature points (b's, a's), or None with too few."""
    orb = cv2.ORB.create(nfeatures=FEATURES)
    kp_a, des_a = orb.detectAndCompute(a, None)
    kp_b, des_b = orb.detectAndCompute(b, None)
    if des_a is None or des_b is None or len(kp_a) < 2 or len(kp_b) < 2:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(des_b, des_a, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < MIN_MATCHES:
        return None
    pts_b = np.asarray(cv2.KeyPoint.convert([kp_b[m.queryIdx] for m in good]), np.float32)
    pts_a = np.asarray(cv2.KeyPoint.convert([kp_a[m.trainIdx] for m in good]), np.float32)
    return pts_b, pts_a


def _correlation(a: np.ndarray, b: np.ndarray, to_a: np.ndarray) -> float | None:
    """Pearson correlation of ``a`` and ``b`` carried onto it, over their overlap."""
    h, w = a.shape
    warped = cv2.warpPerspective(b, to_a, (w, h), flags=cv2.INTER_LINEAR)
    covered = cv2.warpPerspective(np.ones_like(b), to_a, (w, h), flags=cv2.INTER_NEAREST)
    inside = cv2.erode(covered, np.ones((7, 7), np.uint8)) > 0
    if inside.sum() < 0.1 * a.size:
        return None
    x = cv2.GaussianBlur(a.astype(np.float32), (0, 0), SMOOTH_SIGMA)[inside]
    y = cv2.GaussianBlur(warped.astype(np.float32), (0, 0), SMOOTH_SIGMA)[inside]
    x -= x.mean()
    y -= y.mean()
    denom = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / denom) if denom > 0 else None


def _refined(a: np.ndarray, b: np.ndarray, homography: np.ndarray) -> np.ndarray | None:
    """The homography from ``a``'s pixels to ``b``'s, refined densely (ECC) from the
    features' one (``b`` to ``a``); None when the refinement fails."""
    # Both at one scale, so that the features' homography keeps its form.
    scale = ECC_SIDE / max(a.shape)
    to_small = np.diag([scale, scale, 1.0])
    small_a = cv2.resize(a, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    small_b = cv2.resize(b, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    start = to_small @ np.linalg.inv(homography) @ np.linalg.inv(to_small)
    start = (start / start[2, 2]).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_ITERATIONS, 1e-6)
    try:
        _, warp = cv2.findTransformECC(
            small_a.astype(np.float32),
            small_b.astype(np.float32),
            start,
            cv2.MOTION_HOMOGRAPHY,
            criteria,
            np.ones(small_b.shape, np.uint8),
            ECC_FILTER,
        )
    except cv2.error:
        return None
    # Back to full work pixels: a's pixel -> small a -> small b -> b's pixel.
    back = np.linalg.inv(to_small) @ warp.astype(np.float64) @ to_small
    return back / back[2, 2]


def non_similarity(homography: np.ndarray, shape: tuple[int, int]) -> float:
    """How far a homography is from a similarity over a frame of ``shape``: the
    largest distance, over a grid of the frame's points, between where it carries
    them and where the best similarity does, in pixels. Pure."""
    h, w = shape
    xs, ys = np.meshgrid(np.linspace(0, w, GRID), np.linspace(0, h, GRID))
    points = np.stack([xs.ravel(), ys.ravel()], axis=1)
    moved = cv2.perspectiveTransform(points[None].astype(np.float64), homography)[0]
    similarity, _ = cv2.estimateAffinePartial2D(points, moved, method=cv2.LMEDS)
    if similarity is None:
        return float("inf")
    fitted = points @ similarity[:, :2].T + similarity[:, 2]
    return float(np.linalg.norm(fitted - moved, axis=1).max())


def copy_check(a: np.ndarray, b: np.ndarray) -> CopyCheck:
    """Whether grey photo ``b`` is a copy of grey photo ``a`` (either way round: the
    test is symmetric up to the features found). Both upright, any size."""
    a, b = _work(a), _work(b)
    matched = _matched(a, b)
    if matched is None:
        return CopyCheck(0, None, None, copy=False)
    pts_b, pts_a = matched
    homography, mask = cv2.findHomography(pts_b, pts_a, cv2.RANSAC, RANSAC_PX)
    if homography is None or mask is None or int(mask.sum()) < MIN_MATCHES:
        return CopyCheck(0 if mask is None else int(mask.sum()), None, None, copy=False)
    inliers = int(mask.sum())
    refined = _refined(a, b, homography)
    if refined is None:
        return CopyCheck(inliers, None, None, copy=False)
    geometry = non_similarity(refined, a.shape[:2])
    to_a = np.linalg.inv(refined)
    correlation = _correlation(a, b, to_a / to_a[2, 2])
    copy = geometry <= GEOMETRY_PX and correlation is not None and correlation >= MIN_CORRELATION
    return CopyCheck(inliers, geometry, correlation, copy=copy)
