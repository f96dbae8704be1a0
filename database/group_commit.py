"""Group commit for a hot one-row write: requests that arrive while a write is in flight share the next.

A webhook burst otherwise pays one statement, one round trip and one commit per request, and under
load those waits overlap anyway. Here the first caller writes alone; callers that arrive while it
waits on the database queue up, and when it is done the oldest of them writes the whole queue in one
statement. Nobody waits on a timer, so a lone request is as fast as before.

Each caller gets its own result, or the exception of the write that held its item: a failed write
fails every request in it (a webhook answers 5xx and the provider delivers again), none is dropped.
Works with threads and with gevent's patched ``threading`` alike.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class WriteInterrupted(RuntimeError):
    """The write that held this item was interrupted in another request (its worker stopping)."""


class _Slot(Generic[Item, Result]):
    __slots__ = ("done", "error", "item", "leads", "result")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.done = threading.Event()
        self.leads = False
        self.result: Result | None = None
        self.error: BaseException | None = None


class GroupWriter(Generic[Item, Result]):
    """Calls ``write(items) -> results`` (one result per item, in order) for everything queued at once."""

    def __init__(self, write: Callable[[Sequence[Item]], Sequence[Result]], limit: int = 64) -> None:
        self._write = write
        self._limit = limit
        self._lock = threading.Lock()
        self._queue: list[_Slot[Item, Result]] = []
        self._busy = False

    def submit(self, item: Item) -> Result:
        """Write ``item`` (with whatever else is queued) and return its result, or raise its write's error."""
        slot: _Slot[Item, Result] = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            slot.leads = not self._busy
            self._busy = True
        if not slot.leads:
            slot.done.wait()
        if slot.leads:  # promoted by the writer before us, or first in: our queue is ours to write
            self._lead(slot)
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _lead(self, own: _Slot[Item, Result]) -> None:
        with self._lock:
            batch, self._queue = self._queue[: self._limit], self._queue[self._limit :]
        try:
            results = self._write([s.item for s in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"group write returned {len(results)} results for {len(batch)} items")
            for s, r in zip(batch, results, strict=True):
                s.result = r
        except BaseException as exc:  # every request in the write learns it failed
            # An interrupt (a worker's shutdown, a killed greenlet) belongs to the writer's own
            # request; the others were not interrupted, only their write failed.
            shared = (
                exc
                if isinstance(exc, Exception)
                else WriteInterrupted(f"the shared write was interrupted: {exc!r}")
            )
            for s in batch:
                s.error = exc if s is own else shared
        finally:
            with self._lock:
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._busy = False
                else:
                    successor.leads = True
            for s in batch:
                s.leads = False
                s.done.set()
            if successor is not None:
                successor.done.set()
