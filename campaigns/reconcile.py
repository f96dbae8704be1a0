"""Reconciling messages in ``unknown``: the provider may or may not have accepted them.

A message lands in ``unknown`` when a provider call timed out after the request left, or when a
worker died between claiming a row and recording its outcome (``expire_stale_claims``). Sending it
again could send it twice, so we ask the provider instead: found there → adopt its id and status;
provably never received → back to ``pending``; anything else stays ``unknown`` with a reason and,
after a few looks, is left for a human (``needing_review``).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from campaigns.message import Message, MessageEvent, MessageStatus, in_states
from campaigns.sending import STALE_CLAIM
from database.base import utcnow

# Look only at claims older than this: by then the worker that claimed the row has recorded its
# outcome or is dead (a drain times out after 600 s; RQ kills a stuck work horse 60 s later), so
# nobody can still be sending it when we decide it was never sent.
RECONCILE_AFTER = STALE_CLAIM + dt.timedelta(minutes=5)
MAX_LOOKUPS = 6  # inconclusive looks before a row is left for a human
NEEDS_HUMAN = "needs a human: "
CLOCK_SKEW = dt.timedelta(minutes=2)

# Provider status → our state for a message the provider does have.
PROVIDER_STATES = {
    "accepted": MessageStatus.SENT,
    "scheduled": MessageStatus.SENT,
    "queued": MessageStatus.SENT,
    "sending": MessageStatus.SENT,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.CANCELLED,
}


class Found(enum.StrEnum):
    PRESENT = "present"  # the provider has it: adopt its id and status
    ABSENT = "absent"  # the provider provably never received it: safe to queue again
    UNSURE = "unsure"  # cannot tell (yet): keep it unknown


@dataclass(frozen=True)
class Finding:
    """What a provider lookup established about one message."""

    found: Found
    reason: str
    provider_id: str | None = None
    provider_status: str | None = None
    sent_at: dt.datetime | None = None
    final: bool = False  # UNSURE that no later look can settle: go straight to a human


class Lookup(Protocol):
    """Finds one of our messages at the provider that may have received it."""

    def find(self, session: Session, message: Message) -> Finding: ...


class FileLookup:
    """The development channel: the outbox file exists exactly when the message was handed over."""

    def __init__(self, name: str, directory: Path):
        self.name = name
        self.directory = directory

    def find(self, session: Session, message: Message) -> Finding:
        path = self.directory / f"{message.id:09d}-{self.name}.txt"
        if path.exists():
            return Finding(Found.PRESENT, f"outbox file {path.name} exists", f"file:{path.name}", "sent")
        return Finding(Found.ABSENT, f"no outbox file {path.name}")


class TwilioLookup:
    """Twilio: fetch by SID when we have one, else search the account's messages to that number.

    The search uses the Messages list filtered by ``To`` and ``DateSent>=`` (day granularity), then
    matches sender, body (when we rendered it before the call) and creation time locally. A message
    still queued at Twilio has no DateSent yet, so "not found" is never proof of absence here: the row
    stays unknown and is looked at again, then left for a human. Nothing is ever resent from here.
    """

    def __init__(self, channel, page_limit: int = 200):
        self.channel = channel  # a TwilioSmsChannel
        self.page_limit = page_limit

    def find(self, session: Session, message: Message) -> Finding:
        from twilio.base.exceptions import TwilioException

        try:
            if message.provider_id:
                status = self.channel.fetch_status(message.provider_id)
                return Finding(Found.PRESENT, f"fetched {message.provider_id}", message.provider_id, status)
            return self._search(session, message)
        except (TwilioException, OSError) as exc:  # requests' errors are OSErrors
            return Finding(Found.UNSURE, f"lookup failed: {type(exc).__name__}: {exc}"[:200])

    def _search(self, session: Session, message: Message) -> Finding:
        if not message.to_address:
            return Finding(Found.UNSURE, "no recipient address to search by", final=True)
        claimed = message.claimed_at or message.created_at
        since, until = claimed - CLOCK_SKEW, claimed + RECONCILE_AFTER + CLOCK_SKEW
        listed = self.channel.client.messages.list(
            to=message.to_address, date_sent_after=since.date().isoformat(), limit=self.page_limit
        )
        matches = [
            m.sid
            for m in listed
            if self._ours(m)
            and (message.body is None or m.body == message.body)
            and m.date_created is not None
            and since <= m.date_created.astimezone(dt.UTC).replace(tzinfo=None) <= until
            and not provider_id_taken(session, m.sid)
        ]
        if len(matches) == 1:
            found = self.channel.client.messages(matches[0]).fetch()
            sent_at = (
                found.date_created.astimezone(dt.UTC).replace(tzinfo=None) if found.date_created else None
            )
            return Finding(
                Found.PRESENT, f"found {found.sid} by recipient and time", found.sid, found.status, sent_at
            )
        if matches:
            return Finding(
                Found.UNSURE, f"{len(matches)} provider messages match ({', '.join(matches[:5])})", final=True
            )
        return Finding(
            Found.UNSURE,
            f"no message to {message.to_address} sent since {since:%Y-%m-%d %H:%M} (it may still be queued)",
        )

    def _ours(self, listed) -> bool:
        if not str(listed.direction or "").startswith("outbound"):
            return False
        if self.channel.messaging_service_sid:
            return listed.messaging_service_sid == self.channel.messaging_service_sid
        return listed.from_ == self.channel.from_number


@dataclass
class ReconcileReport:
    """What one reconcile run did, by outcome."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1


def reconcile(
    session: Session,
    lookups: Mapping[str, Lookup],
    now: dt.datetime | None = None,
    limit: int = 200,
) -> ReconcileReport:
    """Look up each settled ``unknown`` message at its provider and record what was found (commits per row).

    ``lookups`` maps a channel ("sms", "email") to its provider lookup; a channel without one (SMTP
    offers no way to ask) goes straight to a human.
    """
    now = now or utcnow()
    report = ReconcileReport()
    for message in session.scalars(_settled_unknown(now, limit)).all():
        lookup = lookups.get(message.channel or "")
        if lookup is None:
            finding = Finding(
                Found.UNSURE, f"the {message.channel} provider offers no message lookup", final=True
            )
        else:
            finding = lookup.find(session, message)
        report.add(_apply(session, message, finding, now))
        session.commit()
    return report


def has_settled_unknown(session: Session, now: dt.datetime | None = None) -> bool:
    """Whether a reconcile run would find anything to look up (a cheap check for the tick)."""
    return session.scalar(_settled_unknown(now or utcnow(), 1).with_only_columns(Message.id)) is not None


def needing_review(session: Session, limit: int = 100) -> list[Message]:
    """Messages reconciliation could not settle: a person must check the provider's console."""
    return list(
        session.scalars(
            select(Message)
            .where(in_states(MessageStatus.UNKNOWN), Message.reason.startswith(NEEDS_HUMAN))
            .order_by(Message.id)
            .limit(limit)
        )
    )


def _settled_unknown(now: dt.datetime, limit: int):
    claimed = func.coalesce(Message.claimed_at, Message.created_at)
    return (
        select(Message)
        .where(
            in_states(MessageStatus.UNKNOWN),
            claimed < now - RECONCILE_AFTER,
            or_(Message.reason.is_(None), ~Message.reason.startswith(NEEDS_HUMAN)),
        )
        .order_by(Message.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def _apply(session: Session, message: Message, finding: Finding, now: dt.datetime) -> str:
    """Record a finding with an UPDATE guarded by ``status = unknown``, so a racing reconciler is harmless."""
    state = PROVIDER_STATES.get((finding.provider_status or "").lower())
    if finding.found is Found.PRESENT and state is not None:
        values = {
            "status": state,
            "provider_id": finding.provider_id,
            "reason": f"reconciled: {finding.reason}",
        }
        if state in (MessageStatus.SENT, MessageStatus.DELIVERED):
            values["sent_at"] = finding.sent_at or message.claimed_at or now
        if state is MessageStatus.DELIVERED:
            values["delivered_at"] = now
        if state in (MessageStatus.FAILED, MessageStatus.UNDELIVERED):
            values["failed_at"] = now
        return _move(
            session, message, values, f"{finding.provider_status} at provider: {finding.reason}", now
        )
    if finding.found is Found.ABSENT:
        values = {
            "status": MessageStatus.PENDING,
            # It was due when it was claimed; the guard-rails are checked again at the next claim.
            "send_after": message.claimed_at or now,
            "reason": f"reconciled: the provider never received it ({finding.reason}); queued again",
        }
        return _move(session, message, values, finding.reason, now)
    reason = finding.reason
    if finding.found is Found.PRESENT:
        reason = f"provider status {finding.provider_status!r} is not one we map ({reason})"
    looks = _lookups_so_far(session, message.id) + 1
    if finding.final or looks >= MAX_LOOKUPS:
        text, outcome = f"{NEEDS_HUMAN}{reason}", "needs_human"
    else:
        text, outcome = f"reconciling (look {looks} of {MAX_LOOKUPS}): {reason}", "unsure"
    _move(session, message, {"reason": text[:300]}, reason, now, event="reconcile")
    return outcome


def _move(session, message, values, detail: str, now, event: str | None = None) -> str:
    moved = session.execute(
        update(Message)
        .where(Message.id == message.id, Message.status == MessageStatus.UNKNOWN)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not moved:
        return "raced"
    status = event or values["status"].value
    session.add(
        MessageEvent(message_id=message.id, status=status, detail=f"reconcile: {detail}"[:500], at=now)
    )
    return status


def _lookups_so_far(session: Session, message_id: int) -> int:
    return session.scalar(
        select(func.count())
        .select_from(MessageEvent)
        .where(MessageEvent.message_id == message_id, MessageEvent.status == "reconcile")
    )


def provider_id_taken(session: Session, provider_id: str) -> bool:
    """Whether another of our messages already owns this provider id (so it cannot be this one)."""
    return session.scalar(select(Message.id).where(Message.provider_id == provider_id).limit(1)) is not None
