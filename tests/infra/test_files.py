"""Atomic writes: a file is replaced whole, or not at all."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from infra.files import atomic_write_bytes, atomic_write_text, atomic_writer


def _leftovers(folder: Path, target: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p != target)


def test_a_block_that_raises_leaves_the_old_content_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    atomic_write_text(target, '{"choice": "first"}')
    with pytest.raises(RuntimeError), atomic_writer(target, "w") as handle:
        handle.write('{"choice": "sec')
        raise RuntimeError("the battery died")
    assert target.read_text() == '{"choice": "first"}'
    assert _leftovers(tmp_path, target) == []


def test_a_first_write_that_fails_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "photo.jpg"
    with pytest.raises(OSError), atomic_writer(target, "wb") as handle:
        handle.write(b"\xff\xd8")
        raise OSError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_a_write_that_fails_to_sync_leaves_the_old_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "photo.jpg"
    atomic_write_bytes(target, b"old")

    def fsync_fails(fd: int) -> None:
        raise OSError("I/O error")

    monkeypatch.setattr("infra.files.os.fsync", fsync_fails)
    with pytest.raises(OSError, match="I/O error"):
        atomic_write_bytes(target, b"new", durable=True)
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path, target) == []


def test_the_new_content_replaces_the_old_with_the_permissions_asked(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "key"
    atomic_write_bytes(target, b"old", permissions=0o600, durable=True)
    atomic_write_bytes(target, b"new", permissions=0o600, durable=True)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert _leftovers(target.parent, target) == []


def test_text_is_written_as_given_in_utf8(tmp_path: Path) -> None:
    target = tmp_path / "names.csv"
    atomic_write_text(target, "precinct_id,name\r\n7,Ліда\n")
    assert target.read_bytes() == "precinct_id,name\r\n7,Ліда\n".encode()
