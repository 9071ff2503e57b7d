"""Proof rules: where crowd evidence contradicts the official protocol. Pure functions.

The rule is one-sided, so it holds however self-selected the crowd is: if more
people proved a vote for an option at a station than the protocol gave it, the
protocol is false. It gives a lower bound, never an estimate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Kind = Literal["proof", "statistical"]


@dataclass(frozen=True)
class Finding:
    precinct_id: str
    flag: str
    kind: Kind
    option: str
    source: str
    crowd: int | None
    official: int | None
    detail: str


def crowd_exceeds_official(
    crowd: Mapping[tuple[str, str], int],
    official: Mapping[tuple[str, str], int | None],
    source: str = "photos",
) -> list[Finding]:
    """A finding for every (precinct, option) whose verified crowd votes exceed the
    official votes. Precincts without a known official figure prove nothing."""
    findings = []
    for (precinct, option), count in sorted(crowd.items()):
        official_votes = official.get((precinct, option))
        if official_votes is None or count <= official_votes:
            continue
        findings.append(
            Finding(
                precinct_id=precinct,
                flag="crowd_exceeds_official",
                kind="proof",
                option=option,
                source=source,
                crowd=count,
                official=official_votes,
                detail=(
                    f"{count} verified ballots for {option} at {precinct}, "
                    f"but the official protocol gives it {official_votes}"
                ),
            )
        )
    return findings
