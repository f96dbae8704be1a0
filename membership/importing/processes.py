"""Row validation in worker processes, for large member files.

Validation is Python (phonenumbers most of all), and a thread shares one core with the writer,
which then waits for the GIL after every round trip to the database. Worker processes take the
other core. This module imports only the validators, so a worker stays small.
"""

from __future__ import annotations

import collections
import multiprocessing
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from membership.importing.reading import Unreadable, cells_by_key
from membership.importing.validation import VALIDATORS, Context

PART_ROWS = 2000  # rows per task: large enough that pickling stays a small share

_VALIDATOR: tuple | None = None  # (validate, context) inside a worker


def validated_in_processes(
    rows: Iterable[tuple[int, list[str] | Unreadable, object]],
    kind: str,
    ctx: Context,
    workers: int,
    positions: list[tuple[int, str]],
) -> Iterator[tuple]:
    """(line, row, raw, record or errors) for each of ``rows``, in order, validated by ``workers``.

    Each row is the file's list of values; the workers map it to keys with ``positions`` ((column
    index, key) pairs), so there is less to pickle and less work for this process. At most two
    parts per worker are in flight, so memory stays flat whatever the file size.
    """
    # forkserver, not fork: the caller is a thread of a process with a database pool, and a fork
    # copies whatever locks other threads hold. Its children import the main module as
    # __mp_main__, so scripts that import Huifang keep their own work under `if __name__ == ...`.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    pending: collections.deque = collections.deque()
    # An executor, not multiprocessing.Pool: a worker that dies, or whose start fails, breaks the
    # executor and the import fails with BrokenProcessPool; a Pool starts another worker and the
    # task it lost is awaited forever.
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start, initargs=(kind, ctx, positions)
    )
    try:
        for part in _parts(rows, PART_ROWS):
            todo = [(line, row) for line, row, _ in part if not isinstance(row, Unreadable)]
            pending.append((part, pool.submit(_validate_part, todo)))
            if len(pending) > 2 * workers:
                yield from _joined(*pending.popleft())
        while pending:
            yield from _joined(*pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _parts(rows: Iterable, size: int) -> Iterator[list]:
    part = []
    for row in rows:
        part.append(row)
        if len(part) >= size:
            yield part
            part = []
    if part:
        yield part


def _joined(part: list, validated: Future) -> Iterator[tuple]:
    results = iter(validated.result())
    for line, row, raw in part:
        yield line, row, raw, None if isinstance(row, Unreadable) else next(results)


def _start(kind: str, ctx: Context, positions: list[tuple[int, str]]) -> None:
    global _VALIDATOR
    _VALIDATOR = (VALIDATORS[kind], ctx, positions)


def _validate_part(todo: list[tuple[int, list[str]]]) -> list:
    validate, ctx, positions = _VALIDATOR
    return [validate(line, cells_by_key(values, positions), ctx) for line, values in todo]
