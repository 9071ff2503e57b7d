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
those are read in grey as they always were.

A second pen is parted the same way. A member's signature across the cells, or a
correction in another pen, crosses the figures like strokes of them; but a blue
ballpoint is much bluer than it is red, and a black one (like the print) is not.
``pen_hue`` is that blueness per unit of darkness; ``figures_pen`` tells, from the
cells' ink, which of the two pens wrote the figures (most cells hold figures, a
signature crosses a few); ``other_pen_faded`` fades, in one cell and around it
(before its rules are removed, which it leaves to that), the long strokes of the
other pen to paper, keeping the figures' ink and the places where a figure's
stroke runs under the other pen. All pure except ``decode_rgb``.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from ocr import images

__all__ = [
    "decode_rgb",
    "figures_pen",
    "other_pen_faded",
    "pen_hue",
    "stamp_free",
    "violetness",
]

VIOLET_MIN = 0.05  # violetness (share of the paper's red) from which a pixel is violet
VIOLET_NOISE = 0.01  # violetness under this is colour noise; from twice it, the stamp's
NEAR = 15  # pixels around the clearly violet ones that may be the stamp's too
PEN_DARK = 0.25  # the cells' pixels this much darker than paper are ink
MIN_PEN_PIXELS = 200  # fewer inked pixels in the cells than this: nothing to check
MAX_VIOLET_PEN = 0.3  # share of the cells' ink of the stamp's hue beyond which it is the pen's
DENSITY_WINDOW = 31  # pixels: the stamp is where clearly violet pixels are dense
MIN_DENSITY = 0.015  # this share of a window's pixels
# Fewer clearly violet pixels than this share of the page (of the cells' part of the
# photo, where the stamp is looked for) means no stamp. A stamp touching one row of
# cells from below puts little of its ring there: on the clear photos of seeds 5 and
# 41, 20 of the 90 photos with the stamp over cells had under 0.0005 (12 of them
# over half of it), against 98 of the 150 without. At 0.00025, replayed on seeds 5,
# 23, 41 and 43 (7,040 fields): 11 more values given, none wrong.
MIN_VIOLET_SHARE = 0.00025
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


# -- a second pen ---------------------------------------------------------------------

# Pen hue (blueness per unit of darkness), looked at on tuning photos' cells (seeds
# 5 and 7): a blue ballpoint's strokes mostly 0.3 to 0.8, a washed-out photo's
# down to 0.1; black pens and print -0.1 to 0.05. The median written cell's share
# of blue ink: 0.5 to 1.0 with blue figures, 0 with black ones (0.12 in the cell a
# blue signature crossed).
BLUE_PEN = 0.25  # pen hue from which ink is a blue pen's
BLACK_PEN = 0.08  # and under which a black pen's (or print)
FIGURES_BLUE = 0.3  # the median cell's share of blue ink from which the figures are blue
FIGURES_BLACK = 0.03  # and up to which they are black; between: colour cannot tell
OTHER_EXTENT = 0.6  # a stroke of the other pen spans this share of the cell's height
OTHER_SHARE = 0.5  # and most of its pixels are clearly of the other pen's hue
OWN_MIN = 0.03  # a cell's figures' pen, pixels per squared cell height (a "1": 0.04)
BRIDGE = 7  # pixels: a figure's stroke is followed under the other pen this far
BRIDGE_DOWN = 0.35  # and up and down this share of the cell's height
PEN_PAPER = 15  # pixels: the grey closing that gives a cell's paper
HUE_SIGMA = 1.5  # pixels: the hue is read over a stroke's width


def pen_hue(gray: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Blue minus red, both as shares of their own paper, per unit of the grey's
    darkness: about 0.3 to 0.8 on a blue ballpoint, about zero on a black one and
    on print, whatever the light's tint. Meaningless on paper (darkness about
    zero): read it on ink only. Pure."""
    if rgb.shape[:2] != gray.shape:
        rgb = cv2.resize(rgb, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_AREA)
    blue = rgb[..., 2].astype(np.float32) / np.maximum(_paper(rgb[..., 2]), 1.0)
    red = rgb[..., 0].astype(np.float32) / np.maximum(_paper(rgb[..., 0]), 1.0)
    paper = np.maximum(_paper(gray), 1.0)
    darkness = np.maximum((paper - gray.astype(np.float32)) / paper, 0.0)
    # JPEG keeps colour at half the resolution: a thin stroke's own pixels carry
    # its hue diluted and noisy. Both are summed over a stroke's width first.
    blueness = cv2.GaussianBlur(blue - red, (0, 0), HUE_SIGMA)
    darkness = cv2.GaussianBlur(darkness, (0, 0), HUE_SIGMA)
    return np.asarray(blueness / np.maximum(darkness, 0.05), dtype=np.float32)


def figures_pen(blue_shares: list[float]) -> str | None:
    """ "blue" or "black": the pen of the figures, from each written cell's share of
    blue ink (its handwriting's pixels with a pen hue of BLUE_PEN or more); None
    when colour cannot tell (a washed-out photo, a violet-blue pen). The median
    cell decides: a signature crosses a few cells, a stamp a few more. Pure."""
    if len(blue_shares) < 3:
        return None
    median = float(np.median(blue_shares))
    if median >= FIGURES_BLUE:
        return "blue"
    if median <= FIGURES_BLACK:
        return "black"
    return None


def _cell_paper(gray: np.ndarray) -> np.ndarray:
    """The paper under a cell's ink: a grey closing over PEN_PAPER pixels (worked
    at a third of the size: ink is thin), smoothed. Pure."""
    h, w = gray.shape
    small = cv2.resize(gray, (max(1, w // 3), max(1, h // 3)), interpolation=cv2.INTER_AREA)
    k = np.ones((PEN_PAPER // 3, PEN_PAPER // 3), np.uint8)
    closed = cv2.GaussianBlur(cv2.morphologyEx(small, cv2.MORPH_CLOSE, k), (0, 0), PEN_PAPER / 9)
    return np.asarray(cv2.resize(closed, (w, h), interpolation=cv2.INTER_LINEAR), np.float32)


def other_pen_faded(
    gray: np.ndarray,
    hue: np.ndarray,
    figures: str,
    box: tuple[int, int, int, int],
    printed: np.ndarray | None = None,
) -> np.ndarray:
    """``gray`` (a cell and around it; ``box``, the cell's x, y, width and height
    in it) with the strokes of the pen that did not write the ``figures`` ("blue"
    or "black") faded to paper: ink of the other hue in connected strokes
    spanning OTHER_EXTENT of the cell's height or more; a speck of it (the fringe
    of a figure's stroke) stays. Where the figures' ink closes over the other
    stroke within BRIDGE pixels (a figure drawn under it), the crossing stays. A
    cell with next to none of the figures' pen in its box is left as it is: its
    number was written in the other pen, and it is read, not faded. ``hue``:
    ``pen_hue`` over the same pixels; ``printed``: the rules (nonzero), left for
    their own removal (the other pen's stroke across them goes with them). Pure."""
    bx, by, bw, height = box
    paper = _cell_paper(gray)
    darkness = (paper - gray.astype(np.float32)) / np.maximum(paper, 1.0)
    ink = darkness > PEN_DARK
    if figures == "blue":
        own, other = ink & (hue >= BLUE_PEN), ink & (hue < BLACK_PEN)
    else:
        own, other = ink & (hue < BLACK_PEN), ink & (hue >= BLUE_PEN)
    # Most cells hold no other pen: too few of its pixels away from the print to
    # make one stroke across the cell, and the cell is left as it is.
    if int((other if printed is None else other & (printed == 0)).sum()) < OTHER_EXTENT * height:
        return gray
    if int(own[max(0, by) : by + height, max(0, bx) : bx + bw].sum()) < OWN_MIN * height**2:
        return gray
    # A stroke of the other pen is broken where it meets a figure's (their hues
    # mix there): its pieces are joined through the ink of neither hue, and it is
    # the other pen's when most of it is. Across a rule too; but the rule itself
    # (as black as a black pen) is no one's stroke: a stroke is measured without
    # it, and a figure's edge against the rule is not made long by the rule.
    n, labels = cv2.connectedComponents((ink & ~own).astype(np.uint8), connectivity=8)
    if n <= 1:
        return gray
    if printed is not None:
        labels = np.where(printed == 0, labels, 0)
    sizes = np.bincount(labels.ravel(), minlength=n)
    others = np.bincount(labels[other], minlength=n)
    long = [
        i
        for i, box in enumerate(ndimage.find_objects(labels, max_label=n - 1), start=1)
        if box is not None
        and max(box[0].stop - box[0].start, box[1].stop - box[1].start) >= OTHER_EXTENT * height
        and others[i] >= OTHER_SHARE * sizes[i]
    ]
    if not long:
        return gray
    strokes = np.isin(labels, long).astype(np.uint8)
    # the stroke's antialiased edges too (lighter than PEN_DARK, of no pen's hue)
    fade = cv2.dilate(strokes, np.ones((5, 5), np.uint8)) > 0
    # A figure's stroke under the other pen: the gap the crossing leaves in its own
    # ink (the other pen's width, and the hues mixed either side of it) is closed;
    # a flourish runs across the figures, so mostly up and down.
    own8 = own.astype(np.uint8)
    round_ = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (BRIDGE, BRIDGE))
    down = cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(3, round(BRIDGE_DOWN * height))))
    figures_ink = (cv2.morphologyEx(own8, cv2.MORPH_CLOSE, round_) > 0) | (
        cv2.morphologyEx(own8, cv2.MORPH_CLOSE, down) > 0
    )
    fade &= ~figures_ink & (darkness > 0)
    if printed is not None:
        fade &= printed == 0
    out = gray.astype(np.float32)
    out[fade] = paper[fade]
    return np.asarray(np.clip(out, 0, 255), dtype=np.uint8)
