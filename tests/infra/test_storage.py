"""The photo store: content-addressed, private, and never half-written."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from infra.storage import LocalPhotoStore


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_a_photo_is_stored_once_under_its_sha256_readable_only_by_us(tmp_path: Path) -> None:
    store = LocalPhotoStore(tmp_path / "photos")
    key = store.put(b"a ballot photo")
    assert key == hashlib.sha256(b"a ballot photo").hexdigest()
    assert store.put(b"a ballot photo") == key
    assert store.exists(key) and store.get(key) == b"a ballot photo"
    [path] = _files(tmp_path / "photos")
    assert path == tmp_path / "photos" / key[:2] / key[2:4] / key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_put_that_fails_leaves_nothing_under_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalPhotoStore(tmp_path / "photos")

    def fsync_fails(fd: int) -> None:
        raise OSError("I/O error")

    monkeypatch.setattr("infra.files.os.fsync", fsync_fails)
    with pytest.raises(OSError):
        store.put(b"a ballot photo")
    monkeypatch.undo()
    assert not store.exists(hashlib.sha256(b"a ballot photo").hexdigest())
    assert _files(tmp_path / "photos") == []


def test_a_key_that_is_not_a_sha256_is_refused(tmp_path: Path) -> None:
    store = LocalPhotoStore(tmp_path / "photos")
    with pytest.raises(ValueError, match="not a sha256 key"):
        store.get("../../etc/passwd")
