"""Labelled phone photos of filled-in result protocols, deterministic from a numpy Generator.

The protocol reader's tests and benchmark need photos whose true figures are known:
the numbers are handwritten into the form's cells (``seeds.handwriting``: one
commission secretary per protocol, a pen of their own), sometimes crossed out with
the correction beside them, sometimes under the commission's stamp or a signature,
never quite centred; the page is then photographed like a ballot
(``seeds.photos.phone_photo``). Figures come from the seeded official protocols
(consistent with the form's checks), from a generator, or are deliberately broken
so that a check fails. Photos that are not protocols of the template (a ballot,
another design's protocol, a blank page, a text page) feed the ``not_a_protocol`` tests.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from PIL import Image, ImageDraw

from ocr.protocol_template import ProtocolCheck, ProtocolTemplate, check_results
from seeds.ballot import BY2020_DESIGN, render_reference
from seeds.handwriting import Writer, random_writer, write_number, writers
from seeds.photos import (
    PhotoConditions,
    _draw_stroke,
    _stamp,
    hard_conditions,
    mark_ballot,
    not_a_ballot_photo,
    paper_texture,
    phone_photo,
    random_conditions,
)
from seeds.protocol import DESIGNS, ProtocolDesign, ProtocolLayout, render_protocol
from tally.proof import Check, checks_from_template

Box = tuple[int, int, int, int]
Ink = tuple[int, int, int]
Point = tuple[float, float]
OFFICIAL_CSV = Path(__file__).parent / "by-2020" / "official.csv"

NotAProtocolKind = Literal["ballot", "other_design", "blank_page", "text"]
NOT_A_PROTOCOL_KINDS: tuple[NotAProtocolKind, ...] = get_args(NotAProtocolKind)


@dataclass(frozen=True)
class ProtocolLabels:
    """The truth about one photo."""

    kind: Literal["protocol", "not_a_protocol"]
    design: str  # the design's name (the template folder's name for a bare template)
    election: str
    precinct: str | None  # as written in the precinct box
    figures: dict[str, int]  # field id -> the true (final) number written
    checks: list[bool | None]  # per template check, on ``figures``
    corrected: dict[str, int] = field(default_factory=dict)  # field -> the struck-out number
    stamped: list[str] = field(default_factory=list)  # fields ("precinct" too) under the stamp
    signed_over: list[str] = field(default_factory=list)  # fields a signature crosses
    dashes: list[str] = field(default_factory=list)  # zero written as "-"
    writer: str = ""
    ink: str = ""  # "blue" or "black"
    precinct_id: str | None = None  # the official-results precinct, where the figures came from
    not_a_protocol: str | None = None  # for kind not_a_protocol: ballot, other_design...
    conditions: dict[str, object] = field(default_factory=dict)

    @property
    def arithmetic_ok(self) -> bool | None:
        """No check fails (a check with a missing figure does not); None for a photo
        that is not a protocol."""
        if self.kind != "protocol":
            return None
        return all(c is not False for c in self.checks)

    def to_json(self) -> str:
        data = asdict(self)
        data["arithmetic_ok"] = self.arithmetic_ok
        return json.dumps(data, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class _Form:
    """A design or a loaded template, reduced to what filling it in needs."""

    name: str
    election: str
    reference: Image.Image  # RGB
    precinct_box: Box
    boxes: dict[str, Box]
    option_ids: tuple[str, ...]
    checks: tuple[Check, ...]
    layout: ProtocolLayout | None


_FORMS: dict[str, _Form] = {}


def _as_form(design: ProtocolDesign | ProtocolTemplate | str) -> _Form:
    if isinstance(design, str):
        design = DESIGNS[design]
    if isinstance(design, ProtocolDesign):
        cached = _FORMS.get(design.name)
        if cached is None:
            image, doc, layout = render_protocol(design)
            cached = _FORMS[design.name] = _Form(
                name=design.name,
                election=design.election,
                reference=image.convert("RGB"),
                precinct_box=doc.precinct_box,
                boxes={f.id: f.box for f in doc.fields},
                option_ids=tuple(design.option_ids),
                checks=tuple(_checks(design.checks)),
                layout=layout,
            )
        return cached
    folder = design.folder.resolve()
    # seeds/by-2020/protocol is named after its election folder: "by-2020".
    name = folder.parent.name if folder.name == "protocol" else folder.name
    return _Form(
        name=name,
        election=design.document.election,
        reference=Image.fromarray(design.reference).convert("RGB"),
        precinct_box=design.document.precinct_box,
        boxes=design.boxes,
        option_ids=design.option_ids,
        checks=design.checks,
        layout=None,
    )


def _checks(checks: Sequence[ProtocolCheck]) -> list[Check]:
    return checks_from_template({"checks": [c.model_dump() for c in checks]})


# ---------------------------------------------------------------- figures


def official_figures(
    fields: Sequence[str], path: Path = OFFICIAL_CSV
) -> list[tuple[str, dict[str, int]]]:
    """(precinct_id, figures) of every official-results row with all ``fields`` known."""
    rows = []
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if all((row.get(name) or "").strip().isdigit() for name in fields):
                rows.append((row["precinct_id"], {name: int(row[name]) for name in fields}))
    return rows


def consistent_figures(
    design: ProtocolDesign | ProtocolTemplate | str, rng: np.random.Generator
) -> dict[str, int]:
    """A plausible protocol of the form's election whose every check holds."""
    form = _as_form(design)
    for _ in range(100):
        registered = int(rng.integers(150, 4000))
        issued = int(registered * rng.uniform(0.55, 0.97))
        early = int(issued * rng.uniform(0.2, 0.55))
        home = int(issued * rng.uniform(0.0, 0.06))
        cast = issued - int(rng.integers(0, 4))
        invalid = int(cast * rng.uniform(0.0, 0.04))
        weights = rng.dirichlet(np.full(len(form.option_ids), 0.8))
        votes = rng.multinomial(cast - invalid, weights)
        cancelled = int(rng.integers(20, max(21, registered - issued + 60)))
        spoiled = int(rng.integers(0, 5))
        lines = {
            "registered": registered,
            "ballots_issued": issued,
            "ballots_cast": cast,
            "invalid": invalid,
            "ballots_issued_early": early,
            "ballots_issued_home": home,
            "ballots_received": issued + cancelled + spoiled,
            "ballots_cancelled": cancelled,
        }
        lines.update({o: int(v) for o, v in zip(form.option_ids, votes, strict=True)})
        figures = {k: lines[k] for k in form.boxes}
        if all(check_results(form.checks, form.option_ids, figures)):
            return figures
    raise RuntimeError("no consistent figures found")  # pragma: no cover


def break_arithmetic(
    design: ProtocolDesign | ProtocolTemplate | str,
    figures: Mapping[str, int],
    rng: np.random.Generator,
) -> tuple[dict[str, int], str]:
    """The figures with one number changed so that at least one check fails; the field."""
    form = _as_form(design)
    names = list(figures)
    for _ in range(200):
        name = names[int(rng.integers(len(names)))]
        old = figures[name]
        delta = int(rng.choice([-1, 1])) * int(rng.choice([1, 2, 10, 100, 1 + old // 7]))
        new = old + delta
        if new < 0 or new == old:
            continue
        changed = {**figures, name: new}
        if any(c is False for c in check_results(form.checks, form.option_ids, changed)):
            return changed, name
    raise ValueError("no single change breaks a check of this form")


# ---------------------------------------------------------------- writing


def _pen(rng: np.random.Generator) -> tuple[Ink, str]:
    if rng.random() < 0.65:  # blue ballpoint
        ink = (int(rng.integers(15, 50)), int(rng.integers(30, 75)), int(rng.integers(120, 175)))
        return ink, "blue"
    g = int(rng.integers(15, 45))
    return (g, g, g + int(rng.integers(0, 10))), "black"


SIGNATURE_PENS = ("any", "same", "other")
OTHER_PEN: dict[str, Ink] = {"blue": (25, 25, 30), "black": (30, 55, 150)}


def _signature_ink(kind: str, figures: str, ink: Ink, rng: np.random.Generator) -> Ink:
    """A careless member's pen (see protocol_page's ``signature_pen``)."""
    if kind == "same":
        return ink
    if kind == "other":
        return OTHER_PEN[figures]
    return _pen(rng)[0]


def _with_pen(writer: Writer, rng: np.random.Generator) -> Writer:
    """The writer's hand with this protocol's pen: a width of its own."""
    stroke = float(np.clip(writer.stroke * rng.uniform(0.75, 1.35), 0.04, 0.14))
    return replace(writer, stroke=stroke)


def _fit(ink: Image.Image, max_w: float, max_h: float) -> Image.Image:
    scale = min(1.0, max_w / ink.width, max_h / ink.height)
    if scale >= 1.0:
        return ink
    size = (max(1, round(ink.width * scale)), max(1, round(ink.height * scale)))
    return ink.resize(size, Image.Resampling.LANCZOS)


def _paste(page: Image.Image, ink: Image.Image, x: float, y: float) -> None:
    page.paste(ink, (round(x), round(y)), ink)


def _write_in_box(
    page: Image.Image,
    box: Box,
    text: str,
    writer: Writer,
    rng: np.random.Generator,
    ink: Ink,
    crossed_out: str | None = None,
) -> None:
    """The number in the cell, a little off-centre; a crossed-out one before it."""
    x, y, w, h = box
    height = round(h * float(rng.uniform(0.48, 0.7)))
    img = write_number(text, writer, rng, height, ink, crossed_out=crossed_out)
    img = _fit(img, w * 0.94, h * 0.96)
    free_x, free_y = w - img.width, h - img.height
    # Most hands start a little left of centre; some right-align to the cell edge.
    fx = float(np.clip(rng.normal(0.45, 0.2), 0.0, 1.0))
    fy = float(np.clip(rng.normal(0.5, 0.18), 0.0, 1.0))
    _paste(page, img, x + fx * free_x, y + fy * free_y)


def _write_in_squares(
    page: Image.Image,
    box: Box,
    n: int,
    text: str,
    writer: Writer,
    rng: np.random.Generator,
    ink: Ink,
    right_aligned: bool = True,
) -> None:
    """One digit a square, right-aligned (or from the left, as some secretaries do)."""
    x, y, w, h = box
    side = w / n
    text = text[-n:]
    first = n - len(text) if right_aligned else 0
    height = round(h * float(rng.uniform(0.55, 0.75)))
    for k, char in enumerate(text):
        img = _fit(write_number(char, writer, rng, height, ink), side * 0.9, h * 0.95)
        sx = x + (first + k) * side
        fx = float(np.clip(rng.normal(0.5, 0.15), 0.0, 1.0))
        fy = float(np.clip(rng.normal(0.5, 0.15), 0.0, 1.0))
        _paste(page, img, sx + fx * (side - img.width), y + fy * (h - img.height))


def _cursive(
    x0: float, base: float, length: float, height: float, rng: np.random.Generator
) -> list[Point]:
    """Joined-up loops (a prolate cycloid with a wandering size): cursive at a glance."""
    loops = max(2, round(length / max(6.0, height * float(rng.uniform(1.0, 1.8)))))
    theta = np.linspace(0.0, 2 * np.pi * loops, 14 * loops)
    a = length / (2 * np.pi * loops)
    b = a * float(rng.uniform(1.05, 1.6))
    size = 0.6 + 0.4 * np.interp(theta, np.linspace(0, theta[-1], loops + 1), rng.random(loops + 1))
    xs = x0 + a * theta - b * np.sin(theta)
    ys = base - height * size * (1 - np.cos(theta)) / 2
    return list(zip(xs.tolist(), ys.tolist(), strict=True))


def _words_scrawl(
    draw: ImageDraw.ImageDraw, box: Box, rng: np.random.Generator, ink: Ink, pen: int
) -> None:
    """The number in words: a few cursive-looking words in the "words" cell."""
    x, y, w, h = box
    length = w * float(rng.uniform(0.45, 0.9))
    x0 = x + float(rng.uniform(0.03, 0.08)) * w
    base = y + h * float(rng.uniform(0.6, 0.72))
    height = h * float(rng.uniform(0.2, 0.32))
    words = int(rng.integers(1, 4))
    gaps = sorted(float(g) for g in rng.uniform(0.2, 0.9, words - 1))
    edges = [0.0, *gaps, 1.0]
    for a, b in itertools.pairwise(edges):
        span = (b - a - 0.06) * length
        if span < 24:  # too short to be a word (and to draw as one)
            continue
        pts = _cursive(x0 + (a + 0.03) * length, base, span, height, rng)
        _draw_stroke(draw, pts, rng, pen, ink, height * 0.06)


def _signature(
    draw: ImageDraw.ImageDraw,
    x: float,
    y: float,
    length: float,
    height: float,
    rng: np.random.Generator,
    ink: Ink,
    pen: int,
) -> Box:
    """A flourish whose baseline starts at (x, y): a capital, loops, an underline
    stroke back; its bounding box."""
    capital = [
        (x + length * 0.02, y),
        (x + length * 0.08, y - height),
        (x + length * 0.12, y - height * 0.2),
        (x + length * 0.16, y - height * 0.9),
    ]
    body = _cursive(x + length * 0.17, y, length * 0.7, height * 0.55, rng)
    end = body[-1]
    tail = [end, (end[0] + length * 0.1, y + height * 0.15), (x, y + height * 0.25)]
    pts = [*capital, *body, *tail[1:]]
    _draw_stroke(draw, pts, rng, pen, ink, height * 0.04)
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    return (
        int(min(xs)) - pen,
        int(min(ys)) - pen,
        int(max(xs) - min(xs)) + 2 * pen + 1,
        int(max(ys) - min(ys)) + 2 * pen + 1,
    )


def _circle_hits(cx: float, cy: float, r: float, box: Box) -> bool:
    x, y, w, h = box
    nx, ny = min(max(cx, x), x + w), min(max(cy, y), y + h)
    return math.hypot(nx - cx, ny - cy) < r * 0.95


def _rect_hits(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def protocol_page(
    design: ProtocolDesign | ProtocolTemplate | str,
    figures: Mapping[str, int],
    precinct: str,
    rng: np.random.Generator,
    *,
    writer: Writer | None = None,
    corrections: float = 0.03,
    stamp_over_fields: float = 0.3,
    signature_over_fields: float = 0.2,
    dash_for_zero: float = 0.1,
    signature_pen: str = "any",
) -> tuple[Image.Image, ProtocolLabels]:
    """The filled-in form (RGB, reference pixels) and its labels.

    ``corrections`` is the chance of each field being crossed out and rewritten;
    ``stamp_over_fields`` the chance the stamp lands over the cells instead of its
    place; ``signature_over_fields`` that of a signature across the cells, in a
    pen of its own (``signature_pen`` "any"), the figures' ("same") or the one
    they were not written with ("other": black for blue figures, blue for black).
    """
    if signature_pen not in SIGNATURE_PENS:
        raise ValueError(f"signature_pen must be one of {SIGNATURE_PENS}, not {signature_pen!r}")
    form = _as_form(design)
    unknown = sorted(set(figures) - set(form.boxes))
    if unknown:
        raise KeyError(f"no field {', '.join(unknown)} on the form {form.name!r}")
    if not precinct.isdigit():
        raise ValueError(f"the precinct number is written in digits, not {precinct!r}")
    page = form.reference.copy()
    draw = ImageDraw.Draw(page)
    layout = form.layout
    hand = _with_pen(writer or random_writer(rng), rng)
    ink, ink_name = _pen(rng)
    median_h = float(np.median([b[3] for b in form.boxes.values()]))
    pen = max(2, round(median_h * hand.stroke * 0.6))

    # The precinct number.
    if layout is not None and layout.precinct_digits:
        _write_in_squares(page, form.precinct_box, layout.precinct_digits, precinct, hand, rng, ink)
    else:
        _write_in_box(page, form.precinct_box, precinct, hand, rng, ink)

    corrected: dict[str, int] = {}
    dashes: list[str] = []
    squares = layout.digit_cells if layout is not None else 0
    right_aligned = bool(rng.random() < 0.75)  # one habit per secretary
    for name, value in figures.items():
        box = form.boxes[name]
        text = str(value)
        if value == 0 and rng.random() < dash_for_zero:
            text = "-"
            dashes.append(name)
        wrong: str | None = None
        if not squares and text != "-" and rng.random() < corrections:
            slip = int(rng.choice([1, 2, 9, 10, 100])) * int(rng.choice([-1, 1]))
            wrong_value = value + slip if value + slip >= 0 else value + abs(slip)
            wrong = str(wrong_value)
            corrected[name] = wrong_value
        if squares:
            _write_in_squares(page, box, squares, text, hand, rng, ink, right_aligned)
        else:
            _write_in_box(page, box, text, hand, rng, ink, crossed_out=wrong)
        if layout is not None and name in layout.words_boxes and rng.random() < 0.85:
            _words_scrawl(draw, layout.words_boxes[name], rng, ink, pen)

    # Signatures on their lines; sometimes one across the cells (a correction's
    # "corrected, believe it" signature, or a careless member).
    width, height = page.size
    spots = layout.signature_spots if layout is not None else []
    for sx, sy, length in spots:
        if rng.random() < 0.85:
            x = sx + float(rng.uniform(0.05, 0.4)) * length
            _signature(
                draw, x, sy - 2, length * float(rng.uniform(0.25, 0.45)),
                median_h * float(rng.uniform(0.5, 0.9)), rng, _pen(rng)[0], pen,
            )  # fmt: skip
    signed_over: set[str] = set()
    sigs: list[Box] = []
    for name in corrected:  # "corrected, believe it": a small signature beside the cell
        x, y, w, h = form.boxes[name]
        sigs.append(
            _signature(
                draw, x + w * float(rng.uniform(0.8, 1.0)), y + h * float(rng.uniform(0.75, 0.95)),
                w * float(rng.uniform(0.3, 0.5)), h * float(rng.uniform(0.35, 0.55)), rng, ink, pen,
            )
        )  # fmt: skip
    if rng.random() < signature_over_fields:  # a careless member's signature over the cells
        names = list(form.boxes)
        x, y, w, h = form.boxes[names[int(rng.integers(len(names)))]]
        sigs.append(
            _signature(
                draw, x + w * float(rng.uniform(-0.2, 0.6)), y + h * float(rng.uniform(0.8, 1.3)),
                w * float(rng.uniform(0.5, 0.9)), h * float(rng.uniform(0.6, 1.0)), rng,
                _signature_ink(signature_pen, ink_name, ink, rng), pen,
            )
        )  # fmt: skip
    for sig in sigs:
        signed_over |= {n for n, b in form.boxes.items() if _rect_hits(sig, b)}
        if _rect_hits(sig, form.precinct_box):
            signed_over.add("precinct")

    # The commission's stamp: on its place, or over the cells.
    radius = 0.085 * min(width, height) * float(rng.uniform(0.9, 1.15))
    if layout is not None and rng.random() >= stamp_over_fields:
        cx, cy, _r = layout.stamp_place
        centre = (
            cx + float(rng.normal(0, 0.25)) * radius,
            cy + float(rng.normal(0, 0.25)) * radius,
        )
    else:
        names = list(form.boxes)
        x, y, w, h = form.boxes[names[int(rng.integers(len(names)))]]
        centre = (x + w * float(rng.uniform(-0.3, 1.0)), y + h * float(rng.uniform(0.0, 1.0)))
    centre = (
        float(np.clip(centre[0], radius + 5, width - radius - 5)),
        float(np.clip(centre[1], radius + 5, height - radius - 5)),
    )
    before = np.asarray(page, dtype=np.int16)
    _stamp(page, centre, radius, rng)
    # Under the stamp: a cell its ink actually touches, not merely inside its circle.
    inked = np.abs(np.asarray(page, dtype=np.int16) - before).max(axis=2) > 24
    cells = [*form.boxes.items(), ("precinct", form.precinct_box)]
    stamped = [
        n
        for n, (x, y, w, h) in cells
        if _circle_hits(*centre, radius, (x, y, w, h)) and inked[y : y + h, x : x + w].sum() >= 20
    ]

    page = paper_texture(page, rng)  # the sheet's own mottle, as on the ballots
    labels = ProtocolLabels(
        kind="protocol",
        design=form.name,
        election=form.election,
        precinct=precinct,
        figures=dict(figures),
        checks=check_results(form.checks, form.option_ids, figures),
        corrected=corrected,
        stamped=stamped,
        signed_over=sorted(signed_over),
        dashes=dashes,
        writer=hand.name,
        ink=ink_name,
    )
    return page, labels


def protocol_photo(
    design: ProtocolDesign | ProtocolTemplate | str,
    figures: Mapping[str, int],
    precinct: str,
    rng: np.random.Generator,
    conditions: PhotoConditions | None = None,
    *,
    writer: Writer | None = None,
    corrections: float = 0.03,
    stamp_over_fields: float = 0.3,
    signature_over_fields: float = 0.2,
    dash_for_zero: float = 0.1,
    signature_pen: str = "any",
) -> tuple[bytes, ProtocolLabels]:
    """A phone photo (JPEG bytes) of the form filled in with ``figures``, and its labels.

    The keyword options are :func:`protocol_page`'s.
    """
    page, labels = protocol_page(
        design,
        figures,
        precinct,
        rng,
        writer=writer,
        corrections=corrections,
        stamp_over_fields=stamp_over_fields,
        signature_over_fields=signature_over_fields,
        dash_for_zero=dash_for_zero,
        signature_pen=signature_pen,
    )
    cond = conditions or random_conditions(rng)
    return phone_photo(page, rng, cond), replace(labels, conditions=asdict(cond))


# ---------------------------------------------------------------- not protocols


def _blank_page(rng: np.random.Generator) -> Image.Image:
    """An empty sheet; sometimes squared notebook paper with a few numbers on it."""
    w, h = (1240, 1754) if rng.random() < 0.7 else (1754, 1240)
    tone = int(rng.integers(238, 256))
    img = Image.new("RGB", (w, h), (tone, tone, max(0, tone - int(rng.integers(0, 8)))))
    if rng.random() < 0.5:
        draw = ImageDraw.Draw(img)
        step = int(rng.integers(36, 48))
        grid = (170, 190, 215)
        for x in range(0, w, step):
            draw.line([(x, 0), (x, h)], fill=grid, width=1)
        for y in range(0, h, step):
            draw.line([(0, y), (w, y)], fill=grid, width=1)
        hand = random_writer(rng)
        ink, _ = _pen(rng)
        for k in range(int(rng.integers(0, 6))):
            img_n = write_number(str(int(rng.integers(1, 5000))), hand, rng, step - 6, ink)
            _paste(img, img_n, float(rng.uniform(100, w - 400)), 150 + k * step * 3)
    return img


def not_a_protocol_photo(
    design: ProtocolDesign | ProtocolTemplate | str,
    rng: np.random.Generator,
    kind: NotAProtocolKind | None = None,
    conditions: PhotoConditions | None = None,
) -> tuple[bytes, ProtocolLabels]:
    """A photo that is not a protocol of ``design``'s template: a marked ballot,
    a filled protocol of another design, a blank page or a text page."""
    form = _as_form(design)
    if kind is None:
        kind = NOT_A_PROTOCOL_KINDS[int(rng.integers(len(NOT_A_PROTOCOL_KINDS)))]
    cond = conditions or random_conditions(rng)
    other: str | None = None
    if kind == "ballot":
        image, template = render_reference(BY2020_DESIGN)
        options = [o.id for o in template.options]
        marked = mark_ballot(image, template, [options[int(rng.integers(len(options)))]], rng)
        data = phone_photo(marked, rng, cond)
    elif kind == "other_design":
        others = [d for d in DESIGNS if d != form.name]
        other = others[int(rng.integers(len(others)))]
        figures = consistent_figures(other, rng)
        data, _ = protocol_photo(other, figures, str(int(rng.integers(1, 3000))), rng, cond)
    elif kind == "blank_page":
        data = phone_photo(paper_texture(_blank_page(rng), rng), rng, cond)
    else:
        data = not_a_ballot_photo(rng, "text", cond)
    labels = ProtocolLabels(
        kind="not_a_protocol",
        design=form.name,
        election=form.election,
        precinct=None,
        figures={},
        checks=[],
        not_a_protocol=kind if other is None else f"{kind}:{other}",
        conditions=asdict(cond),
    )
    return data, labels


# ---------------------------------------------------------------- labelled sets


@dataclass(frozen=True)
class Sample:
    name: str
    photo: bytes
    labels: ProtocolLabels


def precinct_number(precinct_id: str) -> str:
    """The number printed on a station's protocol: "01-010-0004" -> "4"."""
    tail = precinct_id.rsplit("-", 1)[-1]
    return str(int(tail)) if tail.isdigit() else tail


def labelled_photos(
    design: ProtocolDesign | ProtocolTemplate | str,
    n: int,
    seed: int,
    *,
    hard: bool = False,
    failing: float = 0.1,
    not_protocols: float = 0.1,
    official: Path | None = OFFICIAL_CSV,
    n_writers: int = 40,
) -> Iterator[Sample]:
    """``n`` labelled photos for a form: mostly protocols whose checks hold (from the
    official CSV where the election is the seeded one, else generated), a share with
    one number changed so that a check fails, and a share of photos that are not
    protocols of this form. Deterministic for a seed."""
    form = _as_form(design)
    rng = np.random.default_rng([seed, 0x9207])
    hands = writers(seed, n_writers)
    fields = list(form.boxes)
    rows: list[tuple[str, dict[str, int]]] = []
    if official is not None and official.is_file() and form.election == "by-2020-president":
        rows = [
            (p, f)
            for p, f in official_figures(fields, official)
            if all(check_results(form.checks, form.option_ids, f))
        ]
    for i in range(n):
        conditions = hard_conditions(rng) if hard else random_conditions(rng)
        name = f"{form.name}-{seed}-{i:05d}.jpg"
        if rng.random() < not_protocols:
            data, labels = not_a_protocol_photo(design, rng, None, conditions)
            yield Sample(name, data, labels)
            continue
        precinct_id: str | None = None
        if rows:
            precinct_id, figures = rows[int(rng.integers(len(rows)))]
            precinct = precinct_number(precinct_id)
        else:
            figures = consistent_figures(design, rng)
            precinct = str(int(rng.integers(1, 3000)))
        if rng.random() < failing:
            figures, _ = break_arithmetic(design, figures, rng)
        hand = hands[int(rng.integers(len(hands)))]
        page, labels = protocol_page(design, figures, precinct, rng, writer=hand)
        data = phone_photo(page, rng, conditions)
        yield Sample(
            name, data, replace(labels, precinct_id=precinct_id, conditions=asdict(conditions))
        )


def write_labelled_set(
    design: ProtocolDesign | ProtocolTemplate | str,
    folder: Path | str,
    n: int,
    seed: int,
    *,
    hard: bool = False,
    failing: float = 0.1,
    not_protocols: float = 0.1,
) -> Path:
    """Write the photos of :func:`labelled_photos` and a labels.jsonl beside them."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "labels.jsonl").open("w", encoding="utf-8") as out:
        for sample in labelled_photos(
            design, n, seed, hard=hard, failing=failing, not_protocols=not_protocols
        ):
            (folder / sample.name).write_bytes(sample.photo)
            out.write(json.dumps({"photo": sample.name, **json.loads(sample.labels.to_json())},
                                 ensure_ascii=False) + "\n")  # fmt: skip
    return folder


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m seeds.protocol_photos OUT [--design by-2020] [--n 40] [--seed 1] [--hard]``:
    a labelled set of photos and its template, to look at or to benchmark on."""
    import argparse

    from seeds.protocol import write_election_folder

    parser = argparse.ArgumentParser(prog="python -m seeds.protocol_photos")
    parser.add_argument("out", type=Path)
    parser.add_argument("--design", choices=sorted(DESIGNS), default="by-2020")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hard", action="store_true")
    parser.add_argument("--failing", type=float, default=0.1)
    parser.add_argument("--not-protocols", type=float, default=0.1)
    args = parser.parse_args(argv)
    template = write_election_folder(args.design, args.out / "election")
    photos = write_labelled_set(
        args.design,
        args.out / "photos",
        args.n,
        args.seed,
        hard=args.hard,
        failing=args.failing,
        not_protocols=args.not_protocols,
    )
    print(f"template {template}\nphotos and labels.jsonl in {photos}")


__all__ = [
    "NOT_A_PROTOCOL_KINDS",
    "ProtocolLabels",
    "Sample",
    "break_arithmetic",
    "consistent_figures",
    "labelled_photos",
    "not_a_protocol_photo",
    "official_figures",
    "protocol_page",
    "protocol_photo",
    "write_labelled_set",
]


if __name__ == "__main__":
    main()
