"""Every SQL statement on tally's own tables: ``photo_tallies``, ``photo_voters`` and
``flags``. Nothing else in the platform queries them; tally reads nobody else's.

Each function runs in the caller's connection and transaction (``store_flags``
opens a nested one); none commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import psycopg

from tally.proof import Finding
from tally.vocab import Flag, ReviewStatus


class FlagRow(NamedTuple):
    """A stored flag with the observers' decision on it (report/1 ``discrepancies``
    without the precinct's region and district, which belong to the elections)."""

    precinct_id: str
    flag: str
    kind: str
    option: str
    source: str
    crowd: int | None
    official: int | None
    statistic: float | None
    p_value: float | None
    q_value: float | None
    detail: str
    review_status: str


def count_ballot(
    conn: psycopg.Connection, election_id: str, precinct_id: str, marks: Sequence[str], delta: int
) -> None:
    """Add (delta=1) or take back (delta=-1) one verified ballot in the station's tally,
    in the caller's transaction, so the tally is current the moment a photo counts.

    Concurrency: the upserts take the rows' locks until the caller commits, so two
    photos of one station counted at once queue on the row and neither is lost.
    """
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


def photo_tally(conn: psycopg.Connection, election_id: str) -> dict[tuple[str, str], int]:
    """Verified photo votes per (precinct, option), where there are any."""
    rows = conn.execute(
        "SELECT precinct_id, option_id, votes FROM photo_tallies"
        " WHERE election_id = %s AND votes > 0",
        (election_id,),
    )
    return {(p, o): n for p, o, n in rows}


def photo_voters(conn: psycopg.Connection, election_id: str) -> dict[str, int]:
    """Verified photo voters (ballots) per precinct, where there are any."""
    rows = conn.execute(
        "SELECT precinct_id, voters FROM photo_voters WHERE election_id = %s AND voters > 0",
        (election_id,),
    )
    return dict(rows.fetchall())


def store_flags(conn: psycopg.Connection, election_id: str, findings: Sequence[Finding]) -> None:
    """Make the election's stored flags exactly ``findings``.

    An observer's decision stays with a flag while its numbers stay the same; a
    flag whose numbers change is open again (the decision was about other
    evidence), and a flag that no longer holds is removed whatever its status.

    Concurrency: one transaction (nested in the caller's), so a reader sees the old
    flags or the new ones, never half; the fresh set goes through a temporary table
    private to this connection.
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
                    (election_id, f.precinct_id, str(f.flag), str(f.kind), f.option, str(f.source),
                     f.crowd, f.official, f.statistic, f.p_value, f.q_value, f.detail)
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
                review_status = %s, updated_at = now()
            WHERE (flags.crowd, flags.official, flags.detail)
                  IS DISTINCT FROM (EXCLUDED.crowd, EXCLUDED.official, EXCLUDED.detail)
            """,
            (str(ReviewStatus.OPEN),),
        )


def flag_rows(conn: psycopg.Connection, election_id: str) -> list[FlagRow]:
    """The election's stored flags in report order: by kind, flag, precinct, option, source."""
    rows = conn.execute(
        """
        SELECT precinct_id, flag, kind, option_id, source, crowd, official, statistic,
               p_value, q_value, detail, review_status
        FROM flags
        WHERE election_id = %s
        ORDER BY kind, flag, precinct_id, option_id, source
        """,
        (election_id,),
    )
    return [FlagRow(*row) for row in rows]


def flagged_precincts(
    conn: psycopg.Connection, election_id: str, flag: Flag, source: str
) -> set[str]:
    """The precincts carrying ``flag`` from ``source`` (whatever the review status)."""
    rows = conn.execute(
        "SELECT DISTINCT precinct_id FROM flags"
        " WHERE election_id = %s AND flag = %s AND source = %s",
        (election_id, str(flag), str(source)),
    )
    return {row[0] for row in rows}


def clear_election(conn: psycopg.Connection, election_id: str) -> None:
    """Delete the election's tallies, voters and flags (an election loaded afresh)."""
    conn.execute("DELETE FROM flags WHERE election_id = %s", (election_id,))
    conn.execute("DELETE FROM photo_voters WHERE election_id = %s", (election_id,))
    conn.execute("DELETE FROM photo_tallies WHERE election_id = %s", (election_id,))
