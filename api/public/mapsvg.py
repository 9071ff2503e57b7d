"""The stations' map: an inline SVG drawn on the server, with no tile server, no
library and no asset from anywhere (the platform is used where outside services
are blocked).

The projection is equirectangular with longitudes scaled by the cosine of the
middle latitude: over a country the size of Belarus (5° of latitude) shapes and
distances stay true to a few percent, and it needs nothing but arithmetic. The
drawing's ``viewBox`` lets the browser scale it to any screen; each station is a
link (``<a>`` with an accessible name) to its page, so the map works with a
keyboard and a screen reader as well as with a pointer.

Everything here is pure.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from markupsafe import Markup, escape

from api.public.schemas import MapPoint, StationStatus

WIDTH = 1000.0  # the drawing's width in viewBox units; its height follows the area's shape
MARGIN = 12.0
# A station's dot, in viewBox units (1000 across the country): 4 keeps Minsk's
# stations apart enough to point at on a desktop; a phone zooms into a region.
RADIUS = 4.0
RADIUS_PROOF = 6.0
# The smallest span drawn, in degrees: one station (or many at one address) gets a
# sensible scale instead of a division by zero.
MIN_SPAN_DEGREES = 0.02


# Tukey's fences: a station further than this many interquartile ranges beyond the
# quartiles of the stations' latitudes or longitudes is off the map (Belarus 2020:
# the 40 stations at embassies abroad, from Caracas to Hanoi, which would shrink
# the country to a corner of the drawing). Kept at the textbook 1.5.
FENCE = 1.5
# ... and at least this many degrees beyond them: a city's quartiles are close
# together, and its outer districts (Minsk's Sokol, 0.07 degrees past the fence)
# belong on its map; the stations abroad are tens of degrees away.
MIN_FENCE_DEGREES = 0.5


def within_fences(points: Sequence[MapPoint]) -> tuple[list[MapPoint], list[MapPoint]]:
    """The stations drawn on the map and those beyond Tukey's fences of the
    latitudes or longitudes (listed apart), each in ``points`` order."""
    if len(points) < 4:
        return list(points), []
    bounds = []
    for values in ([p.latitude for p in points], [p.longitude for p in points]):
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        spread = max(FENCE * (q3 - q1), MIN_FENCE_DEGREES)
        bounds.append((q1 - spread, q3 + spread))
    (south, north), (west, east) = bounds
    inside: list[MapPoint] = []
    outside: list[MapPoint] = []
    for p in points:
        ok = south <= p.latitude <= north and west <= p.longitude <= east
        (inside if ok else outside).append(p)
    return inside, outside


@dataclass(frozen=True)
class Projection:
    """Degrees to viewBox units for one area."""

    west: float
    north: float
    scale: float  # viewBox units per degree of latitude
    squeeze: float  # cos(middle latitude): a degree of longitude's length in latitude's
    width: float
    height: float

    def project(self, latitude: float, longitude: float) -> tuple[float, float]:
        x = MARGIN + (longitude - self.west) * self.squeeze * self.scale
        y = MARGIN + (self.north - latitude) * self.scale
        return x, y


def projection(points: Sequence[MapPoint], width: float = WIDTH) -> Projection:
    """The projection that fits ``points`` into ``width`` units across (and the
    height their area needs), equirectangular scaled by cos(middle latitude)."""
    if not points:
        return Projection(0.0, 0.0, 1.0, 1.0, width, width / 2)
    south = min(p.latitude for p in points)
    north = max(p.latitude for p in points)
    west = min(p.longitude for p in points)
    east = max(p.longitude for p in points)
    squeeze = math.cos(math.radians((south + north) / 2))
    span_x = max((east - west) * squeeze, MIN_SPAN_DEGREES)
    span_y = max(north - south, MIN_SPAN_DEGREES)
    inner = width - 2 * MARGIN
    scale = inner / max(span_x, span_y * 0.5)  # a tall area is not drawn taller than 2:1
    # Centre a narrow area across the drawing.
    used_x = (east - west) * squeeze * scale
    west -= (inner - used_x) / 2 / (squeeze * scale) if used_x < inner else 0.0
    height = span_y * scale + 2 * MARGIN
    # The minimum span keeps one station off the edge vertically too.
    north += (span_y - (north - south)) / 2
    return Projection(west, north, scale, squeeze, width, height)


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def station_map(
    points: Sequence[MapPoint],
    *,
    href: str,
    labels: Mapping[StationStatus, str],
    title: str,
) -> Markup:
    """The map as an ``<svg>`` element: one link per station, grouped by status in
    ``points`` order (later groups drawn on top), the group's class naming its
    status (``s-proof``, ...) for the stylesheet's colours. ``href`` is the station
    pages' address with ``{}`` for the station's id; ``labels`` name each status
    (in the page's language); ``title`` names the whole map."""
    proj = projection(points)
    # Plain strings, every piece of data escaped on the way in (markupsafe.escape):
    # Markup.format per station would take four times as long for 5,767 of them.
    parts = [
        f'<svg class="station-map" viewBox="0 0 {_number(proj.width)} {_number(proj.height)}"'
        f' role="group" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    named = {status: escape(label) for status, label in labels.items()}
    group: StationStatus | None = None
    for point in points:
        if point.status is not group:
            if group is not None:
                parts.append("</g>")
            group = point.status
            parts.append(f'<g class="s-{escape(group)}">')
        x, y = proj.project(point.latitude, point.longitude)
        radius = RADIUS_PROOF if point.status is StationStatus.PROOF else RADIUS
        link = escape(href.format(quote(point.precinct_id, safe="")))
        label = f"{escape(point.name)} ({escape(point.precinct_id)}): {named[point.status]}"
        parts.append(
            f'<a href="{link}" aria-label="{label}"><circle cx="{_number(x)}" cy="{_number(y)}"'
            f' r="{_number(radius)}"/></a>'
        )
    if group is not None:
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))
