"""The scene descriptor: evidence that two ballot photos are one photo re-used.

Two honest voters' photos of one election share the printed ballot and, often,
a look-alike mark in the same box; they never share the sheet of paper, the
exact stroke of the pen, the table around the page or the light on it. A
re-used photo (re-saved, rescaled, cropped, brightened, screenshotted, or
photographed again from a screen) keeps them. So the descriptor holds, in page
coordinates (after alignment, so whatever the copy's framing):

* ``paper``: the sheet's own texture (its fibre flocs' mottle), sketched into
  PAPER_LENGTH values (see PAPER_BAND); absent where too little unclipped paper
  shows;
* ``m<i>``: the hand-made ink of marked box i and its surroundings at MARK_PX
  pixels per box side (the stroke's own shape, registered on the printed
  outline), print removed, 4-bit;
* ``page``: the hand-made ink on the rest of the page (stamps, signatures) at
  PAGE_PX on its long side, away from the print and the boxes, 4-bit, HIDDEN
  where the photo did not show the page (a crop, a screen's edge);
* ``ring``: the photo's content around the page (table, clutter) in a band of
  RING page-lengths beyond its edges, at RING_PX on the band's long side, 0 where
  the photo did not show it;
* ``light``: the paper's brightness over the page on a coarse grid (gradients
  and shadows of the scene).

``scene_hash`` is the 64-bit key the near-duplicate index is searched with
(SimHash of the strokes, each box's low-pass map plus its band-pass detail
weighted HASH_DETAIL: the low-pass part survives blur and resampling, the detail
tells apart two voters' look-alike marks, two filled boxes above all);
``scene_key`` the second, independent key the index also asks to be near (a
256-bit SimHash of the strokes' finer band-pass detail alone, on other random
directions: more bits draw a sharper line between a copy's angle and a
look-alike's than 64 can); ``paper_key`` the third (the signs of the paper
sketch: two sheets' keys differ in half their bits). A copy keeps all three,
while two voters' look-alike marks that share the stroke keys are on two
sheets, so at a million photos almost no honest candidate costs a confirmation
(api/submissions/duplicates.py).
``compare`` gives one similarity per kind of evidence and ``same_scene`` the
decision: where both photos show their paper, the paper decides (with the same
stroke in the box); otherwise the strokes' band-pass detail must correlate as
only a copy's does, and the stamps and signatures, the band around the page and
the light on it, where the photos show any, must agree, the stamps or the band
shown in both (the strokes and the pose alone never decide).
bench/near_duplicates.py measures all thresholds.

The descriptor travels inside the reading as text (base64 of a compressed .npz),
so two readings can be compared without the template.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import cv2
import numpy as np

from ocr.align import warp_region
from ocr.ink import relative_ink

__all__ = [
    "SceneMatch",
    "ScenePlan",
    "compare",
    "decode",
    "encode",
    "key_parts",
    "paper_correlation",
    "paper_key",
    "paper_key_of",
    "plan_scene",
    "same_scene",
    "same_scenes",
    "scene_arrays",
    "scene_descriptor",
    "scene_hash",
    "scene_key",
    "scene_key_of",
]

MARK_PX = 48  # descriptor pixels per box side
MARK_REACH = 0.3  # box sides kept around a box (spilled strokes)
PRINT_LEVEL = 200  # reference pixels darker than this are print
PRINT_DILATE = 2  # print is grown by this many descriptor pixels, then ignored
INK_FLOOR = 0.12
INK_FULL = 0.45
PAGE_PX = 256  # descriptor pixels on the page's long side (stamps, signatures, light)
PAGE_PRINT = 235  # reference pixels (at PAGE_PX) darker than this are print ...
PAGE_PRINT_GROW = 2  # ... grown by this many pixels, then ignored with the boxes
PAGE_EDGE = 4  # pixels along the page's edges ignored (the table shows when a pixel off)
PAGE_INK_FLOOR = 0.15
PAGE_INK_FULL = 0.45
HIDDEN = 255  # page pixels the photo did not show
LIGHT_CELLS = 12  # the paper's brightness is kept on this many cells along the long side
RING = 0.25  # the band around the page, as a share of the page's long side
RING_PX = 96  # descriptor pixels on the long side of page plus band
RING_BLOCK = 8  # the band is compared block by block (descriptor pixels)

# The index key: SimHash (Charikar 2002) of the strokes.
BITS = 64
HASH_SEED = 20261203  # fixed: changing it changes every key
HASH_SIGMA = 2.0  # low-pass part (descriptor pixels)
DETAIL = (1.0, 3.0)  # band-pass (difference of Gaussians) of the strokes
HASH_DETAIL = 0.4  # weight of the band-pass part against the low-pass part

# The second index key (scene_key): SimHash of the strokes' finer band-pass detail
# alone, each marked box's map mean-free and of unit norm, on directions
# independent of the first key's. Two voters' look-alike marks share the first
# key's low-pass shape far more often than this detail; a copy keeps both. The
# index surfaces a candidate only when both keys are near (api/submissions/
# duplicates.py). Band, length and limit chosen on bench/near_duplicates.py's
# seed 1 only (its figures are reported on seed 2): on a small sample (100
# realistic, 60 worst-case, 20 originals re-used 6 ways) 256 bits surfaced 10x
# fewer honest pairs than 64 at the same share of copies kept; the limit is the
# smallest at which the SimHash model keeps >= 99.5% of the copies' second keys
# on the full-size sample (240, 120, 40): 58 (99.6%, surfacing 1.9e-4 of honest
# pairs with the first key's limit). Its directions take KEY_LENGTH x ~6,000
# float32 per marked box (~6 MB), cached.
KEY_SEED = 20261204  # fixed: changing it changes every second key
KEY_DETAIL = (0.7, 2.0)  # band-pass (difference of Gaussians), descriptor pixels
KEY_LENGTH = 256  # bits (infra/migrations/0014: bit(256))
KEY_BITS = 58  # second keys within this many bits are near

# The paper's own texture (its fibre flocs' mottle, a pattern of each sheet that
# every photo of it keeps and no other sheet shares): the page at 2 x PAGE_PX on
# its long side (~0.6 mm a pixel on A4), in log brightness (gain-free), band-passed
# (difference of Gaussians, PAPER_BAND pixels) by normalised convolution over the
# paper alone (print, boxes, edges, stamps, signatures and what the photo did not
# show left out, so no print leaks in), then sketched: every paper pixel adds its
# value, with a fixed random sign, to one of PAPER_LENGTH fixed random buckets (a
# sparse random projection). Two sheets' sketches are independent, so their
# correlation is that of PAPER_LENGTH pairs of independent normal values: its
# spread is 1/sqrt(PAPER_LENGTH) and its tail known (bench/near_duplicates.py
# checks both on honest pairs); a copy keeps the pattern.
# The band (seed 21, 40 + 10 honest photos, 59 copies): (1, 3) kept honest pairs'
# spread at 0.046 (null 0.044) at 2% mottle; finer, (0.7, 2), let JPEG blocks and
# blur cost copies at 0.5% mottle; coarser, (1.5, 4) and (2, 6), widened the
# honest spread to 0.047-0.054 (and to 0.07-0.11 at 0.5%): shading that photos
# share.
PAPER_BAND = (1.0, 3.0)
PAPER_LENGTH = 512
PAPER_SEED = 20261205  # fixed: changing it changes every sketch
PAPER_MIN_PIXELS = 2_000  # fewer paper pixels than this (~4 a bucket): no sketch
PAPER_COVER = 0.5  # share of a pixel's Gaussian weight that must be paper
PAPER_CLIPPED = 252  # grey levels from which a pixel is clipped white (or, mirrored, black)
# Sketches correlated at least PAPER_SAME are one sheet: two sheets' correlation
# is that of PAPER_LENGTH independent normal pairs, sd 1/sqrt(512) = 0.044, so 0.25
# is 5.7 sd (a chance of ~1e-8 per pair, bench/near_duplicates.py checks the spread
# on honest pairs), while copies kept 0.39-0.99 in the benchmark (the lowest a
# brightened copy whose paper clipped to white). The paper keys of a pair that
# correlated PAPER_SAME-ish differ in ~215 bits; the index asks for at most
# PAPER_KEY_BITS, which keeps copies from r ~ 0.3 up and ~1 honest pair in 400.
PAPER_SAME = 0.25
PAPER_KEY_BITS = 224

# Comparison.
SHIFT = 1  # residual misalignment searched, descriptor pixels
PAGE_SIGMA = 1.0
PAGE_SHIFT = 2
PAGE_INK_MIN = 5e-5  # mean page ink from which a page's stamps/signatures count
PAGE_INK_ALONE = 4e-4  # ... and from which ink on one page only tells them apart
RING_BLOCKS_MIN = 6  # textured blocks both photos must show for the band to count
RING_STD_MIN = 0.7  # grey levels: a flatter block carries no evidence
LIGHT_STD_MIN = 0.02  # log brightness: a page lit more evenly has no light evidence

# Decision thresholds (bench/near_duplicates.py): a re-used copy keeps every kind
# of evidence above these; two honest photos fail at least one.
MARKS_SAME = 0.85
MARKS_SOFT = 0.60  # enough when the stamps/signatures or the table agree closely
SCENE_SURE = 0.90  # page or band correlation no two honest photos reached
PAGE_SAME = 0.50
RING_SAME = 0.60
LIGHT_SAME = 0.0  # light is weak evidence (two gradients often agree): a veto only when opposed

Rect = tuple[float, float, float, float]


@dataclass(frozen=True)
class ScenePlan:
    """What the descriptor needs from the reference, computed once per template."""

    mark_rects: list[Rect]
    mark_scale: float
    mark_print: list[np.ndarray]  # bool: printed ink (grown) in each box window
    mark_reference: list[np.ndarray]  # float32 reference windows, for registration
    page_size: tuple[int, int]  # reference (w, h)
    page_scale: float
    page_ignored: np.ndarray  # bool: print (grown), the box windows, the edges
    ring_rect: Rect
    ring_scale: float
    ring_inside: np.ndarray  # bool: the page itself (not part of the band)


def _printed(patch: np.ndarray) -> np.ndarray:
    printed = (patch < PRINT_LEVEL).astype(np.uint8)
    size = 2 * PRINT_DILATE + 1
    return cv2.dilate(printed, np.ones((size, size), np.uint8)).astype(bool)


def plan_scene(reference: np.ndarray, boxes: Sequence[tuple[int, int, int, int]]) -> ScenePlan:
    """The plan for a grayscale reference and its mark boxes (x, y, w, h)."""
    side = float(np.median([min(w, h) for _, _, w, h in boxes]))
    scale = MARK_PX / side
    rects: list[Rect] = []
    prints: list[np.ndarray] = []
    refs: list[np.ndarray] = []
    for x, y, w, h in boxes:
        r = MARK_REACH * side
        rect = (x - r, y - r, x + w + r, y + h + r)
        patch = warp_region(reference, np.eye(3), rect, scale, border=255)
        rects.append(rect)
        prints.append(_printed(patch))
        refs.append(patch.astype(np.float32))
    height, width = reference.shape[:2]
    long_side = max(width, height)
    reach = RING * long_side
    ring_scale = RING_PX / (long_side + 2 * reach)
    ring_w = round((width + 2 * reach) * ring_scale)
    ring_h = round((height + 2 * reach) * ring_scale)
    inside = np.zeros((ring_h, ring_w), bool)
    margin = 2  # descriptor pixels: the page's own edge is not background
    x0 = int(reach * ring_scale) - margin
    y0 = int(reach * ring_scale) - margin
    x1 = int(np.ceil((reach + width) * ring_scale)) + margin
    y1 = int(np.ceil((reach + height) * ring_scale)) + margin
    inside[max(0, y0) : y1, max(0, x0) : x1] = True
    page_scale = PAGE_PX / long_side
    page = cv2.resize(
        reference,
        (round(width * page_scale), round(height * page_scale)),
        interpolation=cv2.INTER_AREA,
    )
    grow = 2 * PAGE_PRINT_GROW + 1
    ignored = cv2.dilate((page < PAGE_PRINT).astype(np.uint8), np.ones((grow, grow), np.uint8)) > 0
    for x, y, w, h in boxes:  # the marks are the boxes' business
        r = MARK_REACH * side
        ignored[
            max(0, int((y - r) * page_scale)) : int(np.ceil((y + h + r) * page_scale)) + 1,
            max(0, int((x - r) * page_scale)) : int(np.ceil((x + w + r) * page_scale)) + 1,
        ] = True
    e = PAGE_EDGE
    ignored[:e] = True
    ignored[-e:] = True
    ignored[:, :e] = True
    ignored[:, -e:] = True
    return ScenePlan(
        mark_rects=rects,
        mark_scale=scale,
        mark_print=prints,
        mark_reference=refs,
        page_size=(width, height),
        page_scale=page_scale,
        page_ignored=ignored,
        ring_rect=(-reach, -reach, width + reach, height + reach),
        ring_scale=ring_scale,
        ring_inside=inside,
    )


def _hand_ink(patch: np.ndarray, printed: np.ndarray) -> np.ndarray:
    """Hand ink in [0, 1]: darkness relative to the local paper, print removed."""
    return relative_ink(patch, printed, max(3, (min(patch.shape) // 6) | 1), INK_FLOOR, INK_FULL)


def _mark(
    plan: ScenePlan,
    index: int,
    photo: np.ndarray,
    homography: np.ndarray,
    shift: tuple[float, float],
) -> np.ndarray:
    """Ink map of box `index`, registered on its printed outline."""
    x0, y0, x1, y1 = plan.mark_rects[index]
    size = plan.mark_print[index].shape[::-1]

    def window(dx: float, dy: float) -> np.ndarray:
        rect = (x0 + dx, y0 + dy, x1 + dx, y1 + dy)
        return warp_region(photo, homography, rect, plan.mark_scale, size=size)

    sx, sy = shift
    raw = window(sx, sy)
    (dx, dy), response = cv2.phaseCorrelate(plan.mark_reference[index], raw.astype(np.float32))
    if response >= 0.1 and max(abs(dx), abs(dy)) <= 4:
        raw = window(sx + dx / plan.mark_scale, sy + dy / plan.mark_scale)
    return _hand_ink(raw, plan.mark_print[index])


def _page_ink(plan: ScenePlan, page: np.ndarray) -> np.ndarray:
    """The page's hand-made ink away from the print and the boxes (stamps,
    signatures), 4-bit."""
    ink = relative_ink(page, plan.page_ignored, 9, PAGE_INK_FLOOR, PAGE_INK_FULL)
    return np.clip(np.round(ink * 15.0), 0, 15).astype(np.uint8)


def _light(page: np.ndarray) -> np.ndarray:
    """The paper's brightness over the page on a LIGHT_CELLS grid, uint8 (>= 1)."""
    paper = cv2.dilate(page, np.ones((5, 5), np.uint8))  # the paper between the print
    h, w = page.shape[:2]
    if w >= h:
        cells = (LIGHT_CELLS, max(2, round(LIGHT_CELLS * h / w)))
    else:
        cells = (max(2, round(LIGHT_CELLS * w / h)), LIGHT_CELLS)
    return np.maximum(cv2.resize(paper, cells, interpolation=cv2.INTER_AREA), 1)


@lru_cache(maxsize=8)
def _paper_buckets(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The sketch's fixed bucket (int) and sign (+-1) of every pixel of a page map."""
    rng = np.random.default_rng([PAPER_SEED, shape[0], shape[1]])
    buckets = rng.integers(0, PAPER_LENGTH, shape).astype(np.intp)
    signs = np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(np.float32)
    buckets.setflags(write=False)
    signs.setflags(write=False)
    return buckets, signs


def _paper_band(fine: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """The band-passed log brightness of the paper pixels (0 elsewhere). Pure."""
    x = np.log(fine.astype(np.float32) + 1.0)
    w = paper.astype(np.float32)
    lows = []
    for sigma in PAPER_BAND:
        weight = cv2.GaussianBlur(w, (0, 0), sigma)
        lows.append((cv2.GaussianBlur(x * w, (0, 0), sigma) / np.maximum(weight, 1e-3), weight))
    (fine_low, fine_w), (coarse_low, coarse_w) = lows
    keep = paper & (fine_w >= PAPER_COVER) & (coarse_w >= PAPER_COVER)
    return np.where(keep, fine_low - coarse_low, 0.0).astype(np.float32)


def _paper_sketch(plan: ScenePlan, fine: np.ndarray, unseen: np.ndarray) -> np.ndarray | None:
    """The paper's texture as PAPER_LENGTH values (uint8, 128 = 0; see PAPER_BAND);
    None when too little paper shows. `fine` is the page at twice the page map's
    size, `unseen` (page map size) what the photo did not show or hand ink covers."""
    size = fine.shape[::-1]
    ignored = plan.page_ignored | unseen
    ignored = cv2.resize(ignored.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    # Paper brightened into pure white (or shadowed into black) kept no texture: a
    # clipped copy is compared on the paper it kept, not on its flat white.
    clipped = (
        cv2.dilate(
            ((fine >= PAPER_CLIPPED) | (fine <= 255 - PAPER_CLIPPED)).astype(np.uint8),
            np.ones((3, 3), np.uint8),
        )
        > 0
    )
    paper = ~(ignored | clipped)
    if int(paper.sum()) < PAPER_MIN_PIXELS:
        return None
    band = _paper_band(fine, paper)
    buckets, signs = _paper_buckets(band.shape)
    sketch = np.bincount(buckets.ravel(), (band * signs).ravel(), PAPER_LENGTH)
    rms = float(np.sqrt(np.mean(sketch * sketch)))
    if rms <= 0.0:
        return None
    return np.clip(np.round(sketch / rms * 32.0) + 128, 0, 255).astype(np.uint8)


def scene_arrays(
    plan: ScenePlan,
    photo: np.ndarray,
    homography: np.ndarray,
    marked: Sequence[tuple[int, tuple[float, float]]],
) -> dict[str, np.ndarray]:
    """The descriptor's arrays for an aligned photo; `marked` lists (box index,
    residual shift in reference pixels) of the marked boxes."""
    arrays: dict[str, np.ndarray] = {}
    for index, shift in marked:
        ink = _mark(plan, index, photo, homography, shift)
        arrays[f"m{index}"] = np.clip(np.round(ink * 15.0), 0, 15).astype(np.uint8)
    width, height = plan.page_size
    fine = warp_region(photo, homography, (0, 0, width, height), 2 * plan.page_scale)
    page = cv2.resize(fine, plan.page_ignored.shape[::-1], interpolation=cv2.INTER_AREA)
    seen = warp_region(
        np.full(photo.shape[:2], 255, np.uint8),
        homography,
        (0, 0, width, height),
        plan.page_scale,
        size=plan.page_ignored.shape[::-1],
        border=0,
    )
    hidden = cv2.dilate((seen < 255).astype(np.uint8), np.ones((31, 31), np.uint8)) > 0
    ink = _page_ink(plan, page)
    ink[hidden] = HIDDEN  # a crop or a screen's edge cut the page there
    arrays["page"] = ink
    arrays["light"] = _light(page)
    paper = _paper_sketch(plan, fine, hidden | (ink > 0))
    if paper is not None:
        arrays["paper"] = paper
    size = plan.ring_inside.shape[::-1]
    ring = warp_region(photo, homography, plan.ring_rect, plan.ring_scale, size=size, border=0)
    shown = warp_region(
        np.full(photo.shape[:2], 255, np.uint8),
        homography,
        plan.ring_rect,
        plan.ring_scale,
        size=size,
        border=0,
    )
    band = np.maximum(ring, 1)
    band[(shown < 255) | plan.ring_inside] = 0
    arrays["ring"] = band
    return arrays


def scene_descriptor(
    plan: ScenePlan,
    photo: np.ndarray,
    homography: np.ndarray,
    marked: Sequence[tuple[int, tuple[float, float]]],
) -> str:
    """``scene_arrays`` as text."""
    return encode(scene_arrays(plan, photo, homography, marked))


_FORMAT = 1
_DTYPES = {0: np.dtype(np.uint8)}


def encode(arrays: dict[str, np.ndarray]) -> str:
    """uint8 arrays as text: base64 of a version byte and a zlib stream of, per
    array, its name, shape and bytes. Pure."""
    parts = [bytes([len(arrays)])]
    for name, array in arrays.items():
        data = np.ascontiguousarray(array, np.uint8)
        key = name.encode("ascii")
        parts.append(bytes([len(key)]) + key + bytes([data.ndim]))
        parts.append(np.array(data.shape, ">u2").tobytes() + data.tobytes())
    return base64.b64encode(bytes([_FORMAT]) + zlib.compress(b"".join(parts), 6)).decode("ascii")


@lru_cache(maxsize=4096)
def decode(text: str) -> dict[str, np.ndarray]:
    """The arrays of `encode` (read-only; cached). Pure. Raises ValueError on
    anything else."""
    try:
        raw = base64.b64decode(text, validate=True)
        if not raw or raw[0] != _FORMAT:
            raise ValueError("unknown format")
        body = zlib.decompress(raw[1:])
        count, at = body[0], 1
        out: dict[str, np.ndarray] = {}
        for _ in range(count):
            size = body[at]
            name = body[at + 1 : at + 1 + size].decode("ascii")
            at += 1 + size
            ndim = body[at]
            shape = tuple(int(v) for v in np.frombuffer(body, ">u2", ndim, at + 1))
            at += 1 + 2 * ndim
            length = int(np.prod(shape))
            if at + length > len(body):
                raise ValueError("truncated")
            array = np.frombuffer(body, np.uint8, length, at).reshape(shape)
            at += length
            out[name] = array
        if at != len(body):
            raise ValueError("trailing bytes")
        return out
    except ValueError:
        raise
    except Exception as exc:  # any malformed descriptor is one error
        raise ValueError("not a scene descriptor") from exc


# ------------------------------------------------------------------ the index key


def _marks(arrays: dict[str, np.ndarray]) -> list[str]:
    return sorted(
        (k for k in arrays if k.startswith("m") and k[1:].isdigit()), key=lambda k: int(k[1:])
    )


def _detail(ink: np.ndarray) -> np.ndarray:
    """Band-pass (difference of Gaussians) of a 4-bit ink map. Pure."""
    x = ink.astype(np.float32) / 15.0
    fine, coarse = DETAIL
    return cv2.GaussianBlur(x, (0, 0), fine) - cv2.GaussianBlur(x, (0, 0), coarse)


def _hash_vector(ink: np.ndarray) -> np.ndarray:
    x = ink.astype(np.float32) / 15.0
    low = cv2.GaussianBlur(x, (0, 0), HASH_SIGMA).ravel()
    low -= low.mean()
    detail = _detail(ink).ravel()
    detail -= detail.mean()
    weight = HASH_DETAIL * float(np.linalg.norm(low)) / max(float(np.linalg.norm(detail)), 1e-9)
    return np.concatenate([low, weight * detail])


def _projection(index: int, size: int) -> np.ndarray:
    rng = np.random.default_rng([HASH_SEED, index, size])
    return rng.standard_normal((BITS, size)).astype(np.float32)


_PROJECTIONS: dict[tuple[int, int], np.ndarray] = {}


def scene_hash(arrays: dict[str, np.ndarray]) -> str:
    """The 64-bit index key of a descriptor, 16 hex digits: the signs of the
    strokes' maps projected on fixed random directions. Pure (the directions are
    cached)."""
    total = np.zeros(BITS, np.float64)
    for key in _marks(arrays):
        vector = _hash_vector(arrays[key])
        index = (int(key[1:]), vector.size)
        matrix = _PROJECTIONS.get(index)
        if matrix is None:
            matrix = _PROJECTIONS.setdefault(index, _projection(*index))
        total += matrix @ vector
    return _hex(total)


def _hex(total: np.ndarray) -> str:
    """The signs of `total` as hex digits, the first most significant. Pure."""
    value = 0
    for bit in total > 0:
        value = (value << 1) | int(bit)
    return f"{value:0{total.size // 4}x}"


def _key_vector(ink: np.ndarray) -> np.ndarray:
    """The finer band-pass detail of a 4-bit ink map, mean-free, unit norm (zero
    for a map without any). Pure."""
    x = ink.astype(np.float32) / 15.0
    fine, coarse = KEY_DETAIL
    detail = (cv2.GaussianBlur(x, (0, 0), fine) - cv2.GaussianBlur(x, (0, 0), coarse)).ravel()
    detail -= detail.mean()
    norm = float(np.linalg.norm(detail))
    return detail / norm if norm > 1e-9 else np.zeros_like(detail)


def key_parts(arrays: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per marked box, the vectors that scene_hash and scene_key project (each box
    on its own random directions, so the keys are SimHashes of the boxes' vectors
    laid end to end; bench/near_duplicates.py takes their exact angles). Pure."""
    marks = _marks(arrays)
    return (
        {k: _hash_vector(arrays[k]) for k in marks},
        {k: _key_vector(arrays[k]) for k in marks},
    )


_KEY_PROJECTIONS: dict[tuple[int, int], np.ndarray] = {}


def scene_key(arrays: dict[str, np.ndarray]) -> str:
    """The second index key of a descriptor, KEY_LENGTH bits as hex digits: the
    signs of the strokes' finer detail projected on fixed random directions
    independent of scene_hash's. Pure (the directions are cached)."""
    total = np.zeros(KEY_LENGTH, np.float64)
    for key in _marks(arrays):
        vector = _key_vector(arrays[key])
        index = (int(key[1:]), vector.size)
        matrix = _KEY_PROJECTIONS.get(index)
        if matrix is None:
            rng = np.random.default_rng([KEY_SEED, *index])
            matrix = _KEY_PROJECTIONS.setdefault(
                index, rng.standard_normal((KEY_LENGTH, vector.size)).astype(np.float32)
            )
        total += matrix @ vector
    return _hex(total)


@lru_cache(maxsize=4096)
def scene_key_of(text: str | None) -> str | None:
    """``scene_key`` of a descriptor as text; None without one, or if it is
    malformed or shows no marked box. Pure (cached)."""
    if text is None:
        return None
    try:
        arrays = decode(text)
    except ValueError:
        return None
    return scene_key(arrays) if _marks(arrays) else None


def paper_key(arrays: dict[str, np.ndarray]) -> str | None:
    """The paper's index key: the signs of the paper sketch's PAPER_LENGTH values as
    hex digits; None without a sketch. Two sheets' sketches are independent, so
    their keys differ in Bin(PAPER_LENGTH, 1/2) bits; a copy's differ in about
    PAPER_LENGTH x arccos(r) / pi, r the sketches' correlation. Pure."""
    sketch = arrays.get("paper")
    if sketch is None or sketch.shape != (PAPER_LENGTH,):
        return None
    return _hex(sketch.astype(np.float32) - 128.0)


@lru_cache(maxsize=4096)
def paper_key_of(text: str | None) -> str | None:
    """``paper_key`` of a descriptor as text; None without one or if malformed.
    Pure (cached)."""
    if text is None:
        return None
    try:
        return paper_key(decode(text))
    except ValueError:
        return None


# ------------------------------------------------------------------ comparison


class SceneMatch(NamedTuple):
    marks: float | None  # the least similar marked box; None: other boxes marked
    ring: float | None  # the table around the page; None: too little of it in both
    light: float | None  # the light on the page; None: one of them lit evenly
    page: float | None = None  # stamps and signatures; None: neither page has any
    paper: float | None = None  # the paper's texture; None: either has no sketch


def paper_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two paper sketches (uint8, 128 = 0). Pure."""
    va = a.astype(np.float32) - 128.0
    vb = b.astype(np.float32) - 128.0
    va -= va.mean()
    vb -= vb.mean()
    denominator = float(np.sqrt((va * va).sum() * (vb * vb).sum()))
    return float((va * vb).sum()) / denominator if denominator > 0 else 0.0


def _best_ncc(a: np.ndarray, b: np.ndarray, shift: int) -> float:
    """Best normalised cross-correlation of two equal-size float32 maps over
    shifts of up to `shift` pixels (0 when either is flat). Pure."""
    inner = a[shift:-shift, shift:-shift]
    if float(inner.std()) < 1e-6 or float(b.std()) < 1e-6:
        return 0.0
    return float(np.nan_to_num(cv2.matchTemplate(b, inner, cv2.TM_CCOEFF_NORMED)).max())


def _detail_ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Best normalised cross-correlation of two ink maps' band-pass detail over
    shifts of up to SHIFT pixels. Pure."""
    return _best_ncc(_detail(a), _detail(b), SHIFT)


def _shifted_ncc(a: np.ndarray, b: np.ndarray, sigma: float, shift: int) -> float:
    """Best normalised cross-correlation of two equal-size maps, smoothed, over
    shifts of up to `shift` pixels. Pure."""
    fa = cv2.GaussianBlur(a.astype(np.float32), (0, 0), sigma)
    fb = cv2.GaussianBlur(b.astype(np.float32), (0, 0), sigma)
    return _best_ncc(fa, fb, shift)


def _ring_ncc(a: np.ndarray, b: np.ndarray) -> float | None:
    """Median normalised cross-correlation of the band's blocks that both photos
    show with some texture; None if too few. Pure.

    Block by block, so that brightness, contrast, gamma and a screen's glare
    (smooth changes of level) cancel, and a screenshot's bars or a crop lose
    only their own blocks."""
    both = cv2.erode(((a > 0) & (b > 0)).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    va = cv2.GaussianBlur(a.astype(np.float32), (0, 0), 0.7)
    vb = cv2.GaussianBlur(b.astype(np.float32), (0, 0), 0.7)
    n = RING_BLOCK
    rows, cols = a.shape[0] // n, a.shape[1] // n

    def blocks(x: np.ndarray) -> np.ndarray:
        return x[: rows * n, : cols * n].reshape(rows, n, cols, n).swapaxes(1, 2).reshape(-1, n * n)

    keep = blocks(both.astype(np.float32))
    xa, xb = blocks(va), blocks(vb)
    count = keep.sum(axis=1)
    usable = count >= n * n // 2
    if not usable.any():
        return None
    keep, xa, xb, count = keep[usable], xa[usable], xb[usable], count[usable]
    ma = (xa * keep).sum(axis=1) / count
    mb = (xb * keep).sum(axis=1) / count
    ca = (xa - ma[:, None]) * keep
    cb = (xb - mb[:, None]) * keep
    sa = np.sqrt((ca * ca).sum(axis=1) / count)
    sb = np.sqrt((cb * cb).sum(axis=1) / count)
    textured = (sa >= RING_STD_MIN) & (sb >= RING_STD_MIN)
    if int(textured.sum()) < RING_BLOCKS_MIN:
        return None
    ncc = (ca * cb).sum(axis=1)[textured] / (count[textured] * sa[textured] * sb[textured])
    return float(np.median(ncc))


def _light_ncc(a: np.ndarray, b: np.ndarray) -> float | None:
    """Correlation of the two pages' log brightness; None when either is lit
    evenly (its variations are then noise). Pure."""
    la = np.log(a.astype(np.float32))
    lb = np.log(b.astype(np.float32))
    la -= la.mean()
    lb -= lb.mean()
    if min(float(la.std()), float(lb.std())) < LIGHT_STD_MIN:
        return None
    return float((la * lb).sum() / np.sqrt((la * la).sum() * (lb * lb).sum()))


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> SceneMatch:
    """The similarity of two decoded descriptors, per kind of evidence. Pure."""
    marks_a, marks_b = _marks(a), _marks(b)
    marks: float | None = None
    if marks_a and marks_a == marks_b and all(a[k].shape == b[k].shape for k in marks_a):
        marks = min(_detail_ncc(a[k], b[k]) for k in marks_a)
    ring: float | None = None
    ra, rb = a.get("ring"), b.get("ring")
    if ra is not None and rb is not None and ra.shape == rb.shape:
        ring = _ring_ncc(ra, rb)
    light: float | None = None
    ga, gb = a.get("light"), b.get("light")
    if ga is not None and gb is not None and ga.shape == gb.shape:
        light = _light_ncc(ga, gb)
    page: float | None = None
    pa, pb = a.get("page"), b.get("page")
    if pa is not None and pb is not None and pa.shape == pb.shape:
        shown = (pa != HIDDEN) & (pb != HIDDEN)
        pa = np.where(shown, pa, 0).astype(np.uint8)
        pb = np.where(shown, pb, 0).astype(np.uint8)
        ink = sorted(float(x.mean()) / 15.0 for x in (pa, pb))
        if ink[0] >= PAGE_INK_MIN:
            page = _shifted_ncc(pa, pb, PAGE_SIGMA, PAGE_SHIFT)
        elif ink[0] == 0.0 and ink[1] >= PAGE_INK_ALONE:
            page = 0.0  # a stamp or a signature on one page, nothing on the other
    paper: float | None = None
    sa, sb = a.get("paper"), b.get("paper")
    if sa is not None and sb is not None and sa.shape == sb.shape:
        paper = paper_correlation(sa, sb)
    return SceneMatch(marks, ring, light, page, paper)


def same_scene(match: SceneMatch, same_pose: bool = False) -> bool:
    """Whether the evidence says one photo re-used. Pure.

    Where both photos show their paper, its texture decides: one sheet (and the
    same stroke in the box, however softened) or two. Otherwise (a photo whose
    paper was clipped to white, a reading stored before the sketch existed) the
    strokes must agree, and so must the stamps and signatures and the table
    around the page wherever both photos show them. Either of those agreeing
    closely (SCENE_SURE) is itself decisive, so it lets a copy's strokes be
    softer (a blurred re-photograph). Short of that the strokes alone would pair
    look-alike marks (and honest stamps and tables agreed at PAGE_SAME and
    RING_SAME in 1 pair in 300): then the page must also lie at the same angles
    (`same_pose`, a copy that was not photographed again). The light only
    vetoes, when opposed: two honest photos' light agreed closely too often (4%
    of pairs at 0.95, bench/near_duplicates.py) to stand in for anything.
    Without the paper and without any stamp, signature or table shown in both,
    nothing is left but the strokes and the pose, and that is not one photo:
    two honest photos without either (44% of seed 1's pairs) lay within
    NEAR_DUPLICATE_POSE_DEG in 1 pair in 2,000 and a re-used copy keeps its
    pose only to 0.01-0.34 degrees, so the pose cannot tell them apart; such a
    pair (a photo whose paper clipped to white, on a plain table, unstamped) is
    two photos.
    """
    if match.marks is None:
        return False
    if match.paper is not None:  # the sheet itself: decisive either way
        return match.paper >= PAPER_SAME and match.marks >= MARKS_SOFT
    scene = [v for v in (match.page, match.ring) if v is not None]
    if any(
        v < limit
        for v, limit in ((match.page, PAGE_SAME), (match.ring, RING_SAME))
        if v is not None
    ):
        return False
    if scene and max(scene) >= SCENE_SURE:
        return match.marks >= MARKS_SOFT
    if not scene:
        return False  # strokes and pose alone: two voters' look-alike marks (see above)
    if match.marks < MARKS_SAME:
        return False
    if match.light is not None and match.light < LIGHT_SAME:
        return False
    return same_pose


def same_scenes(a: str, b: str, same_pose: bool = False) -> bool:
    """``same_scene`` of two descriptors as text, the cheapest evidence first;
    False if either is malformed. Pure."""
    try:
        da, db = decode(a), decode(b)
    except ValueError:
        return False
    marks_a, marks_b = _marks(da), _marks(db)
    if not marks_a or marks_a != marks_b or any(da[k].shape != db[k].shape for k in marks_a):
        return False
    pa, pb = da.get("paper"), db.get("paper")
    both_papers = False
    if pa is not None and pb is not None and pa.shape == pb.shape:
        if paper_correlation(pa, pb) < PAPER_SAME:
            return False  # two sheets: the cheapest and the decisive test
        both_papers = True
    if any(_detail_ncc(da[k], db[k]) < MARKS_SOFT for k in marks_a):
        return False
    if both_papers:
        return True  # one sheet, the same stroke: same_scene's paper rule, decided
    return same_scene(compare(da, db), same_pose)
