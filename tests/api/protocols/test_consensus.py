"""The protocols domain's pure decisions: people's entries for a field, a station's
sources reconciled, the flag of a conflict, the station number read on a form, the
fields a reading sends to people, and the crop of a field's cell."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from api.protocols.consensus import (
    FigureSource,
    Outcome,
    conflict_finding,
    provenance,
    reconcile,
    reconcile_field,
    same_figures,
    same_station,
    transcription_outcome,
)
from api.protocols.schemas import FieldState, FigureStatus, SourceKind
from api.protocols.service import crop_quad, new_fields
from tally.vocab import Flag, FlagKind
from tests.api.protocols.conftest import FIELDS, GOOD, reading

entry = st.one_of(st.none(), st.integers(min_value=0, max_value=5))
PHOTO_A, PHOTO_B = uuid.UUID(int=10), uuid.UUID(int=11)
OTHER = {**GOOD, "lukashenko": 250, "tsikhanouskaya": 51}


# -- transcription_outcome ----------------------------------------------------------


def test_two_agreeing_entries_make_the_value() -> None:
    assert transcription_outcome([1532, 1532]) == Outcome(FieldState.AGREED, 1532)


def test_two_disagreeing_entries_ask_for_a_third() -> None:
    assert transcription_outcome([1532, 1523]) == Outcome(FieldState.NEEDS_THIRD)


def test_two_of_three_agreeing_make_the_value() -> None:
    assert transcription_outcome([1532, 1523, 1523]) == Outcome(FieldState.AGREED, 1523)


def test_three_different_entries_are_a_dispute() -> None:
    assert transcription_outcome([1, 2, 3]) == Outcome(FieldState.DISPUTED)


def test_two_illegible_entries_leave_the_field_without_a_value() -> None:
    assert transcription_outcome([None, None]) == Outcome(FieldState.ILLEGIBLE)
    assert transcription_outcome([7, None, None]) == Outcome(FieldState.ILLEGIBLE)


def test_illegible_beside_a_number_is_a_disagreement() -> None:
    assert transcription_outcome([None, 7]) == Outcome(FieldState.NEEDS_THIRD)
    assert transcription_outcome([None, 7, 8]) == Outcome(FieldState.DISPUTED)


def test_one_entry_decides_nothing() -> None:
    assert (
        transcription_outcome([]) == transcription_outcome([5]) == Outcome(FieldState.TRANSCRIBING)
    )


@given(st.lists(entry, max_size=3))
def test_the_order_of_the_entries_does_not_change_the_outcome(entries: list[int | None]) -> None:
    outcomes = {transcription_outcome(list(p)) for p in itertools.permutations(entries)}
    assert len(outcomes) == 1


@given(st.lists(entry, max_size=6))
def test_a_value_is_made_only_by_two_people_typing_it(entries: list[int | None]) -> None:
    outcome = transcription_outcome(entries)
    counted = Counter(entries[:3])
    if outcome.state is FieldState.AGREED:
        assert outcome.value is not None and counted[outcome.value] >= 2
    else:
        assert outcome.value is None
    if outcome.state is FieldState.ILLEGIBLE:
        assert counted[None] >= 2
    twice = [v for v, n in counted.items() if n >= 2]
    assert (outcome.state in (FieldState.AGREED, FieldState.ILLEGIBLE)) == bool(twice)


@given(st.lists(entry, min_size=3, max_size=6))
def test_only_the_first_three_entries_count(entries: list[int | None]) -> None:
    assert transcription_outcome(entries) == transcription_outcome(entries[:3])
    assert transcription_outcome(entries).state is not FieldState.TRANSCRIBING


# -- reconcile ------------------------------------------------------------------------


def test_a_file_and_a_photo_that_agree_confirm_the_figure_with_both_sources() -> None:
    sources = [
        FigureSource(SourceKind.MACHINE, 300, PHOTO_A),
        FigureSource(SourceKind.FILE, 300),
    ]
    figure = reconcile_field("lukashenko", sources)
    assert figure.status is FigureStatus.CONFIRMED and figure.value == 300
    assert [s.kind for s in figure.sources] == [SourceKind.FILE, SourceKind.MACHINE]


def test_a_disagreement_is_a_conflict_without_a_figure() -> None:
    sources = [FigureSource(SourceKind.FILE, 300), FigureSource(SourceKind.MACHINE, 30, PHOTO_A)]
    figure = reconcile_field("lukashenko", sources)
    assert figure.status is FigureStatus.CONFLICT and figure.value is None
    assert {s.value for s in figure.sources} == {300, 30}


def test_a_field_still_with_people_is_pending_and_an_agreed_illegible_one_is_shown_so() -> None:
    assert reconcile_field("invalid", [], pending_photos=1).status is FigureStatus.PENDING
    illegible = [FigureSource(SourceKind.TRANSCRIPTION, None, PHOTO_A, 2)]
    assert reconcile_field("invalid", illegible).status is FigureStatus.ILLEGIBLE
    # An illegible photo beside the file neither confirms nor contradicts it.
    with_file = [*illegible, FigureSource(SourceKind.FILE, 5)]
    assert reconcile_field("invalid", with_file).status is FigureStatus.SINGLE


source_values = st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=5)


@given(source_values)
def test_a_figure_is_given_exactly_when_every_source_agrees(values: list[int]) -> None:
    sources = [FigureSource(SourceKind.FILE, values[0])] + [
        FigureSource(SourceKind.MACHINE, v, uuid.UUID(int=i + 1)) for i, v in enumerate(values[1:])
    ]
    figure = reconcile_field("f", sources)
    if len(set(values)) == 1:
        assert figure.value == values[0]
        assert figure.status is (FigureStatus.CONFIRMED if len(values) > 1 else FigureStatus.SINGLE)
    else:
        assert figure.value is None and figure.status is FigureStatus.CONFLICT
    assert len(figure.sources) == len(values)


def _photo(photo: uuid.UUID, values: dict[str, int]) -> dict[str, list[FigureSource]]:
    return {f: [FigureSource(SourceKind.MACHINE, v, photo)] for f, v in values.items()}


def _merge(*parts: dict[str, list[FigureSource]]) -> dict[str, list[FigureSource]]:
    merged: dict[str, list[FigureSource]] = {}
    for part in parts:
        for field, sources in part.items():
            merged.setdefault(field, []).extend(sources)
    return merged


def test_two_photos_of_different_protocols_are_named_so() -> None:
    result = reconcile(_merge(_photo(PHOTO_A, GOOD), _photo(PHOTO_B, OTHER)))
    assert result.conflict
    assert set(result.conflicting_fields) == {"lukashenko", "tsikhanouskaya"}
    assert result.different_protocols == ((f"photo:{PHOTO_A}", f"photo:{PHOTO_B}", 2),)


def test_one_misread_figure_is_a_conflict_but_not_two_protocols() -> None:
    result = reconcile(_merge(_photo(PHOTO_A, GOOD), _photo(PHOTO_B, {**GOOD, "invalid": 6})))
    assert result.conflicting_fields == ("invalid",) and result.different_protocols == ()


def test_a_conflict_raises_conflicting_protocols_with_the_numbers_and_sources() -> None:
    file = {f: [FigureSource(SourceKind.FILE, v)] for f, v in GOOD.items()}
    typed = {"lukashenko": [FigureSource(SourceKind.TRANSCRIPTION, 200, PHOTO_A, 2)]}
    finding = conflict_finding("p1", reconcile(_merge(file, typed)))
    assert finding is not None
    assert finding.flag is Flag.CONFLICTING_PROTOCOLS and finding.kind is FlagKind.PROOF
    assert "lukashenko: 300 (the imported file), 200 (photo 00000000, typed by 2 observers)" in (
        finding.detail
    )
    assert finding.statistic == 1.0


def test_agreeing_sources_raise_no_flag() -> None:
    file = {f: [FigureSource(SourceKind.FILE, v)] for f, v in GOOD.items()}
    assert conflict_finding("p1", reconcile(_merge(file, _photo(PHOTO_A, GOOD)))) is None


# -- the station number, the fields of a reading, the crop ---------------------------


def test_the_number_read_on_the_form_names_the_declared_station_or_not() -> None:
    assert same_station("523", "523")
    assert same_station("01-0523", "523")
    assert same_station("p1", "1")
    assert not same_station("p1", "2")
    assert not same_station("01-523", "524")
    assert same_station("p1", "")  # nothing read contradicts nothing


def test_confident_values_are_given_and_the_others_go_to_people() -> None:
    rows = new_fields(FIELDS, reading({**GOOD, "invalid": None}))
    states = {r.field_id: r.state for r in rows}
    assert states["invalid"] is FieldState.TRANSCRIBING
    assert [f for f, s in states.items() if s is FieldState.GIVEN] == [
        f for f in FIELDS if f != "invalid"
    ]
    assert {r.field_id: r.value for r in rows}["lukashenko"] == 300


def test_a_reading_whose_checks_fail_sends_every_field_to_people() -> None:
    rows = new_fields(FIELDS, reading(GOOD, checks=[False, True, True]))
    assert {r.state for r in rows} == {FieldState.TRANSCRIBING}
    assert all(r.value is None for r in rows)
    assert {r.field_id: r.machine_value for r in rows} == GOOD  # kept, never shown


def test_the_crop_of_a_cell_is_upright_with_a_margin_around_it() -> None:
    gray = np.full((400, 600), 255, dtype=np.uint8)
    gray[100:180, 200:460] = 0  # the cell, black
    crop = crop_quad(gray, [[200, 100], [460, 100], [460, 180], [200, 180]], margin=0.25)
    height, width = crop.shape
    assert height == 160
    assert abs(width / height - (260 + 40) / (80 + 40)) < 0.05
    assert crop[height // 2, width // 2] == 0  # the cell in the middle
    assert crop[2, 2] == 255 and crop[-3, -3] == 255  # the margin around it


def test_a_stations_provenance_says_which_sources_stand_behind_its_figures() -> None:
    file = {f: [FigureSource(SourceKind.FILE, v)] for f, v in GOOD.items()}
    assert provenance(reconcile(file)) == "file"
    both = _merge(file, _photo(PHOTO_A, GOOD), _photo(PHOTO_B, GOOD))
    assert provenance(reconcile(both)) == "file + 2 photos"
    partial = {f: v for f, v in GOOD.items() if f != "invalid"}
    assert provenance(reconcile(_photo(PHOTO_A, partial), {"invalid": 1})) == "1 photo (1 pending)"
    assert provenance(reconcile(_merge(file, _photo(PHOTO_A, OTHER)))) == "conflict"


readings = st.dictionaries(st.sampled_from(FIELDS), st.none() | st.integers(0, 3000))


@given(readings, readings)
def test_two_readings_have_the_same_figures_either_way_round(
    a: dict[str, int | None], b: dict[str, int | None]
) -> None:
    assert same_figures(a, b) == same_figures(b, a)
    assert same_figures(a, a)


@given(readings, st.sampled_from(FIELDS), st.integers(0, 3000))
def test_one_value_given_otherwise_makes_two_readings_differ(
    a: dict[str, int | None], field: str, value: int
) -> None:
    a = {**a, field: value}
    assert not same_figures(a, {**a, field: value + 1})
    assert same_figures(a, {**a, field: None})  # no value is no disagreement
