"""report.html (tally.report_page): sections, flags by kind, escaping, languages,
self-containment. The page in a real browser: test_report_page_browser.py."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from infra.pages import LANGUAGES, catalogue_path
from tally.plots import crowd_vs_official_png, fingerprint_png, histogram_png
from tally.report_page import (
    MAX_SIGNAL_ROWS,
    NumberStyle,
    caption_kind,
    count_flags,
    flag_kinds,
    format_number,
    number_style,
    render_report,
    value_shape,
)
from tally.vocab import FLAG_KIND, SUMMARY_NOTE, Flag, FlagKind, ReportFile, ReviewStatus

Rows = Callable[[], list[dict[str, Any]]]  # the discrepancy_rows fixture (conftest.py)

REPO = Path(__file__).resolve().parents[2]


def _summary() -> dict[str, Any]:
    return {
        "format": "report/1",
        "election": "by-2020-president",
        "precincts": 5767,
        "precincts_with_official": 1310,
        "flags": {
            "crowd_exceeds_official": 300,
            "protocol_arithmetic": 12,
            "integer_percent": 40,
            "brand_new_rule": 3,
        },
        "precincts_with_proof": 305,
        "official_totals": {
            "registered": 1000,
            "ballots_cast": 800,
            "options": {"opt1": 600, "opt2": 150},
        },
        "option_labels": {"opt1": "Лукашенко", "opt2": "Тихановская"},
        "tests": {
            "integer_percent": {
                "observed": 1700,
                "null_mean": 1550.5,
                "null_sd": 115.2,
                "excess": 149.5,
                "p_value": 0.000999,
                "significant": True,
                "leader": "opt1",
                "draws": 1000,
                "null_model": "leader votes ~ Binomial(R, L/R)",
                "inclusion_rule": "R > 0, V >= 100",
            },
            "fingerprint": {
                "f_incremental": 0.31,
                "f_extreme": 0.02,
                "image": "fingerprint.png",
                "nested": {"deeper": {"k": [1, 2, 3]}, "rows": [{"a": 1}, {"a": 2, "b": "<i>"}]},
            },
            "surprise_test": {"value": 3.5, "<b>key</b>": "x"},
        },
        "estimates": {
            "national": {
                "assumptions": ["stations without proof are representative"],
                "shares": {"opt1": {"estimate": 0.34, "ci_low": 0.3, "ci_high": 0.38}},
            }
        },
        "crowd": {"photos_received": 507477, "by_status": {"verified": 500000}},
    }


def _election(n: int = 500, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    turnout = np.clip(rng.normal(0.62, 0.08, n), 0, 1)
    share = np.clip(rng.normal(0.7, 0.07, n), 0, 1)
    return turnout, share


def _images() -> dict[str, bytes]:
    return dict(_plots())


@functools.cache
def _plots() -> dict[str, bytes]:
    """The plots, drawn once for the module (matplotlib takes a second per set)."""
    turnout, share = _election(500)
    hist, xe, ye = np.histogram2d(turnout, share, bins=20, range=[[0, 1], [0, 1]])
    return {
        "fingerprint.png": fingerprint_png(hist, xe, ye, "Лукашенко"),
        "turnout_hist.png": histogram_png(turnout, None, "Turnout", "Turnout", True),
        "crowd_vs_official.png": crowd_vs_official_png(
            np.array([5, 50]), np.array([3, 80]), np.array([True, False]), "Тихановская"
        ),
    }


def _regional() -> list[dict[str, Any]]:
    return [
        {
            "region": "Минская область <b>",
            "stations": 900,
            "stations_with_official": 200,
            "official_shares": {"opt1": 0.8, "opt2": 0.1},
            "flags": {"proof": 40, "statistical": 3},
        }
    ]


def _assert_no_external(page: str) -> None:
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()


def test_html_full_report(discrepancy_rows: Rows) -> None:
    images = _images()
    page = render_report(_summary(), discrepancy_rows(), _regional(), images, "Выборы <2020> & co")
    assert page.startswith("<!DOCTYPE html>")
    _assert_no_external(page)
    # Sections, in order: proof, then statistics, then estimates.
    proof, signals, estimates = (
        page.index("<h2>Proof</h2>"),
        page.index("<h2>Statistical signals</h2>"),
        page.index("<h2>Estimates</h2>"),
    )
    assert proof < signals < estimates
    assert "These are not proof." in page and "Estimates, not proof." in page
    # All images embedded; the fingerprint with its test, the crowd plot under proof.
    assert page.count("data:image/png;base64,") == 3
    assert proof < page.index("crowd_vs_official.png") < signals
    fingerprint_test = page.index("Turnout × share fingerprint")
    assert fingerprint_test < page.index("fingerprint.png:") < estimates
    # Untrusted text only escaped.
    # (autoescaping writes a double quote as &#34;)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "Выборы &lt;2020&gt; &amp; co" in page
    assert "Минская область &lt;b&gt;" in page and "&lt;b&gt;key&lt;/b&gt;" in page
    assert "&lt;i&gt;" in page
    # Known numbers nicely, the null model and inclusion rule, unknown keys generically.
    assert "1,700" in page and "115.2" in page
    assert "Null model:" in page and "Inclusion rule:" in page
    assert "Лукашенко (opt1)" in page
    assert "Surprise test" in page and "brand_new_rule" in page
    # Estimates with their assumptions and intervals; regional shares in percent.
    assert "stations without proof are representative" in page
    assert "34.00%" in page and "38.00%" in page and "80.00%" in page
    # Proof rows shown; the statistical one lives in the statistics section.
    assert page.index("ballots_cast 2100") < signals
    assert page.index("turnout 80.00%, share 75.00%") > signals
    assert "507,477" in page


def test_html_truncates_proof_rows_and_points_to_csv(discrepancy_rows: Rows) -> None:
    rows = [dict(discrepancy_rows()[0], precinct_id=f"p-{i}", detail="d") for i in range(30)]
    page = render_report(_summary(), rows, [], {}, "t", max_proof_rows=10)
    assert "The first 10 of 30 proof flags" in page and "discrepancies.csv" in page
    assert "p-9<" in page and "p-10<" not in page


@pytest.mark.parametrize(
    "drop",
    [
        ("tests", "estimates", "crowd"),
        ("tests",),
        ("estimates", "crowd"),
    ],
)
def test_html_with_missing_parts(drop: tuple[str, ...]) -> None:
    summary = _summary()
    for key in drop:
        summary.pop(key)
    page = render_report(summary, [], [], {}, "Official figures only")
    _assert_no_external(page)
    for heading in ("Proof", "Statistical signals", "Estimates"):
        assert f"<h2>{heading}</h2>" in page
    if "tests" in drop:
        assert "No statistical tests were run" in page
    if "estimates" in drop:
        assert "No estimates for this election." in page
    assert "No proof flags for this election." in page


def test_html_empty_inputs() -> None:
    # A crowd-only election: empty tests and estimates, no official figures at all.
    summary: dict[str, Any] = {
        "format": "report/1",
        "election": "e",
        "tests": {},
        "estimates": {},
        "crowd": {"photos_received": 10},
    }
    page = render_report(summary, [], [], {}, "Crowd only")
    for heading in ("Proof", "Statistical signals", "Estimates"):
        assert f"<h2>{heading}</h2>" in page
    assert "No official figures." in page and "No regional figures." in page
    assert render_report({}, [], [], {}, "nothing").count("<h2>") >= 3


def test_html_refuses_non_image_bytes() -> None:
    page = render_report(_summary(), [], [], {"fingerprint.png": b"<svg onload=alert(1)>"}, "t")
    assert "onload" not in page and "data:image" not in page


# ---------------------------------------------------------------- page structure


class _Page(HTMLParser):
    """The text of each <section> (by id) and the exact text of its cells and codes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.section: str | None = None
        self.text: dict[str, list[str]] = {}
        self.cells: dict[str, list[str]] = {}
        self.open: list[list[str]] = []  # text buffers of the open td/th/code elements
        self.banners: dict[str, str] = {}
        self.banner: str | None = None
        self.html_lang: str | None = None
        self.styles: list[str] = []
        self.in_style = False
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        classes = (attributes.get("class") or "").split()
        if tag == "html":
            self.html_lang = attributes.get("lang")
        elif tag == "section":
            self.section = attributes.get("id") or ""
            self.text.setdefault(self.section, [])
            self.cells.setdefault(self.section, [])
        elif tag in ("td", "th", "code"):
            self.open.append([])
        elif tag == "div" and "banner" in classes:
            self.banner = next(c for c in classes if c != "banner")
            self.banners[self.banner] = ""
        elif tag == "style":
            self.in_style = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.section = None
        elif tag in ("td", "th", "code") and self.open:
            text = "".join(self.open.pop()).strip()
            if self.section is not None:
                self.cells[self.section].append(text)
        elif tag == "div":
            self.banner = None
        elif tag == "style":
            self.in_style = False

    def handle_data(self, data: str) -> None:
        if self.in_style:
            self.styles.append(data)
        if self.section is not None:
            self.text[self.section].append(data)
        for buffer in self.open:
            buffer.append(data)
        if self.banner is not None:
            self.banners[self.banner] += data


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def _every_flag_rows() -> list[dict[str, Any]]:
    """One discrepancy row of every flag the platform can emit, as report/1 writes it."""
    rows = []
    for i, flag in enumerate(Flag):
        kind = FLAG_KIND[flag]
        compares_crowd = flag in (
            Flag.CROWD_EXCEEDS_OFFICIAL,
            Flag.CROWD_EXCEEDS_TURNOUT,
            Flag.DECLARED_EXCEEDS_OFFICIAL,
            Flag.DECLARED_EXCEEDS_TURNOUT,
        )
        rows.append(
            {
                "precinct_id": f"station-{i}",
                "region": "Region",
                "district": "District",
                "flag": flag.value,
                "kind": kind.value,
                "option": "opt1",
                "source": "declared-poll" if flag.value.startswith("declared") else "photos",
                "crowd": 120 if compares_crowd else None,
                "official": 86,
                "statistic": None if kind is FlagKind.PROOF else 3.5,
                "p_value": None if kind is FlagKind.PROOF else 0.001,
                "q_value": None if kind is FlagKind.PROOF else 0.01,
                "detail": f"station {i}",
                "review_status": ReviewStatus.OPEN.value,
            }
        )
    return rows


SECTION_OF_KIND = {FlagKind.PROOF: "proof", FlagKind.STATISTICAL: "signals"}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_flag_the_platform_can_emit_is_shown_under_its_kind(lang: str) -> None:
    summary = _summary()
    summary["flags"] = {flag.value: 7 for flag in Flag}
    page = _parse(
        render_report(summary, _every_flag_rows(), _regional(), _images(), "All flags", lang=lang)
    )
    assert "other-flags" not in page.text  # no flag of unknown kind
    for flag in Flag:
        home = SECTION_OF_KIND[FLAG_KIND[flag]]
        # Counted by rule (with what the rule means) and listed as a row, in its
        # kind's section...
        assert page.cells[home].count(flag.value) >= 2, (flag, home)
        assert any(c.startswith(flag.value) and len(c) > len(flag.value) for c in page.cells[home])
        # ...and nowhere else.
        for section, text in page.text.items():
            if section != home:
                assert flag.value not in "".join(text), (flag, section)


def test_flag_kind_comes_from_the_vocabulary_then_from_the_rows() -> None:
    rows = [
        {"flag": "newer_proof_rule", "kind": "proof"},
        {"flag": Flag.INTEGER_PERCENT.value, "kind": "proof"},  # a row cannot overrule
        {"flag": "odd_rule", "kind": "nonsense"},
    ]
    kinds = flag_kinds(rows)
    assert all(kinds[flag.value] is FLAG_KIND[flag] for flag in Flag)
    assert kinds["newer_proof_rule"] is FlagKind.PROOF
    assert "odd_rule" not in kinds
    counts = count_flags({"newer_proof_rule": 1, "odd_rule": 2, "integer_percent": 3}, kinds)
    assert counts.proof == {"newer_proof_rule": 1}
    assert counts.statistical == {"integer_percent": 3}
    assert counts.unknown == {"odd_rule": 2}
    assert counts.total == 6


def test_a_newer_platforms_flags_show_under_the_kind_their_rows_declare(
    discrepancy_rows: Rows,
) -> None:
    summary = _summary()  # carries brand_new_rule, which no row declares
    summary["flags"]["newer_proof_rule"] = 1
    row = dict(discrepancy_rows()[0], flag="newer_proof_rule", detail="newer")
    page = _parse(render_report(summary, [row], [], {}, "t"))
    assert "newer_proof_rule" in page.cells["proof"]
    assert "newer_proof_rule" not in "".join(page.text["other-flags"])
    assert "brand_new_rule" in page.cells["other-flags"]
    assert "brand_new_rule" not in "".join(page.text["proof"] + page.text["signals"])


def test_declared_crowd_counts_are_statistical_signals_with_their_source() -> None:
    rows = [r for r in _every_flag_rows() if r["flag"].startswith("declared")]
    rows += [dict(rows[0], precinct_id=f"d-{i}", crowd=100 + i) for i in range(40)]
    page = _parse(render_report({}, rows, [], {}, "Declared"))
    signals = page.cells["signals"]
    assert "declared-poll" in signals and "declared-poll" not in page.cells["proof"]
    shown = [c for c in signals if c.startswith("d-")]
    assert len(shown) == MAX_SIGNAL_ROWS - 2
    assert "d-39" in shown and "d-0" not in shown  # the largest excess first
    assert "No proof flags for this election." in "".join(page.text["proof"])


# ---------------------------------------------------------------- escaping, self-containment


def test_data_is_escaped_never_markup(discrepancy_rows: Rows) -> None:
    script = "<script>alert(1)</script>"
    rows = [dict(row, region=script, detail=script) for row in discrepancy_rows()]
    regional = [dict(_regional()[0], region=script)]
    summary = _summary()
    summary["option_labels"] = {"opt1": script}
    summary["tests"]["integer_percent"]["null_model"] = script
    summary["crowd"] = {script: script}
    for lang in LANGUAGES:
        page = render_report(summary, rows, regional, _images(), script, lang=lang)
        assert "<script" not in page.lower()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert page.count("&lt;script&gt;") >= 8
        assert not [tag for tag, _ in _parse(page).tags if tag == "script"]


def test_the_page_is_self_contained_with_its_stylesheet_inline(discrepancy_rows: Rows) -> None:
    page = render_report(_summary(), discrepancy_rows(), _regional(), _images(), "t")
    _assert_no_external(page)
    parsed = _parse(page)
    for tag, attributes in parsed.tags:
        for name in ("src", "href"):
            target = attributes.get(name)
            if target is not None:
                assert target.startswith(("#", "data:image/")), (tag, target)
        assert tag not in ("link", "iframe", "object", "embed", "base")
    css = resources.files("tally").joinpath("templates/report.css").read_text(encoding="utf-8")
    assert css.strip() in "".join(parsed.styles)
    assert "url(" not in css and "@import" not in css


def test_templates_mark_nothing_safe() -> None:
    templates = resources.files("tally").joinpath("templates")
    sources = [p.read_text(encoding="utf-8") for p in Path(str(templates)).rglob("*.html")]
    assert len(sources) >= 2
    for text in sources:
        assert "|safe" not in text.replace(" ", "") and "autoescape false" not in text
    module = (REPO / "tally" / "report_page.py").read_text(encoding="utf-8")
    assert "Markup" not in module and "escape(" not in module


# ---------------------------------------------------------------- languages


def test_each_language_renders_with_its_lang_attribute_and_translated_banners(
    discrepancy_rows: Rows,
) -> None:
    banners: dict[str, dict[str, str]] = {}
    for lang in LANGUAGES:
        page = render_report(_summary(), discrepancy_rows(), _regional(), _images(), "t", lang=lang)
        parsed = _parse(page)
        assert parsed.html_lang == lang
        assert set(parsed.banners) == {"proof", "stat", "est"}
        banners[lang] = parsed.banners
        _assert_no_external(page)
    for kind in ("proof", "stat", "est"):
        texts = {lang: banners[lang][kind] for lang in LANGUAGES}
        assert len(set(texts.values())) == len(LANGUAGES), texts
        for lang in ("ru", "be"):
            assert re.search("[а-яА-ЯіўІЎ]", texts[lang]), texts[lang]
    assert banners["en"]["stat"].startswith("These are not proof.")
    assert banners["ru"]["stat"].startswith("Это не доказательства.")
    assert banners["be"]["stat"].startswith("Гэта не доказы.")


def test_the_platforms_title_is_translated_and_a_callers_kept() -> None:
    election = "by-2020 <&>"
    expected = {
        "en": "Golos report: by-2020 &lt;&amp;&gt;",
        "ru": "Отчёт Golos: by-2020 &lt;&amp;&gt;",
        "be": "Справаздача Golos: by-2020 &lt;&amp;&gt;",
    }
    for lang in LANGUAGES:
        page = render_report(_summary(), [], [], {}, election_id=election, lang=lang)
        assert f"<title>{expected[lang]}</title>" in page
        assert f"<h1>{expected[lang]}</h1>" in page
    page = render_report(_summary(), [], [], {}, "Выборы", election_id=election, lang="ru")
    assert "<title>Выборы</title>" in page and "<h1>Выборы</h1>" in page
    with pytest.raises(ValueError, match="title or an election id"):
        render_report(_summary(), [], [], {})


def test_russian_and_belarusian_pages_write_numbers_their_way(discrepancy_rows: Rows) -> None:
    for lang in ("ru", "be"):
        page = render_report(_summary(), discrepancy_rows(), _regional(), _images(), "t", lang=lang)
        assert "507\xa0477" in page and "1\xa0700" in page  # no-break space between thousands
        assert "34,00%" in page and "115,2" in page  # decimal comma
    style = NumberStyle()
    assert format_number(1234567, "", style) == "1,234,567"
    assert format_number(0.34, "national.share", style) == "34.00%"
    assert format_number(0.0004, "p_value", style) == "4.00e-04"
    assert format_number(float("nan"), "", style) == "—"
    assert format_number(1234.5, "", number_style("ru")) == "1\xa0234,5"


def _extracted_messages() -> set[str]:
    """Every message of the templates, as `pybabel extract -F babel.cfg` finds it."""
    method_map = [("**/templates/**.html", "jinja2")]
    options_map = {"**/templates/**.html": {"trimmed": "true"}}
    cfg = (REPO / "babel.cfg").read_text(encoding="utf-8")
    assert "[jinja2: **/templates/**.html]" in cfg and "trimmed = true" in cfg
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(REPO / "tally"), method_map, options_map
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_ru_and_be_catalogues_translate_every_message_of_the_page() -> None:
    messages = _extracted_messages()
    assert len(messages) > 100
    for lang in ("ru", "be"):
        path = catalogue_path(lang)
        with path.open("rb") as po:
            catalogue = read_po(po, locale=lang)
        problems = [(m.id, errors) for m, errors in catalogue.check() if errors]
        assert not problems, (path, problems[:5])
        translated = {
            m.id if isinstance(m.id, str) else m.id[0]: m
            for m in catalogue
            if m.id
            and not m.fuzzy
            and all(m.string if isinstance(m.string, tuple) else (m.string,))
        }
        missing = sorted(messages - set(translated))
        assert not missing, (path, missing[:10])


def test_the_platforms_plots_get_their_captions() -> None:
    for plot in (
        ReportFile.KLIMEK_PLOT,
        ReportFile.TURNOUT_PLOT,
        ReportFile.LEADER_SHARE_PLOT,
        ReportFile.CROWD_VS_OFFICIAL_PLOT,
    ):
        assert caption_kind(plot) == plot
    assert caption_kind("turnout_hist.png") == ReportFile.TURNOUT_PLOT
    assert caption_kind("photo.png") == ""
    images = {plot: _images()["fingerprint.png"] for plot in ReportFile if plot.endswith(".png")}
    page = render_report({}, [], [], images, "t")
    assert page.index("turnout.png:") < page.index("leader_share.png:")
    assert "leader_share.png: Leader share per station in 0.1 pp bins" in page


def test_value_shapes() -> None:
    assert value_shape(3) == "scalar" and value_shape(None) == "scalar"
    assert value_shape({}) == "empty" and value_shape([]) == "empty"
    assert value_shape({"a": {"x": 1}, "b": {"x": 2}}) == "keyed_records"
    assert value_shape({"a": {"x": 1}}) == "kv"
    assert value_shape([1, "a"]) == "scalar_list" and value_shape(["a", "b"]) == "items"
    assert value_shape([{"a": 1}]) == "records"
    assert value_shape({"a": 1}, depth=7) == "deep"


def test_the_platforms_own_note_is_said_in_the_readers_language_not_repeated_in_english(
    discrepancy_rows: Rows,
) -> None:
    summary = dict(_summary(), note=SUMMARY_NOTE)
    page = render_report(summary, discrepancy_rows(), [], {}, "t", lang="ru")
    assert SUMMARY_NOTE not in page
    assert "Статистические сигналы" in page
    foreign = dict(_summary(), note="a note from another release")
    assert "a note from another release" in render_report(foreign, [], [], {}, "t", lang="ru")
