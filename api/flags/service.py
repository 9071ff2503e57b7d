"""The flag stage: where the evidence is compared and the flags are stored.

``run_flags`` gathers an election's evidence through each domain's repository
(official protocols and crowd sources from the elections, reconciled with the
protocol photos by api.protocols.service: a figure the sources disagree on is
unknown and its own ``conflicting_protocols`` flag; verified photo tallies from
tally), runs the proof rules and the statistical tests over it
(``tally.flags.evaluate``, pure) and makes the stored flags exactly what they
found (``tally.repository.store_flags``: a decision stays while its flag's
numbers stay, a changed flag is open again, a vanished one is removed). The
report (``api.reports.service``) runs this stage first and reuses its result.
"""

from __future__ import annotations

from dataclasses import replace

import psycopg

from api.elections import repository as elections
from api.protocols import service as protocols
from api.submissions import repository as submissions
from infra.progress import SILENT, Progress
from tally import repository as tallies
from tally.flags import Evidence, FlagRun, evaluate, protocol_checks
from tally.proof import Finding

__all__ = ["FlagRun", "gather_evidence", "run_flags"]


def gather_evidence(conn: psycopg.Connection, election_id: str) -> Evidence:
    """Everything the flag stage reads, for one election; ``ElectionNotFound`` when the
    election does not exist."""
    return _gather(conn, election_id)[0]


def _gather(conn: psycopg.Connection, election_id: str) -> tuple[Evidence, list[Finding]]:
    """The evidence, and the conflicting protocols found reconciling its sources."""
    option_ids = elections.option_ids(conn, election_id)
    official, conflicts = protocols.election_protocols(conn, election_id)
    evidence = Evidence(
        precincts=elections.precincts(conn, election_id),
        option_ids=option_ids,
        protocols=official,
        official_votes=protocols.option_votes(official, option_ids),
        photo_tally=tallies.photo_tally(conn, election_id),
        photo_voters=tallies.photo_voters(conn, election_id),
        crowd_sources=elections.crowd_sources(conn, election_id),
        checks=protocol_checks(elections.protocol_template(conn, election_id)),
        single_choice=elections.max_marks(conn, election_id) == 1,
        photo_identities=submissions.verified_identities(conn, election_id),
    )
    return evidence, conflicts


def run_flags(
    conn: psycopg.Connection,
    election_id: str,
    *,
    draws: int = 1000,
    progress: Progress = SILENT,
) -> FlagRun:
    """Recompute and store every flag of the election (proof and statistical), in the
    caller's transaction; the caller commits. ``draws``: simulation draws per test."""
    evidence, conflicts = _gather(conn, election_id)
    run = evaluate(evidence, draws=draws, progress=progress)
    run = replace(run, proof=[*run.proof, *conflicts])
    tallies.store_flags(conn, election_id, run.findings)
    return run
