"""E-mail over SMTP with the standard library: multipart text + HTML, our headers, one connection."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from urllib.parse import unquote, urlsplit

from channels.base import OutboundMessage, SendOutcome, SendResult


class SmtpEmailChannel:
    """``smtp://`` (plain, STARTTLS when offered), ``smtp+starttls://`` (required) or ``smtps://``."""

    name = "email"

    def __init__(self, url: str, *, from_address: str, timeout: float = 30.0):
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps", "smtp+starttls"} or not parts.hostname:
            raise ValueError(f"HUIFANG_SMTP_URL must look like smtp://user:pass@host:port, got {url!r}")
        if not parseaddr(from_address)[1]:
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
        """The MIME message exactly as it goes on the wire."""
        email = EmailMessage()
        email["From"] = self.from_address
        email["To"] = message.to
        email["Subject"] = message.subject or ""
        email["Date"] = formatdate(localtime=False)
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
        email = self.build(message)
        try:
            smtp = self._connection()
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            return _result(SendOutcome.RETRY, started, error=f"cannot connect to SMTP server: {exc}")
        try:
            refused = smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return _smtp_refusal(code, text, started)
        except smtplib.SMTPResponseException as exc:
            return _smtp_refusal(exc.smtp_code, exc.smtp_error, started)
        except smtplib.SMTPServerDisconnected as exc:
            self._drop()
            return _result(SendOutcome.RETRY, started, error=f"server disconnected: {exc}")
        except TimeoutError as exc:
            # DATA may have been accepted before the timeout: a resend could duplicate it.
            self._drop()
            return _result(SendOutcome.UNKNOWN, started, error=f"timeout: {exc}")
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            return _result(SendOutcome.RETRY, started, error=f"{type(exc).__name__}: {exc}")
        if refused:
            code, text = next(iter(refused.values()))
            return _smtp_refusal(code, text, started)
        return _result(SendOutcome.SENT, started, provider_id=email["Message-ID"])

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
