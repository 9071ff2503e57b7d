"""The flag stage's reasoning on evidence with a known answer (no database)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.progress import Recorded
from tally.flags import (
    Evidence,
    evaluate,
    proof_findings,
    protocol_checks,
    stations_table,
    statistical_findings,
    verified_crowd,
)
from tally.forensics.analysis import Analysis, StationFlag
from tally.proof import STANDARD_CHECKS, Check
from tally.vocab import FLAG_KIND, EvidenceLevel, Flag, FlagKind, Source

OPTIONS = ("a", "b")
PRECINCTS = [("p1", "North", "N1", "One"), ("p2", "North", "N2", ""), ("p3", "South", "S1", "")]


def _protocol(a: int, b: int, **lines: int | None) -> dict[str, int | None]:
    cast = a + b + 2
    protocol: dict[str, int | None] = {
        "registered": 1000, "ballots_issued": cast, "ballots_cast": cast, "invalid": 2,
        "a": a, "b": b,
    }  # fmt: skip
    protocol.update(lines)
    return protocol


def _evidence(**changes: object) -> Evidence:
    protocols = {"p1": _protocol(10, 90), "p2": _protocol(50, 50)}
    evidence = Evidence(
        precincts=PRECINCTS,
        option_ids=OPTIONS,
        protocols=protocols,
        official_votes={(p, o): lines[o] for p, lines in protocols.items() for o in OPTIONS},
        photo_tally={},
        photo_voters={},
        crowd_sources={},
    )
    return replace(evidence, **changes)  # type: ignore[arg-type]


def test_consistent_evidence_proves_nothing() -> None:
    assert proof_findings(_evidence()) == []


def test_photos_above_the_protocol_prove_it_false() -> None:
    findings = proof_findings(_evidence(photo_tally={("p1", "a"): 11}, photo_voters={"p1": 103}))
    assert [(f.precinct_id, f.flag, f.source, f.crowd, f.official) for f in findings] == [
        ("p1", Flag.CROWD_EXCEEDS_OFFICIAL, Source.PHOTOS, 11, 10),
        ("p1", Flag.CROWD_EXCEEDS_TURNOUT, Source.PHOTOS, 103, 102),
    ]
    assert all(f.kind is FlagKind.PROOF for f in findings)


def test_a_declared_source_only_leads_and_a_verified_one_proves() -> None:
    sources = {
        "poll": (EvidenceLevel.DECLARED, {("p2", "b"): 60}),
        "partner": (EvidenceLevel.VERIFIED, {("p1", "a"): 12}),
    }
    findings = proof_findings(_evidence(crowd_sources=sources))
    by_source = {f.source: f for f in findings if f.option}
    assert by_source["partner"].flag is Flag.CROWD_EXCEEDS_OFFICIAL
    assert by_source["poll"].flag is Flag.DECLARED_EXCEEDS_OFFICIAL
    assert by_source["poll"].kind is FlagKind.STATISTICAL


def test_a_sources_votes_are_its_voters_only_on_single_choice_ballots() -> None:
    # Each option's votes within the protocol's, but 100 voters for 99 ballots cast.
    sources = {"poll": (EvidenceLevel.VERIFIED, {("p1", "a"): 10, ("p1", "b"): 90})}
    evidence = _evidence(
        crowd_sources=sources, protocols={"p1": _protocol(10, 90, ballots_cast=99)}
    )

    def poll_flags(evidence: Evidence) -> list[Flag]:
        return [f.flag for f in proof_findings(evidence) if f.source == "poll"]

    assert poll_flags(evidence) == [Flag.CROWD_EXCEEDS_TURNOUT]
    assert poll_flags(replace(evidence, single_choice=False)) == []


def test_the_protocols_own_checks_replace_the_standard_ones() -> None:
    broken = _evidence(protocols={"p1": _protocol(10, 90, ballots_issued=90)})
    assert [f.flag for f in proof_findings(broken)] == [Flag.PROTOCOL_ARITHMETIC]
    lenient = replace(broken, checks=[Check(("invalid",), "<=", ("registered",))])
    assert proof_findings(lenient) == []


def test_protocol_checks_fall_back_to_the_standard_ones() -> None:
    assert protocol_checks(None) == list(STANDARD_CHECKS)
    assert protocol_checks({"checks": []}) == list(STANDARD_CHECKS)
    template = {"checks": [{"left": ["invalid"], "op": "<=", "right": ["registered"]}]}
    assert protocol_checks(template) == [Check(("invalid",), "<=", ("registered",))]


def test_stations_are_the_precincts_with_a_protocol() -> None:
    stations = stations_table(PRECINCTS, _evidence().protocols, OPTIONS, excluded={"p2"})
    assert list(stations.precinct_id) == ["p1", "p2"]
    assert list(stations.region) == ["North", "North"]
    assert stations.votes.tolist() == [[10, 90], [50, 50]]
    assert stations.excluded is not None and stations.excluded.tolist() == [False, True]
    empty = stations_table(PRECINCTS, {}, OPTIONS)
    assert empty.votes.shape == (0, 2)


def test_a_missing_figure_is_nan_in_the_stations_table() -> None:
    stations = stations_table(PRECINCTS, {"p1": _protocol(10, 90, invalid=None)}, OPTIONS)
    assert np.isnan(stations.invalid[0])


def test_verified_crowd_takes_the_largest_verified_count() -> None:
    stations = stations_table(PRECINCTS, _evidence().protocols, OPTIONS)
    crowd = verified_crowd(
        stations,
        {("p1", "a"): 3},
        {
            "partner": (EvidenceLevel.VERIFIED, {("p1", "a"): 5, ("p9", "a"): 7}),
            "poll": (EvidenceLevel.DECLARED, {("p2", "b"): 99}),
        },
    )
    assert crowd.tolist() == [[5, 0], [0, 0]]  # never added, declared never counted


def test_statistical_findings_are_on_the_protocol() -> None:
    analysis = Analysis(
        tests={},
        estimates={},
        station_flags=[StationFlag("p1", "turnout_outlier", "", 4.2, 1e-5, 1e-3, "high")],
        figures={},
    )
    [finding] = statistical_findings(analysis)
    assert (finding.flag, finding.kind, finding.source) == (
        Flag.TURNOUT_OUTLIER,
        FlagKind.STATISTICAL,
        Source.PROTOCOL,
    )
    assert (finding.statistic, finding.p_value, finding.q_value) == (4.2, 1e-5, 1e-3)


def test_a_statistical_flag_outside_the_vocabulary_is_refused() -> None:
    analysis = Analysis({}, {}, [StationFlag("p1", "made_up", "", None, None, None, "")], {})
    with pytest.raises(ValueError, match="made_up"):
        statistical_findings(analysis)


def test_evaluate_keeps_proven_stations_out_of_the_estimates() -> None:
    recorder = Recorded()
    run = evaluate(_evidence(photo_tally={("p2", "a"): 51}), draws=20, progress=recorder)
    assert recorder.names == ["proof rules", "statistical tests (20 draws)"]
    assert [f.precinct_id for f in run.proof] == ["p2"]
    assert run.stations.excluded is not None and run.stations.excluded.tolist() == [False, True]
    assert run.findings == run.proof + run.statistical
    assert set(run.analysis.tests) >= {"integer_percent", "fingerprint"}


@given(
    st.dictionaries(
        st.tuples(st.sampled_from(["p1", "p2", "p3"]), st.sampled_from(OPTIONS)),
        st.integers(0, 120),
    ),
    st.dictionaries(
        st.sampled_from(["x", "y"]),
        st.tuples(
            st.sampled_from(list(EvidenceLevel)),
            st.dictionaries(
                st.tuples(st.sampled_from(["p1", "p2"]), st.sampled_from(OPTIONS)),
                st.integers(0, 120),
            ),
        ),
    ),
)
def test_every_finding_of_the_proof_rules_has_its_flags_kind(
    photos: dict[tuple[str, str], int],
    sources: dict[str, tuple[EvidenceLevel, dict[tuple[str, str], int]]],
) -> None:
    voters: dict[str, int] = {}
    for (precinct, _), votes in photos.items():
        voters[precinct] = voters.get(precinct, 0) + votes
    evidence = _evidence(photo_tally=photos, photo_voters=voters, crowd_sources=sources)
    for finding in proof_findings(evidence):
        assert finding.kind is FLAG_KIND[finding.flag]
        level = EvidenceLevel.VERIFIED
        if finding.source in sources:
            level = sources[finding.source][0]
        assert (finding.kind is FlagKind.PROOF) == (level is EvidenceLevel.VERIFIED)
