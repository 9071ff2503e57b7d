"""The ``golos`` command: every operation of the platform."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from api.elections.formats import FormatError
from infra import db
from infra.settings import get_settings

app = typer.Typer(
    help="Golos: crowdsourced verification of election results.", no_args_is_help=True
)
db_app = typer.Typer(help="The database (embedded PostgreSQL unless GOLOS_DATABASE_URL is set).")
election_app = typer.Typer(help="Elections.")
official_app = typer.Typer(help="Official results.")
crowd_app = typer.Typer(help="Crowd tallies from other platforms and data sets.")
ocr_app = typer.Typer(help="Reading photos.")
app.add_typer(db_app, name="db")
app.add_typer(election_app, name="election")
app.add_typer(official_app, name="official")
app.add_typer(crowd_app, name="crowd")
app.add_typer(ocr_app, name="ocr")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def ensure_database() -> None:
    """Start the embedded cluster if it is the one in use, and migrate the schema."""
    from infra.migrate import migrate
    from infra.pg import EmbeddedPostgres

    settings = get_settings()
    if settings.embedded:
        EmbeddedPostgres(settings.pg_dir).start()
    migrate(settings.dsn)


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


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending schema migrations."""
    from infra.migrate import migrate

    settings = get_settings()
    if settings.embedded:
        from infra.pg import EmbeddedPostgres

        EmbeddedPostgres(settings.pg_dir).start()
    applied = migrate(settings.dsn)
    typer.echo(f"applied {len(applied)} migrations" if applied else "schema up to date")


@election_app.command("load")
def election_load(folder: Path) -> None:
    """Create or update an election from an election/1 definition folder."""
    from api.elections.service import load_election
    from infra.storage import get_store

    ensure_database()
    try:
        with db.connection() as conn:
            result = load_election(conn, folder, get_store())
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
    with _import_errors(file), db.connection() as conn:
        result = import_official(conn, election_id, file.read_bytes(), file.name)
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
) -> None:
    """Run the jobs of the queue (reading photos)."""
    ensure_database()
    if processes <= 1:
        asyncio.run(run_worker(wait=not until_empty))
        return
    # Several processes: this one only supervises, and passes a stop on to them.
    command = [sys.executable, "-m", "api.cli", "worker"]
    children = [
        subprocess.Popen([*command, *(["--until-empty"] if until_empty else [])])
        for _ in range(processes)
    ]

    def forward(signum: int, frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    if any(code not in (0, -signal.SIGTERM, -signal.SIGINT) for code in codes):
        raise _fail(f"a worker process failed (exit codes {codes})")


async def run_worker(wait: bool) -> None:
    from api.main import queue_app
    from api.submissions import jobs
    from api.submissions.service import pending_ids
    from infra.queue import retry_stalled_jobs

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    job_queue = queue_app()
    async with job_queue.open_async():
        await retry_stalled_jobs(job_queue)
        # Submissions recorded while the queue was unreachable get their job now.
        with db.connection() as conn:
            orphans = pending_ids(conn)
        for sid in orphans:
            await jobs.enqueue(job_queue, sid)
        await job_queue.run_worker_async(
            wait=wait,
            concurrency=1,
            install_signal_handlers=True,
        )


@ocr_app.command("ballot")
def ocr_ballot(
    template_dir: Path,
    photos: list[Path],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per photo")] = False,
) -> None:
    """Read ballot photos against a ballot template (ballot-template/1)."""
    from ocr.reader import read_ballot_files

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
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


@app.command()
def report(
    election_id: str,
    out: Annotated[Path, typer.Option(help="Folder to write the report files into")],
) -> None:
    """Recompute flags and write the discrepancy report (report/1) into a folder."""
    from api.elections.service import ElectionNotFound, get_election
    from tally.report import write_report

    ensure_database()
    with db.connection() as conn:
        try:
            get_election(conn, election_id)
        except ElectionNotFound as exc:
            raise _fail(str(exc)) from None
        summary = write_report(conn, election_id, out)
    typer.echo(
        f"{out}: {sum(summary['flags'].values())} flags, "
        f"{summary['precincts_with_proof']} precincts with proof"
    )


@app.command()
def demo(
    voters: Annotated[int, typer.Option(help="Simulated voters uploading photos")] = 1200,
    stations: Annotated[int, typer.Option(help="Polling stations they vote at")] = 60,
    precincts: Annotated[
        int, typer.Option(help="Load only this many precincts (0: all 5,767)")
    ] = 0,
    workers: Annotated[int, typer.Option(help="Worker processes reading photos")] = 2,
    out: Annotated[Path, typer.Option(help="Where the report goes")] = Path("out/demo"),
    seed: int = 7,
    reset: Annotated[
        bool,
        typer.Option(
            help="Allow clearing the seeded election's crowd data in an "
            "external database (GOLOS_DATABASE_URL)"
        ),
    ] = False,
) -> None:
    """The whole platform on the seeded election: upload, read, tally, flag, report."""
    from api.demo import run_demo

    ensure_database()
    try:
        run_demo(
            voters=voters,
            stations=stations,
            precincts=precincts,
            workers=workers,
            out=out,
            seed=seed,
            reset=reset,
        )
    except RuntimeError as exc:
        raise _fail(str(exc)) from None


def main() -> None:
    app()


if __name__ == "__main__":
    main()
