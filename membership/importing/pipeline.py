"""Read ahead in a thread: parse and validate the next rows while the database merges the last ones.

CSV parsing and validation are Python (one core); staging and merging are PostgreSQL (another
core). The importer's connection spends most of a merge waiting on the server with the GIL
released, so a producer thread running one step ahead puts both cores to work.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def read_ahead(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield ``items`` while a thread produces up to ``depth`` of them in advance.

    The producer's exception is raised here, at the point it would have surfaced; closing this
    generator early (the consumer failed) stops the producer at its next item.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(buffer, (item, None), stop):
                    return
            _put(buffer, (_DONE, None), stop)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            _put(buffer, (_DONE, exc), stop)

    thread = threading.Thread(target=produce, name="import-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = buffer.get()
            if exc is not None:
                raise exc
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _put(buffer: queue.Queue, entry: tuple, stop: threading.Event) -> bool:
    """Put unless the consumer has gone; False when it has."""
    while not stop.is_set():
        try:
            buffer.put(entry, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
