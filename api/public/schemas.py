"""The public area's vocabulary and answers: a station's status, the figures of an
election, a region and a station as the public pages show them (aggregates only:
never a photo, a voter or a submission), and the station search's answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from pydantic import BaseModel

from api.protocols.schemas import StationProtocol
from tally.vocab import EvidenceLevel


class StationStatus(StrEnum):
    """What is known of a station, strongest first (also the CSS badge and map classes)."""

    PROOF = "proof"  # proven falsification: a proof flag observers have not dismissed
    STATISTICAL = "statistical"  # a statistical flag only (not dismissed): a lead, never proof
    CLEAN = "clean"  # an official protocol and no flag standing
    NODATA = "nodata"  # no official protocol (and no flag)


# Drawing and listing order, weakest first: the map draws the strongest on top.
STATUS_DRAW_ORDER: tuple[StationStatus, ...] = (
    StationStatus.NODATA,
    StationStatus.CLEAN,
    StationStatus.STATISTICAL,
    StationStatus.PROOF,
)


class StationMatch(BaseModel):
    """``GET /v1/elections/{id}/stations``: one station found by the search."""

    id: str
    name: str
    address: str | None
    region: str
    district: str


@dataclass(frozen=True)
class OptionFigure:
    """One option's official and crowd-verified votes, with their shares (None when
    there is nothing to share out)."""

    option_id: str
    label: str
    official: int
    official_share: float | None
    crowd: int
    crowd_share: float | None


@dataclass(frozen=True)
class Figures:
    """An area's figures: per option official vs crowd-verified, and its stations."""

    options: list[OptionFigure]
    official_total: int  # votes for any option in the current protocols
    crowd_total: int  # verified photo votes for any option
    stations: int
    stations_with_official: int
    stations_with_photos: int
    by_status: dict[StationStatus, int]


@dataclass(frozen=True)
class StationRow:
    """A station in a list: where it is and its status."""

    precinct_id: str
    name: str
    region: str
    district: str
    address: str | None
    status: StationStatus
    proof_flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegionFigures:
    region: str
    figures: Figures


@dataclass(frozen=True)
class ElectionOverview:
    """``/`` and ``/elections/{id}``: national and regional figures, stations with proof."""

    election_id: str
    name: str
    election_date: date | None
    national: Figures
    regions: list[RegionFigures]
    proof_stations: list[StationRow]


@dataclass(frozen=True)
class RegionView:
    """``/elections/{id}/regions/{region}``: a region's figures and its stations."""

    election_id: str
    name: str
    region: str
    figures: Figures
    stations: list[StationRow]


@dataclass(frozen=True)
class CrowdSource:
    """A station's crowd count from one source: the platform's verified photos or an
    imported source, at its evidence level."""

    source: str
    level: EvidenceLevel
    votes: dict[str, int]  # option id -> votes
    voters: int | None  # ballots behind the count, where known (photos)


@dataclass(frozen=True)
class PublicFlag:
    """A flag as the public station page shows it."""

    flag: str
    kind: str
    option: str
    source: str
    crowd: int | None
    official: int | None
    detail: str
    review_status: str


@dataclass(frozen=True)
class StationView:
    """``/elections/{id}/stations/{pid}``: the station's protocol, crowd and flags."""

    election_id: str
    election_name: str
    station: StationRow
    registered: int | None
    option_labels: dict[str, str]
    protocol: dict[str, int | None] | None  # lines and option votes; None: no protocol
    crowd: list[CrowdSource]
    flags: list[PublicFlag] = field(default_factory=list)
    # The official figures reconciled from every source (the imported file, protocol
    # photos), with provenance per line and any conflict; ``protocol`` holds the
    # agreed figures.
    reconciled: StationProtocol | None = None


@dataclass(frozen=True)
class MapPoint:
    """A station on the map."""

    precinct_id: str
    name: str
    latitude: float
    longitude: float
    status: StationStatus
    address: str | None = None
