"""The public area's pure parts: statuses, figures, search words, the map's projection."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from api.public.mapsvg import MARGIN, WIDTH, projection, station_map, within_fences
from api.public.schemas import MapPoint, StationStatus
from api.public.service import figures, search_tokens, station_status, summarise
from tally.repository import FlagSummary, StoredFlag


def _summary(*kinds: str) -> FlagSummary:
    return FlagSummary(frozenset(kinds), (), len(kinds))


def test_a_station_status_is_its_strongest_standing_evidence() -> None:
    assert station_status(True, _summary("proof", "statistical")) is StationStatus.PROOF
    assert station_status(False, _summary("proof")) is StationStatus.PROOF
    assert station_status(True, _summary("statistical")) is StationStatus.STATISTICAL
    assert station_status(True, None) is StationStatus.CLEAN
    assert station_status(False, None) is StationStatus.NODATA


def _flag(kind: str, review_status: str, flag: str = "x") -> StoredFlag:
    return StoredFlag(
        1, "p", flag, kind, "", "protocol", None, None, None, None, None, "", review_status
    )


def test_dismissed_flags_no_longer_stand() -> None:
    assert summarise([_flag("proof", "dismissed")]) is None
    standing = summarise(
        [_flag("proof", "dismissed", "a"), _flag("proof", "confirmed", "b"),
         _flag("statistical", "more_evidence")]
    )  # fmt: skip
    assert standing == FlagSummary(frozenset({"proof", "statistical"}), ("b",), 2)


def test_figures_share_out_the_votes_for_options() -> None:
    labels = {"a": "A", "b": "B"}
    result = figures(labels, {"a": 30, "b": 10}, {}, [StationStatus.CLEAN] * 2, 2, 0)
    assert [(o.official_share, o.crowd_share) for o in result.options] == [
        (0.75, None),
        (0.25, None),
    ]
    assert result.by_status == {StationStatus.PROOF: 0, StationStatus.STATISTICAL: 0,
                                StationStatus.CLEAN: 2, StationStatus.NODATA: 0}  # fmt: skip


def test_search_words_are_numbers_or_escaped_substrings() -> None:
    assert search_tokens("№12 Гоголя") == [(12, "%12%"), (None, "%Гоголя%")]
    assert search_tokens("50% a_b") == [(None, "%50\\%%"), (None, "%a\\_b%")]
    assert search_tokens("  № ") == []
    assert len(search_tokens("a b c d e f g h")) == 6


def _point(
    pid: str, lat: float, lon: float, status: StationStatus = StationStatus.CLEAN
) -> MapPoint:
    return MapPoint(pid, pid, lat, lon, status)


def test_the_projection_keeps_north_up_east_right_and_true_proportions() -> None:
    # Belarus' corners: 5 degrees of latitude, 9.6 of longitude at 53.7 degrees north.
    points = [_point("sw", 51.3, 23.2), _point("ne", 56.2, 32.8)]
    proj = projection(points)
    west, south = proj.project(51.3, 23.2)
    east, north = proj.project(56.2, 32.8)
    assert east > west and north < south
    width, height = east - west, south - north
    assert math.isclose(width / height, 9.6 * math.cos(math.radians(53.75)) / 4.9, rel_tol=1e-9)
    assert math.isclose(width, WIDTH - 2 * MARGIN)
    assert math.isclose(proj.height, height + 2 * MARGIN)


@given(st.lists(st.tuples(st.floats(-60, 70), st.floats(-170, 170)), min_size=1, max_size=30))
def test_every_station_is_drawn_inside_the_map(coordinates: list[tuple[float, float]]) -> None:
    points = [_point(str(i), lat, lon) for i, (lat, lon) in enumerate(coordinates)]
    proj = projection(points)
    for lat, lon in coordinates:
        x, y = proj.project(lat, lon)
        assert -1e-6 <= x <= proj.width + 1e-6 and -1e-6 <= y <= proj.height + 1e-6


def test_the_map_escapes_names_and_links_each_station() -> None:
    svg = station_map(
        [_point('<b>"x"</b>', 53.9, 27.5, StationStatus.PROOF)],
        href="stations/{}",
        labels={StationStatus.PROOF: "Proven"},
        title="Map & more",
    )
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert 'aria-label="Map &amp; more"' in svg
    assert 'href="stations/%3Cb%3E%22x%22%3C%2Fb%3E"' in svg
    assert '<g class="s-proof">' in svg and svg.count("<a ") == 1


def test_stations_far_from_the_others_are_set_apart() -> None:
    town = [_point(f"t{i}", 53.9 + i / 1000, 27.5 + i / 1000) for i in range(20)]
    suburb = _point("suburb", 53.95, 27.9)  # past the quartile fence, within half a degree
    abroad = _point("abroad", 10.5, -66.8)
    inside, outside = within_fences([*town, suburb, abroad])
    assert inside == [*town, suburb] and outside == [abroad]
    assert within_fences([abroad, suburb]) == ([abroad, suburb], [])  # too few to judge
