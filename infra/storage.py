"""Content-addressed photo storage.

Photos are stored under their sha256, so a photo written twice is stored once and
its name reveals nothing about who sent it. ``PhotoStore`` is the interface an
object-store backend implements.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from infra.files import atomic_write_bytes

if TYPE_CHECKING:
    from infra.settings import Settings

_KEY = re.compile(r"[0-9a-f]{64}")


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
        # Written whole, then renamed into place: a crash never leaves a half-written
        # photo under its key. Durable: the rename is synced with its directory, so a
        # crash cannot lose a photo whose submission is already committed. Two uploads
        # of one photo at once both write the same bytes; the second rename is harmless.
        atomic_write_bytes(path, data, permissions=0o600, durable=True)
        return key

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).exists()


def photo_store(settings: Settings) -> PhotoStore:
    """The configured photo store (the one place that chooses the backend)."""
    return LocalPhotoStore(settings.photos_path)
