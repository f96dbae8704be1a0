"""Builds the configured channel for each kind of address ("sms", "email") from settings."""

from __future__ import annotations

from collections.abc import Callable

from channels.base import Channel
from channels.file_channel import FileChannel
from settings import Settings


def _twilio(settings: Settings) -> Channel:
    from channels.twilio_sms import TwilioSmsChannel

    return TwilioSmsChannel(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        from_number=settings.twilio_from or None,
        messaging_service_sid=settings.twilio_messaging_service_sid or None,
        api_base_url=settings.twilio_api_base_url or None,
    )


def _smtp(settings: Settings) -> Channel:
    from channels.smtp_email import SmtpEmailChannel

    return SmtpEmailChannel(settings.smtp_url, from_address=settings.email_from)


_FACTORIES: dict[tuple[str, str], Callable[[Settings], Channel]] = {
    ("sms", "file"): lambda s: FileChannel("sms", s.outbox_dir),
    ("email", "file"): lambda s: FileChannel("email", s.outbox_dir),
    ("sms", "twilio"): _twilio,
    ("email", "smtp"): _smtp,
}


def build_channel(kind: str, settings: Settings) -> Channel:
    """The channel configured for ``kind``; ValueError for an unknown combination."""
    backend = settings.sms_channel if kind == "sms" else settings.email_channel
    try:
        factory = _FACTORIES[(kind, backend)]
    except KeyError:
        raise ValueError(f"no channel {backend!r} for {kind!r}") from None
    return factory(settings)
