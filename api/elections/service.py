"""Elections and official figures: loading definition folders, importing results."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import psycopg
from psycopg.rows import class_row
from pydantic import BaseModel

from api.elections.formats import (
    FormatError,
    OfficialRow,
    PrecinctRow,
    Problem,
    parse_election_json,
    parse_official_csv,
    parse_precincts_csv,
)
from infra.storage import PhotoStore
from ocr.template import LoadedTemplate, TemplateError, load_template


class ElectionNotFound(LookupError):
    pass


class Election(BaseModel):
    id: str
    name: str
    election_date: date | None
    option_ids: list[str]
    precincts: int
    precincts_with_official: int
    has_ballot_template: bool


@dataclass(frozen=True)
class LoadResult:
    election_id: str
    created: bool
    precincts: int
    official_rows: int | None


@dataclass(frozen=True)
class ImportResult:
    election_id: str
    import_id: int
    rows: int
    replaced_import_id: int | None


MAX_CSV_BYTES = 1 << 30  # a gzip file may not unpack to more than this


def _find(folder: Path, name: str) -> Path | None:
    """``name`` or its gzip-compressed ``name.gz``."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def unpack(data: bytes, filename: str) -> bytes:
    """The content of a file as given, gunzipped when its name ends in .gz."""
    if not filename.endswith(".gz"):
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            content = f.read(MAX_CSV_BYTES + 1)
    except (OSError, EOFError) as exc:
        raise FormatError([Problem(Path(filename).name, f"not a valid gzip file: {exc}")]) from exc
    if len(content) > MAX_CSV_BYTES:
        raise FormatError([Problem(Path(filename).name, "unpacks to more than 1 GiB")])
    return content


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError([Problem(path.name, f"not UTF-8 text (byte {exc.start})")]) from exc


def load_election(conn: psycopg.Connection, folder: Path, store: PhotoStore) -> LoadResult:
    """Create or update an election from an ``election/1`` folder, all or nothing."""
    if not (folder / "election.json").is_file():
        raise FormatError([Problem(str(folder), "no election.json in this folder")])
    definition = parse_election_json(_read_text(folder / "election.json"))
    precincts_path = _find(folder, "precincts.csv")
    if precincts_path is None:
        raise FormatError([Problem(str(folder), "no precincts.csv in this folder")])
    precincts = parse_precincts_csv(
        decode(unpack(precincts_path.read_bytes(), precincts_path.name), precincts_path.name),
        file=precincts_path.name,
    )

    ballot_json: str | None = None
    reference: bytes | None = None
    if (folder / "ballot").is_dir():
        try:
            loaded = load_template(folder / "ballot")
        except TemplateError as exc:
            raise FormatError([Problem("ballot/template.json", str(exc))]) from exc
        _check_template_matches(loaded, definition.id, definition.option_ids)
        ballot_json = loaded.template.model_dump_json()
        reference = (loaded.folder / loaded.template.reference_image).read_bytes()

    protocol_json: str | None = None
    if (folder / "protocol" / "template.json").is_file():
        try:
            protocol = json.loads(_read_text(folder / "protocol" / "template.json"))
        except json.JSONDecodeError as exc:
            raise FormatError(
                [Problem("protocol/template.json", f"not valid JSON: {exc.msg}", exc.lineno)]
            ) from exc
        if not isinstance(protocol, dict) or protocol.get("format") != "protocol-template/1":
            raise FormatError(
                [Problem("protocol/template.json", "field 'format': must be 'protocol-template/1'")]
            )
        protocol_json = json.dumps(protocol, ensure_ascii=False)

    official: list[OfficialRow] | None = None
    official_bytes = b""
    official_name = "official.csv"
    if (official_path := _find(folder, "official.csv")) is not None:
        official_name = official_path.name
        official_bytes = official_path.read_bytes()
        official = parse_official_csv(
            decode(unpack(official_bytes, official_name), official_name),
            definition.option_ids,
            {p.precinct_id for p in precincts},
            file=official_name,
        )

    reference_sha = hashlib.sha256(reference).hexdigest() if reference is not None else None
    with conn.transaction():
        lock_election(conn, definition.id)
        existing = conn.execute(
            "SELECT array_agg(id ORDER BY position) FROM options WHERE election_id = %s",
            (definition.id,),
        ).fetchone()
        existing_options = existing[0] if existing else None
        if existing_options and existing_options != definition.option_ids:
            raise FormatError(
                [
                    Problem(
                        "election.json",
                        "field 'options': the options of an existing election cannot change "
                        f"(stored: {', '.join(existing_options)})",
                    )
                ]
            )
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
                ballot_json,
                reference_sha,
                protocol_json,
            ),
        )
        if not existing_options:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO options (election_id, id, label, position)"
                    " VALUES (%s, %s, %s, %s)",
                    [(definition.id, o.id, o.label, i) for i, o in enumerate(definition.options)],
                )
        else:
            with conn.cursor() as cur:
                cur.executemany(
                    "UPDATE options SET label = %s WHERE election_id = %s AND id = %s",
                    [(o.label, definition.id, o.id) for o in definition.options],
                )
        _upsert_precincts(conn, definition.id, precincts)
        official_result = None
        if official is not None:
            official_result = _store_official(
                conn, definition.id, official, official_name, official_bytes
            )
        if reference is not None:
            # Last, when nothing else can refuse the load: a refused folder stores nothing.
            store.put(reference)
    return LoadResult(
        election_id=definition.id,
        created=not existing_options,
        precincts=len(precincts),
        official_rows=official_result.rows if official_result else None,
    )


def _check_template_matches(
    loaded: LoadedTemplate, election_id: str, option_ids: list[str]
) -> None:
    template = loaded.template
    if template.election != election_id:
        raise FormatError(
            [
                Problem(
                    "ballot/template.json",
                    f"field 'election': {template.election!r} is not this election "
                    f"({election_id!r})",
                )
            ]
        )
    unknown = [o.id for o in template.options if o.id not in option_ids]
    if unknown:
        raise FormatError(
            [
                Problem(
                    "ballot/template.json",
                    f"field 'options': {', '.join(unknown)} not among the election's options",
                )
            ]
        )


def decode(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError([Problem(file, f"not UTF-8 text (byte {exc.start})")]) from exc


def _upsert_precincts(conn: psycopg.Connection, election_id: str, rows: list[PrecinctRow]) -> None:
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


def import_official(
    conn: psycopg.Connection, election_id: str, data: bytes, filename: str
) -> ImportResult:
    """Import ``official-results/1`` figures, replacing (and keeping) earlier ones."""
    text = decode(unpack(data, filename), filename)
    with conn.transaction():
        lock_election(conn, election_id)
        options = option_ids(conn, election_id)
        known = {
            row[0]
            for row in conn.execute(
                "SELECT id FROM precincts WHERE election_id = %s", (election_id,)
            )
        }
        rows = parse_official_csv(text, options, known, file=filename)
        return _store_official(conn, election_id, rows, filename, data)


def _store_official(
    conn: psycopg.Connection,
    election_id: str,
    rows: list[OfficialRow],
    filename: str,
    data: bytes,
) -> ImportResult:
    previous = conn.execute(
        "UPDATE official_imports SET is_current = false"
        " WHERE election_id = %s AND is_current RETURNING id",
        (election_id,),
    ).fetchone()
    replaced = previous[0] if previous else None
    import_row = conn.execute(
        """
        INSERT INTO official_imports (election_id, filename, sha256, row_count, replaces)
        VALUES (%s, %s, %s, %s, %s) RETURNING id
        """,
        (election_id, Path(filename).name, hashlib.sha256(data).hexdigest(), len(rows), replaced),
    ).fetchone()
    assert import_row is not None
    import_id = int(import_row[0])
    columns = (
        "registered",
        "ballots_issued",
        "ballots_cast",
        "invalid",
        "ballots_issued_early",
        "ballots_issued_home",
        "ballots_received",
        "ballots_cancelled",
    )
    with conn.cursor() as cur:
        with cur.copy(
            "COPY official_results (import_id, election_id, precinct_id, "
            + ", ".join(columns)
            + ") FROM STDIN"
        ) as copy:
            for r in rows:
                copy.write_row(
                    (import_id, election_id, r.precinct_id, *(r.lines.get(c) for c in columns))
                )
        with cur.copy(
            "COPY official_votes (import_id, precinct_id, option_id, votes) FROM STDIN"
        ) as copy:
            for r in rows:
                for option, votes in r.votes.items():
                    copy.write_row((import_id, r.precinct_id, option, votes))
    return ImportResult(election_id, import_id, len(rows), replaced)


def lock_election(conn: psycopg.Connection, election_id: str) -> None:
    """Serialise loads and imports of one election (until the transaction ends)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 2))", (election_id,))


def option_ids(conn: psycopg.Connection, election_id: str) -> list[str]:
    ids = [
        row[0]
        for row in conn.execute(
            "SELECT id FROM options WHERE election_id = %s ORDER BY position", (election_id,)
        )
    ]
    if not ids:
        raise ElectionNotFound(f"no election {election_id!r}")
    return ids


def get_election(conn: psycopg.Connection, election_id: str) -> Election:
    with conn.cursor(row_factory=class_row(Election)) as cur:
        election = cur.execute(
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
    if election is None:
        raise ElectionNotFound(f"no election {election_id!r}")
    return election


def ballot_template(
    conn: psycopg.Connection, election_id: str, store: PhotoStore, cache_dir: Path
) -> LoadedTemplate:
    row = conn.execute(
        "SELECT ballot_template, ballot_reference_sha256 FROM elections WHERE id = %s",
        (election_id,),
    ).fetchone()
    if row is None:
        raise ElectionNotFound(f"no election {election_id!r}")
    if row[0] is None:
        raise ElectionNotFound(f"election {election_id!r} has no ballot template")
    template_json = json.dumps(row[0], ensure_ascii=False, sort_keys=True)
    # The reader takes a template folder; rebuild it once per template version.
    digest = hashlib.sha256(f"{template_json}\n{row[1]}".encode()).hexdigest()[:16]
    folder = cache_dir / digest
    if not folder.exists():
        # Built aside and renamed into place: workers racing here never read half a file.
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".build-"))
        (staging / row[0]["reference_image"]).write_bytes(store.get(row[1]))
        (staging / "template.json").write_text(template_json, encoding="utf-8")
        try:
            staging.rename(folder)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another worker got there first
    return _load_cached(folder)


@lru_cache(maxsize=16)
def _load_cached(folder: Path) -> LoadedTemplate:
    return load_template(folder)
