"""PostgreSQL restarted while phones upload: the API answers 503 with Retry-After
(never 500) while the database is away, the phones' retries are accepted once it
is back, the workers carry on by themselves, and every upload is counted once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg

from api.elections.service import load_election
from api.worker import failed, spawn_workers
from infra.pg import EmbeddedPostgres
from infra.settings import get_settings
from infra.storage import photo_store
from tests.faults.conftest import Phone, Server, Upload, settled, wait_for

UPLOADS = 30


def test_uploads_during_a_database_restart_are_each_counted_once(
    own_cluster: EmbeddedPostgres,
    election_dir: Path,
    serve: Callable[[], Server],
    phones: Callable[[str], Phone],
    tmp_path: Path,
) -> None:
    dsn = own_cluster.dsn()
    with psycopg.connect(dsn) as conn:
        load_election(conn, election_dir, photo_store(get_settings()))
        conn.commit()
    server = serve()
    phone = phones(dsn)
    uploads: list[Upload] = [phone.new_upload(precinct=f"p{1 + n % 3}") for n in range(UPLOADS)]
    with open(tmp_path / "workers.log", "wb") as log:
        workers = spawn_workers(2, until_empty=False, log=log)
    errors: list[BaseException] = []

    def stream(share: list[Upload]) -> None:
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                for upload in share:
                    phone.deliver(client, upload, seconds=60)
                    time.sleep(0.05)
        except BaseException as exc:  # the test's thread reports it
            errors.append(exc)

    # Two phones' streams at once, each upload retried until acknowledged.
    senders = [
        threading.Thread(target=stream, args=(uploads[n::2],), name=f"phones-{n}") for n in range(2)
    ]
    try:
        for sender in senders:
            sender.start()
        began = time.monotonic()
        wait_for(lambda: bool(errors) or sum(u.acknowledged for u in uploads) >= 5, 60, "uploads")
        assert not errors, errors
        print(f"5 uploads in {time.monotonic() - began:.1f} s")
        own_cluster.stop()
        # Down until phones are told so (a request waits up to infra.db.WAIT_SECONDS
        # for the database before the 503), uploads arriving meanwhile.
        wait_for(lambda: any(503 in u.answers for u in uploads), 30, "a 503")
        own_cluster.start()
        print(f"database back after {time.monotonic() - began:.1f} s")
        for sender in senders:
            sender.join(timeout=120)
            assert not sender.is_alive(), "the phones did not finish"
        print(f"all acknowledged after {time.monotonic() - began:.1f} s")
        assert not errors, errors
        statuses = settled(dsn, uploads, get_settings().photos_path)
        print(f"all read after {time.monotonic() - began:.1f} s")
        healthy = httpx.get(server.url + "/healthz", timeout=5)
    finally:
        workers.stop(grace=20)
    answers = [a for u in uploads for a in u.answers]
    refused = [u for u in uploads if 503 in u.answers]
    print(f"answers: {sorted(set(map(str, answers)))}; {len(refused)} uploads saw a 503")
    assert 500 not in answers, [u.answers for u in uploads if 500 in u.answers]
    assert refused, "no upload arrived while the database was down"
    assert all(ra == "5" for u in refused for ra in u.retry_after), "503 without Retry-After"
    assert list(statuses.values()).count("verified") >= UPLOADS - 3, statuses
    # Recovered without a restart: the same server and worker processes.
    assert healthy.status_code == 200 and server.process.poll() is None
    assert workers.replaced == 0
    assert not failed([p.returncode for p in workers.processes])
