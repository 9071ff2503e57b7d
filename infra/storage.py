"""Content-addressed photo storage.

Photos are stored under their sha256, so a photo written twice is stored once and
its name reveals nothing about who sent it. ``PhotoStore`` is the interface an
object-store backend implements.

Nor do the files' times tell when a photo came more precisely than the submission's
row does (``received_hour``): a photo file and the folders it creates are dated to
the hour, and reading a photo leaves its access time alone. The inode's change time
(st_ctime) is the kernel's and cannot be set; it stays with the folder's owner.

Two backends: ``LocalPhotoStore`` (a folder: one machine, or a filesystem every
machine mounts) and ``S3PhotoStore`` (an S3-compatible object store: AWS S3, MinIO,
Ceph RGW), chosen by ``photo_store(settings)`` from GOLOS_PHOTO_STORE.

What an object store's times tell. S3 dates every object itself: its Last-Modified
is the moment the PUT completed, to the second, and no client can set or change it.
Whoever can list the bucket or HEAD an object (the platform's credentials, the
operator's cloud account, the provider) can read it, and the key (the photo's
sha256) is the submission row's ``photo_sha256``: with both, a photo's arrival is
known to the second, where the row keeps only the hour. What this module does about
it: keys and objects carry no time and no user metadata (the key is the content's
hash; nothing else is sent); the first put of a photo wins (``If-None-Match: *``),
so a phone's re-sends add no later dates; the platform never lists the bucket. What
the deployment must do (infra/deploy sets it up so for the MinIO it runs): keep the
bucket private to the platform's credentials, with no public or cross-account
listing; server access logs and CloudTrail data events off (they record every PUT's
time and caller's address); versioning off (old versions keep their dates). The
Last-Modified times stay in the store, under the same trust as the database
server's own logs: the bucket is as sensitive as the database, and its credentials
as scarce.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from infra.files import atomic_write_bytes

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
    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Store ``data``; its key (its SHA-256, hex). ``sha256``: the key, when the
        caller has just computed it from these very bytes (the upload has: saves
        hashing ~300 KB again); trusted, not checked: pass only a hash of ``data``."""
        ...

    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...


class LocalPhotoStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a sha256 key: {key!r}")
        return self.root / key[:2] / key[2:4] / key

    def put(self, data: bytes, sha256: str | None = None) -> str:
        key = sha256 or hashlib.sha256(data).hexdigest()
        path = self._path(key)
        if path.exists():
            return key
        hour = coarse_time(time.time())
        # Written whole, then renamed into place: a crash never leaves a half-written
        # photo under its key. Durable: the rename is synced with its directory, so a
        # crash cannot lose a photo whose submission is already committed. Two uploads
        # of one photo at once both write the same bytes; the second rename is harmless.
        try:
            # Dated before the rename: the file never shows its precise time under
            # its key.
            atomic_write_bytes(path, data, permissions=0o600, durable=True, mtime=hour)
        except OSError as exc:
            # atomic_write_bytes has removed its temporary file: nothing half-written stays.
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


class CorruptPhoto(Exception):
    """A stored photo's bytes do not hash to its key: the store damaged or replaced
    it. Not retried into success: the photo must be looked at."""


# Answers of an object store that cannot take or give a photo now (overloaded, full,
# restarting), as opposed to a refusal that a retry would meet again (a wrong bucket,
# credentials refused: a deployment's error, logged with its traceback, answered 500).
_UNAVAILABLE_CODES = {
    "SlowDown",  # S3: request rate too high for the prefix
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
    "XMinioStorageFull",  # MinIO: no drive has room
    "XMinioServerNotInitialized",
    "InsufficientStorage",
    "QuotaExceeded",  # Ceph RGW: the user's or bucket's quota
    "ConditionalRequestConflict",  # S3: a put of the same key at the same moment
}
_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}


def s3_unavailable(code: str, status: int) -> bool:
    """Whether an object store's error answer means "the store cannot serve this now"
    (retry later) rather than a wrong request or configuration. Pure."""
    return code in _UNAVAILABLE_CODES or status >= 500


def sha256_checksum(key: str) -> str:
    """The x-amz-checksum-sha256 value (base64 of the digest) of a photo whose key is
    its sha256 hex. Pure."""
    return base64.b64encode(bytes.fromhex(key)).decode("ascii")


def md5_checksum(data: bytes) -> str:
    """The Content-MD5 value (base64 of the digest) of ``data``. Pure."""
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")


class S3Config(NamedTuple):
    """What ``S3PhotoStore`` needs from the settings (hashable: one client each)."""

    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: str = "auto"
    prefix: str = "photos/"
    server_side_encryption: str = ""
    kms_key_id: str | None = None
    max_connections: int = 20


def _client(config: S3Config) -> Any:
    """A boto3 S3 client for ``config``: shared by every thread of the process (boto3's
    clients are thread-safe; its sessions are not, so each client gets its own)."""
    import boto3
    from botocore.config import Config

    botocore_config = Config(
        region_name=config.region,
        s3={"addressing_style": config.addressing_style},
        # A pool per process. A put runs inside the upload's database transaction,
        # so an API process has at most db_pool_size (10) puts under way, plus the
        # reviewers' photo reads; a worker reads one photo at a time. 20 covers
        # both without opening a connection per request (TLS set-up to a remote
        # store costs more than the ~300 KB put itself).
        max_pool_connections=config.max_connections,
        # The store is in the same data centre or region: a connection that is not
        # made in 2 s will not be made in 20, and every second waited here holds an
        # upload's database connection and transaction open. Better to answer 503
        # with Retry-After and let the phone's outbox retry.
        connect_timeout=2,
        # Per socket read, not for the whole request: a 15 MB photo (the upload
        # cap) streams in well under a second on a data-centre link; 10 s is a
        # store that has stopped answering.
        read_timeout=10,
        # "standard": retries throttling (SlowDown, 503) and transient network and
        # 5xx errors with exponential backoff and jitter, and is rate-limited by a
        # retry quota so a failing store is not hammered. Three attempts in all:
        # an attempt more would only hold the request longer, when the phone retries
        # anyway. Worst case with the store unreachable: 3 connects of 2 s plus
        # backoff, under 10 s, then 503.
        retries={"mode": "standard", "total_max_attempts": 3},
        tcp_keepalive=True,
        # botocore >= 1.36 otherwise adds CRC32 checksum trailers (aws-chunked
        # bodies) that several S3-compatible stores refuse. The puts send their own
        # Content-MD5 and SHA-256 (below), which every store checks that knows them.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=config.endpoint_url, config=botocore_config)


_clients: dict[S3Config, Any] = {}
_clients_lock = threading.Lock()


def _shared_client(config: S3Config) -> Any:
    """One client per configuration and process (the store is built per request)."""
    with _clients_lock:
        if config not in _clients:
            _clients[config] = _client(config)
        return _clients[config]


class S3PhotoStore:
    """Photos in an S3-compatible bucket, under ``prefix + sha256``.

    A put is one PUT request, which S3 applies whole or not at all: no reader ever
    sees a partial object under a key. It carries Content-MD5 and the SHA-256
    checksum, so a body damaged on the way is refused by the store rather than
    stored, and ``If-None-Match: *``, so the first copy of a photo stays (a second
    put of the same bytes answers 412, which is success). ``get`` checks that the
    bytes hash to their key. A store that is out of reach, overloaded or full raises
    ``StoreUnavailable`` (the API answers 503 with Retry-After, a job is retried).
    """

    def __init__(self, config: S3Config, client: Any | None = None) -> None:
        self.config = config
        self.client = client if client is not None else _shared_client(config)

    def _key(self, key: str) -> str:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a sha256 key: {key!r}")
        return self.config.prefix + key

    def _fail(self, exc: Exception, doing: str) -> Exception:
        """The exception to raise for a botocore error: StoreUnavailable when the
        store cannot serve now, FileNotFoundError for a missing object, else the
        error itself (a configuration's: the wrong bucket, refused credentials)."""
        from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

        if isinstance(exc, ConnectionError | HTTPClientError):
            # No endpoint, credentials or body in the message: the exception's name.
            return StoreUnavailable(f"the photo store is out of reach ({type(exc).__name__})")
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if code in _MISSING_CODES or (status == 404 and code != "NoSuchBucket"):
                return FileNotFoundError(errno.ENOENT, "no such photo", doing)
            if s3_unavailable(code, status):
                return StoreUnavailable(f"the photo store cannot {doing} now ({code or status})")
        return exc

    def put(self, data: bytes, sha256: str | None = None) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        key = sha256 or hashlib.sha256(data).hexdigest()
        extra: dict[str, str] = {}
        if self.config.server_side_encryption:
            extra["ServerSideEncryption"] = self.config.server_side_encryption
            if self.config.kms_key_id:
                extra["SSEKMSKeyId"] = self.config.kms_key_id
        try:
            self.client.put_object(
                Bucket=self.config.bucket,
                Key=self._key(key),
                Body=data,
                ContentType="application/octet-stream",
                ContentMD5=md5_checksum(data),
                ChecksumSHA256=sha256_checksum(key),
                IfNoneMatch="*",
                **extra,
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "PreconditionFailed":  # stored before: the same bytes
                return key
            if code == "ConditionalRequestConflict" and self.exists(key):
                return key  # another put of the same photo won at the same moment
            raise self._fail(exc, "store photos") from exc
        except BotoCoreError as exc:
            raise self._fail(exc, "store photos") from exc
        return key

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.get_object(Bucket=self.config.bucket, Key=self._key(key))
            data: bytes = answer["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, "read photos") from exc
        if hashlib.sha256(data).hexdigest() != key:
            raise CorruptPhoto(f"the stored photo {key} does not match its key")
        return data

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.config.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as exc:
            failure = self._fail(exc, "look up photos")
            if isinstance(failure, FileNotFoundError):
                return False
            raise failure from exc
        return True


def s3_config(settings: Settings) -> S3Config:
    """The object store's part of the settings. Pure."""
    if not settings.s3_bucket:
        raise ValueError("GOLOS_PHOTO_STORE=s3 needs GOLOS_S3_BUCKET")
    return S3Config(
        bucket=settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        addressing_style=settings.s3_addressing_style,
        prefix=settings.s3_prefix,
        server_side_encryption=settings.s3_server_side_encryption,
        kms_key_id=settings.s3_kms_key_id,
        max_connections=settings.s3_max_connections,
    )


def photo_store(settings: Settings) -> PhotoStore:
    """The configured photo store (the one place that chooses the backend): a folder,
    or an S3-compatible bucket (GOLOS_PHOTO_STORE=s3; one client per process)."""
    if settings.photo_store == "s3":
        return S3PhotoStore(s3_config(settings))
    return LocalPhotoStore(settings.photos_path)
