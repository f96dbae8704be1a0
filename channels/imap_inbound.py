"""Reading replies from a mailbox over IMAP (stdlib ``imaplib``): unseen messages in, seen flags out."""

from __future__ import annotations

import contextlib
import imaplib
from collections.abc import Iterator
from urllib.parse import unquote, urlparse


class ImapMailbox:
    """``imaps://user:password@host:993/INBOX``; use as a context manager."""

    def __init__(self, url: str, timeout: float = 30.0):
        parsed = urlparse(url)
        if parsed.scheme not in ("imap", "imaps") or not parsed.hostname:
            raise ValueError("expected imap://user:pass@host/MAILBOX or imaps://…")
        self.secure = parsed.scheme == "imaps"
        self.host, self.port = parsed.hostname, parsed.port or (993 if self.secure else 143)
        self.user, self.password = unquote(parsed.username or ""), unquote(parsed.password or "")
        self.mailbox = parsed.path.lstrip("/") or "INBOX"
        self.timeout = timeout
        self._conn: imaplib.IMAP4 | None = None

    def __enter__(self) -> ImapMailbox:
        cls = imaplib.IMAP4_SSL if self.secure else imaplib.IMAP4
        self._conn = cls(self.host, self.port, timeout=self.timeout)
        self._conn.login(self.user, self.password)
        self._conn.select(self.mailbox)
        return self

    def __exit__(self, *exc) -> None:
        if self._conn is not None:
            # The connection is going away either way; a failed LOGOUT loses nothing.
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                self._conn.logout()

    def unseen(self) -> Iterator[tuple[bytes, bytes]]:
        """(uid, raw message) for each unseen message; BODY.PEEK leaves them unseen until mark_seen."""
        assert self._conn is not None
        _typ, data = self._conn.uid("SEARCH", None, "UNSEEN")
        for uid in (data[0] or b"").split():
            _typ, parts = self._conn.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((p[1] for p in parts if isinstance(p, tuple)), None)
            if raw:
                yield uid, raw

    def mark_seen(self, uid: bytes) -> None:
        assert self._conn is not None
        self._conn.uid("STORE", uid, "+FLAGS", "(\\Seen)")
