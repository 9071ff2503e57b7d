"""Synthetic phone photos of paper ballots, deterministic from a numpy Generator.

They feed the demo (thousands of voters) and the reader's accuracy checks, so
they must be cheap (a single perspective warp, lighting computed at low
resolution) and imitate what breaks readers: rotation, perspective, uneven
light, blur, JPEG, pen marks that spill over the box, stamps and signatures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFont

from ocr.template import BallotTemplate

MarkStyle = Literal["cross", "tick", "fill", "scribble", "dot", "spill", "across", "tick_out"]
# The styles a voter picks at random ("spill", a cross running well over the box
# edge, is otherwise a 20% accident of any style): kept to five so the demo's
# random photos stay what they were. "across" (a big cross whose four arms leave
# the box, centred in it) and "tick_out" (a tick whose long stroke leaves the box
# through its top edge, ending up to a box side beyond it) are marks that cross
# the box border, asked for by name only (the evaluation set turns through all).
MARK_STYLES: tuple[MarkStyle, ...] = get_args(MarkStyle)[:5]
ALL_MARK_STYLES: tuple[MarkStyle, ...] = get_args(MarkStyle)

Point = tuple[float, float]
GAIN_ONE = 128  # the value of a unit gain in the 8-bit lighting map


@dataclass(frozen=True)
class PhotoConditions:
    rotation_deg: float
    perspective: float  # largest corner displacement, as a share of the ballot's size
    blur_sigma: float  # Gaussian sigma in pixels of the final photo
    light_gradient: float  # brightness difference across the frame, 0..1
    shadow: bool
    jpeg_quality: int
    long_side: int
    ballot_fraction: float  # share of the frame's long side the ballot occupies
    clutter: bool = False  # objects on the table around (and maybe touching) the ballot


def random_conditions(rng: np.random.Generator) -> PhotoConditions:
    """Conditions in the range of an ordinary phone snapshot of a ballot on a table."""
    return PhotoConditions(
        rotation_deg=float(rng.uniform(-15, 15)),
        perspective=float(rng.uniform(0.0, 0.06)),
        blur_sigma=float(rng.uniform(0.0, 1.5)),
        light_gradient=float(rng.uniform(0.0, 0.45)),
        shadow=bool(rng.random() < 0.25),
        jpeg_quality=int(rng.integers(70, 93)),
        long_side=int(rng.integers(1200, 2001)),
        ballot_fraction=float(rng.uniform(0.7, 0.95)),
    )


def hard_conditions(rng: np.random.Generator) -> PhotoConditions:
    """The whole range the spec allows: ±25°, strong perspective, shadow, blur,
    800-4000 px, a ballot filling as little as half the frame, clutter around it.

    The ballot itself keeps at least ~700 px on its long side: a half-frame shot
    at 800 px (a 400-px ballot) cannot be read by a person either.
    """
    long_side = int(rng.integers(800, 4001))
    low = min(0.9, max(0.5, 700 / long_side))
    return PhotoConditions(
        rotation_deg=float(rng.uniform(-25, 25)),
        perspective=float(rng.uniform(0.0, 0.08)),
        blur_sigma=float(rng.uniform(0.0, 1.6)) * max(0.5, long_side / 2000),
        light_gradient=float(rng.uniform(0.0, 0.5)),
        shadow=bool(rng.random() < 0.4),
        jpeg_quality=int(rng.integers(60, 96)),
        long_side=long_side,
        ballot_fraction=float(rng.uniform(low, 0.95)),
        clutter=bool(rng.random() < 0.5),
    )


@lru_cache(maxsize=32)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / f"{name}.ttf"
    return ImageFont.truetype(str(path), size)


# ---------------------------------------------------------------- pen strokes


def _hand_path(points: list[Point], rng: np.random.Generator, wobble: float) -> list[Point]:
    """Resample a polyline densely and add a smooth sideways tremor, like a hand."""
    pts = np.asarray(points, dtype=np.float64)
    seg = np.hypot(*np.diff(pts, axis=0).T)
    total = float(seg.sum())
    if total < 1e-6:
        return [(float(x), float(y)) for x, y in pts]
    n = max(8, int(total / 2))
    dist = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, total, n)
    x = np.interp(t, dist, pts[:, 0])
    y = np.interp(t, dist, pts[:, 1])
    # A random walk, smoothed, gives low-frequency wobble rather than jagged noise.
    walk = np.cumsum(rng.normal(0.0, 1.0, (n, 2)), axis=0)
    kernel = np.ones(9) / 9
    walk = np.stack([np.convolve(walk[:, k], kernel, mode="same") for k in range(2)], axis=1)
    walk -= np.linspace(walk[0], walk[-1], n)  # keep the ends where the hand aimed
    scale = wobble / max(1e-6, float(np.abs(walk).max()))
    x = x + walk[:, 0] * scale
    y = y + walk[:, 1] * scale
    return list(zip(x.tolist(), y.tolist(), strict=True))


def _draw_stroke(
    draw: ImageDraw.ImageDraw,
    points: list[Point],
    rng: np.random.Generator,
    width: int,
    color: tuple[int, int, int],
    wobble: float,
) -> None:
    path = _hand_path(points, rng, wobble)
    draw.line(path, fill=color, width=width, joint="curve")
    r = width / 2
    for px, py in (path[0], path[-1]):  # round pen tips
        draw.ellipse((px - r, py - r, px + r, py + r), fill=color)


def _mark_points(
    style: MarkStyle, box: tuple[int, int, int, int], rng: np.random.Generator
) -> list[list[Point]]:
    """Strokes of one mark, in page coordinates; some overshoot the box edge."""
    x, y, w, h = box

    def at(u: float, v: float) -> Point:
        return (x + u * w, y + v * h)

    spill = 0.35 if rng.random() < 0.2 else 0.0  # sometimes the pen runs over the edge
    if style == "spill":  # a cross that runs well over the edge
        spill = 0.45
        style = "cross"

    def lo() -> float:
        return float(rng.uniform(0.1, 0.25)) - spill * float(rng.random())

    def hi() -> float:
        return float(rng.uniform(0.75, 0.9)) + spill * float(rng.random())

    if style == "across":  # arms 20-50% of a side beyond every edge, centre inside

        def out_lo() -> float:
            return float(rng.uniform(-0.5, -0.2))

        def out_hi() -> float:
            return float(rng.uniform(1.2, 1.5))

        return [
            [at(out_lo(), out_lo()), at(out_hi(), out_hi())],
            [at(out_hi(), out_lo()), at(out_lo(), out_hi())],
        ]
    if style == "tick_out":  # the short stroke inside, the long one far out of the top
        mid = (float(rng.uniform(0.1, 0.3)), float(rng.uniform(0.4, 0.6)))
        bottom = (float(rng.uniform(0.35, 0.55)), float(rng.uniform(0.75, 0.9)))
        top = (float(rng.uniform(1.0, 1.8)), float(rng.uniform(-1.0, -0.4)))
        return [[at(*mid), at(*bottom), at(*top)]]
    if style == "cross":
        return [[at(lo(), lo()), at(hi(), hi())], [at(hi(), lo()), at(lo(), hi())]]
    if style == "tick":
        mid = (float(rng.uniform(0.15, 0.3)), float(rng.uniform(0.45, 0.6)))
        bottom = (float(rng.uniform(0.35, 0.5)), float(rng.uniform(0.75, 0.88)))
        top = (hi(), lo())
        return [[at(*mid), at(*bottom), at(*top)]]
    if style == "fill":
        strokes: list[list[Point]] = []
        rows = int(rng.integers(7, 11))
        pts: list[Point] = []
        for i in range(rows):
            v = 0.12 + 0.76 * i / (rows - 1)
            pts.append(at(float(rng.uniform(0.08, 0.16)), v))
            pts.append(at(float(rng.uniform(0.84, 0.92)), v + 0.04))
        strokes.append(pts)
        return strokes
    if style == "scribble":
        cx, cy = float(rng.uniform(0.4, 0.6)), float(rng.uniform(0.4, 0.6))
        loops = int(rng.integers(3, 6))
        t = np.linspace(0, 2 * np.pi * loops, 24 * loops)
        rad = 0.22 + 0.12 * np.sin(t * float(rng.uniform(0.2, 0.5)))
        drift = np.linspace(-0.12, 0.12, t.size)
        return [
            [
                at(cx + drift[i] + rad[i] * np.cos(t[i]), cy + rad[i] * np.sin(t[i]) * 0.8)
                for i in range(t.size)
            ]
        ]
    # dot: a blob made by circling the pen tip a few times
    cx, cy = float(rng.uniform(0.4, 0.6)), float(rng.uniform(0.4, 0.6))
    r = float(rng.uniform(0.07, 0.11))
    t = np.linspace(0, 6 * np.pi, 40)
    rr = r * np.linspace(1.0, 0.3, t.size)
    return [[at(cx + rr[i] * np.cos(t[i]), cy + rr[i] * np.sin(t[i])) for i in range(t.size)]]


def _ink(rng: np.random.Generator) -> tuple[int, int, int]:
    if rng.random() < 0.65:  # blue ballpoint
        return (int(rng.integers(15, 50)), int(rng.integers(30, 75)), int(rng.integers(120, 175)))
    g = int(rng.integers(15, 45))
    return (g, g, g + int(rng.integers(0, 10)))


def _stamp(page: Image.Image, center: Point, radius: float, rng: np.random.Generator) -> None:
    """A round precinct stamp in violet ink, multiplied onto the (RGB) page in place."""
    size = int(radius * 2 + 8)
    layer = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(layer)
    c = size / 2
    lw = max(2, int(radius / 28))
    d.ellipse((c - radius, c - radius, c + radius, c + radius), outline=255, width=lw)
    r2 = radius * 0.72
    d.ellipse((c - r2, c - r2, c + r2, c + r2), outline=255, width=max(1, lw - 1))
    font = _font("DejaVuSans-Bold", max(8, int(radius / 5)))
    d.text((c, c), f"УИК № {int(rng.integers(1, 999))}", font=font, fill=255, anchor="mm")
    small = _font("DejaVuSans", max(7, int(radius / 8)))
    for k, ch in enumerate("УЧАСТКОВАЯ ИЗБИРАТЕЛЬНАЯ КОМИССИЯ"):
        ang = -math.pi / 2 + 2 * math.pi * k / 34
        px, py = c + radius * 0.86 * math.cos(ang), c + radius * 0.86 * math.sin(ang)
        d.text((px, py), ch, font=small, fill=255, anchor="mm")
    layer = layer.rotate(float(rng.uniform(0, 360)), resample=Image.Resampling.BILINEAR)
    # Ink multiplies the paper (print under the stamp stays visible): build the
    # per-pixel factor 1 - a + a * ink on the stamp's square only.
    alpha = np.asarray(layer, dtype=np.float32)[..., None] / 255.0 * float(rng.uniform(0.5, 0.85))
    ink = np.array([110, 70, 170], dtype=np.float32) / 255.0
    factor = Image.fromarray(((1 - alpha + alpha * ink) * 255).astype(np.uint8), "RGB")
    x0, y0 = int(center[0] - size / 2), int(center[1] - size / 2)
    region = page.crop((x0, y0, x0 + size, y0 + size))
    page.paste(ImageChops.multiply(region, factor), (x0, y0))


def sign_and_stamp(
    page: Image.Image,
    stamp: tuple[int, int, int, int] | None,
    signatures: list[tuple[int, int, int]],
    rng: np.random.Generator,
) -> Image.Image:
    """The commission's round stamp over its printed place (often spilling onto the
    print around it) and a signature over each printed rule, on an RGB copy of
    the page. Rectangles and rules in page pixels (seeds.ballot.commission_places)."""
    img = page.convert("RGB") if page.mode != "RGB" else page.copy()
    if stamp is not None:
        x0, y0, x1, y1 = stamp
        side = min(x1 - x0, y1 - y0)
        radius = side * float(rng.uniform(0.45, 0.62))
        center = (
            (x0 + x1) / 2 + float(rng.uniform(-0.3, 0.3)) * (x1 - x0),
            (y0 + y1) / 2 + float(rng.uniform(-0.25, 0.35)) * (y1 - y0),
        )
        _stamp(img, center, radius, rng)
    draw = ImageDraw.Draw(img)
    for lx0, ly, lx1 in signatures:
        span = (lx1 - lx0) * float(rng.uniform(0.45, 0.85))
        sx = lx0 + float(rng.uniform(0.0, 1.0)) * (lx1 - lx0 - span)
        height = (lx1 - lx0) * float(rng.uniform(0.08, 0.14))
        t = np.linspace(0, 1, 40)
        freq = float(rng.uniform(12, 26))
        pts = [
            (
                sx + span * float(u),
                ly - height * 0.4 + height * 0.5 * math.sin(float(u) * freq) * (1 - 0.5 * float(u)),
            )
            for u in t
        ]
        width = max(2, round((lx1 - lx0) * 0.008))
        _draw_stroke(draw, pts, rng, width, _ink(rng), height * 0.2)
    return img


def _far_from_boxes(p: Point, template: BallotTemplate, clearance: float) -> bool:
    for o in template.options:
        x, y, w, h = o.box
        if x - clearance < p[0] < x + w + clearance and y - clearance < p[1] < y + h + clearance:
            return False
    return True


def mark_ballot(
    reference: Image.Image,
    template: BallotTemplate,
    marks: list[str],
    rng: np.random.Generator,
    style: MarkStyle | None = None,
    extras: bool | None = None,
) -> Image.Image:
    """Pen marks in the boxes of `marks`; sometimes a stamp and a signature elsewhere.

    `extras` forces the stamp and the signature on (True) or off (False); by
    default each is left to chance.
    """
    img = reference.convert("RGB") if reference.mode != "RGB" else reference.copy()
    width, height = reference.size
    boxes = {o.id: o.box for o in template.options}
    first_box_top = min(o.box[1] for o in template.options)
    box_side = float(np.median([min(o.box[2], o.box[3]) for o in template.options]))

    if (rng.random() < 0.6) if extras is None else extras:  # the commission's stamp
        radius = float(rng.uniform(0.06, 0.085)) * width
        center = (
            float(rng.uniform(0.12, 0.25)) * width,
            float(rng.uniform(0.06, 0.1)) * height,
        )
        if center[1] + radius < first_box_top:
            _stamp(img, center, radius, rng)

    draw = ImageDraw.Draw(img)
    if (rng.random() < 0.5) if extras is None else extras:  # a signature, clear of boxes
        for _ in range(10):
            sx = float(rng.uniform(0.05, 0.6)) * width
            sy = float(rng.uniform(0.03, 0.97)) * height
            span = float(rng.uniform(1.5, 3.0)) * box_side
            probe = [(sx, sy), (sx + span, sy), (sx + span / 2, sy)]
            if all(_far_from_boxes(p, template, box_side * 1.5) for p in probe):
                t = np.linspace(0, 1, 30)
                pts = [
                    (sx + span * float(u), sy + box_side * 0.25 * math.sin(float(u) * 19))
                    for u in t
                ]
                _draw_stroke(draw, pts, rng, max(2, int(box_side * 0.04)), _ink(rng), 3.0)
                break

    color = _ink(rng)
    for option_id in marks:
        if option_id not in boxes:
            raise KeyError(f"no option {option_id!r} in template {template.election!r}")
        mark_style: MarkStyle = style or MARK_STYLES[int(rng.integers(len(MARK_STYLES)))]
        pen = max(2, round(box_side * float(rng.uniform(0.045, 0.07))))
        wobble = box_side * 0.04
        for stroke in _mark_points(mark_style, boxes[option_id], rng):
            _draw_stroke(draw, stroke, rng, pen, color, wobble)
    return paper_texture(img, rng)


# The sheet's own texture: paper is not evenly white but mottled by its fibre flocs
# ("formation"), a pattern of its own on every sheet that every photo of it keeps.
# Modelled as white noise smoothed to flocs of about PAPER_FLOC_MM, varying the
# reflectance by PAPER_MOTTLE (standard deviation). 2% is a conservative guess for
# office paper in reflected light; bench/near_duplicates.py --mottle shows what the
# duplicate finder keeps at other amplitudes.
PAPER_MOTTLE = 0.02
PAPER_FLOC_MM = 0.85
A4_LONG_MM = 297.0


def paper_texture(
    sheet: Image.Image, rng: np.random.Generator, mottle: float | None = None
) -> Image.Image:
    """The sheet with its paper's mottle. Its randomness comes from a child of
    `rng` (numpy's spawn), so the stream `rng` goes on with is what it was without
    the texture: photos made before the texture existed keep their marks and
    conditions."""
    amount = PAPER_MOTTLE if mottle is None else mottle
    if amount <= 0:
        return sheet
    try:
        child = rng.spawn(1)[0]
    except (TypeError, ValueError):  # no seed sequence: this draw moves `rng` on
        child = np.random.default_rng(int(rng.integers(2**63)))
    width, height = sheet.size
    sigma = PAPER_FLOC_MM * max(width, height) / A4_LONG_MM
    noise = child.standard_normal((height, width), dtype=np.float32)
    flocs = np.asarray(cv2.GaussianBlur(noise, (0, 0), sigma), np.float32)
    flocs = flocs * np.float32(amount / max(float(flocs.std()), 1e-6))
    rgb = np.asarray(sheet.convert("RGB"), np.float32) * (1.0 + flocs)[:, :, None]
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


# ---------------------------------------------------------------- the photo


def _low_res_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    small = rng.random((cells, max(2, cells * shape[1] // max(1, shape[0])))).astype(np.float32)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _table(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A table top: base colour, wood-like grain and blotches, made at low resolution."""
    h, w = shape
    base = np.array(
        [
            (70, 100, 140),  # wood (BGR)
            (40, 60, 95),  # dark wood
            (120, 120, 118),  # grey laminate
            (60, 45, 40),  # dark cloth
            (150, 165, 180),  # light wood
        ][int(rng.integers(5))],
        dtype=np.float32,
    )
    lh, lw = max(8, h // 8), max(8, w // 8)
    streaks = rng.normal(0, 1, (lh, max(2, lw // 16))).astype(np.float32)
    if rng.random() < 0.5:  # grain running the other way
        streaks = np.ascontiguousarray(streaks.T)
    grain = cv2.resize(streaks, (lw, lh), interpolation=cv2.INTER_LINEAR)
    blotch = _low_res_noise(rng, (lh, lw), 6)
    tex = 1.0 + 0.08 * grain + 0.15 * (blotch - 0.5)
    small = np.clip(tex[..., None] * base, 0, 255).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _clutter(frame: np.ndarray, rng: np.random.Generator) -> None:
    """Things lying on the table, drawn in place: papers with print, a pen, a phone,
    coins, a cup ring. They give a feature matcher plenty of false structure."""
    h, w = frame.shape[:2]
    unit = max(h, w) / 100
    for _ in range(int(rng.integers(4, 9))):
        kind = int(rng.integers(5))
        cx, cy = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        if kind == 0:  # another paper with lines of print, at an angle
            pw, ph = float(rng.uniform(15, 35)) * unit, float(rng.uniform(20, 45)) * unit
            ang = float(rng.uniform(0, 180))
            rect = cv2.boxPoints(((cx, cy), (pw, ph), ang)).astype(np.int32)
            shade = int(rng.integers(200, 250))
            cv2.fillConvexPoly(frame, rect, (shade, shade, shade - 5))
            rot = cv2.getRotationMatrix2D((cx, cy), -ang, 1.0)
            for k in range(int(ph / (1.6 * unit)) - 2):
                y = cy - ph / 2 + (k + 1.5) * 1.6 * unit
                x0 = cx - pw / 2 + 2 * unit
                x1 = x0 + float(rng.uniform(0.3, 1.0)) * (pw - 4 * unit)
                pts = np.array([[x0, y, 1], [x1, y, 1]]) @ rot.T
                cv2.line(
                    frame,
                    tuple(int(v) for v in pts[0]),
                    tuple(int(v) for v in pts[1]),
                    (40, 40, 40),
                    max(1, int(0.5 * unit)),
                )
        elif kind == 1:  # a pen
            ang = float(rng.uniform(0, np.pi))
            length = float(rng.uniform(12, 18)) * unit
            dx, dy = math.cos(ang) * length / 2, math.sin(ang) * length / 2
            colour = tuple(int(v) for v in rng.integers(0, 200, 3))
            cv2.line(
                frame,
                (int(cx - dx), int(cy - dy)),
                (int(cx + dx), int(cy + dy)),
                colour,
                max(2, int(1.0 * unit)),
            )
        elif kind == 2:  # a phone, screen dark
            pw, ph = 8 * unit, 16 * unit
            phone = cv2.boxPoints(((cx, cy), (pw, ph), float(rng.uniform(0, 180))))
            cv2.fillConvexPoly(frame, phone.astype(np.int32), (25, 25, 30))
        elif kind == 3:  # coins
            for _ in range(int(rng.integers(1, 4))):
                r = int(float(rng.uniform(1.5, 2.5)) * unit)
                centre = (int(cx + rng.uniform(-5, 5) * unit), int(cy + rng.uniform(-5, 5) * unit))
                cv2.circle(frame, centre, r, (60, 140, 170), -1)
                cv2.circle(frame, centre, r, (30, 80, 100), max(1, int(0.2 * unit)))
        else:  # a cup's ring stain
            cv2.circle(
                frame,
                (int(cx), int(cy)),
                int(float(rng.uniform(4, 7)) * unit),
                (50, 60, 80),
                max(1, int(0.4 * unit)),
            )


def _lighting(
    rng: np.random.Generator, shape: tuple[int, int], cond: PhotoConditions
) -> np.ndarray:
    """Per-pixel gain (low-res then upsampled): a gradient, maybe a soft shadow, tint."""
    h, w = shape
    lh, lw = max(8, h // 16), max(8, w // 16)
    yy, xx = np.mgrid[0:lh, 0:lw].astype(np.float32)
    ang = float(rng.uniform(0, 2 * np.pi))
    ramp = (xx / lw - 0.5) * math.cos(ang) + (yy / lh - 0.5) * math.sin(ang)
    gain = 1.0 + cond.light_gradient * ramp * 1.4 - cond.light_gradient * 0.15
    if cond.shadow:
        # The phone's or the hand's shadow: a half-plane with a soft edge.
        a2 = float(rng.uniform(0, 2 * np.pi))
        off = float(rng.uniform(-0.25, 0.3))
        d = (xx / lw - 0.5) * math.cos(a2) + (yy / lh - 0.5) * math.sin(a2) - off
        soft = float(rng.uniform(0.02, 0.08))
        depth = float(rng.uniform(0.3, 0.55))
        gain = gain * (1.0 - depth / (1.0 + np.exp(-d / soft)))
    gain *= float(rng.uniform(0.85, 1.08))  # exposure
    tint = np.array(
        [rng.uniform(0.85, 1.0), rng.uniform(0.93, 1.0), rng.uniform(0.95, 1.05)],
        dtype=np.float32,
    )
    gain3 = gain[..., None] * tint
    # uint8 with 128 meaning 1.0: the full-resolution multiply then stays in 8 bits.
    gain8 = np.clip(gain3 * GAIN_ONE, 0, 255).astype(np.uint8)
    return cv2.resize(gain8, (w, h), interpolation=cv2.INTER_LINEAR)


def _exif(rng: np.random.Generator, orientation: int) -> bytes:
    phones = [("samsung", "SM-A515F"), ("Apple", "iPhone 11"), ("Xiaomi", "Redmi Note 8 Pro")]
    make, model = phones[int(rng.integers(len(phones)))]
    exif = Image.Exif()
    exif[0x010F] = make
    exif[0x0110] = model
    exif[0x0112] = orientation
    hh, mm, ss = int(rng.integers(8, 20)), int(rng.integers(0, 60)), int(rng.integers(0, 60))
    exif[0x0132] = f"2020:08:09 {hh:02d}:{mm:02d}:{ss:02d}"
    exif[0x0131] = "G970FXXU9FUG1"

    def dms(v: float) -> tuple[float, float, float]:
        d = int(v)
        m = int((v - d) * 60)
        return (float(d), float(m), round(((v - d) * 60 - m) * 60, 2))

    lat = 53.9 + float(rng.uniform(-0.1, 0.1))
    lon = 27.56 + float(rng.uniform(-0.15, 0.15))
    exif[0x8825] = {1: "N", 2: dms(lat), 3: "E", 4: dms(lon)}
    exif[0x8769] = {0x927C: b"MakerNote\x00" + rng.bytes(24), 0x9003: exif[0x0132]}
    return exif.tobytes()  # already starts with the "Exif\0\0" APP1 preamble


def _with_exif(jpeg: bytes, exif_payload: bytes) -> bytes:
    """Insert an APP1 Exif segment right after SOI, where phones put it."""
    segment = b"\xff\xe1" + (len(exif_payload) + 2).to_bytes(2, "big") + exif_payload
    return jpeg[:2] + segment + jpeg[2:]


def _encode(bgr: np.ndarray, quality: int, rng: np.random.Generator) -> bytes:
    orientation = 1
    if rng.random() < 0.15:
        # Phones often store sensor-landscape pixels and say "rotate" in EXIF.
        orientation = 6 if rng.random() < 0.5 else 8
        bgr = np.ascontiguousarray(np.rot90(bgr, 1 if orientation == 6 else -1))
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV cannot fail on a valid uint8 array
        raise RuntimeError("JPEG encoding failed")
    return _with_exif(buf.tobytes(), _exif(rng, orientation))


def page_transform(
    page_size: tuple[int, int],
    frame_size: tuple[int, int],
    cond: PhotoConditions,
    rng: np.random.Generator,
) -> np.ndarray:
    """Homography placing a page (w, h) into a frame (w, h): scale, rotate, tilt, shift."""
    pw, ph = page_size
    fw, fh = frame_size
    corners = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], dtype=np.float64)
    centred = corners - [pw / 2, ph / 2]
    jitter = rng.uniform(-1, 1, (4, 2)) * cond.perspective * max(pw, ph)
    a = math.radians(cond.rotation_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    quad = (centred + jitter) @ rot.T
    span = quad.max(axis=0) - quad.min(axis=0)
    scale = cond.ballot_fraction * max(fw, fh) / max(pw, ph)
    # Never let the page run off the frame in an ordinary photo: shrink to fit.
    scale = min(scale, 0.98 * fw / span[0], 0.98 * fh / span[1])
    quad *= scale
    lo, hi = quad.min(axis=0), quad.max(axis=0)
    room = np.array([fw, fh]) - (hi - lo)
    shift = -lo + room * rng.uniform(0.2, 0.8, 2)
    quad += shift
    return cv2.getPerspectiveTransform(corners.astype(np.float32), quad.astype(np.float32))


def phone_photo(
    ballot: Image.Image,
    rng: np.random.Generator,
    conditions: PhotoConditions | None = None,
) -> bytes:
    """A JPEG (with phone-like EXIF incl. GPS) of the page lying on a table."""
    cond = conditions or random_conditions(rng)
    rgb = ballot if ballot.mode == "RGB" else ballot.convert("RGB")
    page = cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR)
    ph, pw = page.shape[:2]
    long_side = cond.long_side
    short_side = round(long_side * 3 / 4)
    fw, fh = (short_side, long_side) if ph >= pw else (long_side, short_side)
    # A bilinear warp aliases badly only when shrinking a lot; then an area filter
    # first brings the page close to its final size.
    pre = cond.ballot_fraction * max(fw, fh) / max(pw, ph) * 1.1
    if pre < 0.6:
        page = cv2.resize(page, (round(pw * pre), round(ph * pre)), interpolation=cv2.INTER_AREA)
    h_mat = page_transform((page.shape[1], page.shape[0]), (fw, fh), cond, rng)
    frame = _table(rng, (fh, fw))
    if cond.clutter:
        _clutter(frame, rng)
    cv2.warpPerspective(
        page,
        h_mat,
        (fw, fh),
        dst=frame,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_TRANSPARENT,
    )
    out = cv2.multiply(frame, _lighting(rng, (fh, fw), cond), scale=1.0 / GAIN_ONE)
    if cond.blur_sigma > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), cond.blur_sigma)
    return _encode(out, cond.jpeg_quality, rng)


# ---------------------------------------------------------------- other documents


def _vocabulary(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_WORDS_RU = _vocabulary(
    "договор аренды квартиры стороны обязуются оплатить сумму рублей срок месяц "
    "настоящий акт справка выдана гражданину месту работы требования заявление "
    "прошу предоставить отпуск согласно статье кодекса подпись дата печать организации "
    "протокол собрания жильцов повестка дня вопрос решение принято большинством голосов"
)
_WORDS_EN = _vocabulary(
    "invoice total amount due payment terms days customer account number order "
    "delivery address quantity price description service agreement party shall "
    "notice period signature date company limited meeting minutes agenda item"
)


def _sentence(rng: np.random.Generator, words: tuple[str, ...] | list[str], n: int) -> str:
    return " ".join(words[int(i)] for i in rng.integers(0, len(words), n))


def _text_page(rng: np.random.Generator) -> Image.Image:
    w, h = 1240, 1754
    img = Image.new("RGB", (w, h), (250, 250, 247))
    d = ImageDraw.Draw(img)
    words = _WORDS_RU if rng.random() < 0.6 else _WORDS_EN
    title = _font("DejaVuSans-Bold", 44)
    body = _font("DejaVuSerif" if rng.random() < 0.5 else "DejaVuSans", 26)
    d.text((w / 2, 110), _sentence(rng, words, 2).upper(), font=title, fill=(0, 0, 0), anchor="ma")
    y = 220
    while y < h - 200:
        if rng.random() < 0.12:
            y += 40
            continue
        indent = 150 if rng.random() < 0.15 else 100
        line = _sentence(rng, words, int(rng.integers(6, 11)))
        d.text((indent, y), line, font=body, fill=(10, 10, 10))
        y += 40
    if rng.random() < 0.5:  # a form with check boxes: the closest thing to a ballot
        for k in range(int(rng.integers(2, 6))):
            by = 900 + k * 120
            d.rectangle((w - 200, by, w - 136, by + 64), fill=(250, 250, 247), outline=0, width=3)
    return img


def _receipt(rng: np.random.Generator) -> Image.Image:
    w, h = 620, 1700
    img = Image.new("RGB", (w, h), (245, 244, 240))
    d = ImageDraw.Draw(img)
    mono = _font("DejaVuSansMono", 24)
    d.text(
        (w / 2, 60), "ООО «ПРОДУКТЫ»", font=_font("DejaVuSansMono-Bold", 30), fill=0, anchor="ma"
    )
    y = 140
    total = 0.0
    while y < h - 220:
        name = _sentence(rng, ["хлеб", "молоко", "сыр", "кефир", "яблоки", "чай", "сахар"], 1)
        price = float(rng.integers(50, 2000)) / 100
        total += price
        d.text((30, y), f"{name.upper():<18}{price:>8.2f}", font=mono, fill=0)
        y += 38
    d.text((30, y + 30), f"ИТОГО{total:>21.2f}", font=_font("DejaVuSansMono-Bold", 26), fill=0)
    return img


def _scene(rng: np.random.Generator) -> Image.Image:
    w, h = 1200, 1600
    img = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(60, 200, 3)))
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(8, 20))):
        x0, y0 = (int(v) for v in rng.integers(0, 1000, 2))
        x1, y1 = x0 + int(rng.integers(50, 600)), y0 + int(rng.integers(50, 600))
        color = tuple(int(v) for v in rng.integers(0, 255, 3))
        if rng.random() < 0.5:
            d.rectangle((x0, y0, x1, y1), fill=color)
        else:
            d.ellipse((x0, y0, x1, y1), fill=color)
    return img


def _screen(rng: np.random.Generator) -> Image.Image:
    """A monitor or phone screen showing a page or a picture: bezel, scan lines, glare."""
    inner = _text_page(rng) if rng.random() < 0.6 else _scene(rng)
    sw, sh = (1600, 1000) if rng.random() < 0.5 else (900, 1600)
    inner = inner.resize((sw - 80, sh - 80), Image.Resampling.BILINEAR)
    pixels = np.asarray(inner, dtype=np.float32) * float(rng.uniform(0.7, 0.95))
    pixels[::3] *= 0.85  # the pixel grid shows as fine lines
    yy, xx = np.mgrid[0 : sh - 80, 0 : sw - 80].astype(np.float32)
    gx, gy = float(rng.uniform(0, sw)), float(rng.uniform(0, sh))
    glare = 60 * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * (0.25 * sw) ** 2))
    screen = np.clip(pixels + glare[..., None], 0, 255).astype(np.uint8)
    out = Image.new("RGB", (sw, sh), (20, 20, 24))
    out.paste(Image.fromarray(screen, "RGB"), (40, 40))
    return out


NotABallotKind = Literal["text", "receipt", "scene", "screen"]
NOT_A_BALLOT_KINDS: tuple[NotABallotKind, ...] = get_args(NotABallotKind)


def not_a_ballot_photo(
    rng: np.random.Generator,
    kind: NotABallotKind | None = None,
    conditions: PhotoConditions | None = None,
) -> bytes:
    """A phone photo of something else: a text page, a form, a receipt, a scene or
    (only when asked for by `kind`) a screen."""
    if kind is None:
        kind = NOT_A_BALLOT_KINDS[int(rng.integers(3))]
    makers = {"text": _text_page, "receipt": _receipt, "scene": _scene, "screen": _screen}
    return phone_photo(makers[kind](rng), rng, conditions)
