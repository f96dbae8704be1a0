"""The sandboxed Jinja environment marketer templates run in, with hard resource limits.

Jinja's ImmutableSandboxedEnvironment already refuses unsafe attributes (``__class__``, ``__globals__``,
``mro``…) and mutation of containers. On top of it we bound what a template may cost (size, render
time, loop turns, output length, the size of ``range``/``*``/``**``/``~`` results), keep only the
globals, filters and string methods a message needs, and refuse to print anything but plain data.
"""

from __future__ import annotations

import operator
import signal
import threading
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

from jinja2 import StrictUndefined, Undefined, nodes, select_autoescape
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from templating.limits import (
    BUDGET,
    MAX_INT_BITS,
    MAX_OUTPUT_CHARS,
    MAX_POWER,
    MAX_RANGE,
    MAX_RENDER_SECONDS,
    MAX_SEQUENCE,
    MAX_TEMPLATE_CHARS,
    TOO_SLOW,
    Budget,
    RenderLimitError,
    bounded_concat,
    bounded_filter,
    bounded_iter,
    check_join,
    check_output,
    check_replace,
    check_size,
    finalize,
    printed_size,
    tick,
)
from templating.locales import format_currency_filter, format_date_filter, format_number_filter

__all__ = [
    "MAX_OUTPUT_CHARS",
    "MAX_RENDER_SECONDS",
    "MAX_TEMPLATE_CHARS",
    "MarketerSandbox",
    "RenderLimitError",
    "bounded_render",
]

# Built-in filters a message needs. Left out: attr/map/select*/reject*/groupby (attribute walking by
# string), format/pprint/xmlattr, random (preview and send would differ), safe/forceescape, and the
# padding/slicing ones (center, indent, wordwrap, batch, slice) whose arguments size their output.
ALLOWED_FILTERS = frozenset(
    {
        "abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float",
        "int", "items", "join", "last", "length", "list", "lower", "max", "min", "replace", "reverse",
        "round", "sort", "string", "striptags", "sum", "title", "tojson", "trim", "truncate", "unique",
        "upper", "urlencode", "wordcount",
    }
)  # fmt: skip
# Methods of strings, dicts and lists a template may call; everything else (format, center, zfill…) goes.
SAFE_METHODS = frozenset(
    {
        "upper", "lower", "title", "capitalize", "strip", "lstrip", "rstrip", "startswith", "endswith",
        "split", "rsplit", "splitlines", "replace", "join", "count", "find", "rfind", "index",
        "isdigit", "isalpha", "isspace", "isupper", "islower", "get", "items", "keys", "values",
    }
)  # fmt: skip
_REFUSED_TAGS = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from … import",
    nodes.Extends: "extends",
}


class _Bounder(NodeTransformer):
    """Rewrites the parsed template so loops and ``~`` go through the budget; refuses loader tags."""

    def generic_visit(self, node, *args, **kwargs):
        for kind, tag in _REFUSED_TAGS.items():
            if isinstance(node, kind):
                raise TemplateSyntaxError(f"{{% {tag} %}} is not available in message templates", node.lineno)
        return super().generic_visit(node, *args, **kwargs)

    def visit_For(self, node: nodes.For) -> nodes.For:
        if node.recursive:
            raise TemplateSyntaxError("recursive loops are not available in message templates", node.lineno)
        node = self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "_bounded_iter", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Expr:
        node = self.generic_visit(node)
        items = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(items, "_bounded_concat", [], [], None, None, lineno=node.lineno)


class MarketerSandbox(ImmutableSandboxedEnvironment):
    """Sandbox with bounded loops, arithmetic and time; only our filters and a few safe globals."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, *, html: bool, strict: bool = False):
        super().__init__(
            autoescape=select_autoescape(default=html, default_for_string=html),
            undefined=StrictUndefined if strict else Undefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            finalize=finalize,
        )
        # cycler/joiner/namespace/lipsum/dict are Jinja defaults a marketer never needs.
        self.globals = {"range": self._range}
        builtin = self.filters
        self.filters = {name: bounded_filter(name, builtin[name]) for name in ALLOWED_FILTERS}
        self.filters.update(
            date=format_date_filter,
            number=format_number_filter,
            currency=format_currency_filter,
            _bounded_iter=bounded_iter,
            _bounded_concat=bounded_concat,
        )

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        return _Bounder().visit(super()._parse(source, name, filename))

    # -- sandbox hooks ----------------------------------------------------------------------------
    def call(__self, __context, __obj, *args, **kwargs):
        tick()
        owner = getattr(__obj, "__self__", None)
        if isinstance(__obj, (types.BuiltinMethodType, types.MethodType)) and isinstance(
            owner, (str, dict, list, tuple)
        ):
            _check_method(owner, __obj.__name__, args)
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        tick()
        _refuse_format(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        tick()
        _refuse_format(obj, argument)
        return super().getitem(obj, argument)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # Jinja's default renders an unsafe attribute as an empty string; we refuse it outright so a
        # probing template fails loudly at preview instead of quietly sending an odd message.
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} is not allowed")

    def call_binop(self, context, operator_: str, left: Any, right: Any) -> Any:
        tick()
        numbers = _is_number(left) and _is_number(right)
        if operator_ == "%":
            if isinstance(left, str):
                raise SecurityError("the % operator cannot format text; write {{ value }} where it goes")
            return operator.mod(left, right)
        if operator_ == "**":
            if numbers and (abs(right) > 64 or abs(left) ** min(abs(right), 64) > MAX_POWER):
                raise RenderLimitError("number too large")
            return operator.pow(left, right)
        if operator_ == "*":
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and left.bit_length() + right.bit_length() > MAX_INT_BITS
            ):
                raise RenderLimitError("number too large")
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, (str, list, tuple)) and isinstance(count, int)
                if sized and (
                    len(seq) * count > MAX_SEQUENCE or printed_size(seq) * count > MAX_OUTPUT_CHARS
                ):
                    raise RenderLimitError("repeated text is too long")
            return operator.mul(left, right)
        result = operator.add(left, right)
        check_size(result)
        return result

    def _range(self, *args: int) -> range:
        result = range(*args)
        if len(result) > MAX_RANGE:
            raise RenderLimitError(f"range() is limited to {MAX_RANGE} items")
        return result


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _refuse_format(obj: Any, name: Any) -> None:
    # Jinja wraps str.format in a sandboxed formatter, but a format spec still sizes the output
    # ("{:>1000000000}") and a message never needs it.
    if isinstance(obj, str) and name in ("format", "format_map"):
        raise SecurityError(f"the method {name!r} is not available in templates")


def _check_method(owner: Any, name: str, args: tuple[Any, ...]) -> None:
    if name not in SAFE_METHODS:
        raise SecurityError(f"the method {name!r} is not available in templates")
    if name == "replace" and isinstance(owner, str) and len(args) >= 2:
        check_replace(owner, str(args[0]), str(args[1]))
    if name == "join" and isinstance(owner, str) and args:
        check_join(owner, list(args[0]))


def bounded_render(env: MarketerSandbox, render: Callable[[], Iterator[str]]) -> str:
    """Run a template's generator under the time, loop and output budget."""
    token = BUDGET.set(Budget(MAX_RENDER_SECONDS))
    try:
        with _alarm(MAX_RENDER_SECONDS + 0.25):
            out: list[str] = []
            size = 0
            for chunk in render():
                tick()
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise RenderLimitError(f"output is longer than {MAX_OUTPUT_CHARS} characters")
                out.append(chunk)
    except RecursionError:
        raise RenderLimitError("the template calls itself too deeply (a macro calling itself?)") from None
    finally:
        BUDGET.reset(token)
    text = "".join(out)
    check_output(text)
    return text


class _alarm:
    """A hard CPU-time backstop for a single long builtin operation (main thread only).

    The cooperative checks catch loops, calls and output; a single slow builtin call does not call
    back, so in the main thread (the RQ work horse) a profiling timer interrupts it. The timer counts
    the process's CPU time, like the budget, so a stalled machine cannot fire it, and it uses SIGPROF,
    leaving SIGALRM to RQ's job timeout. Any profiling timer already armed is re-armed afterwards
    with the time it had left.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.active = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")

    def __enter__(self) -> None:
        if not self.active:
            return
        self.started = time.process_time()
        self.previous_handler = signal.signal(signal.SIGPROF, self._expired)
        self.previous_delay, _ = signal.setitimer(signal.ITIMER_PROF, self.seconds)

    def __exit__(self, *exc: object) -> None:
        if not self.active:
            return
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, self.previous_handler or signal.SIG_DFL)
        if self.previous_delay:
            left = self.previous_delay - (time.process_time() - self.started)
            signal.setitimer(signal.ITIMER_PROF, max(left, 0.001))

    @staticmethod
    def _expired(signum: int, frame: object) -> None:
        raise RenderLimitError(TOO_SLOW)
