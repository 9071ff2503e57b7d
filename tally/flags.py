"""The flag stage's reasoning, apart from the database: evidence in, findings out.

``Evidence`` is what the stage reads (gathered by ``api.flags.service`` from the
elections', submissions' and tally's repositories); ``evaluate`` runs the proof
rules (:mod:`tally.proof`) and the statistical tests (:mod:`tally.forensics`)
over it and returns a ``FlagRun``: every finding, plus the analysis and the
stations table the report reuses, so nothing is computed twice. Storing the
findings is the caller's business (``tally.repository.store_flags``).

Everything here is pure but ``evaluate``'s progress reports.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from infra.progress import SILENT, Progress
from tally.forensics.analysis import Analysis, Stations, analyse
from tally.proof import (
    STANDARD_CHECKS,
    Check,
    Finding,
    checks_from_template,
    crowd_exceeds_official,
    crowd_exceeds_turnout,
    protocol_arithmetic,
)
from tally.vocab import EvidenceLevel, Flag, FlagKind, ProtocolLine, Source

# A precinct as the elections list it: (precinct_id, region, district, name).
Precinct = tuple[str, str, str, str]
# Votes per (precinct, option).
Votes = Mapping[tuple[str, str], int]
# An imported crowd source: its evidence level and its votes.
CrowdSource = tuple[EvidenceLevel, Votes]


@dataclass(frozen=True)
class Evidence:
    """Everything the flag stage reads, for one election. No connection."""

    precincts: Sequence[Precinct]  # ordered by precinct id
    option_ids: Sequence[str]  # in ballot order
    protocols: Mapping[str, Mapping[str, int | None]]  # lines and option votes, by column
    official_votes: Mapping[tuple[str, str], int | None]
    photo_tally: Votes  # the platform's verified photos
    photo_voters: Mapping[str, int]
    crowd_sources: Mapping[str, CrowdSource]  # imported tallies, by source name
    checks: Sequence[Check] = STANDARD_CHECKS  # the protocol's own relations
    single_choice: bool = True  # one mark per ballot: a source's votes are its voters
    # Distinct verified voters behind the photo tally, per (precinct, option); None:
    # not known (the flags then carry no identities).
    photo_identities: Votes | None = None


@dataclass(frozen=True)
class FlagRun:
    """The flag stage's result: what it stored and what the report reuses."""

    evidence: Evidence
    proof: list[Finding]  # the proof rules' findings, declared sources' leads included
    statistical: list[Finding]  # the statistical tests' station flags
    stations: Stations  # the official figures as arrays (the analysis's input)
    analysis: Analysis

    @property
    def findings(self) -> list[Finding]:
        """Every finding, as stored."""
        return self.proof + self.statistical


def protocol_checks(template: Mapping[str, object] | None) -> list[Check]:
    """The checks of a protocol-template/1, or the standard ones when it has none. Pure."""
    if template:
        checks = checks_from_template(template)
        if checks:
            return checks
    return list(STANDARD_CHECKS)


def _voters(counts: Votes) -> dict[str, int]:
    voters: dict[str, int] = defaultdict(int)
    for (precinct, _), votes in counts.items():
        voters[precinct] += votes
    return voters


def proof_findings(evidence: Evidence) -> list[Finding]:
    """Every proof rule over every evidence source. Pure.

    Declared sources give their leads here too, under their own (statistical) flag
    names; a source is never added to another.
    """
    official = evidence.official_votes
    cast = {p: lines.get(ProtocolLine.BALLOTS_CAST) for p, lines in evidence.protocols.items()}
    findings = crowd_exceeds_official(
        evidence.photo_tally,
        official,
        Source.PHOTOS,
        identities=evidence.photo_identities,
    )
    findings += crowd_exceeds_turnout(evidence.photo_voters, cast, Source.PHOTOS)
    for source, (level, counts) in sorted(evidence.crowd_sources.items()):
        findings += crowd_exceeds_official(counts, official, source, level)
        if evidence.single_choice:  # one vote per voter: a source's votes are its voters
            findings += crowd_exceeds_turnout(_voters(counts), cast, source, level)
    findings += protocol_arithmetic(evidence.protocols, evidence.option_ids, evidence.checks)
    return findings


def stations_table(
    precincts: Sequence[Precinct],
    protocols: Mapping[str, Mapping[str, int | None]],
    option_ids: Sequence[str],
    excluded: Iterable[str] = (),
) -> Stations:
    """The official figures as arrays, one row per precinct with a known protocol;
    ``excluded`` precincts (those with proof) stay out of the estimates. Pure."""
    known = [p for p in precincts if p[0] in protocols]
    left_out = set(excluded)

    def column(name: str) -> np.ndarray:
        values = [protocols[p[0]].get(name) for p in known]
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    votes = np.column_stack([column(o) for o in option_ids]) if known else np.zeros((0, 0))
    return Stations(
        precinct_id=np.array([p[0] for p in known], dtype=object),
        region=np.array([p[1] for p in known], dtype=object),
        district=np.array([p[2] for p in known], dtype=object),
        registered=column(ProtocolLine.REGISTERED),
        issued=column(ProtocolLine.BALLOTS_ISSUED),
        cast=column(ProtocolLine.BALLOTS_CAST),
        invalid=column(ProtocolLine.INVALID),
        votes=votes.reshape(len(known), len(option_ids)),
        option_ids=list(option_ids),
        excluded=np.array([p[0] in left_out for p in known], dtype=bool),
    )


def statistical_findings(analysis: Analysis) -> list[Finding]:
    """The analysis's station flags as findings on the protocol. Pure."""
    return [
        Finding(
            precinct_id=f.precinct_id,
            flag=Flag(f.flag),
            option=f.option,
            source=Source.PROTOCOL,
            crowd=None,
            official=None,
            detail=f.detail,
            statistic=f.statistic,
            p_value=f.p_value,
            q_value=f.q_value,
        )
        for f in analysis.station_flags
    ]


def verified_crowd(
    stations: Stations, photo_tally: Votes, crowd_sources: Mapping[str, CrowdSource]
) -> np.ndarray:
    """Per station (rows of ``stations``) and option, the largest count any verified
    source proved; sources are never added together. Pure."""
    sources = [photo_tally] + [
        counts for level, counts in crowd_sources.values() if level == EvidenceLevel.VERIFIED
    ]
    row = {p: i for i, p in enumerate(stations.precinct_id)}
    column = {o: j for j, o in enumerate(stations.option_ids)}
    crowd = np.zeros((len(row), len(column)))
    for counts in sources:
        for (precinct, option), votes in counts.items():
            if precinct in row and option in column:
                i, j = row[precinct], column[option]
                crowd[i, j] = max(crowd[i, j], votes)
    return crowd


def evaluate(evidence: Evidence, *, draws: int = 1000, progress: Progress = SILENT) -> FlagRun:
    """The proof rules, then the statistical tests on the stations without proof.

    Pure but for ``progress``; the tests are seeded, so the same evidence gives the
    same run. ``draws`` is the number of simulation draws of each test.
    """
    progress.stage("proof rules")
    proof = proof_findings(evidence)
    proven = {f.precinct_id for f in proof if f.kind is FlagKind.PROOF}
    stations = stations_table(evidence.precincts, evidence.protocols, evidence.option_ids, proven)
    progress.stage(f"statistical tests ({draws} draws)")
    analysis = analyse(stations, draws=draws)
    return FlagRun(
        evidence=evidence,
        proof=proof,
        statistical=statistical_findings(analysis),
        stations=stations,
        analysis=analysis,
    )
