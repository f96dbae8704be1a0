"""Per-message reply addresses (reply+<id>-<mac>@domain): an e-mail reply names the message it answers,
and the MAC stops anyone from attributing a reply to somebody else's survey by guessing ids."""

from __future__ import annotations

import hashlib
import hmac
import re

_TOKEN = re.compile(r"\+(\d+)-([0-9a-f]{12})@", re.IGNORECASE)


def _mac(secret: str, message_id: int) -> str:
    return hmac.new(secret.encode(), f"reply:{message_id}".encode(), hashlib.sha256).hexdigest()[:12]


def reply_token(secret: str, message_id: int) -> str:
    """The token for one message, e.g. ``1234-9f2c4e1a0b3d``."""
    return f"{message_id}-{_mac(secret, message_id)}"


def reply_address(base: str, token: str) -> str:
    """``reply@shop.example`` + token → ``reply+token@shop.example``."""
    local, _, domain = base.partition("@")
    return f"{local}+{token}@{domain}"


def message_id_from_addresses(secret: str, addresses) -> int | None:
    """The message id carried by the first validly signed reply address, else None."""
    for address in addresses:
        match = _TOKEN.search(address)
        if match and hmac.compare_digest(match.group(2).lower(), _mac(secret, int(match.group(1)))):
            return int(match.group(1))
    return None
