"""The elections domain's types: what its services return, and its not-found error."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel

from api.errors import NotFound
from tally.vocab import EvidenceLevel


class ElectionNotFound(NotFound):
    """No election of that id (or, for the reader, none with a ballot template).

    Answered 404 with field ``election_id``. ``str()`` is the message alone, as the
    command line prints it."""

    def __init__(self, election_id: str, message: str | None = None) -> None:
        super().__init__("election_id", message or f"no election {election_id!r}")
        self.election_id = election_id

    def __str__(self) -> str:
        return self.message


class Election(BaseModel):
    """``GET /v1/elections/{id}``: an election and how much of it is known."""

    id: str
    name: str
    election_date: date | None
    option_ids: list[str]
    precincts: int
    precincts_with_official: int
    has_ballot_template: bool


@dataclass(frozen=True)
class LoadResult:
    """What loading an ``election/1`` folder did."""

    election_id: str
    created: bool
    precincts: int
    official_rows: int | None  # None: the folder had no official.csv


@dataclass(frozen=True)
class ImportResult:
    """An ``official-results/1`` import: the new import and the one it replaced."""

    election_id: str
    import_id: int
    rows: int
    replaced_import_id: int | None


@dataclass(frozen=True)
class CrowdImport:
    """A ``crowd-tallies/1`` import: one named source, at one evidence level."""

    election_id: str
    source: str
    level: EvidenceLevel
    import_id: int
    rows: int
    replaced_import_id: int | None
