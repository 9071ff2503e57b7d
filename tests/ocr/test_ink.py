"""The ink hash on hand-made pages (no Tesseract): what enters it, and its bit helpers."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ocr.ink import (
    MARKED,
    fingerprints,
    hamming,
    ink_fingerprint,
    page_pose,
    plan_ink,
    pose_distance,
    poses_within,
    scene_fingerprint,
    to_hex,
)

BOXES = [(100, 100, 60, 60), (100, 220, 60, 60), (100, 340, 60, 60)]
UNMARKED = [0.0, 0.0, 0.0]
NO_SHIFT = [(0.0, 0.0)] * 3


def _page() -> np.ndarray:
    page = np.full((500, 400), 235, np.uint8)
    for x, y, w, h in BOXES:
        cv2.rectangle(page, (x, y), (x + w, y + h), 30, 2)
    return page


def _marked(page: np.ndarray, box: int, stroke: str) -> np.ndarray:
    x, y, w, h = BOXES[box]
    photo = page.copy()
    if stroke == "cross":
        cv2.line(photo, (x + 10, y + 10), (x + w - 10, y + h - 10), 20, 4)
        cv2.line(photo, (x + w - 10, y + 10), (x + 10, y + h - 10), 20, 4)
    else:
        cv2.circle(photo, (x + w // 2, y + h // 2), w // 3, 20, 4)
    return photo


def _hash(photo: np.ndarray, scores: list[float]) -> str:
    plan = plan_ink(_page(), BOXES)
    return ink_fingerprint(plan, photo, np.eye(3), scores, NO_SHIFT)


def test_ink_hash_is_16_hex_digits_and_deterministic() -> None:
    photo = _marked(_page(), 0, "cross")
    first = _hash(photo, [0.2, 0.0, 0.0])
    assert len(first) == 16 and int(first, 16) >= 0
    assert _hash(photo, [0.2, 0.0, 0.0]) == first


def test_only_boxes_scoring_marked_enter_the_hash() -> None:
    photo = _marked(_page(), 0, "cross")
    assert _hash(photo, UNMARKED) == "0" * 16  # nothing hashed: every projection is 0
    assert _hash(photo, [MARKED, 0.0, 0.0]) != "0" * 16
    # Ink in a box that is not counted as marked does not change the hash.
    both = _marked(_marked(_page(), 0, "cross"), 1, "circle")
    assert _hash(both, [0.2, 0.0, 0.0]) == _hash(photo, [0.2, 0.0, 0.0])


def test_other_marks_give_other_hashes_and_the_same_paper_a_near_one() -> None:
    cross = _hash(_marked(_page(), 0, "cross"), [0.2, 0.0, 0.0])
    circle = _hash(_marked(_page(), 0, "circle"), [0.2, 0.0, 0.0])
    elsewhere = _hash(_marked(_page(), 2, "cross"), [0.0, 0.0, 0.2])
    assert hamming(cross, circle) > 8 and hamming(cross, elsewhere) > 8
    brighter = np.clip(_marked(_page(), 0, "cross").astype(np.int16) + 12, 0, 255)
    assert hamming(cross, _hash(brighter.astype(np.uint8), [0.2, 0.0, 0.0])) <= 4


@given(st.lists(st.booleans(), min_size=64, max_size=64), st.integers(0, 2**64 - 1))
def test_to_hex_and_hamming_agree(bits: list[bool], other: int) -> None:
    a = to_hex(np.array(bits))
    assert len(a) == 16 and int(a, 16) == int("".join("1" if b else "0" for b in bits), 2)
    b = f"{other:016x}"
    assert hamming(a, b) == bin(int(a, 16) ^ other).count("1")
    assert hamming(a, a) == 0


def test_page_pose_and_pose_distance() -> None:
    assert page_pose(np.eye(3), (400, 500)) == [0.0, 90.0, 180.0, -90.0]
    assert abs(pose_distance([179.9, 0.0], [-179.9, 0.3]) - 0.3) < 1e-9  # wraps at 180


_SIDE = st.floats(-180.0, 180.0, allow_nan=False)


@given(st.lists(_SIDE, min_size=4, max_size=4), st.lists(_SIDE, min_size=4, max_size=4))
def test_poses_within_a_limit_agree_with_their_distance(a: list[float], b: list[float]) -> None:
    for limit in (0.5, 5.0, 90.0):
        assert poses_within(a, b, limit) == (pose_distance(a, b) <= limit)
    assert poses_within(a, [x + 0.25 for x in a], 0.5)
    assert not poses_within(a, a[:3], 180.0)  # another number of sides: never alike


def test_ink_needs_neither_the_template_nor_the_reader() -> None:
    """ocr.ink sits below ocr.template and ocr.reader: importing it loads neither."""
    code = "import sys, ocr.ink; print(sorted(m for m in sys.modules if m.startswith('ocr')))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "['ocr', 'ocr.align', 'ocr.ink']"


def test_both_fingerprints_at_once_are_the_two_computed_apart() -> None:
    photo = _marked(_marked(_page(), 0, "cross"), 2, "circle")
    plan = plan_ink(_page(), BOXES)
    homography = np.array([[1.01, 0.02, 3.0], [-0.01, 0.99, -2.0], [0.0, 0.0, 1.0]])
    scores, shifts = [0.2, 0.0, 0.15], [(0.5, -0.3), (0.0, 0.0), (-1.0, 0.2)]
    together = fingerprints(plan, photo, homography, scores, shifts)
    apart = (
        ink_fingerprint(plan, photo, homography, scores, shifts),
        scene_fingerprint(plan, photo, homography, scores, shifts),
    )
    assert together == apart and together[1] is not None
