"""The sandboxed Jinja environment marketer templates run in, with hard resource limits.

Jinja's ImmutableSandboxedEnvironment already refuses unsafe attributes (``__class__``, ``__globals__``,
``mro``…) and mutation of containers. On top of it we bound what a template may cost: its size, its
render time, its output length, the size of ``range``/``*``/``**`` results, and which globals exist.
"""

from __future__ import annotations

import contextvars
import operator
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from jinja2 import StrictUndefined, Undefined, select_autoescape
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from templating.locales import format_currency_filter, format_date_filter, format_number_filter

MAX_TEMPLATE_CHARS = 20_000
MAX_OUTPUT_CHARS = 100_000
MAX_RENDER_SECONDS = 0.5
MAX_RANGE = 1_000
MAX_SEQUENCE = 10_000
MAX_POWER = 10**12


class RenderLimitError(SecurityError):
    """A template exceeded a resource limit while rendering."""


class _Budget:
    """A render deadline, checked whenever the template calls, computes or emits anything."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderLimitError(f"template took longer than {MAX_RENDER_SECONDS:g} s to render")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("template_budget", default=None)


class MarketerSandbox(ImmutableSandboxedEnvironment):
    """Sandbox with bounded loops, arithmetic and time; only our filters and a few safe globals."""

    intercepted_binops = frozenset({"*", "**", "+"})

    def __init__(self, *, html: bool, strict: bool = False):
        super().__init__(
            autoescape=select_autoescape(default=html, default_for_string=html),
            undefined=StrictUndefined if strict else Undefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        # Everything that exposes Python internals or unbounded work goes: cycler/joiner/namespace/
        # lipsum/dict are Jinja defaults a marketer never needs.
        self.globals = {"range": self._range}
        self.filters.update(
            date=format_date_filter,
            number=format_number_filter,
            currency=format_currency_filter,
        )
        for name in (
            "attr",
            "format",
            "xmlattr",
            "pprint",
            "map",
            "select",
            "reject",
            "selectattr",
            "rejectattr",
        ):
            # attr/map(attribute=…) walk attributes by string; format is str.format; none are needed.
            self.filters.pop(name, None)

    def _tick(self) -> None:
        budget = _BUDGET.get()
        if budget is not None:
            budget.check()

    # -- sandbox hooks ----------------------------------------------------------------------------
    def call(__self, __context, __obj, *args, **kwargs):
        __self._tick()
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        self._tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self._tick()
        return super().getitem(obj, argument)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # Jinja's default renders an unsafe attribute as an empty string; we refuse it outright so a
        # probing template fails loudly at preview instead of quietly sending an odd message.
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} is not allowed")

    def call_binop(self, context, operator_: str, left: Any, right: Any) -> Any:
        self._tick()
        if operator_ == "**":
            numbers = isinstance(right, (int, float)) and isinstance(left, (int, float))
            if numbers and (abs(right) > 64 or abs(left) ** min(abs(right), 64) > MAX_POWER):
                raise RenderLimitError("number too large")
            return operator.pow(left, right)
        if operator_ == "*":
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, (str, list, tuple)) and isinstance(count, int)
                if sized and len(seq) * count > MAX_SEQUENCE:
                    raise RenderLimitError("repeated text is too long")
            return operator.mul(left, right)
        result = operator.add(left, right)
        if isinstance(result, (str, list, tuple)) and len(result) > MAX_OUTPUT_CHARS:
            raise RenderLimitError("text is too long")
        return result

    def _range(self, *args: int) -> range:
        result = range(*args)
        if len(result) > MAX_RANGE:
            raise RenderLimitError(f"range() is limited to {MAX_RANGE} items")
        return result


def bounded_render(env: MarketerSandbox, render: Callable[[], Iterator[str]]) -> str:
    """Run a template's generator under the time and output budget."""
    token = _BUDGET.set(_Budget(MAX_RENDER_SECONDS))
    try:
        with _alarm(MAX_RENDER_SECONDS * 2):
            out: list[str] = []
            size = 0
            for chunk in render():
                env._tick()
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise RenderLimitError(f"output is longer than {MAX_OUTPUT_CHARS} characters")
                out.append(chunk)
            return "".join(out)
    finally:
        _BUDGET.reset(token)


class _alarm:
    """A hard SIGALRM backstop for loops that never call back into the sandbox (main thread only).

    The cooperative checks above catch nearly everything; a tight loop over a long literal does not
    call anything, so in the main thread (the RQ work horse) a timer interrupts it. Any alarm already
    armed (RQ's own job timeout) is re-armed afterwards with the time it had left.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.active = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")

    def __enter__(self) -> None:
        if not self.active:
            return
        self.started = time.monotonic()
        self.previous_handler = signal.signal(signal.SIGALRM, self._expired)
        self.previous_delay, _ = signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc: object) -> None:
        if not self.active:
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous_handler)
        if self.previous_delay:
            left = self.previous_delay - (time.monotonic() - self.started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))

    @staticmethod
    def _expired(signum: int, frame: object) -> None:
        raise RenderLimitError(f"template took longer than {MAX_RENDER_SECONDS:g} s to render")
