"""Renders paper ballots and their `ballot-template/1` folders.

The demo needs ballots it can print into synthetic photos and templates the
reader can load; drawing both from one design guarantees the template's box
coordinates are exactly where the squares were printed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import matplotlib
from PIL import Image, ImageDraw, ImageFont

from ocr.template import BallotTemplate, TemplateOption

REFERENCE_NAME = "reference.png"
TEMPLATE_NAME = "template.json"


@dataclass(frozen=True)
class BallotDesign:
    election: str
    title_lines: list[str]
    header_keywords: list[str]
    ocr_languages: str
    options: list[tuple[str, str]]  # (option id, label as printed)
    max_marks: int = 1
    width: int = 1240
    height: int = 1754
    font: str = "DejaVuSans"  # a matplotlib-bundled family: DejaVuSans, -Serif or -SansMono
    details: list[str] = field(default_factory=list)  # small print under each option
    instructions: list[str] = field(default_factory=list)
    footer_lines: list[str] = field(default_factory=list)
    stamp_caption: list[str] = field(default_factory=list)  # empty: no stamp place
    box_size: int = 64  # side of the mark square, pixels at `width`
    box_side: Literal["left", "right"] = "right"
    columns: int = 1  # side-by-side tables the options are split into
    title_size: int = 46  # pixels at width 1240; everything scales with the width
    label_size: int = 32
    small_size: int = 19
    # Printed lines for the commission members' signatures, beside the stamp place
    # in the header (only with a stamp place); each is a caption over a rule.
    signature_lines: list[str] = field(default_factory=list)


BY2020_DESIGN = BallotDesign(
    election="by-2020-president",
    title_lines=[
        "ИЗБИРАТЕЛЬНЫЙ БЮЛЛЕТЕНЬ",
        "для голосования по выборам Президента",
        "Республики Беларусь 9 августа 2020 года",
    ],
    header_keywords=["БЮЛЛЕТЕНЬ", "Президента"],
    ocr_languages="rus+bel",
    options=[
        ("dmitriyev", "ДМИТРИЕВ Андрей Владимирович"),
        ("kanapatskaya", "КАНОПАЦКАЯ Анна Анатольевна"),
        ("lukashenko", "ЛУКАШЕНКО Александр Григорьевич"),
        ("tsikhanouskaya", "ТИХАНОВСКАЯ Светлана Георгиевна"),
        ("charachen", "ЧЕРЕЧЕНЬ Сергей Николаевич"),
        ("against_all", "ПРОТИВ ВСЕХ"),
    ],
    details=[
        "1980 года рождения, сопредседатель республиканского общественного "
        "объединения, проживает в г. Минске",
        "1976 года рождения, индивидуальный предприниматель, проживает в г. Минске",
        "1954 года рождения, Президент Республики Беларусь, проживает в г. Минске",
        "1982 года рождения, временно не работает, проживает в г. Минске",
        "1971 года рождения, председатель политической партии, проживает в г. Минске",
        "",
    ],
    instructions=[
        "РАЗЪЯСНЕНИЕ ПОРЯДКА ЗАПОЛНЕНИЯ ИЗБИРАТЕЛЬНОГО БЮЛЛЕТЕНЯ",
        "Поставьте любой знак в квадрате справа от фамилии кандидата, за которого вы "
        "голосуете, или в квадрате справа от строки «Против всех». Избирательный "
        "бюллетень, в котором знаки проставлены более чем в одном квадрате либо не "
        "проставлены ни в одном из них, считается недействительным.",
    ],
    footer_lines=["Избирательный бюллетень без печати участковой комиссии недействителен."],
    stamp_caption=["Место для печати", "участковой комиссии", "", "Подписи членов", "комиссии"],
)

# A second, deliberately different design (language, font, page size, box size
# and side): it proves nothing in the reader is tuned to the Belarus ballot.
REFERENDUM_DESIGN = BallotDesign(
    election="demo-2024-referendum",
    title_lines=["OFFICIAL REFERENDUM BALLOT", "Referendum on the new Constitution", "of 3 March"],
    header_keywords=["REFERENDUM", "Constitution"],
    ocr_languages="eng",
    options=[
        ("yes", "YES, I approve the new Constitution"),
        ("no", "NO, I do not approve it"),
        ("abstain", "I ABSTAIN"),
    ],
    details=[
        "The draft adopted by the Assembly becomes the Constitution.",
        "The current Constitution remains in force.",
        "",
    ],
    instructions=["Mark ONE square with a cross or a tick. Do not write anything else."],
    footer_lines=["Ballots with marks in more than one square are void."],
    width=1000,
    height=1300,
    font="DejaVuSerif",
    box_size=80,
    box_side="left",
    title_size=52,
    label_size=34,
    small_size=22,
)


# A Belarusian-language parliamentary ballot: a wider page, twelve candidates in
# two side-by-side tables, small boxes on the right.
BY_PARLIAMENT_DESIGN = BallotDesign(
    election="by-2024-parliament-district-97",
    title_lines=[
        "ВЫБАРЧЫ БЮЛЕТЭНЬ",
        "для галасавання па выбарах дэпутатаў Палаты прадстаўнікоў",
        "Нацыянальнага сходу Рэспублікі Беларусь",
    ],
    header_keywords=["БЮЛЕТЭНЬ", "прадстаўнікоў"],
    ocr_languages="bel",
    options=[
        ("aliakseyeu", "АЛЯКСЕЕЎ Павел Іванавіч"),
        ("bahdanava", "БАГДАНАВА Вольга Сяргееўна"),
        ("vasilevich", "ВАСІЛЕВІЧ Андрэй Мікалаевіч"),
        ("hrynevich", "ГРЫНЕВІЧ Таццяна Пятроўна"),
        ("dubouski", "ДУБОЎСКІ Ігар Уладзіміравіч"),
        ("zhuk", "ЖУК Наталля Аляксандраўна"),
        ("kavaliou", "КАВАЛЁЎ Дзмітрый Васільевіч"),
        ("lapitskaya", "ЛАПІЦКАЯ Ірына Міхайлаўна"),
        ("marozau", "МАРОЗАЎ Сяргей Віктаравіч"),
        ("novik", "НОВІК Алена Генадзьеўна"),
        ("savitski", "САВІЦКІ Юрый Анатольевіч"),
        ("tsikhanovich", "ЦІХАНОВІЧ Максім Юр'евіч"),
    ],
    instructions=[
        "ТЛУМАЧЭННЕ ПАРАДКУ ЗАПАЎНЕННЯ ВЫБАРЧАГА БЮЛЕТЭНЯ",
        "Пастаўце любы знак у квадраце справа ад прозвішча кандыдата, за якога вы "
        "галасуеце. Бюлетэнь, у якім знакі пастаўлены больш чым у адным квадраце, "
        "лічыцца несапраўдным.",
    ],
    footer_lines=["Выбарчы бюлетэнь без пячаткі ўчастковай камісіі несапраўдны."],
    stamp_caption=["Месца для пячаткі", "участковай камісіі"],
    width=1400,
    height=1800,
    box_size=48,
    title_size=40,
    label_size=21,
    small_size=17,
    columns=2,
)

# A multi-choice municipal ballot: up to three marks, a monospaced font, boxes on
# the left, a narrower page and eight options with a line of small print each.
MUNICIPAL_DESIGN = BallotDesign(
    election="demo-2025-city-council",
    title_lines=[
        "МУНИЦИПАЛЬНЫЕ ВЫБОРЫ",
        "бюллетень для голосования по выборам",
        "депутатов городского Совета (три мандата)",
    ],
    header_keywords=["МУНИЦИПАЛЬНЫЕ", "Совета"],
    ocr_languages="rus",
    options=[
        ("orlova", "ОРЛОВА Мария Петровна"),
        ("petrenko", "ПЕТРЕНКО Олег Иванович"),
        ("rybakov", "РЫБАКОВ Илья Сергеевич"),
        ("semenova", "СЕМЁНОВА Анна Юрьевна"),
        ("titov", "ТИТОВ Роман Андреевич"),
        ("ushakova", "УШАКОВА Елена Викторовна"),
        ("fomin", "ФОМИН Артём Олегович"),
        ("khromova", "ХРОМОВА Дарья Ильинична"),
    ],
    details=[
        "выдвинута инициативной группой, учитель",
        "выдвинут партией, инженер",
        "самовыдвижение, врач",
        "выдвинута партией, юрист",
        "самовыдвижение, предприниматель",
        "выдвинута инициативной группой, библиотекарь",
        "выдвинут партией, водитель",
        "самовыдвижение, архитектор",
    ],
    instructions=[
        "Поставьте знак не более чем в ТРЁХ квадратах слева от фамилий кандидатов.",
    ],
    footer_lines=["Бюллетень с отметками более чем в трёх квадратах недействителен."],
    max_marks=3,
    width=1100,
    height=1600,
    font="DejaVuSansMono",
    box_size=56,
    box_side="left",
    title_size=44,
    label_size=30,
    small_size=20,
)


# ---- Designs added for issue 12 (unlike the four above). seeds/evalset.py says
# which ones the reader was tuned on and which are held out of tuning.

# Fifteen parties in a three-column grid (a party-list vote): small boxes on the
# right of short labels, a stamp place in the header.
PARTY_GRID_DESIGN = BallotDesign(
    election="demo-2026-party-list",
    title_lines=[
        "ИЗБИРАТЕЛЬНЫЙ БЮЛЛЕТЕНЬ",
        "для голосования по единому избирательному округу",
        "за списки кандидатов политических партий",
    ],
    header_keywords=["БЮЛЛЕТЕНЬ", "партий"],
    ocr_languages="rus",
    options=[
        (f"party_{k:02d}", name)
        for k, name in enumerate(
            [
                "ЗЕЛЁНЫЕ",
                "АГРАРНАЯ",
                "ЛИБЕРАЛЫ",
                "РЕСПУБЛИКА",
                "СОЮЗ ТРУДА",
                "НАРОДНАЯ",
                "ЦЕНТР",
                "ПРАВО",
                "ЕДИНСТВО",
                "СВОБОДА",
                "РАЗВИТИЕ",
                "ГРОМАДА",
                "ОТЕЧЕСТВО",
                "ПРОГРЕСС",
                "РОДИНА",
            ],
            start=1,
        )
    ],
    details=[f"Список № {k}" for k in range(1, 16)],
    instructions=["Поставьте знак в квадрате справа от названия ОДНОЙ партии."],
    footer_lines=["Бюллетень без печати участковой комиссии недействителен."],
    stamp_caption=["Место для печати"],
    box_size=46,
    columns=3,
    title_size=44,
    label_size=24,
    small_size=18,
)

# A long single-column list: sixteen candidates, small boxes on the LEFT, tight rows.
LONG_LIST_DESIGN = BallotDesign(
    election="demo-2026-regional-assembly",
    title_lines=[
        "ВЫБАРЧЫ БЮЛЕТЭНЬ",
        "па выбарах дэпутатаў абласнога Савета",
    ],
    header_keywords=["БЮЛЕТЭНЬ", "Савета"],
    ocr_languages="bel",
    options=[
        (f"cand_{k:02d}", name)
        for k, name in enumerate(
            [
                "АДАМОВІЧ Ігар Пятровіч",
                "БЕЛАЯ Святлана Іванаўна",
                "ВОЎК Андрэй Сяргеевіч",
                "ГАЎРЫЛАВА Наталля Пятроўна",
                "ДАВЫДЗЕНКА Алег Мікалаевіч",
                "ЕРМАКОВІЧ Таццяна Віктараўна",
                "ЖДАНОВІЧ Віктар Іванавіч",
                "ЗАЙЦАВА Алена Уладзіміраўна",
                "КАРПОВІЧ Дзмітрый Андрэевіч",
                "ЛЯВОНЧЫК Марына Сяргееўна",
                "МАЦКЕВІЧ Павел Паўлавіч",
                "НАВІЦКАЯ Вольга Юр'еўна",
                "ПАШКЕВІЧ Уладзімір Аляксеевіч",
                "РАМАНЮК Ірына Міхайлаўна",
                "СІДАРЭНКА Кірыл Пятровіч",
                "ШЭВЕЛЬ Ганна Ігараўна",
            ],
            start=1,
        )
    ],
    instructions=["Пастаўце знак у квадраце злева ад прозвішча аднаго кандыдата."],
    footer_lines=["Бюлетэнь, у якім знакі пастаўлены больш чым у адным квадраце, несапраўдны."],
    box_size=38,
    box_side="left",
    title_size=42,
    label_size=24,
    small_size=18,
)

# Held out. The issue's own example: a two-column, nine-party council ballot whose
# header carries the stamp place and two signature rules (stamped and signed).
COUNCIL_DESIGN = BallotDesign(
    election="demo-2026-district-council",
    title_lines=[
        "БЮЛЛЕТЕНЬ ДЛЯ ГОЛОСОВАНИЯ",
        "по выборам в районный Совет депутатов",
    ],
    header_keywords=["БЮЛЛЕТЕНЬ", "районный"],
    ocr_languages="rus",
    options=[
        ("blue", "СИНЯЯ ПАРТИЯ"),
        ("green", "ЗЕЛЁНАЯ ПАРТИЯ"),
        ("workers", "ПАРТИЯ ТРУДА"),
        ("farmers", "КРЕСТЬЯНСКИЙ СОЮЗ"),
        ("youth", "МОЛОДЁЖНЫЙ БЛОК"),
        ("citizens", "ГРАЖДАНСКАЯ СИЛА"),
        ("pensioners", "ПАРТИЯ ПЕНСИОНЕРОВ"),
        ("social", "СОЦИАЛЬНЫЙ ФРОНТ"),
        ("unity", "ЕДИНЫЙ ГОРОД"),
    ],
    details=[
        "Список № 1, 24 кандидата",
        "Список № 2, 18 кандидатов",
        "Список № 3, 21 кандидат",
        "Список № 4, 12 кандидатов",
        "Список № 5, 9 кандидатов",
        "Список № 6, 15 кандидатов",
        "Список № 7, 11 кандидатов",
        "Список № 8, 7 кандидатов",
        "Список № 9, 10 кандидатов",
    ],
    instructions=["Отметьте квадрат справа от названия одной партии любым знаком."],
    footer_lines=["Бюллетень без печати и двух подписей членов комиссии недействителен."],
    stamp_caption=["М. П."],
    signature_lines=["Подпись члена комиссии", "Подпись члена комиссии"],
    width=1240,
    height=1754,
    font="DejaVuSerif",
    box_size=58,
    columns=2,
    title_size=46,
    label_size=26,
    small_size=19,
)

# Held out. A bilingual header (Belarusian, then Russian), boxes on the left, a
# stamp place and one signature rule in the header.
BILINGUAL_DESIGN = BallotDesign(
    election="demo-2026-local-referendum",
    title_lines=[
        "БЮЛЕТЭНЬ ДЛЯ ГАЛАСАВАННЯ",
        "на мясцовым рэферэндуме",
        "БЮЛЛЕТЕНЬ ДЛЯ ГОЛОСОВАНИЯ",
        "на местном референдуме",
    ],
    header_keywords=["БЮЛЕТЭНЬ", "референдуме"],
    ocr_languages="bel+rus",
    options=[
        ("park", "ЗА / ЗА: новы парк — новый парк"),
        ("stadium", "ЗА / ЗА: стадыён — стадион"),
        ("library", "ЗА / ЗА: бібліятэка — библиотека"),
        ("market", "ЗА / ЗА: рынак — рынок"),
        ("none", "СУПРАЦЬ УСІХ / ПРОТИВ ВСЕХ"),
    ],
    instructions=[
        "Пастаўце знак у адным квадраце. Поставьте знак в одном квадрате.",
    ],
    footer_lines=["Бюлетэнь без пячаткі несапраўдны. Бюллетень без печати недействителен."],
    stamp_caption=["Месца для пячаткі", "Место для печати"],
    signature_lines=["Подпіс / Подпись"],
    width=1100,
    height=1500,
    box_size=60,
    box_side="left",
    title_size=44,
    label_size=28,
    small_size=19,
)

# Held out. A landscape form: two tables of five candidates, boxes on the left,
# stamp place and two signature rules across the top.
LANDSCAPE_DESIGN = BallotDesign(
    election="demo-2026-mayor",
    title_lines=["ИЗБИРАТЕЛЬНЫЙ БЮЛЛЕТЕНЬ", "по выборам мэра города"],
    header_keywords=["БЮЛЛЕТЕНЬ", "мэра"],
    ocr_languages="rus",
    options=[
        ("antonov", "АНТОНОВ Пётр Ильич"),
        ("belova", "БЕЛОВА Ирина Олеговна"),
        ("volkov", "ВОЛКОВ Денис Сергеевич"),
        ("gromova", "ГРОМОВА Юлия Павловна"),
        ("demin", "ДЁМИН Кирилл Андреевич"),
        ("egorova", "ЕГОРОВА Анна Ивановна"),
        ("zaitsev", "ЗАЙЦЕВ Максим Олегович"),
        ("ivanova", "ИВАНОВА Ольга Петровна"),
        ("klimov", "КЛИМОВ Артур Витальевич"),
        ("lebedeva", "ЛЕБЕДЕВА Вера Николаевна"),
    ],
    footer_lines=[
        "Поставьте любой знак в квадрате слева от фамилии одного кандидата. "
        "Бюллетень без печати и подписей недействителен."
    ],
    stamp_caption=["Место для печати"],
    signature_lines=["Подпись", "Подпись"],
    width=1754,
    height=1320,
    font="DejaVuSansMono",
    box_size=40,
    box_side="left",
    columns=2,
    title_size=32,
    label_size=19,
    small_size=14,
)


@lru_cache(maxsize=32)
def _font(family: str, bold: bool, size: int) -> ImageFont.FreeTypeFont:
    name = f"{family}-Bold.ttf" if bold else f"{family}.ttf"
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
    return ImageFont.truetype(str(path), size)


def _wrap(text: str, font: ImageFont.FreeTypeFont, max_width: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and font.getlength(candidate) > max_width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def _split_label(label: str) -> tuple[str, str]:
    """Leading upper-case words print in bold, like the surname on a real ballot."""
    words = label.split()
    n = 0
    while n < len(words) and words[n].isupper():
        n += 1
    n = n or 1
    return " ".join(words[:n]), " ".join(words[n:])


def _dashed_rect(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], dash: int, width: int
) -> None:
    x0, y0, x1, y1 = box
    for x in range(x0, x1, dash * 2):
        draw.line([(x, y0), (min(x + dash, x1), y0)], fill=0, width=width)
        draw.line([(x, y1), (min(x + dash, x1), y1)], fill=0, width=width)
    for y in range(y0, y1, dash * 2):
        draw.line([(x0, y), (x0, min(y + dash, y1))], fill=0, width=width)
        draw.line([(x1, y), (x1, min(y + dash, y1))], fill=0, width=width)


@dataclass(frozen=True)
class CommissionPlaces:
    """Where the commission stamps and signs a ballot: the stamp place (x0, y0, x1,
    y1) and the signature rules (x0, y, x1), reference pixels."""

    stamp: tuple[int, int, int, int] | None
    signatures: list[tuple[int, int, int]]


def commission_places(design: BallotDesign) -> CommissionPlaces:
    """The header's stamp place and signature rules of a design. Pure."""
    if not design.stamp_caption:
        return CommissionPlaces(None, [])
    u = design.width / 1240
    margin = round(70 * u)
    stamp_w, stamp_h = round(300 * u), round(190 * u)
    sx = design.width - margin - stamp_w if design.box_side == "left" else margin
    stamp = (sx, margin, sx + stamp_w, margin + stamp_h)
    lines: list[tuple[int, int, int]] = []
    n = len(design.signature_lines)
    if n:
        rule_w = round(360 * u)
        lx0 = margin if design.box_side == "left" else design.width - margin - rule_w
        step = stamp_h / n
        for k in range(n):
            lines.append((lx0, round(margin + (k + 1) * step - 6 * u), lx0 + rule_w))
    return CommissionPlaces(stamp, lines)


def render_reference(design: BallotDesign) -> tuple[Image.Image, BallotTemplate]:
    """Draw the upright, unmarked ballot and the template describing it."""
    if design.details and len(design.details) != len(design.options):
        raise ValueError("details must have one entry per option (or be empty)")
    u = design.width / 1240  # every size below is given for a 1240-px-wide page
    img = Image.new("L", (design.width, design.height), 255)
    draw = ImageDraw.Draw(img)
    margin = round(70 * u)
    line_w = max(2, round(3 * u))
    title_font = _font(design.font, True, round(design.title_size * u))
    sub_font = _font(design.font, False, round(design.title_size * 0.7 * u))
    label_bold = _font(design.font, True, round(design.label_size * u))
    label_regular = _font(design.font, False, round(design.label_size * u))
    small = _font(design.font, False, round(design.small_size * u))
    small_bold = _font(design.font, True, round(design.small_size * u))
    y = margin

    if design.stamp_caption:
        places = commission_places(design)
        assert places.stamp is not None
        sx, _, _, sy1 = places.stamp
        _dashed_rect(draw, places.stamp, round(10 * u), max(1, line_w - 1))
        ty = y + round(14 * u)
        for text in design.stamp_caption:
            if text:
                draw.text((sx + round(16 * u), ty), text, font=small, fill=0)
            ty += round(small.size * 1.3)
        for text, (lx0, ly, lx1) in zip(design.signature_lines, places.signatures, strict=True):
            draw.text((lx0, ly - round(small.size * 1.4)), text, font=small, fill=0)
            draw.line([(lx0, ly), (lx1, ly)], fill=0, width=max(1, line_w - 1))
        y = sy1 + round(30 * u)

    for i, text in enumerate(design.title_lines):
        font = title_font if i == 0 else sub_font
        draw.text((design.width / 2, y), text, font=font, fill=0, anchor="ma")
        y += round(font.size * 1.3)
    y += round(24 * u)

    if design.instructions:
        text_w = design.width - 2 * margin - round(40 * u)
        top = y
        y += round(16 * u)
        for i, paragraph in enumerate(design.instructions):
            font = small_bold if i == 0 else small
            for line in _wrap(paragraph, font, text_w):
                draw.text((margin + round(20 * u), y), line, font=font, fill=0)
                y += round(small.size * 1.3)
        y += round(12 * u)
        draw.rectangle((margin, top, design.width - margin, y), outline=0, width=line_w - 1)
        y += round(40 * u)

    box = round(design.box_size * u)
    box_col = box + round(70 * u)  # width of the column holding the squares
    inner_pad = round(24 * u)
    # The options run down `columns` side-by-side tables, each split evenly.
    gap = round(40 * u)
    table_w = (design.width - 2 * margin - (design.columns - 1) * gap) / design.columns
    per_column = -(-len(design.options) // design.columns)
    text_w = round(table_w) - box_col - 2 * inner_pad

    # Rows get their natural height, then share the free page down to the footer
    # (up to half as tall again), so the table sits like a printed one.
    rows = []
    for i, (option_id, label) in enumerate(design.options):
        detail = design.details[i] if design.details else ""
        detail_lines = _wrap(detail, small, text_w) if detail else []
        text_h = label_bold.size * 1.25 + len(detail_lines) * small.size * 1.3
        rows.append((option_id, label, detail_lines, text_h, max(box, text_h) + 2 * inner_pad))
    footer_h = sum(
        len(_wrap(t, small, design.width - 2 * margin)) * round(small.size * 1.3)
        for t in design.footer_lines
    )
    chunks = [rows[k : k + per_column] for k in range(0, len(rows), per_column)]
    natural = max(sum(r[4] for r in chunk) for chunk in chunks)
    free = design.height - margin - footer_h - round(30 * u) - y - natural
    stretch = max(0.0, min(free, 0.5 * natural)) / per_column

    options: list[TemplateOption] = []
    table_top = y
    bottom = y
    for c, chunk in enumerate(chunks):
        left = margin + round(c * (table_w + gap))
        right = design.width - margin if c == len(chunks) - 1 else round(left + table_w)
        if design.box_side == "right":
            text_x0 = left + inner_pad
            col_x = right - box_col
            box_x = right - box_col + (box_col - box) // 2
        else:
            text_x0 = left + box_col + inner_pad
            col_x = left + box_col
            box_x = left + (box_col - box) // 2
        y = table_top
        draw.line([(left, y), (right, y)], fill=0, width=line_w)
        for option_id, label, detail_lines, text_h, natural_h in chunk:
            bold, regular = _split_label(label)
            row_h = round(natural_h + stretch)
            text_y = y + (row_h - text_h) / 2
            draw.text((text_x0, text_y), bold, font=label_bold, fill=0)
            if regular:
                bx = text_x0 + label_bold.getlength(bold + " ")
                draw.text((bx, text_y), regular, font=label_regular, fill=0)
            text_y += label_bold.size * 1.25
            for line in detail_lines:
                draw.text((text_x0, text_y), line, font=small, fill=0)
                text_y += small.size * 1.3
            box_y = y + (row_h - box) // 2
            draw.rectangle(
                (box_x, box_y, box_x + box - 1, box_y + box - 1), outline=0, width=line_w
            )
            options.append(TemplateOption(id=option_id, label=label, box=(box_x, box_y, box, box)))
            y += row_h
            draw.line([(left, y), (right, y)], fill=0, width=line_w)
        draw.line([(left, table_top), (left, y)], fill=0, width=line_w)
        draw.line([(right, table_top), (right, y)], fill=0, width=line_w)
        draw.line([(col_x, table_top), (col_x, y)], fill=0, width=line_w)
        bottom = max(bottom, y)
    y = bottom

    y += round(30 * u)
    for text in design.footer_lines:
        for line in _wrap(text, small, design.width - 2 * margin):
            draw.text((margin, y), line, font=small, fill=0)
            y += round(small.size * 1.3)
    if y > design.height - margin // 2:
        raise ValueError(f"the design does not fit on a {design.width}x{design.height} page")

    template = BallotTemplate(
        format="ballot-template/1",
        election=design.election,
        reference_image=REFERENCE_NAME,
        ocr_languages=design.ocr_languages,
        header_keywords=list(design.header_keywords),
        max_marks=design.max_marks,
        options=options,
    )
    return img.convert("RGB"), template


def template_json(template: BallotTemplate) -> str:
    data = template.model_dump(mode="json")
    data["options"] = [{**o, "box": list(o["box"])} for o in data["options"]]
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def write_template(design: BallotDesign, folder: Path) -> BallotTemplate:
    """Write template.json and reference.png into `folder` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    image, template = render_reference(design)
    # Grayscale PNG: the ballot is black print; a third of the bytes, same pixels.
    image.convert("L").save(folder / REFERENCE_NAME, format="PNG", optimize=False)
    (folder / TEMPLATE_NAME).write_text(template_json(template), encoding="utf-8")
    return template
