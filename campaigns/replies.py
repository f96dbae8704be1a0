"""Inbound replies: stored first, then matched to the survey they answer, parsed and acted upon.

Processing is idempotent on the inbound row's status, so a retried job or a duplicate webhook
delivery has the effect of one.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from campaigns.campaign import Campaign, CampaignKind
from campaigns.inbound import InboundMessage, InboundStatus, SurveyResponse
from campaigns.message import Message, MessageStatus
from campaigns.reply_tokens import message_id_from_addresses
from channels.email_inbound import InboundEmail
from channels.reply_parser import ReplyIntent, parse_reply
from database.base import utcnow
from membership.consent import record_consent
from membership.member import Member

SURVEY_REPLY_WINDOW = dt.timedelta(days=14)
ANSWERED_STATES = (MessageStatus.SENT, MessageStatus.DELIVERED)


@dataclass(frozen=True)
class ReplyOutcome:
    """What processing one inbound message did."""

    inbound_id: int
    intent: str | None
    status: InboundStatus
    survey_response_id: int | None = None
    member_id: int | None = None


def store_inbound(
    session: Session,
    *,
    channel: str,
    provider_id: str,
    from_address: str,
    body: str,
    raw: dict,
    to_address: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[InboundMessage, bool]:
    """Insert the raw reply unless its provider id is already stored; returns (row, newly_stored)."""
    params = _inbound_params(channel, provider_id, from_address, to_address, body, raw, now)
    inserted = session.scalar(_insert_inbound(session.get_bind().dialect.name), params)
    inbound_id, created = _stored(session, inserted, params)
    return session.get(InboundMessage, inbound_id), created


def _inbound_params(channel, provider_id, from_address, to_address, body, raw, now) -> dict:
    return {
        "channel": channel,
        "provider_id": provider_id,
        "from_address": from_address,
        "to_address": to_address,
        "body": body,
        "raw": raw,
        "received_at": now or utcnow(),
        "status": InboundStatus.RECEIVED.value,
    }


def _stored(db: Session | Connection, inserted: int | None, params: dict) -> tuple[int, bool]:
    """(id, newly stored): the id the INSERT returned, else that of the row already there."""
    if inserted is not None:
        return inserted, True
    return db.scalar(_INBOUND_ID, {"provider_id": params["provider_id"]}), False


def store_sms_reply(
    db: Session | Connection,
    *,
    provider_id: str,
    from_address: str,
    to_address: str | None,
    body: str,
    raw: dict,
    now: dt.datetime | None = None,
) -> tuple[int, bool, tuple[int, bool, str] | None]:
    """One reply through ``store_sms_replies``: (inbound id, newly stored, ``reply_sender``)."""
    conn = db if isinstance(db, Connection) else db.connection()
    reply = dict(
        provider_id=provider_id, from_address=from_address, to_address=to_address, body=body, raw=raw
    )
    return store_sms_replies(conn, [{**reply, "now": now}])[0]


def store_sms_replies(
    conn: Connection, replies: Sequence[dict]
) -> list[tuple[int, bool, tuple[int, bool, str] | None]]:
    """The SMS webhook's write and read together, per reply: (inbound id, newly stored, ``reply_sender``).

    ``replies`` are keyword dicts: what the webhook's group commit gathered while the last write was
    in flight. On PostgreSQL one statement stores them all and finds each sender; SQLite runs two
    statements per reply. A provider id repeated in the batch is stored once, and the later copy
    reads as a duplicate, as if the two had come one after the other. The webhook passes a Core
    connection: it needs no ORM unit of work, and skipping it is a tenth of the request's time.
    """
    rows = [
        _inbound_params(
            "sms", r["provider_id"], r["from_address"], r.get("to_address"), r["body"], r["raw"], r.get("now")
        )
        for r in replies
    ]
    dialect = conn.dialect.name
    if dialect != "postgresql":
        return [
            (
                *_stored(conn, conn.scalar(_insert_inbound(dialect), row), row),
                reply_sender(conn, row["from_address"]),
            )
            for row in rows
        ]
    # One array per column: the statement's text is the same for every batch size, so it is
    # prepared once per connection rather than parsed and planned per write.
    arrays = {c: [row[c] for row in rows] for c in _INBOUND_COLUMNS}
    arrays["raw"] = [json.dumps(raw) for raw in arrays["raw"]]
    ids: dict[str, int] = {}
    out = []
    for n, inserted, member_id, consented, locale in conn.execute(_store_many_and_senders(), arrays):
        provider_id = arrays["provider_id"][n - 1]
        created = inserted is not None and provider_id not in ids
        if inserted is not None:
            ids[provider_id] = inserted
        inbound_id = ids.get(provider_id) or _stored(conn, None, {"provider_id": provider_id})[0]
        out.append((inbound_id, created, (member_id, consented, locale) if member_id is not None else None))
    return out


@functools.cache
def _store_many_and_senders():
    return text(
        "WITH input AS (SELECT * FROM unnest(CAST(:channel AS text[]), CAST(:provider_id AS text[]), "
        "CAST(:from_address AS text[]), CAST(:to_address AS text[]), CAST(:body AS text[]), CAST(:raw AS text[]), "
        "CAST(:received_at AS timestamp[]), CAST(:status AS text[])) "
        f"WITH ORDINALITY AS i ({', '.join(_INBOUND_COLUMNS)}, n)), "
        f"stored AS (INSERT INTO inbound_messages ({', '.join(_INBOUND_COLUMNS)}) "
        f"SELECT {', '.join('CAST(raw AS json)' if c == 'raw' else c for c in _INBOUND_COLUMNS)} FROM input ORDER BY n "
        "ON CONFLICT (provider_id) DO NOTHING RETURNING id, provider_id) "
        "SELECT input.n, stored.id, sender.id, sender.sms_consent, sender.locale FROM input "
        "LEFT JOIN stored ON stored.provider_id = input.provider_id "
        "LEFT JOIN LATERAL (SELECT id, sms_consent, locale FROM members WHERE phone = input.from_address "
        "ORDER BY updated_at DESC, id DESC LIMIT 1) AS sender ON true ORDER BY input.n"
    )


_INBOUND_ID = select(InboundMessage.id).where(InboundMessage.provider_id == bindparam("provider_id"))


@functools.cache
def _insert_inbound(dialect: str):
    """The webhook's INSERT, built once per dialect: building it per request cost a third of its time."""
    table = InboundMessage.__table__
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = builder(table).values({c: bindparam(c, type_=table.c[c].type) for c in _INBOUND_COLUMNS})
    return stmt.on_conflict_do_nothing(index_elements=["provider_id"]).returning(table.c.id)


_INBOUND_COLUMNS = (
    "channel",
    "provider_id",
    "from_address",
    "to_address",
    "body",
    "raw",
    "received_at",
    "status",
)


def store_email(session: Session, parsed: InboundEmail) -> tuple[InboundMessage, bool]:
    """Store a parsed inbound e-mail (idempotent on its Message-ID); the body kept is the reply text."""
    return store_inbound(
        session,
        channel="email",
        provider_id=parsed.provider_id,
        from_address=parsed.from_address,
        to_address=", ".join(parsed.to_addresses)[:254] or None,
        body=parsed.reply_text,
        raw=parsed.raw,
    )


def find_member(session: Session, channel: str, address: str) -> Member | None:
    """The member this address belongs to (most recently updated, if an address is shared)."""
    column = Member.phone if channel == "sms" else Member.email
    stmt = (
        select(Member).where(column == address).order_by(Member.updated_at.desc(), Member.id.desc()).limit(1)
    )
    return session.scalars(stmt).first()


def reply_sender(db: Session | Connection, phone: str) -> tuple[int, bool, str] | None:
    """(member id, SMS consent, locale) of the member a phone belongs to: what the webhook's answer needs."""
    row = db.execute(_SENDER, {"phone": phone}).first()
    return tuple(row) if row else None


_SENDER = (
    select(Member.id, Member.sms_consent, Member.locale)
    .where(Member.phone == bindparam("phone"))
    .order_by(Member.updated_at.desc(), Member.id.desc())
    .limit(1)
)


def _open_surveys(member_id: int, now: dt.datetime):
    answered = select(SurveyResponse.message_id).where(SurveyResponse.answer != ReplyIntent.UNCLEAR.value)
    return (
        select(Message)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(
            Message.member_id == member_id,
            Campaign.kind == CampaignKind.SURVEY,
            Message.status.in_(ANSWERED_STATES),
            Message.sent_at >= now - SURVEY_REPLY_WINDOW,
            Message.id.not_in(answered),
        )
    )


def open_survey(session: Session, member_id: int, now: dt.datetime) -> Message | None:
    """The most recent survey sent to the member within the reply window that has no answer yet."""
    stmt = _open_surveys(member_id, now).order_by(Message.sent_at.desc()).limit(1)
    return session.scalars(stmt).first()


def process_inbound(
    session: Session,
    inbound_id: int,
    now: dt.datetime | None = None,
    secret_key: str = "",
    *,
    member_id: int | None = None,
) -> ReplyOutcome:
    """Match, parse and act on one stored reply; a second call changes nothing.

    ``member_id`` is a staff member's decision about who sent an unmatched or triaged reply: it is
    processed again as if it had come from that member's address.
    """
    now = now or utcnow()
    inbound = session.get(InboundMessage, inbound_id, with_for_update=True)
    if inbound is None:
        raise LookupError(f"inbound message {inbound_id} does not exist")
    reopen = member_id is not None and inbound.status is InboundStatus.UNMATCHED
    if inbound.status is not InboundStatus.RECEIVED and not reopen:
        return _outcome(session, inbound)
    if reopen:
        member = session.get(Member, member_id)
        if member is None:
            raise LookupError(f"member {member_id} does not exist")
        survey = open_survey(session, member.id, now)
    else:
        member, survey = match_reply(session, inbound, now, secret_key)
    opted_out = member is not None and not _consented(member, inbound.channel)
    parsed = parse_reply(inbound.body, opted_out=opted_out)
    inbound.intent, inbound.processed_at = parsed.intent.value, now
    inbound.member_id = member.id if member else None
    inbound.status = InboundStatus.PROCESSED
    if member is None:
        inbound.status = InboundStatus.UNMATCHED
    elif parsed.intent in (ReplyIntent.OPT_OUT, ReplyIntent.OPT_IN):
        granted = parsed.intent is ReplyIntent.OPT_IN
        record_consent(
            session, member.id, inbound.channel, granted, f"{inbound.channel}_reply", inbound.body, now
        )
    elif parsed.intent is ReplyIntent.HELP:
        pass
    elif survey is None:
        inbound.status = InboundStatus.UNMATCHED
    else:
        inbound.message_id = survey.id
        if parsed.intent is ReplyIntent.UNCLEAR and _already_clarified(session, survey.id, inbound.id):
            # One clarification only; a second unclear answer is for a person to read.
            inbound.status = InboundStatus.TRIAGE
        response = SurveyResponse(
            inbound_id=inbound.id,
            message_id=survey.id,
            member_id=member.id,
            campaign_id=survey.campaign_id,
            answer=parsed.intent.value,
            comment=parsed.comment or None,
            created_at=now,
        )
        session.add(response)
        session.flush()
        return ReplyOutcome(inbound.id, inbound.intent, inbound.status, response.id, member.id)
    return _outcome(session, inbound)


def _already_clarified(session: Session, message_id: int, inbound_id: int) -> bool:
    stmt = select(SurveyResponse.id).where(
        SurveyResponse.message_id == message_id,
        SurveyResponse.answer == ReplyIntent.UNCLEAR.value,
        SurveyResponse.inbound_id != inbound_id,
    )
    return session.scalars(stmt.limit(1)).first() is not None


def needs_clarification(session: Session, member_id: int, now: dt.datetime) -> bool:
    """Whether an unclear reply from this member should get the "reply 1 or 2" hint (once per survey)."""
    survey = open_survey(session, member_id, now)
    return survey is not None and not _already_clarified(session, survey.id, -1)


def mark_handled(
    session: Session, inbound_id: int, staff_id: int, note: str = "", now=None
) -> InboundMessage:
    """A person dealt with an unmatched or triaged reply; who, when and how is kept on the row."""
    inbound = session.get(InboundMessage, inbound_id, with_for_update=True)
    if inbound is None:
        raise LookupError(f"inbound message {inbound_id} does not exist")
    inbound.handled_by, inbound.handled_at = staff_id, now or utcnow()
    inbound.staff_note = note or inbound.staff_note
    if inbound.status in (InboundStatus.UNMATCHED, InboundStatus.TRIAGE):
        inbound.status = InboundStatus.HANDLED
    return inbound


def _consented(member: Member, channel: str) -> bool:
    return member.sms_consent if channel == "sms" else member.email_consent


def match_reply(
    session: Session, inbound: InboundMessage, now: dt.datetime, secret_key: str = ""
) -> tuple[Member | None, Message | None]:
    """Who replied, and to which open survey.

    E-mail first tries what the reply names (our signed reply address, then In-Reply-To/References);
    SMS, and e-mail without those, go by the sender's address to their most recent open survey.
    """
    named = _named_message(session, inbound, secret_key) if inbound.channel == "email" else None
    if named is not None:
        member = session.get(Member, named.member_id)
        return member, named if _is_open_survey(session, named, now) else None
    member = find_member(session, inbound.channel, inbound.from_address)
    return member, open_survey(session, member.id, now) if member else None


def _named_message(session: Session, inbound: InboundMessage, secret_key: str) -> Message | None:
    headers = (inbound.raw or {}).get("headers", {})
    addresses = [inbound.to_address or "", headers.get("To", ""), headers.get("Delivered-To", "")]
    if secret_key and (message_id := message_id_from_addresses(secret_key, addresses)):
        return session.get(Message, message_id)
    references = re.findall(
        r"<[^<>\s]+>", " ".join([headers.get("In-Reply-To", ""), headers.get("References", "")])
    )
    if references:
        stmt = select(Message).where(Message.provider_id.in_(references)).order_by(Message.id.desc()).limit(1)
        return session.scalars(stmt).first()
    return None


def _is_open_survey(session: Session, message: Message, now: dt.datetime) -> bool:
    stmt = _open_surveys(message.member_id, now).where(Message.id == message.id)
    return session.scalars(stmt).first() is not None


def _outcome(session: Session, inbound: InboundMessage) -> ReplyOutcome:
    response_id = session.scalar(select(SurveyResponse.id).where(SurveyResponse.inbound_id == inbound.id))
    return ReplyOutcome(inbound.id, inbound.intent, inbound.status, response_id, inbound.member_id)
