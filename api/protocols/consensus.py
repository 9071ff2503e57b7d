"""The protocols domain's decisions, apart from the database. Pure.

Two decisions:

* ``transcription_outcome``: what people's independent entries for one field of
  one photo make of it. Two entries that agree make the value; two that
  disagree ask for a third; two of three agreeing make the value; three
  different entries are a dispute an admin decides. "Illegible" (``None``) is a
  value of its own: two people saying they cannot read it make the field
  illegible (no value, shown as "illegible"), and one "illegible" beside a
  number is a disagreement like any other.
* ``reconcile``: a station's figures from every source (the imported file, each
  counted photo's figure for the field, with its provenance). Sources that agree
  confirm each other; any disagreement is a conflict with no figure (no source
  silently wins), and two sources that disagree on several fields are two
  different protocols posted for one station. Either raises
  ``conflicting_protocols`` (``conflict_finding``), with the numbers and their
  sources in its detail.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import NamedTuple

from api.protocols.schemas import FieldState, FigureStatus, SourceKind
from tally.proof import Finding
from tally.vocab import Flag, Source

# Entries that count for a field: two, and a third when the two disagree. Any later
# entry is refused by the service; were one stored, it would not count.
MAX_ENTRIES = 3
# Two sources (the file, a photo) that disagree on this many fields or more are two
# different protocols, not one misread digit. Two: one misread figure makes one
# field differ (and, on a protocol whose arithmetic holds, makes it fail); two
# independent misreads in one pair of readings, each confirmed by double entry or
# given by a confident reader, are far less likely than a second protocol.
DIFFERENT_PROTOCOL_FIELDS = 2
FILE_ORIGIN = "file"


class Outcome(NamedTuple):
    """A field's state after its entries, and its value when they settle one."""

    state: FieldState
    value: int | None = None


def transcription_outcome(entries: Sequence[int | None]) -> Outcome:
    """What independent entries (in the order they were made; ``None`` is
    "illegible") make of a field. Pure.

    0 or 1 entry: still ``transcribing``. 2 equal: ``agreed`` (or ``illegible``);
    2 different: ``needs_third``. 3 (only the first three count): a value entered
    twice or more is ``agreed`` (or ``illegible``); three different: ``disputed``.
    """
    counted = list(entries[:MAX_ENTRIES])
    if len(counted) < 2:
        return Outcome(FieldState.TRANSCRIBING)
    value, times = Counter(counted).most_common(1)[0]
    if times >= 2:
        return Outcome(FieldState.ILLEGIBLE) if value is None else Outcome(FieldState.AGREED, value)
    if len(counted) == 2:
        return Outcome(FieldState.NEEDS_THIRD)
    return Outcome(FieldState.DISPUTED)


def same_figures(a: Mapping[str, int | None], b: Mapping[str, int | None]) -> bool:
    """Whether two readings' confident values (field -> value, None: no value) agree
    on every field both give: what a copy of a photo and the photo must do. Pure."""
    return all(a[f] == b[f] for f in a.keys() & b.keys() if a[f] is not None and b[f] is not None)


_DIGITS = re.compile(r"\d+")


def same_station(precinct_id: str, read: str) -> bool:
    """Whether the precinct number the reader read on the form names the declared
    station. Pure.

    The form carries the commission's number (``523``); a station's id may carry
    more (``01-523``, ``p523``). The read number names the station when it equals the
    id, or when its digits equal the id's last run of digits, leading zeros aside.
    Nothing read (no digits): nothing contradicts the declared station."""
    if read.strip() == precinct_id.strip():
        return True
    read_digits = "".join(_DIGITS.findall(read))
    if not read_digits:
        return True
    runs = _DIGITS.findall(precinct_id)
    return bool(runs) and runs[-1].lstrip("0") == read_digits.lstrip("0")


# -- reconciling a station's sources -----------------------------------------------


@dataclass(frozen=True)
class FigureSource:
    """One source's figure for one field: the file's, or one photo's (its machine
    reading, people's transcription or an admin's decision). ``value`` None: the
    photo's field is agreed illegible (no figure, and no disagreement either)."""

    kind: SourceKind
    value: int | None
    photo_id: uuid.UUID | None = None
    transcribers: int = 0

    @property
    def origin(self) -> str:
        """The document this figure comes from: "file" or "photo:<id>"."""
        return FILE_ORIGIN if self.photo_id is None else f"photo:{self.photo_id}"


@dataclass(frozen=True)
class Figure:
    field_id: str
    value: int | None
    status: FigureStatus
    sources: tuple[FigureSource, ...]
    pending_photos: int = 0


@dataclass(frozen=True)
class Reconciliation:
    """A station's reconciled protocol."""

    figures: dict[str, Figure]  # in the order the fields were given
    conflicting_fields: tuple[str, ...]
    # (origin, origin, how many fields differ), for pairs that are two protocols.
    different_protocols: tuple[tuple[str, str, int], ...] = field(default=())

    @property
    def conflict(self) -> bool:
        return bool(self.conflicting_fields or self.different_protocols)

    def values(self) -> dict[str, int | None]:
        """The reconciled figures by field: None where unknown or in conflict."""
        return {f: fig.value for f, fig in self.figures.items()}


def reconcile_field(
    field_id: str, sources: Sequence[FigureSource], pending_photos: int = 0
) -> Figure:
    """One field's figure from its sources. Pure.

    Every source that gives a number agrees: that number (``confirmed`` with two or
    more sources, ``single`` with one). Any two differ: ``conflict`` and no number.
    No number at all: ``pending`` while a photo's field is still with people, else
    ``illegible`` when the only sources say nobody can read it, else ``none``."""
    numbers = {s.value for s in sources if s.value is not None}
    given = sum(1 for s in sources if s.value is not None)
    ordered = tuple(sorted(sources, key=_source_order))
    if len(numbers) > 1:
        return Figure(field_id, None, FigureStatus.CONFLICT, ordered, pending_photos)
    if numbers:
        status = FigureStatus.CONFIRMED if given >= 2 else FigureStatus.SINGLE
        return Figure(field_id, numbers.pop(), status, ordered, pending_photos)
    if pending_photos:
        status = FigureStatus.PENDING
    elif sources:
        status = FigureStatus.ILLEGIBLE
    else:
        status = FigureStatus.NONE
    return Figure(field_id, None, status, ordered, pending_photos)


def _source_order(source: FigureSource) -> tuple[int, str]:
    return (0 if source.photo_id is None else 1, source.origin)


def different_protocols(
    sources: Mapping[str, Sequence[FigureSource]],
) -> tuple[tuple[str, str, int], ...]:
    """The pairs of documents (the file, each photo) that disagree on at least
    ``DIFFERENT_PROTOCOL_FIELDS`` of the fields both give a number for, with how
    many: two different protocols, not a misread digit. Pure."""
    documents: dict[str, dict[str, int]] = {}
    for field_id, field_sources in sources.items():
        for s in field_sources:
            if s.value is not None:
                documents.setdefault(s.origin, {})[field_id] = s.value
    pairs = []
    # The file first, then the photos in the order given (oldest first).
    for a, b in combinations(sorted(documents, key=lambda o: o != FILE_ORIGIN), 2):
        first, second = documents[a], documents[b]
        differ = sum(1 for f in first.keys() & second.keys() if first[f] != second[f])
        if differ >= DIFFERENT_PROTOCOL_FIELDS:
            pairs.append((a, b, differ))
    return tuple(pairs)


def reconcile(
    sources: Mapping[str, Sequence[FigureSource]],
    pending_photos: Mapping[str, int] | None = None,
) -> Reconciliation:
    """A station's figures, field by field (in the order of ``sources``), with its
    conflicts. Pure."""
    pending = pending_photos or {}
    fields = list(sources) + [f for f in pending if f not in sources]
    figures = {f: reconcile_field(f, sources.get(f, ()), pending.get(f, 0)) for f in fields}
    conflicting = tuple(f for f, fig in figures.items() if fig.status is FigureStatus.CONFLICT)
    return Reconciliation(figures, conflicting, different_protocols(sources))


def provenance(reconciliation: Reconciliation) -> str:
    """A station's official figures' provenance in a few words, for a report's
    column: "conflict", or the sources behind its figures ("file", "file + 2 photos",
    "1 photo"), with "(N pending)" for fields still with people. Pure."""
    if reconciliation.conflict:
        return "conflict"
    origins = {
        s.origin
        for fig in reconciliation.figures.values()
        for s in fig.sources
        if s.value is not None
    }
    photos = len(origins - {FILE_ORIGIN})
    parts = ["file"] if FILE_ORIGIN in origins else []
    if photos:
        parts.append(f"{photos} photo" + ("s" if photos > 1 else ""))
    label = " + ".join(parts) or "none"
    pending = sum(
        1 for fig in reconciliation.figures.values() if fig.status is FigureStatus.PENDING
    )
    return f"{label} ({pending} pending)" if pending else label


def _describe(source: FigureSource) -> str:
    if source.photo_id is None:
        return "the imported file"
    photo = str(source.photo_id)[:8]
    if source.kind is SourceKind.MACHINE:
        return f"photo {photo}, machine reading"
    if source.kind is SourceKind.DECISION:
        return f"photo {photo}, an admin's decision"
    return f"photo {photo}, typed by {source.transcribers} observers"


def conflict_finding(precinct_id: str, reconciliation: Reconciliation) -> Finding | None:
    """The ``conflicting_protocols`` flag of a station whose sources disagree, with
    the numbers and their sources in its detail; None when they agree. Pure.

    One flag per station (its fields are in the detail; ``statistic`` is how many
    fields conflict): an observer's decision on it stays while the detail stays."""
    if not reconciliation.conflict:
        return None
    parts = []
    for field_id in reconciliation.conflicting_fields:
        figure = reconciliation.figures[field_id]
        listed = ", ".join(
            f"{s.value} ({_describe(s)})" for s in figure.sources if s.value is not None
        )
        parts.append(f"{field_id}: {listed}")
    for a, b, differ in reconciliation.different_protocols:
        parts.append(f"{a} and {b} are two different protocols ({differ} fields differ)")
    return Finding(
        precinct_id=precinct_id,
        flag=Flag.CONFLICTING_PROTOCOLS,
        option="",
        source=Source.PROTOCOL,
        crowd=None,
        official=None,
        statistic=float(len(reconciliation.conflicting_fields)),
        detail=f"the protocols of {precinct_id} disagree: " + "; ".join(parts),
    )
