"""Protocol templates (`protocol-template/1`): loading and validation.

A protocol template describes the printed final protocol of a precinct commission:
where the precinct number and every handwritten number go on the reference form,
and the protocol's own arithmetic (`checks`, data, never code). Errors name the
file and the field (a JSON path such as ``fields[3].box`` or ``checks[0].right[1]``),
in the style of :mod:`ocr.template`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ocr.images import ImageRejected, decode_gray
from ocr.template import FieldProblem, TemplateError, is_plain_file_name
from tally.proof import Check, checks_from_template, protocol_arithmetic
from tally.vocab import PROTOCOL_LINES

PROTOCOL_FORMAT = "protocol-template/1"
TEMPLATE_FILE = "template.json"
ELECTION_FILE = "election.json"  # of the election folder the template usually sits in
REFERENCE_MAX_PIXELS = 40_000_000
ALL_OPTIONS = "@options"
OPS = ("==", "<=", ">=")
FIELD_ID = re.compile(r"^[a-z0-9_]+$")
LANGUAGES = re.compile(r"^[a-z_]+(\+[a-z_]+)*$")

Box = tuple[int, int, int, int]


class ProtocolTemplateError(TemplateError):
    """A protocol template that cannot be used: ``file`` and ``field`` say where.

    ``field`` is a JSON path into template.json ("fields[2].box"), or "(document)"
    for the file as a whole; ``problem`` is what is wrong with it.
    """

    def __init__(self, file: Path, field: str, problem: str) -> None:
        super().__init__(f"{file}: field {field!r}: {problem}")
        self.file = file
        self.field = field
        self.problem = problem
        # As api.errors.GolosError carries it: the field at fault and a message.
        self.message = f"{file}: {problem}"


class ProtocolField(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=FIELD_ID.pattern)
    label: str = Field(min_length=1)
    box: tuple[int, int, int, int]


class ProtocolCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    left: list[str] = Field(min_length=1)
    op: Literal["==", "<=", ">="]
    right: list[str] = Field(min_length=1)


def _is_box(box: Box) -> bool:
    x, y, w, h = box
    return x >= 0 and y >= 0 and w > 0 and h > 0


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def document_problems(doc: ProtocolDocument) -> list[FieldProblem]:
    """Rules of protocol-template/1 that need no file and no election. Pure."""
    problems: list[FieldProblem] = []
    if not doc.election.strip():
        problems.append(FieldProblem("election", "empty election id"))
    if not LANGUAGES.match(doc.ocr_languages):
        problems.append(
            FieldProblem("ocr_languages", f"{doc.ocr_languages!r} is not like 'rus+bel'")
        )
    if not is_plain_file_name(doc.reference_image):
        problems.append(
            FieldProblem(
                "reference_image",
                f"{doc.reference_image!r} must be a plain file name in the folder",
            )
        )
    for i, keyword in enumerate(doc.header_keywords):
        if not keyword.strip():
            problems.append(FieldProblem(f"header_keywords[{i}]", "empty keyword"))
    if not _is_box(doc.precinct_box):
        problems.append(FieldProblem("precinct_box", f"{list(doc.precinct_box)} is not a box"))
    seen: dict[str, int] = {}
    for i, item in enumerate(doc.fields):
        if item.id in seen:
            problems.append(
                FieldProblem(
                    f"fields[{i}].id", f"duplicate id {item.id!r} (see fields[{seen[item.id]}])"
                )
            )
        seen.setdefault(item.id, i)
        if not _is_box(item.box):
            problems.append(FieldProblem(f"fields[{i}].box", f"{list(item.box)} is not a box"))
        elif _is_box(doc.precinct_box) and _overlap(item.box, doc.precinct_box):
            problems.append(FieldProblem(f"fields[{i}].box", "overlaps the precinct_box"))
        else:
            for j in range(i):
                other = doc.fields[j].box
                if _is_box(other) and _overlap(item.box, other):
                    problems.append(
                        FieldProblem(f"fields[{i}].box", f"overlaps the box of fields[{j}]")
                    )
                    break
    for c, check in enumerate(doc.checks):
        for side in ("left", "right"):
            for k, name in enumerate(getattr(check, side)):
                if name != ALL_OPTIONS and name not in seen:
                    problems.append(
                        FieldProblem(
                            f"checks[{c}].{side}[{k}]",
                            f"{name!r} is neither a field of this template nor {ALL_OPTIONS!r}",
                        )
                    )
    return problems


class ProtocolDocument(BaseModel):
    """template.json of protocol-template/1, as written on disk."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["protocol-template/1"]
    election: str
    reference_image: str
    ocr_languages: str
    header_keywords: list[str] = Field(min_length=1)
    precinct_box: tuple[int, int, int, int]
    fields: list[ProtocolField] = Field(min_length=1)
    checks: list[ProtocolCheck]

    @model_validator(mode="after")
    def _follows_the_rules(self) -> ProtocolDocument:
        problems = document_problems(self)
        if problems:
            raise problems[0]
        return self

    def to_json(self) -> str:
        """The document as template.json text: UTF-8, indented, boxes on one line."""
        data = self.model_dump(mode="json")
        text = json.dumps(data, ensure_ascii=False, indent=2)
        # Boxes and short id lists read better on one line.
        return _compact_lists(text) + "\n"


def _compact_lists(text: str) -> str:
    pattern = re.compile(
        r"\[\s*((?:-?\d+|\"[^\"\[\]{}]*\")(?:,\s*(?:-?\d+|\"[^\"\[\]{}]*\"))*)\s*\]"
    )
    return pattern.sub(
        lambda m: "[" + ", ".join(p.strip() for p in m.group(1).split(",")) + "]", text
    )


@dataclass(frozen=True)
class ProtocolTemplate:
    """A validated protocol template with its reference image (grayscale, upright)."""

    document: ProtocolDocument
    folder: Path
    reference: np.ndarray  # uint8, height x width
    option_ids: tuple[str, ...]  # the election's options, in the election's order
    checks: tuple[Check, ...]

    @property
    def size(self) -> tuple[int, int]:
        return int(self.reference.shape[1]), int(self.reference.shape[0])

    @property
    def field_ids(self) -> tuple[str, ...]:
        return tuple(f.id for f in self.document.fields)

    @property
    def boxes(self) -> dict[str, Box]:
        return {f.id: f.box for f in self.document.fields}

    def check_results(self, figures: Mapping[str, int | None]) -> list[bool | None]:
        """Per check: holds (True), fails (False), or None when a figure it needs is
        missing. Pure."""
        return check_results(self.checks, self.option_ids, figures)


def check_results(
    checks: Sequence[Check], option_ids: Sequence[str], figures: Mapping[str, int | None]
) -> list[bool | None]:
    """Per check: holds (True), fails (False), or None when a figure it needs is
    missing. Pure; the arithmetic is :func:`tally.proof.protocol_arithmetic`'s."""
    results: list[bool | None] = []
    for check in checks:
        names = [
            n
            for side in (check.left, check.right)
            for f in side
            for n in (option_ids if f == ALL_OPTIONS else (f,))
        ]
        if any(figures.get(n) is None for n in names):
            results.append(None)
            continue
        broken = protocol_arithmetic({"_": dict(figures)}, option_ids, [check])
        results.append(not broken)
    return results


def _field_name(loc: Sequence[int | str]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "(document)"


def parse_protocol_document(raw: bytes, path: Path) -> ProtocolDocument:
    """Validate template.json bytes (no file access); errors name file and field."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ProtocolTemplateError(path, "(document)", f"not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise ProtocolTemplateError(
            path, "(document)", f"not valid JSON: {exc.msg} at line {exc.lineno}"
        ) from exc
    if not isinstance(data, dict):
        raise ProtocolTemplateError(path, "(document)", "the document must be a JSON object")
    try:
        return ProtocolDocument.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, FieldProblem):
            raise ProtocolTemplateError(path, cause.field, cause.problem) from exc
        loc = tuple(first["loc"])
        if first["type"] == "extra_forbidden":
            raise ProtocolTemplateError(path, _field_name(loc), "unknown key") from exc
        raise ProtocolTemplateError(path, _field_name(loc), first["msg"]) from exc


def election_option_ids(folder: Path, election: str) -> tuple[str, ...] | None:
    """The option ids of the election folder holding ``folder`` (its election.json),
    when that file is there and is the template's election; None otherwise."""
    path = folder.parent / ELECTION_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("id") != election:
            return None
        ids = tuple(str(o["id"]) for o in data["options"])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ProtocolTemplateError(
            path, "options", f"cannot read the election's options ({exc})"
        ) from exc
    return ids


def election_problems(doc: ProtocolDocument, option_ids: Sequence[str]) -> list[FieldProblem]:
    """Field ids must be official-results/1 columns or the election's option ids, and
    a check summing ``@options`` needs a field for every option. Pure."""
    columns = {str(line) for line in PROTOCOL_LINES}
    problems: list[FieldProblem] = []
    for i, item in enumerate(doc.fields):
        if item.id not in columns and item.id not in option_ids:
            problems.append(
                FieldProblem(
                    f"fields[{i}].id",
                    f"{item.id!r} is neither a protocol line ({', '.join(sorted(columns))}) "
                    f"nor an option of {doc.election!r} ({', '.join(option_ids)})",
                )
            )
    present = {f.id for f in doc.fields}
    missing = [o for o in option_ids if o not in present]
    for c, check in enumerate(doc.checks):
        for side in ("left", "right"):
            names = getattr(check, side)
            if ALL_OPTIONS in names and missing:
                k = names.index(ALL_OPTIONS)
                problems.append(
                    FieldProblem(
                        f"checks[{c}].{side}[{k}]",
                        f"{ALL_OPTIONS} needs a field for every option; missing: "
                        + ", ".join(missing),
                    )
                )
    return problems


def load_protocol_template(
    folder: Path | str, option_ids: Sequence[str] | None = None
) -> ProtocolTemplate:
    """Load and validate a protocol-template/1 folder.

    ``option_ids`` are the election's options; without them they are read from the
    election.json of the folder above (the ``protocol/`` folder of an election/1
    folder), and failing that every field id that is not a protocol line is taken
    as an option.
    """
    folder = Path(folder)
    path = folder / TEMPLATE_FILE
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProtocolTemplateError(
            path, "(document)", f"cannot read the template ({exc.strerror})"
        ) from exc
    doc = parse_protocol_document(raw, path)

    if option_ids is None:
        option_ids = election_option_ids(folder, doc.election)
    if option_ids is None:
        columns = {str(line) for line in PROTOCOL_LINES}
        option_ids = [f.id for f in doc.fields if f.id not in columns]
    options = tuple(option_ids)
    problems = election_problems(doc, options)
    if problems:
        raise ProtocolTemplateError(path, problems[0].field, problems[0].problem)

    image_path = folder / doc.reference_image
    if not image_path.resolve().is_relative_to(folder.resolve()):
        raise ProtocolTemplateError(path, "reference_image", "points outside the template folder")
    try:
        reference = decode_gray(image_path.read_bytes(), max_pixels=REFERENCE_MAX_PIXELS)
    except OSError as exc:
        raise ProtocolTemplateError(
            path, "reference_image", f"cannot read {image_path} ({exc.strerror})"
        ) from exc
    except ImageRejected as exc:
        raise ProtocolTemplateError(
            path, "reference_image", f"{image_path}: {exc.message}"
        ) from exc
    height, width = reference.shape
    boxes = [("precinct_box", doc.precinct_box)] + [
        (f"fields[{i}].box", f.box) for i, f in enumerate(doc.fields)
    ]
    for name, (x, y, w, h) in boxes:
        if x + w > width or y + h > height:
            raise ProtocolTemplateError(
                path, name, f"{[x, y, w, h]} does not fit in the {width}x{height} reference image"
            )
    try:
        checks = checks_from_template({"checks": [c.model_dump() for c in doc.checks]})
    except ValueError as exc:  # pragma: no cover - the model already enforces the same
        raise ProtocolTemplateError(path, "checks", str(exc)) from exc
    return ProtocolTemplate(
        document=doc, folder=folder, reference=reference, option_ids=options, checks=tuple(checks)
    )
