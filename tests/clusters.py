"""A PostgreSQL cluster of a test's own, for the tests that stop and start the
database: restarting the session's (``tests/conftest.py``: ``database``) would fail
every other test."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from infra import db
from infra.migrate import migrate
from infra.pg import EmbeddedPostgres
from infra.settings import get_settings


@contextmanager
def own_cluster(monkeypatch: pytest.MonkeyPatch, prefix: str) -> Iterator[EmbeddedPostgres]:
    """A new cluster in a temporary folder (named ``prefix``...), migrated, which this
    process's pool and settings use until the block ends, as do the processes the
    test starts (server, workers: they inherit the environment); its photos go in a
    folder of its own. Then the session's settings again, and the folder is gone."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o711)
    pg = EmbeddedPostgres(folder / "pg", fast_unsafe=True)
    pg.start()
    migrate(pg.dsn())
    monkeypatch.setenv("GOLOS_DATABASE_URL", pg.dsn())
    monkeypatch.setenv("GOLOS_PHOTO_DIR", str(folder / "photos"))
    # Set here too: a test run alone has no session database to have set it.
    monkeypatch.setenv("GOLOS_VOTER_SECRET", "test-secret-" + "x" * 32)
    get_settings.cache_clear()
    db.close_pool()
    try:
        yield pg
    finally:
        db.close_pool()
        pg.stop()
        monkeypatch.undo()
        get_settings.cache_clear()
        shutil.rmtree(folder, ignore_errors=True)
