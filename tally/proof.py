"""Proof rules: where the numbers contradict each other. Pure functions.

The crowd rules are one-sided, so they hold however self-selected the crowd is:
if more people proved a vote for an option at a station than the protocol gave
it, the protocol is false. They give lower bounds, never estimates. Only
``verified`` evidence proves; ``declared`` sources (voters' statements) are
reported under their own flag names, as leads, never as proof.

Flag names and kinds come from :mod:`tally.vocab`: a finding's kind is its flag's
kind there, by construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from tally.vocab import FLAG_KIND, EvidenceLevel, Flag, FlagKind, ProtocolLine, Source

Op = Literal["==", "<=", ">="]


@dataclass(frozen=True)
class Finding:
    """One flag as computed, before an observer has looked at it (a ``flags`` row)."""

    precinct_id: str
    flag: Flag
    option: str
    source: str
    crowd: int | None
    official: int | None
    detail: str
    statistic: float | None = None
    p_value: float | None = None
    q_value: float | None = None
    # How many distinct verified voters stand behind ``crowd`` (the platform's photos:
    # distinct voter keys among the counted submissions); None where not known.
    identities: int | None = None

    @property
    def kind(self) -> FlagKind:
        """Proof or statistical: the vocabulary's kind of the flag, never chosen apart."""
        return FLAG_KIND[self.flag]


@dataclass(frozen=True)
class Check:
    """A linear relation between protocol lines (protocol-template/1 ``checks``)."""

    left: tuple[str, ...]
    op: Op
    right: tuple[str, ...]


# The relations every protocol of the brief satisfies. The received/cancelled one
# is an inequality: the difference is spoiled or lost ballots, which the
# official-results format has no line for.
STANDARD_CHECKS = (
    Check((ProtocolLine.BALLOTS_CAST,), "==", (ProtocolLine.INVALID, "@options")),
    Check((ProtocolLine.BALLOTS_CAST,), "<=", (ProtocolLine.BALLOTS_ISSUED,)),
    Check((ProtocolLine.BALLOTS_ISSUED,), "<=", (ProtocolLine.REGISTERED,)),
    Check(
        (ProtocolLine.BALLOTS_RECEIVED,),
        ">=",
        (ProtocolLine.BALLOTS_ISSUED, ProtocolLine.BALLOTS_CANCELLED),
    ),
)


# The flags of a crowd source's evidence level: (votes above official, voters above
# ballots cast). Their kinds follow from the vocabulary: verified proves, declared leads.
_CROWD_FLAGS: Mapping[EvidenceLevel, tuple[Flag, Flag]] = {
    EvidenceLevel.VERIFIED: (Flag.CROWD_EXCEEDS_OFFICIAL, Flag.CROWD_EXCEEDS_TURNOUT),
    EvidenceLevel.DECLARED: (Flag.DECLARED_EXCEEDS_OFFICIAL, Flag.DECLARED_EXCEEDS_TURNOUT),
}


def crowd_exceeds_official(
    crowd: Mapping[tuple[str, str], int],
    official: Mapping[tuple[str, str], int | None],
    source: str = Source.PHOTOS,
    level: EvidenceLevel = EvidenceLevel.VERIFIED,
    identities: Mapping[tuple[str, str], int] | None = None,
) -> list[Finding]:
    """A finding for every (precinct, option) whose crowd votes exceed the official
    votes. Precincts without a known official figure prove nothing.

    ``identities``, when given (the platform's photos), is how many distinct verified
    voters stand behind each count: the finding carries it and its sentence says it.
    One vote per voter makes it equal to the count of verified ballots; it is computed
    apart (distinct voter keys) so that a reviewer sees who, not only how many.

    No minimum of identities beyond the excess is asked for. The excess already is
    that minimum: for the flag to be false, more verified voters than the protocol's
    figure must have lied, each with a phone number verified for this election and
    past the quarantine, which holds a burst from one network or at one station for
    two observers instead of counting it. A fixed margin on top (say, five beyond the
    official figure) would not raise that price where it matters, but it would hide
    every falsification smaller than the margin, at the small stations where an
    excess of one or two is the whole theft: the proof would then protect the
    falsifier. The identities are shown so that observers can weigh a thin proof.
    """
    level = EvidenceLevel(level)
    flag, _ = _CROWD_FLAGS[level]
    evidence = (
        "verified ballots" if level is EvidenceLevel.VERIFIED else "declared (unverified) votes"
    )
    findings = []
    for (precinct, option), count in sorted(crowd.items()):
        official_votes = official.get((precinct, option))
        if official_votes is None or count <= official_votes:
            continue
        voters = None if identities is None else identities.get((precinct, option), 0)
        backed = "" if voters is None else f" from {voters} distinct verified voters"
        findings.append(
            Finding(
                precinct_id=precinct,
                flag=flag,
                option=option,
                source=source,
                crowd=count,
                official=official_votes,
                detail=(
                    f"{count} {evidence}{backed} for {option} at {precinct} ({source}), "
                    f"but the official protocol gives it {official_votes}"
                ),
                identities=voters,
            )
        )
    return findings


def crowd_exceeds_turnout(
    voters: Mapping[str, int],
    ballots_cast: Mapping[str, int | None],
    source: str = Source.PHOTOS,
    level: EvidenceLevel = EvidenceLevel.VERIFIED,
) -> list[Finding]:
    """More crowd voters at a station than ballots the protocol says were cast."""
    level = EvidenceLevel(level)
    _, flag = _CROWD_FLAGS[level]
    findings = []
    for precinct, count in sorted(voters.items()):
        cast = ballots_cast.get(precinct)
        if cast is None or count <= cast:
            continue
        findings.append(
            Finding(
                precinct_id=precinct,
                flag=flag,
                option="",
                source=source,
                crowd=count,
                official=cast,
                detail=(
                    f"{count} crowd voters ({source}, {level}) at {precinct}, "
                    f"but the official protocol gives {cast} ballots cast"
                ),
            )
        )
    return findings


def _side(
    fields: Sequence[str], lines: Mapping[str, int | None], option_ids: Sequence[str]
) -> int | None:
    total = 0
    for field in fields:
        for name in option_ids if field == "@options" else (field,):
            value = lines.get(name)
            if value is None:
                return None  # an unreadable or unpublished line: nothing to check
            total += value
    return total


def _holds(left: int, op: Op, right: int) -> bool:
    return left == right if op == "==" else left <= right if op == "<=" else left >= right


def protocol_arithmetic(
    protocols: Mapping[str, Mapping[str, int | None]],
    option_ids: Sequence[str],
    checks: Sequence[Check] = STANDARD_CHECKS,
) -> list[Finding]:
    """One finding per protocol that breaks any of its own checks, listing each.

    ``protocols`` maps a precinct to its lines and its option votes, by column
    name. A check involving a missing figure is skipped, not failed.
    """
    findings = []
    for precinct, lines in sorted(protocols.items()):
        broken = []
        for check in checks:
            left = _side(check.left, lines, option_ids)
            right = _side(check.right, lines, option_ids)
            if left is None or right is None or _holds(left, check.op, right):
                continue
            broken.append(
                f"{' + '.join(check.left)} {check.op} {' + '.join(check.right)} fails "
                f"({left} vs {right})"
            )
        if broken:
            findings.append(
                Finding(
                    precinct_id=precinct,
                    flag=Flag.PROTOCOL_ARITHMETIC,
                    option="",
                    source=Source.PROTOCOL,
                    crowd=None,
                    official=None,
                    statistic=float(len(broken)),
                    detail=f"the protocol of {precinct} contradicts itself: " + "; ".join(broken),
                )
            )
    return findings


def checks_from_template(template: Mapping[str, object]) -> list[Check]:
    """The ``checks`` of a protocol-template/1, validated as data (never evaluated)."""
    raw = template.get("checks") or []
    assert isinstance(raw, list)
    checks = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or item.get("op") not in ("==", "<=", ">="):
            raise ValueError(f"checks[{i}]: needs 'left', 'op' (==, <=, >=) and 'right'")
        left, right = item.get("left"), item.get("right")
        if not (isinstance(left, list) and isinstance(right, list) and left and right):
            raise ValueError(f"checks[{i}]: 'left' and 'right' must be non-empty lists")
        checks.append(Check(tuple(map(str, left)), item["op"], tuple(map(str, right))))
    return checks
