"""One typed settings object, read from ``GOLOS_*`` environment variables."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GOLOS_", extra="ignore")

    # Unset: the platform runs its own PostgreSQL cluster under ``data_dir/pg``.
    database_url: str | None = None
    data_dir: Path = Path(".golos")
    # Unset: photos live under ``data_dir/photos``.
    photo_dir: Path | None = None
    # Key for the HMAC of voter identifiers. Unset: generated once, kept in data_dir.
    voter_secret: SecretStr | None = None

    max_upload_bytes: int = 15_000_000
    max_image_pixels: int = 40_000_000
    db_pool_size: int = 10

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
    def dsn(self) -> str:
        """A libpq connection URL for the configured or the embedded database."""
        if self.database_url is not None:
            return self.database_url
        return f"postgresql://golos@/golos?host={quote(str(self.pg_dir), safe='/')}"

    def voter_key(self) -> bytes:
        if self.voter_secret is not None:
            return self.voter_secret.get_secret_value().encode()
        path = self.data_dir.resolve() / "voter-secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # O_EXCL: two processes starting at once must not end up with two keys.
            try:
                with open(path, "x", encoding="ascii") as f:
                    f.write(secrets.token_hex(32))
                path.chmod(0o600)
            except FileExistsError:
                pass
        return path.read_text(encoding="ascii").strip().encode()


@lru_cache
def get_settings() -> Settings:
    return Settings()
