"""Labelled protocol photos: deterministic, decodable, with the figures handwritten in
the cells, the corrections, stamps and signatures labelled, and checks that hold or
fail as meant."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ocr.images import sanitize_photo
from ocr.protocol_template import ProtocolTemplate, load_protocol_template
from seeds.protocol import DESIGNS, render_protocol
from seeds.protocol_photos import (
    NOT_A_PROTOCOL_KINDS,
    break_arithmetic,
    consistent_figures,
    labelled_photos,
    not_a_protocol_photo,
    official_figures,
    protocol_page,
    protocol_photo,
    write_labelled_set,
)

SEED = Path(__file__).resolve().parents[2] / "seeds" / "by-2020"


@pytest.fixture(scope="module")
def committed() -> ProtocolTemplate:
    return load_protocol_template(SEED / "protocol")


def _official(template: ProtocolTemplate) -> tuple[str, dict[str, int]]:
    return official_figures(template.field_ids, SEED / "official.csv")[0]


def _decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_photo_is_deterministic_for_a_seed(committed: ProtocolTemplate) -> None:
    _, figures = _official(committed)
    a = protocol_photo("by-2020", figures, "4", np.random.default_rng(7))
    b = protocol_photo("by-2020", figures, "4", np.random.default_rng(7))
    c = protocol_photo("by-2020", figures, "4", np.random.default_rng(8))
    assert a[0] == b[0] and a[1] == b[1]
    assert a[0] != c[0]


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_figures_are_written_in_their_cells(name: str) -> None:
    rng = np.random.default_rng(11)
    figures = consistent_figures(name, rng)
    page, labels = protocol_page(name, figures, "523", rng, stamp_over_fields=0.0)
    reference, doc, _ = render_protocol(DESIGNS[name])
    before = np.asarray(reference.convert("RGB"), dtype=np.int16)
    after = np.asarray(page, dtype=np.int16)
    changed = np.abs(after - before).max(axis=2) > 60
    for item in doc.fields:
        x, y, w, h = item.box
        assert changed[y : y + h, x : x + w].sum() > 30, item.id  # ink in every cell
    x, y, w, h = doc.precinct_box
    assert changed[y : y + h, x : x + w].sum() > 30
    assert labels.figures == figures and labels.precinct == "523"
    assert labels.kind == "protocol" and labels.design == name
    assert labels.ink in ("blue", "black") and labels.writer
    assert labels.arithmetic_ok and all(labels.checks)


def test_photo_decodes_with_the_conditions_size(committed: ProtocolTemplate) -> None:
    _precinct, figures = _official(committed)
    data, labels = protocol_photo(committed, figures, "4", np.random.default_rng(3))
    image = _decode(data)
    long_side = labels.conditions["long_side"]
    assert max(image.shape[:2]) == long_side
    clean = sanitize_photo(data)  # what the upload path does to it
    assert clean.width > 0
    assert labels.design == "by-2020" and labels.figures == figures


def test_blue_ink_is_blue() -> None:
    for seed in range(12):
        rng = np.random.default_rng(seed)
        figures = consistent_figures("by-2020", rng)
        page, labels = protocol_page(
            "by-2020", figures, "1", rng, corrections=0.0, stamp_over_fields=0.0
        )
        x, y, w, h = render_protocol(DESIGNS["by-2020"])[1].fields[0].box
        cell = np.asarray(page, dtype=np.int16)[y : y + h, x : x + w].reshape(-1, 3)
        ink = cell[cell.sum(axis=1) < 450]
        blueness = float((ink[:, 2] - ink[:, 0]).mean())
        assert (blueness > 40) == (labels.ink == "blue"), (seed, blueness, labels.ink)


def test_corrections_are_labelled_with_the_struck_number() -> None:
    rng = np.random.default_rng(5)
    figures = consistent_figures("by-2020", rng)
    _, every = protocol_page("by-2020", figures, "9", rng, corrections=1.0, dash_for_zero=0.0)
    assert set(every.corrected) == set(figures)
    assert all(every.corrected[k] != figures[k] and every.corrected[k] >= 0 for k in figures)
    # A correction carries a "corrected, believe it" signature beside it.
    assert every.signed_over
    _, none = protocol_page("by-2020", figures, "9", rng, corrections=0.0)
    assert none.corrected == {}
    # Digit-box forms are never corrected in place.
    ru = consistent_figures("ru-2018", rng)
    _, squares = protocol_page("ru-2018", ru, "9", rng, corrections=1.0)
    assert squares.corrected == {}


def test_stamp_over_the_cells_is_labelled() -> None:
    rng = np.random.default_rng(2)
    figures = consistent_figures("by-2020", rng)
    _reference, doc, _ = render_protocol(DESIGNS["by-2020"])
    boxes = {f.id: f.box for f in doc.fields}
    for _ in range(5):
        page, labels = protocol_page(
            "by-2020", figures, "9", rng, stamp_over_fields=1.0, signature_over_fields=0.0,
            corrections=0.0,
        )  # fmt: skip
        assert labels.stamped
        pixels = np.asarray(page, dtype=np.int16)
        for name in labels.stamped:
            if name == "precinct":
                continue
            x, y, w, h = boxes[name]
            cell = pixels[y : y + h, x : x + w].reshape(-1, 3)
            violet = (cell[:, 0] - cell[:, 1] > 10) & (cell[:, 2] - cell[:, 1] > 25)
            assert violet.sum() > 20, name
    _, placed = protocol_page("by-2020", figures, "9", rng, stamp_over_fields=0.0)
    assert placed.stamped == []  # on its place, clear of the cells


def test_zero_may_be_written_as_a_dash() -> None:
    rng = np.random.default_rng(4)
    figures = {**consistent_figures("by-2020", rng), "ballots_issued_home": 0}
    _, labels = protocol_page("by-2020", figures, "9", rng, dash_for_zero=1.0)
    assert labels.dashes == ["ballots_issued_home"]
    assert labels.figures["ballots_issued_home"] == 0


def test_broken_arithmetic_fails_a_check(committed: ProtocolTemplate) -> None:
    rng = np.random.default_rng(9)
    _, figures = _official(committed)
    for _ in range(20):
        changed, field = break_arithmetic("by-2020", figures, rng)
        assert [k for k in figures if changed[k] != figures[k]] == [field]
        assert False in committed.check_results(changed)
        _, labels = protocol_page("by-2020", changed, "4", rng)
        assert not labels.arithmetic_ok
        assert labels.checks == committed.check_results(changed)


def test_official_rows_used_satisfy_the_checks(committed: ProtocolTemplate) -> None:
    rows = official_figures(committed.field_ids, SEED / "official.csv")
    holding = [r for r in rows if all(committed.check_results(r[1]))]
    assert len(holding) > 0.95 * len(rows)


@pytest.mark.parametrize("kind", NOT_A_PROTOCOL_KINDS)
def test_not_a_protocol_photos(kind: str) -> None:
    rng = np.random.default_rng(1)
    data, labels = not_a_protocol_photo("by-2020", rng, kind)  # type: ignore[arg-type]
    _decode(data)
    assert labels.kind == "not_a_protocol" and labels.figures == {}
    assert labels.not_a_protocol is not None and labels.not_a_protocol.startswith(kind)
    if kind == "other_design":
        assert labels.not_a_protocol.split(":")[1] in set(DESIGNS) - {"by-2020"}


def test_labelled_set_mixes_consistent_failing_and_other_photos(tmp_path: Path) -> None:
    folder = write_labelled_set("by-2020", tmp_path, 16, seed=3, failing=0.3, not_protocols=0.25)
    lines = [json.loads(line) for line in (folder / "labels.jsonl").read_text("utf-8").splitlines()]
    assert len(lines) == 16
    for line in lines:
        _decode((folder / line["photo"]).read_bytes())
    protocols = [x for x in lines if x["kind"] == "protocol"]
    assert any(x["kind"] == "not_a_protocol" for x in lines)
    assert any(x["arithmetic_ok"] for x in protocols)
    assert any(not x["arithmetic_ok"] for x in protocols)
    # Consistent ones are the seeded official protocols, numbered as printed.
    official = {p: f for p, f in official_figures(list(protocols[0]["figures"]))}
    for x in protocols:
        assert x["precinct_id"] in official
        assert x["precinct"] == str(int(x["precinct_id"].rsplit("-", 1)[1]))
        if x["arithmetic_ok"]:
            assert x["figures"] == official[x["precinct_id"]]
    # The same seed gives the same set.
    again = [s.labels for s in labelled_photos("by-2020", 16, seed=3, failing=0.3,
                                               not_protocols=0.25)]  # fmt: skip
    assert [json.loads(label.to_json()) for label in again] == [
        {k: v for k, v in x.items() if k != "photo"} for x in lines
    ]


def test_a_careless_signature_may_be_asked_for_in_the_other_pen_or_the_same() -> None:
    for seed in range(8):
        pages = {}
        for pen in ("same", "other"):
            rng = np.random.default_rng(seed)
            figures = consistent_figures("by-2020", rng)
            page, labels = protocol_page(
                "by-2020", figures, "1", rng, corrections=0.0, stamp_over_fields=0.0,
                signature_over_fields=1.0, signature_pen=pen,
            )  # fmt: skip
            assert labels.signed_over
            pages[pen] = np.asarray(page, np.int16)
        # the same page but for the signature's pen: where they differ is the signature
        stroke = np.abs(pages["same"] - pages["other"]).max(axis=2) > 60
        assert stroke.sum() > 200, seed
        blueness = {
            pen: float((page[stroke][:, 2] - page[stroke][:, 0]).mean())
            for pen, page in pages.items()
        }
        figures_blue = labels.ink == "blue"
        assert (blueness["same"] > 40) == figures_blue, (seed, blueness)
        assert (blueness["other"] > 40) != figures_blue, (seed, blueness)


def test_bad_input_is_refused() -> None:
    rng = np.random.default_rng(0)
    figures = consistent_figures("by-2020", rng)
    with pytest.raises(KeyError, match="turnout"):
        protocol_page("by-2020", {**figures, "turnout": 1}, "4", rng)
    with pytest.raises(ValueError, match="digits"):
        protocol_page("by-2020", figures, "01-010-0004", rng)
    with pytest.raises(ValueError, match="signature_pen"):
        protocol_page("by-2020", figures, "4", rng, signature_pen="red")
