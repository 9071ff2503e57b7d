"""``report.html``: the report for people, one self-contained page.

The summary (``summary.json`` of ``report/1``, plus the platform's ``estimates``
and ``crowd``), the discrepancy rows, the regional rows and the PNG plots go in;
an HTML string comes out, in English, Russian or Belarusian (``lang``).

The markup is in Jinja2 templates (``tally/templates/report.html`` and its parts
in ``tally/templates/report/``), the look in ``tally/templates/report.css``, the
words in the gettext catalogues of ``infra/locale`` (see :mod:`infra.pages`). This
module only prepares data, with pure functions: it sorts flags into their kind's
section, orders and caps rows, chooses where each image goes, formats numbers.
Templates escape everything that comes from data (region names, precinct ids,
details, test keys); nothing here produces markup.

The page is self-contained: the stylesheet is inlined into a ``<style>`` element,
images are ``data:`` URIs, there is no JavaScript and no external reference, so
it opens offline (``shared/spec/reports.md``).

Proof, statistical signals and estimates are three separate sections, each with
its own colour and a statement of what it is and is not:

* **Proof**: flags of kind ``proof`` (numbers that contradict each other), by rule
  and source, and the first rows of them (all rows are in ``discrepancies.csv``).
* **Statistical signals**: each test of ``summary["tests"]`` with its numbers, null
  model and inclusion rule, and its plots, under a banner that they are not proof;
  then the statistical flags per station, declared (unverified) crowd counts among
  them.
* **Estimates**: ``summary["estimates"]``, with assumptions and intervals.

A flag's kind is the one :data:`tally.vocab.FLAG_KIND` gives it. A name the
vocabulary does not know (a report written by a newer platform) takes the kind its
discrepancy rows declare; failing that it is listed under "Other flags".

Any JSON-like value is rendered generically (nested tables), so tests and
estimates with keys this module does not know still show.

Images: ``images`` maps a name (``fingerprint.png``) to PNG bytes. A test or
estimate that names an image in one of its values (``"image": "fingerprint.png"``)
gets it shown beside its numbers; images nothing names are shown in the section
their name suggests (``crowd*`` under Proof, the rest under Statistical signals).
"""

from __future__ import annotations

import base64
import functools
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2
from babel.numbers import get_decimal_symbol, get_group_symbol

from infra.pages import DEFAULT_LANGUAGE, environment
from tally.vocab import (
    DISCREPANCY_COLUMNS,
    FLAG_KIND,
    SUMMARY_NOTE,
    Flag,
    FlagKind,
    ProtocolLine,
    ReportFile,
    ReviewStatus,
)

# Rows shown on the page; every row is in discrepancies.csv. Two hundred proof rows
# keep the page readable and light on a phone; the statistical rows are leads and
# the 25 strongest say where to look.
MAX_PROOF_ROWS = 200
MAX_SIGNAL_ROWS = 25
# Generic rendering: list rows shown per table, nesting depth before a value is
# shown as its repr (summary.json nests four levels today), scalars shown inline.
MAX_GENERIC_ROWS = 200
MAX_DEPTH = 6
MAX_INLINE_SCALARS = 20
_MAX_REPR = 500

# Shown first, in this order, in a test's table of numbers.
RESULT_KEYS = (
    "leader",
    "observed",
    "null_mean",
    "null_sd",
    "excess",
    "p_value",
    "q_value",
    "f_incremental",
    "f_extreme",
    "anomalous_votes",
    "stations_included",
    "draws",
)
# Shown as labelled prose under the numbers, in this order (labels: the templates).
PROSE_KEYS = (
    "null_model",
    "inclusion_rule",
    "significance",
    "assumption",
    "assumptions",
    "caveat",
    "caveats",
    "method",
    "note",
    "skipped",
)
IMAGE_KEYS = ("image", "images", "plot", "plots")
# A string under one of these keys is an option id: shown with its label.
OPTION_KEYS = ("leader", "option", "option_id", "winner")
# Extra keys of the summary shown in the page's subtitle, when present.
DATE_KEYS = ("generated_at", "generated", "data_as_of")


def _columns(*names: str) -> tuple[str, ...]:
    """Discrepancy columns shown in a table, in the spec's order. Pure."""
    unknown = set(names) - set(DISCREPANCY_COLUMNS)
    if unknown:
        raise ValueError(f"not discrepancy columns: {sorted(unknown)}")
    return tuple(c for c in DISCREPANCY_COLUMNS if c in names)


PROOF_COLUMNS = _columns(
    "precinct_id", "region", "district", "flag", "option", "source", "crowd", "official",
    "detail", "review_status",
)  # fmt: skip
SIGNAL_COLUMNS = _columns(
    "precinct_id", "region", "district", "flag", "option", "statistic", "p_value", "q_value",
    "detail", "review_status",
)  # fmt: skip
# Declared (unverified) crowd counts compared with official figures: statistical
# flags with a crowd figure, shown with their source like the proof rows.
DECLARED_COLUMNS = PROOF_COLUMNS
NUMERIC_COLUMNS = frozenset(("crowd", "official", "statistic", "p_value", "q_value"))


def _stem(name: str) -> str:
    """A file name without its extension. Pure."""
    return name.rsplit(".", 1)[0]


# The distribution plots in the order they are shown (by file-name prefix), and the
# plots whose captions the templates hold (CAPTIONS, keyed by the plot's file): an
# image gets the caption of the first plot whose file-name stem its own holds.
_PLOT_ORDER: tuple[str, ...] = tuple(
    _stem(plot)
    for plot in (ReportFile.KLIMEK_PLOT, ReportFile.TURNOUT_PLOT, ReportFile.LEADER_SHARE_PLOT)
)
_CAPTIONED_PLOTS: tuple[ReportFile, ...] = (
    ReportFile.KLIMEK_PLOT,
    ReportFile.TURNOUT_PLOT,
    ReportFile.LEADER_SHARE_PLOT,
    ReportFile.CROWD_VS_OFFICIAL_PLOT,
)


# ---------------------------------------------------------------- values


def is_number(value: object) -> bool:
    """A real number that is not a boolean (numpy's included). Pure."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_bool(value: object) -> bool:
    """``True``/``False``, numpy's ``bool_`` included. Pure."""
    return isinstance(value, bool) or type(value).__name__ == "bool_"


def is_scalar(value: object) -> bool:
    """A value shown inline, not as a table. Pure."""
    return value is None or isinstance(value, str | bytes) or is_number(value) or is_bool(value)


def _is_list(value: object) -> bool:
    return isinstance(value, Sequence | set | frozenset) and not isinstance(value, str | bytes)


def value_shape(value: object, depth: int = 0) -> str:
    """How the templates show a JSON-like value. Pure.

    ``scalar`` inline; ``deep`` (nested past :data:`MAX_DEPTH`) as its repr;
    ``empty`` for an empty list or mapping; ``keyed_records`` for a mapping of two
    or more flat mappings (one table, a row per key); ``kv`` for another mapping
    (key/value table); ``scalar_list`` for a list of scalars that are not all
    strings (inline, bracketed); ``records`` for a list of mappings (one table);
    ``items`` for any other list (a bulleted list); ``other`` for anything else.
    """
    if is_scalar(value):
        return "scalar"
    if depth > MAX_DEPTH:
        return "deep"
    if isinstance(value, Mapping):
        if not value:
            return "empty"
        if len(value) >= 2 and all(
            isinstance(v, Mapping) and v and all(is_scalar(x) for x in v.values())
            for v in value.values()
        ):
            return "keyed_records"
        return "kv"
    if _is_list(value):
        items = list(value)  # type: ignore[call-overload]
        if not items:
            return "empty"
        if all(is_scalar(x) for x in items) and not all(isinstance(x, str) for x in items):
            return "scalar_list"
        if all(isinstance(x, Mapping) for x in items):
            return "records"
        return "items"
    return "other"


def as_list(value: object) -> list[Any]:
    """A list, set or tuple as a list (sets in their iteration order). Pure."""
    return list(value)  # type: ignore[call-overload]


def record_columns(records: Sequence[Mapping[Any, Any]]) -> list[Any]:
    """Every key of the records, in order of first appearance. Pure."""
    return list(dict.fromkeys(key for record in records for key in record))


def short_repr(value: object) -> str:
    """A value too deeply nested to tabulate, as text. Pure."""
    return repr(value)[:_MAX_REPR]


def join_path(path: str, key: object) -> str:
    """The dotted chain of keys above a nested value. Pure."""
    return f"{path}.{key}" if path else str(key)


def last_key(path: str) -> str:
    """The innermost key of a path, lower case. Pure."""
    return path.rsplit(".", 1)[-1].lower()


def is_option_path(path: str) -> bool:
    """Whether a string under ``path`` is an option id (shown with its label). Pure."""
    return last_key(path) in OPTION_KEYS


def humanise(key: object) -> str:
    """A data key as a heading: ``null_mean`` -> ``Null mean``. Pure."""
    text = str(key).replace("_", " ")
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------- numbers


@dataclass(frozen=True)
class NumberStyle:
    """How numbers are written in one language: ``1,234.5`` or ``1 234,5``."""

    group: str = ","
    decimal: str = "."

    @property
    def list_separator(self) -> str:
        """Between numbers in a list; a semicolon where the comma is the decimal mark."""
        return "; " if self.decimal == "," else ", "


@functools.cache
def number_style(lang: str) -> NumberStyle:
    """The Unicode CLDR separators of ``lang`` (Russian and Belarusian: a
    no-break space between thousands, a decimal comma). Pure."""
    return NumberStyle(group=get_group_symbol(lang), decimal=get_decimal_symbol(lang))


def _looks_like_fraction(path: str) -> bool:
    """A value whose key (or a parent's key) names a share or turnout: shown in percent."""
    path = path.lower()
    return any(word in path for word in ("share", "turnout", "fraction"))


def _is_probability(path: str) -> bool:
    key = last_key(path)
    return key.startswith(("p_", "q_")) or key in ("p", "q", "pvalue", "qvalue", "alpha")


def _english_number(value: float, path: str) -> str:
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    number = float(value)
    if math.isnan(number):
        return "—"
    if math.isinf(number):
        return "∞" if number > 0 else "−∞"
    if _looks_like_fraction(path) and 0.0 <= number <= 1.0 and not _is_probability(path):
        return f"{100.0 * number:.2f}%"
    if number.is_integer() and abs(number) < 1e15:
        return f"{number:,.1f}"
    magnitude = abs(number)
    if magnitude >= 1000:
        return f"{number:,.1f}"
    if magnitude != 0 and magnitude < 0.001:
        return f"{number:.2e}"
    return f"{number:.4g}"


def _localise(text: str, style: NumberStyle) -> str:
    return text.translate({ord(","): style.group, ord("."): style.decimal})


def format_number(value: float, path: str = "", style: NumberStyle = NumberStyle()) -> str:
    """A number as a person reads it. Pure.

    Integers with thousands separators (``1,700``); a share or turnout (its key or a
    parent's names one) between 0 and 1 in percent (``34.00%``); p- and q-values
    and tiny numbers in scientific notation (``1.50e-05``); other floats to four
    significant digits (``115.2``); NaN as a dash. ``style`` sets the separators.
    """
    return _localise(_english_number(value, path), style)


def format_percent(
    numerator: object, denominator: object, style: NumberStyle = NumberStyle()
) -> str | None:
    """``numerator / denominator`` in percent with two decimals, or None when
    either is not a number or the denominator is not positive. Pure."""
    if not (is_number(numerator) and is_number(denominator)):
        return None
    base = float(denominator)  # type: ignore[arg-type]
    if not base > 0:
        return None
    return _localise(f"{100.0 * float(numerator) / base:.2f}%", style)  # type: ignore[arg-type]


# ---------------------------------------------------------------- flags


def flag_kinds(discrepancies: Sequence[Mapping[str, object]]) -> dict[str, FlagKind]:
    """The kind of every flag name the page may meet. Pure.

    The vocabulary's kinds first (:data:`tally.vocab.FLAG_KIND`); then, for a name
    the vocabulary does not know, the kind its discrepancy rows declare.
    """
    kinds: dict[str, FlagKind] = {str(flag): kind for flag, kind in FLAG_KIND.items()}
    known_kinds = {kind.value: kind for kind in FlagKind}
    for row in discrepancies:
        flag, kind = row.get("flag"), row.get("kind")
        if isinstance(flag, str) and flag not in kinds and kind in known_kinds:
            kinds[flag] = known_kinds[str(kind)]
    return kinds


@dataclass(frozen=True)
class FlagCounts:
    """``summary["flags"]`` split by kind; ``unknown``: names of no known kind."""

    proof: dict[str, Any] = field(default_factory=dict)
    statistical: dict[str, Any] = field(default_factory=dict)
    unknown: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> float:
        """All flags counted in the summary, of every kind."""
        counts = (*self.proof.values(), *self.statistical.values(), *self.unknown.values())
        return sum(n for n in counts if is_number(n))


def count_flags(flags: object, kinds: Mapping[str, FlagKind]) -> FlagCounts:
    """Flag counts of the summary, each in its kind's section. Pure."""
    counts = FlagCounts()
    if not isinstance(flags, Mapping):
        return counts
    for name, n in flags.items():
        kind = kinds.get(str(name))
        if kind is FlagKind.PROOF:
            counts.proof[str(name)] = n
        elif kind is FlagKind.STATISTICAL:
            counts.statistical[str(name)] = n
        else:
            counts.unknown[str(name)] = n
    return counts


def rows_of_kind(
    discrepancies: Sequence[Mapping[str, Any]], kinds: Mapping[str, FlagKind], kind: FlagKind
) -> list[Mapping[str, Any]]:
    """The discrepancy rows whose flag is of ``kind``, in their order. Pure."""
    return [row for row in discrepancies if kinds.get(str(row.get("flag"))) is kind]


def by_rule_and_source(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, int]]:
    """(flag, source, rows) for each pair present, sorted. Pure."""
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (str(row.get("flag") or ""), str(row.get("source") or ""))
        counts[key] = counts.get(key, 0) + 1
    return [(flag, source, n) for (flag, source), n in sorted(counts.items())]


def _finite(value: object) -> float:
    if is_number(value):
        number = float(value)  # type: ignore[arg-type]
        if not math.isnan(number):
            return number
    return math.inf


def strongest_signals(rows: Sequence[Mapping[str, Any]], limit: int) -> list[Mapping[str, Any]]:
    """The ``limit`` rows with the lowest q-value, then p-value (missing: last). Pure."""
    return sorted(rows, key=lambda r: (_finite(r.get("q_value")), _finite(r.get("p_value"))))[
        :limit
    ]


def largest_excess(rows: Sequence[Mapping[str, Any]], limit: int) -> list[Mapping[str, Any]]:
    """The ``limit`` rows whose crowd figure exceeds the official one most. Pure."""

    def excess(row: Mapping[str, Any]) -> float:
        crowd, official = _finite(row.get("crowd")), _finite(row.get("official"))
        return -(crowd - official) if math.isfinite(crowd - official) else math.inf

    return sorted(rows, key=excess)[:limit]


def has_crowd_figure(row: Mapping[str, Any]) -> bool:
    """A statistical flag that compares a (declared) crowd figure. Pure."""
    return row.get("crowd") is not None


# ---------------------------------------------------------------- images


@dataclass(frozen=True)
class Figure:
    """An image of the page: ``uri`` is None when the bytes are not a PNG, JPEG or GIF."""

    name: str
    uri: str | None
    caption: str  # one of _CAPTIONED_PLOTS, or "" for the bare name


def image_mime(data: bytes) -> str | None:
    """The type of an embeddable image, from its first bytes. Pure.

    PNG, JPEG and GIF only: anything else (SVG could carry script) is not embedded.
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return None


def caption_kind(name: str) -> str:
    """Which plot's caption an image gets, from its file name ("" for none). Pure."""
    stem = _stem(name).lower()
    for plot in _CAPTIONED_PLOTS:
        if _stem(plot) in stem:
            return plot
    return ""


def figure(name: str, data: bytes) -> Figure:
    """An image as a ``data:`` URI. Pure."""
    mime = image_mime(data)
    uri = None if mime is None else f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return Figure(name, uri, caption_kind(name))


def named_images(value: object, images: Mapping[str, bytes], depth: int = 0) -> list[str]:
    """Names of ``images`` that appear as string values anywhere in ``value``. Pure."""
    found: list[str] = []
    if depth > MAX_DEPTH:
        return found
    if isinstance(value, str):
        if value in images:
            found.append(value)
    elif isinstance(value, Mapping):
        for v in value.values():
            found.extend(named_images(v, images, depth + 1))
    elif isinstance(value, Sequence | set | frozenset) and not isinstance(value, bytes):
        for v in value:
            found.extend(named_images(v, images, depth + 1))
    return list(dict.fromkeys(found))


def _plot_order(name: str) -> tuple[int, str]:
    stem = name.lower()
    for rank, prefix in enumerate(_PLOT_ORDER):
        if stem.startswith(prefix):
            return (rank, stem)
    return (len(_PLOT_ORDER), stem)


# ---------------------------------------------------------------- sections


@dataclass(frozen=True)
class StatTest:
    """One statistical test, split for the page."""

    name: str
    value: object  # the test as given (shown generically when not a mapping)
    significant: bool | None = None
    results: dict[str, Any] = field(default_factory=dict)  # RESULT_KEYS present, in order
    prose: list[tuple[str, Any]] = field(default_factory=list)  # PROSE_KEYS present
    details: dict[str, Any] = field(default_factory=dict)  # everything else
    figures: list[Figure] = field(default_factory=list)


def _prose(mapping: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [
        (key, mapping[key])
        for key in PROSE_KEYS
        if mapping.get(key) is not None and mapping.get(key) != "" and mapping.get(key) != []
    ]


def stat_test(name: str, test: object, images: Mapping[str, bytes]) -> StatTest:
    """A test of ``summary["tests"]`` split into verdict, numbers, prose, the rest
    and the images it names. Pure."""
    if not isinstance(test, Mapping):
        return StatTest(name, test)
    significant = test.get("significant")
    results = {k: test[k] for k in RESULT_KEYS if k in test and is_scalar(test[k])}
    details = {
        k: v
        for k, v in test.items()
        if str(k) not in results
        and str(k) not in PROSE_KEYS
        and not (str(k) == "significant" and is_bool(significant))
        and not (str(k) in IMAGE_KEYS and named_images(v, images))
    }
    return StatTest(
        name=name,
        value=test,
        significant=bool(significant) if is_bool(significant) else None,
        results=results,
        prose=_prose(test),
        details=details,
        figures=[figure(n, images[n]) for n in named_images(test, images)],
    )


@dataclass(frozen=True)
class EstimateView:
    """One estimate of ``summary["estimates"]``: name ("" when the estimates are
    one flat mapping), prose, the rest, and the images it names."""

    name: str
    prose: list[tuple[str, Any]]
    details: dict[str, Any]
    figures: list[Figure]


def estimate_views(estimates: Mapping[str, Any], images: Mapping[str, bytes]) -> list[EstimateView]:
    """The estimates, one view each (or one unnamed view of a flat mapping). Pure."""
    nested = all(isinstance(v, Mapping) for v in estimates.values())
    items = list(estimates.items()) if nested else [("", estimates)]
    return [
        EstimateView(
            name=str(name),
            prose=_prose(estimate),
            details={k: v for k, v in estimate.items() if str(k) not in PROSE_KEYS},
            figures=[figure(n, images[n]) for n in named_images(estimate, images)],
        )
        for name, estimate in items
    ]


def option_labels(summary: Mapping[str, Any]) -> dict[str, str]:
    """Option id -> label, from ``option_labels`` or ``options`` of the summary. Pure."""
    for key in ("option_labels", "options"):
        value = summary.get(key)
        if isinstance(value, Mapping):
            return {str(k): str(v) for k, v in value.items() if isinstance(v, str)}
        if isinstance(value, Sequence) and not isinstance(value, str):
            out = {}
            for item in value:
                if isinstance(item, Mapping) and "id" in item and "label" in item:
                    out[str(item["id"])] = str(item["label"])
            if out:
                return out
    return {}


@dataclass(frozen=True)
class OptionTotal:
    """One option of the official totals."""

    option: str
    label: str
    votes: object
    share: str | None  # of ballots cast, formatted; None when unknown


def option_totals(
    totals: Mapping[str, Any], labels: Mapping[str, str], style: NumberStyle
) -> list[OptionTotal]:
    """The official votes per option with their share of ballots cast. Pure."""
    options = totals.get("options")
    if not isinstance(options, Mapping):
        return []
    cast = totals.get(ProtocolLine.BALLOTS_CAST)
    return [
        OptionTotal(str(o), labels.get(str(o), str(o)), v, format_percent(v, cast, style))
        for o, v in options.items()
    ]


@dataclass(frozen=True)
class Column:
    """A column of the regional table: ``key`` is the data path (``flags.proof``),
    ``title`` the key shown and ``sub`` the sub-key after a colon (or None)."""

    key: str
    title: str
    sub: str | None = None


def regional_table(
    regional: Sequence[Mapping[str, Any]], labels: Mapping[str, str]
) -> tuple[list[Column], list[dict[str, Any]]]:
    """Regional rows as one flat table. Pure.

    Nested mappings (shares per option, flags per kind) become sub-columns
    ``key.sub``; a flat ``share_<option>`` column of a known option is shown as a
    share of that option. Returns the columns in order of first appearance and
    the rows as column key -> value.
    """
    columns: dict[str, Column] = {}
    rows: list[dict[str, Any]] = []
    for row in regional:
        flat: dict[str, Any] = {}
        for key, value in row.items():
            name = str(key)
            if isinstance(value, Mapping):
                for sub, inner in value.items():
                    path = f"{name}.{sub}"
                    columns.setdefault(path, Column(path, name, str(sub)))
                    flat[path] = inner
                continue
            prefix, _, option = name.partition("_")
            if prefix == "share" and option in labels:
                columns.setdefault(name, Column(name, prefix, option))
            else:
                columns.setdefault(name, Column(name, name))
            flat[name] = value
        rows.append(flat)
    return list(columns.values()), rows


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def page_context(
    summary: Mapping[str, Any],
    discrepancies: Sequence[Mapping[str, Any]],
    regional: Sequence[Mapping[str, Any]],
    images: Mapping[str, bytes],
    title: str | None = None,
    *,
    election_id: str | None = None,
    lang: str = DEFAULT_LANGUAGE,
    max_proof_rows: int = MAX_PROOF_ROWS,
) -> dict[str, Any]:
    """Everything ``report.html`` shows, prepared for the templates. Pure.

    The page's title is ``title`` as given, or else "Golos report: <election_id>"
    in the page's language (a translated message of the templates)."""
    if title is None and election_id is None:
        raise ValueError("a report page needs a title or an election id")
    style = number_style(lang)
    kinds = flag_kinds(discrepancies)
    flags = count_flags(summary.get("flags"), kinds)
    proof_rows = rows_of_kind(discrepancies, kinds, FlagKind.PROOF)
    statistical_rows = rows_of_kind(discrepancies, kinds, FlagKind.STATISTICAL)
    declared_rows = [r for r in statistical_rows if has_crowd_figure(r)]
    tested_rows = [r for r in statistical_rows if not has_crowd_figure(r)]

    tests = summary.get("tests")
    stat_tests = (
        [stat_test(str(name), test, images) for name, test in tests.items()]
        if isinstance(tests, Mapping)
        else []
    )
    estimates = summary.get("estimates")
    estimate_list = (
        estimate_views(estimates, images) if isinstance(estimates, Mapping) and estimates else []
    )
    # Images go with the test or estimate that names them; the rest by their name.
    used = {f.name for test in stat_tests for f in test.figures}
    used |= {f.name for estimate in estimate_list for f in estimate.figures}
    unnamed = [name for name in images if name not in used]
    crowd_figures = [figure(n, images[n]) for n in sorted(unnamed) if n.lower().startswith("crowd")]
    distributions = [
        figure(n, images[n])
        for n in sorted(unnamed, key=_plot_order)
        if not n.lower().startswith("crowd")
    ]
    totals = _mapping(summary.get("official_totals"))
    labels = option_labels(summary)
    columns, regional_rows = regional_table(regional, labels)
    note = summary.get("note")
    return {
        "title": title,
        "election_id": election_id,
        "summary": summary,
        "labels": labels,
        "election": summary.get("election"),
        "report_format": summary.get("format", "report/1"),
        "dates": [(key, summary[key]) for key in DATE_KEYS if summary.get(key) is not None],
        # The platform's own note is said, translated, by the bullets under it.
        "note": note if isinstance(note, str) and note and note != SUMMARY_NOTE else None,
        "flags": flags,
        "proof_rows": proof_rows[:max_proof_rows],
        "proof_total": len(proof_rows),
        "proof_by_source": by_rule_and_source(proof_rows),
        "crowd_figures": crowd_figures,
        "tests": stat_tests,
        "distributions": distributions,
        "signal_rows": strongest_signals(tested_rows, MAX_SIGNAL_ROWS),
        "signal_total": len(tested_rows),
        "declared_rows": largest_excess(declared_rows, MAX_SIGNAL_ROWS),
        "declared_total": len(declared_rows),
        "estimates": estimate_list,
        "estimates_given": estimates if not isinstance(estimates, Mapping) else None,
        "official": totals,
        "official_scalars": {k: v for k, v in totals.items() if k != "options"},
        "official_options": option_totals(totals, labels, style),
        "regional_columns": columns,
        "regional_rows": regional_rows,
        "crowd": summary.get("crowd"),
    }


# ---------------------------------------------------------------- rendering


def _filters(style: NumberStyle) -> dict[str, Callable[..., Any]]:
    return {
        "number": functools.partial(format_number, style=style),
        "humanise": humanise,
        "shape": value_shape,
        "as_list": as_list,
        "record_columns": record_columns,
        "short_repr": short_repr,
        "join_path": join_path,
    }


@functools.cache
def report_environment(lang: str) -> jinja2.Environment:
    """The shared page environment of ``lang`` with the report's filters and tests,
    built once per language (templates compile once).

    Shared by every thread that renders a report: a Jinja2 environment is only read
    once built. Two first calls at once may each build one; the cache keeps one.
    """
    env = environment(lang)
    style = number_style(lang)
    env.filters.update(_filters(style))
    env.tests.update({"realnumber": is_number, "yesno": is_bool, "scalar": is_scalar})
    env.globals.update(
        {
            "is_option_path": is_option_path,
            "list_separator": style.list_separator,
            "max_generic_rows": MAX_GENERIC_ROWS,
            "max_inline_scalars": MAX_INLINE_SCALARS,
            "numeric_columns": NUMERIC_COLUMNS,
            "proof_columns": PROOF_COLUMNS,
            "signal_columns": SIGNAL_COLUMNS,
            "declared_columns": DECLARED_COLUMNS,
            "prose_keys": PROSE_KEYS,
            "dismissed": ReviewStatus.DISMISSED.value,
            "Flag": Flag,
            "ReportFile": ReportFile,
        }
    )
    return env


def render_report(
    summary: dict[str, Any],
    discrepancies: list[dict[str, Any]],
    regional: list[dict[str, Any]],
    images: dict[str, bytes],
    title: str | None = None,
    *,
    election_id: str | None = None,
    lang: str = DEFAULT_LANGUAGE,
    max_proof_rows: int = MAX_PROOF_ROWS,
) -> str:
    """The whole ``report.html`` page in ``lang`` (see the module docstring); its
    title is ``title``, or else the translated "Golos report: <election_id>"."""
    context = page_context(
        summary or {},
        discrepancies or [],
        regional or [],
        images or {},
        title,
        election_id=election_id,
        lang=lang,
        max_proof_rows=max_proof_rows,
    )
    return report_environment(lang).get_template("report.html").render(context)
