"""The platform's vocabulary: every name that appears in a database column, a
report file or a page, defined once. Import these; never spell the strings.

``StrEnum`` members compare equal to their strings, so they read the same in
SQL parameters, JSON and CSV.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType


class FlagKind(StrEnum):
    """What a flag is. Proof and statistical signals are never mixed up."""

    PROOF = "proof"  # the numbers contradict each other
    STATISTICAL = "statistical"  # unlikely under a stated null model; a lead, never proof


class Flag(StrEnum):
    """Every flag name the platform emits (report/1 ``flag`` column, summary ``flags``)."""

    CROWD_EXCEEDS_OFFICIAL = "crowd_exceeds_official"
    CROWD_EXCEEDS_TURNOUT = "crowd_exceeds_turnout"
    PROTOCOL_ARITHMETIC = "protocol_arithmetic"
    # Two sources of one station's protocol that disagree (an imported file and a
    # photo, two photos, two different protocols posted): api.protocols.consensus.
    CONFLICTING_PROTOCOLS = "conflicting_protocols"
    DECLARED_EXCEEDS_OFFICIAL = "declared_exceeds_official"
    DECLARED_EXCEEDS_TURNOUT = "declared_exceeds_turnout"
    INTEGER_PERCENT = "integer_percent"
    TURNOUT_OUTLIER = "turnout_outlier"
    SHARE_OUTLIER = "share_outlier"
    HIGH_TURNOUT_UNANIMITY = "high_turnout_unanimity"


# The kind of each flag: a flag has exactly one kind, whatever its source.
FLAG_KIND: MappingProxyType[Flag, FlagKind] = MappingProxyType(
    {
        Flag.CROWD_EXCEEDS_OFFICIAL: FlagKind.PROOF,
        Flag.CROWD_EXCEEDS_TURNOUT: FlagKind.PROOF,
        Flag.PROTOCOL_ARITHMETIC: FlagKind.PROOF,
        Flag.CONFLICTING_PROTOCOLS: FlagKind.PROOF,
        Flag.DECLARED_EXCEEDS_OFFICIAL: FlagKind.STATISTICAL,
        Flag.DECLARED_EXCEEDS_TURNOUT: FlagKind.STATISTICAL,
        Flag.INTEGER_PERCENT: FlagKind.STATISTICAL,
        Flag.TURNOUT_OUTLIER: FlagKind.STATISTICAL,
        Flag.SHARE_OUTLIER: FlagKind.STATISTICAL,
        Flag.HIGH_TURNOUT_UNANIMITY: FlagKind.STATISTICAL,
    }
)


class ReviewStatus(StrEnum):
    """An observer's decision on a flag (report/1 ``review_status``)."""

    OPEN = "open"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"
    MORE_EVIDENCE = "more_evidence"  # an observer asked for more evidence: still undecided


# The statuses of a flag nobody has decided yet (a report's "open" flags).
UNDECIDED: frozenset[ReviewStatus] = frozenset({ReviewStatus.OPEN, ReviewStatus.MORE_EVIDENCE})


def report_review_status(status: str) -> str:
    """A stored review status as report/1 writes it: the spec knows ``open``,
    ``confirmed`` and ``dismissed``, and a flag awaiting more evidence is open. Pure."""
    return str(ReviewStatus.OPEN) if status in UNDECIDED else str(status)


class EvidenceLevel(StrEnum):
    """How far a crowd source's counts are backed (crowd-tallies/1 import level)."""

    VERIFIED = "verified"  # each vote backed by checked evidence: proves
    DECLARED = "declared"  # voters' statements: leads, never proof


class Source(StrEnum):
    """The platform's own evidence sources (report/1 ``source``); imported crowd
    sources carry their own names, which may not be these."""

    PHOTOS = "photos"  # the platform's verified ballot photos
    PROTOCOL = "protocol"  # the protocol alone


class ProtocolLine(StrEnum):
    """The protocol lines (official-results/1 columns besides the options), in file order."""

    REGISTERED = "registered"
    BALLOTS_ISSUED = "ballots_issued"
    BALLOTS_CAST = "ballots_cast"
    INVALID = "invalid"
    BALLOTS_ISSUED_EARLY = "ballots_issued_early"
    BALLOTS_ISSUED_HOME = "ballots_issued_home"
    BALLOTS_RECEIVED = "ballots_received"
    BALLOTS_CANCELLED = "ballots_cancelled"


PROTOCOL_LINES: tuple[ProtocolLine, ...] = tuple(ProtocolLine)
PROTOCOL_LINES_REQUIRED: tuple[ProtocolLine, ...] = PROTOCOL_LINES[:4]
PROTOCOL_LINES_OPTIONAL: tuple[ProtocolLine, ...] = PROTOCOL_LINES[4:]

# report/1 discrepancies.csv / .parquet: the spec's columns, in order, and types.
DISCREPANCY_COLUMNS: tuple[str, ...] = (
    "precinct_id",
    "region",
    "district",
    "flag",
    "kind",
    "option",
    "source",
    "crowd",
    "official",
    "statistic",
    "p_value",
    "q_value",
    "detail",
    "review_status",
    # Added after the spec's columns (scripts that read by name keep working): how
    # many distinct verified voters stand behind ``crowd`` (crowd_exceeds_official
    # from the platform's photos); empty for every other flag.
    "identities",
)
DISCREPANCY_TYPES: MappingProxyType[str, str] = MappingProxyType(
    {"crowd": "int", "official": "int", "statistic": "float", "p_value": "float",
     "q_value": "float", "identities": "int"}
)  # fmt: skip

# report/1 precincts.csv / .parquet: fixed columns around the per-line, per-source ones.
PRECINCT_ID_COLUMNS: tuple[str, ...] = ("precinct_id", "region", "district", "name")
PHOTOS_VOTERS_COLUMN = "photos_voters"
PRECINCT_FLAG_COLUMNS: tuple[str, ...] = ("open_flags", "proof_flags")


def official_column(line_or_option: str) -> str:
    """precincts.csv column of an official figure: ``official_<line>``, ``official_<option>``."""
    return f"official_{line_or_option}"


def source_column(source: str, option: str) -> str:
    """precincts.csv column of a crowd source's votes: ``<source>_<option>``."""
    return f"{source}_{option}"


# summary.json's "note": what proof, signals and estimates are. report.html says
# the same in the reader's language, so it shows a summary's note only when it is
# another one (a report written by another release or platform).
SUMMARY_NOTE = (
    "proof flags are contradictions between numbers; statistical tests are never "
    "proof of anything at a single station; estimates rest on the assumptions "
    "written next to them"
)


class ForensicTest(StrEnum):
    """The keys of summary.json's "tests" (report/1), in report order; also the keys of
    the analysis' figures for the plots. The spec names Klimek's turnout x share test
    "fingerprint" (in code it is klimek: tally/forensics/klimek.py)."""

    INTEGER_PERCENT = "integer_percent"
    KLIMEK = "fingerprint"
    SHPILKIN = "shpilkin"
    OUTLIERS = "outliers"
    DIGITS = "digits"


class ReportFile(StrEnum):
    """The files of report/1, as named in the spec and listed by the reports API."""

    DISCREPANCIES_CSV = "discrepancies.csv"
    DISCREPANCIES_PARQUET = "discrepancies.parquet"
    PRECINCTS_CSV = "precincts.csv"
    PRECINCTS_PARQUET = "precincts.parquet"
    SUMMARY = "summary.json"
    PAGE = "report.html"
    KLIMEK_PLOT = "fingerprint.png"
    TURNOUT_PLOT = "turnout.png"
    LEADER_SHARE_PLOT = "leader_share.png"
    CROWD_VS_OFFICIAL_PLOT = "crowd_vs_official.png"
