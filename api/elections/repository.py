"""Every SQL statement on the elections domain's tables.

The tables: ``elections``, ``options``, ``precincts``, ``official_imports``,
``official_results``, ``official_votes`` (views ``current_official_results``,
``current_official_votes``), ``crowd_imports`` and ``crowd_counts`` (view
``current_crowd_counts``). Other domains read them only through these functions.

Every function runs in the caller's transaction; none opens or commits one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import date
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
    """An election's ballot (or protocol) template and the photo-store key of its
    reference image."""

    template: dict[str, Any] | None  # None: the election takes no such photos
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
    protocol_reference_sha256: str | None = None,
) -> None:
    """Create the election or update it; templates not given keep their stored value
    (a template and its reference image are given, or kept, together)."""
    conn.execute(
        """
        INSERT INTO elections (id, name, election_date, definition, ballot_template,
                               ballot_reference_sha256, protocol_template,
                               protocol_reference_sha256)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (id) DO UPDATE SET
            name = EXCLUDED.name, election_date = EXCLUDED.election_date,
            definition = EXCLUDED.definition,
            ballot_template = coalesce(EXCLUDED.ballot_template, elections.ballot_template),
            ballot_reference_sha256 = coalesce(EXCLUDED.ballot_reference_sha256,
                                               elections.ballot_reference_sha256),
            protocol_template = coalesce(EXCLUDED.protocol_template,
                                         elections.protocol_template),
            protocol_reference_sha256 = CASE WHEN EXCLUDED.protocol_template IS NULL
                THEN elections.protocol_reference_sha256
                ELSE EXCLUDED.protocol_reference_sha256 END,
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
            protocol_reference_sha256,
        ),
    )


def analyse(conn: psycopg.Connection) -> None:
    """Refresh the planner's statistics of the tables a load fills (a load adds
    thousands of rows at once; until autovacuum's next pass the planner would take
    the election for a handful of rows and join them row by row: the seeded
    election's station list took 580 ms instead of 8)."""
    conn.execute("ANALYZE precincts, official_imports, official_results, official_votes")


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


def stored_protocol_template(conn: psycopg.Connection, election_id: str) -> StoredBallotTemplate:
    """The election's protocol template and its reference image key (both None: it
    has none); ElectionNotFound when there is no such election."""
    row = conn.execute(
        "SELECT protocol_template, protocol_reference_sha256 FROM elections WHERE id = %s",
        (election_id,),
    ).fetchone()
    if row is None:
        raise ElectionNotFound(election_id)
    template = row[0]
    if isinstance(template, str):
        template = json.loads(template)
    return StoredBallotTemplate(template or None, row[1])


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


# --- public and analysts ---------------------------------------------------------
#
# What the public pages, the map and the analysts' query API read of an election:
# its stations with their place, official figures summed by region, one station's
# protocol and crowd counts, the station search and the analysts' keyset pages.


class PrecinctPlace(NamedTuple):
    """A station with where it is (the ``address``, ``latitude`` and ``longitude``
    attributes of precincts.csv, None where the file gave none or an unreadable
    one) and whether it has a current official protocol."""

    precinct_id: str
    region: str
    district: str
    name: str
    registered: int | None
    address: str | None
    latitude: float | None
    longitude: float | None
    has_official: bool


class ElectionRef(NamedTuple):
    """An election as a list of elections names it."""

    election_id: str
    name: str
    election_date: date | None


class SearchToken(NamedTuple):
    """One word of a station search: ``number`` is set when the word is a station
    number (digits), ``pattern`` is the word as an escaped ILIKE substring pattern."""

    number: int | None
    pattern: str


def _coordinate(value: object) -> float | None:
    try:
        number = float(str(value))
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _place(row: Sequence[Any]) -> PrecinctPlace:
    return PrecinctPlace(
        precinct_id=row[0],
        region=row[1],
        district=row[2],
        name=row[3],
        registered=row[4],
        address=row[5] or None,
        latitude=_coordinate(row[6]),
        longitude=_coordinate(row[7]),
        has_official=bool(row[8]),
    )


_PLACE_COLUMNS = """
    p.id, p.region, p.district, coalesce(p.name, ''), p.registered,
    p.attributes->>'address', p.attributes->>'latitude', p.attributes->>'longitude',
    r.precinct_id IS NOT NULL
"""
# The stations with a current protocol, joined once rather than looked up per row
# (5,767 stations: 8 ms once the tables are analysed, see ``analyse``).
_WITH_PROTOCOL = """
    precincts p LEFT JOIN (
        SELECT r.precinct_id FROM official_results r
        JOIN official_imports i ON i.id = r.import_id AND i.is_current
        WHERE i.election_id = %s
    ) r ON r.precinct_id = p.id
"""


def latest_election(conn: psycopg.Connection) -> ElectionRef | None:
    """The latest election: by date (an election without one counts as oldest), then
    by when it was loaded; None when there is none."""
    row = conn.execute(
        "SELECT id, name, election_date FROM elections"
        " ORDER BY election_date DESC NULLS LAST, created_at DESC, id LIMIT 1"
    ).fetchone()
    return None if row is None else ElectionRef(*row)


def elections_list(conn: psycopg.Connection) -> list[ElectionRef]:
    """Every election, latest first (the order of ``latest_election``)."""
    return [
        ElectionRef(*row)
        for row in conn.execute(
            "SELECT id, name, election_date FROM elections"
            " ORDER BY election_date DESC NULLS LAST, created_at DESC, id"
        )
    ]


def precinct_places(
    conn: psycopg.Connection, election_id: str, region: str | None = None
) -> list[PrecinctPlace]:
    """The election's stations (of one region when given), ordered by region,
    district and id."""
    query = f"SELECT {_PLACE_COLUMNS} FROM {_WITH_PROTOCOL} WHERE p.election_id = %s"
    params: list[Any] = [election_id, election_id]
    if region is not None:
        query += " AND p.region = %s"
        params.append(region)
    query += " ORDER BY p.region, p.district, p.id"
    return [_place(row) for row in conn.execute(query, params)]


def precinct_place(
    conn: psycopg.Connection, election_id: str, precinct_id: str
) -> PrecinctPlace | None:
    """One station, or None when the election has none of that id."""
    row = conn.execute(
        f"SELECT {_PLACE_COLUMNS} FROM {_WITH_PROTOCOL} WHERE p.election_id = %s AND p.id = %s",
        (election_id, election_id, precinct_id),
    ).fetchone()
    return None if row is None else _place(row)


def regions_and_districts(conn: psycopg.Connection, election_id: str) -> dict[str, set[str]]:
    """Region -> its districts, for checking a filter's names."""
    found: dict[str, set[str]] = {}
    for region, district in conn.execute(
        "SELECT DISTINCT region, district FROM precincts WHERE election_id = %s",
        (election_id,),
    ):
        found.setdefault(region, set()).add(district)
    return found


def official_votes_by_region(
    conn: psycopg.Connection, election_id: str
) -> dict[str, dict[str, int]]:
    """Region -> option -> the sum of its current protocols' votes (a vote not
    published counts as none)."""
    totals: dict[str, dict[str, int]] = {}
    for region, option, votes in conn.execute(
        """
        SELECT p.region, v.option_id, sum(coalesce(v.votes, 0))::bigint
        FROM current_official_votes v
        JOIN precincts p ON p.election_id = v.election_id AND p.id = v.precinct_id
        WHERE v.election_id = %s
        GROUP BY p.region, v.option_id
        """,
        (election_id,),
    ):
        totals.setdefault(region, {})[option] = int(votes)
    return totals


def official_protocols_of(
    conn: psycopg.Connection, election_id: str, precinct_ids: Sequence[str]
) -> dict[str, dict[str, int | None]]:
    """The current protocols of these stations (those that have one): lines and option
    votes by official-results/1 column."""
    columns = sql.SQL(", ").join(sql.Identifier("r", c) for c in PROTOCOL_LINES)
    query = sql.SQL(
        "SELECT r.precinct_id, {} FROM current_official_results r"
        " WHERE r.election_id = %s AND r.precinct_id = ANY(%s)"
    ).format(columns)
    ids = list(precinct_ids)
    protocols: dict[str, dict[str, int | None]] = {
        row[0]: dict(zip(PROTOCOL_LINES, row[1:], strict=True))
        for row in conn.execute(query, (election_id, ids))
    }
    for precinct, option, votes in conn.execute(
        "SELECT v.precinct_id, v.option_id, v.votes FROM current_official_votes v"
        " JOIN options o ON o.election_id = v.election_id AND o.id = v.option_id"
        " WHERE v.election_id = %s AND v.precinct_id = ANY(%s) ORDER BY o.position",
        (election_id, ids),
    ):
        protocols[precinct][option] = votes
    return protocols


def crowd_counts_of(
    conn: psycopg.Connection, election_id: str, precinct_id: str
) -> dict[str, tuple[EvidenceLevel, dict[str, int]]]:
    """One station's current imported crowd counts: source -> (level, votes per
    option), in source order."""
    sources: dict[str, tuple[EvidenceLevel, dict[str, int]]] = {}
    for source, level, option, votes in conn.execute(
        "SELECT source, level, option_id, votes FROM current_crowd_counts"
        " WHERE election_id = %s AND precinct_id = %s AND votes IS NOT NULL"
        " ORDER BY source",
        (election_id, precinct_id),
    ):
        sources.setdefault(source, (EvidenceLevel(level), {}))[1][option] = votes
    return sources


def search_precincts(
    conn: psycopg.Connection,
    election_id: str,
    query: str,
    tokens: Sequence[SearchToken],
    limit: int,
) -> list[PrecinctPlace]:
    """Stations matching every token: a number token matches the station's number
    (the last number of its id, or "№ N" in its name) or its address; any token
    matches a substring of the id, name, address, district or region (case
    ignored). The station whose id is the whole query first, then number matches,
    then by region, district and id."""
    conditions: list[sql.Composable] = []
    rank: list[sql.Composable] = [sql.SQL("CASE WHEN lower(p.id) = lower(%s) THEN 0 ELSE 1 END")]
    params: list[Any] = [election_id, election_id]
    rank_params: list[Any] = [query.strip()]
    for token in tokens:
        text_match = sql.SQL(
            "(p.id ILIKE %s OR p.name ILIKE %s OR p.attributes->>'address' ILIKE %s"
            " OR p.district ILIKE %s OR p.region ILIKE %s)"
        )
        if token.number is not None:
            number_match = sql.SQL(
                "(substring(p.id from '(\\d+)$')::numeric = %s"
                " OR substring(p.name from '№\\s*(\\d+)')::numeric = %s)"
            )
            conditions.append(
                sql.SQL("({} OR p.attributes->>'address' ILIKE %s)").format(number_match)
            )
            params += [token.number, token.number, token.pattern]
            rank.append(sql.SQL("CASE WHEN {} THEN 0 ELSE 1 END").format(number_match))
            rank_params += [token.number, token.number]
        else:
            conditions.append(text_match)
            params += [token.pattern] * 5
    if not conditions:
        return []
    order = sql.SQL(" + ").join(rank)
    statement = sql.SQL(
        "SELECT {columns} FROM {source} WHERE p.election_id = %s AND {where}"
        " ORDER BY {order}, p.region, p.district, p.id LIMIT %s"
    ).format(
        columns=sql.SQL(_PLACE_COLUMNS),
        source=sql.SQL(_WITH_PROTOCOL),
        where=sql.SQL(" AND ").join(conditions),
        order=order,
    )
    return [_place(row) for row in conn.execute(statement, [*params, *rank_params, limit])]


def precinct_places_page(
    conn: psycopg.Connection,
    election_id: str,
    *,
    region: str | None,
    district: str | None,
    only: Sequence[str] | None,
    excluding: Sequence[str] | None,
    has_official: bool | None,
    after: str | None,
    limit: int,
) -> list[PrecinctPlace]:
    """One keyset page of the election's stations in id order: those after ``after``,
    of the region and district when given, among ``only`` and not among
    ``excluding`` when given, with or without a current protocol when told."""
    conditions: list[sql.Composable] = [sql.SQL("p.election_id = %s")]
    params: list[Any] = [election_id, election_id]
    if region is not None:
        conditions.append(sql.SQL("p.region = %s"))
        params.append(region)
    if district is not None:
        conditions.append(sql.SQL("p.district = %s"))
        params.append(district)
    if only is not None:
        conditions.append(sql.SQL("p.id = ANY(%s)"))
        params.append(list(only))
    if excluding:
        conditions.append(sql.SQL("NOT (p.id = ANY(%s))"))
        params.append(list(excluding))
    if has_official is not None:
        conditions.append(
            sql.SQL("r.precinct_id IS {} NULL").format(sql.SQL("NOT" if has_official else ""))
        )
    if after is not None:
        conditions.append(sql.SQL("p.id > %s"))
        params.append(after)
    query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY p.id LIMIT %s").format(
        sql.SQL(_PLACE_COLUMNS), sql.SQL(_WITH_PROTOCOL), sql.SQL(" AND ").join(conditions)
    )
    return [_place(row) for row in conn.execute(query, [*params, limit])]


def precinct_regions(
    conn: psycopg.Connection, election_id: str, precinct_ids: Sequence[str]
) -> dict[str, tuple[str, str]]:
    """Station id -> (region, district), for these stations."""
    return {
        pid: (region, district)
        for pid, region, district in conn.execute(
            "SELECT id, region, district FROM precincts WHERE election_id = %s AND id = ANY(%s)",
            (election_id, list(precinct_ids)),
        )
    }


# --- review ---


def elections_newest_first(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(id, name) of every election, the newest first (by date, then by creation)."""
    rows = conn.execute(
        "SELECT id, name FROM elections ORDER BY election_date DESC NULLS LAST, created_at DESC, id"
    ).fetchall()
    return [(str(i), str(n)) for i, n in rows]


def election_places(conn: psycopg.Connection, election_id: str) -> list[tuple[str, str]]:
    """Every (region, district) of the election's precincts, sorted."""
    rows = conn.execute(
        "SELECT DISTINCT region, district FROM precincts WHERE election_id = %s ORDER BY 1, 2",
        (election_id,),
    ).fetchall()
    return [(str(r), str(d)) for r, d in rows]


def precinct_ids_in(
    conn: psycopg.Connection, election_id: str, region: str | None, district: str | None
) -> list[str]:
    """The ids of the election's precincts in ``region`` and ``district`` (None: any)."""
    rows = conn.execute(
        "SELECT id FROM precincts WHERE election_id = %s"
        " AND (%s::text IS NULL OR region = %s) AND (%s::text IS NULL OR district = %s)"
        " ORDER BY id",
        (election_id, region, region, district, district),
    ).fetchall()
    return [str(row[0]) for row in rows]


def precinct_refs(
    conn: psycopg.Connection, election_id: str, ids: Sequence[str]
) -> dict[str, PrecinctRef]:
    """The named precincts of the election, by id (unknown ids are left out)."""
    with conn.cursor(row_factory=class_row(PrecinctRef)) as cur:
        rows = cur.execute(
            "SELECT id AS precinct_id, region, district, coalesce(name, '') AS name"
            " FROM precincts WHERE election_id = %s AND id = ANY(%s)",
            (election_id, list(ids)),
        ).fetchall()
    return {row.precinct_id: row for row in rows}


def station_protocol(
    conn: psycopg.Connection, election_id: str, precinct_id: str
) -> dict[str, int | None] | None:
    """One station's current protocol (lines and option votes), None when unknown."""
    columns = sql.SQL(", ").join(map(sql.Identifier, PROTOCOL_LINES))
    query = sql.SQL(
        "SELECT {} FROM current_official_results WHERE election_id = %s AND precinct_id = %s"
    ).format(columns)
    row = conn.execute(query, (election_id, precinct_id)).fetchone()
    if row is None:
        return None
    protocol: dict[str, int | None] = dict(zip(PROTOCOL_LINES, row, strict=True))
    for option, votes in conn.execute(
        "SELECT option_id, votes FROM current_official_votes"
        " WHERE election_id = %s AND precinct_id = %s",
        (election_id, precinct_id),
    ):
        protocol[str(option)] = votes
    return protocol


def station_crowd_counts(
    conn: psycopg.Connection, election_id: str, precinct_id: str
) -> dict[str, tuple[EvidenceLevel, dict[str, int]]]:
    """One station's imported crowd counts: source -> (level, votes per option)."""
    sources: dict[str, tuple[EvidenceLevel, dict[str, int]]] = {}
    for source, level, option, votes in conn.execute(
        "SELECT source, level, option_id, votes FROM current_crowd_counts"
        " WHERE election_id = %s AND precinct_id = %s AND votes IS NOT NULL ORDER BY source",
        (election_id, precinct_id),
    ):
        sources.setdefault(source, (EvidenceLevel(level), {}))[1][option] = votes
    return sources


# --- voters ---


def latest_photo_election(conn: psycopg.Connection) -> str | None:
    """The id of the most recent election that accepts ballot photos (it has a ballot
    template), by election date then load time; None when there is none."""
    row = conn.execute(
        """
        SELECT id FROM elections WHERE ballot_template IS NOT NULL
        ORDER BY election_date DESC NULLS LAST, created_at DESC LIMIT 1
        """
    ).fetchone()
    return None if row is None else str(row[0])
