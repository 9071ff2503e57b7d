"""``python -m mobile_stub``: a ballot goes into the outbox and stays there while
the server cannot be reached."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mobile_stub.cli import app
from mobile_stub.outbox import Outbox


def test_add_list_and_send_while_offline(tmp_path: Path) -> None:
    runner = CliRunner()
    folder = tmp_path / "phone"
    photo = tmp_path / "ballot.jpg"
    photo.write_bytes(b"photo")
    unverified = runner.invoke(
        app, ["add", str(photo), "--station", "p1", "--choice", "a", "--outbox", str(folder)]
    )
    assert unverified.exit_code == 1 and "verify first" in unverified.output

    with Outbox(folder) as outbox:
        outbox.save_device_token("by-2020-president", "golos_vt_test")
    added = runner.invoke(
        app, ["add", str(photo), "--station", "p1", "--choice", "a", "--outbox", str(folder)]
    )
    assert added.exit_code == 0, added.output
    sid = added.output.strip()

    sent = runner.invoke(app, ["send", "--outbox", str(folder), "--server", "http://127.0.0.1:9"])
    assert sent.exit_code == 0 and "1 still queued" in sent.output

    listed = runner.invoke(app, ["list", "--outbox", str(folder)])
    assert listed.exit_code == 0
    assert f"{sid} p1 queued attempts=1" in listed.output and "network" in listed.output
