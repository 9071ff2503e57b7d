"""``report.html``: the report for people, one self-contained page.

Pure rendering: the summary (``summary.json`` of ``report/1``, plus the platform's
``estimates`` and ``crowd``), the discrepancy rows, the regional rows and the PNG
plots in; an HTML string out. Images are embedded as ``data:`` URIs and the CSS is
inline: no external resource, no JavaScript; the page opens offline.

Proof, statistical signals and estimates are three separate sections, each with
its own colour and a statement of what it is and is not:

* **Proof**: flags of kind ``proof`` (numbers that contradict each other), by rule
  and source, and the first rows of them (all rows are in ``discrepancies.csv``).
* **Statistical signals**: each test of ``summary["tests"]`` with its numbers, null
  model and inclusion rule, and its plots, under a banner that they are not proof.
* **Estimates**: ``summary["estimates"]``, with assumptions and intervals.

Everything that comes from data (region names, precinct ids, details, test keys)
is HTML-escaped. Any JSON-like value is rendered generically (nested tables), so
tests and estimates with keys this module does not know still show.

Images: ``images`` maps a name (``fingerprint.png``) to PNG bytes. A test or
estimate that names an image in one of its values (``"image": "fingerprint.png"``)
gets it shown beside its numbers; images no test names are shown in the section
their name suggests (``crowd*`` under Proof, the rest under Statistical signals).
"""

from __future__ import annotations

import base64
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from html import escape
from types import MappingProxyType
from typing import Any

PROOF_FLAGS = (
    "crowd_exceeds_official",
    "crowd_exceeds_turnout",
    "protocol_arithmetic",
    "conflicting_protocols",
)
STATISTICAL_FLAGS = ("integer_percent", "turnout_outlier", "share_outlier")

MAX_PROOF_ROWS = 200
MAX_SIGNAL_ROWS = 25
_MAX_GENERIC_ROWS = 200
_MAX_DEPTH = 6

_TEST_TITLES = {
    "integer_percent": "Integer percentages (Kobak, Shpilkin & Pshenichnikov 2016)",
    "fingerprint": "Turnout × share fingerprint (Klimek, Yegorov, Hanel & Thurner 2012)",
    "shpilkin": "Shpilkin's anomalous-vote estimate",
    "outliers": "Outliers within districts (robust z-scores)",
    "turnout_outlier": "Turnout outliers within districts",
    "share_outlier": "Share outliers within districts",
    "digits": "Second-digit and last-digit tests (low weight)",
    "second_digit": "Second-digit test (Mebane 2BL, low weight)",
    "last_digit": "Last-digit test (Beber & Scacco, low weight)",
    "fdr": "False-discovery-rate control (Benjamini–Hochberg)",
}
# Shown first, in this order, in a test's table of numbers.
_KNOWN_RESULT_KEYS = (
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
# Shown as labelled prose under the numbers.
_PROSE_KEYS = {
    "null_model": "Null model",
    "inclusion_rule": "Inclusion rule",
    "significance": "Significance",
    "assumption": "Assumption",
    "assumptions": "Assumptions",
    "caveat": "Caveat",
    "caveats": "Caveats",
    "method": "Method",
    "note": "Note",
    "skipped": "Not run",
}
_IMAGE_KEYS = ("image", "images", "plot", "plots")

_PROOF_COLUMNS = (
    "precinct_id",
    "region",
    "district",
    "flag",
    "option",
    "source",
    "crowd",
    "official",
    "detail",
    "review_status",
)
_SIGNAL_COLUMNS = (
    "precinct_id",
    "region",
    "district",
    "flag",
    "option",
    "statistic",
    "p_value",
    "q_value",
    "detail",
    "review_status",
)

_CSS = """
:root { --proof: #c0392b; --stat: #7d3c98; --est: #1f618d; --ink: #1c2833;
        --muted: #5d6d7e; --line: #d5d8dc; --zebra: #f8f9f9; }
* { box-sizing: border-box; }
body { font: 15px/1.45 "DejaVu Sans", "Segoe UI", Roboto, Arial, sans-serif; color: var(--ink);
       margin: 0; background: #eef1f3; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header .sub { color: var(--muted); margin: 0 0 14px; }
nav { margin: 10px 0 18px; font-size: 14px; }
nav a { color: var(--ink); margin-right: 14px; text-decoration: none;
        border-bottom: 2px solid var(--line); }
nav a.proof { border-color: var(--proof); } nav a.stat { border-color: var(--stat); }
nav a.est { border-color: var(--est); }
h2 { font-size: 21px; margin: 34px 0 10px; padding: 6px 12px; border-left: 6px solid var(--muted);
     background: #f4f6f7; }
h3 { font-size: 17px; margin: 24px 0 8px; }
h4 { font-size: 15px; margin: 16px 0 6px; color: var(--muted); }
section.proof h2 { border-color: var(--proof); background: #fdedec; }
section.stat h2 { border-color: var(--stat); background: #f5eef8; }
section.est h2 { border-color: var(--est); background: #eaf2f8; }
section.stat, section.est, section.proof { padding-bottom: 6px; }
.banner { padding: 10px 14px; margin: 10px 0 14px; border-radius: 4px; font-weight: bold; }
.banner.proof { background: #fdedec; border: 2px solid var(--proof); color: #78281f; }
.banner.stat { background: #f5eef8; border: 2px dashed var(--stat); color: #4a235a; }
.banner.est { background: #eaf2f8; border: 2px dashed var(--est); color: #154360; }
.banner span { font-weight: normal; display: block; margin-top: 4px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { flex: 1 1 170px; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.card .n { font-size: 24px; font-weight: bold; }
.card .l { color: var(--muted); font-size: 13px; }
.card.proof { border-color: var(--proof); } .card.proof .n { color: var(--proof); }
.scroll { overflow-x: auto; max-width: 100%; margin: 6px 0 10px; }
table { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
th, td { border: 1px solid var(--line); padding: 3px 7px; text-align: left; vertical-align: top; }
thead th { background: #eaeded; position: sticky; top: 0; }
tbody tr:nth-child(even) { background: var(--zebra); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv th { background: #f4f6f7; font-weight: normal; color: var(--muted); white-space: nowrap; }
table.kv table.kv { margin: 0; }
tr.dismissed td { color: #999; text-decoration: line-through; }
td.detail { min-width: 180px; max-width: 320px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
         font-weight: bold; }
.badge.yes { background: var(--stat); color: #fff; } .badge.no { background: #d5d8dc; }
.prose { margin: 4px 0 8px; } .prose b { color: var(--muted); }
.note { color: var(--muted); font-size: 13px; margin: 4px 0 10px; }
.empty { color: var(--muted); font-style: italic; }
figure { margin: 12px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 13px; }
.test { border-top: 1px solid var(--line); margin-top: 18px; }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line);
         padding-top: 8px; }
@media print { body { background: #fff; } main { padding: 0; } thead th { position: static; } }
"""


# ---------------------------------------------------------------- formatting


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_bool(value: object) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"


def _last(path: str) -> str:
    return path.rsplit(".", 1)[-1].lower()


def _looks_like_fraction(path: str) -> bool:
    """A value whose key (or a parent's key) names a share or turnout: shown in percent."""
    path = path.lower()
    return any(word in path for word in ("share", "turnout", "fraction"))


def _is_probability(path: str) -> bool:
    key = _last(path)
    return key.startswith(("p_", "q_")) or key in ("p", "q", "pvalue", "qvalue", "alpha")


def _fmt_number(value: object, path: str = "") -> str:
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    number = float(value)  # type: ignore[arg-type]
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


# Option id -> label, for the page being rendered (set by render_report).
_LABELS: ContextVar[Mapping[str, str]] = ContextVar(
    "golos_option_labels", default=MappingProxyType({})
)
_OPTION_KEYS = ("leader", "option", "option_id", "winner")


def _label(option: object) -> str:
    """An option id with its label, escaped: ``Label (opt4)``; anything else as is."""
    label = _LABELS.get().get(str(option)) if isinstance(option, str) else None
    return f"{_e(label)} ({_e(option)})" if label else _e(option)


def _fmt(value: object, path: str = "") -> str:
    """A scalar as escaped HTML text."""
    if value is None:
        return "—"
    if _is_bool(value):
        return "yes" if value else "no"
    if _is_number(value):
        return _fmt_number(value, path)
    if isinstance(value, str) and _last(path) in _OPTION_KEYS:
        return _label(value)
    return _e(value)


def _humanise(key: object) -> str:
    if isinstance(key, str) and key in _LABELS.get():
        return _label(key)
    text = str(key).replace("_", " ")
    return _e(text[:1].upper() + text[1:])


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | bytes) or _is_number(value) or _is_bool(value)


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _cell(value: object, path: str = "", extra: str = "") -> str:
    if _is_scalar(value):
        classes = " ".join(c for c in ("num" if _is_number(value) else "", extra) if c)
        cls = f" class='{classes}'" if classes else ""
        return f"<td{cls}>{_fmt(value, path)}</td>"
    return f"<td>{_render_value(value, 1, path)}</td>"


# ---------------------------------------------------------------- generic values


def _render_value(value: object, depth: int = 0, path: str = "") -> str:
    """Any JSON-like value as HTML: scalars inline, lists and dicts as tables.

    ``path`` is the dotted chain of keys above the value; it decides the format
    (a share in percent, a p-value in scientific notation, an option id labelled).
    """
    if _is_scalar(value):
        return _fmt(value, path)
    if depth > _MAX_DEPTH:
        return f"<code>{_e(repr(value)[:500])}</code>"
    if isinstance(value, Mapping):
        if not value:
            return "<span class='empty'>none</span>"
        inner = list(value.values())
        if len(value) >= 2 and all(
            isinstance(v, Mapping) and v and all(_is_scalar(x) for x in v.values()) for v in inner
        ):
            return _records_table(
                [{"": k, **v} for k, v in value.items()], depth, path, first_header=""
            )
        return _kv_table(value, depth, path)
    if isinstance(value, Sequence | set | frozenset) and not isinstance(value, str | bytes):
        items = list(value)
        if not items:
            return "<span class='empty'>none</span>"
        if all(_is_scalar(x) for x in items) and not all(isinstance(x, str) for x in items):
            shown = ", ".join(_fmt(x, path) for x in items[:20])
            more = f", … ({len(items):,} in all)" if len(items) > 20 else ""
            return f"[{shown}{more}]"
        if all(isinstance(x, Mapping) for x in items):
            return _records_table(items, depth, path)
        shown_items = items[:_MAX_GENERIC_ROWS]
        more = f"<li>… ({len(items):,} in all)</li>" if len(items) > _MAX_GENERIC_ROWS else ""
        return (
            "<ul>"
            + "".join(f"<li>{_render_value(x, depth + 1, path)}</li>" for x in shown_items)
            + more
            + "</ul>"
        )
    return _e(value)


def _kv_table(
    mapping: Mapping[Any, Any], depth: int, path: str = "", skip: Iterable[str] = ()
) -> str:
    skipped = set(skip)
    rows = []
    for key, value in mapping.items():
        if str(key) in skipped:
            continue
        child = _join(path, key)
        if _is_scalar(value):
            cls = " class='num'" if _is_number(value) else ""
            rows.append(f"<tr><th>{_humanise(key)}</th><td{cls}>{_fmt(value, child)}</td></tr>")
        else:
            inner = _render_value(value, depth + 1, child)
            rows.append(f"<tr><th>{_humanise(key)}</th><td>{inner}</td></tr>")
    if not rows:
        return ""
    return f"<table class='kv'>{''.join(rows)}</table>"


def _records_table(
    records: Sequence[Mapping[Any, Any]],
    depth: int = 0,
    path: str = "",
    first_header: str | None = None,
    limit: int = _MAX_GENERIC_ROWS,
) -> str:
    columns: list[Any] = []
    seen: set[Any] = set()
    for record in records:
        for key in record:
            if key not in seen:
                seen.add(key)
                columns.append(key)
    head = "".join(
        "<th></th>" if c == "" and first_header is not None else f"<th>{_humanise(c)}</th>"
        for c in columns
    )
    body = []
    for record in records[:limit]:
        cells = []
        for c in columns:
            value = record.get(c)
            if c == "" and first_header is not None:
                cells.append(f"<th>{_humanise(value)}</th>")
            else:
                cells.append(_cell(value, _join(path, c)))
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (
        f"<p class='note'>First {limit:,} of {len(records):,} rows.</p>"
        if len(records) > limit
        else ""
    )
    return (
        f"<div class='scroll'><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>{more}"
    )


# ---------------------------------------------------------------- images


def _image_mime(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return None  # anything else (SVG could carry script) is not embedded


def _figure(name: str, data: bytes, caption: str = "") -> str:
    mime = _image_mime(data)
    if mime is None:
        return f"<p class='note'>Image {_e(name)} is not a PNG, JPEG or GIF and is not shown.</p>"
    encoded = base64.b64encode(data).decode("ascii")
    text = _e(caption or name)
    return (
        f"<figure><img src='data:{mime};base64,{encoded}' alt='{text}'>"
        f"<figcaption>{text}</figcaption></figure>"
    )


def _named_images(value: object, images: Mapping[str, bytes], depth: int = 0) -> list[str]:
    """Names of ``images`` that appear as string values anywhere in ``value``."""
    found: list[str] = []
    if depth > _MAX_DEPTH:
        return found
    if isinstance(value, str):
        if value in images:
            found.append(value)
    elif isinstance(value, Mapping):
        for v in value.values():
            found.extend(_named_images(v, images, depth + 1))
    elif isinstance(value, Sequence | set | frozenset) and not isinstance(value, bytes):
        for v in value:
            found.extend(_named_images(v, images, depth + 1))
    return list(dict.fromkeys(found))


_IMAGE_CAPTIONS = {
    "fingerprint": "Turnout × leader share per station, log colour scale.",
    "turnout": "Turnout per station in 0.1 pp bins; red: bins on integer percentages.",
    "share": "Leader share per station in 0.1 pp bins; red: bins on integer percentages.",
    "crowd": "Crowd vs official votes per station: above the line, the protocol is false.",
}


def _plot_order(name: str) -> tuple[int, str]:
    stem = name.lower()
    for rank, prefix in enumerate(("fingerprint", "turnout", "share")):
        if stem.startswith(prefix):
            return (rank, stem)
    return (3, stem)


def _caption(name: str) -> str:
    stem = name.rsplit(".", 1)[0].lower()
    for prefix, caption in _IMAGE_CAPTIONS.items():
        if stem.startswith(prefix) or prefix in stem:
            return f"{name}: {caption}"
    return name


# ---------------------------------------------------------------- sections


def _banner(kind: str, title: str, text: str) -> str:
    return f"<div class='banner {kind}'>{_e(title)}<span>{_e(text)}</span></div>"


def _flags(summary: Mapping[str, Any]) -> Mapping[str, Any]:
    flags = summary.get("flags")
    return flags if isinstance(flags, Mapping) else {}


def _flag_kinds(discrepancies: Sequence[Mapping[str, object]]) -> dict[str, str]:
    kinds: dict[str, str] = dict.fromkeys(PROOF_FLAGS, "proof")
    kinds.update(dict.fromkeys(STATISTICAL_FLAGS, "statistical"))
    for row in discrepancies:
        flag, kind = row.get("flag"), row.get("kind")
        if isinstance(flag, str) and isinstance(kind, str) and flag not in kinds:
            kinds[flag] = kind
    return kinds


def _count_table(counts: Mapping[str, int], header: str) -> str:
    if not counts:
        return "<p class='empty'>None.</p>"
    rows = "".join(
        f"<tr><td><code>{_e(name)}</code></td><td class='num'>{_fmt(n)}</td></tr>"
        for name, n in counts.items()
    )
    return (
        f"<table><thead><tr><th>{_e(header)}</th><th class='num'>Flags</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _rows_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    head = "".join(
        f"<th class='num'>{_e(c)}</th>"
        if c in ("crowd", "official", "statistic", "p_value", "q_value")
        else f"<th>{_e(c)}</th>"
        for c in columns
    )
    body = []
    for row in rows:
        status = row.get("review_status")
        cls = " class='dismissed'" if status == "dismissed" else ""
        cells = "".join(
            _cell(row.get(c), "id" if c == "option" else c, "detail" if c == "detail" else "")
            for c in columns
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return (
        f"<div class='scroll'><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _header(summary: Mapping[str, Any], title: str) -> str:
    election = summary.get("election")
    bits = []
    if election is not None:
        bits.append(f"Election <code>{_e(election)}</code>")
    bits.append(f"format <code>{_e(summary.get('format', 'report/1'))}</code>")
    for key in ("generated_at", "generated", "data_as_of"):
        if summary.get(key) is not None:
            bits.append(f"{_humanise(key).lower()} {_e(summary[key])}")
    flags = _flags(summary)
    total_flags = sum(v for v in flags.values() if _is_number(v))
    cards = [
        ("", summary.get("precincts"), "precincts"),
        ("", summary.get("precincts_with_official"), "precincts with official figures"),
        ("proof", summary.get("precincts_with_proof"), "precincts with proof of a false count"),
        ("", total_flags, "open or confirmed flags (all kinds)"),
    ]
    card_html = "".join(
        f"<div class='card {kind}'><div class='n'>{_fmt(n)}</div><div class='l'>{_e(label)}"
        "</div></div>"
        for kind, n, label in cards
    )
    note = summary.get("note")
    notes = [
        "Proof: numbers that contradict each other (a verified crowd count above the "
        "official count, or a protocol whose own arithmetic fails). A lower bound, never "
        "an estimate.",
        "Statistical signals: patterns unlikely under a stated null model. Never proof of "
        "anything at a single station.",
        "Estimates: what the result may have been, resting on assumptions, with intervals.",
        "All rows are in discrepancies.csv / discrepancies.parquet and precincts.csv / "
        "precincts.parquet beside this file; the figures in summary.json.",
    ]
    if isinstance(note, str) and note:
        notes.insert(0, note)
    return (
        f"<header><h1>{_e(title)}</h1><p class='sub'>{' · '.join(bits)}</p>"
        "<nav><a class='proof' href='#proof'>Proof</a>"
        "<a class='stat' href='#signals'>Statistical signals</a>"
        "<a class='est' href='#estimates'>Estimates</a>"
        "<a href='#official'>Official totals</a><a href='#regions'>Regions</a>"
        "<a href='#crowd'>Crowd</a></nav>"
        f"<div class='cards'>{card_html}</div>"
        "<ul class='note'>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul></header>"
    )


def _proof_section(
    summary: Mapping[str, Any],
    discrepancies: Sequence[Mapping[str, object]],
    kinds: Mapping[str, str],
    images: Mapping[str, bytes],
    max_rows: int,
) -> str:
    flags = _flags(summary)
    proof_counts = {k: v for k, v in flags.items() if kinds.get(k) == "proof"}
    proof_rows = [r for r in discrepancies if r.get("kind") == "proof"]
    by_source: dict[tuple[str, str], int] = {}
    for row in proof_rows:
        key = (str(row.get("flag") or ""), str(row.get("source") or ""))
        by_source[key] = by_source.get(key, 0) + 1
    parts = [
        "<section class='proof' id='proof'><h2>Proof</h2>",
        _banner(
            "proof",
            "Contradictions between numbers.",
            "A verified crowd count above the official count for the same option at the same "
            "station means the protocol is false; so does a protocol whose own arithmetic "
            "fails. The rule is one-sided: it gives a lower bound on falsification, never an "
            "estimate. Declared (unverified) crowd counts are shown with their source and do "
            "not prove anything on their own.",
        ),
        f"<p>Precincts with at least one proof flag: <b>{_fmt(summary.get('precincts_with_proof'))}"
        "</b> (dismissed flags not counted).</p>",
        "<h3>Proof flags by rule</h3>",
        _count_table(proof_counts, "Rule"),
    ]
    if by_source:
        source_rows = "".join(
            f"<tr><td><code>{_e(f)}</code></td><td>{_e(s) or '—'}</td>"
            f"<td class='num'>{_fmt(n)}</td></tr>"
            for (f, s), n in sorted(by_source.items())
        )
        parts.append(
            "<h4>By evidence source (all review statuses)</h4><table><thead><tr><th>Rule</th>"
            "<th>Source</th><th class='num'>Flags</th></tr></thead>"
            f"<tbody>{source_rows}</tbody></table>"
        )
    for name in sorted(images):
        if name.lower().startswith("crowd"):
            parts.append(_figure(name, images[name], _caption(name)))
    parts.append("<h3>Proof discrepancies</h3>")
    if proof_rows:
        shown = proof_rows[:max_rows]
        if len(proof_rows) > len(shown):
            parts.append(
                f"<p class='note'>The first {len(shown):,} of {len(proof_rows):,} proof "
                "flags; all of them are in <code>discrepancies.csv</code> "
                "(and <code>discrepancies.parquet</code>).</p>"
            )
        else:
            parts.append(
                f"<p class='note'>All {len(proof_rows):,} proof flags; the same rows are in "
                "<code>discrepancies.csv</code>. Struck-through rows were dismissed by "
                "observers.</p>"
            )
        parts.append(_rows_table(shown, _PROOF_COLUMNS))
    else:
        parts.append("<p class='empty'>No proof flags for this election.</p>")
    parts.append("</section>")
    return "".join(parts)


def _test_block(name: str, test: object, images: Mapping[str, bytes], used: set[str]) -> str:
    title = _TEST_TITLES.get(name, _humanise(name))
    parts = [f"<div class='test'><h3>{title}</h3>"]
    if isinstance(test, Mapping):
        significant = test.get("significant")
        if _is_bool(significant):
            badge = (
                "<span class='badge yes'>significant under its null model</span>"
                if significant
                else "<span class='badge no'>not significant</span>"
            )
            parts.append(f"<p>{badge}</p>")
        known = {k: test[k] for k in _KNOWN_RESULT_KEYS if k in test and _is_scalar(test[k])}
        if known:
            parts.append("<h4>Result</h4>" + _kv_table(known, 1, name))
        for key, label in _PROSE_KEYS.items():
            value = test.get(key)
            if value is None or value == "" or value == []:
                continue
            if isinstance(value, str):
                parts.append(f"<p class='prose'><b>{_e(label)}:</b> {_e(value)}</p>")
            else:
                parts.append(
                    f"<div class='prose'><b>{_e(label)}:</b> {_render_value(value, 1, key)}</div>"
                )
        named = _named_images(test, images)
        rest = {
            k: v
            for k, v in test.items()
            if str(k) not in known
            and str(k) not in _PROSE_KEYS
            and not (str(k) == "significant" and _is_bool(v))
            and not (str(k) in _IMAGE_KEYS and _named_images(v, images))
        }
        if rest:
            parts.append("<h4>Details</h4>" + _kv_table(rest, 1, name))
        for image in named:
            used.add(image)
            parts.append(_figure(image, images[image], _caption(image)))
    else:
        parts.append(f"<p>{_render_value(test, 1, name)}</p>")
    parts.append("</div>")
    return "".join(parts)


def _signals_section(
    summary: Mapping[str, Any],
    discrepancies: Sequence[Mapping[str, object]],
    kinds: Mapping[str, str],
    images: Mapping[str, bytes],
    used: set[str],
) -> str:
    tests = summary.get("tests")
    flags = _flags(summary)
    stat_counts = {k: v for k, v in flags.items() if kinds.get(k) == "statistical"}
    parts = [
        "<section class='stat' id='signals'><h2>Statistical signals</h2>",
        _banner(
            "stat",
            "These are not proof.",
            "Each test measures how unlikely a pattern is under a stated null model. With "
            "thousands of stations some patterns occur by chance; genuine local differences "
            "also produce them. A signal says where to look, not what happened; no station is "
            "shown to be falsified by a statistical test.",
        ),
    ]
    if isinstance(tests, Mapping) and tests:
        for name, test in tests.items():
            parts.append(_test_block(str(name), test, images, used))
    else:
        parts.append(
            "<p class='empty'>No statistical tests were run (no official per-station figures, "
            "or too few of them).</p>"
        )
    leftover = sorted(
        (n for n in images if n not in used and not n.lower().startswith("crowd")),
        key=_plot_order,
    )
    if leftover:
        parts.append("<div class='test'><h3>Distributions</h3>")
        for name in leftover:
            used.add(name)
            parts.append(_figure(name, images[name], _caption(name)))
        parts.append("</div>")
    parts.append("<div class='test'><h3>Statistical flags per station</h3>")
    parts.append(_count_table(stat_counts, "Rule"))
    stat_rows = [r for r in discrepancies if r.get("kind") == "statistical"]
    if stat_rows:

        def order(row: Mapping[str, object]) -> tuple[float, float]:
            q, p = row.get("q_value"), row.get("p_value")
            qf = float(q) if _is_number(q) and not math.isnan(float(q)) else math.inf  # type: ignore[arg-type]
            pf = float(p) if _is_number(p) and not math.isnan(float(p)) else math.inf  # type: ignore[arg-type]
            return (qf, pf)

        lowest = sorted(stat_rows, key=order)[:MAX_SIGNAL_ROWS]
        parts.append(
            f"<p class='note'>The {len(lowest):,} of {len(stat_rows):,} statistical flags with "
            "the lowest q-values (false-discovery-rate adjusted); all are in "
            "<code>discrepancies.csv</code>. Not proof.</p>"
        )
        parts.append(_rows_table(lowest, _SIGNAL_COLUMNS))
    parts.append("</div></section>")
    return "".join(parts)


def _estimates_section(
    summary: Mapping[str, Any], images: Mapping[str, bytes], used: set[str]
) -> str:
    estimates = summary.get("estimates")
    parts = [
        "<section class='est' id='estimates'><h2>Estimates</h2>",
        _banner(
            "est",
            "Estimates, not proof.",
            "What the result may have been, computed from stations without proof flags and from "
            "the crowd data. They rest on the assumptions written next to them (crowd voters are "
            "self-selected) and carry the uncertainty shown by their intervals.",
        ),
    ]
    if isinstance(estimates, Mapping) and estimates:
        nested = all(isinstance(v, Mapping) for v in estimates.values())
        items = list(estimates.items()) if nested else [("", estimates)]
        for name, estimate in items:
            if name:
                parts.append(f"<div class='test'><h3>{_humanise(name)}</h3>")
            else:
                parts.append("<div class='test'>")
            for key, label in _PROSE_KEYS.items():
                value = estimate.get(key)
                if value is None or value == "" or value == []:
                    continue
                if isinstance(value, str):
                    parts.append(f"<p class='prose'><b>{_e(label)}:</b> {_e(value)}</p>")
                else:
                    parts.append(
                        f"<div class='prose'><b>{_e(label)}:</b> "
                        f"{_render_value(value, 1, key)}</div>"
                    )
            table = _kv_table(estimate, 1, str(name), skip=_PROSE_KEYS)
            if table:
                parts.append(table)
            for image in _named_images(estimate, images):
                used.add(image)
                parts.append(_figure(image, images[image], _caption(image)))
            parts.append("</div>")
    elif estimates:
        parts.append(f"<div>{_render_value(estimates, 1)}</div>")
    else:
        parts.append("<p class='empty'>No estimates for this election.</p>")
    parts.append("</section>")
    return "".join(parts)


def _official_section(summary: Mapping[str, Any]) -> str:
    totals = summary.get("official_totals")
    parts = ["<section id='official'><h2>Official totals</h2>"]
    if not isinstance(totals, Mapping) or not totals:
        parts.append("<p class='empty'>No official figures.</p></section>")
        return "".join(parts)
    scalars = {k: v for k, v in totals.items() if k != "options"}
    if scalars:
        parts.append(_kv_table(scalars, 1))
    options = totals.get("options")
    labels = _option_labels(summary)
    if isinstance(options, Mapping) and options:
        cast = totals.get("ballots_cast")
        base = float(cast) if _is_number(cast) and float(cast) > 0 else None  # type: ignore[arg-type]
        rows = []
        for option, votes in options.items():
            share = f"{100.0 * float(votes) / base:.2f}%" if base and _is_number(votes) else "—"
            rows.append(
                f"<tr><td>{_e(labels.get(str(option), option))}</td>"
                f"<td><code>{_e(option)}</code></td><td class='num'>{_fmt(votes)}</td>"
                f"<td class='num'>{share}</td></tr>"
            )
        parts.append(
            "<div class='scroll'><table><thead><tr><th>Option</th><th>Id</th>"
            "<th class='num'>Votes</th><th class='num'>Share of ballots cast</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )
    parts.append(
        "<p class='note'>Sums of the official per-station figures published for this election; "
        "as published, not as verified.</p></section>"
    )
    return "".join(parts)


def _option_labels(summary: Mapping[str, Any]) -> dict[str, str]:
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


def _flatten(row: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, tuple[str, Any]]:
    """Column key -> (header, value); nested dicts (shares, flags) become sub-columns."""
    out: dict[str, tuple[str, Any]] = {}
    for key, value in row.items():
        if isinstance(value, Mapping):
            for sub, inner in value.items():
                label = labels.get(str(sub), str(sub))
                header = f"{key}: {label}".replace("_", " ")
                out[f"{key}.{sub}"] = (header, inner)
        else:
            out[str(key)] = (str(key).replace("_", " "), value)
    return out


def _regional_section(summary: Mapping[str, Any], regional: Sequence[Mapping[str, Any]]) -> str:
    parts = ["<section id='regions'><h2>Regions</h2>"]
    if not regional:
        parts.append("<p class='empty'>No regional figures.</p></section>")
        return "".join(parts)
    labels = _option_labels(summary)
    flat = [_flatten(row, labels) for row in regional]
    columns: dict[str, str] = {}
    for row in flat:
        for key, (header, _value) in row.items():
            columns.setdefault(key, header)
    head = "".join(f"<th>{_e(header[:1].upper() + header[1:])}</th>" for header in columns.values())
    body = []
    for row in flat:
        cells = []
        for key in columns:
            value = row.get(key, ("", None))[1]
            cells.append(_cell(value, key))
        body.append("<tr>" + "".join(cells) + "</tr>")
    parts.append(
        "<p class='note'>Official shares as published (share of ballots cast unless the column "
        "says otherwise); flags of all kinds, proof and statistical, per region.</p>"
        f"<div class='scroll'><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div></section>"
    )
    return "".join(parts)


def _crowd_section(summary: Mapping[str, Any]) -> str:
    crowd = summary.get("crowd")
    parts = ["<section id='crowd'><h2>Crowd evidence</h2>"]
    if isinstance(crowd, Mapping) and crowd:
        parts.append(
            "<p class='note'>Photos and crowd tallies received, and why some were not counted. "
            "Verified evidence can prove a false count; declared evidence is reported with its "
            "level and proves nothing on its own.</p>"
        )
        parts.append(_kv_table(crowd, 0, "crowd"))
    elif crowd:
        parts.append(f"<div>{_render_value(crowd, 1)}</div>")
    else:
        parts.append("<p class='empty'>No crowd evidence for this election.</p>")
    parts.append("</section>")
    return "".join(parts)


def render_report(
    summary: dict[str, Any],
    discrepancies: list[dict[str, Any]],
    regional: list[dict[str, Any]],
    images: dict[str, bytes],
    title: str,
    *,
    max_proof_rows: int = MAX_PROOF_ROWS,
) -> str:
    """The whole ``report.html`` page as a string (see the module docstring)."""
    summary = summary or {}
    discrepancies = discrepancies or []
    regional = regional or []
    images = images or {}
    token = _LABELS.set(_option_labels(summary))
    try:
        return _render(summary, discrepancies, regional, images, title, max_proof_rows)
    finally:
        _LABELS.reset(token)


def _render(
    summary: Mapping[str, Any],
    discrepancies: Sequence[Mapping[str, Any]],
    regional: Sequence[Mapping[str, Any]],
    images: Mapping[str, bytes],
    title: str,
    max_proof_rows: int,
) -> str:
    kinds = _flag_kinds(discrepancies)
    used: set[str] = set()
    # The statistical section is built before the proof section only to learn which
    # images the tests claim; the page order stays proof, signals, estimates.
    signals = _signals_section(summary, discrepancies, kinds, images, used)
    estimates = _estimates_section(summary, images, used)
    proof = _proof_section(summary, discrepancies, kinds, images, max_proof_rows)
    flags = _flags(summary)
    other = {k: v for k, v in flags.items() if kinds.get(k) not in ("proof", "statistical")}
    other_html = (
        "<section id='other-flags'><h2>Other flags</h2><p class='note'>Flags whose kind this "
        "report does not know; see discrepancies.csv.</p>"
        f"{_count_table(other, 'Rule')}</section>"
        if other
        else ""
    )
    body = "".join(
        [
            _header(summary, title),
            proof,
            signals,
            estimates,
            _official_section(summary),
            _regional_section(summary, regional),
            _crowd_section(summary),
            other_html,
            "<footer>Golos report (<code>report/1</code>). Proof, statistical signals and "
            "estimates are different kinds of evidence and are kept apart on purpose. This page "
            "is self-contained and works offline.</footer>",
        ]
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
