"""Benchmark: the upload path (POST /v1/submissions) against a bare endpoint, and the
queue's drain rate, with several API processes and several workers on one PostgreSQL.

Starts a throwaway embedded cluster (durable: fsync on, as in production), loads a
small election with the seeded ballot template, makes --voters verified voters
(device tokens; the per-voter limit and quarantine threshold stay on, so each voter
sends at most --per-voter uploads) and phone photos of marked ballots (~300 KB JPEGs with EXIF:
GPS, maker note, orientation; seeds/photos.py). Every limit and quarantine threshold
stays on, as configured by default: the phones sit in --networks networks (each
request says its address in X-Forwarded-For, which uvicorn trusts from 127.0.0.1 as
it would from a reverse proxy there), so the per-network counters do their work.

Then runs, under uvicorn with --api-processes worker processes each (no access
log, as ``golos serve``):

- the real API (``api.main:create_app``);
- a bare FastAPI app whose one endpoint only parses the same multipart body;

and drives both, alternately, with the same client running in a process of its
own: --concurrency requests in flight, --count uploads a run (each a new
submission: its own id, a unique photo), --runs runs each. The client (--client):

- ``raw`` (default): each upload on a connection of its own, as phones send them,
  written on the socket by hand: 0.2-0.5 ms of CPU per upload, so the servers
  have the cores;
- ``httpx``: httpx's AsyncClient on 32 kept-alive connections, as the first
  figures of issue 11 were measured: 6-8 ms of CPU per upload on this machine,
  as much as the API itself, on the same two cores (and the kernel spread its
  connections 31/1 or 24/8 over two processes).

Prints for both, side by side, accepted uploads per second, p50 and p99
latency, and the real API's share of the bare endpoint's throughput: the median
of the runs. Then --runs paced runs of the real API: uploads sent at --rate a
second (Poisson arrivals, each on its own connection, however many are in
flight), for latency at that load: with a fixed number in flight, latency is
that number over the throughput by construction. Then starts
--workers worker processes (``golos worker --processes N``) on the uploaded
backlog and prints how many photos they read per second over --drain-seconds.

    .venv/bin/python bench/ingest.py [--api-processes 2] [--workers 2]
        [--concurrency 32] [--count 1000] [--runs 3] [--drain-seconds 60] [--networks 250]
        [--client raw|httpx] [--rate 200] [--warm-wal 1GB]

Before the runs, --warm-wal of write-ahead log is written and recycled, as
``golos db warm-wal`` does before the polls open: on a fresh cluster every commit
waits while PostgreSQL creates a new log segment (infra/CAPACITY.md section 4).

Everything listens on and is sent to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import pickle
import queue
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

ROOT = Path(__file__).resolve().parent.parent
ELECTION = "by-2020-president"  # the seeded ballot template's election
OPTIONS = ["dmitriyev", "kanapatskaya", "lukashenko", "tsikhanouskaya", "charachen", "against_all"]
# Uploads spread over many stations, as on election day: no station sees a burst
# (the quarantine's station threshold stays on).
PRECINCTS = 1000
BOUNDARY = "golosbenchboundary7f3a9c"


# --- the bare endpoint (imported by uvicorn in its worker processes) ---------------


def bare_app() -> Any:
    """A FastAPI app whose one endpoint parses the upload's multipart body (in
    memory, as the real route does) and answers 202: the ceiling of the server
    settings, the framework and the body's parsing."""
    app = FastAPI()

    @app.post("/v1/submissions")
    async def submit(request: Request) -> JSONResponse:
        form = await request.form(max_files=1, max_fields=10)
        photo = form.get("photo")
        size = len(await photo.read()) if photo is not None and not isinstance(photo, str) else 0
        await form.close()
        return JSONResponse({"status": "received", "bytes": size}, status_code=202)

    return app


# --- seeding -------------------------------------------------------------------------


def _write_election(folder: Path) -> None:
    import json

    from seeds.ballot import BY2020_DESIGN, write_template

    folder.mkdir(parents=True)
    (folder / "election.json").write_text(
        json.dumps(
            {
                "format": "election/1",
                "id": ELECTION,
                "name": "Ingest benchmark",
                "date": "2020-08-09",
                "options": [{"id": o, "label": o.title()} for o in OPTIONS],
            }
        ),
        encoding="utf-8",
    )
    rows = ["precinct_id,region,district,name,registered"]
    rows += [f"p{i},Region,District {i % 2},Station {i},1500" for i in range(1, PRECINCTS + 1)]
    (folder / "precincts.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    write_template(BY2020_DESIGN, folder / "ballot")


def _photos(ballot: Path, n: int, seed: int) -> list[tuple[bytes, str]]:
    """``n`` phone photos of ballots marked for one option each: (JPEG, option)."""
    from PIL import Image

    from ocr.template import load_template
    from seeds.photos import mark_ballot, phone_photo, random_conditions

    template = load_template(ballot).template
    reference = Image.open(ballot / template.reference_image).convert("RGB")
    out = []
    for i in range(n):
        rng = np.random.default_rng(seed + i)
        choice = OPTIONS[i % len(OPTIONS)]
        page = mark_ballot(reference, template, [choice], rng, style="cross")
        # A current phone's snapshot: larger and less compressed than the seeds' mix.
        cond = replace(
            random_conditions(rng),
            long_side=int(rng.integers(1800, 2101)),
            jpeg_quality=int(rng.integers(84, 90)),
            blur_sigma=float(rng.uniform(0.0, 0.6)),
        )
        out.append((phone_photo(page, rng, cond), choice))
    return out


def _dqt_entry(jpeg: bytes) -> int:
    """The offset of the last (highest-frequency) entry of the first 8-bit
    quantisation table."""
    pos = 2
    while pos + 4 <= len(jpeg):
        marker = jpeg[pos + 1]
        length = int.from_bytes(jpeg[pos + 2 : pos + 4], "big")
        if marker == 0xDB and jpeg[pos + 4] >> 4 == 0:
            return pos + 5 + 63
        pos += 2 + length
    raise ValueError("no 8-bit DQT")


def variant(jpeg: bytes, k: int) -> bytes:
    """The photo with its highest-frequency quantiser changed: a valid JPEG that
    decodes to all but the same picture, with other bytes (a new photo to the
    platform, read in full by the worker rather than rejected as a duplicate)."""
    at = _dqt_entry(jpeg)
    data = bytearray(jpeg)
    data[at] = 1 + (data[at] - 1 + 1 + k % 254) % 255
    return bytes(data)


def _body(fields: dict[str, str], photo: bytes) -> bytes:
    parts = []
    for name, value in fields.items():
        head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(f"{head}{value}\r\n".encode())
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photo"; filename="b.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + photo
        + b"\r\n"
    )
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


# --- the client (a process of its own) --------------------------------------------


async def _drive(
    url: str, requests: list[tuple[str, str, bytes]], concurrency: int
) -> tuple[float, list[float], dict[int | str, int]]:
    import httpx

    latencies: list[float] = []
    codes: dict[int | str, int] = {}
    pending: asyncio.Queue[tuple[str, str, bytes]] = asyncio.Queue()
    for item in requests:
        pending.put_nowait(item)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=120.0) as client:

        async def one_client() -> None:
            while True:
                try:
                    token, address, body = pending.get_nowait()
                except asyncio.QueueEmpty:
                    return
                headers = {
                    "Authorization": f"Bearer {token}",
                    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                    "X-Forwarded-For": address,  # the phone's network, via the proxy
                }
                started = time.perf_counter()
                try:
                    answer = await client.post(url, content=body, headers=headers)
                except httpx.TransportError as exc:
                    # Counted, as a phone would see it (no answer), not fatal to the run.
                    outcome: int | str = type(exc).__name__
                else:
                    outcome = answer.status_code
                latencies.append(time.perf_counter() - started)
                codes[outcome] = codes.get(outcome, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, codes


def _raw_requests(url: str, requests: list[tuple[str, str, bytes]]) -> tuple[str, int, list[bytes]]:
    """Each upload's head, made before the clock starts: (host, port, heads)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    heads = [
        (
            f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"X-Forwarded-For: {address}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode("ascii")
        for token, address, body in requests
    ]
    return host, port, heads


async def _upload_raw(host: str, port: int, head: bytes, body: bytes) -> int | str:
    """One upload on a connection of its own: the answer's status, or the name of
    the error that left it without one (counted, as a phone would see it, not fatal
    to the run)."""
    writer: asyncio.StreamWriter | None = None
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(head)
        writer.write(body)
        await writer.drain()
        answer = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in answer.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
        return int(answer[9:12])
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        return type(exc).__name__
    finally:
        if writer is not None:
            writer.close()


async def _drive_raw(
    url: str, requests: list[tuple[str, str, bytes]], concurrency: int
) -> tuple[float, list[float], dict[int | str, int]]:
    """``_drive``'s work written on the socket by hand, as phones send it: each upload
    on a connection of its own (a phone sends one or two; a proxy in front would
    not pool them either), its status line and Content-Length parsed and its body
    read; the requests' bytes made before the clock starts. A few per cent of
    httpx's CPU per request, so the client does not take the cores the servers are
    measured on. A connection of its own also lets the kernel hand each upload to
    whichever API process accepts first: 32 kept-alive connections were spread
    31/1, 24/8 over two processes (``ss -tnp``), one process working for both."""
    host, port, heads = _raw_requests(url, requests)
    latencies: list[float] = []
    codes: dict[int | str, int] = {}
    todo = iter(range(len(requests)))

    async def one_client() -> None:
        for i in todo:
            started = time.perf_counter()
            outcome = await _upload_raw(host, port, heads[i], requests[i][2])
            latencies.append(time.perf_counter() - started)
            codes[outcome] = codes.get(outcome, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, codes


async def _drive_paced(
    url: str, requests: list[tuple[str, str, bytes]], rate: float
) -> tuple[float, list[float], dict[int | str, int]]:
    """The uploads sent at ``rate`` a second, as phones that do not wait for each
    other do (Poisson arrivals, seeded), however many are in flight: latency at a
    given load, not at a given number in flight. Each latency runs from the
    moment its upload was due, so a client that falls behind cannot hide the
    wait (no coordinated omission)."""
    host, port, heads = _raw_requests(url, requests)
    arrivals = random.Random(1)
    latencies: list[float] = []
    codes: dict[int | str, int] = {}

    async def one(i: int, due: float) -> None:
        outcome = await _upload_raw(host, port, heads[i], requests[i][2])
        latencies.append(time.perf_counter() - due)
        codes[outcome] = codes.get(outcome, 0) + 1

    started = due = time.perf_counter()
    tasks = []
    for i in range(len(requests)):
        due += arrivals.expovariate(rate)
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    return time.perf_counter() - started, latencies, codes


CLIENTS = {"raw": _drive_raw, "httpx": _drive}


def _client(url: str, path: str, concurrency: int, kind: str, rate: float, out: Any) -> None:
    with open(path, "rb") as handle:
        requests = pickle.load(handle)
    started = time.process_time()
    if rate:
        elapsed, latencies, codes = asyncio.run(_drive_paced(url, requests, rate))
    else:
        elapsed, latencies, codes = asyncio.run(CLIENTS[kind](url, requests, concurrency))
    # The client's own CPU: it shares the machine's cores with the servers.
    out.put((elapsed, latencies, codes, time.process_time() - started))


def run_client(
    url: str,
    path: Path,
    concurrency: int,
    watched: tuple[int, ...] = (),
    kind: str = "raw",
    rate: float = 0.0,
) -> dict[str, Any]:
    """Run the client on the requests in ``path``; with ``watched`` pids, also the CPU
    seconds each (and its children) used meanwhile."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    process = ctx.Process(target=_client, args=(url, str(path), concurrency, kind, rate, out))
    before = [cpu_seconds(pid) for pid in watched]
    process.start()
    while True:  # the client's answer, or an error if it died without one
        try:
            elapsed, latencies, codes, client_cpu = out.get(timeout=1.0)
            break
        except queue.Empty:
            if not process.is_alive():
                raise RuntimeError(f"the client died (exit code {process.exitcode})") from None
    process.join()
    used = [cpu_seconds(pid) - b for pid, b in zip(watched, before, strict=True)]
    latencies.sort()
    accepted = codes.get(202, 0)
    return {
        "rate": accepted / elapsed,
        "p50": 1000 * latencies[len(latencies) // 2],
        "p99": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "codes": codes,
        "cpu": used,  # seconds, per watched pid
        "client_cpu": client_cpu,  # seconds
    }


# --- CPU time, from /proc (Linux) ---------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_stats() -> dict[int, tuple[int, float]]:
    """Every process's (parent pid, CPU seconds of itself and its reaped children)."""
    found: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        ticks = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
        found[int(entry.name)] = (int(fields[1]), ticks / _TICK)
    return found


def cpu_seconds(root: int) -> float:
    """CPU seconds used so far by ``root`` and every process under it."""
    stats = _proc_stats()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo += children.get(pid, [])
    return total


# --- servers ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(app: str, processes: int, env: dict[str, str], log: Path) -> Iterator[tuple[str, int]]:
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(processes), "--no-access-log"]
    with open(log, "ab") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{app} did not start; see {log}") from None
                time.sleep(0.2)
        time.sleep(1.0 + 0.5 * processes)  # every process listening
        yield f"http://127.0.0.1:{port}/v1/submissions", process.pid
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _received(dsn: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'received'), count(*) FROM submissions"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _networks_and_holds(dsn: str, scope: str) -> tuple[int, int]:
    """How many networks the per-network limit counted, and how many submissions the
    quarantine holds (the limits were at work, and held nothing of an honest load)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(DISTINCT key) FROM rate_limits WHERE scope = %s),"
            " (SELECT count(*) FROM submission_holds)",
            (scope,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-processes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--count", type=int, default=1000, help="uploads per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--photos", type=int, default=24, help="distinct phone photos made")
    parser.add_argument(
        "--per-voter", type=int, default=2, help="uploads per voter (within both thresholds)"
    )
    parser.add_argument(
        "--networks", type=int, default=250, help="networks the phones send from (/24 each)"
    )
    parser.add_argument("--drain-seconds", type=float, default=60.0)
    parser.add_argument(
        "--rate",
        type=float,
        default=200.0,
        help="uploads a second sent to the real API in its paced runs (0: none)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--warm-wal",
        default="1GB",
        help="write-ahead log written and recycled before the runs, as `golos db warm-wal`"
        " before the polls open (0: none, a fresh cluster's new segments stall commits)",
    )
    parser.add_argument(
        "--client",
        choices=sorted(CLIENTS),
        default="raw",
        help="raw: requests written on the socket by hand; httpx: httpx's AsyncClient",
    )
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="golos-bench-ingest-"))
    scratch.chmod(0o711)
    env = dict(os.environ)
    env.update(
        GOLOS_DATA_DIR=str(scratch / "data"),
        GOLOS_VOTER_SECRET=secrets.token_hex(32),
        GOLOS_SECRET_KEY=secrets.token_hex(32),
        PYTHONPATH=str(ROOT),
    )
    env.pop("GOLOS_DATABASE_URL", None)
    os.environ.update(env)
    from api.cli import ensure_database
    from api.elections.service import load_election
    from api.voters.service import issue_device_token
    from infra import db
    from infra.pg import EmbeddedPostgres
    from infra.settings import get_settings
    from infra.storage import photo_store

    settings = get_settings()
    paced = args.runs if args.rate else 0
    total = args.count * (args.runs + 1 + paced)  # one warm-up run of the real API
    voters = -(-total // args.per_voter)
    print(
        f"ingest: {args.api_processes} API processes (uvicorn, no access log),"
        f" {args.workers} worker processes, one PostgreSQL (embedded, fsync on)",
        flush=True,
    )
    print(
        f"  limits: {settings.submissions_per_voter} per voter per"
        f" {settings.submissions_per_voter_seconds} s (on: {voters} voters send"
        f" {args.per_voter} each); {settings.submissions_per_network} per network per"
        f" {settings.submissions_per_network_seconds} s ({args.networks} networks);"
        " quarantine per voter, per network at a station and per station: on,"
        f" {PRECINCTS} stations",
        flush=True,
    )
    ensure_database()
    try:
        if args.warm_wal != "0":
            import psycopg

            from infra.wal import keep_at_least, parse_size, warm_wal

            admin_dsn = EmbeddedPostgres(settings.pg_dir).admin_dsn()
            with psycopg.connect(admin_dsn, autocommit=True) as admin:
                keep_at_least(admin, parse_size(args.warm_wal))
                warmed = warm_wal(admin, parse_size(args.warm_wal))
            print(
                f"  write-ahead log: {warmed.written // 1024**2} MB written and recycled"
                " before the runs (golos db warm-wal, as before the polls open)",
                flush=True,
            )
        started = time.perf_counter()
        folder = scratch / "election"
        _write_election(folder)
        with db.connection() as conn:
            load_election(conn, folder, photo_store(settings))
            conn.commit()
            tokens = [issue_device_token(conn, ELECTION, f"+3752{i:08d}") for i in range(voters)]
            conn.commit()
        photos = _photos(folder / "ballot", args.photos, args.seed)
        sizes = [len(p) for p, _ in photos]
        print(
            f"  seeded: election with {PRECINCTS} stations, {voters} verified voters,"
            f" {len(photos)} phone photos (JPEG with EXIF, median"
            f" {statistics.median(sizes) / 1000:.0f} KB, made unique per upload) in"
            f" {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        files = []
        for run in range(args.runs + 1 + paced):
            requests = []
            for i in range(args.count):
                n = run * args.count + i
                photo, choice = photos[n % len(photos)]
                fields = {
                    "election_id": ELECTION,
                    "precinct_id": f"p{1 + n % PRECINCTS}",
                    "declared_choice": choice,
                    "submission_id": str(uuid.uuid4()),
                }
                body = _body(fields, variant(photo, n // len(photos)))
                voter = n // args.per_voter
                address = f"10.{voter % args.networks // 250}.{voter % args.networks % 250}.7"
                requests.append((tokens[voter], address, body))
            path = scratch / f"run{run}.pickle"
            path.write_bytes(pickle.dumps(requests))
            files.append(path)

        log = scratch / "servers.log"
        real: list[dict[str, Any]] = []
        bare: list[dict[str, Any]] = []
        steady: list[dict[str, Any]] = []  # the real API at --rate
        postmaster = int((settings.pg_dir / "data" / "postmaster.pid").read_text().split()[0])
        with (
            server("api.main:create_app", args.api_processes, env, log) as (real_url, real_pid),
            server("bench.ingest:bare_app", args.api_processes, env, log) as (bare_url, bare_pid),
        ):
            run_client(real_url, files[0], args.concurrency, kind=args.client)  # warm-up
            for run in range(args.runs):
                bare.append(
                    run_client(bare_url, files[run + 1], args.concurrency, (bare_pid,), args.client)
                )
                real.append(
                    run_client(
                        real_url,
                        files[run + 1],
                        args.concurrency,
                        (real_pid, postmaster),
                        args.client,
                    )
                )
                print(
                    f"  run {run + 1}: real {real[-1]['rate']:.0f}/s"
                    f" p99 {real[-1]['p99']:.0f} ms {real[-1]['codes']};"
                    f" bare {bare[-1]['rate']:.0f}/s p99 {bare[-1]['p99']:.0f} ms"
                    f" {bare[-1]['codes']}",
                    flush=True,
                )
            for run in range(paced):
                steady.append(
                    run_client(
                        real_url,
                        files[args.runs + 1 + run],
                        args.concurrency,
                        (real_pid, postmaster),
                        rate=args.rate,
                    )
                )
                print(
                    f"  paced run {run + 1}: real at {args.rate:.0f}/s offered:"
                    f" {steady[-1]['rate']:.0f}/s accepted, p50 {steady[-1]['p50']:.0f} ms,"
                    f" p99 {steady[-1]['p99']:.0f} ms {steady[-1]['codes']}",
                    flush=True,
                )

        if any(isinstance(code, str) for r in real + bare + steady for code in r["codes"]):
            # Uploads that got no answer: what the servers said about them.
            said = [
                line
                for line in log.read_text(errors="replace").splitlines()
                if not line.startswith("INFO")
            ]
            print("  servers' log, all but INFO lines (last 30):", *said[-30:], sep="\n    ")

        def med(results: list[dict[str, Any]], key: str) -> float:
            return statistics.median(r[key] for r in results)

        ratios = [r["rate"] / b["rate"] for r, b in zip(real, bare, strict=True)]
        print(
            f"\nuploads: {args.count} a run at concurrency {args.concurrency},"
            f" median of {args.runs} runs"
        )
        print(f"  {'':<28}{'accepted/s':>12}{'p50 ms':>10}{'p99 ms':>10}")
        print(
            f"  {'real API (POST /v1/...)':<28}{med(real, 'rate'):>12.0f}"
            f"{med(real, 'p50'):>10.0f}{med(real, 'p99'):>10.0f}"
        )
        print(
            f"  {'bare endpoint (parse only)':<28}{med(bare, 'rate'):>12.0f}"
            f"{med(bare, 'p50'):>10.0f}{med(bare, 'p99'):>10.0f}"
        )
        print(f"  real / bare: {statistics.median(ratios):.0%}")
        if paced:
            label = f"real API, {args.rate:.0f}/s sent"
            print(
                f"  {label:<28}{med(steady, 'rate'):>12.0f}"
                f"{med(steady, 'p50'):>10.0f}{med(steady, 'p99'):>10.0f}"
                f"   (paced: Poisson arrivals, {args.count} a run, {paced} runs)"
            )
        api_ms = statistics.median(1000 * r["cpu"][0] / args.count for r in real)
        pg_ms = statistics.median(1000 * r["cpu"][1] / args.count for r in real)
        bare_ms = statistics.median(1000 * b["cpu"][0] / args.count for b in bare)
        client_ms = statistics.median(1000 * r["client_cpu"] / args.count for r in real + bare)
        print(
            f"  CPU per upload: API processes {api_ms:.1f} ms (bare {bare_ms:.1f} ms),"
            f" PostgreSQL {pg_ms:.1f} ms, the client {client_ms:.1f} ms (on the same cores)"
        )

        from infra.ratelimit import Scope

        networks, held = _networks_and_holds(settings.dsn, Scope.SUBMISSION_NETWORK)
        print(f"  networks counted by the per-network limit: {networks}; held: {held}")
        waiting, _ = _received(settings.dsn)
        print(
            f"\nqueue drain: {args.workers} worker processes (golos worker --processes"
            f" {args.workers}) on a backlog of {waiting} photos",
            flush=True,
        )
        command = [sys.executable, "-m", "api.cli", "worker", "--processes", str(args.workers)]
        with open(log, "ab") as out:
            workers = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
        try:
            time.sleep(5.0)  # start-up: processes, template cache, first job
            first, moment = _received(settings.dsn)[0], time.perf_counter()
            end = moment + args.drain_seconds
            left = first
            while time.perf_counter() < end and left > 0:
                time.sleep(1.0)
                left = _received(settings.dsn)[0]
            elapsed = time.perf_counter() - moment
        finally:
            workers.send_signal(signal.SIGTERM)
            try:
                workers.wait(60)
            except subprocess.TimeoutExpired:
                workers.kill()
                workers.wait()
        read = first - left
        print(
            f"  {read} photos read in {elapsed:.0f} s: {read / elapsed:.2f} photos/s"
            f" ({read / elapsed / args.workers:.2f} per worker process)"
        )
    finally:
        db.close_pool()
        EmbeddedPostgres(get_settings().pg_dir).stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
