"""Handwritten numbers, synthesised as pen strokes: the protocol photos' figures and
the digit recogniser's training data.

Pure given the numpy Generator: the same writer, text, size and generator state
give the same image. Each digit is a set of pen strokes (skeletons in a unit box,
height 1, y downwards) in one of its usual variants (1 with or without flag and
base, 2 with or without a loop, 3 round or flat-topped, 4 open or closed, 7 with
or without a bar, 8 as one stroke or two rings, 9 with a straight or curved
tail...); a ``Writer`` picks one variant per digit and fixes the slant, width,
roundness, pen width and pressure, spacing and tremor. Every instance is
perturbed (control points, a small rotation and scale, the baseline) and drawn
with a pressure-varying pen at four times the size, then reduced (anti-aliased).

``write_number`` returns an RGBA image: ink colour with alpha on a transparent
background, cropped to the ink plus a pen-width margin, for pasting into a form
cell. Options: ``crossed_out`` (a wrong figure written first, struck through,
with the right one after it), ``touching`` (digits crowded until they touch).
Writing slightly outside a cell is the caller's placement (the image is tight).
``write_number_owned`` also maps which character drew each pixel, and
``number_cell`` / ``degrade_cell`` put a number in a printed form cell, clean or
as a phone photo shows it: the digit recogniser's training and test material.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np
from PIL import Image

__all__ = [
    "NAMED_WRITERS",
    "VARIANTS",
    "Cell",
    "Writer",
    "degrade_cell",
    "number_cell",
    "random_number_text",
    "random_writer",
    "write_number",
    "write_number_owned",
    "writers",
]

Point = tuple[float, float]
Piece = list[Point]  # key points joined by a smooth curve
Stroke = list[Piece]  # pieces joined at sharp corners, one pen-down movement
Glyph = list[Stroke]

SUPERSAMPLE = 4


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 0) -> Piece:
    """Points on an ellipse from angle a0 to a1 (degrees, counter-clockwise as seen,
    90 = top), as key points for the smooth curve."""
    n = n or max(4, int(abs(a1 - a0) / 30) + 1)
    out: Piece = []
    for i in range(n + 1):
        a = math.radians(a0 + (a1 - a0) * i / n)
        out.append((cx + rx * math.cos(a), cy - ry * math.sin(a)))
    return out


def _glyph(char: str, variant: int) -> tuple[Glyph, float]:
    """The strokes of one character's variant and its natural width (height 1)."""
    if char == "0":
        if variant == 0:
            return [[_arc(0.27, 0.5, 0.26, 0.5, 100, 475)]], 0.54
        return [[_arc(0.25, 0.5, 0.23, 0.5, 80, 430)]], 0.5  # narrower, overlapping top
    if char == "1":
        stem = [(0.3, 0.0), (0.29, 1.0)]
        if variant == 0:
            return [[stem]], 0.36
        flag: Stroke = [[(0.06, 0.28), (0.3, 0.0)], stem]
        if variant == 1:
            return [flag], 0.38
        return [flag, [[(0.08, 1.0), (0.52, 0.99)]]], 0.56
    if char == "2":
        hook = _arc(0.27, 0.27, 0.25, 0.26, 160, -35)
        if variant == 0:
            return [[[*hook, (0.03, 0.97)], [(0.03, 0.97), (0.56, 0.98)]]], 0.58
        loop = [*hook, (0.07, 0.9), (0.04, 0.84), (0.11, 0.83), (0.16, 0.93), (0.2, 0.99)]
        return [[loop, [(0.2, 0.99), (0.58, 0.97)]]], 0.6
    if char == "3":
        lower = _arc(0.27, 0.74, 0.27, 0.26, 95, -155)
        if variant == 0:
            return [[_arc(0.26, 0.25, 0.23, 0.25, 150, -88), lower]], 0.56
        return [[[(0.05, 0.02), (0.5, 0.02)], [(0.5, 0.02), (0.22, 0.44)], lower]], 0.56
    if char == "4":
        if variant == 0:  # closed: a triangle
            return [
                [[(0.44, 0.0), (0.02, 0.66)], [(0.02, 0.66), (0.6, 0.66)]],
                [[(0.44, 0.0), (0.43, 1.0)]],
            ], 0.6
        return [
            [[(0.07, 0.0), (0.04, 0.62)], [(0.04, 0.62), (0.58, 0.62)]],
            [[(0.44, 0.12), (0.43, 1.0)]],
        ], 0.6
    if char == "5":
        bowl = _arc(0.27, 0.7, 0.26, 0.28, 125, -150)
        top = [(0.12, 0.02), (0.52, 0.0)]
        if variant == 0:
            return [[[(0.12, 0.02), (0.09, 0.46)], bowl], [top]], 0.55
        # one movement: flag drawn first, then down and round
        return [[[(0.52, 0.0), (0.12, 0.02)], [(0.12, 0.02), (0.09, 0.46)], bowl]], 0.55
    if char == "6":
        if variant == 0:
            keys = [(0.5, 0.0), (0.26, 0.16), (0.09, 0.44), (0.04, 0.7), (0.12, 0.93)]
        else:
            keys = [(0.42, 0.0), (0.2, 0.35), (0.06, 0.68), (0.12, 0.93)]
        keys += [(0.3, 1.0), (0.48, 0.9), (0.52, 0.72), (0.4, 0.56), (0.22, 0.55), (0.07, 0.67)]
        return [[keys]], 0.55
    if char == "7":
        bar: Piece = [(0.02, 0.04), (0.56, 0.02)]
        stem = [(0.56, 0.02), (0.4, 0.45), (0.22, 1.0)]
        if variant == 0:
            return [[bar, stem]], 0.58
        if variant == 1:
            return [[bar, stem], [[(0.16, 0.52), (0.56, 0.5)]]], 0.58
        return [[[(0.03, 0.17), (0.02, 0.03)], bar, stem]], 0.58
    if char == "8":
        if variant == 0:
            keys = [
                (0.46, 0.12), (0.27, 0.0), (0.08, 0.12), (0.1, 0.32), (0.3, 0.47), (0.5, 0.65),
                (0.52, 0.86), (0.3, 1.0), (0.06, 0.87), (0.08, 0.66), (0.3, 0.47), (0.45, 0.32),
                (0.46, 0.12),
            ]  # fmt: skip
            return [[keys]], 0.56
        return [
            [_arc(0.27, 0.23, 0.2, 0.23, 270, 635)],
            [_arc(0.27, 0.73, 0.26, 0.27, 90, 455)],
        ], 0.56
    if char == "9":
        loop = _arc(0.27, 0.28, 0.24, 0.28, 15, 375)
        if variant == 0:
            return [[loop, [(0.5, 0.2), (0.47, 1.0)]]], 0.56
        tail = [(0.51, 0.2), (0.51, 0.6), (0.43, 0.88), (0.26, 1.0), (0.08, 0.92)]
        return [[loop, tail]], 0.56
    if char == "-":
        return [[[(0.05, 0.55), (0.5, 0.53)]]], 0.55
    raise ValueError(f"no handwritten glyph for {char!r}")


VARIANTS = {"0": 2, "1": 3, "2": 2, "3": 2, "4": 2, "5": 2, "6": 2, "7": 3, "8": 2, "9": 2, "-": 1}


@dataclass(frozen=True)
class Writer:
    """One person's hand: fixed for everything they write."""

    name: str
    slant: float  # shear: the top moves right by slant x height (0 upright, 0.4 very slanted)
    width: float  # horizontal scale of the glyphs (0.7 narrow .. 1.25 wide)
    roundness: float  # 1 round loops, 0.5 boxy ones
    stroke: float  # pen width as a share of the digit height (0.04 .. 0.13)
    pressure: float  # pen pressure variation along a stroke (0 .. 0.6)
    size_jitter: float  # relative variation of each digit's size (0 .. 0.15)
    spacing: float  # gap between digits as a share of the height (-0.05 .. 0.45)
    tremor: float  # high-frequency pen wobble, share of the height (0 .. 0.012)
    sloppiness: float  # per-instance shape noise of the control points (0.01 .. 0.05)
    baseline: float  # baseline wander between digits, share of the height (0 .. 0.08)
    variants: tuple[int, ...]  # the variant of each digit 0..9


def _w(
    name: str,
    slant: float,
    width: float,
    roundness: float,
    stroke: float,
    pressure: float,
    size_jitter: float,
    spacing: float,
    tremor: float,
    sloppiness: float,
    baseline: float,
    variants: str,
) -> Writer:
    return Writer(
        name, slant, width, roundness, stroke, pressure, size_jitter, spacing, tremor,
        sloppiness, baseline, tuple(int(c) for c in variants),
    )  # fmt: skip


# Named styles, well apart; the variant string gives digits 0..9.
NAMED_WRITERS: tuple[Writer, ...] = (
    _w("teacher", 0.18, 1.0, 1.0, 0.07, 0.2, 0.03, 0.2, 0.0, 0.015, 0.02, "0120011100"),
    _w("clerk", 0.05, 0.85, 0.8, 0.06, 0.1, 0.05, 0.15, 0.002, 0.025, 0.03, "0210101011"),
    _w("slanted", 0.38, 0.9, 0.9, 0.08, 0.3, 0.06, 0.22, 0.002, 0.03, 0.04, "1111110111"),
    _w("backhand", -0.12, 1.05, 0.85, 0.07, 0.25, 0.06, 0.25, 0.003, 0.03, 0.05, "0001000100"),
    _w("wide", 0.1, 1.25, 0.95, 0.09, 0.2, 0.04, 0.3, 0.0, 0.02, 0.03, "1200111010"),
    _w("narrow", 0.15, 0.7, 0.7, 0.06, 0.15, 0.08, 0.12, 0.002, 0.03, 0.04, "0111001201"),
    _w("boxy", 0.02, 1.0, 0.5, 0.1, 0.1, 0.04, 0.2, 0.0, 0.02, 0.02, "1210011210"),
    _w("shaky", 0.12, 0.95, 0.9, 0.07, 0.45, 0.1, 0.25, 0.011, 0.04, 0.08, "0111111101"),
    _w("hasty", 0.28, 1.1, 0.75, 0.05, 0.5, 0.12, 0.12, 0.004, 0.045, 0.07, "1010100011"),
    _w("felt-tip", 0.08, 1.0, 0.95, 0.13, 0.05, 0.04, 0.28, 0.0, 0.02, 0.03, "0200010100"),
    _w("fine-pen", 0.22, 0.9, 0.85, 0.04, 0.3, 0.05, 0.2, 0.003, 0.03, 0.05, "1121101111"),
    _w("crowded", 0.14, 1.05, 0.85, 0.08, 0.25, 0.06, -0.02, 0.002, 0.035, 0.04, "0010111001"),
    _w("spacious", 0.0, 0.95, 1.0, 0.07, 0.2, 0.05, 0.45, 0.001, 0.025, 0.08, "1101010110"),
    _w("round", 0.1, 1.15, 1.0, 0.08, 0.3, 0.06, 0.2, 0.002, 0.03, 0.04, "0021000001"),
)


def random_writer(rng: np.random.Generator, name: str = "") -> Writer:
    """A writer drawn from the range the named styles span."""
    u = rng.uniform
    return Writer(
        name=name or f"writer-{int(rng.integers(1 << 30))}",
        slant=float(u(-0.15, 0.4)),
        width=float(u(0.7, 1.25)),
        roundness=float(u(0.5, 1.0)),
        stroke=float(u(0.04, 0.13)),
        pressure=float(u(0.0, 0.55)),
        size_jitter=float(u(0.0, 0.14)),
        spacing=float(u(0.04, 0.45)),
        tremor=float(u(0.0, 0.011)) * float(rng.random() < 0.5),
        sloppiness=float(u(0.01, 0.05)),
        baseline=float(u(0.0, 0.08)),
        variants=tuple(int(rng.integers(VARIANTS[str(d)])) for d in range(10)),
    )


def writers(seed: int, n: int) -> list[Writer]:
    """n random writers, deterministic from the seed (named ``s{seed}-{i}``)."""
    rng = np.random.default_rng([seed, 0x57A7])
    return [random_writer(rng, f"s{seed}-{i}") for i in range(n)]


def _catmull_rom(points: Piece, per_segment: int) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if len(p) == 2:
        t = np.linspace(0.0, 1.0, per_segment + 1)[:, None]
        return p[0] + (p[1] - p[0]) * t
    ext = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    out = []
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[:, None]
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        out.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    out.append(p[-1:])
    return np.vstack(out)


def _squarish(piece: np.ndarray, roundness: float) -> np.ndarray:
    """Push a curve's points towards its bounding box (a boxier hand)."""
    if roundness >= 0.999 or len(piece) < 6:
        return piece
    lo, hi = piece.min(axis=0), piece.max(axis=0)
    centre, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, 1e-6)
    rel = (piece - centre) / half
    e = 0.45 + 0.55 * roundness
    return np.asarray(centre + half * np.sign(rel) * np.abs(rel) ** e)


def _smooth_noise(rng: np.random.Generator, n: int, scale: float, waves: int = 3) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)
    out = np.zeros(n)
    for k in range(1, waves + 1):
        out += (
            rng.normal(0, 1)
            / k
            * np.sin(2 * np.pi * (k * t * rng.uniform(0.5, 1.5)) + rng.uniform(0, 6.3))
        )
    return np.asarray(out * scale)


@dataclass(frozen=True)
class _PenPath:
    xy: np.ndarray  # (n, 2) pixel coordinates
    width: np.ndarray  # (n,) pen width in pixels
    char: int  # index of the character it belongs to (-1: a strike-through)


def _glyph_paths(
    char: str, writer: Writer, rng: np.random.Generator, height: float, x0: float, base_y: float
) -> tuple[list[_PenPath], float]:
    """One character's pen paths in pixels, starting at x0, and its advance width."""
    variant = writer.variants[int(char)] if char.isdigit() else 0
    strokes, nat_w = _glyph(char, variant)
    size = height * (1.0 + rng.normal(0, writer.size_jitter))
    sx = size * writer.width * float(rng.uniform(0.94, 1.06))
    rot = math.radians(float(rng.normal(0, 2.0)))
    slant = writer.slant + float(rng.normal(0, 0.04))
    cos_r, sin_r = math.cos(rot), math.sin(rot)
    dy = float(rng.normal(0, writer.baseline)) * height
    paths: list[_PenPath] = []
    for stroke in strokes:
        dense: list[np.ndarray] = []
        for piece in stroke:
            keys = np.asarray(piece, dtype=np.float64)
            keys = keys + rng.normal(0, writer.sloppiness, keys.shape)
            if dense:  # keep the corner joined
                keys[0] = dense[-1][-1]
            curve = _catmull_rom([(float(a), float(b)) for a, b in keys], 10)
            dense.append(_squarish(curve, writer.roundness))
        pts = np.vstack(dense)
        n = len(pts)
        if writer.tremor > 0:
            pts = pts + rng.normal(0, writer.tremor, pts.shape)
        # unit box -> pixels: centre, rotate, slant, scale
        u = pts[:, 0] - nat_w / 2
        v = pts[:, 1] - 0.5
        u, v = u * cos_r - v * sin_r, u * sin_r + v * cos_r
        px = x0 + (u + nat_w / 2) * sx + (0.5 - v) * slant * size * 0.5 * 2 - 0.5 * slant * size
        py = base_y - size + (v + 0.5) * size + dy
        pressure = 1.0 + _smooth_noise(rng, n, writer.pressure * 0.5)
        taper = np.minimum(1.0, 0.55 + 0.45 * np.minimum(np.arange(n), np.arange(n)[::-1]) / 4)
        width = np.clip(writer.stroke * height * pressure * taper, 0.6, None)
        paths.append(_PenPath(np.column_stack([px, py]), width, -1))
    return paths, nat_w * sx


def _layout(
    text: str,
    writer: Writer,
    rng: np.random.Generator,
    height: float,
    spacing: float,
) -> tuple[list[_PenPath], list[tuple[float, float]]]:
    """The characters' pen paths side by side. Each is placed by its extent with
    the writer's slant taken out (so a slanted 1 does not slide into the next
    digit), ``spacing`` x height apart between the inked edges; a negative
    spacing makes them touch."""
    paths: list[_PenPath] = []
    extents: list[tuple[float, float]] = []
    right: float | None = None
    pen = writer.stroke * height
    for i, char in enumerate(text):
        glyph, _ = _glyph_paths(char, writer, rng, height, 0.0, height)
        upright = np.concatenate(
            [p.xy[:, 0] + (p.xy[:, 1] - height / 2) * writer.slant for p in glyph]
        )
        # between the strokes' centre lines: the pen's width more than between the
        # inked edges; touching writing overlaps the inks by a fraction of it
        gap = spacing * height * float(rng.uniform(0.7, 1.3)) + (pen if spacing > 0 else 0.7 * pen)
        shift = 0.0 if right is None else right + gap - float(upright.min())
        glyph = [_PenPath(p.xy + np.array([shift, 0.0]), p.width, i) for p in glyph]
        right = float(upright.max()) + shift
        paths += glyph
        xs = np.concatenate([p.xy[:, 0] for p in glyph])
        extents.append((float(xs.min()), float(xs.max())))
    return paths, extents


def _strike(
    extent: tuple[float, float], height: float, rng: np.random.Generator, pen: float
) -> _PenPath:
    """A strike-through over [x0, x1]: a slanted line or a zigzag."""
    x0, x1 = extent
    if x1 - x0 < 0.7 * height:  # a single digit's strike still reaches past it
        mid = (x0 + x1) / 2
        x0, x1 = mid - 0.35 * height, mid + 0.35 * height
    if rng.random() < 0.5:
        xy = np.array([[x0 - 0.1 * height, 0.75 * height], [x1 + 0.1 * height, 0.3 * height]])
    else:
        k = int(rng.integers(3, 6))
        xs = np.linspace(x0, x1, k + 1)
        ys = np.where(np.arange(k + 1) % 2 == 0, 0.25 * height, 0.8 * height)
        xy = np.column_stack([xs, ys])
    dense = np.vstack([xy[i] + (xy[i + 1] - xy[i]) * t for i in range(len(xy) - 1)
                       for t in np.linspace(0, 1, 8)[:, None]])  # fmt: skip
    return _PenPath(dense + rng.normal(0, 0.01 * height, dense.shape), np.full(len(dense), pen), -1)


def _render(
    paths: list[_PenPath], ink: tuple[int, int, int], rng: np.random.Generator, opacity: float
) -> tuple[Image.Image, np.ndarray]:
    """Draw the paths anti-aliased; the image and which character owns each pixel
    (-2 none, -1 a crossed-out figure or its strike)."""
    allxy = np.vstack([p.xy for p in paths])
    wmax = max(float(p.width.max()) for p in paths)
    margin = wmax / 2 + 2
    ox, oy = float(allxy[:, 0].min()) - margin, float(allxy[:, 1].min()) - margin
    w = math.ceil(float(allxy[:, 0].max()) - ox + margin)
    h = math.ceil(float(allxy[:, 1].max()) - oy + margin)
    s = SUPERSAMPLE
    canvas = np.zeros((h * s, w * s), dtype=np.uint8)
    owner = np.full((h, w), -2, dtype=np.int16)
    for p in paths:
        q = np.round((p.xy - [ox, oy]) * s * 16).astype(np.int64)
        o = np.round(p.xy - [ox, oy]).astype(np.int64)
        for i in range(len(q) - 1):
            thickness = max(1, round(float(p.width[i]) * s))
            cv2.line(canvas, tuple(map(int, q[i])), tuple(map(int, q[i + 1])), 255, thickness,
                     cv2.LINE_AA, 4)  # fmt: skip
            cv2.line(owner, tuple(map(int, o[i])), tuple(map(int, o[i + 1])), p.char,
                     max(1, round(float(p.width[i]))) + 2)  # fmt: skip
    alpha = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    alpha *= opacity * (1.0 - 0.15 * rng.random((h, w)).astype(np.float32))
    rgba = np.zeros((h, w, 4), dtype=np.uint8)
    rgba[..., :3] = ink
    rgba[..., 3] = np.clip(alpha, 0, 255).astype(np.uint8)
    return Image.fromarray(rgba, "RGBA"), owner


def write_number_owned(
    text: str,
    writer: Writer,
    rng: np.random.Generator,
    height_px: int,
    ink: tuple[int, int, int] = (20, 30, 110),
    *,
    crossed_out: str | None = None,
    touching: bool = False,
) -> tuple[Image.Image, np.ndarray]:
    """``write_number``, with a map of which character of ``text`` drew each pixel
    (its index; -1 the crossed-out figure, -2 no ink), for labelling training
    data. Pure."""
    if not text:
        raise ValueError("nothing to write")
    h = float(height_px)
    spacing = min(writer.spacing, -0.03) if touching else writer.spacing
    paths, extents = _layout(text, writer, rng, h, spacing)
    if crossed_out:
        old, old_ext = _layout(crossed_out, writer, rng, h, writer.spacing)
        shift = old_ext[-1][1] + max(0.35, writer.spacing) * h - extents[0][0]
        pen = writer.stroke * h
        strike = _strike((old_ext[0][0], old_ext[-1][1]), h, rng, pen)
        paths = [*[_PenPath(p.xy, p.width, -1) for p in old], strike] + [
            _PenPath(p.xy + np.array([shift, 0.0]), p.width, p.char) for p in paths
        ]
    opacity = float(rng.uniform(0.85, 1.0))
    return _render(paths, ink, rng, opacity)


def write_number(
    text: str,
    writer: Writer,
    rng: np.random.Generator,
    height_px: int,
    ink: tuple[int, int, int] = (20, 30, 110),
    *,
    crossed_out: str | None = None,
    touching: bool = False,
) -> Image.Image:
    """``text`` (digits, or "-" for a dash) in ``writer``'s hand, digits ``height_px``
    tall, as an RGBA image (ink with alpha, transparent background) cropped to the
    ink. Pure."""
    return write_number_owned(
        text, writer, rng, height_px, ink, crossed_out=crossed_out, touching=touching
    )[0]


def with_variants(writer: Writer, variants: tuple[int, ...]) -> Writer:
    """The same hand with other glyph variants (for tests and ambiguity)."""
    return replace(writer, variants=variants)


# --- form cells: the recogniser's training, benchmark and test material --------------


@dataclass(frozen=True)
class Cell:
    """A synthetic form cell: grayscale (ink dark on light), the text written in it,
    and the owner of each pixel's ink (index into text; -1 other ink; -2 none)."""

    gray: np.ndarray
    text: str
    owner: np.ndarray


def random_number_text(rng: np.random.Generator, max_digits: int = 5) -> str:
    """A figure as protocols carry them: mostly 1 to 4 digits, no leading zero."""
    weights = np.array([0.2, 0.25, 0.3, 0.2, 0.05, 0.0])[:max_digits]
    n = int(rng.choice(np.arange(1, max_digits + 1), p=weights / weights.sum()))
    if n == 1:
        return str(int(rng.integers(10)))
    return str(int(rng.integers(1, 10))) + "".join(
        str(int(d)) for d in rng.integers(10, size=n - 1)
    )


def number_cell(
    text: str,
    writer: Writer,
    rng: np.random.Generator,
    *,
    cell_height: int = 48,
    cell_width: int | None = None,
    border: bool = True,
    touching: bool = False,
    crossed_out: str | None = None,
    outside: bool = False,
) -> Cell:
    """``text`` handwritten in a printed form cell, scanned clean. ``outside``:
    written partly over the cell's lower or right edge. Pure."""
    width = cell_width or int(cell_height * 3.6)
    height_px = int(cell_height * rng.uniform(0.5, 0.72))
    ink = (int(rng.integers(0, 60)), int(rng.integers(0, 60)), int(rng.integers(60, 160)))
    paper = float(rng.uniform(225, 250))
    gray = np.full((cell_height, width), paper, dtype=np.float32)
    owner = np.full((cell_height, width), -2, dtype=np.int16)
    if text:
        img, own = write_number_owned(
            text, writer, rng, height_px, ink, crossed_out=crossed_out, touching=touching
        )
        if img.width > width - 4:  # squeeze a long figure into the cell, as writers do
            scale = (width - 4) / img.width
            size = (width - 4, max(1, round(img.height * scale)))
            img = img.resize(size, Image.Resampling.LANCZOS)
            own = cv2.resize(own, size, interpolation=cv2.INTER_NEAREST)
        ih, iw = own.shape
        free_x, free_y = max(0, width - iw), max(0, cell_height - ih)
        x = int(rng.uniform(0.05, 0.6) * free_x) if not outside else free_x
        y = int(rng.uniform(0.2, 0.8) * free_y) if not outside else free_y
        if outside:
            x, y = x + int(rng.integers(0, 4)), y + int(rng.integers(2, max(3, ih // 4)))
        alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255
        lum = float(np.dot(ink, [0.299, 0.587, 0.114]))
        x1, y1 = min(width, x + iw), min(cell_height, y + ih)
        a = alpha[: y1 - y, : x1 - x]
        region = gray[y:y1, x:x1]
        gray[y:y1, x:x1] = region * (1 - a) + lum * a
        o = own[: y1 - y, : x1 - x]
        owner[y:y1, x:x1] = np.where(o != -2, o, owner[y:y1, x:x1])
    if border:
        line = float(rng.uniform(20, 90))
        t = int(rng.integers(1, 3))
        gray[:t, :] = line
        gray[-t:, :] = line
        gray[:, :t] = line
        gray[:, -t:] = line
    gray += rng.normal(0, 2.0, gray.shape).astype(np.float32)
    return Cell(np.clip(gray, 0, 255).astype(np.uint8), text, owner)


def degrade_cell(
    gray: np.ndarray,
    rng: np.random.Generator,
    strength: float = 1.0,
    *,
    min_scale: float = 0.55,
    max_blur: float = 1.3,
) -> np.ndarray:
    """A cell as a phone photo gives it after alignment: low contrast, uneven light,
    blur, lower resolution, noise, JPEG, sometimes a stamp's ink across it. At full
    ``strength`` the cell is seen at down to ``min_scale`` of its resolution and
    blurred by up to ``max_blur`` pixels (sigma). Pure."""
    g: np.ndarray = gray.astype(np.float32)
    h, w = g.shape
    if rng.random() < 0.35 * strength:  # a violet stamp's ring and lettering, in gray
        cx, cy = float(rng.uniform(0, w)), float(rng.uniform(-h, 2 * h))
        r = float(rng.uniform(1.0, 2.5)) * h
        stamp = np.zeros((h, w), dtype=np.uint8)
        cv2.circle(stamp, (int(cx), int(cy)), int(r), 255, int(rng.integers(2, 5)), cv2.LINE_AA)
        cv2.circle(stamp, (int(cx), int(cy)), int(r * 0.8), 255, 1, cv2.LINE_AA)
        for _ in range(int(rng.integers(0, 6))):
            a = float(rng.uniform(0, 2 * math.pi))
            px, py = int(cx + 0.9 * r * math.cos(a)), int(cy + 0.9 * r * math.sin(a))
            cv2.putText(stamp, "A", (px, py), cv2.FONT_HERSHEY_SIMPLEX, h / 60, 255, 1, cv2.LINE_AA)
        depth = float(rng.uniform(0.2, 0.45))
        g = g * (1 - depth * stamp.astype(np.float32) / 255)
    contrast = 1.0 - float(rng.uniform(0.0, 0.6)) * strength
    paper = float(np.percentile(g, 90))
    g = paper - (paper - g) * contrast
    gx = np.linspace(-1, 1, w, dtype=np.float32)[None, :] * float(rng.normal(0, 0.12)) * strength
    gy = np.linspace(-1, 1, h, dtype=np.float32)[:, None] * float(rng.normal(0, 0.12)) * strength
    g = g * (1 + gx + gy) - float(rng.uniform(0, 50)) * strength
    scale = 1.0 - float(rng.uniform(0, 1.0 - min_scale)) * strength
    if scale < 0.97:
        size = (max(4, int(w * scale)), max(4, int(h * scale)))
        small = cv2.resize(g, size, interpolation=cv2.INTER_AREA)
        g = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    sigma = float(rng.uniform(0, max_blur)) * strength
    if sigma > 0.2:
        g = cv2.GaussianBlur(g, (0, 0), sigma)
    g += rng.normal(0, 1 + 4 * strength, g.shape).astype(np.float32)
    out = np.clip(g, 0, 255).astype(np.uint8)
    quality = int(rng.integers(35, 85))
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return np.asarray(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)) if ok else out
