"""The pure geometry and decision functions, on hand-made inputs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ocr.align import (
    RATIO_TEST,
    Features,
    displacement,
    homography_problem,
    inside,
    match,
    squared_distances,
)
from ocr.header import blurred_versions, estimate_blur, keyword_similarity, tokens
from ocr.marks import BoxScore
from ocr.reader import bright_level, decide_marks
from ocr.template import is_plain_file_name

REF = (1000, 1400)
PHOTO = (1200, 1600)


def _similarity(x: float, y: float, scale: float, angle_deg: float = 0.0) -> np.ndarray:
    a = np.radians(angle_deg)
    return np.array(
        [
            [scale * np.cos(a), -scale * np.sin(a), x],
            [scale * np.sin(a), scale * np.cos(a), y],
            [0, 0, 1],
        ]
    )


def test_plausible_photo_geometry_is_accepted() -> None:
    assert homography_problem(_similarity(100, 80, 0.9, 20), REF, PHOTO) is None


@pytest.mark.parametrize(
    ("homography", "problem"),
    [
        (np.array([[-0.9, 0, 1000], [0, 0.9, 0], [0, 0, 1]]), "page_mirrored"),
        (_similarity(10, 10, 0.1), "page_too_small"),
        (np.array([[0.9, 0, 0], [0, 0.9, 0], [0.0012, 0, 1]]), "perspective_too_strong"),
        (np.array([[0.9, 0, 0], [0, 0.3, 0], [0, 0, 1]]), "page_distorted"),
    ],
)
def test_impossible_geometry_is_named(homography: np.ndarray, problem: str) -> None:
    assert homography_problem(homography, REF, PHOTO) == problem


def test_inside_and_displacement() -> None:
    h = _similarity(100, 100, 1.0)
    assert inside(h, (0, 0, 500, 500), (1000, 1000))
    assert not inside(h, (0, 0, 950, 500), (1000, 1000))
    assert displacement(h, h, REF) == pytest.approx(0.0)
    assert displacement(h, _similarity(103, 100, 1.0), REF) == pytest.approx(3.0)


def test_keyword_similarity_tolerates_ocr_slips() -> None:
    words = tokens("ИЗБИРАТЕЛЬНЫЙ БЮЛЛЕТЕНb\nдля голосования по выборам Прези дента")
    assert keyword_similarity("БЮЛЛЕТЕНЬ", words) >= 0.85
    assert keyword_similarity("Президента", words) == 1.0  # split word glued back
    assert keyword_similarity("Президента", tokens("депутатов Палаты представителей")) < 0.65
    assert keyword_similarity("REFERENDUM", []) == 0.0


def _score(option: str, value: float) -> BoxScore:
    return BoxScore(option, value, value, 0.0, 0.8, (0, 0), 0.9, False, True)


@pytest.mark.parametrize(
    ("values", "max_marks", "marked", "ambiguous"),
    [
        ([0.0, 0.0, 0.12, 0.0, 0.001, 0.0], 1, ["c"], []),
        ([0.0, 0.0, 0.0, 0.0, 0.0, 0.0], 1, [], []),
        ([0.7, 0.0, 0.05, 0.0, 0.0, 0.0], 1, ["a", "c"], []),
        ([0.0, 0.015, 0.3, 0.0, 0.0, 0.0], 1, ["c"], ["b"]),
        # a uniformly dirty photo: the dirt is the ballot's noise, the mark stands out
        ([0.02, 0.025, 0.09, 0.022, 0.02, 0.021], 1, ["c"], []),
        ([0.02, 0.025, 0.045, 0.022, 0.02, 0.021], 1, [], ["c"]),
        ([0.3, 0.2, 0.4], 3, ["a", "b", "c"], []),
        # every box of a short ballot dotted: the "empty" box carries ink, not noise
        ([0.035, 0.04, 0.036], 1, ["a", "b", "c"], []),
    ],
)
def test_decide_marks(
    values: list[float], max_marks: int, marked: list[str], ambiguous: list[str]
) -> None:
    scores = [_score(chr(ord("a") + i), v) for i, v in enumerate(values)]
    decision = decide_marks(scores, max_marks)
    assert decision.marked == marked
    assert decision.ambiguous == ambiguous
    assert 0.0 <= decision.confidence <= 1.0


def test_estimate_blur_recovers_sigma() -> None:
    rng = np.random.default_rng(0)
    crop = np.full((80, 300), 255, np.uint8)
    for x in range(10, 280, 24):  # letter-like bars
        cv2.rectangle(crop, (x, 20), (x + 6 + int(rng.integers(0, 8)), 60), 0, -1)
    versions = blurred_versions(crop)
    assert estimate_blur(crop, versions)[0] == 0.0
    blurred = cv2.GaussianBlur(crop, (0, 0), 4.0)
    sigma, corr = estimate_blur(blurred, versions)
    assert sigma == 4.0 and corr > 0.95


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("reference.png", True),
        ("../x.png", False),
        ("a/b.png", False),
        ("..", False),
        ("c:\\x.png", False),
        ("", False),
    ],
)
def test_plain_file_names(name: str, ok: bool) -> None:
    assert is_plain_file_name(name) is ok


def test_gated_matching_pairs_repeated_features_with_their_neighbours() -> None:
    """A ballot repeats the same box on every row: across the page the ratio test
    rejects every such feature, within a small gate each finds its own row."""
    descriptor = np.arange(32, dtype=np.uint8)
    rows = np.arange(10, dtype=np.float32) * 100
    reference = Features(np.c_[np.zeros(10), rows].astype(np.float32), np.tile(descriptor, (10, 1)))
    photo = Features(
        np.c_[np.full(10, 3.0), rows + 2].astype(np.float32), np.tile(descriptor, (10, 1))
    )
    src, _ = match(reference, photo)
    assert len(src) == 0
    src, dst = match(reference, photo, gate=20.0)
    assert len(src) == 10
    np.testing.assert_allclose(dst - src, np.tile([3.0, 2.0], (10, 1)))


@pytest.mark.parametrize("seed", range(6))
def test_the_bright_level_is_the_95th_percentile(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 300)), int(rng.integers(1, 400)))
    image = rng.integers(0, 256, shape).astype(np.uint8)
    if seed % 2:  # a dark photo with a few bright pixels: the level falls between two
        image = np.where(rng.random(shape) < 0.06, 250, image // 6).astype(np.uint8)
    assert bright_level(image) == pytest.approx(float(np.percentile(image, 95)), abs=1e-9)
    assert bright_level(np.full((3, 5), 44, np.uint8)) == 44.0


def _knn_match(
    reference: Features, photo: Features, gate: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """match() as BFMatcher.knnMatch (k=2) and DMatch objects give it."""
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    mask = None
    if gate is not None:
        d2 = squared_distances(reference.points, photo.points)
        mask = (d2 < gate * gate).astype(np.uint8)
    pairs = matcher.knnMatch(reference.descriptors, photo.descriptors, k=2, mask=mask)
    good = [
        p[0]
        for p in pairs
        if (len(p) == 2 and p[0].distance < RATIO_TEST * p[1].distance)
        or (len(p) == 1 and gate is not None)
    ]
    src = np.array([reference.points[m.queryIdx] for m in good], np.float32).reshape(-1, 2)
    dst = np.array([photo.points[m.trainIdx] for m in good], np.float32).reshape(-1, 2)
    return src, dst


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("gate", [None, 15.0, 60.0])
def test_matching_finds_what_opencvs_knn_matcher_finds(seed: int, gate: float | None) -> None:
    rng = np.random.default_rng(seed)
    # Few distinct descriptors, slightly altered: many ties and near-ties.
    base = rng.integers(0, 256, (12, 32), dtype=np.uint8)

    def features(n: int) -> Features:
        descriptors = base[rng.integers(0, len(base), n)].copy()
        flips = rng.random((n, 32)) < 0.03
        descriptors[flips] ^= rng.integers(1, 256, int(flips.sum()), dtype=np.uint8)
        return Features(rng.uniform(0, 200, (n, 2)).astype(np.float32), descriptors)

    reference, photo = features(150), features(170)
    src, dst = match(reference, photo, gate)
    want_src, want_dst = _knn_match(reference, photo, gate)
    assert len(src) > 0
    np.testing.assert_array_equal(src, want_src)
    np.testing.assert_array_equal(dst, want_dst)
