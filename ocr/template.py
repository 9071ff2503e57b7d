"""Ballot templates (`ballot-template/1`): validation and one-time preparation."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Literal, TypeVar

import numpy as np
import pytesseract
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ocr.align import Features, reference_features, refinement_features
from ocr.header import HeaderPlan, plan_header
from ocr.images import ImageRejected, decode_gray
from ocr.ink import InkPlan, plan_ink
from ocr.marks import BoxReference, box_reference

TEMPLATE_FILE = "template.json"
REFERENCE_MAX_PIXELS = 40_000_000
BOX_SIDE = 64


class TemplateError(ValueError):
    """A template folder that cannot be used; the message names the file and field."""


class TemplateOption(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str
    box: tuple[int, int, int, int]


class FieldProblem(ValueError):
    """A rule broken by one field; `field` is its path, e.g. "options[2].id"."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def is_plain_file_name(name: str) -> bool:
    """True for "reference.png"; False for anything that could leave the folder."""
    return (
        bool(name)
        and name not in (".", "..")
        and not any(c in name for c in "/\\\x00")
        and PurePosixPath(name).name == name
        and PureWindowsPath(name).name == name
    )


def template_problems(template: BallotTemplate) -> list[FieldProblem]:
    """Rules of ballot-template/1 beyond field types (pure: no file access)."""
    problems: list[FieldProblem] = []
    seen: set[str] = set()
    for i, option in enumerate(template.options):
        if option.id in seen:
            problems.append(FieldProblem(f"options[{i}].id", f"duplicate id {option.id!r}"))
        seen.add(option.id)
        x, y, w, h = option.box
        if w <= 0 or h <= 0 or x < 0 or y < 0:
            problems.append(FieldProblem(f"options[{i}].box", f"{list(option.box)} is not a box"))
    for i, keyword in enumerate(template.header_keywords):
        if not keyword.strip():
            problems.append(FieldProblem(f"header_keywords[{i}]", "empty keyword"))
    if not is_plain_file_name(template.reference_image):
        # The template must never make the reader open a file outside its folder.
        problems.append(
            FieldProblem(
                "reference_image",
                f"{template.reference_image!r} must be a plain file name in the folder",
            )
        )
    return problems


class BallotTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["ballot-template/1"]
    election: str
    reference_image: str
    ocr_languages: str
    header_keywords: list[str] = Field(min_length=1)
    max_marks: int = Field(ge=1)
    options: list[TemplateOption] = Field(min_length=1)

    @model_validator(mode="after")
    def _follows_the_rules(self) -> BallotTemplate:
        problems = template_problems(self)
        if problems:
            raise problems[0]
        return self


@dataclass
class LoadedTemplate:
    """A validated template with everything the reader needs, computed once."""

    template: BallotTemplate
    folder: Path
    reference: np.ndarray  # grayscale uint8, upright, as in the folder
    features: Features  # ORB features of the reference, in reference pixels
    refinement: Features  # the same, spread evenly over the page
    boxes: list[BoxReference]  # one per option, in template order
    header: HeaderPlan
    box_scale: float  # sampling scale of the box patches
    ink: InkPlan | None = field(default=None)  # the ink hash's plan, for near-duplicates

    @property
    def size(self) -> tuple[int, int]:
        return int(self.reference.shape[1]), int(self.reference.shape[0])


def _field_name(loc: tuple[int | str, ...]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "(document)"


def _fail(path: Path, field: str, problem: str) -> TemplateError:
    return TemplateError(f"{path}: field {field!r}: {problem}")


def parse_template(raw: bytes, path: Path) -> BallotTemplate:
    """Validate template.json bytes; errors name the file and the offending field."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise TemplateError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(data, dict):
        raise TemplateError(f"{path}: the document must be a JSON object")
    try:
        return BallotTemplate.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, FieldProblem):
            raise _fail(path, cause.field, cause.problem) from exc
        raise _fail(path, _field_name(tuple(first["loc"])), first["msg"]) from exc


def load_template(folder: Path | str) -> LoadedTemplate:
    folder = Path(folder)
    path = folder / TEMPLATE_FILE
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read the template ({exc.strerror})") from exc
    template = parse_template(raw, path)
    image_path = folder / template.reference_image
    if not image_path.resolve().is_relative_to(folder.resolve()):
        raise _fail(path, "reference_image", "points outside the template folder")
    try:
        reference = decode_gray(image_path.read_bytes(), max_pixels=REFERENCE_MAX_PIXELS)
    except OSError as exc:
        raise _fail(path, "reference_image", f"cannot read {image_path} ({exc.strerror})") from exc
    except ImageRejected as exc:
        raise _fail(path, "reference_image", f"{image_path}: {exc.message}") from exc
    height, width = reference.shape
    for i, option in enumerate(template.options):
        x, y, w, h = option.box
        if x + w > width or y + h > height:
            raise _fail(
                path,
                f"options[{i}].box",
                f"{list(option.box)} does not fit in the {width}x{height} reference image",
            )
    first_top = min(o.box[1] for o in template.options)
    try:
        header = plan_header(reference, first_top, template.header_keywords, template.ocr_languages)
    except pytesseract.TesseractError as exc:
        raise _fail(path, "ocr_languages", f"Tesseract refused it: {exc.message}") from exc
    except ValueError as exc:
        raise _fail(path, "header_keywords", str(exc)) from exc
    sides = [min(o.box[2], o.box[3]) for o in template.options]
    # Boxes are examined at about BOX_SIDE pixels: enough for a pen stroke, cheap to warp.
    box_scale = min(1.0, BOX_SIDE / float(np.median(sides)))
    all_boxes = [o.box for o in template.options]
    boxes = [
        box_reference(o.id, o.box, reference, box_scale, all_boxes[:i] + all_boxes[i + 1 :])
        for i, o in enumerate(template.options)
    ]
    return LoadedTemplate(
        template=template,
        folder=folder,
        reference=reference,
        features=reference_features(reference),
        refinement=refinement_features(reference),
        boxes=boxes,
        header=header,
        box_scale=box_scale,
        ink=plan_ink(reference, all_boxes),
    )


_Template = TypeVar("_Template")
_Reading = TypeVar("_Reading")


def read_photo_files(
    template_dir: Path | str,
    photos: Sequence[Path],
    load: Callable[[Path], _Template],
    read: Callable[[_Template, bytes], _Reading],
    unreadable: Callable[[str], _Reading],
) -> Iterator[tuple[Path, _Reading]]:
    """Each photo with its reading, in the order given, the template loaded once
    (``golos ocr ballot|protocol``); never raises for a photo. A template that
    cannot be loaded makes every photo ``unreadable(reason)`` ("template_not_found"
    / "template_invalid") rather than stopping the batch, and so does a file that
    cannot be read ("file_not_found" / "file_unreadable")."""
    folder = Path(template_dir)
    template: _Template | None = None
    reason = ""
    try:
        template = load(folder)
    except TemplateError:
        is_file = (folder / "template.json").is_file()
        reason = "template_invalid" if is_file else "template_not_found"
    for photo in photos:
        if template is None:
            yield photo, unreadable(reason)
            continue
        try:
            data = Path(photo).read_bytes()
        except FileNotFoundError:
            yield photo, unreadable("file_not_found")
        except OSError:
            yield photo, unreadable("file_unreadable")
        else:
            yield photo, read(template, data)
