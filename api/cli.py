"""The ``golos`` command: every operation of the platform."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer

from api.elections.formats import FormatError
from infra import db
from infra.pages import DEFAULT_LANGUAGE, LANGUAGES
from infra.progress import progress_bar
from infra.settings import get_settings
from infra.threads import one_thread_per_process
from tally.vocab import FlagKind

app = typer.Typer(
    help="Golos: crowdsourced verification of election results.", no_args_is_help=True
)
db_app = typer.Typer(help="The database (embedded PostgreSQL unless GOLOS_DATABASE_URL is set).")
election_app = typer.Typer(help="Elections.")
official_app = typer.Typer(help="Official results.")
crowd_app = typer.Typer(help="Crowd tallies from other platforms and data sets.")
ocr_app = typer.Typer(help="Reading photos.")
user_app = typer.Typer(help="Accounts of observers, analysts and admins.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail (hash-chained, append-only).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(election_app, name="election")
app.add_typer(official_app, name="official")
app.add_typer(crowd_app, name="crowd")
app.add_typer(ocr_app, name="ocr")
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def ensure_database() -> None:
    """Start the embedded cluster if it is the one in use, and migrate the schema."""
    from infra.migrate import ensure_database

    ensure_database(get_settings())


@db_app.command("start")
def db_start() -> None:
    """Start the embedded cluster (creating it on first use) and migrate."""
    ensure_database()
    typer.echo(f"database ready: {get_settings().dsn}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster."""
    from infra.pg import EmbeddedPostgres

    settings = get_settings()
    if not settings.embedded:
        raise _fail("GOLOS_DATABASE_URL is set: that database is not ours to stop")
    EmbeddedPostgres(settings.pg_dir).stop()
    typer.echo("stopped")


@db_app.command("status")
def db_status() -> None:
    """Say whether the embedded cluster is running."""
    from infra.pg import EmbeddedPostgres

    settings = get_settings()
    if not settings.embedded:
        typer.echo(f"external database: {settings.dsn.split('@')[-1]}")
        return
    typer.echo(EmbeddedPostgres(settings.pg_dir).status())


@db_app.command("warm-wal")
def db_warm_wal(
    size: Annotated[str, typer.Option(help="log to write, e.g. 512MB or 4GB")] = "1GB",
) -> None:
    """Before a peak (election morning): write SIZE of write-ahead log once and
    checkpoint, so that commits reuse log segments instead of waiting while new
    ones are created (infra/wal.py, infra/CAPACITY.md section 4)."""
    import psycopg

    from infra.pg import EmbeddedPostgres
    from infra.wal import keep_at_least, parse_size, warm_wal

    settings = get_settings()
    try:
        wanted = parse_size(size)
    except ValueError as exc:
        raise _fail(f"--size: {exc}", 2) from None
    if settings.embedded:
        ensure_database()
        dsn = EmbeddedPostgres(settings.pg_dir).admin_dsn()
    else:
        dsn = settings.dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        if settings.embedded and keep_at_least(conn, wanted):
            typer.echo(f"min_wal_size raised to {size} (the embedded cluster's configuration)")
        try:
            warmed = warm_wal(conn, wanted)
        except ValueError as exc:
            raise _fail(str(exc)) from None
    typer.echo(
        f"wrote {warmed.written // 1024**2} MB of log ({warmed.segments} segments);"
        + (
            " checkpointed: they are recycled"
            if warmed.checkpointed
            else " no right to CHECKPOINT here: the next scheduled checkpoint recycles them"
        )
    )


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending schema migrations."""
    from infra.migrate import ensure_database

    applied = ensure_database(get_settings())
    typer.echo(f"applied {len(applied)} migrations" if applied else "schema up to date")


@election_app.command("load")
def election_load(folder: Path) -> None:
    """Create or update an election from an election/1 definition folder."""
    from api.elections.service import load_election
    from infra.storage import photo_store

    ensure_database()
    store = photo_store(get_settings())
    try:
        with db.connection() as conn, progress_bar() as bar:
            result = load_election(conn, folder, store, progress=bar)
    except FormatError as exc:
        raise _fail(f"refused, nothing stored:\n{exc}") from None
    official = f", {result.official_rows} official protocols" if result.official_rows else ""
    verb = "created" if result.created else "updated"
    typer.echo(f"{verb} election {result.election_id}: {result.precincts} precincts{official}")


@contextmanager
def _import_errors(file: Path) -> Iterator[None]:
    """What an import refuses, said plainly: nothing of a refused file is stored."""
    from api.elections.service import ElectionNotFound

    try:
        yield
    except FormatError as exc:
        raise _fail(f"refused, nothing stored:\n{exc}") from None
    except ElectionNotFound as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"{file}: {exc.strerror}") from None


@official_app.command("import")
def official_import(election_id: str, file: Path) -> None:
    """Import official per-precinct results (official-results/1 CSV), all or nothing."""
    from api.elections.service import import_official

    ensure_database()
    with _import_errors(file), db.connection() as conn, progress_bar() as bar:
        result = import_official(conn, election_id, file.read_bytes(), file.name, progress=bar)
    replaced = (
        f" (replaces import {result.replaced_import_id})" if result.replaced_import_id else ""
    )
    typer.echo(f"imported {result.rows} protocols as import {result.import_id}{replaced}")


@crowd_app.command("import")
def crowd_import(
    election_id: str,
    file: Path,
    level: Annotated[
        str, typer.Option(help="verified (each vote backed by checked evidence) or declared")
    ],
) -> None:
    """Import a crowd-tallies/1 CSV as a named evidence source, all or nothing."""
    from api.elections.crowd import import_crowd

    ensure_database()
    with _import_errors(file), db.connection() as conn:
        result = import_crowd(conn, election_id, file.read_bytes(), file.name, level)
    replaced = (
        f" (replaces import {result.replaced_import_id})" if result.replaced_import_id else ""
    )
    typer.echo(
        f"imported source {result.source!r} ({result.level}): {result.rows} precincts{replaced}"
    )


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(help="HTTP worker processes")] = 1,
) -> None:
    """Run the HTTP API."""
    import uvicorn

    ensure_database()
    # No access log: it would keep voters' IP addresses next to their submission ids.
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
    )


@app.command()
def worker(
    until_empty: Annotated[
        bool, typer.Option(help="Exit when no job is left instead of waiting for more")
    ] = False,
    processes: Annotated[int, typer.Option(help="Worker processes to run")] = 1,
    ballots_only: Annotated[
        bool,
        typer.Option(
            help="Read ballot photos only (the photos queue), never write reports: for the "
            "machines added to scale out, while one worker without it writes the reports"
        ),
    ] = False,
) -> None:
    """Run the jobs of the queue (reading photos first, then writing reports).

    A waiting worker reconnects by itself when the database restarts; with
    --processes N this process supervises N worker processes and replaces any that
    dies (the first writes reports, the others read photos only). With --until-empty
    a worker that loses the database exits non-zero.

    With --ballots-only every process reads photos only and leaves report jobs
    waiting: run it on the machines added for reading photos, and one worker
    without it (one process, or --processes N on one designated machine) to write
    the reports, one at a time."""
    from api.worker import failed, reading_progress, run_worker, spawn_workers

    ensure_database()

    def run() -> list[int]:
        if processes <= 1:
            try:
                asyncio.run(run_worker(wait=not until_empty, ballots_only=ballots_only))
            except Exception as exc:  # until_empty only: a waiting worker reconnects
                typer.echo(f"worker stopped: {type(exc).__name__}: {exc}", err=True)
                return [1]
            return [0]
        # Several processes: this one only supervises (replacing a dead one), and
        # passes a stop on to them.
        return spawn_workers(processes, until_empty, ballots_only=ballots_only).wait()

    if until_empty:  # the queue's end is an end to show progress towards
        with progress_bar() as bar, reading_progress(bar):
            codes = run()
    else:
        codes = run()
    if failed(codes):
        raise _fail(f"a worker process failed (exit codes {codes})")


@ocr_app.command("ballot")
def ocr_ballot(
    template_dir: Path,
    photos: list[Path],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per photo")] = False,
) -> None:
    """Read ballot photos against a ballot template (ballot-template/1)."""
    from ocr.reader import read_ballot_files

    one_thread_per_process()
    # A template that cannot be loaded makes every photo unreadable with the reason
    # (spec); the command still answers for each photo and exits 0.
    for result in read_ballot_files(template_dir, photos):
        if as_json:
            typer.echo(json.dumps(result, ensure_ascii=False))
            continue
        marks_list, reasons_list = result["marks"], result["reasons"]
        assert isinstance(marks_list, list) and isinstance(reasons_list, list)
        marks = ",".join(marks_list) or "-"
        typer.echo(
            f"{result['photo']}: {result['verdict']} {marks} "
            f"({result['confidence']:.2f}) {','.join(reasons_list)}".rstrip()
        )


@ocr_app.command("protocol")
def ocr_protocol(
    template_dir: Path,
    photos: list[Path],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per photo")] = False,
) -> None:
    """Read photos of a precinct's result protocol against its template
    (protocol-template/1)."""
    from ocr.protocol import read_protocol_files

    one_thread_per_process()
    # As for ballots: a template that cannot be loaded makes every photo unreadable
    # with the reason; the command answers for each photo and exits 0.
    for result in read_protocol_files(template_dir, photos):
        if as_json:
            typer.echo(json.dumps(result, ensure_ascii=False))
            continue
        fields = result["fields"]
        assert isinstance(fields, dict)
        given = sum(1 for f in fields.values() if f["value"] is not None)
        failing = [str(c["check"]) for c in result["checks"] if c["holds"] is False]
        typer.echo(
            f"{result['photo']}: {result['verdict']} precinct {result['precinct'] or '-'} "
            f"fields {given}/{len(fields)}"
            + (f" checks failing {','.join(failing)}" if failing else "")
            + (f" ({','.join(result['reasons'])})" if result["reasons"] else "")
        )


@app.command()
def flags(election_id: str) -> None:
    """Recompute and store the election's flags (proof and statistical), writing no file."""
    from api.elections.service import ElectionNotFound
    from api.flags.service import run_flags

    ensure_database()
    with db.connection() as conn:
        try:
            with progress_bar() as bar:
                run = run_flags(conn, election_id, progress=bar)
        except ElectionNotFound as exc:
            raise _fail(str(exc)) from None
    by_kind = Counter(finding.kind for finding in run.findings)
    typer.echo(
        f"{election_id}: {len(run.findings)} flags "
        f"({by_kind[FlagKind.PROOF]} proof, {by_kind[FlagKind.STATISTICAL]} statistical) "
        f"at {len({finding.precinct_id for finding in run.proof})} precincts with proof"
    )


@app.command()
def report(
    election_id: str,
    out: Annotated[Path, typer.Option(help="Folder to write the report files into")],
    lang: Annotated[
        str, typer.Option(help=f"Language of report.html: {', '.join(LANGUAGES)}")
    ] = DEFAULT_LANGUAGE,
) -> None:
    """Recompute flags and write the discrepancy report (report/1) into a folder."""
    if lang not in LANGUAGES:
        raise _fail(f"--lang: {lang!r} is not one of {', '.join(LANGUAGES)}", code=2)
    from api.elections.service import ElectionNotFound, get_election
    from api.reports.service import write_election_report

    ensure_database()
    with db.connection() as conn:
        try:
            get_election(conn, election_id)
        except ElectionNotFound as exc:
            raise _fail(str(exc)) from None
        with progress_bar() as bar:
            summary = write_election_report(conn, election_id, out, lang=lang, progress=bar)
    typer.echo(
        f"{out}: {sum(summary['flags'].values())} flags, "
        f"{summary['precincts_with_proof']} precincts with proof"
    )


def cli_actor() -> str:
    """The name the audit log records for a change made with this command: the
    operating-system account that ran it."""
    import getpass

    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        who = str(os.getuid())
    return f"cli:{who}"


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        # The first line of standard input (a script pipes it; it never shows in `ps`).
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@user_app.command("add")
def user_add(
    username: str,
    role: Annotated[str, typer.Option(help="observer, analyst or admin")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Create an account (the password is asked twice, hidden, unless piped in)."""
    from api.accounts import service
    from api.accounts.schemas import ACCOUNT_ROLES, Role
    from api.errors import GolosError

    if role not in {str(r) for r in ACCOUNT_ROLES}:
        raise _fail(f"--role: {role!r} is not one of {', '.join(ACCOUNT_ROLES)}", code=2)
    password = _read_password(password_stdin)
    ensure_database()
    try:
        with db.connection() as conn:
            user = service.add_user(conn, username, Role(role), password, actor=cli_actor())
    except GolosError as exc:
        raise _fail(f"refused: {exc.field}: {exc.message}") from None
    typer.echo(f"created {user.role} {user.username}")


def _set_disabled(username: str, disabled: bool) -> None:
    from api.accounts import service
    from api.errors import GolosError

    ensure_database()
    try:
        with db.connection() as conn:
            user = service.set_disabled(conn, username, disabled, actor=cli_actor())
    except GolosError as exc:
        raise _fail(f"refused: {exc.field}: {exc.message}") from None
    state = "disabled (its sessions ended, its tokens revoked)" if disabled else "enabled"
    typer.echo(f"{user.username}: {state}")


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Disable an account: it can no longer log in; its sessions and tokens stop working."""
    _set_disabled(username, True)


@user_app.command("enable")
def user_enable(username: str) -> None:
    """Enable a disabled account again (its old tokens stay revoked)."""
    _set_disabled(username, False)


@user_app.command("list")
def user_list() -> None:
    """Every account: name, role, state, created."""
    from api.accounts import service

    ensure_database()
    with db.connection() as conn:
        users = service.list_users(conn)
    for user in users:
        state = "disabled" if user.disabled else "active"
        created = user.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        typer.echo(f"{user.username}\t{user.role}\t{state}\t{created}")
    if not users:
        typer.echo("no accounts", err=True)


@audit_app.command("verify")
def audit_verify(
    head: Annotated[
        str | None,
        typer.Option(help="SEQ:HASH of an earlier check's head, written down elsewhere"),
    ] = None,
) -> None:
    """Check the whole hash chain; exit 1 naming the first broken link. Prints the
    head to write down away from the server (then --head catches a chain cut short
    or recomputed by someone with the database owner's rights)."""
    from api.audit import service as audit

    try:
        anchor = audit.parse_head(head) if head is not None else None
    except ValueError as exc:
        raise _fail(f"--head: {exc}", code=2) from None
    ensure_database()
    with db.connection() as conn:
        check = audit.verify(conn, anchor)
    if check.ok:
        typer.echo(f"audit log intact: {check.checked} entries checked")
        if check.head_seq is not None:
            typer.echo(f"head: {check.head_seq}:{check.head_hash}")
        return
    raise _fail(
        f"audit log broken at entry {check.broken_at}: {check.problem} "
        f"({check.checked} entries before it are intact)"
    )


@audit_app.command("show")
def audit_show(
    limit: Annotated[int, typer.Option(min=1, help="How many of the newest entries")] = 20,
) -> None:
    """The newest entries, newest first (seq, time, actor, action, subject, detail)."""
    from api.audit import service as audit

    ensure_database()
    with db.connection() as conn:
        entries = audit.recent(conn, limit)
    for e in entries:
        at = e.at.astimezone(UTC).isoformat(timespec="seconds")
        detail = json.dumps(e.detail, ensure_ascii=False, sort_keys=True)
        typer.echo(f"{e.seq}\t{at}\t{e.actor}\t{e.action}\t{e.subject}\t{detail}")


def _add_installed_commands() -> None:
    """Add the commands other installed packages register under the entry-point group
    ``golos.commands`` (name = a typer command function). The demo is one: it lives
    with the seeds, which the product does not import. One that cannot be loaded is
    left out with a warning: the platform's own commands never depend on it."""
    for entry in entry_points(group="golos.commands"):
        try:
            command = entry.load()
        except Exception as exc:
            typer.secho(
                f"warning: command {entry.name!r} ({entry.value}) not loaded: {exc}",
                err=True,
                fg=typer.colors.YELLOW,
            )
            continue
        app.command(name=entry.name)(command)


def main() -> None:
    _add_installed_commands()
    app()


if __name__ == "__main__":
    main()
