"""The public pages' figures: what anyone may see of an election.

Aggregates only. Nothing here reads a submission, a photo or a voter: the crowd
figures are the verified photo tallies (``tally.repository``) and the imported
crowd sources' counts, the official ones the current protocols, the statuses the
stored flags (a flag observers dismissed no longer counts against a station).
Each domain's rows come through its own repository; they are put together here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping

import psycopg

from api.elections import repository as elections_repo
from api.elections.repository import ElectionRef, PrecinctPlace, SearchToken
from api.elections.schemas import Election
from api.elections.service import get_election
from api.errors import Invalid, NotFound
from api.protocols import service as protocols
from api.public.schemas import (
    STATUS_DRAW_ORDER,
    CrowdSource,
    ElectionOverview,
    Figures,
    MapPoint,
    OptionFigure,
    PublicFlag,
    RegionFigures,
    RegionView,
    StationMatch,
    StationRow,
    StationStatus,
    StationView,
)
from tally import repository as tallies
from tally.repository import FlagSummary, StoredFlag
from tally.vocab import EvidenceLevel, FlagKind, ReviewStatus, Source

SEARCH_LIMIT_DEFAULT = 20
SEARCH_LIMIT_MAX = 100
# A search reads at most this many words (a station's number, a street, a town).
SEARCH_MAX_TOKENS = 6
SEARCH_MAX_LENGTH = 200


def station_status(has_official: bool, flags: FlagSummary | None) -> StationStatus:
    """A station's status from its protocol and its standing flags. Pure."""
    kinds = flags.kinds if flags is not None else frozenset()
    if FlagKind.PROOF in kinds:
        return StationStatus.PROOF
    if FlagKind.STATISTICAL in kinds:
        return StationStatus.STATISTICAL
    return StationStatus.CLEAN if has_official else StationStatus.NODATA


def summarise(flags: Iterable[StoredFlag]) -> FlagSummary | None:
    """One station's standing flags from all its flags (None: none standing). Pure."""
    standing = [f for f in flags if f.review_status != ReviewStatus.DISMISSED]
    if not standing:
        return None
    return FlagSummary(
        kinds=frozenset(f.kind for f in standing),
        proof_flags=tuple(sorted({f.flag for f in standing if f.kind == FlagKind.PROOF})),
        standing=len(standing),
    )


def share(part: int, whole: int) -> float | None:
    """``part`` as a fraction of ``whole``; None when ``whole`` is zero. Pure."""
    return part / whole if whole else None


def figures(
    labels: Mapping[str, str],
    official: Mapping[str, int],
    crowd: Mapping[str, int],
    statuses: Iterable[StationStatus],
    with_official: int,
    with_photos: int,
) -> Figures:
    """An area's figures from its sums (per option) and its stations' statuses. Pure."""
    official_total = sum(official.get(o, 0) for o in labels)
    crowd_total = sum(crowd.get(o, 0) for o in labels)
    counted = Counter(statuses)
    return Figures(
        options=[
            OptionFigure(
                option_id=o,
                label=label,
                official=official.get(o, 0),
                official_share=share(official.get(o, 0), official_total),
                crowd=crowd.get(o, 0),
                crowd_share=share(crowd.get(o, 0), crowd_total),
            )
            for o, label in labels.items()
        ],
        official_total=official_total,
        crowd_total=crowd_total,
        stations=sum(counted.values()),
        stations_with_official=with_official,
        stations_with_photos=with_photos,
        by_status={s: counted.get(s, 0) for s in reversed(STATUS_DRAW_ORDER)},
    )


def _row(place: PrecinctPlace, summaries: Mapping[str, FlagSummary]) -> StationRow:
    summary = summaries.get(place.precinct_id)
    return StationRow(
        precinct_id=place.precinct_id,
        name=place.name,
        region=place.region,
        district=place.district,
        address=place.address,
        status=station_status(place.has_official, summary),
        proof_flags=summary.proof_flags if summary is not None else (),
    )


def elections(conn: psycopg.Connection) -> list[ElectionRef]:
    """Every election, latest first."""
    return elections_repo.elections_list(conn)


def election(conn: psycopg.Connection, election_id: str) -> Election:
    """The election; ``ElectionNotFound`` (404) when there is none of that id."""
    return get_election(conn, election_id)


def latest_election_id(conn: psycopg.Connection) -> str | None:
    """The latest election's id (by date, then by when it was loaded), or None."""
    latest = elections_repo.latest_election(conn)
    return None if latest is None else latest.election_id


def _area_figures(
    labels: Mapping[str, str],
    rows: list[StationRow],
    places: list[PrecinctPlace],
    official: Mapping[str, int],
    photos: Mapping[tuple[str, str], int],
    photo_voters: Mapping[str, int],
) -> Figures:
    ids = {p.precinct_id for p in places}
    crowd: Counter[str] = Counter()
    for (precinct, option), votes in photos.items():
        if precinct in ids:
            crowd[option] += votes
    return figures(
        labels,
        official,
        crowd,
        (r.status for r in rows),
        with_official=sum(p.has_official for p in places),
        with_photos=sum(1 for p in ids if photo_voters.get(p, 0) > 0),
    )


def overview(conn: psycopg.Connection, election_id: str) -> ElectionOverview:
    """The election's national and regional figures and its stations with proof;
    ``ElectionNotFound`` (404) for an unknown election."""
    election = get_election(conn, election_id)
    labels = elections_repo.option_labels(conn, election_id)
    places = elections_repo.precinct_places(conn, election_id)
    summaries = tallies.flag_summaries(conn, election_id)
    official = protocols.adjust_area_sums(
        elections_repo.official_votes_by_region(conn, election_id),
        {p.precinct_id: p.region for p in places},
        protocols.photo_station_votes(conn, election_id, list(labels)),
    )
    photos = tallies.photo_tally(conn, election_id)
    voters = tallies.photo_voters(conn, election_id)

    by_region: dict[str, list[PrecinctPlace]] = {}
    for place in places:
        by_region.setdefault(place.region, []).append(place)
    regions: list[RegionFigures] = []
    all_rows: list[StationRow] = []
    for region, region_places in by_region.items():
        rows = [_row(p, summaries) for p in region_places]
        all_rows += rows
        regions.append(
            RegionFigures(
                region,
                _area_figures(
                    labels, rows, region_places, official.get(region, {}), photos, voters
                ),
            )
        )
    national_official: Counter[str] = Counter()
    for votes in official.values():
        national_official.update(votes)
    national = _area_figures(labels, all_rows, places, national_official, photos, voters)
    return ElectionOverview(
        election_id=election.id,
        name=election.name,
        election_date=election.election_date,
        national=national,
        regions=regions,
        proof_stations=[r for r in all_rows if r.status is StationStatus.PROOF],
    )


def region_view(conn: psycopg.Connection, election_id: str, region: str) -> RegionView:
    """A region's figures and its stations with their status; 404 for an unknown
    election or region."""
    election = get_election(conn, election_id)
    places = elections_repo.precinct_places(conn, election_id, region=region)
    if not places:
        raise NotFound("region", f"no region {region!r} in this election")
    labels = elections_repo.option_labels(conn, election_id)
    summaries = tallies.flag_summaries(conn, election_id)
    official = protocols.adjust_area_sums(
        elections_repo.official_votes_by_region(conn, election_id),
        {p.precinct_id: p.region for p in places},
        protocols.photo_station_votes(conn, election_id, list(labels)),
    ).get(region, {})
    ids = [p.precinct_id for p in places]
    photos = tallies.photo_tally_of(conn, election_id, ids)
    voters = tallies.photo_voters_of(conn, election_id, ids)
    rows = [_row(p, summaries) for p in places]
    return RegionView(
        election_id=election.id,
        name=election.name,
        region=region,
        figures=_area_figures(labels, rows, places, official, photos, voters),
        stations=rows,
    )


def station_view(conn: psycopg.Connection, election_id: str, precinct_id: str) -> StationView:
    """One station's official protocol, crowd counts per source and flags; 404 for
    an unknown election or station."""
    election = get_election(conn, election_id)
    place = elections_repo.precinct_place(conn, election_id, precinct_id)
    if place is None:
        raise NotFound("precinct_id", f"no station {precinct_id!r} in this election")
    labels = elections_repo.option_labels(conn, election_id)
    protocol, reconciled = protocols.station_figures(conn, election_id, precinct_id)
    photos = tallies.photo_tally_of(conn, election_id, [precinct_id])
    voters = tallies.photo_voters_of(conn, election_id, [precinct_id]).get(precinct_id, 0)
    crowd: list[CrowdSource] = []
    if voters or photos:
        crowd.append(
            CrowdSource(
                source=str(Source.PHOTOS),
                level=EvidenceLevel.VERIFIED,
                votes={o: photos.get((precinct_id, o), 0) for o in labels},
                voters=voters,
            )
        )
    for source, (level, votes) in elections_repo.crowd_counts_of(
        conn, election_id, precinct_id
    ).items():
        crowd.append(CrowdSource(source=source, level=level, votes=votes, voters=None))
    stored = tallies.station_flags(conn, election_id, precinct_id)
    summary = summarise(stored)
    return StationView(
        election_id=election.id,
        election_name=election.name,
        station=_row(place, {precinct_id: summary} if summary else {}),
        registered=place.registered,
        option_labels=labels,
        protocol=protocol,
        reconciled=reconciled,
        crowd=crowd,
        flags=[
            PublicFlag(
                flag=f.flag,
                kind=f.kind,
                option=f.option,
                source=f.source,
                crowd=f.crowd,
                official=f.official,
                detail=f.detail,
                review_status=f.review_status,
            )
            for f in stored
        ],
    )


_LIKE_SPECIAL = re.compile(r"([\\%_])")


def search_tokens(query: str) -> list[SearchToken]:
    """The words of a station search: a word of digits (or "№12") is a station
    number, every word also a substring to find (LIKE wildcards escaped). Pure."""
    tokens: list[SearchToken] = []
    for word in query.replace("№", " № ").split()[:SEARCH_MAX_TOKENS]:
        if word == "№":
            continue
        pattern = "%" + _LIKE_SPECIAL.sub(r"\\\1", word) + "%"
        number = int(word) if word.isascii() and word.isdigit() else None
        tokens.append(SearchToken(number, pattern))
    return tokens


def search(
    conn: psycopg.Connection, election_id: str, query: str, limit: int
) -> list[StationMatch]:
    """Stations whose number, id, name or address match every word of ``query``
    (case ignored); 422 for an empty query or a limit out of range."""
    if not 1 <= limit <= SEARCH_LIMIT_MAX:
        raise Invalid("limit", f"must be between 1 and {SEARCH_LIMIT_MAX}")
    if len(query) > SEARCH_MAX_LENGTH:
        raise Invalid("q", f"at most {SEARCH_MAX_LENGTH} characters")
    tokens = search_tokens(query)
    if not tokens:
        raise Invalid("q", "give a station's number, or a part of its name or address")
    get_election(conn, election_id)
    return [
        StationMatch(
            id=p.precinct_id, name=p.name, address=p.address, region=p.region, district=p.district
        )
        for p in elections_repo.search_precincts(conn, election_id, query, tokens, limit)
    ]


def statuses(conn: psycopg.Connection, election_id: str) -> dict[str, StationStatus]:
    """Every station's status."""
    summaries = tallies.flag_summaries(conn, election_id)
    return {
        p.precinct_id: station_status(p.has_official, summaries.get(p.precinct_id))
        for p in elections_repo.precinct_places(conn, election_id)
    }


def map_points(
    conn: psycopg.Connection, election_id: str, region: str | None = None
) -> tuple[list[MapPoint], int]:
    """The stations with coordinates (of one region when given), weakest status
    first (the map draws the strongest on top), and how many have none; 404 for an
    unknown election or region. ``api.public.mapsvg.within_fences`` then tells the
    stations on the map from those far away (abroad)."""
    get_election(conn, election_id)
    places = elections_repo.precinct_places(conn, election_id, region=region)
    if region is not None and not places:
        raise NotFound("region", f"no region {region!r} in this election")
    summaries = tallies.flag_summaries(conn, election_id)
    points = [
        MapPoint(
            precinct_id=p.precinct_id,
            name=p.name,
            latitude=p.latitude,
            longitude=p.longitude,
            status=station_status(p.has_official, summaries.get(p.precinct_id)),
            address=p.address,
        )
        for p in places
        if p.latitude is not None and p.longitude is not None
    ]
    rank = {s: i for i, s in enumerate(STATUS_DRAW_ORDER)}
    points.sort(key=lambda p: rank[p.status])
    return points, len(places) - len(points)


def regions(conn: psycopg.Connection, election_id: str) -> list[str]:
    """The election's regions, by name."""
    return sorted(elections_repo.regions_and_districts(conn, election_id))
