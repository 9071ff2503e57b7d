"""Schema migrations with yoyo (plain SQL files in ``infra/migrations``), and the
database made ready for use: started when embedded, then migrated."""

from __future__ import annotations

from pathlib import Path

from yoyo import get_backend, read_migrations

from infra.pg import EmbeddedPostgres
from infra.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def _yoyo_uri(dsn: str) -> str:
    scheme, sep, rest = dsn.partition("://")
    if not sep or scheme not in ("postgres", "postgresql"):
        raise ValueError("the database URL must start with postgresql://")
    return f"postgresql+psycopg://{rest}"


def migrate(dsn: str) -> list[str]:
    """Apply pending migrations; return the ids applied."""
    backend = get_backend(_yoyo_uri(dsn))
    migrations = read_migrations(str(MIGRATIONS))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return [m.id for m in pending]


def ensure_database(settings: Settings) -> list[str]:
    """Make the configured database ready: start the embedded cluster if it is the
    one in use (creating it on first use), then apply pending migrations; return
    the ids applied."""
    if settings.embedded:
        EmbeddedPostgres(settings.pg_dir).start()
    return migrate(settings.dsn)
