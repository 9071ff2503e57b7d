"""End-to-end reading of generated phone photos with real Tesseract."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ocr.reader import BallotReading, read_ballot, read_ballot_files
from ocr.template import BallotTemplate, LoadedTemplate
from seeds.ballot import BY2020_DESIGN, render_reference
from seeds.photos import (
    MARK_STYLES,
    MarkStyle,
    PhotoConditions,
    mark_ballot,
    not_a_ballot_photo,
    phone_photo,
    random_conditions,
)

Reference = tuple[Image.Image, BallotTemplate]

# Moderate but realistic: tilted, in perspective, unevenly lit, shadowed, JPEG'd.
TYPICAL = PhotoConditions(
    rotation_deg=-9.0,
    perspective=0.04,
    blur_sigma=0.8,
    light_gradient=0.35,
    shadow=True,
    jpeg_quality=80,
    long_side=1600,
    ballot_fraction=0.85,
)


def _photo(
    reference: Reference,
    marks: list[str],
    seed: int,
    style: MarkStyle | None = None,
    conditions: PhotoConditions | None = TYPICAL,
) -> bytes:
    rng = np.random.default_rng(seed)
    image, template = reference
    ballot = mark_ballot(image, template, marks, rng, style)
    return phone_photo(ballot, rng, conditions)


def _check(reading: BallotReading, verdict: str, marks: list[str]) -> None:
    assert reading.verdict == verdict, reading
    assert sorted(reading.marks) == sorted(marks), reading
    assert 0.0 <= reading.confidence <= 1.0


def test_valid_single_mark(by_template: LoadedTemplate, by_reference: Reference) -> None:
    reading = read_ballot(by_template, _photo(by_reference, ["tsikhanouskaya"], seed=1))
    _check(reading, "valid", ["tsikhanouskaya"])
    assert reading.reasons == []
    assert reading.confidence > 0.6


@pytest.mark.parametrize("style", MARK_STYLES)
def test_each_mark_style(
    style: MarkStyle, by_template: LoadedTemplate, by_reference: Reference
) -> None:
    ids = [o.id for o in by_reference[1].options]
    for seed in (11, 12):
        option = ids[(seed * 7 + len(style)) % len(ids)]
        rng = np.random.default_rng(seed)
        photo = _photo(by_reference, [option], seed, style, random_conditions(rng))
        _check(read_ballot(by_template, photo), "valid", [option])


def test_blank(by_template: LoadedTemplate, by_reference: Reference) -> None:
    _check(read_ballot(by_template, _photo(by_reference, [], seed=2)), "blank", [])


def test_overmarked(by_template: LoadedTemplate, by_reference: Reference) -> None:
    marks = ["lukashenko", "against_all"]
    _check(read_ballot(by_template, _photo(by_reference, marks, seed=3)), "overmarked", marks)


def test_strong_tilt_within_spec(by_template: LoadedTemplate, by_reference: Reference) -> None:
    tilted = dataclasses.replace(TYPICAL, rotation_deg=24.0, ballot_fraction=0.75)
    photo = _photo(by_reference, ["dmitriyev"], seed=4, conditions=tilted)
    _check(read_ballot(by_template, photo), "valid", ["dmitriyev"])


def test_another_document_is_not_a_ballot(by_template: LoadedTemplate) -> None:
    for seed in range(3):  # a text page / form, a receipt, a scene
        reading = read_ballot(by_template, not_a_ballot_photo(np.random.default_rng(seed)))
        _check(reading, "not_a_ballot", [])
        assert reading.reasons


def test_another_elections_ballot_is_not_a_ballot(
    by_template: LoadedTemplate,
    referendum_template: LoadedTemplate,
    referendum_reference: Reference,
) -> None:
    photo = _photo(referendum_reference, ["yes"], seed=5)
    _check(read_ballot(by_template, photo), "not_a_ballot", [])
    # ... and the same photo is read right against its own template.
    _check(read_ballot(referendum_template, photo), "valid", ["yes"])


def test_same_layout_other_election_is_not_a_ballot(
    by_template: LoadedTemplate, by_reference: Reference
) -> None:
    """A look-alike page (same layout and candidates) printed for another election."""
    parliament = dataclasses.replace(
        BY2020_DESIGN,
        election="by-2019-parliament",
        title_lines=[
            "ИЗБИРАТЕЛЬНЫЙ БЮЛЛЕТЕНЬ",
            "для голосования по выборам депутатов",
            "Палаты представителей 17 ноября 2019 года",
        ],
    )
    image, template = render_reference(parliament)
    photo = _photo((image, template), ["dmitriyev"], seed=6)
    reading = read_ballot(by_template, photo)
    _check(reading, "not_a_ballot", [])
    assert reading.reasons == ["header_keywords_missing"]


def test_garbage_and_truncated_bytes_are_unreadable(
    by_template: LoadedTemplate, by_reference: Reference
) -> None:
    garbage = read_ballot(by_template, b"\x00\x01 definitely not an image" * 50)
    _check(garbage, "unreadable", [])
    assert garbage.reasons == ["not_an_image"]
    photo = _photo(by_reference, ["lukashenko"], seed=7)
    truncated = read_ballot(by_template, photo[: len(photo) // 2])
    _check(truncated, "unreadable", [])
    assert truncated.reasons == ["truncated_image"]


def test_heavily_blurred_photo_is_unreadable(
    by_template: LoadedTemplate, by_reference: Reference
) -> None:
    for sigma in (5.0, 9.0):
        blurred = dataclasses.replace(TYPICAL, blur_sigma=sigma)
        reading = read_ballot(by_template, _photo(by_reference, ["lukashenko"], 8, None, blurred))
        _check(reading, "unreadable", [])
        assert "blurred" in reading.reasons


def test_cut_off_photo_is_unreadable(by_template: LoadedTemplate, by_reference: Reference) -> None:
    photo = Image.open(io.BytesIO(_photo(by_reference, ["against_all"], seed=9)))
    width, height = photo.size
    buf = io.BytesIO()
    photo.crop((0, 0, width, int(height * 0.62))).save(buf, "JPEG", quality=90)
    reading = read_ballot(by_template, buf.getvalue())
    _check(reading, "unreadable", [])
    assert "cut_off" in reading.reasons


def test_read_ballot_files_keeps_order_and_survives_bad_files(
    by_dir: Path, by_reference: Reference, tmp_path: Path
) -> None:
    good1, good2 = tmp_path / "a.jpg", tmp_path / "d.jpg"
    good1.write_bytes(_photo(by_reference, ["charachen"], seed=10))
    good2.write_bytes(_photo(by_reference, [], seed=11))
    garbage = tmp_path / "b.jpg"
    garbage.write_bytes(b"GIF89a but not really")
    missing = tmp_path / "c-missing.jpg"
    photos = [good1, garbage, missing, good2]
    rows = list(read_ballot_files(by_dir, photos))
    assert [r["photo"] for r in rows] == [str(p) for p in photos]
    assert all(set(r) == {"photo", "verdict", "marks", "confidence", "reasons"} for r in rows)
    assert (rows[0]["verdict"], rows[0]["marks"]) == ("valid", ["charachen"])
    assert rows[1]["verdict"] == rows[2]["verdict"] == "unreadable"
    assert rows[1]["reasons"] and rows[2]["reasons"] == ["file_not_found"]
    assert rows[3]["verdict"] == "blank"


def test_read_ballot_files_without_template(tmp_path: Path) -> None:
    rows = list(read_ballot_files(tmp_path / "nowhere", [tmp_path / "x.jpg"]))
    assert rows == [
        {
            "photo": str(tmp_path / "x.jpg"),
            "verdict": "unreadable",
            "marks": [],
            "confidence": 1.0,
            "reasons": ["template_not_found"],
        }
    ]


def test_reading_is_deterministic(by_template: LoadedTemplate, by_reference: Reference) -> None:
    photo = _photo(by_reference, ["kanapatskaya"], seed=12)
    assert read_ballot(by_template, photo) == read_ballot(by_template, photo)
