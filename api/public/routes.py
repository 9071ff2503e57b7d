"""HTTP routes of the public area: the results pages, the map and the station
search. Anyone may call them (``PUBLIC``); they show aggregates only."""

from __future__ import annotations

import gzip
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import PUBLIC, Conn
from api.public import service
from api.public.mapsvg import station_map, within_fences
from api.public.schemas import STATUS_DRAW_ORDER, StationMatch, StationStatus
from api.web import Page, PageContext

router = APIRouter(tags=["public"])


def _(message: str) -> str:
    """Marks a message for the catalogue (``make messages``); translated when shown."""
    return message


STATUS_NAMES: dict[StationStatus, str] = {
    StationStatus.PROOF: _("Proven falsification"),
    StationStatus.STATISTICAL: _("Statistical flag only"),
    StationStatus.CLEAN: _("Clean"),
    StationStatus.NODATA: _("No data"),
}
MAP_TITLE = _("Map of the stations")
RESULTS_TITLE = _("Results")
REGION_MAP_TITLE = _("Map of the stations: %(region)s")


def status_labels(page: PageContext) -> dict[StationStatus, str]:
    """Each station status's name in the page's language."""
    return {status: page.gettext(name) for status, name in STATUS_NAMES.items()}


# The map of a whole country is nearly a megabyte of SVG, mostly repeated markup.
GZIP_LEVEL = 6


def compressed(page: PageContext, response: Response) -> Response:
    """The page gzip-compressed when the browser accepts it (the seeded map: 945 KiB
    becomes 103 KiB for a phone on a slow link). Only for pages that reflect nothing
    a visitor typed, so that the CSRF token on them cannot be guessed by length
    (BREACH)."""
    accepted = page.request.headers.get("accept-encoding", "")
    if "gzip" not in accepted.lower():
        return response
    body = gzip.compress(bytes(response.body), compresslevel=GZIP_LEVEL)
    response.body = body
    response.headers["content-length"] = str(len(body))
    response.headers["content-encoding"] = "gzip"
    response.headers["vary"] = "Accept-Encoding"
    return response


def _no_election(page: PageContext) -> HTMLResponse:
    return page.render("public/no_election.html", title=page.gettext(RESULTS_TITLE))


def _overview(page: PageContext, conn: Conn, election_id: str, query: str | None) -> HTMLResponse:
    overview = service.overview(conn, election_id)
    found = None
    if query and service.search_tokens(query):
        found = service.search(conn, election_id, query, service.SEARCH_LIMIT_MAX)
    return page.render(
        "public/election.html",
        title=overview.name,
        overview=overview,
        elections=service.elections(conn),
        query=query or "",
        found=found,
        status_labels=status_labels(page),
    )


@router.get("/", response_class=HTMLResponse, dependencies=[PUBLIC])
def home(page: Page, conn: Conn, q: str | None = None) -> Response:
    """The latest election's results (by date, then the last loaded)."""
    election_id = service.latest_election_id(conn)
    if election_id is None:
        return _no_election(page)
    return _overview(page, conn, election_id, q)


@router.get("/elections/{election_id}", response_class=HTMLResponse, dependencies=[PUBLIC])
def election_page(election_id: str, page: Page, conn: Conn, q: str | None = None) -> Response:
    """An election's national and regional figures, and its stations with proof."""
    return _overview(page, conn, election_id, q)


@router.get(
    "/elections/{election_id}/regions/{region}",
    response_class=HTMLResponse,
    dependencies=[PUBLIC],
)
def region_page(election_id: str, region: str, page: Page, conn: Conn) -> Response:
    """A region's figures and every station of it with its status."""
    view = service.region_view(conn, election_id, region)
    response = page.render(
        "public/region.html", title=region, view=view, status_labels=status_labels(page)
    )
    return compressed(page, response)  # reflects nothing but a region that exists


@router.get(
    "/elections/{election_id}/stations/{precinct_id}",
    response_class=HTMLResponse,
    dependencies=[PUBLIC],
)
def station_page(election_id: str, precinct_id: str, page: Page, conn: Conn) -> Response:
    """One station: the official protocol, the crowd's counts per source, the flags."""
    view = service.station_view(conn, election_id, precinct_id)
    return page.render(
        "public/station.html",
        title=view.station.name or view.station.precinct_id,
        view=view,
        status_labels=status_labels(page),
    )


@router.get("/map", response_class=HTMLResponse, dependencies=[PUBLIC])
def latest_map(page: Page, conn: Conn) -> Response:
    """The latest election's map."""
    election_id = service.latest_election_id(conn)
    if election_id is None:
        return _no_election(page)
    return RedirectResponse(f"/elections/{quote(election_id, safe='')}/map", status_code=303)


@router.get("/elections/{election_id}/map", response_class=HTMLResponse, dependencies=[PUBLIC])
def map_page(election_id: str, page: Page, conn: Conn, region: str | None = None) -> Response:
    """The stations on a map, coloured by status, each a link to its page (one region
    when ``region`` is given)."""
    election = service.election(conn, election_id)
    located, without_place = service.map_points(conn, election_id, region or None)
    points, far = within_fences(located)
    labels = status_labels(page)
    counts = {s: 0 for s in reversed(STATUS_DRAW_ORDER)}
    for point in points:
        counts[point.status] += 1
    title = page.gettext(REGION_MAP_TITLE, region=region) if region else page.gettext(MAP_TITLE)
    svg = station_map(
        points,
        href="stations/{}",  # relative to /elections/{id}/map: 5,767 links, 29 bytes each
        labels=labels,
        title=title,
    )
    response = page.render(
        "public/map.html",
        title=title,
        election=election,
        region=region or None,
        regions=service.regions(conn, election_id),
        svg=svg,
        counts=counts,
        without_place=without_place,
        far=sorted(far, key=lambda p: p.precinct_id),
        status_labels=labels,
    )
    return compressed(page, response)


@router.get("/v1/elections/{election_id}/stations", dependencies=[PUBLIC])
def search_stations(
    election_id: str,
    conn: Conn,
    q: Annotated[
        str, Query(description="a station's number, or words of its name or address")
    ] = "",
    limit: Annotated[
        int,
        Query(description=f"at most this many (1 to {service.SEARCH_LIMIT_MAX})"),
    ] = service.SEARCH_LIMIT_DEFAULT,
) -> list[StationMatch]:
    """Find a station by its number (``12``, ``№12``), or by words of its name or
    address (``Гоголя 7``): every word must match (case ignored). The station whose
    id is the query comes first, then those whose number matches."""
    return service.search(conn, election_id, q, limit)
