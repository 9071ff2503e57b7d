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
from tally.vocab import Flag, FlagKind, ReviewStatus


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
    identities: int | None = None  # distinct verified voters behind ``crowd`` (photos)


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
                " official, statistic, p_value, q_value, detail, identities) FROM STDIN"
            ) as copy,
        ):
            for f in findings:
                copy.write_row(
                    (election_id, f.precinct_id, str(f.flag), str(f.kind), f.option, str(f.source),
                     f.crowd, f.official, f.statistic, f.p_value, f.q_value, f.detail,
                     f.identities)
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
                               official, statistic, p_value, q_value, detail, identities)
            SELECT election_id, precinct_id, flag, kind, option_id, source, crowd, official,
                   statistic, p_value, q_value, detail, identities
            FROM fresh_flags
            ON CONFLICT (election_id, precinct_id, flag, option_id, source) DO UPDATE SET
                kind = EXCLUDED.kind, crowd = EXCLUDED.crowd, official = EXCLUDED.official,
                statistic = EXCLUDED.statistic, p_value = EXCLUDED.p_value,
                q_value = EXCLUDED.q_value, detail = EXCLUDED.detail,
                identities = EXCLUDED.identities, review_status = %s, updated_at = now()
            WHERE (flags.crowd, flags.official, flags.detail, flags.identities)
                  IS DISTINCT FROM
                  (EXCLUDED.crowd, EXCLUDED.official, EXCLUDED.detail, EXCLUDED.identities)
            """,
            (str(ReviewStatus.OPEN),),
        )


def flag_rows(conn: psycopg.Connection, election_id: str) -> list[FlagRow]:
    """The election's stored flags in report order: by kind, flag, precinct, option, source."""
    rows = conn.execute(
        """
        SELECT precinct_id, flag, kind, option_id, source, crowd, official, statistic,
               p_value, q_value, detail, review_status, identities
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


# --- public and analysts ---------------------------------------------------------
#
# What the public pages, the map and the analysts' query API read of the tallies
# and flags. A flag "stands" unless observers dismissed it.


class FlagSummary(NamedTuple):
    """A station's standing flags (every review status but dismissed)."""

    kinds: frozenset[str]  # FlagKind values
    proof_flags: tuple[str, ...]  # the names of its standing proof flags, sorted
    standing: int  # how many standing flags


class StoredFlag(NamedTuple):
    """A stored flag with its id (the analysts' keyset cursor)."""

    id: int
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
    identities: int | None = None  # distinct verified voters behind ``crowd`` (photos)


_STORED_FLAG_COLUMNS = """
    id, precinct_id, flag, kind, option_id, source, crowd, official, statistic,
    p_value, q_value, detail, review_status, identities
"""


def flag_summaries(conn: psycopg.Connection, election_id: str) -> dict[str, FlagSummary]:
    """Station -> its standing flags, for the stations that have any."""
    rows = conn.execute(
        """
        SELECT precinct_id, array_agg(DISTINCT kind),
               coalesce(array_agg(DISTINCT flag ORDER BY flag)
                        FILTER (WHERE kind = %s), '{}'),
               count(*)
        FROM flags
        WHERE election_id = %s AND review_status <> %s
        GROUP BY precinct_id
        """,
        (str(FlagKind.PROOF), election_id, str(ReviewStatus.DISMISSED)),
    )
    return {
        precinct: FlagSummary(frozenset(kinds), tuple(proof), int(standing))
        for precinct, kinds, proof, standing in rows
    }


def station_flags(conn: psycopg.Connection, election_id: str, precinct_id: str) -> list[StoredFlag]:
    """Every flag of one station, whatever its review status: proof first, then by
    flag, option and source."""
    rows = conn.execute(
        f"SELECT {_STORED_FLAG_COLUMNS} FROM flags WHERE election_id = %s AND precinct_id = %s"
        " ORDER BY kind, flag, option_id, source",
        (election_id, precinct_id),
    )
    return [StoredFlag(*row) for row in rows]


def photo_tally_of(
    conn: psycopg.Connection, election_id: str, precinct_ids: Sequence[str]
) -> dict[tuple[str, str], int]:
    """Verified photo votes per (precinct, option) of these stations, where any."""
    rows = conn.execute(
        "SELECT precinct_id, option_id, votes FROM photo_tallies"
        " WHERE election_id = %s AND precinct_id = ANY(%s) AND votes > 0",
        (election_id, list(precinct_ids)),
    )
    return {(p, o): n for p, o, n in rows}


def photo_voters_of(
    conn: psycopg.Connection, election_id: str, precinct_ids: Sequence[str]
) -> dict[str, int]:
    """Verified photo voters per station of these stations, where any."""
    rows = conn.execute(
        "SELECT precinct_id, voters FROM photo_voters"
        " WHERE election_id = %s AND precinct_id = ANY(%s) AND voters > 0",
        (election_id, list(precinct_ids)),
    )
    return dict(rows.fetchall())


def flag_counts_of(
    conn: psycopg.Connection, election_id: str, precinct_ids: Sequence[str]
) -> dict[str, tuple[int, int]]:
    """Station -> (standing flags, standing proof flags), for these stations that have any."""
    rows = conn.execute(
        """
        SELECT precinct_id, count(*), count(*) FILTER (WHERE kind = %s)
        FROM flags
        WHERE election_id = %s AND precinct_id = ANY(%s) AND review_status <> %s
        GROUP BY precinct_id
        """,
        (str(FlagKind.PROOF), election_id, list(precinct_ids), str(ReviewStatus.DISMISSED)),
    )
    return {p: (int(standing), int(proof)) for p, standing, proof in rows}


def flags_page(
    conn: psycopg.Connection,
    election_id: str,
    *,
    precinct_ids: Sequence[str] | None,
    flag: str | None,
    kind: str | None,
    review_status: str | None,
    after: int | None,
    limit: int,
) -> list[StoredFlag]:
    """One keyset page of the election's flags in id order: those after ``after``,
    at ``precinct_ids`` when given, of the flag, kind and review status when given."""
    conditions = ["election_id = %s"]
    params: list[object] = [election_id]
    for column, value in (("flag", flag), ("kind", kind), ("review_status", review_status)):
        if value is not None:
            conditions.append(f"{column} = %s")
            params.append(value)
    if precinct_ids is not None:
        conditions.append("precinct_id = ANY(%s)")
        params.append(list(precinct_ids))
    if after is not None:
        conditions.append("id > %s")
        params.append(after)
    query = (
        f"SELECT {_STORED_FLAG_COLUMNS} FROM flags WHERE {' AND '.join(conditions)}"
        " ORDER BY id LIMIT %s"
    )
    return [StoredFlag(*row) for row in conn.execute(query, [*params, limit])]


# --- review ---
#
# The observers' review (api/review): the flags queue, one flag locked for a
# decision, one station's flags and photo tally.

# The last row of a flags queue page, to page on from: (rank, id).
FlagCursor = tuple[float, int]
# The queue's order (migration 0009's review_flag_rank, which its indexes hold).
_FLAG_RANK = "review_flag_rank(kind, crowd, official, q_value, p_value)"
_REVIEW_FLAG_COLUMNS = (
    "id, election_id, precinct_id, flag, kind, option_id AS option, source, crowd, official,"
    f" statistic, p_value, q_value, detail, review_status, {_FLAG_RANK} AS rank, identities"
)


class ReviewFlagRow(NamedTuple):
    id: int
    election_id: str
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
    rank: float
    identities: int | None = None  # distinct verified voters behind ``crowd`` (photos)


def review_flag_page(
    conn: psycopg.Connection,
    election_id: str,
    *,
    precinct_ids: Sequence[str] | None,
    flag: str | None,
    kind: str | None,
    status: str | None,
    after: FlagCursor | None,
    limit: int,
) -> list[ReviewFlagRow]:
    """Up to ``limit`` flags after ``after`` in queue order (rank, then id): a range
    scan of flags_review_queue, or of flags_review_queue_status when filtered by
    status, whatever the depth (keyset pagination)."""
    conditions = ["election_id = %(e)s"]
    if precinct_ids is not None:
        conditions.append("precinct_id = ANY(%(precincts)s)")
    if flag is not None:
        conditions.append("flag = %(flag)s")
    if kind is not None:
        conditions.append("kind = %(kind)s")
    if status is not None:
        conditions.append("review_status = %(status)s")
    if after is not None:
        conditions.append(f"({_FLAG_RANK}, id) > (%(rank)s, %(id)s)")
    query = (
        f"SELECT {_REVIEW_FLAG_COLUMNS} FROM flags WHERE {' AND '.join(conditions)}"
        f" ORDER BY {_FLAG_RANK}, id LIMIT %(n)s"
    )
    params = {
        "e": election_id,
        "precincts": list(precinct_ids) if precinct_ids is not None else None,
        "flag": flag,
        "kind": kind,
        "status": status,
        "rank": after[0] if after else None,
        "id": after[1] if after else None,
        "n": limit,
    }
    return [ReviewFlagRow(*row) for row in conn.execute(query, params)]


def review_flag(
    conn: psycopg.Connection, flag_id: int, *, lock: bool = False
) -> ReviewFlagRow | None:
    """One flag; with ``lock``, its row locked until the transaction ends."""
    query = f"SELECT {_REVIEW_FLAG_COLUMNS} FROM flags WHERE id = %s"
    if lock:
        query += " FOR UPDATE"
    row = conn.execute(query, (flag_id,)).fetchone()
    return None if row is None else ReviewFlagRow(*row)


def set_review_status(conn: psycopg.Connection, flag_id: int, status: ReviewStatus) -> None:
    """Record the observers' final decision on a flag."""
    conn.execute(
        "UPDATE flags SET review_status = %s, updated_at = now() WHERE id = %s",
        (str(status), flag_id),
    )


def station_review_flags(
    conn: psycopg.Connection, election_id: str, precinct_id: str
) -> list[ReviewFlagRow]:
    """The station's flags in queue order (index flags_precinct)."""
    query = (
        f"SELECT {_REVIEW_FLAG_COLUMNS} FROM flags WHERE election_id = %s AND precinct_id = %s"
        f" ORDER BY {_FLAG_RANK}, id"
    )
    return [ReviewFlagRow(*row) for row in conn.execute(query, (election_id, precinct_id))]


def station_photo_tally(
    conn: psycopg.Connection, election_id: str, precinct_id: str
) -> tuple[dict[str, int], int]:
    """The station's verified photo votes per option, and its verified photo voters."""
    votes = {
        str(option): int(n)
        for option, n in conn.execute(
            "SELECT option_id, votes FROM photo_tallies"
            " WHERE election_id = %s AND precinct_id = %s AND votes > 0",
            (election_id, precinct_id),
        )
    }
    row = conn.execute(
        "SELECT voters FROM photo_voters WHERE election_id = %s AND precinct_id = %s",
        (election_id, precinct_id),
    ).fetchone()
    return votes, int(row[0]) if row else 0


def count_flags(conn: psycopg.Connection, election_id: str) -> dict[tuple[str, str], int]:
    """How many of the election's flags there are per (kind, review status)."""
    rows = conn.execute(
        "SELECT kind, review_status, count(*) FROM flags WHERE election_id = %s GROUP BY 1, 2",
        (election_id,),
    )
    return {(str(k), str(s)): int(n) for k, s, n in rows}
