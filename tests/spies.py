"""Wrapping a method to record its calls while it still does its work."""

from __future__ import annotations

from collections.abc import Callable


def recording(method: Callable, calls: list) -> Callable:
    """``method``, appending each call's positional arguments to ``calls`` first."""

    def spy(*args, **kwargs):
        calls.append(args)
        return method(*args, **kwargs)

    return spy
