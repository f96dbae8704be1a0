"""The one small interface every outbound channel implements."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


class SendOutcome(enum.StrEnum):
    """What a provider call amounted to; the engine maps it to a message state."""

    SENT = "sent"  # accepted by the provider, provider_id set
    FAILED = "failed"  # refused for good (bad number, opted out): do not retry
    RETRY = "retry"  # refused before acceptance (429, 5xx before accept): safe to retry
    UNKNOWN = "unknown"  # the request may have been accepted (timeout): reconcile, never resend


@dataclass(frozen=True)
class OutboundMessage:
    """A fully rendered message, addressed and ready for a channel."""

    message_id: int
    to: str
    body: str
    subject: str | None = None
    html: str | None = None
    reply_to: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    status_callback: str | None = None


@dataclass(frozen=True)
class SendResult:
    """The outcome of one provider call, recorded verbatim on the message row."""

    outcome: SendOutcome
    provider_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    latency_ms: float = 0.0


class Channel(Protocol):
    """An outbound channel: one message in, one SendResult out, never an exception for a provider refusal."""

    name: str  # "sms" or "email": the kind of address it delivers to

    def send(self, message: OutboundMessage) -> SendResult: ...

    def close(self) -> None: ...
