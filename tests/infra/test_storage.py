"""The photo store: content-addressed, private, and never half-written."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path

import pytest

from infra.storage import LocalPhotoStore, coarse_time


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


def test_a_photo_and_its_folders_are_dated_to_the_hour_not_the_moment(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    before = time.time()
    key = LocalPhotoStore(root).put(b"a ballot photo")
    hour = coarse_time(before)
    assert hour % 3600 == 0 and before - 3600 < hour <= before
    path = root / key[:2] / key[2:4] / key
    for dated in (path, path.parent, path.parent.parent, root):
        times = dated.stat()
        # The hour of the upload (or the next, for an upload across the hour).
        assert times.st_mtime_ns % 3_600_000_000_000 == 0, dated
        assert times.st_atime_ns % 3_600_000_000_000 == 0, dated
        assert hour <= times.st_mtime <= hour + 3600


def test_reading_a_photo_leaves_its_access_time_alone(tmp_path: Path) -> None:
    store = LocalPhotoStore(tmp_path / "photos")
    key = store.put(b"a ballot photo")
    path = tmp_path / "photos" / key[:2] / key[2:4] / key
    long_ago = 3600 * 100
    os.utime(path, (long_ago, long_ago))  # older than a day: relatime would update it
    assert store.get(key) == b"a ballot photo"
    assert path.stat().st_atime == long_ago


def test_coarse_time_is_the_start_of_the_hour() -> None:
    assert coarse_time(7200) == 7200
    assert coarse_time(7200 + 3599.999) == 7200
