"""Render and validate a campaign's per-channel parts (SMS body; e-mail subject, preheader, HTML, text)."""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import css_inline
import html2text
from jinja2 import Template, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import TemplateError as JinjaTemplateError

from templating.locales import load_locale, opt_out_footer
from templating.sandbox import MAX_TEMPLATE_CHARS, MarketerSandbox, RenderLimitError, bounded_render

# What a template may refer to: top-level names and, for fixed-shape ones, their attributes.
# ``offer`` is free-form (marketers define its keys in the campaign), so its attributes are not checked.
CONTEXT_SCHEMA: dict[str, frozenset[str] | None] = {
    "member": frozenset({"name", "preferred_name", "tier", "interests"}),
    "store": frozenset({"name", "code"}),
    "campaign": frozenset({"name", "kind"}),
    "product": frozenset({"name", "sku"}),
    "category": frozenset({"name", "care_tips"}),
    "purchase": frozenset({"date", "quantity", "amount", "age_days"}),
    "lifetime": frozenset({"median_days", "method"}),
    "links": None,
    "offer": None,
    "track": frozenset(),
    "advice": None,
    "locale": frozenset(),
}
TEMPLATE_GLOBALS = frozenset({"range", "loop", "true", "false", "none", "True", "False", "None"})


class TemplateError(Exception):
    """A template that cannot be rendered safely; names the part and line when known."""

    def __init__(self, message: str, *, lineno: int | None = None, part: str | None = None):
        super().__init__(message)
        self.message, self.lineno, self.part = message, lineno, part

    def __str__(self) -> str:
        where = " ".join(x for x in (self.part or "", f"line {self.lineno}" if self.lineno else "") if x)
        return f"{where}: {self.message}" if where else self.message


@dataclass(frozen=True)
class RenderedMessage:
    subject: str | None
    text: str
    html: str | None
    preheader: str | None = None


@dataclass(frozen=True)
class TemplateIssue:
    """A problem found when a marketer saves a template; ``level`` is "error" or "warning"."""

    part: str
    message: str
    lineno: int | None = None
    suggestion: str | None = None
    level: str = "error"


@functools.cache
def _environment(html: bool) -> MarketerSandbox:
    return MarketerSandbox(html=html)


@functools.lru_cache(maxsize=512)
def _compile(source: str, html: bool) -> tuple[Template, dict[str, int]]:
    """The compiled template and the names it reads from its context (with their first line)."""
    env = _environment(html)
    return env.from_string(source), _free_names(env.parse(source))


def _assigned_names(tree: nodes.Template) -> set[str]:
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    return assigned | {m.name for m in tree.find_all(nodes.Macro)}


def _free_names(tree: nodes.Template) -> dict[str, int]:
    """Names a template reads from its context, each with the line it first appears on."""
    assigned = _assigned_names(tree)
    names: dict[str, int] = {}
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name not in assigned and name.name not in TEMPLATE_GLOBALS:
            names.setdefault(name.name, name.lineno)
    return names


def render_part(source: str, context: dict[str, Any], *, html: bool = False, part: str = "body") -> str:
    """Render one part under the sandbox and its limits; every failure is a TemplateError."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"template is longer than {MAX_TEMPLATE_CHARS} characters", part=part)
    try:
        template, names = _compile(source, html)
        # Only the names our code puts in a context exist: no request, config, self, cycler, lipsum…
        for name, lineno in names.items():
            if name not in context and name not in CONTEXT_SCHEMA:
                raise TemplateError(f"unknown variable {name!r}", lineno=lineno, part=part)
        load_locale(context.get("locale"))  # outside the budget: reading CLDR data is not the template's cost
        return bounded_render(_environment(html), lambda: template.generate(context))
    except TemplateSyntaxError as exc:
        raise TemplateError(exc.message or str(exc), lineno=exc.lineno, part=part) from None
    except RenderLimitError as exc:
        raise TemplateError(str(exc), part=part) from None
    except SecurityError as exc:
        raise TemplateError(f"not allowed: {exc}", part=part) from None
    except UndefinedError as exc:
        raise TemplateError(exc.message or "undefined value", part=part) from None
    except JinjaTemplateError as exc:
        raise TemplateError(str(exc), part=part) from None
    except (TypeError, ValueError, ArithmeticError, LookupError, RecursionError) as exc:
        # A marketer's expression failing on some member's data must not crash the send loop.
        raise TemplateError(f"{type(exc).__name__}: {exc}", part=part) from None


def render_message(
    channel: str,
    parts: dict[str, str],
    context: dict[str, Any],
    *,
    locale: str | None = "en",
    opt_out_footer: bool = True,
) -> RenderedMessage:
    """Render a message exactly as it will be sent; preview, test send and real send all call this."""
    context = {**context, "locale": locale or "en"}
    if channel == "sms":
        body = _squash(render_part(parts.get("body", ""), context, part="body"))
        if not body:
            raise TemplateError("renders empty for this member", part="body")
        if opt_out_footer:
            body = with_opt_out_footer(body, locale)
        return RenderedMessage(subject=None, text=body, html=None)
    subject = " ".join(render_part(parts.get("subject", ""), context, part="subject").split())
    if not subject:
        raise TemplateError("renders empty for this member", part="subject")
    preheader = " ".join(render_part(parts.get("preheader", ""), context, part="preheader").split()) or None
    html_source = parts.get("html") or ""
    html = render_part(html_source, context, html=True, part="html") if html_source.strip() else None
    if parts.get("text"):
        text = render_part(parts["text"], context, part="text").strip()
    elif html:
        text = html_to_text(html)
    else:
        text = ""
    if not text.strip():
        raise TemplateError("renders empty for this member", part="text" if parts.get("text") else "html")
    if html:
        html = _finish_html(html, preheader)
    return RenderedMessage(subject=subject, text=text, html=html, preheader=preheader)


# An opt-out instruction the marketer already wrote; a bare "stop" ("stop by our store") is not one.
_OPT_OUT_INSTRUCTION = re.compile(
    r"\b(?:reply|text|send|txt)\s+[\"'“]?(?:stop|unsubscribe)\b|\bstop\s+to\s+(?:opt|end|quit|cancel|unsub)"
    r"|回\s*t|退订",
    re.I,
)


def with_opt_out_footer(body: str, locale: str | None) -> str:
    """Append the locale's opt-out line unless the marketer already wrote one."""
    if _OPT_OUT_INSTRUCTION.search(unicodedata.normalize("NFKC", body)):
        return body
    return f"{body}\n{opt_out_footer(locale)}"


def html_to_text(html: str) -> str:
    """A readable plain-text alternative for clients that do not show HTML."""
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.protect_links = True
    return converter.handle(html).strip()


def _finish_html(html: str, preheader: str | None) -> str:
    if preheader:
        # The preview line inbox lists show; hidden in the opened message.
        hidden = (
            '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">'
            + _escape(preheader)
            + "</div>"
        )
        body = _BODY_TAG.search(html)
        html = html[: body.end()] + hidden + html[body.end() :] if body else hidden + html
    if "<style" in html:
        try:
            return css_inline.inline(html)
        except ValueError as exc:
            raise TemplateError(f"CSS cannot be inlined: {exc}", part="html") from None
    return html


_BODY_TAG = re.compile(r"<body\b[^>]*>", re.I)


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


def _squash(text: str) -> str:
    """SMS: trim each line and drop blank runs that template tags leave behind."""
    lines = [line.strip() for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def validate_template(parts: dict[str, str], channel: str) -> list[TemplateIssue]:
    """Problems a marketer should fix before saving: syntax, unknown names, attributes and filters."""
    issues: list[TemplateIssue] = []
    for part, source in parts.items():
        if not source:
            continue
        if len(source) > MAX_TEMPLATE_CHARS:
            issues.append(TemplateIssue(part, f"longer than {MAX_TEMPLATE_CHARS} characters"))
            continue
        env = _environment(part == "html")
        try:
            tree = env.parse(source)
        except TemplateSyntaxError as exc:
            issues.append(TemplateIssue(part, exc.message or "syntax error", exc.lineno))
            continue
        issues.extend(_check_names(tree, part, env))
    if channel == "sms" and not (parts.get("body") or "").strip():
        issues.append(TemplateIssue("body", "an SMS needs a body"))
    if channel == "email" and not (parts.get("subject") or "").strip():
        issues.append(TemplateIssue("subject", "an e-mail needs a subject"))
    return issues


def _check_names(tree: nodes.Template, part: str, env: MarketerSandbox) -> list[TemplateIssue]:
    issues = []
    known = set(CONTEXT_SCHEMA) | TEMPLATE_GLOBALS
    for name, lineno in _free_names(tree).items():
        if name not in CONTEXT_SCHEMA:
            issues.append(_unknown(part, "variable", name, known, lineno))
    assigned = _assigned_names(tree)
    for attr in tree.find_all(nodes.Getattr):
        if isinstance(attr.node, nodes.Name) and attr.node.name not in assigned:
            allowed = CONTEXT_SCHEMA.get(attr.node.name)
            if allowed is not None and attr.attr not in allowed:
                issues.append(_unknown(part, f"field of {attr.node.name}", attr.attr, allowed, attr.lineno))
    for flt in tree.find_all(nodes.Filter):
        if flt.name not in env.filters:
            public = [name for name in env.filters if not name.startswith("_")]
            issues.append(_unknown(part, "filter", flt.name, public, flt.lineno))
    return issues


def _unknown(part: str, what: str, name: str, options, lineno: int) -> TemplateIssue:
    close = difflib.get_close_matches(name, list(options), n=1)
    suggestion = f"did you mean {close[0]!r}?" if close else None
    return TemplateIssue(part, f"unknown {what} {name!r}", lineno, suggestion)
