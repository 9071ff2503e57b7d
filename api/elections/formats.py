"""Parsers for the interchange formats of ``spec/election-data.md``.

Pure functions from text to typed rows. Every problem is reported with the file,
line and column it was found at; a file with any problem is refused whole.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from api.errors import Invalid
from tally.vocab import (
    PROTOCOL_LINES_OPTIONAL,
    PROTOCOL_LINES_REQUIRED,
    EvidenceLevel,
    ProtocolLine,
    Source,
)

OPTION_ID = re.compile(r"^[a-z0-9_]+$")
MAX_REPORTED_PROBLEMS = 20
MAX_CSV_BYTES = 1 << 30  # a gzip file may not unpack to more than this

PRECINCT_REQUIRED = ("precinct_id", "region", "district")


@dataclass(frozen=True)
class Problem:
    file: str
    message: str
    line: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column is not None:
            where += f", column '{self.column}'"
        return f"{where}: {self.message}"


class FormatError(Invalid):
    """A file that does not follow its format; nothing of it was stored.

    Answered 422 with the first problem's file as the field and every reported
    problem, one a line, as the message; ``str()`` is that message alone."""

    def __init__(self, problems: Sequence[Problem], total: int | None = None) -> None:
        self.problems = list(problems)
        self.total = total if total is not None else len(problems)
        shown = "\n".join(str(p) for p in self.problems)
        more = self.total - len(self.problems)
        suffix = f"\n... and {more} more problems" if more > 0 else ""
        super().__init__(self.problems[0].file if self.problems else "file", f"{shown}{suffix}")

    def __str__(self) -> str:
        return self.message


class _Problems:
    """Collects problems up to a limit, so one bad column does not print 97,000 lines."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[Problem] = []
        self.total = 0

    def add(self, message: str, line: int | None = None, column: str | None = None) -> None:
        self.total += 1
        if len(self.items) < MAX_REPORTED_PROBLEMS:
            self.items.append(Problem(self.file, message, line, column))

    def raise_if_any(self) -> None:
        if self.total:
            raise FormatError(self.items, self.total)


def unpack(data: bytes, filename: str) -> bytes:
    """The content of a file as given, gunzipped when its name ends in .gz. Pure."""
    if not filename.endswith(".gz"):
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            content = f.read(MAX_CSV_BYTES + 1)
    except (OSError, EOFError) as exc:
        raise FormatError([Problem(Path(filename).name, f"not a valid gzip file: {exc}")]) from exc
    if len(content) > MAX_CSV_BYTES:
        raise FormatError([Problem(Path(filename).name, "unpacks to more than 1 GiB")])
    return content


def decode(data: bytes, file: str) -> str:
    """A file's bytes as UTF-8 text. Pure."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError([Problem(file, f"not UTF-8 text (byte {exc.start})")]) from exc


class OptionDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=OPTION_ID.pattern)
    label: str = Field(min_length=1)


class ElectionDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: str
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    name: str = Field(min_length=1)
    date: dt.date | None = None
    options: list[OptionDefinition] = Field(min_length=1)

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value != "election/1":
            raise ValueError(f"must be 'election/1', got {value!r}")
        return value

    @field_validator("options")
    @classmethod
    def _unique(cls, options: list[OptionDefinition]) -> list[OptionDefinition]:
        seen: set[str] = set()
        for option in options:
            if option.id in seen:
                raise ValueError(f"option id {option.id!r} appears twice")
            seen.add(option.id)
        return options

    @property
    def option_ids(self) -> list[str]:
        return [o.id for o in self.options]


def parse_election_json(text: str, file: str = "election.json") -> ElectionDefinition:
    """Parse ``election/1``'s election.json. Pure."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError([Problem(file, f"not valid JSON: {exc.msg}", exc.lineno)]) from exc
    try:
        return ElectionDefinition.model_validate(raw)
    except ValidationError as exc:
        raise FormatError(
            [
                Problem(file, f"field '{'.'.join(str(p) for p in err['loc'])}': {err['msg']}")
                for err in exc.errors()
            ]
        ) from exc


@dataclass(frozen=True)
class PrecinctRow:
    precinct_id: str
    region: str
    district: str
    name: str | None
    registered: int | None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OfficialRow:
    precinct_id: str
    lines: dict[str, int | None]  # protocol lines: required and optional columns present
    votes: dict[str, int | None]  # option id -> votes; None where not readable or published


def _read_csv(text: str, file: str) -> tuple[list[str], Iterable[tuple[int, list[str]]]]:
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise FormatError(
            [Problem(file, "the file is empty: a header row is required", 1)]
        ) from None
    except csv.Error as exc:
        raise FormatError([Problem(file, f"not a valid CSV file: {exc}", 1)]) from exc
    header = [h.strip() for h in header]

    def rows() -> Iterable[tuple[int, list[str]]]:
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise FormatError(
                    [Problem(file, f"not a valid CSV row: {exc}", reader.line_num)]
                ) from exc
            if row and any(cell.strip() for cell in row):
                yield reader.line_num, row

    return header, rows()


def _check_header(header: list[str], required: Iterable[str], problems: _Problems) -> None:
    for name in header:
        if header.count(name) > 1:
            problems.add(f"column '{name}' appears more than once in the header", 1, name)
            break
    for name in required:
        if name not in header:
            problems.add("required column is missing from the header", 1, name)


def _records(
    header: list[str], rows: Iterable[tuple[int, list[str]]], problems: _Problems
) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows as {column: cell}; a row of the wrong width is a problem, not a record."""
    for line, row in rows:
        if len(row) == len(header):
            yield line, dict(zip(header, row, strict=True))
        else:
            _wrong_width(problems, header, row, line)


def _once(precinct_id: str, line: int, first_line: dict[str, int], problems: _Problems) -> None:
    if precinct_id in first_line:
        problems.add(
            f"precinct {precinct_id!r} already appears on line {first_line[precinct_id]}",
            line,
            "precinct_id",
        )
    first_line.setdefault(precinct_id, line)


def _known_precinct(
    cells: dict[str, str],
    line: int,
    known: set[str],
    first_line: dict[str, int],
    problems: _Problems,
) -> str:
    """The row's precinct id, checked: present, known to the election, not repeated."""
    precinct_id = cells["precinct_id"].strip()
    if not precinct_id:
        problems.add("a value is required", line, "precinct_id")
    elif precinct_id not in known:
        problems.add(f"unknown precinct {precinct_id!r}", line, "precinct_id")
    else:
        _once(precinct_id, line, first_line, problems)
    return precinct_id


def _wrong_width(problems: _Problems, header: list[str], row: list[str], line: int) -> None:
    if len(row) < len(header):
        column = header[len(row)]
        problems.add(
            f"missing: the row has {len(row)} cells, the header {len(header)}", line, column
        )
    else:
        problems.add(
            f"extra cell {len(header) + 1} ({row[len(header)]!r}) beyond the header's "
            f"{len(header)} columns",
            line,
            f"#{len(header) + 1}",
        )


def _count(value: str, allow_empty: bool) -> tuple[int | None, str | None]:
    """A cell as a non-negative integer; returns (value, problem)."""
    cell = value.strip()
    if cell == "":
        return (None, None) if allow_empty else (None, "a value is required")
    if not cell.isascii() or not cell.isdigit():
        return None, f"{cell!r} is not a non-negative integer"
    if len(cell) > 9:
        return None, f"{cell!r} is too large for a vote count"
    return int(cell), None


def parse_precincts_csv(text: str, file: str = "precincts.csv") -> list[PrecinctRow]:
    """Parse ``election/1``'s precincts.csv; extra columns become attributes. Pure."""
    header, rows = _read_csv(text, file)
    problems = _Problems(file)
    _check_header(header, PRECINCT_REQUIRED, problems)
    problems.raise_if_any()
    known = {"precinct_id", "region", "district", "name", ProtocolLine.REGISTERED}
    extra = [h for h in header if h not in known]
    parsed: list[PrecinctRow] = []
    first_line: dict[str, int] = {}
    for line, cells in _records(header, rows, problems):
        precinct_id = cells["precinct_id"].strip()
        for column in PRECINCT_REQUIRED:
            if not cells[column].strip():
                problems.add("a value is required", line, column)
        _once(precinct_id, line, first_line, problems)
        registered, problem = _count(cells.get(ProtocolLine.REGISTERED, ""), allow_empty=True)
        if problem:
            problems.add(problem, line, ProtocolLine.REGISTERED)
        parsed.append(
            PrecinctRow(
                precinct_id=precinct_id,
                region=cells["region"].strip(),
                district=cells["district"].strip(),
                name=(cells.get("name") or "").strip() or None,
                registered=registered,
                attributes={k: cells[k] for k in extra if cells[k] != ""},
            )
        )
    if not parsed and not problems.total:
        problems.add("no precincts: at least one row is required", 2)
    problems.raise_if_any()
    return parsed


def parse_official_csv(
    text: str,
    option_ids: Sequence[str],
    known_precincts: set[str],
    file: str = "official.csv",
) -> list[OfficialRow]:
    """Parse ``official-results/1``. Unknown columns are refused: a misspelt option
    column would otherwise silently lose that option's votes. Pure."""
    header, rows = _read_csv(text, file)
    problems = _Problems(file)
    _check_header(header, ("precinct_id", *PROTOCOL_LINES_REQUIRED, *option_ids), problems)
    allowed = {"precinct_id", *PROTOCOL_LINES_REQUIRED, *PROTOCOL_LINES_OPTIONAL, *option_ids}
    for name in header:
        if name not in allowed:
            problems.add(
                "unknown column: neither a protocol line nor an option of this election",
                1,
                name,
            )
    problems.raise_if_any()
    line_columns = [c for c in (*PROTOCOL_LINES_REQUIRED, *PROTOCOL_LINES_OPTIONAL) if c in header]
    parsed: list[OfficialRow] = []
    first_line: dict[str, int] = {}
    for line, cells in _records(header, rows, problems):
        precinct_id = _known_precinct(cells, line, known_precincts, first_line, problems)
        values: dict[str, int | None] = {}
        for column in (*line_columns, *option_ids):
            value, problem = _count(cells[column], allow_empty=True)
            if problem:
                problems.add(problem, line, column)
            values[column] = value
        parsed.append(
            OfficialRow(
                precinct_id=precinct_id,
                lines={c: values[c] for c in line_columns},
                votes={o: values[o] for o in option_ids},
            )
        )
    problems.raise_if_any()
    return parsed


@dataclass(frozen=True)
class CrowdRow:
    precinct_id: str
    votes: dict[str, int | None]


RESERVED_SOURCES: tuple[str, ...] = tuple(Source)  # the platform's own evidence sources


def parse_crowd_csv(
    text: str,
    option_ids: Sequence[str],
    known_precincts: set[str],
    file: str = "crowd.csv",
) -> tuple[str, list[CrowdRow]]:
    """Parse ``crowd-tallies/1``: returns the source's name and its rows. Pure."""
    header, rows = _read_csv(text, file)
    problems = _Problems(file)
    _check_header(header, ("precinct_id", "source", *option_ids), problems)
    for name in header:
        if name not in {"precinct_id", "source", *option_ids}:
            problems.add("unknown column: not an option of this election", 1, name)
    problems.raise_if_any()
    source: str | None = None
    parsed: list[CrowdRow] = []
    first_line: dict[str, int] = {}
    for line, cells in _records(header, rows, problems):
        precinct_id = _known_precinct(cells, line, known_precincts, first_line, problems)
        row_source = cells["source"].strip()
        if not row_source:
            problems.add("a value is required", line, "source")
        elif source is None:
            source = row_source
            if source in RESERVED_SOURCES:
                problems.add(
                    f"{source!r} is reserved for the platform's own evidence", line, "source"
                )
        elif row_source != source:
            problems.add(
                f"{row_source!r} differs from {source!r}: a file holds one source", line, "source"
            )
        votes: dict[str, int | None] = {}
        for option in option_ids:
            value, problem = _count(cells[option], allow_empty=True)
            if problem:
                problems.add(problem, line, option)
            votes[option] = value
        parsed.append(CrowdRow(precinct_id, votes))
    if not parsed and not problems.total:
        problems.add("no rows: at least one precinct is required", 2)
    problems.raise_if_any()
    assert source is not None
    return source, parsed


def parse_level(level: str, file: str) -> EvidenceLevel:
    """A crowd import's evidence level, as given beside its file. Pure."""
    try:
        return EvidenceLevel(level)
    except ValueError:
        allowed = " or ".join(repr(str(known)) for known in EvidenceLevel)
        raise FormatError([Problem(file, f"level must be {allowed}, not {level!r}")]) from None
