"""What one template render may cost (time, loop iterations, text size) and the checks that enforce it.

The checks are cooperative: the sandbox calls them whenever a template loops, calls, computes or
emits something, so a runaway template stops in any thread, not only where the backstop timer works.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

from jinja2 import Undefined, pass_context, pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.filters import make_attrgetter
from jinja2.runtime import markup_join, str_join
from jinja2.utils import _PassArg

MAX_TEMPLATE_CHARS = 20_000
MAX_OUTPUT_CHARS = 100_000
MAX_RENDER_SECONDS = 0.5
MAX_ITERATIONS = 100_000  # loop turns per render, all loops together
MAX_RANGE = 1_000
MAX_SEQUENCE = 10_000
MAX_POWER = 10**12
MAX_INT_BITS = 256
MAX_FILTER_INT = MAX_OUTPUT_CHARS

_PLAIN = (str, int, float, Decimal, bool, dt.date, dt.time, dt.timedelta)
# What str() of a Python object looks like; never part of a message a marketer meant to write.
_LEAK = re.compile(
    r"(?:<|&lt;|&#60;)\s*(?:bound method|built-in|function|method|class|module|generator|"
    r"Macro|LoopContext|TemplateReference|jinja2)\b|object at 0x[0-9a-f]+",
    re.I,
)


TOO_SLOW = f"template took more than {MAX_RENDER_SECONDS:g} s of computing to render"


class RenderLimitError(SecurityError):
    """A template exceeded a resource limit while rendering."""


class Budget:
    """The time and loop allowance of one render.

    Time is this thread's CPU time, not the wall clock: a worker that stalls (a busy machine, a VM
    pause) must not refuse a template that costs nothing, and only computing can make a render slow.
    """

    def __init__(self, seconds: float = MAX_RENDER_SECONDS):
        self.deadline = time.thread_time() + seconds
        self.iterations = 0

    def check(self) -> None:
        if time.thread_time() > self.deadline:
            raise RenderLimitError(TOO_SLOW)

    def step(self) -> None:
        self.iterations += 1
        if self.iterations > MAX_ITERATIONS:
            raise RenderLimitError(f"loops ran more than {MAX_ITERATIONS} times")
        self.check()


BUDGET: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("template_budget", default=None)


def tick() -> None:
    budget = BUDGET.get()
    if budget is not None:
        budget.check()


def printed_size(value: Any, limit: int = MAX_OUTPUT_CHARS) -> int:
    """Roughly how long ``str(value)`` would be, counting no further than just past ``limit``."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            if total <= limit:
                stack.extend(item)
        else:
            total += 8
    return total


def check_size(value: Any, what: str = "text") -> None:
    if printed_size(value) > MAX_OUTPUT_CHARS:
        raise RenderLimitError(f"{what} would be longer than {MAX_OUTPUT_CHARS} characters")


def check_replace(text: str, old: str, new: str) -> None:
    """Refuse a replace whose result would be too long, before Python builds it."""
    hits = len(text) + 1 if old == "" else text.count(old)
    if len(text) + hits * max(len(new) - len(old), 0) > MAX_OUTPUT_CHARS:
        raise RenderLimitError(f"replaced text would be longer than {MAX_OUTPUT_CHARS} characters")


def check_join(separator: str, items: list[Any]) -> None:
    size = len(separator) * max(len(items) - 1, 0) + sum(printed_size(x) for x in items)
    if size > MAX_OUTPUT_CHARS:
        raise RenderLimitError(f"joined text would be longer than {MAX_OUTPUT_CHARS} characters")


def finalize(value: Any) -> Any:
    """Every ``{{ … }}`` passes here: only plain data may be printed, never a function or object."""
    if value is None or isinstance(value, (Undefined, *_PLAIN)):
        return value
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        _check_plain(value)
        return value
    if callable(value):
        raise SecurityError("cannot print a function; print a value such as {{ member.name }}")
    raise SecurityError("cannot print this kind of value; print a field such as {{ member.name }}")


def _check_plain(value: Any) -> None:
    check_size(value)
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif not (item is None or isinstance(item, (Undefined, *_PLAIN))):
            raise SecurityError("cannot print a list holding functions or objects")


def check_output(text: str) -> None:
    """A last guard: rendered text must not contain a Python object's representation."""
    if _LEAK.search(text):
        raise SecurityError("the output would reveal server internals (a Python object was printed)")


def bounded_iter(value: Iterable[Any]) -> Iterator[Any]:
    """Wraps every ``{% for %}`` so each turn counts against the render's budget."""
    budget = BUDGET.get()
    for item in value:
        if budget is not None:
            budget.step()
        yield item


@pass_eval_context
def bounded_concat(eval_ctx, items: list[Any]) -> str:
    """``a ~ b``: the same join Jinja does, refused before it builds something huge."""
    check_join("", items)
    return markup_join(items) if eval_ctx.autoescape else str_join(items)


def bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A built-in filter with its input and numeric arguments bounded.

    The wrapper takes the context, which also stops Jinja from running the filter at compile time,
    outside any budget (``{{ 'a'|center(1000000000) }}`` would otherwise run while compiling).
    """
    pass_arg = _PassArg.from_obj(func)

    @pass_context
    @functools.wraps(func)
    def wrapper(context, value, *args, **kwargs):
        tick()
        check_size(value, f"the input of |{name}")
        for arg in (*args, *kwargs.values()):
            if isinstance(arg, int) and abs(arg) > MAX_FILTER_INT:
                raise RenderLimitError(f"|{name} argument {arg} is too large")
        if name == "replace" and isinstance(value, str) and len(args) >= 2:
            check_replace(value, str(args[0]), str(args[1]))
        if name == "join":
            items = list(value)
            attribute = kwargs.pop("attribute", args[1] if len(args) > 1 else None)
            if attribute is not None:
                items = list(map(make_attrgetter(context.environment, attribute), items))
            separator = kwargs.get("d", args[0] if args else "")
            check_join(str(separator), items)
            value, args = items, args[:1]
        if pass_arg is _PassArg.context:
            return func(context, value, *args, **kwargs)
        if pass_arg is _PassArg.eval_context:
            return func(context.eval_ctx, value, *args, **kwargs)
        if pass_arg is _PassArg.environment:
            return func(context.environment, value, *args, **kwargs)
        return func(value, *args, **kwargs)

    return wrapper
