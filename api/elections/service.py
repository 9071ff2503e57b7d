"""Elections and official figures: loading definition folders, importing results.

The rules live here; the SQL in ``api.elections.repository``. Every function
takes the caller's connection and never opens one. Loads and imports are all or
nothing: a file with any problem is refused whole, in one transaction, under
the election's advisory lock (``lock_election``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from api.elections import repository
from api.elections.formats import (
    FormatError,
    OfficialRow,
    Problem,
    decode,
    parse_election_json,
    parse_official_csv,
    parse_precincts_csv,
    unpack,
)
from api.elections.repository import lock_election, option_ids
from api.elections.schemas import Election, ElectionNotFound, ImportResult, LoadResult
from api.errors import Conflict, NotFound
from infra.progress import SILENT, Progress
from infra.storage import PhotoStore
from ocr.protocol_template import ProtocolTemplate, ProtocolTemplateError, load_protocol_template
from ocr.template import LoadedTemplate, TemplateError, load_template

__all__ = [
    "Election",
    "ElectionNotFound",
    "ImportResult",
    "LoadResult",
    "ballot_template",
    "get_election",
    "import_official",
    "load_election",
    "lock_election",
    "option_ids",
    "page_election",
]

T = TypeVar("T")


def page_election(conn: psycopg.Connection, election_id: str | None) -> str | None:
    """The election a page is about: the one asked for (NotFound when unknown), else
    the newest; None when there is none at all."""
    known = [eid for eid, _name in repository.elections_newest_first(conn)]
    if election_id:
        if election_id not in known:
            raise NotFound("election", f"unknown election {election_id!r}")
        return election_id
    return known[0] if known else None


def _find(folder: Path, name: str) -> Path | None:
    """``name`` or its gzip-compressed ``name.gz``."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError([Problem(path.name, f"not UTF-8 text (byte {exc.start})")]) from exc


def _reporting(rows: Sequence[T], progress: Progress) -> Iterator[T]:
    """The rows, advancing ``progress`` by one as each is taken."""
    for row in rows:
        yield row
        progress.advance()


def load_election(
    conn: psycopg.Connection, folder: Path, store: PhotoStore, progress: Progress = SILENT
) -> LoadResult:
    """Create or update an election from an ``election/1`` folder, all or nothing."""
    if not (folder / "election.json").is_file():
        raise FormatError([Problem(str(folder), "no election.json in this folder")])
    definition = parse_election_json(_read_text(folder / "election.json"))
    precincts_path = _find(folder, "precincts.csv")
    if precincts_path is None:
        raise FormatError([Problem(str(folder), "no precincts.csv in this folder")])
    progress.stage("parse precincts")
    precincts = parse_precincts_csv(
        decode(unpack(precincts_path.read_bytes(), precincts_path.name), precincts_path.name),
        file=precincts_path.name,
    )
    progress.update(len(precincts), len(precincts))

    ballot_json: str | None = None
    reference: bytes | None = None
    if (folder / "ballot").is_dir():
        progress.stage("read ballot template")
        try:
            loaded = load_template(folder / "ballot")
        except TemplateError as exc:
            raise FormatError([Problem("ballot/template.json", str(exc))]) from exc
        _check_template_matches(loaded, definition.id, definition.option_ids)
        ballot_json = loaded.template.model_dump_json()
        reference = (loaded.folder / loaded.template.reference_image).read_bytes()

    protocol_json: str | None = None
    protocol_reference: bytes | None = None
    if (folder / "protocol" / "template.json").is_file():
        progress.stage("read protocol template")
        try:
            protocol = load_protocol_template(folder / "protocol", definition.option_ids)
        except ProtocolTemplateError as exc:
            raise FormatError(
                [Problem("protocol/template.json", f"field '{exc.field}': {exc.problem}")]
            ) from exc
        if protocol.document.election != definition.id:
            raise FormatError(
                [
                    Problem(
                        "protocol/template.json",
                        f"field 'election': {protocol.document.election!r} is not this "
                        f"election ({definition.id!r})",
                    )
                ]
            )
        protocol_json = protocol.document.model_dump_json()
        protocol_reference = (folder / "protocol" / protocol.document.reference_image).read_bytes()

    official: list[OfficialRow] | None = None
    official_bytes = b""
    official_name = "official.csv"
    if (official_path := _find(folder, "official.csv")) is not None:
        progress.stage("parse official results")
        official_name = official_path.name
        official_bytes = official_path.read_bytes()
        official = parse_official_csv(
            decode(unpack(official_bytes, official_name), official_name),
            definition.option_ids,
            {p.precinct_id for p in precincts},
            file=official_name,
        )
        progress.update(len(official), len(official))

    reference_sha = hashlib.sha256(reference).hexdigest() if reference is not None else None
    with conn.transaction():
        lock_election(conn, definition.id)
        try:
            existing_options = option_ids(conn, definition.id)
        except ElectionNotFound:
            existing_options = []
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
        repository.upsert_election(
            conn,
            definition,
            ballot_json,
            reference_sha,
            protocol_json,
            hashlib.sha256(protocol_reference).hexdigest() if protocol_reference else None,
        )
        if not existing_options:
            repository.insert_options(conn, definition.id, definition.options)
        else:
            repository.update_option_labels(conn, definition.id, definition.options)
        progress.stage("store precincts", len(precincts))
        repository.upsert_precincts(conn, definition.id, _reporting(precincts, progress))
        official_result = None
        if official is not None:
            official_result = _store_official(
                conn, definition.id, official, official_name, official_bytes, progress
            )
        if reference is not None:
            # Last, when nothing else can refuse the load: a refused folder stores nothing.
            progress.stage("store ballot reference image")
            store.put(reference)
        if protocol_reference is not None:
            store.put(protocol_reference)
        repository.analyse(conn)
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


def import_official(
    conn: psycopg.Connection,
    election_id: str,
    data: bytes,
    filename: str,
    progress: Progress = SILENT,
) -> ImportResult:
    """Import ``official-results/1`` figures, replacing (and keeping) earlier ones."""
    text = decode(unpack(data, filename), filename)
    with conn.transaction():
        lock_election(conn, election_id)
        options = option_ids(conn, election_id)
        known = repository.precinct_ids(conn, election_id)
        progress.stage("parse official results")
        rows = parse_official_csv(text, options, known, file=filename)
        progress.update(len(rows), len(rows))
        result = _store_official(conn, election_id, rows, filename, data, progress)
        repository.analyse(conn)
        return result


def _store_official(
    conn: psycopg.Connection,
    election_id: str,
    rows: list[OfficialRow],
    filename: str,
    data: bytes,
    progress: Progress,
) -> ImportResult:
    ids = repository.create_official_import(
        conn, election_id, Path(filename).name, hashlib.sha256(data).hexdigest(), len(rows)
    )
    progress.stage("store protocols", len(rows))
    repository.copy_official_results(conn, election_id, ids.import_id, _reporting(rows, progress))
    progress.stage("store official votes", len(rows))
    repository.copy_official_votes(conn, ids.import_id, _reporting(rows, progress))
    return ImportResult(election_id, ids.import_id, len(rows), ids.replaced_import_id)


def photo_ballot_template(conn: psycopg.Connection, election_id: str) -> dict[str, Any]:
    """The ballot template (JSON) of an election that takes ballot photos: NotFound
    for an unknown election, Conflict for one without a ballot template (the voters'
    verification and the upload refuse both the same way)."""
    try:
        template = repository.ballot_template_json(conn, election_id)
    except ElectionNotFound:
        raise NotFound("election_id", f"unknown election {election_id!r}") from None
    if template is None:
        raise Conflict("election_id", f"election {election_id!r} does not accept ballot photos")
    return template


def get_election(conn: psycopg.Connection, election_id: str) -> Election:
    election = repository.find_election(conn, election_id)
    if election is None:
        raise ElectionNotFound(election_id)
    return election


def ballot_template(
    conn: psycopg.Connection, election_id: str, store: PhotoStore, cache_dir: Path
) -> LoadedTemplate:
    """The election's ballot template as the reader loads it, from a folder cached
    under ``cache_dir`` (rebuilt from the database once per template version)."""
    stored = repository.stored_ballot_template(conn, election_id)
    if stored.template is None or stored.reference_sha256 is None:
        raise ElectionNotFound(election_id, f"election {election_id!r} has no ballot template")
    return _load_cached(_cached_folder(stored.template, stored.reference_sha256, store, cache_dir))


def protocol_template(
    conn: psycopg.Connection, election_id: str, store: PhotoStore, cache_dir: Path
) -> ProtocolTemplate:
    """The election's protocol template as the protocol reader loads it, from a
    folder cached under ``cache_dir`` like ``ballot_template``'s."""
    stored = repository.stored_protocol_template(conn, election_id)
    if stored.template is None or stored.reference_sha256 is None:
        raise ElectionNotFound(
            election_id,
            f"election {election_id!r} has no protocol template (with its reference image:"
            " load the election folder again)",
        )
    folder = _cached_folder(stored.template, stored.reference_sha256, store, cache_dir)
    return _load_protocol_cached(folder, tuple(repository.option_ids(conn, election_id)))


def _cached_folder(
    template: dict[str, Any], reference_sha256: str, store: PhotoStore, cache_dir: Path
) -> Path:
    """A template folder (template.json and its reference image) for the readers,
    which take folders; built once per template version."""
    template_json = json.dumps(template, ensure_ascii=False, sort_keys=True)
    digest = hashlib.sha256(f"{template_json}\n{reference_sha256}".encode()).hexdigest()
    folder = cache_dir / digest[:16]
    if not folder.exists():
        # Built aside and renamed into place: workers racing here never read half a file.
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".build-"))
        reference = store.get(reference_sha256)
        (staging / template["reference_image"]).write_bytes(reference)
        (staging / "template.json").write_text(template_json, encoding="utf-8")
        try:
            staging.rename(folder)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another worker got there first
    return folder


@lru_cache(maxsize=16)
def _load_cached(folder: Path) -> LoadedTemplate:
    return load_template(folder)


@lru_cache(maxsize=16)
def _load_protocol_cached(folder: Path, option_ids: tuple[str, ...]) -> ProtocolTemplate:
    return load_protocol_template(folder, option_ids)
