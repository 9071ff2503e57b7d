"""The analysts' query API: an election's precincts and flags, filtered, one keyset
page at a time (a page is the rows after the last one seen, in id order, so a
client that pages through sees every row once even while others are added).

Each domain's rows come through its own repository; a filter on another domain's
rows (a station's status, a flag's region) becomes a list of station ids.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from api.analysts.schemas import FlagPage, FlagRecord, PrecinctPage, PrecinctRecord
from api.elections import repository as elections
from api.elections.service import get_election
from api.errors import Invalid
from api.protocols import service as protocol_figures
from api.public.schemas import StationStatus
from api.public.service import station_status
from tally import repository as tallies
from tally.vocab import Flag, FlagKind, ReviewStatus

LIMIT_DEFAULT = 100
LIMIT_MAX = 1000


def _one_of(field: str, value: str | None, allowed: Iterable[str]) -> str | None:
    """``value`` when it is one of ``allowed`` (or None); else 422 naming ``field``
    and the values it takes. Pure."""
    if value is None:
        return None
    names = [str(a) for a in allowed]
    if value not in names:
        raise Invalid(field, f"{value!r} is not one of: {', '.join(names)}")
    return value


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= LIMIT_MAX:
        raise Invalid("limit", f"must be between 1 and {LIMIT_MAX}")


def _check_area(
    conn: psycopg.Connection, election_id: str, region: str | None, district: str | None
) -> None:
    """404 for an unknown election; 422 for a region or district it does not have."""
    get_election(conn, election_id)
    if region is None and district is None:
        return
    known = elections.regions_and_districts(conn, election_id)
    if region is not None and region not in known:
        raise Invalid("region", f"no region {region!r} in election {election_id!r}")
    if district is not None:
        districts = known[region] if region is not None else set().union(*known.values())
        if district not in districts:
            where = f"region {region!r}" if region is not None else f"election {election_id!r}"
            raise Invalid("district", f"no district {district!r} in {where}")


def precincts(
    conn: psycopg.Connection,
    election_id: str,
    *,
    region: str | None = None,
    district: str | None = None,
    status: str | None = None,
    after: str | None = None,
    limit: int = LIMIT_DEFAULT,
) -> PrecinctPage:
    """One page of the election's stations after the station ``after``, filtered."""
    _check_limit(limit)
    wanted = _one_of("status", status, StationStatus)
    _check_area(conn, election_id, region, district)
    summaries = tallies.flag_summaries(conn, election_id)
    proof = [p for p, s in summaries.items() if FlagKind.PROOF in s.kinds]
    only: list[str] | None = None
    excluding: list[str] | None = None
    has_official: bool | None = None
    if wanted == StationStatus.PROOF:
        only = proof
    elif wanted == StationStatus.STATISTICAL:
        only = [p for p, s in summaries.items() if FlagKind.PROOF not in s.kinds]
    elif wanted in (StationStatus.CLEAN, StationStatus.NODATA):
        excluding = list(summaries)
        has_official = wanted == StationStatus.CLEAN
    places = elections.precinct_places_page(
        conn,
        election_id,
        region=region,
        district=district,
        only=only,
        excluding=excluding,
        has_official=has_official,
        after=after,
        limit=limit + 1,
    )
    page, more = places[:limit], len(places) > limit
    ids = [p.precinct_id for p in page]
    protocols = protocol_figures.official_protocols_of(conn, election_id, ids)
    photos = tallies.photo_tally_of(conn, election_id, ids)
    voters = tallies.photo_voters_of(conn, election_id, ids)
    counts = tallies.flag_counts_of(conn, election_id, ids)
    options = list(elections.option_labels(conn, election_id))
    items = [
        PrecinctRecord(
            id=p.precinct_id,
            region=p.region,
            district=p.district,
            name=p.name,
            registered=p.registered,
            address=p.address,
            latitude=p.latitude,
            longitude=p.longitude,
            status=station_status(p.has_official, summaries.get(p.precinct_id)),
            official=protocols.get(p.precinct_id),
            photos={o: photos[(p.precinct_id, o)] for o in options if (p.precinct_id, o) in photos},
            photo_voters=voters.get(p.precinct_id, 0),
            standing_flags=counts.get(p.precinct_id, (0, 0))[0],
            proof_flags=counts.get(p.precinct_id, (0, 0))[1],
        )
        for p in page
    ]
    return PrecinctPage(items=items, next=ids[-1] if more else None)


def flags(
    conn: psycopg.Connection,
    election_id: str,
    *,
    region: str | None = None,
    district: str | None = None,
    flag: str | None = None,
    kind: str | None = None,
    review_status: str | None = None,
    after: str | None = None,
    limit: int = LIMIT_DEFAULT,
) -> FlagPage:
    """One page of the election's flags after the flag ``after``, filtered."""
    _check_limit(limit)
    flag = _one_of("flag", flag, Flag)
    kind = _one_of("kind", kind, FlagKind)
    review_status = _one_of("review_status", review_status, ReviewStatus)
    after_id: int | None = None
    if after is not None:
        if not (after.isascii() and after.isdigit()):
            raise Invalid("after", "must be the `next` of the previous page (a flag id)")
        after_id = int(after)
    _check_area(conn, election_id, region, district)
    precinct_ids = (
        elections.precinct_ids_in(conn, election_id, region, district)
        if region is not None or district is not None
        else None
    )
    rows = tallies.flags_page(
        conn,
        election_id,
        precinct_ids=precinct_ids,
        flag=flag,
        kind=kind,
        review_status=review_status,
        after=after_id,
        limit=limit + 1,
    )
    page, more = rows[:limit], len(rows) > limit
    places = elections.precinct_regions(conn, election_id, sorted({f.precinct_id for f in page}))
    items = [
        FlagRecord(
            **f._asdict(),
            region=places.get(f.precinct_id, ("", ""))[0],
            district=places.get(f.precinct_id, ("", ""))[1],
        )
        for f in page
    ]
    return FlagPage(items=items, next=str(page[-1].id) if more else None)
