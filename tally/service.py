"""Crowd tallies and flags in the database."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence

import psycopg

from tally.proof import (
    STANDARD_CHECKS,
    Check,
    Finding,
    Level,
    checks_from_template,
    crowd_exceeds_official,
    crowd_exceeds_turnout,
    protocol_arithmetic,
)

PHOTOS = "photos"
PROTOCOL_LINES = (
    "registered", "ballots_issued", "ballots_cast", "invalid", "ballots_issued_early",
    "ballots_issued_home", "ballots_received", "ballots_cancelled",
)  # fmt: skip
# Flag names the platform computes; summary.json lists each, with zero counts too.
FLAG_NAMES = (
    "crowd_exceeds_official",
    "crowd_exceeds_turnout",
    "protocol_arithmetic",
    "declared_exceeds_official",
    "declared_exceeds_turnout",
)


def count_ballot(
    conn: psycopg.Connection, election_id: str, precinct_id: str, marks: Sequence[str], delta: int
) -> None:
    """Add (delta=1) or take back (delta=-1) one verified ballot in the station's tally,
    in the caller's transaction, so the tally is current the moment a photo counts."""
    assert delta in (1, -1)
    with conn.cursor() as cur:
        if delta > 0:
            cur.executemany(
                """
                INSERT INTO photo_tallies (election_id, precinct_id, option_id, votes)
                VALUES (%s, %s, %s, 1)
                ON CONFLICT (election_id, precinct_id, option_id)
                DO UPDATE SET votes = photo_tallies.votes + 1
                """,
                [(election_id, precinct_id, mark) for mark in marks],
            )
            cur.execute(
                """
                INSERT INTO photo_voters (election_id, precinct_id, voters) VALUES (%s, %s, 1)
                ON CONFLICT (election_id, precinct_id)
                DO UPDATE SET voters = photo_voters.voters + 1
                """,
                (election_id, precinct_id),
            )
        else:
            cur.executemany(
                "UPDATE photo_tallies SET votes = votes - 1"
                " WHERE election_id = %s AND precinct_id = %s AND option_id = %s",
                [(election_id, precinct_id, mark) for mark in marks],
            )
            cur.execute(
                "UPDATE photo_voters SET voters = voters - 1"
                " WHERE election_id = %s AND precinct_id = %s",
                (election_id, precinct_id),
            )


def crowd_tally(conn: psycopg.Connection, election_id: str) -> dict[tuple[str, str], int]:
    """Verified photo votes per (precinct, option)."""
    rows = conn.execute(
        "SELECT precinct_id, option_id, votes FROM photo_tallies"
        " WHERE election_id = %s AND votes > 0",
        (election_id,),
    )
    return {(p, o): n for p, o, n in rows}


def photo_voters(conn: psycopg.Connection, election_id: str) -> dict[str, int]:
    rows = conn.execute(
        "SELECT precinct_id, voters FROM photo_voters WHERE election_id = %s AND voters > 0",
        (election_id,),
    )
    return dict(rows.fetchall())


def official_votes(conn: psycopg.Connection, election_id: str) -> dict[tuple[str, str], int | None]:
    rows = conn.execute(
        "SELECT precinct_id, option_id, votes FROM current_official_votes WHERE election_id = %s",
        (election_id,),
    )
    return {(p, o): v for p, o, v in rows}


def official_protocols(
    conn: psycopg.Connection, election_id: str
) -> dict[str, dict[str, int | None]]:
    """Each known protocol's lines and option votes, by official-results/1 column."""
    protocols: dict[str, dict[str, int | None]] = {}
    columns = ", ".join(PROTOCOL_LINES)  # constants, not input
    for row in conn.execute(
        f"SELECT precinct_id, {columns} FROM current_official_results WHERE election_id = %s",
        (election_id,),
    ):
        protocols[row[0]] = dict(zip(PROTOCOL_LINES, row[1:], strict=True))
    for (precinct, option), votes in official_votes(conn, election_id).items():
        protocols[precinct][option] = votes
    return protocols


def crowd_sources(
    conn: psycopg.Connection, election_id: str
) -> dict[str, tuple[Level, dict[tuple[str, str], int]]]:
    """Imported crowd sources: name -> (level, votes per (precinct, option))."""
    sources: dict[str, tuple[Level, dict[tuple[str, str], int]]] = {}
    for source, level, precinct, option, votes in conn.execute(
        "SELECT source, level, precinct_id, option_id, votes FROM current_crowd_counts"
        " WHERE election_id = %s AND votes IS NOT NULL",
        (election_id,),
    ):
        sources.setdefault(source, (level, {}))[1][(precinct, option)] = votes
    return sources


def _checks(conn: psycopg.Connection, election_id: str) -> list[Check]:
    row = conn.execute(
        "SELECT protocol_template FROM elections WHERE id = %s", (election_id,)
    ).fetchone()
    if row and row[0]:
        template = row[0] if isinstance(row[0], dict) else json.loads(row[0])
        checks = checks_from_template(template)
        if checks:
            return checks
    return list(STANDARD_CHECKS)


def _single_choice(conn: psycopg.Connection, election_id: str) -> bool:
    row = conn.execute(
        "SELECT coalesce((ballot_template->>'max_marks')::int, 1) FROM elections WHERE id = %s",
        (election_id,),
    ).fetchone()
    return row is None or row[0] == 1


def proof_findings(conn: psycopg.Connection, election_id: str) -> list[Finding]:
    """Every proof rule over every evidence source."""
    official = official_votes(conn, election_id)
    protocols = official_protocols(conn, election_id)
    option_ids = [r[0] for r in conn.execute(
        "SELECT id FROM options WHERE election_id = %s ORDER BY position", (election_id,)
    )]  # fmt: skip
    cast = {p: lines.get("ballots_cast") for p, lines in protocols.items()}
    findings = crowd_exceeds_official(crowd_tally(conn, election_id), official, PHOTOS)
    findings += crowd_exceeds_turnout(photo_voters(conn, election_id), cast, PHOTOS)
    single_choice = _single_choice(conn, election_id)
    for source, (level, counts) in sorted(crowd_sources(conn, election_id).items()):
        findings += crowd_exceeds_official(counts, official, source, level)
        if single_choice:  # one vote per voter: a source's votes are its voters
            voters: dict[str, int] = defaultdict(int)
            for (precinct, _), votes in counts.items():
                voters[precinct] += votes
            findings += crowd_exceeds_turnout(voters, cast, source, level)
    findings += protocol_arithmetic(protocols, option_ids, _checks(conn, election_id))
    return findings


def recompute_flags(
    conn: psycopg.Connection, election_id: str, statistical: Sequence[Finding] = ()
) -> list[Finding]:
    """Recompute the election's proof flags from the current evidence (and store the
    given statistical ones with them)."""
    findings = proof_findings(conn, election_id) + list(statistical)
    store_flags(conn, election_id, findings)
    return findings


def store_flags(conn: psycopg.Connection, election_id: str, findings: Sequence[Finding]) -> None:
    """Make the stored flags exactly ``findings``.

    An observer's decision stays with a flag while its numbers stay the same; a
    flag whose numbers change is open again (the decision was about other
    evidence), and a flag that no longer holds is removed whatever its status.
    """
    with conn.transaction():
        conn.execute("DROP TABLE IF EXISTS pg_temp.fresh_flags")
        conn.execute("CREATE TEMP TABLE fresh_flags (LIKE flags INCLUDING DEFAULTS) ON COMMIT DROP")
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY fresh_flags (election_id, precinct_id, flag, kind, option_id, source, crowd,"
                " official, statistic, p_value, q_value, detail) FROM STDIN"
            ) as copy,
        ):
            for f in findings:
                copy.write_row(
                    (election_id, f.precinct_id, f.flag, f.kind, f.option, f.source, f.crowd,
                     f.official, f.statistic, f.p_value, f.q_value, f.detail)
                )  # fmt: skip
        conn.execute(
            """
            DELETE FROM flags f
            WHERE f.election_id = %s
              AND NOT EXISTS (
                SELECT 1 FROM fresh_flags n
                WHERE n.precinct_id = f.precinct_id AND n.flag = f.flag
                  AND n.option_id = f.option_id AND n.source = f.source)
            """,
            (election_id,),
        )
        conn.execute(
            """
            INSERT INTO flags (election_id, precinct_id, flag, kind, option_id, source, crowd,
                               official, statistic, p_value, q_value, detail)
            SELECT election_id, precinct_id, flag, kind, option_id, source, crowd, official,
                   statistic, p_value, q_value, detail
            FROM fresh_flags
            ON CONFLICT (election_id, precinct_id, flag, option_id, source) DO UPDATE SET
                kind = EXCLUDED.kind, crowd = EXCLUDED.crowd, official = EXCLUDED.official,
                statistic = EXCLUDED.statistic, p_value = EXCLUDED.p_value,
                q_value = EXCLUDED.q_value, detail = EXCLUDED.detail,
                review_status = 'open', updated_at = now()
            WHERE (flags.crowd, flags.official, flags.detail)
                  IS DISTINCT FROM (EXCLUDED.crowd, EXCLUDED.official, EXCLUDED.detail)
            """
        )
