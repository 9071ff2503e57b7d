"""Template loading: a good folder loads; every bad field is named in the error."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocr.template import LoadedTemplate, TemplateError, load_template
from seeds.ballot import BY2020_DESIGN, write_template

Edit = Callable[[dict[str, Any]], None]


def test_loaded_template_matches_spec(by_template: LoadedTemplate, by_dir: Path) -> None:
    raw = json.loads((by_dir / "template.json").read_text(encoding="utf-8"))
    assert set(raw) == {
        "format",
        "election",
        "reference_image",
        "ocr_languages",
        "header_keywords",
        "max_marks",
        "options",
    }
    assert raw["format"] == "ballot-template/1"
    assert [o["id"] for o in raw["options"]] == [
        "dmitriyev",
        "kanapatskaya",
        "lukashenko",
        "tsikhanouskaya",
        "charachen",
        "against_all",
    ]
    assert all(len(o["box"]) == 4 for o in raw["options"])
    assert "БЮЛЛЕТЕНЬ" in (by_dir / "template.json").read_text(encoding="utf-8")  # not \\u-escaped
    tpl = by_template.template
    assert tpl.election == "by-2020-president" and tpl.max_marks == 1
    assert by_template.reference.ndim == 2 and by_template.reference.dtype.name == "uint8"
    assert len(by_template.boxes) == len(tpl.options)
    assert [s.keyword for s in by_template.header.spots] == tpl.header_keywords
    first_box_top = min(o.box[1] for o in tpl.options)
    assert all(s.rect[3] <= first_box_top for s in by_template.header.spots)


def test_write_template_is_deterministic(tmp_path: Path) -> None:
    write_template(BY2020_DESIGN, tmp_path / "a")
    write_template(BY2020_DESIGN, tmp_path / "b")
    for name in ("template.json", "reference.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.fixture()
def broken(by_dir: Path, tmp_path: Path) -> Callable[[Edit], Path]:
    """A copy of the good template folder with template.json edited."""

    def make(edit: Edit) -> Path:
        folder = tmp_path / "tpl"
        shutil.copytree(by_dir, folder)
        data = json.loads((folder / "template.json").read_text(encoding="utf-8"))
        edit(data)
        (folder / "template.json").write_text(json.dumps(data, ensure_ascii=False), "utf-8")
        return folder

    return make


def _set(path: list[str | int], value: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (_set(["format"], "ballot-template/2"), "format"),
        (_set(["max_marks"], 0), "max_marks"),
        (_set(["header_keywords"], []), "header_keywords"),
        (_set(["options"], []), "options"),
        (_set(["options", 1, "id"], "Bad-Id"), "options[1].id"),
        (_set(["options", 2, "id"], "dmitriyev"), "options[2].id"),
        (_set(["options", 3, "box"], [1200, 1700, 64, 64]), "options[3].box"),
        (_set(["options", 0, "box"], [10, 10, 0, 64]), "options[0].box"),
        (_set(["options", 0, "box"], [10, 10, 64]), "options[0].box"),
        (_set(["reference_image"], "../reference.png"), "reference_image"),
        (_set(["reference_image"], "/etc/passwd"), "reference_image"),
        (_set(["reference_image"], "missing.png"), "reference_image"),
        (_set(["colour"], "red"), "colour"),
        (lambda d: d.pop("election"), "election"),
    ],
)
def test_bad_field_is_named(broken: Callable[[Edit], Path], edit: Edit, field: str) -> None:
    folder = broken(edit)
    with pytest.raises(TemplateError) as caught:
        load_template(folder)
    message = str(caught.value)
    assert f"'{field}" in message, message
    assert "template.json" in message


def test_keyword_not_printed_in_header(broken: Callable[[Edit], Path]) -> None:
    folder = broken(_set(["header_keywords"], ["БЮЛЛЕТЕНЬ", "референдум"]))
    with pytest.raises(TemplateError, match=r"'header_keywords'.*референдум"):
        load_template(folder)


def test_missing_folder_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"template\.json"):
        load_template(tmp_path / "nowhere")
    (tmp_path / "template.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"template\.json: not valid JSON"):
        load_template(tmp_path)


def test_reference_that_is_not_an_image(broken: Callable[[Edit], Path]) -> None:
    folder = broken(lambda d: None)
    (folder / "reference.png").write_bytes(b"not a png at all")
    with pytest.raises(TemplateError, match="'reference_image'"):
        load_template(folder)
