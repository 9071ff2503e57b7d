"""Settings: the voters' key is required outside development; the generated one is
one key, however many processes start at once."""

from __future__ import annotations

import multiprocessing
import stat
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from infra.settings import MissingVoterSecret, Settings, _generated_key


def _key_of(data_dir: Path, start: Barrier, keys: Queue[bytes]) -> None:
    start.wait()
    keys.put(Settings(data_dir=data_dir, voter_secret=None, development=True).voter_key())


def test_processes_starting_at_once_agree_on_one_generated_key(tmp_path: Path) -> None:
    n = 8
    context = multiprocessing.get_context("fork")
    start, keys = context.Barrier(n), context.Queue()
    processes = [context.Process(target=_key_of, args=(tmp_path, start, keys)) for _ in range(n)]
    for process in processes:
        process.start()
    found = {keys.get(timeout=60) for _ in processes}
    for process in processes:
        process.join(timeout=60)
    assert len(found) == 1
    [key] = found
    assert len(key) >= 32
    assert (tmp_path / "voter-secret").read_bytes() == key
    # Private, and no staging file left behind by the processes that lost the race.
    assert stat.S_IMODE((tmp_path / "voter-secret").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["voter-secret"]


def test_the_generated_key_is_kept_across_restarts(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path, voter_secret=None, development=True).voter_key()
    _generated_key.cache_clear()  # a new process
    assert Settings(data_dir=tmp_path, voter_secret=None, development=True).voter_key() == first


def test_a_short_configured_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 characters"):
        Settings(voter_secret="too short").voter_key()  # type: ignore[arg-type]


def test_without_a_voter_secret_the_key_is_refused_outside_development(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, voter_secret=None, development=False)
    with pytest.raises(MissingVoterSecret, match="GOLOS_VOTER_SECRET is not set") as refused:
        settings.voter_key()
    assert "GOLOS_DEVELOPMENT=1" in str(refused.value)
    assert list(tmp_path.iterdir()) == []  # nothing generated beside the database


def test_development_is_off_unless_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOLOS_DEVELOPMENT", raising=False)
    assert Settings().development is False
    monkeypatch.setenv("GOLOS_DEVELOPMENT", "1")
    assert Settings().development is True
