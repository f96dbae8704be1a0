"""Signed tracked-link tokens: a short redirect on our own domain that names a message and a URL.

The target URL travels inside the signed token, so the redirect can only ever go where a template
sent it (never an open redirect), and no link table is needed. Pure functions of values: no database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer

# Customers open old messages; a link must keep working well past the 30 days the brief asks for.
VALID_FOR = dt.timedelta(days=365)
_SALT = "huifang.tracked-link"
MAX_URL_CHARS = 2000


class BadLinkError(ValueError):
    """A tracked link that is forged, mangled, expired or points somewhere we do not redirect to."""


@dataclass(frozen=True)
class TrackedLink:
    """What a verified token names; ``test`` links redirect without recording a click."""

    message_id: int | None
    url: str
    test: bool = False


def is_web_url(url: str) -> bool:
    """Only absolute http(s) URLs with a host are tracked or redirected to (no javascript:, no //x)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return (
        len(url) <= MAX_URL_CHARS
        and parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not any(c in url for c in "\r\n")
    )


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=_SALT)


def link_token(secret: str, message_id: int | None, url: str, *, test: bool = False) -> str:
    """The signed token for ``url`` in message ``message_id``; refuses a URL we would not redirect to."""
    if not is_web_url(url):
        raise BadLinkError(f"only http(s) links can be tracked, not {url[:80]!r}")
    payload = [message_id or 0, url, 1] if test else [message_id or 0, url]
    return _serializer(secret).dumps(payload)


def read_link_token(secret: str, token: str, now: dt.datetime | None = None) -> TrackedLink:
    """Verify a token; BadLinkError for anything not signed by us, too old, or not a web URL."""
    serializer = _serializer(secret)
    try:
        if now is None:
            payload = serializer.loads(token, max_age=int(VALID_FOR.total_seconds()))
        else:
            payload, signed_at = serializer.loads(token, return_timestamp=True)
            if now.replace(tzinfo=dt.UTC) - signed_at > VALID_FOR:
                raise BadLinkError("this link has expired")
    except BadSignature as exc:
        raise BadLinkError(f"bad link token: {type(exc).__name__}") from None
    if not (isinstance(payload, list) and len(payload) in (2, 3)):
        raise BadLinkError("bad link token: unexpected payload")
    message_id, url = payload[0], payload[1]
    if not isinstance(message_id, int) or not isinstance(url, str) or not is_web_url(url):
        raise BadLinkError("bad link token: unexpected payload")
    return TrackedLink(message_id=message_id or None, url=url, test=len(payload) == 3)


class LinkTracker:
    """``{{ track("https://…") }}`` in a template: the URL rewritten to our signed redirect."""

    def __init__(self, public_url: str, secret: str, message_id: int | None, *, test: bool = False):
        self._base = public_url.rstrip("/")
        self._secret, self._message_id, self._test = secret, message_id, test

    def __call__(self, url: object) -> str:
        url = str(url).strip()
        if not self._secret or not is_web_url(url):
            return url  # nothing we can sign (no key, mailto:, a relative path): leave it as written
        return f"{self._base}/l/{link_token(self._secret, self._message_id, url, test=self._test)}"


def untracked(url: object) -> str:
    """The stand-in for ``track`` where no message exists to attribute a click to."""
    return str(url).strip()
