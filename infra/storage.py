"""Content-addressed photo storage.

Photos are stored under their sha256, so a photo written twice is stored once and
its name reveals nothing about who sent it. ``PhotoStore`` is the interface an
object-store backend implements.

Nor do the files' times tell when a photo came more precisely than the submission's
row does (``received_hour``): a photo file and the folders it creates are dated to
the hour, and reading a photo leaves its access time alone. The inode's change time
(st_ctime) is the kernel's and cannot be set; it stays with the folder's owner.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from infra.files import atomic_writer

if TYPE_CHECKING:
    from infra.settings import Settings

_KEY = re.compile(r"[0-9a-f]{64}")
# What a photo file's times keep of its arrival: the hour, like the row's received_hour.
TIME_GRANULARITY_SECONDS = 3600


def coarse_time(now: float) -> int:
    """``now`` (Unix seconds) cut down to the hour it falls in. Pure."""
    return int(now // TIME_GRANULARITY_SECONDS) * TIME_GRANULARITY_SECONDS


class StoreUnavailable(Exception):
    """The photo store cannot take a photo now (its disk is full, the object store is
    out of reach): nothing was stored under the key, and the request may be retried
    later (the API answers 503 with Retry-After)."""


# Errors of a store that is full or out of reach, not of a bad photo or a bug.
_UNAVAILABLE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS}


def unavailable(exc: OSError) -> bool:
    """Whether an error writing a photo means "the store cannot take it now". Pure."""
    return exc.errno in _UNAVAILABLE_ERRNOS


class PhotoStore(Protocol):
    def put(self, data: bytes) -> str: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...


class LocalPhotoStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a sha256 key: {key!r}")
        return self.root / key[:2] / key[2:4] / key

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        path = self._path(key)
        if path.exists():
            return key
        hour = coarse_time(time.time())
        # Written whole, then renamed into place: a crash never leaves a half-written
        # photo under its key. Durable: the rename is synced with its directory, so a
        # crash cannot lose a photo whose submission is already committed. Two uploads
        # of one photo at once both write the same bytes; the second rename is harmless.
        try:
            with atomic_writer(path, "wb", permissions=0o600, durable=True) as handle:
                handle.write(data)
                handle.flush()  # the last write: nothing changes the times set next
                # Dated before the rename: the file never shows its precise time under
                # its key.
                os.utime(handle.fileno(), (hour, hour))
        except OSError as exc:
            # atomic_writer has removed its temporary file: nothing half-written stays.
            if unavailable(exc):
                raise StoreUnavailable(
                    f"the photo store cannot take photos: {exc.strerror}"
                ) from exc
            raise
        # Adding an entry dated the folders to the moment too (both levels, and the
        # root when a first-level folder was made). Where feasible: a folder someone
        # else owns (a root made by an administrator) cannot be redated by us, and the
        # photo is stored all the same.
        for folder in (path.parent, path.parent.parent, self.root):
            with contextlib.suppress(PermissionError):
                os.utime(folder, (hour, hour))
        return key

    def get(self, key: str) -> bytes:
        """The photo's bytes; its access time is left as it was where the system
        allows (O_NOATIME: the owner's files), so reading does not date it either."""
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOATIME", 0))
        except PermissionError:  # another user's file: O_NOATIME is refused
            fd = os.open(path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as handle:
            return handle.read()

    def exists(self, key: str) -> bool:
        return self._path(key).exists()


def photo_store(settings: Settings) -> PhotoStore:
    """The configured photo store (the one place that chooses the backend)."""
    return LocalPhotoStore(settings.photos_path)
