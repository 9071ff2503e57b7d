"""Renders precinct commissions' result protocols and their `protocol-template/1` folders.

One design gives both the printed form (reference.png) and the template (template.json),
so the boxes are exactly where the cells were printed. Three designs, clearly
different, feed the reader's benchmark:

- ``by-2020``: the Belarus 2020 final protocol (Russian), a ruled table with a
  "digits" cell and a "words" cell per line; committed in ``seeds/by-2020/protocol``;
- ``ru-2018``: a Russia 2018-style protocol, serif, lines numbered 1-16 with a row of
  separate digit boxes each, no table rules;
- ``by-2020-be-landscape``: the same Belarus election on a landscape form in
  Belarusian, in two columns.

Run ``python -m seeds.protocol`` to rewrite the committed folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw

from ocr.protocol_template import ProtocolCheck, ProtocolDocument, ProtocolField
from seeds.ballot import BY2020_DESIGN, _dashed_rect, _font, _wrap
from tally.proof import STANDARD_CHECKS
from tally.vocab import ProtocolLine

REFERENCE_NAME = "reference.png"
TEMPLATE_NAME = "template.json"
SEED_PROTOCOL_DIR = Path(__file__).parent / "by-2020" / "protocol"

Box = tuple[int, int, int, int]
L = ProtocolLine


@dataclass(frozen=True)
class Row:
    """One printed line of the protocol; ``field`` None is a heading without a cell."""

    number: str
    label: str
    field: str | None


@dataclass(frozen=True)
class ProtocolDesign:
    name: str
    election: str
    title_lines: list[str]
    header_keywords: list[str]
    ocr_languages: str
    precinct_caption: str  # printed before the precinct number's box
    rows: list[Row]
    option_ids: list[str]  # the election's options, in its order
    place_lines: list[str] = field(default_factory=list)  # under the precinct line
    column_headings: tuple[str, str, str, str] | None = None  # №, line, digits, words
    words_column: bool = False  # an empty cell for the number in words, beside the digits
    digit_cells: int = 0  # >0: the number goes in that many separate squares
    precinct_digits: int = 0  # >0: the precinct number too
    columns: int = 1
    split_at: int = 0  # with two columns: the first row of the right column
    signature_lines: list[str] = field(default_factory=list)
    stamp_caption: str = "М.П."
    footer_lines: list[str] = field(default_factory=list)
    width: int = 1240
    height: int = 1754
    font: str = "DejaVuSans"
    title_size: int = 40
    label_size: int = 21
    cell_width: int = 250  # the digits cell (or the row of squares)
    words_width: int = 250
    row_height: int = 64  # at least; wrapped labels make it taller
    checks: list[ProtocolCheck] = field(default_factory=list)
    rules: bool = True  # a ruled table (False: free text with dotted leaders)


@dataclass(frozen=True)
class ProtocolLayout:
    """What the photo generator needs to know beyond the template."""

    words_boxes: dict[str, Box]  # field id -> the "in words" cell beside it
    digit_cells: int
    precinct_digits: int
    signature_spots: list[tuple[int, int, int]]  # (x, y, length) of each signature line
    stamp_place: tuple[int, int, int]  # (centre x, centre y, radius)


def _checks_for(fields: list[str]) -> list[ProtocolCheck]:
    """The standard relations whose lines the form has, and issued >= early + home."""
    present = set(fields)
    checks = [
        ProtocolCheck(left=list(c.left), op=c.op, right=list(c.right))
        for c in STANDARD_CHECKS
        if all(f == "@options" or f in present for f in (*c.left, *c.right))
    ]
    if {L.BALLOTS_ISSUED, L.BALLOTS_ISSUED_EARLY, L.BALLOTS_ISSUED_HOME} <= present:
        checks.append(
            ProtocolCheck(
                left=[L.BALLOTS_ISSUED],
                op=">=",
                right=[L.BALLOTS_ISSUED_EARLY, L.BALLOTS_ISSUED_HOME],
            )
        )
    return checks


def _with_checks(design: ProtocolDesign) -> ProtocolDesign:
    fields = [r.field for r in design.rows if r.field]
    return replace(design, checks=_checks_for(fields))


BY_OPTION_LABELS = dict(BY2020_DESIGN.options)
BY_OPTIONS = [o for o, _ in BY2020_DESIGN.options]
BY_CANDIDATES = [o for o in BY_OPTIONS if o != "against_all"]

BY2020_PROTOCOL = _with_checks(
    ProtocolDesign(
        name="by-2020",
        election="by-2020-president",
        title_lines=[
            "ПРОТОКОЛ",
            "участковой комиссии об итогах голосования",
            "по выборам Президента Республики Беларусь",
            "9 августа 2020 года",
        ],
        header_keywords=["ПРОТОКОЛ", "голосования"],
        ocr_languages="rus+bel",
        precinct_caption="Участковая комиссия участка для голосования №",
        place_lines=["________________________________ область (г. Минск)"],
        column_headings=("№", "Наименование показателя", "Цифрами", "Прописью"),
        words_column=True,
        rows=[
            Row(
                "1.",
                "Число избирателей, включённых в список граждан, имеющих право "
                "участвовать в выборах",
                L.REGISTERED,
            ),
            Row("2.", "Число бюллетеней, полученных участковой комиссией", L.BALLOTS_RECEIVED),
            Row("3.", "Число избирателей, получивших бюллетени", L.BALLOTS_ISSUED),
            Row("3.1.", "в том числе для досрочного голосования", L.BALLOTS_ISSUED_EARLY),
            Row("3.2.", "в том числе для голосования по месту нахождения", L.BALLOTS_ISSUED_HOME),
            Row("4.", "Число избирателей, принявших участие в голосовании", L.BALLOTS_CAST),
            Row("5.", "Число голосов, поданных за каждого кандидата:", None),
            *[Row(f"5.{i + 1}.", BY_OPTION_LABELS[o], o) for i, o in enumerate(BY_CANDIDATES)],
            Row("6.", "Число голосов, поданных против всех кандидатов", "against_all"),
            Row("7.", "Число бюллетеней, признанных недействительными", L.INVALID),
            Row("8.", "Число погашенных (неиспользованных) бюллетеней", L.BALLOTS_CANCELLED),
        ],
        option_ids=BY_OPTIONS,
        signature_lines=[
            "Председатель комиссии",
            "Заместитель председателя",
            "Секретарь комиссии",
            "Члены комиссии",
        ],
        footer_lines=["Протокол подписан «___» августа 2020 года в ___ ч ___ мин"],
        label_size=20,
        row_height=58,
    )
)

RU_OPTIONS = [
    ("baburin", "Бабурин Сергей Николаевич"),
    ("grudinin", "Грудинин Павел Николаевич"),
    ("zhirinovsky", "Жириновский Владимир Вольфович"),
    ("putin", "Путин Владимир Владимирович"),
    ("sobchak", "Собчак Ксения Анатольевна"),
    ("suraykin", "Сурайкин Максим Александрович"),
    ("titov", "Титов Борис Юрьевич"),
    ("yavlinsky", "Явлинский Григорий Алексеевич"),
]

RU2018_PROTOCOL = _with_checks(
    ProtocolDesign(
        name="ru-2018",
        election="ru-2018-president",
        title_lines=[
            "ПРОТОКОЛ № 1",
            "участковой избирательной комиссии об итогах голосования",
            "Выборы Президента Российской Федерации",
            "18 марта 2018 года",
        ],
        header_keywords=["ПРОТОКОЛ", "избирательной"],
        ocr_languages="rus",
        precinct_caption="Избирательный участок №",
        precinct_digits=4,
        place_lines=[
            "Экземпляр № ____",
            "Участковая избирательная комиссия установила:",
        ],
        rows=[
            Row("1", "Число избирателей, внесённых в список избирателей", L.REGISTERED),
            Row("2", "Число избирательных бюллетеней, полученных УИК", L.BALLOTS_RECEIVED),
            Row("3", "Число бюллетеней, выданных досрочно", L.BALLOTS_ISSUED_EARLY),
            Row("4", "Число бюллетеней, выданных вне помещения", L.BALLOTS_ISSUED_HOME),
            Row("5", "Число бюллетеней, выданных избирателям, всего", L.BALLOTS_ISSUED),
            Row("6", "Число погашенных избирательных бюллетеней", L.BALLOTS_CANCELLED),
            Row("7", "Число бюллетеней в ящиках для голосования", L.BALLOTS_CAST),
            Row("8", "Число недействительных избирательных бюллетеней", L.INVALID),
            *[Row(str(9 + i), label, o) for i, (o, label) in enumerate(RU_OPTIONS)],
        ],
        option_ids=[o for o, _ in RU_OPTIONS],
        digit_cells=6,
        cell_width=288,
        row_height=60,
        rules=False,
        signature_lines=[
            "Председатель УИК",
            "Зам. председателя УИК",
            "Секретарь УИК",
            "Члены УИК",
        ],
        footer_lines=["Протокол подписан «___» марта 2018 года в ___ часов ___ минут"],
        font="DejaVuSerif",
        title_size=38,
        label_size=22,
    )
)

BE_OPTION_LABELS = {
    "dmitriyev": "ДЗМІТРЫЕЎ Андрэй Уладзіміравіч",
    "kanapatskaya": "КАНАПАЦКАЯ Ганна Анатольеўна",
    "lukashenko": "ЛУКАШЭНКА Аляксандр Рыгоравіч",
    "tsikhanouskaya": "ЦІХАНОЎСКАЯ Святлана Георгіеўна",
    "charachen": "ЧЭРАЧЭНЬ Сяргей Мікалаевіч",
}

BY2020_BE_LANDSCAPE_PROTOCOL = _with_checks(
    ProtocolDesign(
        name="by-2020-be-landscape",
        election="by-2020-president",
        title_lines=[
            "ПРАТАКОЛ",
            "участковай камісіі аб выніках галасавання па выбарах Прэзідэнта "
            "Рэспублікі Беларусь 9 жніўня 2020 года",
        ],
        header_keywords=["ПРАТАКОЛ", "галасавання"],
        ocr_languages="bel",
        precinct_caption="Участак для галасавання №",
        rows=[
            Row(
                "1.",
                "Колькасць выбаршчыкаў, уключаных у спіс грамадзян, якія маюць права "
                "ўдзельнічаць у выбарах",
                L.REGISTERED,
            ),
            Row("2.", "Колькасць бюлетэняў, атрыманых участковай камісіяй", L.BALLOTS_RECEIVED),
            Row("3.", "Колькасць выбаршчыкаў, якія атрымалі бюлетэні", L.BALLOTS_ISSUED),
            Row("3.1.", "у тым ліку датэрмінова", L.BALLOTS_ISSUED_EARLY),
            Row("3.2.", "у тым ліку па месцы знаходжання", L.BALLOTS_ISSUED_HOME),
            Row("4.", "Колькасць выбаршчыкаў, якія прынялі ўдзел у галасаванні", L.BALLOTS_CAST),
            Row("5.", "Колькасць галасоў, пададзеных за кандыдатаў:", None),
            *[Row(f"5.{i + 1}.", BE_OPTION_LABELS[o], o) for i, o in enumerate(BY_CANDIDATES)],
            Row("6.", "Колькасць галасоў супраць усіх кандыдатаў", "against_all"),
            Row("7.", "Колькасць бюлетэняў, прызнаных несапраўднымі", L.INVALID),
            Row("8.", "Колькасць пагашаных бюлетэняў", L.BALLOTS_CANCELLED),
        ],
        option_ids=BY_OPTIONS,
        columns=2,
        split_at=6,
        signature_lines=["Старшыня камісіі", "Сакратар камісіі"],
        stamp_caption="М.П.",
        width=1754,
        height=1240,
        title_size=36,
        label_size=20,
        cell_width=230,
        row_height=70,
    )
)

DESIGNS: dict[str, ProtocolDesign] = {
    d.name: d for d in (BY2020_PROTOCOL, RU2018_PROTOCOL, BY2020_BE_LANDSCAPE_PROTOCOL)
}
ProtocolDesignName = Literal["by-2020", "ru-2018", "by-2020-be-landscape"]

# The options of each design's election, as an election/1 folder would list them.
ELECTION_OPTIONS: dict[str, list[str]] = {d.election: d.option_ids for d in DESIGNS.values()}


def _digit_squares(draw: ImageDraw.ImageDraw, box: Box, n: int, line_w: int) -> None:
    x, y, w, h = box
    side = w / n
    for k in range(n):
        x0 = round(x + k * side)
        x1 = round(x + (k + 1) * side) - 1
        draw.rectangle((x0, y, x1, y + h - 1), outline=0, width=line_w)


def _dotted(draw: ImageDraw.ImageDraw, x0: float, x1: float, y: float, step: int) -> None:
    x = x0
    while x < x1:
        draw.ellipse((x - 1, y - 1, x + 1, y + 1), fill=0)
        x += step


def render_protocol(design: ProtocolDesign) -> tuple[Image.Image, ProtocolDocument, ProtocolLayout]:
    """Draw the upright, empty protocol form and the template describing it. Pure."""
    u = design.width / 1240 if design.width <= design.height else design.height / 1240
    img = Image.new("L", (design.width, design.height), 255)
    draw = ImageDraw.Draw(img)
    margin = round(60 * u)
    line_w = max(2, round(2 * u))
    title_font = _font(design.font, True, round(design.title_size * u))
    sub_font = _font(design.font, False, round(design.title_size * 0.62 * u))
    label_font = _font(design.font, False, round(design.label_size * u))
    bold_label = _font(design.font, True, round(design.label_size * u))
    small = _font(design.font, False, round(design.label_size * 0.8 * u))
    text_w = design.width - 2 * margin
    y = margin

    for i, text in enumerate(design.title_lines):
        font = title_font if i == 0 else sub_font
        for line in _wrap(text, font, text_w) if i else [text]:
            draw.text((design.width / 2, y), line, font=font, fill=0, anchor="ma")
            y += round(font.size * 1.3)
    y += round(20 * u)

    # The precinct number: a caption, then a box (or a row of squares).
    pbox_h = round(62 * u)
    pbox_w = (
        round(220 * u) if not design.precinct_digits else round(52 * u) * design.precinct_digits
    )
    caption_w = bold_label.getlength(design.precinct_caption)
    px = round(min(design.width - margin - pbox_w, margin + caption_w + 20 * u))
    draw.text(
        (margin, y + pbox_h / 2), design.precinct_caption, font=bold_label, fill=0, anchor="lm"
    )
    precinct_box: Box = (px, y, pbox_w, pbox_h)
    if design.precinct_digits:
        _digit_squares(draw, precinct_box, design.precinct_digits, line_w)
    else:
        draw.rectangle((px, y, px + pbox_w - 1, y + pbox_h - 1), outline=0, width=line_w)
    y += pbox_h + round(16 * u)
    for text in design.place_lines:
        draw.text((margin, y), text, font=label_font, fill=0)
        y += round(label_font.size * 1.5)
    y += round(10 * u)

    # The table, in one or two columns.
    gap = round(40 * u)
    col_w = (design.width - 2 * margin - (design.columns - 1) * gap) / design.columns
    cell_w = round(design.cell_width * u)
    words_w = round(design.words_width * u) if design.words_column else 0
    num_w = round(62 * u)
    pad = round(10 * u)
    if design.columns == 2:
        chunks = [design.rows[: design.split_at], design.rows[design.split_at :]]
    else:
        chunks = [design.rows]
    fields: list[ProtocolField] = []
    words_boxes: dict[str, Box] = {}
    table_top = y
    bottom = y
    for c, chunk in enumerate(chunks):
        left = round(margin + c * (col_w + gap))
        right = round(left + col_w)
        label_x = left + num_w
        cell_x = right - words_w - cell_w
        label_w = cell_x - label_x - 2 * pad
        y = table_top
        if design.column_headings and design.rules:
            head_h = round(44 * u)
            draw.rectangle((left, y, right, y + head_h), outline=0, width=line_w)
            heads = design.column_headings
            xs = [left, label_x, cell_x, cell_x + cell_w, right]
            for k, text in enumerate(heads):
                if k == 3 and not design.words_column:
                    continue
                if k:
                    draw.line([(xs[k], y), (xs[k], y + head_h)], fill=0, width=line_w)
                draw.text(
                    ((xs[k] + xs[k + 1]) / 2, y + head_h / 2), text, font=small, fill=0, anchor="mm"
                )
            y += head_h
        for row in chunk:
            font = bold_label if row.field is None or row.field in design.option_ids else label_font
            lines = _wrap(row.label, font, label_w)
            line_h = round(font.size * 1.25)
            row_h = max(round(design.row_height * u), len(lines) * line_h + 2 * pad)
            ty = y + (row_h - len(lines) * line_h) / 2
            draw.text((left + pad, ty), row.number, font=label_font, fill=0)
            for line in lines:
                draw.text((label_x + pad, ty), line, font=font, fill=0)
                ty += line_h
            if row.field is not None:
                if design.digit_cells:
                    side = min(round(cell_w / design.digit_cells), row_h - 2 * pad)
                    bw = side * design.digit_cells
                    box = (right - bw, y + (row_h - side) // 2, bw, side)
                    _digit_squares(draw, box, design.digit_cells, line_w)
                    last = font.getlength(lines[-1]) if lines else 0.0
                    _dotted(
                        draw,
                        label_x + pad + last + 8 * u,
                        right - bw - 10 * u,
                        ty - line_h * 0.3,
                        round(9 * u),
                    )
                else:
                    inset = line_w + 1
                    box = (cell_x + inset, y + inset, cell_w - 2 * inset, row_h - 2 * inset)
                    if design.words_column:
                        words_boxes[row.field] = (
                            cell_x + cell_w + inset,
                            y + inset,
                            words_w - 2 * inset,
                            row_h - 2 * inset,
                        )
                fields.append(
                    ProtocolField(id=row.field, label=f"{row.number} {row.label}", box=box)
                )
            if design.rules:
                draw.rectangle((left, y, right, y + row_h), outline=0, width=line_w)
                for x in (label_x, cell_x, cell_x + cell_w):
                    if x < right and (row.field is not None or x == label_x):
                        draw.line([(x, y), (x, y + row_h)], fill=0, width=line_w)
            y += row_h
        bottom = max(bottom, y)
    y = bottom + round(30 * u)

    # Signatures, with the stamp's place beside them.
    sig_font = label_font
    stamp_r = round(95 * u)
    stamp_cx = design.width - margin - stamp_r - round(20 * u)
    sig_spots: list[tuple[int, int, int]] = []
    sig_h = round(sig_font.size * 2.4)
    stamp_cy = y + stamp_r
    for text in design.signature_lines:
        draw.text((margin, y + sig_h - 6 * u), text, font=sig_font, fill=0, anchor="ls")
        x0 = round(margin + 330 * u)
        x1 = round(stamp_cx - stamp_r - 60 * u)
        draw.line([(x0, y + sig_h), (x1, y + sig_h)], fill=0, width=1)
        draw.text(
            ((x0 + x1) / 2, y + sig_h + 2 * u),
            "(подпись, фамилия, инициалы)"
            if design.ocr_languages != "bel"
            else "(подпіс, прозвішча, ініцыялы)",
            font=_font(design.font, False, round(13 * u)),
            fill=0,
            anchor="ma",
        )
        sig_spots.append((x0, round(y + sig_h), x1 - x0))
        y += sig_h + round(12 * u)
    _dashed_rect(
        draw,
        (stamp_cx - stamp_r, stamp_cy - stamp_r, stamp_cx + stamp_r, stamp_cy + stamp_r),
        round(8 * u),
        1,
    )
    draw.text((stamp_cx, stamp_cy), design.stamp_caption, font=label_font, fill=0, anchor="mm")
    y = max(y, stamp_cy + stamp_r) + round(16 * u)
    for text in design.footer_lines:
        draw.text((margin, y), text, font=small, fill=0)
        y += round(small.size * 1.4)
    if y > design.height - margin // 3:
        raise ValueError(f"design {design.name!r} does not fit on {design.width}x{design.height}")

    document = ProtocolDocument(
        format="protocol-template/1",
        election=design.election,
        reference_image=REFERENCE_NAME,
        ocr_languages=design.ocr_languages,
        header_keywords=list(design.header_keywords),
        precinct_box=precinct_box,
        fields=fields,
        checks=list(design.checks),
    )
    layout = ProtocolLayout(
        words_boxes=words_boxes,
        digit_cells=design.digit_cells,
        precinct_digits=design.precinct_digits,
        signature_spots=sig_spots,
        stamp_place=(stamp_cx, stamp_cy, stamp_r),
    )
    return img, document, layout


def write_protocol_template(design: ProtocolDesign | str, folder: Path | str) -> ProtocolDocument:
    """Write template.json and reference.png of a design (or its name) into ``folder``."""
    if isinstance(design, str):
        design = DESIGNS[design]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    image, document, _ = render_protocol(design)
    image.save(folder / REFERENCE_NAME, format="PNG", optimize=False)
    (folder / TEMPLATE_NAME).write_text(document.to_json(), encoding="utf-8")
    return document


def write_election_folder(design: ProtocolDesign | str, folder: Path | str) -> Path:
    """A minimal election folder around a design's template: election.json and
    protocol/, so the template loads with its election's options. Returns protocol/."""
    import json

    if isinstance(design, str):
        design = DESIGNS[design]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    election = {
        "format": "election/1",
        "id": design.election,
        "name": design.election,
        "options": [{"id": o, "label": o} for o in design.option_ids],
    }
    (folder / "election.json").write_text(json.dumps(election, indent=2) + "\n", "utf-8")
    write_protocol_template(design, folder / "protocol")
    return folder / "protocol"


__all__ = [
    "BY2020_BE_LANDSCAPE_PROTOCOL",
    "BY2020_PROTOCOL",
    "DESIGNS",
    "RU2018_PROTOCOL",
    "ProtocolDesign",
    "ProtocolLayout",
    "Row",
    "render_protocol",
    "write_protocol_template",
]

if __name__ == "__main__":
    write_protocol_template(BY2020_PROTOCOL, SEED_PROTOCOL_DIR)
    print(f"wrote {SEED_PROTOCOL_DIR}")
