"""E-mail over SMTP with the standard library: multipart text + HTML, our headers, one connection."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.policy import SMTP, default
from email.utils import formatdate, make_msgid, parseaddr
from urllib.parse import unquote, urlsplit

from channels.base import OutboundMessage, SendOutcome, SendResult

# CRLF line ends and no raw 8-bit bodies: Chinese text goes base64/quoted-printable, so a server that
# does not offer 8BITMIME still takes it unchanged.
_MIME_POLICY = default.clone(cte_type="7bit")
_WIRE_POLICY = SMTP.clone(cte_type="7bit")


class SmtpEmailChannel:
    """``smtp://`` (plain, STARTTLS when offered), ``smtp+starttls://`` (required) or ``smtps://``."""

    name = "email"

    def __init__(self, url: str, *, from_address: str, timeout: float = 30.0):
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps", "smtp+starttls"} or not parts.hostname:
            raise ValueError(f"HUIFANG_SMTP_URL must look like smtp://user:pass@host:port, got {url!r}")
        if "@" not in parseaddr(from_address)[1]:
            raise ValueError(f"HUIFANG_EMAIL_FROM is not an address: {from_address!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (
            465 if parts.scheme == "smtps" else 587 if "starttls" in parts.scheme else 25
        )
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.from_address = from_address
        self.domain = parseaddr(from_address)[1].rpartition("@")[2] or "localhost"
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None

    def build(self, message: OutboundMessage) -> EmailMessage:
        """The MIME message exactly as it goes on the wire (7-bit safe, so any server takes it)."""
        email = EmailMessage(policy=_MIME_POLICY)
        email["From"] = self.from_address
        email["To"] = message.to
        email["Subject"] = message.subject or ""
        email["Date"] = formatdate(usegmt=True)
        email["Message-ID"] = make_msgid(f"huifang.{message.message_id}", domain=self.domain)
        if message.reply_to:
            email["Reply-To"] = message.reply_to
        for name, value in message.headers.items():
            email[name] = value
        email.set_content(message.body)
        if message.html:
            email.add_alternative(message.html, subtype="html")
        return email

    def send(self, message: OutboundMessage) -> SendResult:
        started = time.perf_counter()
        try:
            email = self.build(message)
            sender, recipient = parseaddr(self.from_address)[1], parseaddr(message.to)[1]
            wire = email.as_bytes(policy=_WIRE_POLICY)
        except (ValueError, TypeError) as exc:
            # A header with a line break, an unusable address: no server will ever take it.
            return _result(SendOutcome.FAILED, started, error=f"cannot build the message: {exc}")
        if not recipient:
            return _result(SendOutcome.FAILED, started, error=f"not an e-mail address: {message.to!r}")
        try:
            smtp = self._connection()
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            return _result(SendOutcome.RETRY, started, error=f"cannot connect to SMTP server: {exc}")
        stage = "envelope"
        try:
            smtp.ehlo_or_helo_if_needed()
            for command, argument, accepted in (("mail", sender, (250,)), ("rcpt", recipient, (250, 251))):
                code, text = getattr(smtp, command)(argument)
                if code not in accepted:
                    self._reset(code)
                    return _smtp_refusal(code, text, started)
            # From here the server may have the whole message: a lost answer is not a refusal.
            stage = "data"
            code, text = smtp.data(wire)
        except smtplib.SMTPDataError as exc:  # DATA itself refused, before any of the body was sent
            self._reset(exc.smtp_code)
            return _smtp_refusal(exc.smtp_code, exc.smtp_error, started)
        except (OSError, smtplib.SMTPException, UnicodeError) as exc:
            self._drop()
            if isinstance(exc, UnicodeError):
                return _result(SendOutcome.FAILED, started, error=f"address needs SMTPUTF8: {exc}")
            if stage == "data":
                return _result(SendOutcome.UNKNOWN, started, error=f"no answer after DATA: {exc}")
            return _result(SendOutcome.RETRY, started, error=f"{type(exc).__name__}: {exc}")
        if code != 250:
            self._reset(code)
            return _smtp_refusal(code, text, started)
        return _result(SendOutcome.SENT, started, provider_id=email["Message-ID"])

    def _reset(self, code: int) -> None:
        """After a refused transaction: RSET to reuse the connection, or drop it if the server is closing."""
        if code == 421 or self._smtp is None:
            self._drop()
            return
        try:
            self._smtp.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            try:
                if self._smtp.noop()[0] == 250:
                    return self._smtp
            except (OSError, smtplib.SMTPException):
                pass
            self._drop()
        context = ssl.create_default_context()
        if self.scheme == "smtps":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            smtp.ehlo()
            if self.scheme == "smtp+starttls" or smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
        if self.username:
            smtp.login(self.username, self.password or "")
        self._smtp = smtp
        return smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError):
                self._smtp.close()
        self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._smtp.quit()
        self._smtp = None


def _smtp_refusal(code: int, text: bytes | str, started: float) -> SendResult:
    detail = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    outcome = SendOutcome.RETRY if 400 <= code < 500 else SendOutcome.FAILED
    return _result(outcome, started, error_code=str(code), error=detail)


def _result(outcome: SendOutcome, started: float, **fields) -> SendResult:
    return SendResult(outcome, latency_ms=(time.perf_counter() - started) * 1000, **fields)
