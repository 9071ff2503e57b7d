"""The analysts' query API's answers: pages of precincts and of flags, each with the
cursor of the next page."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.public.schemas import StationStatus


class PrecinctRecord(BaseModel):
    """A station with its figures (OpenAPI component ``PrecinctRecord``)."""

    id: str
    region: str
    district: str
    name: str
    registered: int | None
    address: str | None
    latitude: float | None
    longitude: float | None
    status: StationStatus = Field(
        description="proof: a proof flag not dismissed; statistical: a statistical flag only; "
        "clean: an official protocol and no flag standing; nodata: no official protocol"
    )
    official: dict[str, int | None] | None = Field(
        description="the current protocol: its lines and the votes per option "
        "(official-results/1 columns); null when there is none"
    )
    photos: dict[str, int] = Field(description="verified ballot photos' votes per option")
    photo_voters: int = Field(description="verified ballot photos (voters) of the station")
    standing_flags: int = Field(description="flags not dismissed by observers")
    proof_flags: int = Field(description="proof flags not dismissed by observers")


class PrecinctPage(BaseModel):
    """``GET /v1/elections/{id}/precincts``: one page, in station id order."""

    items: list[PrecinctRecord]
    next: str | None = Field(
        description="pass as ``after`` for the next page; null on the last page"
    )


class FlagRecord(BaseModel):
    """A flag with its station's region and district (report/1 ``discrepancies``
    columns, and the flag's id)."""

    id: int
    precinct_id: str
    region: str
    district: str
    flag: str
    kind: str
    option: str
    source: str
    crowd: int | None
    official: int | None
    statistic: float | None
    p_value: float | None
    q_value: float | None
    detail: str
    review_status: str
    identities: int | None = Field(
        default=None,
        description="how many distinct verified voters stand behind ``crowd`` (the "
        "platform's photos: one per voter, however many photos they sent); null where "
        "not known (imported crowd sources, protocol and statistical flags)",
    )


class FlagPage(BaseModel):
    """``GET /v1/elections/{id}/flags``: one page, in flag id order."""

    items: list[FlagRecord]
    next: str | None = Field(
        description="pass as ``after`` for the next page; null on the last page"
    )
