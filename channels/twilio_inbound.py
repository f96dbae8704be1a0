"""Twilio webhooks: signature check, inbound SMS and status callback parsing, TwiML replies."""

from __future__ import annotations

import functools
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse
from xml.sax.saxutils import escape

from twilio.request_validator import RequestValidator

# Delivery states Twilio reports (Message resource "status"); anything else is a malformed callback.
TWILIO_STATUSES = frozenset(
    {
        "accepted",
        "scheduled",
        "queued",
        "sending",
        "sent",
        "delivered",
        "undelivered",
        "failed",
        "receiving",
        "received",
        "read",
        "canceled",
        "partially_delivered",
    }
)


_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class InboundSms:
    provider_id: str
    from_number: str
    to_number: str
    body: str
    raw: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusCallback:
    provider_id: str
    status: str
    error_code: str | None = None


def verify_twilio_signature(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """True when ``X-Twilio-Signature`` matches the URL Twilio called and the POSTed form fields."""
    if not signature or not auth_token:
        return False
    validator, params = _validator(auth_token), dict(params)
    # validate() signs the URL twice (with and without its port) on every call. Twilio signs the URL
    # it called, normally exactly the configured one, so that is tried alone first: a match there is
    # a match validate() would make, as long as the URL is what validate() rebuilds from its parts.
    if _as_validate_sees_it(url) and hmac.compare_digest(
        validator.compute_signature(url, params).encode(), signature.encode()
    ):
        return True
    return validator.validate(url, params, signature)


@functools.lru_cache(maxsize=16)
def _validator(auth_token: str) -> RequestValidator:
    return RequestValidator(auth_token)


@functools.lru_cache(maxsize=256)
def _as_validate_sees_it(url: str) -> bool:
    """True when ``url`` is one of the two URLs ``RequestValidator.validate`` signs for it."""
    return urlparse(url).geturl() == url


def parse_inbound_sms(params: Mapping[str, str]) -> InboundSms:
    """The fields we need from an incoming-message webhook; ValueError names what is missing."""
    provider_id = params.get("MessageSid") or params.get("SmsSid") or ""
    sender = params.get("From") or ""
    missing = [name for name, value in (("MessageSid", provider_id), ("From", sender)) if not value.strip()]
    if "Body" not in params:
        missing.append("Body")
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    if not provider_id.startswith(("SM", "MM")) or len(provider_id) > 64:
        raise ValueError(f"not a Twilio message sid: {provider_id[:40]!r}")
    return InboundSms(
        provider_id=provider_id,
        from_number=sender.strip(),
        to_number=(params.get("To") or "").strip(),
        body=params.get("Body") or "",
        raw=dict(params),
    )


def parse_status_callback(params: Mapping[str, str]) -> StatusCallback:
    """A message status callback; ValueError for a missing sid or an unknown status."""
    provider_id = (params.get("MessageSid") or params.get("SmsSid") or "").strip()
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").strip().lower()
    if not provider_id:
        raise ValueError("missing field: MessageSid")
    if status not in TWILIO_STATUSES:
        raise ValueError(f"unknown message status: {status[:40]!r}")
    error_code = (params.get("ErrorCode") or "").strip() or None
    return StatusCallback(provider_id, status, error_code)


def twiml_message(text: str | None) -> str:
    """A TwiML response that replies with ``text``, or says nothing when it is None."""
    if not text:
        return '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    # Characters XML 1.0 cannot carry at all (NUL, most C0 controls) would make Twilio reject the reply.
    text = _NOT_XML.sub("", text)
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{escape(text)}</Message></Response>'
