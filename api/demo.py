"""``golos demo``: the whole platform on the seeded election, over real HTTP.

Loads the seeds, starts the API server and workers as separate processes,
simulates voters' phones uploading ballot photos (some over a flaky network,
some re-sending, some attacking), waits for every photo to be read, writes the
report and says how the flags compare with the seeded falsifications.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from psycopg import sql

from api.elections.service import load_election
from infra import db
from infra.settings import get_settings
from infra.storage import get_store
from mobile_stub.client import FlakyTransport, GolosClient, Outbox, Outcome, Submission
from seeds.crowd import SimulatedVoter, provable_precincts, simulate_crowd
from seeds.generate import SEED_DIR, load_seed, write_subset
from tally.report import write_report

# Every this-many-th request is dropped by the simulated network; phones retry.
DROP_EVERY = 9
# Every this-many-th voter's app re-sends a delivered submission (lost answer).
RESEND_EVERY = 25
READ_DEADLINE_SECONDS = 1800


def _say(message: str) -> None:
    print(message, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@lru_cache(maxsize=2)
def _ballot(template_dir: str) -> tuple[Image.Image, object]:
    from ocr.template import load_template

    loaded = load_template(Path(template_dir))
    reference = Image.open(Path(template_dir) / loaded.template.reference_image).convert("RGB")
    return reference, loaded.template


def voter_photo(voter: SimulatedVoter, template_dir: str, seed: int) -> bytes:
    """The photo a simulated voter's phone takes. Deterministic per voter."""
    from seeds.photos import mark_ballot, not_a_ballot_photo, phone_photo

    photo_of = voter.reuses or voter.submission_id
    rng = np.random.default_rng([seed, uuid.UUID(photo_of).int & 0xFFFFFFFF])
    if voter.kind == "not_a_ballot":
        return not_a_ballot_photo(rng)
    reference, template = _ballot(template_dir)
    marks = voter.marks
    if voter.reuses is not None:
        marks = _marks_of[voter.reuses]
    return phone_photo(mark_ballot(reference, template, marks, rng), rng)  # type: ignore[arg-type]


_marks_of: dict[str, list[str]] = {}


def _init_photo_worker(marks_of: dict[str, list[str]]) -> None:
    _marks_of.update(marks_of)


def _photo_job(args: tuple[SimulatedVoter, str, int]) -> tuple[SimulatedVoter, bytes]:
    voter, template_dir, seed = args
    return voter, voter_photo(voter, template_dir, seed)


@dataclass
class _Processes:
    server: subprocess.Popen[bytes]
    workers: subprocess.Popen[bytes]

    def stop(self) -> None:
        for process in (self.workers, self.server):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (self.workers, self.server):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _start(port: int, workers: int, logs: Path) -> _Processes:
    cli = [sys.executable, "-m", "api.cli"]
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    with open(logs / "server.log", "wb") as server_log, open(logs / "worker.log", "wb") as log:
        # The children keep their own copies of the log file descriptors.
        server = subprocess.Popen(
            [*cli, "serve", "--port", str(port)],
            stdout=server_log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        worker = subprocess.Popen(
            [*cli, "worker", "--processes", str(workers)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return _Processes(server, worker)
        except httpx.TransportError:
            pass
        if server.poll() is not None:
            break
        time.sleep(0.3)
    _Processes(server, worker).stop()
    raise RuntimeError(f"the API server did not start; see {logs / 'server.log'}")


def _progress(election_id: str) -> tuple[int, int]:
    with db.connection() as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status <> 'received')"
            " FROM submissions WHERE election_id = %s",
            (election_id,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _reset_crowd_data(election_id: str) -> None:
    with db.connection() as conn:
        for table in (
            "photo_fingerprint_bands",
            "photo_fingerprints",
            "photo_owners",
            "submissions",
            "flags",
            "photo_tallies",
            "photo_voters",
        ):
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE election_id = %s").format(sql.Identifier(table)),
                (election_id,),
            )


def run_demo(
    *,
    voters: int,
    stations: int,
    precincts: int,
    workers: int,
    out: Path,
    seed: int,
    reset: bool = False,
) -> dict[str, object]:
    started = time.monotonic()
    if not get_settings().embedded and not reset:
        raise RuntimeError(
            "the demo clears the seeded election's crowd data; against GOLOS_DATABASE_URL "
            "it runs only with --reset"
        )
    out.mkdir(parents=True, exist_ok=True)
    folder = SEED_DIR
    if precincts:
        folder = out / "seed-subset"
        write_subset(SEED_DIR, folder, precincts)
    election = load_seed(folder)
    with db.connection() as conn:
        loaded = load_election(conn, folder, get_store())
    _say(
        f"loaded {loaded.election_id}: {loaded.precincts} precincts, "
        f"{loaded.official_rows} official protocols"
    )
    # The demo starts from no crowd data, so that its figures describe this run.
    _reset_crowd_data(election.election_id)

    crowd = simulate_crowd(election, voters, stations, np.random.default_rng(seed))
    kinds = Counter(v.kind for v in crowd)
    _say(
        f"simulating {len(crowd)} phones at {len({v.precinct_id for v in crowd})} stations: "
        + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    )

    port = _free_port()
    processes = _start(port, workers, out)
    outcomes: list[Outcome] = []
    replays = 0
    try:
        base = f"http://127.0.0.1:{port}"
        transport = FlakyTransport(httpx.HTTPTransport(), drop_every=DROP_EVERY)
        client = GolosClient(base, transport=transport)
        outbox = Outbox(out / "phone-outbox")
        template_dir = str(folder / "ballot")
        marks_of = {v.submission_id: v.marks for v in crowd}
        last_report = 0.0
        with (
            ProcessPoolExecutor(
                max_workers=max(1, workers), initializer=_init_photo_worker, initargs=(marks_of,)
            ) as photos,
            ThreadPoolExecutor(max_workers=4) as senders,
        ):
            sends = []
            for voter, photo in photos.map(
                _photo_job, [(v, template_dir, seed) for v in crowd], chunksize=8
            ):
                outbox.add(
                    Submission(
                        submission_id=voter.submission_id,
                        election_id=election.election_id,
                        precinct_id=voter.precinct_id,
                        declared_choice=voter.declared_choice,
                        voter_id=voter.phone,
                    ),
                    photo,
                )
                sends.append(senders.submit(outbox.send, voter.submission_id, client))
                if time.monotonic() - last_report > 5:
                    last_report = time.monotonic()
                    received, read = _progress(election.election_id)
                    _say(
                        f"  photos taken {len(sends)}/{len(crowd)}, "
                        f"received {received}, read {read}"
                    )
            for future in sends:
                if (outcome := future.result()) is not None:
                    outcomes.append(outcome)
        undelivered = outbox.pending()
        for sid in undelivered:  # the network came back: the outbox empties
            if (outcome := outbox.send(sid, GolosClient(base))) is not None:
                outcomes.append(outcome)

        # Some apps never saw the answer and send again: the server answers from the
        # first result and counts nothing twice.
        plain = GolosClient(base)
        for voter in crowd[::RESEND_EVERY]:
            resend = voter_photo(voter, template_dir, seed) if voter.reuses is None else None
            if resend is None:
                continue
            response = plain.submit(
                Submission(
                    voter.submission_id,
                    election.election_id,
                    voter.precinct_id,
                    voter.declared_choice,
                    voter.phone,
                ),
                resend,
            )
            replays += response.status_code == 200

        deadline = time.monotonic() + READ_DEADLINE_SECONDS
        while True:
            received, read = _progress(election.election_id)
            if read >= received:
                break
            if time.monotonic() > deadline or processes.workers.poll() is not None:
                raise RuntimeError(
                    f"photos are not being read ({read}/{received}); see {out / 'worker.log'}"
                )
            if time.monotonic() - last_report > 5:
                last_report = time.monotonic()
                _say(f"  reading photos: {read}/{received}")
            time.sleep(0.5)
    finally:
        processes.stop()

    with db.connection() as conn:
        summary = write_report(conn, election.election_id, out)
        flagged = {
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT precinct_id FROM flags WHERE election_id = %s"
                " AND flag = 'crowd_exceeds_official' AND source = 'photos'",
                (election.election_id,),
            )
        }
    provable = set(provable_precincts(crowd, election.official))
    falsified = {p for p, f in election.falsified.items() if f["scheme"] != "arithmetic_slip"}
    result = {
        "election": election.election_id,
        "phones": len(crowd),
        "photos_received": summary["crowd"]["photos_received"],
        "by_status": summary["crowd"]["by_status"],
        "not_counted_by_reason": summary["crowd"]["not_counted_by_reason"],
        "network_retries": sum(o.attempts - 1 for o in outcomes),
        "refused_at_upload": sum(o.http_status >= 400 for o in outcomes),
        "repeated_submissions_answered_from_first_result": replays,
        "precincts_flagged": len(flagged),
        "falsified_precincts_provable_by_crowd": len(provable),
        "caught": len(provable & flagged),
        "missed": sorted(provable - flagged),
        "clean_precincts_flagged": sorted(flagged - falsified),
        "seconds": round(time.monotonic() - started, 1),
    }
    (out / "demo-summary.json").write_text(json.dumps(result, indent=2) + "\n")
    _print_summary(result, out)
    return result


def _print_summary(r: dict, out: Path) -> None:
    statuses = r["by_status"]
    _say("")
    _say(f"Golos demo: {r['election']}, {r['seconds']} s")
    _say(
        f"  photos received      {r['photos_received']} from {r['phones']} phones "
        f"({r['network_retries']} re-sends over the flaky network)"
    )
    _say(f"  verified             {statuses.get('verified', 0)}")
    for status in ("review", "rejected", "superseded"):
        if statuses.get(status):
            _say(f"  {status:<20} {statuses[status]}")
    for reason, n in r["not_counted_by_reason"].items():
        _say(f"    {reason:<18} {n}")
    _say(
        f"  repeated uploads     {r['repeated_submissions_answered_from_first_result']} "
        "answered from the first result, none counted twice"
    )
    _say(f"  precincts flagged    {r['precincts_flagged']} (crowd_exceeds_official)")
    _say(
        f"  seeded falsified precincts the crowd can prove: "
        f"{r['falsified_precincts_provable_by_crowd']}, caught {r['caught']}, "
        f"missed {len(r['missed'])}"
    )
    _say(f"  clean precincts flagged: {len(r['clean_precincts_flagged'])}")
    _say(f"  report: {out}/report.html (and discrepancies, precincts, summary.json)")
