"""infra.pages: the Jinja2 environment every page shares, and its catalogues."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest

from infra import pages
from infra.pages import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    catalogue_path,
    environment,
    negotiate_language,
    translations,
)


@pytest.fixture
def fresh_catalogues() -> Iterator[None]:
    translations.cache_clear()
    yield
    translations.cache_clear()


def test_the_environment_escapes_data_and_refuses_unknown_names() -> None:
    env = environment("en")
    page = env.from_string("<p title='{{ x }}'>{{ x }}</p>")
    assert page.render(x="<b>'&'</b>") == (
        "<p title='&lt;b&gt;&#39;&amp;&#39;&lt;/b&gt;'>&lt;b&gt;&#39;&amp;&#39;&lt;/b&gt;</p>"
    )
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()
    assert env.from_string("{{ lang }}").render() == "en"


def test_templates_are_found_in_the_packages_and_only_html_is_escaped() -> None:
    env = environment()
    assert env.get_template("report.html").name == "report.html"
    assert env.select_template(["report.css"]).name == "report.css"
    assert env.autoescape("report.html") is True  # type: ignore[operator]
    assert env.autoescape("report.css") is False  # type: ignore[operator]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_language_translates_with_its_catalogue(lang: str) -> None:
    env = environment(lang)
    text = env.from_string("{{ _('These are not proof.') }}|{% trans %}Estimates{% endtrans %}")
    rendered = text.render()
    expected = {
        "en": "These are not proof.|Estimates",
        "ru": "Это не доказательства.|Оценки",
        "be": "Гэта не доказы.|Ацэнкі",
    }
    assert rendered == expected[lang]
    # Placeholders are escaped, the message itself is not.
    out = env.from_string(
        "{{ _('Image %(name)s is not a PNG, JPEG or GIF and is not shown.', name='<x>') }}"
    )
    assert "&lt;x&gt;" in out.render()


def test_plurals_follow_each_languages_rules() -> None:
    message = (
        "{% trans total=n, count=n %}{{ total }} proof flag; the same row is in "
        "<code>discrepancies.csv</code>. A struck-through row was dismissed by observers."
        "{% pluralize count %}All {{ total }} proof flags; the same rows are in "
        "<code>discrepancies.csv</code>. Struck-through rows were dismissed by observers."
        "{% endtrans %}"
    )
    ru = environment("ru").from_string(message)
    assert ru.render(n=1).startswith("Всего 1 флаг доказательства")
    assert ru.render(n=3).startswith("Всего 3 флага доказательств")
    assert ru.render(n=11).startswith("Всего 11 флагов доказательств")
    assert ru.render(n=21).startswith("Всего 21 флаг доказательства")
    be = environment("be").from_string(message)
    assert be.render(n=2).startswith("Усяго 2 флагі доказаў")
    assert be.render(n=5).startswith("Усяго 5 флагаў доказаў")
    en = environment("en").from_string(message)
    assert en.render(n=1).startswith("1 proof flag;")
    assert en.render(n=2).startswith("All 2 proof flags;")


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown language 'de'"):
        environment("de")


def test_catalogues_are_text_files_only() -> None:
    locale = catalogue_path("en").parents[2]
    assert all(catalogue_path(lang).is_file() for lang in LANGUAGES)
    assert not list(locale.rglob("*.mo"))


def test_a_broken_catalogue_names_its_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_catalogues: None
) -> None:
    monkeypatch.setattr(pages, "LOCALE_DIR", tmp_path)
    path = catalogue_path("ru")
    path.parent.mkdir(parents=True)
    path.write_text('msgid "Estimates"\nmsgstr "Оценки"\nthis is not po\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"golos\.po, line 3: .*'this is not po'"):
        translations("ru")


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("be-BY,be;q=0.9,ru;q=0.8,en;q=0.7", "be"),
        ("ru-RU,ru;q=0.9,en-US;q=0.8", "ru"),
        ("RU", "ru"),
        ("de-DE,de;q=0.9,ru;q=0.5", "ru"),
        ("ru;q=0, en", "en"),
        ("uk-UA,pl", DEFAULT_LANGUAGE),
        ("*", DEFAULT_LANGUAGE),
        ("", DEFAULT_LANGUAGE),
        (None, DEFAULT_LANGUAGE),
    ],
)
def test_negotiate_language(header: str | None, lang: str) -> None:
    assert negotiate_language(header) == lang


@pytest.mark.parametrize("lang", ["ru", "be"])
def test_no_two_catalogues_translate_one_message_differently(lang: str) -> None:
    # The areas' catalogues are merged into one per language (the later file wins),
    # so a message translated two ways would silently change another area's page.
    from babel.messages.pofile import read_po

    from infra.pages import catalogue_paths

    seen: dict[tuple[str, str | None], tuple[str, object]] = {}
    clashes = []
    for path in catalogue_paths(lang):
        with path.open("rb") as po:
            for message in read_po(po):
                if not message.id:
                    continue
                msgid = message.id if isinstance(message.id, str) else message.id[0]
                key = (msgid, message.context)
                text = message.string
                first = seen.setdefault(key, (path.stem, text))
                if first[1] != text:
                    clashes.append(f"{key}: {first[0]} {first[1]!r} / {path.stem} {text!r}")
    assert not clashes, "\n".join(clashes)


# Each area's folder and its catalogue, as the Makefile's messages target has them.
AREAS = {
    "web": "api",
    "accounts": "api/accounts",
    "voters": "api/voters",
    "review": "api/review",
    "public": "api/public",
    "analysts": "api/analysts",
    "protocols": "api/protocols",
}


@pytest.mark.parametrize("area", sorted(AREAS))
@pytest.mark.parametrize("lang", ["ru", "be"])
def test_every_message_of_the_web_app_is_translated(area: str, lang: str) -> None:
    from babel.messages.extract import extract_from_dir

    from infra.pages import translations

    root = Path(__file__).resolve().parents[2]
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    if area == "web":  # babel-web.cfg: the layout's own templates and modules only
        method_map = [("templates/*.html", "jinja2"), ("*.py", "python")]
    options_map = {pattern: {"trimmed": "true"} for pattern, _ in method_map}
    found = 0
    keywords = {"_": None, "gettext": None, "pgettext": ((1, "c"), 2), "ngettext": (1, 2)}
    catalogue = translations(lang)
    missing = []
    for _file, _line, message, _comments, context in extract_from_dir(
        str(root / AREAS[area]), method_map, options_map, keywords=keywords
    ):
        msgid = message if isinstance(message, str) else message[0]
        found += 1
        translated = catalogue.pgettext(context, msgid) if context else catalogue.gettext(msgid)
        if translated == msgid and msgid.strip():
            missing.append(msgid)
    assert found, f"no message found in {AREAS[area]}: the extraction map is wrong"
    assert not missing, f"{len(missing)} untranslated in {lang}: {missing[:10]}"
