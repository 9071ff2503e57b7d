"""Pages for people: the one Jinja2 set-up every HTML page of the platform uses.

``environment(lang)`` builds a Jinja2 ``Environment`` that

* loads templates from the ``templates/`` folder of each package in
  :data:`TEMPLATE_PACKAGES` (``tally`` for ``report.html``; the web app passes its
  package there, and a template name is looked up in that order);
* escapes every ``{{ value }}`` of an ``.html`` template (autoescaping), so text
  that came from data can never become markup; nothing marks data safe;
* fails on a name the template does not receive (``StrictUndefined``) instead of
  printing nothing;
* translates with the gettext catalogue of ``lang``: ``{% trans %}`` blocks and
  ``_()`` / ``ngettext()`` calls (the ``jinja2.ext.i18n`` extension, new-style:
  placeholders are escaped, translations are trusted markup because they are ours).

Catalogues are the text files ``infra/locale/<lang>/LC_MESSAGES/*.po``: ``golos.po``
for the report and one per area of the web app (``web.po``, ``accounts.po``, ...),
merged into one catalogue per language (no compiled ``.mo`` is kept in the
repository): they are compiled in memory with Babel the first time a language is
used and kept for the life of the process.
``babel.cfg`` at the repository root tells ``pybabel extract`` where the messages
are (``make messages`` extracts them and updates the catalogues).

Building an environment is cheap but compiles each template again; a caller
builds one per language, adds what its pages need (filters, tests, globals) and
keeps it.
"""

from __future__ import annotations

import functools
from io import BytesIO
from pathlib import Path

import jinja2
from babel.core import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from babel.support import Translations

LANGUAGES: tuple[str, ...] = ("ru", "be", "en")
# English is the language of the files analysts exchange (report/1), so a report
# written without a reader in mind is in English; a browser's wishes are honoured
# through negotiate_language.
DEFAULT_LANGUAGE = "en"
DOMAIN = "golos"  # the catalogue's name: <lang>/LC_MESSAGES/golos.po
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
# Packages whose templates/ folder holds pages, searched in this order.
TEMPLATE_PACKAGES: tuple[str, ...] = ("tally",)
# Only HTML and XML are markup; a stylesheet included into a <style> element is
# copied as written (it is our file, not data).
_ESCAPED_EXTENSIONS = ("html", "htm", "xml")


def catalogue_path(lang: str, domain: str = DOMAIN) -> Path:
    """The ``.po`` file of one language and area. Pure."""
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{domain}.po"


def catalogue_paths(lang: str) -> list[Path]:
    """Every ``.po`` file of one language: ``golos.po`` first, then the others by name."""
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    others = sorted(p for p in folder.glob("*.po") if p.stem != DOMAIN)
    return [catalogue_path(lang), *others]


def _check_language(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; the platform speaks {', '.join(LANGUAGES)}")


@functools.cache
def translations(lang: str) -> Translations:
    """The compiled gettext catalogue of ``lang``, read from its ``.po`` files once
    and merged (a message translated in two files takes the later file's text).

    A malformed catalogue raises ``ValueError`` naming the file and the line.
    Fuzzy entries (translations a tool guessed and nobody checked) are left out:
    their messages show in English.
    """
    _check_language(lang)
    paths = catalogue_paths(lang)
    merged = _compile(paths[0], lang)
    for path in paths[1:]:
        merged.merge(_compile(path, lang))
    return merged


def _compile(path: Path, lang: str) -> Translations:
    with path.open("rb") as po:
        try:
            catalogue = read_po(po, locale=lang, domain=DOMAIN, abort_invalid=True)
        except PoFileError as error:  # error.lineno counts from 0
            problem = str(error).rsplit(" on ", 1)[0]
            raise ValueError(
                f"{path}, line {error.lineno + 1}: {problem}: {error.line.strip()!r}"
            ) from error
    compiled = BytesIO()
    write_mo(compiled, catalogue, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def environment(
    lang: str = DEFAULT_LANGUAGE, packages: tuple[str, ...] = TEMPLATE_PACKAGES
) -> jinja2.Environment:
    """A new Jinja2 environment for pages in ``lang`` (see the module docstring),
    loading templates from the ``templates/`` folders of ``packages`` in order (the
    web app passes its own packages; infra names none of them but the report's).

    The template global ``lang`` holds the language code, for ``<html lang>``.
    """
    _check_language(lang)
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.PackageLoader(package, "templates") for package in packages]
        ),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=_ESCAPED_EXTENSIONS, default_for_string=True, default=False
        ),
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # {% trans %} blocks are written across lines; their messages are the text with
    # runs of white space made one space (babel.cfg extracts them the same way).
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals["lang"] = lang
    return env


def _accept_language(header: str) -> list[str]:
    """Language tags of an ``Accept-Language`` header, lower case, most wanted first. Pure.

    Tags with ``q=0`` (explicitly not wanted) and malformed weights are dropped;
    equal weights keep the header's order.
    """
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        if not tag or tag == "*":
            continue
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight > 0:
            weighted.append((-weight, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate_language(accept_language: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The platform language that best fits an ``Accept-Language`` header. Pure.

    ``"be-BY,be;q=0.9,ru;q=0.8"`` -> ``"be"``; a region tag falls back to its
    language (``ru-RU`` -> ``ru``); nothing suitable (or no header) -> ``default``.
    """
    preferred = _accept_language(accept_language or "")
    chosen = negotiate_locale(preferred, list(LANGUAGES), sep="-", aliases={})
    return chosen if chosen in LANGUAGES else default
