"""One typed settings object, read from ``GOLOS_*`` environment variables."""

from __future__ import annotations

import os
import secrets
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.files import atomic_write_bytes, sync_directory
from infra.ratelimit import Limit, Scope


class MissingVoterSecret(ValueError):
    """GOLOS_VOTER_SECRET is unset outside development: the platform must not start."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GOLOS_", extra="ignore")

    # Unset: the platform runs its own PostgreSQL cluster under ``data_dir/pg``.
    database_url: str | None = None
    data_dir: Path = Path(".golos")
    # Unset: photos live under ``data_dir/photos``.
    photo_dir: Path | None = None
    # Key for the HMAC of voter identifiers (32+ characters, from a secret store, kept
    # off the database machine). Required: unset, the platform refuses to start,
    # unless ``development`` lets it generate one into data_dir.
    voter_secret: SecretStr | None = None
    # A demo or a laptop, never a real election: keys that are not set are generated
    # into data_dir, beside the database (whoever copies that folder holds both the
    # voters' keyed hashes and their key, and can test every phone number).
    development: bool = False

    # Key that signs the pages' CSRF tokens. Unset: generated once, kept in data_dir.
    secret_key: SecretStr | None = None
    # A browser session ends this long after login, used or not (ASVS 3.3: an
    # absolute lifetime; an observer's shift on election night is under 12 hours).
    session_hours: float = 12.0
    # Mark cookies Secure (sent over HTTPS only). Set it in production behind TLS;
    # off by default so that the demo works on http://127.0.0.1.
    secure_cookies: bool = False

    # How voters' phone numbers are verified (api/voters/verifiers.py): "dev" writes
    # the code to a file in data_dir instead of sending it (demo, tests; a loud
    # warning at start), or "package.module:Class" naming an SMS or messenger-bot
    # gateway that implements api.voters.verifiers.Verifier.
    verifier: str = "dev"
    # A voter's device token lasts this long: the election period plus days of a
    # shutdown during which the phone's outbox waits.
    device_token_days: int = 30

    max_upload_bytes: int = 15_000_000
    # 4000 px on the long side is the largest photo the reader expects (spec);
    # this leaves room for 6000x4000 and bounds decoding memory (~100 MB).
    max_image_pixels: int = 24_000_000
    db_pool_size: int = 10

    # Rate limits (infra/ratelimit.py): at most N per sliding window of S seconds, per
    # key; N = 0 turns a limit off. Replays of a submission id never count, nor does
    # anything refused. 429 with Retry-After beyond them.
    #
    # New submissions per verified voter (per election): an honest voter sends one
    # ballot, and perhaps re-sends it a few times (the wrong station chosen, a blurred
    # photo taken again; each replaces the last). Six in an hour is beyond any of
    # that, and caps what one identity puts into storage and the review queue.
    submissions_per_voter: int = 6
    submissions_per_voter_seconds: int = 3600
    # New submissions per network (the caller's /24 or /48, keyed-hashed): a station's
    # Wi-Fi or a carrier's NAT carries many voters. The largest Belarusian stations
    # have ~7,900 voters on the roll (seeds/by-2020); at 80% turnout over 14 hours with
    # a 10x peak that is ~750 in ten minutes, so 3,000 leaves four times that, while
    # one machine with a stack of SIM cards is held to 5 a second. Raise it for a
    # carrier whose NAT puts a large share of the country behind a few /24s.
    submissions_per_network: int = 3000
    submissions_per_network_seconds: int = 600
    # Codes asked for per network (anonymous callers of the verification API; each
    # code is an SMS someone pays for): a voter asks about once, as they send about
    # once, so the same figures as for submissions. One phone number is held to far
    # fewer by api/voters (MAX_CHALLENGES_PER_WINDOW).
    verifications_per_network: int = 3000
    verifications_per_network_seconds: int = 600
    # Report jobs per account (analysts and admins; new reports and retries alike):
    # a national report takes a worker tens of seconds to a minute and ~2 MB on disk
    # for a day, and an analyst needs one after each batch of new data, a few an
    # hour. Ten an hour is beyond that, and holds one account (or a leaked API
    # token) to a few hundred MB a day and a fraction of one worker.
    reports_per_account: int = 10
    reports_per_account_seconds: int = 3600

    # Quarantine (api/submissions/abuse.py): softer than the limits above. A submission
    # beyond one of these thresholds is stored and read, but where it would count it is
    # held ('quarantined') until two observers approve it. N = 0 turns a threshold off.
    #
    # A voter's submissions per sliding window: the first two in an hour (a ballot and
    # one re-take) are what honest voters send; a third in the hour is held. Each
    # replaces the last anyway, so holding it costs an honest voter nothing but time.
    quarantine_per_voter: int = 2
    quarantine_per_voter_seconds: int = 3600
    # One network's submissions at ONE station per window: beyond
    # max(quarantine_per_network_station, registered x quarantine_network_station_share)
    # the network's burst at the station is held whole (its earlier arrivals in the
    # window too). A station has no Wi-Fi of its own: its voters come over three
    # carriers whose NAT pools spread them over dozens of /24s. Even when a network cut
    # ends and a station's whole crowd (~22% of the roll, below) arrives in the same ten
    # minutes, one /24 carries a few: at 1,500 on the roll ~330 photos over ~48 /24s is
    # ~7 each, under 15; at the largest, 7,900, ~36, under 79. A stack of SIM cards
    # behind one router sending a dozen to a station of 1,000 crosses it (11). Raise it
    # where one carrier puts a town behind one /24. The demo and the benchmarks, whose
    # phones all share 127.0.0.1, turn it off (GOLOS_QUARANTINE_PER_NETWORK_STATION=0),
    # as they do the limit per network.
    quarantine_per_network_station: int = 10
    quarantine_network_station_share: float = 0.01
    quarantine_per_network_station_seconds: int = 600
    # Arrivals at one station per window, from every network: beyond
    # max(quarantine_station_min, registered x quarantine_station_share) the arrivals
    # beyond it are held (never the earlier ones: api/submissions/abuse.py says why).
    # Time alone proves nothing here: when a network cut of days ends,
    # every phone's outbox drains at once, and a station's whole crowd may arrive in
    # the same ten minutes. So the bound is what the roll allows all at once: in 2020
    # Golos received ~1.5 M photos for ~6.8 M voters on the rolls (~22%), and the
    # keenest stations of the demo's model reach 12%; a quarter of the roll inside
    # one window is beyond both, while a forger who floods a station with hundreds of
    # photos crosses it. The floor keeps small or roll-less stations from being held
    # for a handful of arrivals. quarantine_station_min = 0 turns it off.
    quarantine_station_share: float = 0.25
    quarantine_station_min: int = 20
    quarantine_station_seconds: int = 600

    # Photo storage (infra/storage.py): "local" keeps photos under photo_dir (one
    # machine, or a shared filesystem); "s3" keeps them in an S3-compatible object
    # store (AWS S3, MinIO, Ceph RGW...), which every API and worker machine reaches.
    # Its credentials are never settings: boto3's standard chain (AWS_ACCESS_KEY_ID /
    # AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE and ~/.aws files, a
    # container or instance role, IRSA), and nothing of them is logged.
    photo_store: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    # Unset: AWS's own endpoint for the region; set for MinIO and the like.
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    # "path" for most self-hosted stores (http://host:9000/bucket/key), "virtual" for
    # AWS (bucket.s3.region.amazonaws.com), "auto" lets botocore choose.
    s3_addressing_style: Literal["auto", "virtual", "path"] = "auto"
    # Prepended to the photos' keys (sha256 hex), so the bucket may hold other things.
    s3_prefix: str = "photos/"
    # Server-side encryption asked for on every put: "" (the bucket's default),
    # "AES256" (keys the store manages) or "aws:kms" (with s3_kms_key_id, or the
    # account's default KMS key).
    s3_server_side_encryption: Literal["", "AES256", "aws:kms"] = ""
    s3_kms_key_id: str | None = None
    # Connections kept open per process (infra/storage.py says why this many).
    s3_max_connections: int = 20

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def pg_dir(self) -> Path:
        return self.data_dir.resolve() / "pg"

    @property
    def photos_path(self) -> Path:
        return (self.photo_dir or self.data_dir / "photos").resolve()

    @property
    def dev_codes_path(self) -> Path:
        """Where the development verifier appends the codes it would have sent."""
        return self.data_dir.resolve() / "dev-codes.jsonl"

    @property
    def dsn(self) -> str:
        """A libpq connection URL for the configured or the embedded database."""
        if self.database_url is not None:
            return self.database_url
        return f"postgresql://golos@/golos?host={quote(str(self.pg_dir), safe='/')}"

    def limit(self, scope: Scope) -> Limit:
        """The configured limit of ``scope``."""
        max_hits, seconds = {
            Scope.SUBMISSION_VOTER: (
                self.submissions_per_voter,
                self.submissions_per_voter_seconds,
            ),
            Scope.SUBMISSION_NETWORK: (
                self.submissions_per_network,
                self.submissions_per_network_seconds,
            ),
            Scope.VERIFICATION_NETWORK: (
                self.verifications_per_network,
                self.verifications_per_network_seconds,
            ),
            Scope.REPORT_ACCOUNT: (
                self.reports_per_account,
                self.reports_per_account_seconds,
            ),
        }[scope]
        return Limit(scope, max_hits, seconds)

    def voter_key(self) -> bytes:
        """The HMAC key for voter identifiers: GOLOS_VOTER_SECRET.

        Set it from a secret store, away from the database: whoever holds both can
        test guessed phone numbers (every Belarusian mobile number in about a minute
        on one core). Unset, it is an error (the API refuses to start), unless
        GOLOS_DEVELOPMENT allows generating one into the data folder (demo, laptop).
        """
        if self.voter_secret is not None:
            key = self.voter_secret.get_secret_value().encode()
        elif self.development:
            key = _generated_key(self.data_dir.resolve() / "voter-secret")
        else:
            raise MissingVoterSecret(
                "GOLOS_VOTER_SECRET is not set: set it to a random value of 32 or more "
                "characters from a secret store, kept off the database machine (e.g. "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`). For a demo "
                "or a laptop only, GOLOS_DEVELOPMENT=1 generates one into "
                f"{self.data_dir.resolve() / 'voter-secret'}, beside the database."
            )
        if len(key) < 32:
            raise ValueError("GOLOS_VOTER_SECRET must be at least 32 characters")
        return key

    def app_key(self) -> bytes:
        """The key that signs CSRF tokens (api/web.py) and tags device tokens
        (api/voters/service.py: changing it revokes them all). Set GOLOS_SECRET_KEY
        in production (every API process must share it); unset, generated once into
        the data folder."""
        if self.secret_key is not None:
            key = self.secret_key.get_secret_value().encode()
        else:
            key = _generated_key(self.data_dir.resolve() / "app-secret")
        if len(key) < 32:
            raise ValueError("GOLOS_SECRET_KEY must be at least 32 characters")
        return key


@cache
def _generated_key(path: Path) -> bytes:
    if not path.exists():
        # Written whole and durable under a private name, then linked into place.
        # A link, not a rename: a rename would replace a key another process created
        # meanwhile and may already use, while a link refuses an existing name, so
        # two processes starting at once agree on the first key, and a process that
        # finds the file never reads it half-written.
        staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        atomic_write_bytes(staging, secrets.token_hex(32).encode("ascii"), permissions=0o600)
        try:
            os.link(staging, path)
        except FileExistsError:
            pass
        else:
            sync_directory(path.parent)
        finally:
            staging.unlink()
    return path.read_bytes().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
