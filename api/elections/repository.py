"""Every SQL statement on the elections domain's tables.

The tables: ``elections``, ``options``, ``precincts``, ``official_imports``,
``official_results``, ``official_votes`` (views ``current_official_results``,
``current_official_votes``), ``crowd_imports`` and ``crowd_counts`` (view
``current_crowd_counts``). Other domains read them only through these functions.

Every function runs in the caller's transaction; none opens or commits one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from api.elections.formats import (
    CrowdRow,
    ElectionDefinition,
    OfficialRow,
    OptionDefinition,
    PrecinctRow,
)
from api.elections.schemas import Election, ElectionNotFound
from tally.vocab import PROTOCOL_LINES, EvidenceLevel


class PrecinctRef(NamedTuple):
    """A precinct as the reports name it (``name`` is '' when the file gave none)."""

    precinct_id: str
    region: str
    district: str
    name: str


class CrowdImportRef(NamedTuple):
    """A source's current crowd import, for summary.json's ``imported_sources``."""

    source: str
    level: EvidenceLevel
    precincts: int  # rows of the import: one per precinct


class StoredBallotTemplate(NamedTuple):
    """An election's ballot template and the photo-store key of its reference image."""

    template: dict[str, Any] | None  # None: the election takes no ballot photos
    reference_sha256: str | None


class ImportIds(NamedTuple):
    """A new import and the import it made no longer current."""

    import_id: int
    replaced_import_id: int | None


# -- locking -------------------------------------------------------------------


def lock_election(conn: psycopg.Connection, election_id: str) -> None:
    """Serialise loads and imports of one election (until the transaction ends).

    Without it two imports at once would race for the one current import (the
    loser failing on the one-current index), and two first loads would both find
    no options and both insert them; under it the second waits for the first to
    commit and then sees its rows. The hash
    seed (2) keeps these keys apart from the submissions' advisory locks (seeds 0, 1).
    """
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 2))", (election_id,))


# -- elections and options -----------------------------------------------------


def find_election(conn: psycopg.Connection, election_id: str) -> Election | None:
    """The election with its counts, or None when there is none of that id."""
    with conn.cursor(row_factory=class_row(Election)) as cur:
        return cur.execute(
            """
            SELECT e.id, e.name, e.election_date,
                   (SELECT array_agg(o.id ORDER BY o.position) FROM options o
                     WHERE o.election_id = e.id) AS option_ids,
                   (SELECT count(*) FROM precincts p WHERE p.election_id = e.id) AS precincts,
                   (SELECT count(*) FROM current_official_results r
                     WHERE r.election_id = e.id) AS precincts_with_official,
                   e.ballot_template IS NOT NULL AS has_ballot_template
            FROM elections e WHERE e.id = %s
            """,
            (election_id,),
        ).fetchone()


def upsert_election(
    conn: psycopg.Connection,
    definition: ElectionDefinition,
    ballot_template_json: str | None,
    reference_sha256: str | None,
    protocol_template_json: str | None,
) -> None:
    """Create the election or update it; templates not given keep their stored value."""
    conn.execute(
        """
        INSERT INTO elections (id, name, election_date, definition, ballot_template,
                               ballot_reference_sha256, protocol_template)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (id) DO UPDATE SET
            name = EXCLUDED.name, election_date = EXCLUDED.election_date,
            definition = EXCLUDED.definition,
            ballot_template = coalesce(EXCLUDED.ballot_template, elections.ballot_template),
            ballot_reference_sha256 = coalesce(EXCLUDED.ballot_reference_sha256,
                                               elections.ballot_reference_sha256),
            protocol_template = coalesce(EXCLUDED.protocol_template,
                                         elections.protocol_template),
            updated_at = now()
        """,
        (
            definition.id,
            definition.name,
            definition.date,
            definition.model_dump_json(),
            ballot_template_json,
            reference_sha256,
            protocol_template_json,
        ),
    )


def delete_election(conn: psycopg.Connection, election_id: str) -> None:
    """Remove the election and every row of this domain that belongs to it.

    Other domains' rows that refer to its precincts (submissions, tallies, flags,
    reports) must be cleared first, through their own repositories."""
    # The imports first: their rows also reference the precincts, which a single
    # cascading delete from elections would check before removing.
    conn.execute("DELETE FROM official_imports WHERE election_id = %s", (election_id,))
    conn.execute("DELETE FROM crowd_imports WHERE election_id = %s", (election_id,))
    conn.execute("DELETE FROM elections WHERE id = %s", (election_id,))


def insert_options(
    conn: psycopg.Connection, election_id: str, options: Sequence[OptionDefinition]
) -> None:
    """Store a new election's options in ballot order."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO options (election_id, id, label, position) VALUES (%s, %s, %s, %s)",
            [(election_id, o.id, o.label, i) for i, o in enumerate(options)],
        )


def update_option_labels(
    conn: psycopg.Connection, election_id: str, options: Sequence[OptionDefinition]
) -> None:
    """Relabel an election's options (their ids and order never change)."""
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE options SET label = %s WHERE election_id = %s AND id = %s",
            [(o.label, election_id, o.id) for o in options],
        )


def option_ids(conn: psycopg.Connection, election_id: str) -> list[str]:
    """The election's option ids in ballot order; ElectionNotFound when there is none."""
    ids = [
        row[0]
        for row in conn.execute(
            "SELECT id FROM options WHERE election_id = %s ORDER BY position", (election_id,)
        )
    ]
    if not ids:
        raise ElectionNotFound(election_id)
    return ids


def option_labels(conn: psycopg.Connection, election_id: str) -> dict[str, str]:
    """Option id -> label, in ballot order (empty for an unknown election)."""
    return dict(
        conn.execute(
            "SELECT id, label FROM options WHERE election_id = %s ORDER BY position",
            (election_id,),
        ).fetchall()
    )


# -- templates -----------------------------------------------------------------


def stored_ballot_template(conn: psycopg.Connection, election_id: str) -> StoredBallotTemplate:
    """The election's ballot template and reference image key; ElectionNotFound when
    there is no such election."""
    row = conn.execute(
        "SELECT ballot_template, ballot_reference_sha256 FROM elections WHERE id = %s",
        (election_id,),
    ).fetchone()
    if row is None:
        raise ElectionNotFound(election_id)
    return StoredBallotTemplate(row[0], row[1])


def ballot_template_json(conn: psycopg.Connection, election_id: str) -> dict[str, Any] | None:
    """The election's ballot template (None: it takes no ballot photos);
    ElectionNotFound when there is no such election."""
    return stored_ballot_template(conn, election_id).template


def protocol_template(conn: psycopg.Connection, election_id: str) -> dict[str, Any] | None:
    """The election's protocol template, or None when it has none."""
    row = conn.execute(
        "SELECT protocol_template FROM elections WHERE id = %s", (election_id,)
    ).fetchone()
    if row is None or not row[0]:
        return None
    template = row[0]
    return template if isinstance(template, dict) else json.loads(template)


def max_marks(conn: psycopg.Connection, election_id: str) -> int:
    """How many options a ballot may mark: the ballot template's ``max_marks``, or 1
    when there is no ballot template (or no such election)."""
    row = conn.execute(
        "SELECT coalesce((ballot_template->>'max_marks')::int, 1) FROM elections WHERE id = %s",
        (election_id,),
    ).fetchone()
    return 1 if row is None else int(row[0])


# -- precincts -----------------------------------------------------------------


def upsert_precincts(
    conn: psycopg.Connection, election_id: str, rows: Iterable[PrecinctRow]
) -> None:
    """Add new precincts and update known ones, in one statement over a staged copy."""
    # Precincts are only added or updated, never dropped: submissions and
    # official figures refer to them.
    conn.execute("DROP TABLE IF EXISTS pg_temp.incoming_precincts")
    conn.execute(
        "CREATE TEMP TABLE incoming_precincts (LIKE precincts INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY incoming_precincts (election_id, id, region, district, name, registered,"
            " attributes) FROM STDIN"
        ) as copy,
    ):
        for p in rows:
            copy.write_row(
                (
                    election_id,
                    p.precinct_id,
                    p.region,
                    p.district,
                    p.name,
                    p.registered,
                    json.dumps(p.attributes, ensure_ascii=False),
                )
            )
    conn.execute(
        """
        INSERT INTO precincts SELECT * FROM incoming_precincts
        ON CONFLICT (election_id, id) DO UPDATE SET
            region = EXCLUDED.region, district = EXCLUDED.district, name = EXCLUDED.name,
            registered = EXCLUDED.registered, attributes = EXCLUDED.attributes
        """
    )


def precincts(conn: psycopg.Connection, election_id: str) -> list[PrecinctRef]:
    """The election's precincts, ordered by id."""
    with conn.cursor(row_factory=class_row(PrecinctRef)) as cur:
        return cur.execute(
            "SELECT id AS precinct_id, region, district, coalesce(name, '') AS name"
            " FROM precincts WHERE election_id = %s ORDER BY id",
            (election_id,),
        ).fetchall()


def precinct_ids(conn: psycopg.Connection, election_id: str) -> set[str]:
    """The ids of the election's precincts."""
    return {
        row[0]
        for row in conn.execute("SELECT id FROM precincts WHERE election_id = %s", (election_id,))
    }


def precinct_exists(conn: psycopg.Connection, election_id: str, precinct_id: str) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM precincts WHERE election_id = %s AND id = %s)",
        (election_id, precinct_id),
    ).fetchone()
    return bool(row and row[0])


# -- official results ----------------------------------------------------------


def create_official_import(
    conn: psycopg.Connection, election_id: str, filename: str, sha256: str, row_count: int
) -> ImportIds:
    """Record a new official import as the current one; the previous current import
    (kept, with its figures) is the one it replaces."""
    previous = conn.execute(
        "UPDATE official_imports SET is_current = false"
        " WHERE election_id = %s AND is_current RETURNING id",
        (election_id,),
    ).fetchone()
    replaced = int(previous[0]) if previous else None
    created = conn.execute(
        """
        INSERT INTO official_imports (election_id, filename, sha256, row_count, replaces)
        VALUES (%s, %s, %s, %s, %s) RETURNING id
        """,
        (election_id, filename, sha256, row_count, replaced),
    ).fetchone()
    assert created is not None
    return ImportIds(int(created[0]), replaced)


def copy_official_results(
    conn: psycopg.Connection, election_id: str, import_id: int, rows: Iterable[OfficialRow]
) -> None:
    """Store each protocol's lines (a line the file did not give is NULL)."""
    columns = sql.SQL(", ").join(map(sql.Identifier, PROTOCOL_LINES))
    statement = sql.SQL(
        "COPY official_results (import_id, election_id, precinct_id, {}) FROM STDIN"
    ).format(columns)
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for r in rows:
            copy.write_row(
                (import_id, election_id, r.precinct_id, *(r.lines.get(c) for c in PROTOCOL_LINES))
            )


def copy_official_votes(
    conn: psycopg.Connection, import_id: int, rows: Iterable[OfficialRow]
) -> None:
    """Store each protocol's votes per option (NULL where not published or readable)."""
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY official_votes (import_id, precinct_id, option_id, votes) FROM STDIN"
        ) as copy,
    ):
        for r in rows:
            for option, votes in r.votes.items():
                copy.write_row((import_id, r.precinct_id, option, votes))


def official_votes(conn: psycopg.Connection, election_id: str) -> dict[tuple[str, str], int | None]:
    """Current official votes per (precinct, option)."""
    rows = conn.execute(
        "SELECT precinct_id, option_id, votes FROM current_official_votes WHERE election_id = %s",
        (election_id,),
    )
    return {(p, o): v for p, o, v in rows}


def official_protocols(
    conn: psycopg.Connection, election_id: str
) -> dict[str, dict[str, int | None]]:
    """Each known protocol's lines and option votes, by official-results/1 column."""
    columns = sql.SQL(", ").join(map(sql.Identifier, PROTOCOL_LINES))
    query = sql.SQL(
        "SELECT precinct_id, {} FROM current_official_results WHERE election_id = %s"
    ).format(columns)
    protocols: dict[str, dict[str, int | None]] = {
        row[0]: dict(zip(PROTOCOL_LINES, row[1:], strict=True))
        for row in conn.execute(query, (election_id,))
    }
    for (precinct, option), votes in official_votes(conn, election_id).items():
        protocols[precinct][option] = votes
    return protocols


# -- crowd tallies -------------------------------------------------------------


def create_crowd_import(
    conn: psycopg.Connection,
    election_id: str,
    source: str,
    level: EvidenceLevel,
    filename: str,
    sha256: str,
    row_count: int,
) -> ImportIds:
    """Record a source's new import as its current one; the source's previous
    current import (kept, with its counts) is the one it replaces."""
    previous = conn.execute(
        "UPDATE crowd_imports SET is_current = false"
        " WHERE election_id = %s AND source = %s AND is_current RETURNING id",
        (election_id, source),
    ).fetchone()
    replaced = int(previous[0]) if previous else None
    created = conn.execute(
        """
        INSERT INTO crowd_imports (election_id, source, level, filename, sha256, row_count,
                                   replaces)
        VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id
        """,
        (election_id, source, level, filename, sha256, row_count, replaced),
    ).fetchone()
    assert created is not None
    return ImportIds(int(created[0]), replaced)


def copy_crowd_counts(
    conn: psycopg.Connection, election_id: str, import_id: int, rows: Iterable[CrowdRow]
) -> None:
    """Store a source's counts; a cell left empty in the file is no count at all."""
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY crowd_counts (import_id, election_id, precinct_id, option_id, votes) FROM STDIN"
        ) as copy,
    ):
        for row in rows:
            for option, votes in row.votes.items():
                if votes is not None:
                    copy.write_row((import_id, election_id, row.precinct_id, option, votes))


def crowd_sources(
    conn: psycopg.Connection, election_id: str
) -> dict[str, tuple[EvidenceLevel, dict[tuple[str, str], int]]]:
    """Imported crowd sources: name -> (level, votes per (precinct, option)), in
    source-name order (the order of the sources' columns in precincts.csv)."""
    sources: dict[str, tuple[EvidenceLevel, dict[tuple[str, str], int]]] = {}
    for source, level, precinct, option, votes in conn.execute(
        "SELECT source, level, precinct_id, option_id, votes FROM current_crowd_counts"
        " WHERE election_id = %s AND votes IS NOT NULL ORDER BY source",
        (election_id,),
    ):
        sources.setdefault(source, (EvidenceLevel(level), {}))[1][(precinct, option)] = votes
    return sources


def current_crowd_imports(conn: psycopg.Connection, election_id: str) -> list[CrowdImportRef]:
    """Each source's current import, ordered by source."""
    return [
        CrowdImportRef(source, EvidenceLevel(level), row_count)
        for source, level, row_count in conn.execute(
            "SELECT source, level, row_count FROM crowd_imports"
            " WHERE election_id = %s AND is_current ORDER BY source",
            (election_id,),
        )
    ]
