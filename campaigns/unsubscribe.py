"""One-click unsubscribe (RFC 8058): a signed per-message link that withdraws e-mail consent at once."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from sqlalchemy.orm import Session

from campaigns.message import Message
from database.base import utcnow
from membership.consent import record_consent

VALID_FOR = dt.timedelta(days=30)  # RFC 8058 senders must honour the link for a reasonable time


def unsubscribe_mac(secret: str, message_id: int) -> str:
    return hmac.new(secret.encode(), f"unsubscribe:{message_id}".encode(), hashlib.sha256).hexdigest()[:16]


def unsubscribe(session: Session, secret: str, token: str, now: dt.datetime | None = None) -> Message:
    """Withdraw consent on the channel of the message named by ``token``; ValueError if the link is bad."""
    now = now or utcnow()
    message_id, _, mac = token.partition("-")
    if not message_id.isdigit() or not hmac.compare_digest(mac, unsubscribe_mac(secret, int(message_id))):
        raise ValueError("this unsubscribe link is not valid")
    message = session.get(Message, int(message_id))
    if message is None or message.channel is None:
        raise ValueError("this unsubscribe link is not valid")
    if message.sent_at and now - message.sent_at > VALID_FOR:
        raise ValueError("this unsubscribe link has expired; reply STOP or contact the store")
    record_consent(
        session, message.member_id, message.channel, False, "unsubscribe_link", f"message {message.id}", now
    )
    return message
