"""Several database connections merging one file at once, each key always on the same one.

PostgreSQL runs a statement on one core. Rows split by their key over two connections let both
cores stage and merge, and since every row of a key goes to the same connection, in file order, the
outcome is the one a single connection gives: the later line of an id still wins.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_DONE = object()
_CANCEL = object()


class Cancelled(Exception):
    """Raised inside a lane whose import stopped elsewhere: its open transaction is rolled back."""


def run_lanes(
    groups: Iterable[Sequence[T]],
    workers: Sequence[Callable[[Iterator[T]], Iterator[R]]],
    on_result: Callable[[R], None],
    depth: int = 4,
) -> None:
    """Feed item k of each group to lane k; ``on_result`` gets every lane's results on this thread.

    Each worker runs in its own thread, consumes its items and yields results (one per committed
    batch). The first failure, in a lane, in ``groups`` or in ``on_result``, cancels the other
    lanes and is raised here once every lane has stopped.
    """
    inboxes: list[queue.Queue] = [queue.Queue(maxsize=depth) for _ in workers]
    results: queue.Queue = queue.Queue()
    running = len(workers)
    stopped: set[int] = set()  # lanes whose worker has returned

    def lane(k: int) -> None:
        try:
            for result in workers[k](_feed(inboxes[k])):
                results.put((result, None))
        except BaseException as exc:
            results.put((None, exc))
        finally:
            results.put((_DONE, k))

    def handle(entry: tuple) -> None:
        nonlocal running
        result, extra = entry
        if result is _DONE:
            running -= 1
            stopped.add(extra)
        elif extra is not None:
            raise extra
        else:
            on_result(result)

    threads = [
        threading.Thread(target=lane, args=(k,), name=f"import-lane-{k}", daemon=True)
        for k in range(len(workers))
    ]
    for thread in threads:
        thread.start()
    finished = False
    try:
        for group in groups:
            for k, (inbox, item) in enumerate(zip(inboxes, group, strict=True)):
                _put(inbox, item, results, handle, lambda k=k: k in stopped)
            _serve(results, handle)
        for k, inbox in enumerate(inboxes):
            _put(inbox, _DONE, results, handle, lambda k=k: k in stopped)
        while running:
            handle(results.get())
        finished = True
    finally:
        if not finished:
            for inbox in inboxes:
                _cancel(inbox)
        for thread in threads:
            thread.join()


def _feed(inbox: queue.Queue) -> Iterator:
    while True:
        item = inbox.get()
        if item is _DONE:
            return
        if item is _CANCEL:
            raise Cancelled("the import stopped")
        yield item


def _serve(results: queue.Queue, handle: Callable[[tuple], None]) -> None:
    while True:
        try:
            entry = results.get_nowait()
        except queue.Empty:
            return
        handle(entry)


def _put(
    inbox: queue.Queue,
    item: object,
    results: queue.Queue,
    handle: Callable[[tuple], None],
    stopped: Callable[[], bool],
) -> None:
    """Put ``item``; while the inbox is full, serve results, so a lane that failed is noticed."""
    while True:
        try:
            inbox.put(item, timeout=0.05)
            return
        except queue.Full:
            _serve(results, handle)
            if stopped():  # returned without reading all its input: nobody will take this
                if item is _DONE:
                    return
                raise RuntimeError("an import lane stopped before its input ended") from None


def _cancel(inbox: queue.Queue) -> None:
    """Tell a lane to stop, making room in its inbox: it no longer needs what it holds."""
    while True:
        try:
            inbox.put_nowait(_CANCEL)
            return
        except queue.Full:
            with contextlib.suppress(queue.Empty):
                inbox.get_nowait()
