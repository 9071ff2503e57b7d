"""``python -m mobile_stub``: what the phone app does, as commands.

    python -m mobile_stub verify --election by-2020-president --phone "+375 29 555-00-01"
    python -m mobile_stub add ballot.jpg --station p1 --choice tsikhanouskaya
    python -m mobile_stub send            # one try for each due submission
    python -m mobile_stub send --wait     # keep trying until none is left queued
    python -m mobile_stub list            # each submission's state and receipt

The outbox lives in ``--outbox`` (GOLOS_OUTBOX); the server is ``--server`` (GOLOS_SERVER).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from mobile_stub.client import GolosClient, Submission, VerificationFailed
from mobile_stub.outbox import Outbox

app = typer.Typer(help="The phone app's logic: verify, keep ballots in the outbox, send them.")

OutboxDir = Annotated[
    Path, typer.Option("--outbox", envvar="GOLOS_OUTBOX", help="The outbox's folder.")
]
Server = Annotated[
    str, typer.Option("--server", envvar="GOLOS_SERVER", help="The Golos server's address.")
]
DEFAULT_OUTBOX = Path.home() / ".golos-phone"
DEFAULT_SERVER = "http://127.0.0.1:8000"


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@app.command()
def verify(
    election: Annotated[str, typer.Option(help="The election's id.")],
    phone: Annotated[str, typer.Option(help="The voter's phone number.")],
    codes_file: Annotated[
        Path | None,
        typer.Option(help="Read the code from the development verifier's file, not the SMS."),
    ] = None,
    outbox: OutboxDir = DEFAULT_OUTBOX,
    server: Server = DEFAULT_SERVER,
) -> None:
    """Verify the phone for an election (a code by SMS); keeps the device token."""

    def read_code(challenge_id: str) -> str | None:
        if codes_file is not None:
            from api.voters.verifiers import dev_code

            return dev_code(codes_file, challenge_id)
        return str(typer.prompt("The code you received")).strip()

    client = GolosClient(server)
    try:
        token = client.verify(election, phone, read_code)
    except VerificationFailed as exc:
        typer.echo(f"not verified: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        client.close()
    with Outbox(outbox) as box:
        box.save_device_token(election, token)
    typer.echo(f"verified for {election}")


@app.command()
def add(
    photo: Annotated[Path, typer.Argument(help="The ballot's photo.", exists=True, dir_okay=False)],
    station: Annotated[str, typer.Option(help="The polling station (precinct) id.")],
    choice: Annotated[str, typer.Option(help="The option(s) marked, comma-separated.")],
    election: Annotated[str, typer.Option(help="The election's id.")] = "by-2020-president",
    submission_id: Annotated[
        str | None, typer.Option("--id", help="The submission id (new by default).")
    ] = None,
    outbox: OutboxDir = DEFAULT_OUTBOX,
) -> None:
    """Put a ballot photo in the outbox (it stays there until the server has it)."""
    sid = submission_id or str(uuid.uuid4())
    with Outbox(outbox) as box:
        token = box.device_token(election)
        if token is None:
            typer.echo(f"this phone is not verified for {election}: run verify first", err=True)
            raise typer.Exit(1)
        box.add(Submission(sid, election, station, choice, token), photo.read_bytes())
    typer.echo(sid)


@app.command()
def send(
    wait: Annotated[
        bool, typer.Option("--wait", help="Keep trying until nothing is left queued.")
    ] = False,
    outbox: OutboxDir = DEFAULT_OUTBOX,
    server: Server = DEFAULT_SERVER,
) -> None:
    """Send the submissions that are due; prints each final outcome."""
    client = GolosClient(server)
    with Outbox(outbox) as box:
        try:
            while True:
                for outcome in box.send_due(client):
                    detail = outcome.status_url or "; ".join(outcome.reasons)
                    typer.echo(
                        f"{outcome.submission_id} {outcome.state} {outcome.http_status} {detail}"
                    )
                due = box.next_due()
                if not wait or due is None:
                    break
                time.sleep(max(0.0, due - time.time()))
        finally:
            client.close()
        left = box.pending()
        if left:
            typer.echo(f"{len(left)} still queued; next try at {_when(box.next_due())}")


@app.command("list")
def list_items(outbox: OutboxDir = DEFAULT_OUTBOX) -> None:
    """Each submission: its state, attempts, next try, and receipt or error."""
    with Outbox(outbox) as box:
        for item in box.items():
            if item.state == "delivered":
                detail = f"{item.http_status} {item.status_url}"
            elif item.state == "failed":
                detail = f"{item.http_status} {item.error_field}: {item.error_message}"
            else:
                detail = f"next {_when(item.next_attempt_at)} {item.last_error or ''}".rstrip()
            typer.echo(
                f"{item.submission_id} {item.precinct_id} {item.state}"
                f" attempts={item.attempts} {detail}"
            )
