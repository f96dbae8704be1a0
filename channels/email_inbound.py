"""Raw inbound e-mail (RFC 822 bytes) → the reply text a customer actually wrote, plus the headers
we match on. Pure: no database, no network."""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from dataclasses import dataclass, field

import html2text
from mailparser_reply import EmailReplyParser

# mail-parser-reply strips English quoting and signatures well; its Chinese patterns miss the
# headers Chinese clients actually write (QQ Mail, NetEase, Foxmail), so cut at those too.
_QUOTE_HEADERS = re.compile(
    r"^\s*(?:-{2,}\s*(?:原始邮件|Original Message)\s*-{2,}|.*写道[:：]\s*$|发件人[:：]|From:\s.*|On .* wrote:\s*$)",
    re.IGNORECASE,
)
_PARSER_LANGUAGES = ["en", "zh", "de", "fr", "es", "ja"]


@dataclass(frozen=True)
class InboundEmail:
    """The parts of an inbound e-mail that matter for matching and parsing."""

    provider_id: str  # its Message-ID
    from_address: str
    to_addresses: tuple[str, ...]
    subject: str
    in_reply_to: tuple[str, ...]  # In-Reply-To then References, our Message-IDs among them
    reply_text: str  # what the customer wrote, quotes and signature removed
    raw: dict = field(default_factory=dict)


def _addresses(values: list[str]) -> tuple[str, ...]:
    return tuple(addr.lower() for _name, addr in email.utils.getaddresses(values) if addr)


def _body_text(message: email.message.EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    if part is not None:
        return part.get_content()
    part = message.get_body(preferencelist=("html",))
    if part is not None:
        converter = html2text.HTML2Text()
        converter.ignore_links, converter.ignore_images, converter.body_width = True, True, 0
        converter.ignore_emphasis = True
        return converter.handle(part.get_content())
    return ""


def strip_quotes(text: str) -> str:
    """The newest reply only: quoted history, client headers and signatures removed."""
    replies = EmailReplyParser(languages=_PARSER_LANGUAGES).read(text).replies
    # .body is the newest reply without its signature and disclaimers (.content keeps them).
    text = (replies[0].body if replies else text) or ""
    kept = []
    for line in text.splitlines():
        if _QUOTE_HEADERS.match(line):
            break
        if not line.lstrip().startswith(">"):
            kept.append(line)
    return "\n".join(kept).strip()


def parse_inbound_email(raw: bytes) -> InboundEmail:
    """Parse raw message bytes; ValueError with a plain reason when it is not a usable e-mail."""
    if not raw or not raw.strip():
        raise ValueError("empty message")
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        sender = _addresses(message.get_all("From", []))
        message_id = (message.get("Message-ID") or "").strip()
        references = " ".join(message.get_all("In-Reply-To", []) + message.get_all("References", []))
        text = _body_text(message)
    except Exception as exc:  # the email package raises many types on malformed input; all mean "bad input"
        raise ValueError(f"unreadable message: {exc}") from None
    if not sender:
        raise ValueError("message has no From address")
    if not message_id:
        # Without an id, a retried delivery could not be recognised; derive one from the content.
        import hashlib

        message_id = "<sha256-" + hashlib.sha256(raw).hexdigest()[:32] + "@huifang.local>"
    return InboundEmail(
        provider_id=message_id,
        from_address=sender[0],
        to_addresses=_addresses(message.get_all("To", []) + message.get_all("Delivered-To", [])),
        subject=str(message.get("Subject", "")),
        in_reply_to=tuple(re.findall(r"<[^<>\s]+>", references)),
        reply_text=strip_quotes(text),
        raw={"headers": {k: str(v) for k, v in message.items()}, "text": text[:20000]},
    )
