"""Fields given a value, and only right ones: real rendered photos of the seeded forms
(seeds.protocol_photos), read by the protocol reader."""

from __future__ import annotations

import itertools

from ocr.protocol import read_protocol
from ocr.protocol_template import ProtocolTemplate
from seeds.protocol_photos import Sample, labelled_photos


def _sample(design: str, seed: int, index: int) -> Sample:
    photos = labelled_photos(design, index + 1, seed, not_protocols=0.0)
    return next(itertools.islice(photos, index, None))


def test_a_square_beside_the_number_with_no_ink_the_reader_can_see_is_empty(
    ru_protocol: ProtocolTemplate,
) -> None:
    # Seed 7, photo 15: 33, 73 and 235 written in the right-hand squares, a
    # trace in the square before each (JPEG, the paper) too faint to call empty
    # and too little to be a stroke. The three were withheld as doubtful; the
    # digit reader finds nothing in those squares, so they are empty.
    sample = _sample("ru-2018", 7, 15)
    figures = sample.labels.figures
    reading = read_protocol(ru_protocol, sample.photo)
    for field in ("baburin", "ballots_cancelled", "ballots_issued"):
        assert reading.fields[field].value == figures[field], field
    for field, truth in figures.items():
        assert reading.fields[field].value in (None, truth), field


def test_a_faint_one_along_its_side_still_withholds_the_number(
    ru_protocol: ProtocolTemplate,
) -> None:
    # Seed 23, photo 30: 81, the 1 hugging the rule it shares with the 8 and
    # inpainted with it. Its square is doubtful by its side, which the digit
    # reader cannot see past: it must not be called empty (the field was 8).
    sample = _sample("ru-2018", 23, 30)
    assert sample.labels.figures["ballots_cancelled"] == 81
    reading = read_protocol(ru_protocol, sample.photo)
    assert reading.fields["ballots_cancelled"].value in (None, 81)


def test_a_one_touching_the_next_digit_is_not_lost_with_confidence(
    by_protocol: ProtocolTemplate,
) -> None:
    # Seed 23, photo 31: dmitriyev 16, its 1 touching the 6. Read whole, the
    # ink was a 6 (0.985); cut, 1 and 6 (0.934): the field was given as 6.
    sample = _sample("by-2020", 23, 31)
    assert sample.labels.figures["dmitriyev"] == 16
    reading = read_protocol(by_protocol, sample.photo)
    assert reading.fields["dmitriyev"].value in (None, 16)
    for field, truth in sample.labels.figures.items():
        assert reading.fields[field].value in (None, truth), field
