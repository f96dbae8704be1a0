"""Validation in worker processes fails fast when a worker cannot start or dies, never hangs."""

from __future__ import annotations

import os
import signal
from concurrent.futures.process import BrokenProcessPool

import pytest

from membership.importing import processes
from membership.importing.validation import Context

ROWS = [(line, [f"C{line}", "Name"], None) for line in range(2, 40)]
POSITIONS = [(0, "card_number"), (1, "name")]


@pytest.mark.timeout(120)
def test_a_worker_that_cannot_start_fails_the_validation():
    # An unknown kind makes each worker's start raise (VALIDATORS has no such key): a
    # multiprocessing.Pool would start worker after worker and never answer.
    with pytest.raises(BrokenProcessPool):
        list(processes.validated_in_processes(iter(ROWS), "no-such-kind", Context(stores={}), 2, POSITIONS))


@pytest.mark.timeout(120)
def test_a_worker_killed_mid_import_fails_the_validation(monkeypatch):
    monkeypatch.setattr(processes, "PART_ROWS", 1)
    rows = processes.validated_in_processes(iter(ROWS), "members", Context(stores={}), 2, POSITIONS)
    first = next(rows)
    assert first[0] == 2 and not isinstance(first[3], list)  # validated: a record, not errors
    workers = _workers()
    assert workers
    for child in workers:
        os.kill(child, signal.SIGKILL)
    with pytest.raises(BrokenProcessPool):
        list(rows)


def _workers() -> list[int]:
    """The pool's workers: the forkserver's children (a forkserver forks them, not this process)."""
    import psutil

    servers = [p for p in psutil.Process().children() if "forkserver" in " ".join(p.cmdline())]
    return [child.pid for server in servers for child in server.children()]
