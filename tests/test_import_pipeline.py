"""The importer's read-ahead thread: same items in order, the producer's error raised at its place,
and a consumer that stops early stops the producer too."""

import threading
import time

import pytest

from membership.importing.pipeline import read_ahead


def test_items_arrive_in_order():
    assert list(read_ahead(iter(range(1000)), depth=3)) == list(range(1000))


def test_a_producer_error_surfaces_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("line 3 unreadable")

    got = []
    with pytest.raises(ValueError, match="line 3"):
        for item in read_ahead(items(), depth=2):
            got.append(item)
    assert got == [1, 2]


def test_closing_early_stops_the_producer():
    produced = []

    def items():
        for i in range(10_000):
            produced.append(i)
            yield i

    before = threading.active_count()
    ahead = read_ahead(items(), depth=2)
    assert next(ahead) == 0
    ahead.close()
    time.sleep(0.3)
    assert threading.active_count() == before  # the thread has finished
    assert len(produced) < 10  # it stopped near where the consumer did, not at the end
