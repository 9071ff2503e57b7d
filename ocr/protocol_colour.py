"""Seeing the pen through the commission's stamp: violet ink taken out by colour.

Russian and Belarusian commissions stamp their protocols with round seals in
violet ink; secretaries write in blue or black ballpoint. In grey the stamp's
ring and lettering cross a cell like strokes of the pen, and the cell goes to
people. In colour they differ: violet reflects red and blue and absorbs green,
so it is lighter in the red channel than in the green one, while a blue pen is
darkest in red and a black one equally dark in both. The *violetness* of a
pixel, red minus white-balanced green, is thus positive on the stamp and zero or
negative on pen, print and paper.

``stamp_free`` returns the photo's grey (luma) with each violet pixel brightened
in proportion to its violetness, by a factor measured on this photo's own stamp
(how much darker than its paper a violet pixel is, per unit of violetness: the
stamp's hue, whatever its exact shade and the light), so that the stamp fades
to paper while every pixel that is not violet (pen, print, pen over the stamp)
keeps its value exactly. Only clearly violet pixels dense enough to be the
stamp's rings and lettering, and their surroundings, are touched. A photo without
a violet stamp gives None, and so does one whose handwriting has the stamp's hue
itself (violet-blue ballpoints exist: colour cannot part them from the stamp):
those are read in grey as they always were. All pure except ``decode_rgb``.
"""

from __future__ import annotations

import cv2
import numpy as np

from ocr import images

__all__ = ["decode_rgb", "stamp_free", "violetness"]

VIOLET_MIN = 0.05  # violetness (share of the paper's red) from which a pixel is violet
VIOLET_NOISE = 0.01  # violetness under this is colour noise; from twice it, the stamp's
NEAR = 15  # pixels around the clearly violet ones that may be the stamp's too
PEN_DARK = 0.25  # the cells' pixels this much darker than paper are ink
MIN_PEN_PIXELS = 200  # fewer inked pixels in the cells than this: nothing to check
MAX_VIOLET_PEN = 0.3  # share of the cells' ink of the stamp's hue beyond which it is the pen's
DENSITY_WINDOW = 31  # pixels: the stamp is where clearly violet pixels are dense
MIN_DENSITY = 0.015  # this share of a window's pixels
MIN_VIOLET_SHARE = 0.0005  # fewer violet pixels than this share of the photo: no stamp
HUE_RANGE = (0.12, 0.6)  # plausible violetness per unit of darkness (the stamp's hue)
HUE_PARTLY = 0.35  # a pixel this near the stamp's hue (share of it) starts to fade
HUE_FULLY = 0.7  # and from this near it is faded to paper
PAPER_SCALE = 0.125  # the paper's brightness is estimated at this scale


def decode_rgb(data: bytes, max_side: int, orientation: int | None) -> np.ndarray | None:
    """The photo in colour (RGB, uint8), upright, decoded at a reduced JPEG scale as
    ``ocr.images.decode_gray`` does (``ocr.images.decode_rgb``); None if it cannot be,
    or is not plain RGB. Only called on bytes ``decode_gray`` has already accepted."""
    try:
        return images.decode_rgb(data, max_side=max_side, orientation=orientation)
    except Exception:  # decode_gray accepted these bytes; any surprise: grey only
        return None


def _paper(channel: np.ndarray) -> np.ndarray:
    """The paper's brightness under each pixel: a grey closing at low resolution
    (ink, print and stamp are thin), brought back to full size. Pure."""
    h, w = channel.shape
    scale = PAPER_SCALE
    small = cv2.resize(channel, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA)  # fmt: skip
    closed = cv2.morphologyEx(small, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    closed = cv2.GaussianBlur(closed, (0, 0), 2.0)
    return np.asarray(cv2.resize(closed, (w, h), interpolation=cv2.INTER_LINEAR), np.float32)


def violetness(rgb: np.ndarray) -> np.ndarray:
    """Red minus green, both as shares of their own paper (which also takes out the
    light's tint): positive on violet ink, about zero on grey, negative on blue.
    Pure."""
    red = rgb[..., 0].astype(np.float32)
    green = rgb[..., 1].astype(np.float32)
    red_paper = np.maximum(_paper(rgb[..., 0]), 1.0)
    green_paper = np.maximum(_paper(rgb[..., 1]), 1.0)
    return np.asarray(red / red_paper - green / green_paper, dtype=np.float32)


def _near_stamp(strong: np.ndarray) -> np.ndarray:
    """Where the stamp is: clearly violet pixels are dense around (its rings and
    letters), not a speck of colour noise here and there. Pure."""
    density = cv2.blur(strong.astype(np.float32), (DENSITY_WINDOW, DENSITY_WINDOW))
    dense = (density >= MIN_DENSITY).astype(np.uint8)
    return np.asarray(cv2.dilate(dense, np.ones((NEAR, NEAR), np.uint8)) > 0)


def stamp_free(
    gray: np.ndarray,
    rgb: np.ndarray,
    page: np.ndarray | None = None,
    cells: np.ndarray | None = None,
) -> np.ndarray | None:
    """``gray`` with the violet stamp faded to paper; None when the page shows no
    violet ink (or ``rgb`` does not match), or when the handwriting itself is of
    the stamp's hue (a violet-blue ballpoint: then colour cannot tell them apart).
    ``page``: where the page lies in the photo (a warm table around it is
    "violet" too and must not count); ``cells``: where the handwriting is. Pure."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        return None
    if rgb.shape[:2] != gray.shape:
        rgb = cv2.resize(rgb, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_AREA)
    violet = violetness(rgb)
    paper = np.maximum(_paper(gray), 1.0)
    darkness = (paper - gray.astype(np.float32)) / paper  # 0 on paper, 1 black
    strong = (violet > VIOLET_MIN) & (darkness > VIOLET_MIN)
    if page is not None:
        strong &= page
        area = int(page.sum())
    else:
        area = gray.size
    if int(strong.sum()) < MIN_VIOLET_SHARE * area:
        return None
    # The stamp's hue: its violetness per unit of darkness, on its clearly violet
    # pixels. A pixel is faded as far as its own hue is the stamp's: a pen's
    # stroke (blue: negative; black: about zero, whatever the JPEG's colour noise
    # on it) or a pen's stroke over the stamp (darker than the stamp alone, no
    # more violet) keeps its value.
    hue = float(np.median(violet[strong] / darkness[strong]))
    if not HUE_RANGE[0] <= hue <= HUE_RANGE[1]:
        return None
    share = violet / np.maximum(darkness, 1e-3) / hue
    if cells is not None:
        # Most of the cells' ink is the pen's (a stamp covers a few of them): if
        # most of it has the stamp's hue, the pen has it too.
        ink = cells & (darkness > PEN_DARK)
        if int(ink.sum()) >= MIN_PEN_PIXELS and float((share[ink] >= HUE_PARTLY).mean()) > (
            MAX_VIOLET_PEN
        ):
            return None
    weight = np.clip((share - HUE_PARTLY) / (HUE_FULLY - HUE_PARTLY), 0.0, 1.0)
    # JPEG's colour is coarse: the paper's tint bleeds onto the edges of dark
    # strokes as a little violetness of their own. Only clear violetness, next to
    # the stamp's clearly violet pixels, is the stamp.
    weight *= np.clip((violet - VIOLET_NOISE) / VIOLET_NOISE, 0.0, 1.0)
    near = _near_stamp(strong)
    weight[~near | (darkness <= 0)] = 0.0
    out = gray.astype(np.float32) + weight * np.maximum(darkness, 0.0) * paper
    return np.asarray(np.clip(out, 0, 255), dtype=np.uint8)
