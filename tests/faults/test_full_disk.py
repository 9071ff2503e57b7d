"""The photo disk full: uploads are answered 503 with Retry-After on the field
``photo`` and leave nothing behind (no row, no file, no temporary file, no hit
against the limits); once space is freed the same submissions are accepted and
counted once.

The disk is a small tmpfs mounted for the test (as root; the test fails, saying
why, where it cannot mount one)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from api.elections.service import load_election
from infra import ratelimit
from infra.settings import get_settings
from infra.storage import photo_store
from tests.faults.conftest import (
    Phone,
    Server,
    Upload,
    photo_files,
    read_then_settled,
    submission_rows,
)

DISK_BYTES = 8 * 1024 * 1024
# What is left free for photos: two or three of the test's ~200 KB photos.
ROOM_BYTES = 600 * 1024


@pytest.fixture
def small_disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A tmpfs of DISK_BYTES as the photo folder of this process and the ones it
    starts; unmounted afterwards."""
    mountpoint = Path(tempfile.mkdtemp(prefix="golos-full-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES},mode=0700", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        mountpoint.rmdir()
        pytest.fail(
            "the full-disk test needs a small filesystem of its own and could not mount a "
            f"tmpfs (run the tests as root, or with CAP_SYS_ADMIN): {mounted.stderr.strip()}"
        )
    monkeypatch.setenv("GOLOS_PHOTO_DIR", str(mountpoint / "photos"))
    get_settings.cache_clear()
    try:
        yield mountpoint
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        subprocess.run(["umount", "--lazy", str(mountpoint)], check=True)
        mountpoint.rmdir()


def _voter_hits(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(hits), 0) FROM rate_limits WHERE scope = %s",
            (ratelimit.Scope.SUBMISSION_VOTER.value,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_full_photo_disk_answers_503_stores_nothing_and_takes_the_retry_later(
    database: str,
    conn: psycopg.Connection,
    election_dir: Path,
    small_disk: Path,
    serve: Callable[[], Server],
    phones: Callable[[str], Phone],
) -> None:
    load_election(conn, election_dir, photo_store(get_settings()))
    conn.commit()
    # Fill the disk but for ROOM_BYTES.
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (free - ROOM_BYTES))
    server = serve()
    phone = phones(database)

    accepted: list[Upload] = []
    refused: list[Upload] = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for _ in range(12):
            upload = phone.new_upload()
            answer = phone.send(client, upload)
            assert answer is not None
            if answer.status_code == 202:
                accepted.append(upload)
                continue
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "5"
            assert answer.json()["detail"]["field"] == "photo"
            refused.append(upload)
            if len(refused) == 3:
                break
        assert accepted and len(refused) == 3, (len(accepted), len(refused))

        # Nothing half-stored: only the accepted rows, their photos whole, no
        # temporary file, no hit kept against the voters' limits.
        assert sorted(submission_rows(database)) == sorted(u.sid for u in accepted)
        keys, others = photo_files(get_settings().photos_path)
        assert not others, f"stray files in the photo store: {others}"
        assert len(keys) == len(accepted) + 1  # and the ballot's reference image
        assert _voter_hits(database) == len(accepted)
        assert client.get("/healthz").status_code == 200

        # Space freed: the same submissions are accepted, once.
        filler.unlink()
        for upload in refused:
            assert phone.deliver(client, upload) == 202
    read_then_settled(database, accepted + refused)
    assert _voter_hits(database) == len(accepted) + len(refused)
