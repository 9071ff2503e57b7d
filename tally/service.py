"""Crowd tallies and flags in the database."""

from __future__ import annotations

import psycopg

from tally.proof import Finding, crowd_exceeds_official

# The flags this module computes, and from which source: recomputing replaces
# exactly these and nothing else (imported sources' flags, observers' own).
COMPUTED_FLAGS = ("crowd_exceeds_official",)
PHOTOS = "photos"


def crowd_tally(conn: psycopg.Connection, election_id: str) -> dict[tuple[str, str], int]:
    """Verified photo votes per (precinct, option)."""
    rows = conn.execute(
        """
        SELECT precinct_id, mark, count(*) FROM submissions, unnest(marks) AS mark
        WHERE election_id = %s AND status = 'verified'
        GROUP BY precinct_id, mark
        """,
        (election_id,),
    )
    return {(p, o): n for p, o, n in rows}


def official_votes(conn: psycopg.Connection, election_id: str) -> dict[tuple[str, str], int | None]:
    rows = conn.execute(
        "SELECT precinct_id, option_id, votes FROM current_official_votes WHERE election_id = %s",
        (election_id,),
    )
    return {(p, o): v for p, o, v in rows}


def recompute_flags(conn: psycopg.Connection, election_id: str) -> list[Finding]:
    """Recompute the platform's flags from the current evidence.

    An observer's decision stays with a flag while its numbers stay the same; a
    flag whose numbers change is open again (the decision was about other
    evidence), and a flag that no longer holds is removed whatever its status.
    """
    findings = crowd_exceeds_official(
        crowd_tally(conn, election_id), official_votes(conn, election_id)
    )
    with conn.transaction():
        conn.execute("DROP TABLE IF EXISTS pg_temp.fresh_flags")
        conn.execute("CREATE TEMP TABLE fresh_flags (LIKE flags INCLUDING DEFAULTS) ON COMMIT DROP")
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY fresh_flags (election_id, precinct_id, flag, kind, option_id, source, crowd,"
                " official, detail) FROM STDIN"
            ) as copy,
        ):
            for f in findings:
                copy.write_row(
                    (
                        election_id,
                        f.precinct_id,
                        f.flag,
                        f.kind,
                        f.option,
                        f.source,
                        f.crowd,
                        f.official,
                        f.detail,
                    )
                )
        conn.execute(
            """
            DELETE FROM flags f
            WHERE f.election_id = %s AND f.flag = ANY(%s) AND f.source = %s
              AND NOT EXISTS (
                SELECT 1 FROM fresh_flags n
                WHERE n.precinct_id = f.precinct_id AND n.flag = f.flag
                  AND n.option_id = f.option_id AND n.source = f.source)
            """,
            (election_id, list(COMPUTED_FLAGS), PHOTOS),
        )
        conn.execute(
            """
            INSERT INTO flags (election_id, precinct_id, flag, kind, option_id, source, crowd,
                               official, detail)
            SELECT election_id, precinct_id, flag, kind, option_id, source, crowd, official, detail
            FROM fresh_flags
            ON CONFLICT (election_id, precinct_id, flag, option_id, source) DO UPDATE SET
                kind = EXCLUDED.kind, crowd = EXCLUDED.crowd, official = EXCLUDED.official,
                detail = EXCLUDED.detail, review_status = 'open', updated_at = now()
            WHERE (flags.crowd, flags.official, flags.detail)
                  IS DISTINCT FROM (EXCLUDED.crowd, EXCLUDED.official, EXCLUDED.detail)
            """
        )
    return findings
