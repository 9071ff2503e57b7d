"""Typed loaders for a seeded election folder (``election/1`` plus the seed's ground truth).

A seed folder, as written by :mod:`seeds.generate`, holds the files of the ``election/1``
format (``election.json``, ``precincts.csv``, ``official.csv``, ``ballot/``) and two files
that only a synthetic election can have: ``truth.csv`` (what really happened at every
station) and ``falsified.csv`` (which official protocols were falsified, and how).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from tally.vocab import PROTOCOL_LINES_OPTIONAL, PROTOCOL_LINES_REQUIRED, ProtocolLine

SEED_DIR: Path = Path(__file__).parent / "by-2020"

ELECTION_FILE = "election.json"
PRECINCTS_FILE = "precincts.csv"
TRUTH_FILE = "truth.csv"
OFFICIAL_FILE = "official.csv"
FALSIFIED_FILE = "falsified.csv"
BALLOT_DIR = "ballot"
README_FILE = "README.md"

PRECINCT_COLUMNS: tuple[str, ...] = (
    "precinct_id",
    "region",
    "district",
    "name",
    ProtocolLine.REGISTERED,
    "address",
    "latitude",
    "longitude",
)
# Protocol lines before and after the per-option columns (official-results/1).
HEAD_COUNT_COLUMNS: tuple[str, ...] = PROTOCOL_LINES_REQUIRED
TAIL_COUNT_COLUMNS: tuple[str, ...] = PROTOCOL_LINES_OPTIONAL
FALSIFIED_COLUMNS: tuple[str, ...] = (
    "precinct_id",
    "scheme",
    "integer_target",
    "kept_fraction",
    "stuffed_ballots",
    "detail",
)
# Schemes in falsified.csv; every one except the slip changes the votes.
FRAUD_SCHEMES: tuple[str, ...] = ("moved", "stuffed", "moved+stuffed")
SLIP_SCHEME = "arithmetic_slip"


def count_columns(option_ids: list[str]) -> list[str]:
    """The numeric columns of a results row, in file order."""
    return [*HEAD_COUNT_COLUMNS, *option_ids, *TAIL_COUNT_COLUMNS]


@dataclass(frozen=True)
class SeedElection:
    """A seeded election, loaded: every table keyed by precinct_id, in file order."""

    folder: Path
    election_id: str
    option_ids: list[str]
    precincts: dict[str, dict[str, str]]
    truth: dict[str, dict[str, int]]
    official: dict[str, dict[str, int]]
    falsified: dict[str, dict[str, str]]

    def fraud_precincts(self) -> set[str]:
        """Stations whose official votes differ from the truth (slips excluded)."""
        return {pid for pid, row in self.falsified.items() if row["scheme"] in FRAUD_SCHEMES}

    def clean_precincts(self) -> set[str]:
        """Stations with a known protocol that is exactly the truth."""
        return set(self.official) - set(self.falsified)


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _int_rows(rows: list[dict[str, str]]) -> dict[str, dict[str, int]]:
    # Empty cells mean "not known" in official-results/1, so they are left out of the row.
    return {
        row["precinct_id"]: {k: int(v) for k, v in row.items() if k != "precinct_id" and v != ""}
        for row in rows
    }


def load_seed(folder: Path) -> SeedElection:
    """Load a seed folder; a missing truth/official/falsified file loads as empty."""
    folder = Path(folder)
    election = json.loads((folder / ELECTION_FILE).read_text(encoding="utf-8"))

    def optional(name: str) -> list[dict[str, str]]:
        path = folder / name
        return read_csv_rows(path) if path.exists() else []

    return SeedElection(
        folder=folder,
        election_id=election["id"],
        option_ids=[opt["id"] for opt in election["options"]],
        precincts={row["precinct_id"]: row for row in read_csv_rows(folder / PRECINCTS_FILE)},
        truth=_int_rows(optional(TRUTH_FILE)),
        official=_int_rows(optional(OFFICIAL_FILE)),
        falsified={row["precinct_id"]: row for row in optional(FALSIFIED_FILE)},
    )
