"""The group writer: one write for what queues while a write is in flight, each caller its own answer."""

import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from database.group_commit import GroupWriter, WriteInterrupted

ROOT = Path(__file__).resolve().parent.parent


class Recorder:
    """A write that records its batches and can be held inside its first call."""

    def __init__(self, fail_on=None):
        self.batches = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on

    def __call__(self, items):
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"cannot write {self.fail_on}")
        return [item * 10 for item in items]


def _submit(writer, item) -> Future:
    """``writer.submit(item)`` on a daemon thread: a caller left waiting fails the test, not hangs it."""
    future = Future()

    def run():
        try:
            future.set_result(writer.submit(item))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future


def _queue_behind_first(writer, recorder, items):
    """Submit items[0], wait until its write is in flight, then submit the rest and let it finish."""
    futures = [_submit(writer, items[0])]
    assert recorder.entered.wait(10)
    futures += [_submit(writer, item) for item in items[1:]]
    deadline = time.monotonic() + 10
    while len(writer._queue) < len(items) - 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    recorder.release.set()
    return futures


def test_a_lone_item_is_written_alone_at_once():
    recorder = Recorder()
    recorder.release.set()
    assert GroupWriter(recorder).submit(4) == 40
    assert recorder.batches == [[4]]


def test_items_queued_during_a_write_share_the_next_and_each_gets_its_own_result():
    recorder = Recorder()
    writer = GroupWriter(recorder)
    futures = _queue_behind_first(writer, recorder, list(range(1, 9)))
    assert [f.result(10) for f in futures] == [n * 10 for n in range(1, 9)]
    assert recorder.batches[0] == [1] and sorted(recorder.batches[1]) == list(range(2, 9))
    assert len(recorder.batches) == 2


def test_a_failed_write_fails_every_item_in_it_and_the_next_write_goes_ahead():
    recorder = Recorder(fail_on=5)
    writer = GroupWriter(recorder)
    futures = _queue_behind_first(writer, recorder, list(range(1, 8)))
    assert futures[0].result(10) == 10
    for future in futures[1:]:
        with pytest.raises(ValueError, match="cannot write 5"):
            future.result(10)
    assert writer.submit(9) == 90  # not left busy by the failure


def test_a_write_never_holds_more_than_the_limit_and_nothing_queued_is_stranded():
    recorder = Recorder()
    writer = GroupWriter(recorder, limit=3)
    futures = _queue_behind_first(writer, recorder, list(range(1, 11)))
    assert sorted(f.result(10) for f in futures) == [n * 10 for n in range(1, 11)]
    assert max(len(b) for b in recorder.batches) == 3
    assert sorted(x for b in recorder.batches for x in b) == list(range(1, 11))


def test_a_write_that_answers_the_wrong_number_of_items_is_an_error():
    short = GroupWriter(lambda items: [])
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        short.submit("a")


GEVENT_SCRIPT = """
from gevent import monkey
monkey.patch_all()
import gevent
from database.group_commit import GroupWriter, WriteInterrupted
batches = []
def write(items):
    batches.append(len(items))
    gevent.sleep(0.005)  # a database round trip: other greenlets run and queue up
    return [i + 1 for i in items]
writer = GroupWriter(write)
jobs = [gevent.spawn(writer.submit, n) for n in range(200)]
gevent.joinall(jobs, timeout=20, raise_error=True)
assert [j.value for j in jobs] == [n + 1 for n in range(200)], "a wrong or missing result"
assert sum(batches) == 200 and max(batches) > 1 and len(batches) < 200, batches
print("ok", len(batches))
"""


def test_greenlets_under_gevent_share_writes_without_deadlock():
    pytest.importorskip("gevent")
    done = subprocess.run(
        [sys.executable, "-c", GEVENT_SCRIPT], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok ")


def test_an_interrupt_stays_with_the_writer_and_the_others_get_an_ordinary_error():
    class Interrupting(Recorder):
        def __call__(self, items):
            super().__call__(items)
            if len(items) > 1:
                raise KeyboardInterrupt
            return [item * 10 for item in items]

    recorder = Interrupting()
    writer = GroupWriter(recorder)
    futures = _queue_behind_first(writer, recorder, [1, 2, 3])
    assert futures[0].result(10) == 10
    errors = [f.exception(10) for f in futures[1:]]
    # The writer of [2, 3] keeps its interrupt; the other learns its write failed.
    assert sorted(type(e).__name__ for e in errors) == ["KeyboardInterrupt", "WriteInterrupted"]
    assert any(isinstance(e, WriteInterrupted) and "KeyboardInterrupt" in str(e) for e in errors)
    assert writer.submit(4) == 40
