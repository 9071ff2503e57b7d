"""Protocol templates: the committed one loads; every bad field is named in the error."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocr.protocol_template import (
    ProtocolTemplate,
    ProtocolTemplateError,
    load_protocol_template,
)
from ocr.template import TemplateError
from seeds.protocol import (
    BY2020_PROTOCOL,
    DESIGNS,
    render_protocol,
    write_election_folder,
    write_protocol_template,
)
from seeds.protocol_photos import official_figures
from tally.proof import STANDARD_CHECKS, Check
from tally.vocab import PROTOCOL_LINES_REQUIRED

SEED = Path(__file__).resolve().parents[2] / "seeds" / "by-2020"
COMMITTED = SEED / "protocol"

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def committed() -> ProtocolTemplate:
    return load_protocol_template(COMMITTED)


def test_committed_template_loads_with_its_elections_options(committed: ProtocolTemplate) -> None:
    election = json.loads((SEED / "election.json").read_text(encoding="utf-8"))
    options = [o["id"] for o in election["options"]]
    doc = committed.document
    assert doc.format == "protocol-template/1"
    assert doc.election == election["id"] == "by-2020-president"
    assert committed.option_ids == tuple(options)
    assert "against_all" in committed.field_ids
    assert set(options) | set(PROTOCOL_LINES_REQUIRED) <= set(committed.field_ids)
    assert doc.header_keywords[0] == "ПРОТОКОЛ"
    text = (COMMITTED / "template.json").read_text(encoding="utf-8")
    assert "ПРОТОКОЛ" in text  # written as UTF-8, not \\u-escaped
    assert set(json.loads(text)) == {
        "format",
        "election",
        "reference_image",
        "ocr_languages",
        "header_keywords",
        "precinct_box",
        "fields",
        "checks",
    }
    assert committed.reference.dtype == np.uint8 and committed.size == (1240, 1754)
    # The standard relations are all there, as tally.proof.Check values.
    assert all(isinstance(c, Check) for c in committed.checks)
    assert set(STANDARD_CHECKS) <= set(committed.checks)


def test_committed_folder_is_what_the_design_writes(tmp_path: Path) -> None:
    write_protocol_template(BY2020_PROTOCOL, tmp_path)
    for name in ("template.json", "reference.png"):
        assert (tmp_path / name).read_bytes() == (COMMITTED / name).read_bytes(), name


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_every_design_writes_a_template_that_loads(name: str, tmp_path: Path) -> None:
    folder = write_election_folder(name, tmp_path / name)
    loaded = load_protocol_template(folder)
    design = DESIGNS[name]
    assert loaded.option_ids == tuple(design.option_ids)
    assert set(design.option_ids) <= set(loaded.field_ids)
    assert loaded.size == (design.width, design.height)
    # Without an election folder around it, the options are the non-line fields.
    alone = tmp_path / "alone"
    write_protocol_template(name, alone)
    assert set(load_protocol_template(alone).option_ids) == set(design.option_ids)


def test_designs_are_clearly_different() -> None:
    sizes = {(d.width, d.height) for d in DESIGNS.values()}
    languages = {d.ocr_languages for d in DESIGNS.values()}
    assert len(sizes) >= 2 and len(languages) == 3
    assert {d.digit_cells > 0 for d in DESIGNS.values()} == {True, False}
    assert {d.columns for d in DESIGNS.values()} == {1, 2}


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_cells_are_printed_where_the_boxes_say(name: str) -> None:
    design = DESIGNS[name]
    image, doc, _ = render_protocol(design)
    gray = np.asarray(image.convert("L"))
    cells = [(f.id, f.box, design.digit_cells) for f in doc.fields]
    cells.append(("precinct", doc.precinct_box, design.precinct_digits))
    for name_, (x, y, w, h), squares in cells:
        n = max(1, squares)
        for k in range(n):  # each square (or the whole cell) is empty inside
            x0, x1 = round(x + k * w / n), round(x + (k + 1) * w / n)
            assert gray[y + 5 : y + h - 5, x0 + 5 : x1 - 5].min() > 200, (name_, k)
        mid = x + w // 7
        assert gray[y - 4 : y + 4, mid].min() < 100, name_  # a printed top edge
        assert gray[y + h - 4 : y + h + 4, mid].min() < 100, name_  # and bottom edge


def test_check_results_hold_fail_or_skip(committed: ProtocolTemplate) -> None:
    rows = official_figures(committed.field_ids, SEED / "official.csv")
    assert len(rows) > 1000
    _, figures = rows[0]
    assert committed.check_results(figures) == [True] * len(committed.checks)
    broken = {**figures, "lukashenko": figures["lukashenko"] + 1}
    assert committed.check_results(broken)[0] is False  # cast == invalid + @options
    missing: dict[str, int | None] = {**figures, "invalid": None}
    assert committed.check_results(missing)[0] is None


# ------------------------------------------------------------------ bad templates


@pytest.fixture()
def broken(tmp_path: Path) -> Callable[[Edit], Path]:
    """A copy of the committed election's protocol folder with template.json edited."""

    def make(edit: Edit) -> Path:
        root = tmp_path / "election"
        if root.exists():
            shutil.rmtree(root)
        shutil.copytree(COMMITTED, root / "protocol")
        shutil.copy(SEED / "election.json", root / "election.json")
        path = root / "protocol" / "template.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        edit(data)
        path.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
        return root / "protocol"

    return make


def _set(path: list[str | int], value: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _drop_field(field_id: str) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        data["fields"] = [f for f in data["fields"] if f["id"] != field_id]

    return edit


BAD = [
    (_set(["format"], "protocol-template/2"), "format"),
    (_set(["colour"], "red"), "colour"),
    (lambda d: d.pop("checks"), "checks"),
    (lambda d: d.pop("precinct_box"), "precinct_box"),
    (_set(["election"], " "), "election"),
    (_set(["ocr_languages"], "Russian!"), "ocr_languages"),
    (_set(["header_keywords"], []), "header_keywords"),
    (_set(["header_keywords"], ["ПРОТОКОЛ", " "]), "header_keywords[1]"),
    (_set(["reference_image"], "../reference.png"), "reference_image"),
    (_set(["reference_image"], "/etc/passwd"), "reference_image"),
    (_set(["reference_image"], "missing.png"), "reference_image"),
    (_set(["precinct_box"], [1200, 10, 220, 62]), "precinct_box"),
    (_set(["precinct_box"], [10, 10, 0, 62]), "precinct_box"),
    (_set(["fields"], []), "fields"),
    (_set(["fields", 0, "colour"], "red"), "fields[0].colour"),
    (_set(["fields", 1, "id"], "Bad-Id"), "fields[1].id"),
    (_set(["fields", 2, "id"], "registered"), "fields[2].id"),
    (_set(["fields", 6, "id"], "turnout"), "fields[6].id"),  # not a line nor an option
    (_set(["fields", 0, "label"], ""), "fields[0].label"),
    (_set(["fields", 3, "box"], [1100, 1700, 300, 64]), "fields[3].box"),
    (_set(["fields", 0, "box"], [10, 10, 0, 64]), "fields[0].box"),
    (_set(["fields", 0, "box"], [10, 10, 64]), "fields[0].box[3]"),
    (_set(["fields", 0, "box"], [10, "ten", 64, 64]), "fields[0].box[1]"),
    (lambda d: d["fields"][1].__setitem__("box", d["fields"][0]["box"]), "fields[1].box"),
    (lambda d: d["fields"][0].__setitem__("box", d["precinct_box"]), "fields[0].box"),
    (_set(["checks", 0, "op"], "!="), "checks[0].op"),
    (_set(["checks", 0, "op"], "__import__('os')"), "checks[0].op"),
    (_set(["checks", 0, "left"], []), "checks[0].left"),
    (_set(["checks", 1, "right", 0], "turnout"), "checks[1].right[0]"),
    (_set(["checks", 2, "left"], "ballots_issued"), "checks[2].left"),
    (_set(["checks", 0, "note"], "x"), "checks[0].note"),
    (_drop_field("charachen"), "checks[0].right[1]"),
]


@pytest.mark.parametrize(("edit", "field"), BAD)
def test_bad_field_is_named(broken: Callable[[Edit], Path], edit: Edit, field: str) -> None:
    folder = broken(edit)
    with pytest.raises(ProtocolTemplateError) as caught:
        load_protocol_template(folder)
    error = caught.value
    assert error.field == field, str(error)
    assert f"'{field}'" in str(error) and "template.json" in str(error)
    assert error.file == folder / "template.json"
    assert isinstance(error, TemplateError)  # caught where ballot template errors are


def test_field_that_is_not_an_option_of_the_given_election(broken: Callable[[Edit], Path]) -> None:
    folder = broken(lambda d: None)
    with pytest.raises(ProtocolTemplateError, match=r"'fields\[\d+\]\.id'.*dmitriyev"):
        load_protocol_template(folder, option_ids=DESIGNS["ru-2018"].option_ids)
    # The election.json beside it is read when no options are given.
    election = folder.parent / "election.json"
    data = json.loads(election.read_text(encoding="utf-8"))
    data["options"] = [o for o in data["options"] if o["id"] != "charachen"]
    election.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ProtocolTemplateError, match=r"'charachen' is neither"):
        load_protocol_template(folder)


def test_unreadable_election_json_is_named(broken: Callable[[Edit], Path]) -> None:
    folder = broken(lambda d: None)
    (folder.parent / "election.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ProtocolTemplateError, match=r"election\.json: field 'options'"):
        load_protocol_template(folder)


def test_missing_folder_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(ProtocolTemplateError, match=r"template\.json.*cannot read"):
        load_protocol_template(tmp_path / "nowhere")
    (tmp_path / "template.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ProtocolTemplateError, match=r"template\.json.*not valid JSON"):
        load_protocol_template(tmp_path)
    (tmp_path / "template.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ProtocolTemplateError, match="must be a JSON object"):
        load_protocol_template(tmp_path)
    (tmp_path / "template.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(ProtocolTemplateError, match="not UTF-8"):
        load_protocol_template(tmp_path)


def test_reference_that_is_not_an_image(broken: Callable[[Edit], Path]) -> None:
    folder = broken(lambda d: None)
    (folder / "reference.png").write_bytes(b"not a png at all")
    with pytest.raises(ProtocolTemplateError, match="'reference_image'"):
        load_protocol_template(folder)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    index=st.integers(0, len(BY2020_PROTOCOL.rows) - 2),
    box=st.tuples(
        st.integers(-50, 1800), st.integers(-50, 1800), st.integers(-5, 600), st.integers(-5, 200)
    ),
)
def test_any_moved_box_loads_or_names_a_box(
    broken: Callable[[Edit], Path], index: int, box: tuple[int, int, int, int]
) -> None:
    """Whatever box a field is given, the template loads (the box is valid, inside the
    image and clear of the others) or the error names a box, never anything else."""
    folder = broken(_set(["fields", index, "box"], list(box)))
    try:
        loaded = load_protocol_template(folder)
    except ProtocolTemplateError as error:
        assert error.field.endswith(".box") or error.field == "precinct_box", str(error)
        return
    x, y, w, h = box
    assert x >= 0 and y >= 0 and w > 0 and h > 0
    assert x + w <= loaded.size[0] and y + h <= loaded.size[1]
