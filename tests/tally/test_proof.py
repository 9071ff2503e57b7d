"""Proof rules on numbers with a known answer."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tally.proof import (
    STANDARD_CHECKS,
    Check,
    checks_from_template,
    crowd_exceeds_official,
    crowd_exceeds_turnout,
    protocol_arithmetic,
)
from tally.vocab import FLAG_KIND, PROTOCOL_LINES, EvidenceLevel, Flag, FlagKind, Source

OPTIONS = ["a", "b"]


def _protocol(**lines: int | None) -> dict[str, int | None]:
    base: dict[str, int | None] = {
        "registered": 100, "ballots_issued": 80, "ballots_cast": 80, "invalid": 2,
        "a": 50, "b": 28, "ballots_received": 100, "ballots_cancelled": 20,
    }  # fmt: skip
    base.update(lines)
    return base


def test_crowd_above_official_is_proof_and_equal_is_not() -> None:
    crowd = {("p1", "a"): 5, ("p2", "a"): 5, ("p3", "a"): 9}
    official = {("p1", "a"): 4, ("p2", "a"): 5}
    [finding] = crowd_exceeds_official(crowd, official)
    assert (finding.precinct_id, finding.kind, finding.crowd, finding.official) == (
        "p1",
        "proof",
        5,
        4,
    )


def test_declared_sources_never_prove() -> None:
    [finding] = crowd_exceeds_official({("p1", "a"): 9}, {("p1", "a"): 1}, "poll", "declared")
    assert finding.flag == "declared_exceeds_official" and finding.kind != "proof"
    assert "declared" in finding.detail


def test_more_crowd_voters_than_ballots_cast() -> None:
    [finding] = crowd_exceeds_turnout({"p1": 81, "p2": 80}, {"p1": 80, "p2": 80})
    assert (finding.flag, finding.crowd, finding.official) == ("crowd_exceeds_turnout", 81, 80)


def test_a_consistent_protocol_passes_every_standard_check() -> None:
    assert protocol_arithmetic({"p1": _protocol()}, OPTIONS) == []


def test_each_broken_relation_is_named() -> None:
    findings = protocol_arithmetic(
        {
            "sum": _protocol(a=51),
            "stuffed": _protocol(ballots_cast=81, a=51),
            "over": _protocol(ballots_issued=101, ballots_received=121),
            "ballots": _protocol(ballots_received=99),
        },
        OPTIONS,
    )
    by_precinct = {f.precinct_id: f.detail for f in findings}
    assert "ballots_cast == invalid + @options fails (80 vs 81)" in by_precinct["sum"]
    assert "ballots_cast <= ballots_issued fails (81 vs 80)" in by_precinct["stuffed"]
    assert "ballots_issued <= registered fails (101 vs 100)" in by_precinct["over"]
    assert "ballots_received >= ballots_issued + ballots_cancelled" in by_precinct["ballots"]
    assert all(f.kind == "proof" and f.source == "protocol" for f in findings)


def test_missing_figures_skip_the_check() -> None:
    assert protocol_arithmetic({"p": _protocol(invalid=None, a=99)}, OPTIONS) == []


def test_template_checks_are_data() -> None:
    checks = checks_from_template(
        {"checks": [{"left": ["ballots_cast"], "op": "==", "right": ["invalid", "@options"]}]}
    )
    assert checks == [Check(("ballots_cast",), "==", ("invalid", "@options"))]
    for bad in (
        {"left": ["x"], "op": "!=", "right": ["y"]},
        {"left": [], "op": "==", "right": ["y"]},
    ):
        try:
            checks_from_template({"checks": [bad]})
        except ValueError as exc:
            assert "checks[0]" in str(exc)
        else:
            raise AssertionError("accepted a malformed check")


@given(
    st.dictionaries(
        st.tuples(st.sampled_from(["p1", "p2", "p3"]), st.sampled_from(OPTIONS)),
        st.integers(0, 500),
    ),
    st.dictionaries(
        st.tuples(st.sampled_from(["p1", "p2", "p3"]), st.sampled_from(OPTIONS)),
        st.integers(0, 500),
    ),
)
def test_proof_flags_exactly_where_crowd_exceeds_official(
    crowd: dict[tuple[str, str], int], official: dict[tuple[str, str], int]
) -> None:
    flagged = {(f.precinct_id, f.option) for f in crowd_exceeds_official(crowd, official)}
    assert flagged == {k for k, v in crowd.items() if k in official and v > official[k]}


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 500))
def test_an_honest_protocol_never_fails(votes_a: int, votes_b: int, invalid: int) -> None:
    cast = votes_a + votes_b + invalid
    protocol = _protocol(
        a=votes_a, b=votes_b, invalid=invalid, ballots_cast=cast, ballots_issued=cast,
        registered=cast + 7, ballots_received=cast + 20, ballots_cancelled=20,
    )  # fmt: skip
    assert protocol_arithmetic({"p": protocol}, OPTIONS, STANDARD_CHECKS) == []


_COUNTS = st.dictionaries(
    st.tuples(st.sampled_from(["p1", "p2", "p3"]), st.sampled_from(OPTIONS)),
    st.integers(0, 50),
)
_VOTERS = st.dictionaries(st.sampled_from(["p1", "p2", "p3"]), st.integers(0, 50))
_LINE = st.one_of(st.none(), st.integers(0, 200))


@given(_COUNTS, _COUNTS, _VOTERS, _VOTERS, st.sampled_from(list(EvidenceLevel)))
def test_every_crowd_finding_carries_its_flags_vocabulary_kind(
    crowd: dict[tuple[str, str], int],
    official: dict[tuple[str, str], int],
    voters: dict[str, int],
    cast: dict[str, int],
    level: EvidenceLevel,
) -> None:
    findings = crowd_exceeds_official(crowd, official, "src", level)
    findings += crowd_exceeds_turnout(voters, cast, "src", level)
    for finding in findings:
        assert finding.kind == FLAG_KIND[finding.flag]
        assert isinstance(finding.flag, Flag)
        # Only verified evidence proves; declared evidence is a lead.
        assert (finding.kind is FlagKind.PROOF) == (level is EvidenceLevel.VERIFIED)


@given(st.dictionaries(st.sampled_from(PROTOCOL_LINES + tuple(OPTIONS)), _LINE))
def test_every_protocol_finding_carries_its_flags_vocabulary_kind(
    lines: dict[str, int | None],
) -> None:
    for finding in protocol_arithmetic({"p": _protocol(**lines)}, OPTIONS):
        assert finding.flag is Flag.PROTOCOL_ARITHMETIC
        assert finding.kind == FLAG_KIND[finding.flag] == FlagKind.PROOF
        assert finding.source == Source.PROTOCOL


def test_crowd_rules_take_the_level_as_a_plain_string_too() -> None:
    level: Any = "declared"  # as read from a file or a database row
    [finding] = crowd_exceeds_official({("p1", "a"): 9}, {("p1", "a"): 1}, "poll", level)
    assert finding.flag is Flag.DECLARED_EXCEEDS_OFFICIAL
