"""Inbound e-mail: quotes and signatures stripped (English and Chinese clients), HTML-only handled,
replies matched by signed reply address, then In-Reply-To, then sender; the webhook needs its token."""

import datetime as dt
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from campaigns.campaign import CampaignKind
from campaigns.inbound import InboundMessage, InboundStatus, SurveyResponse
from campaigns.message import Message, MessageStatus
from campaigns.replies import process_inbound, store_email
from campaigns.reply_tokens import message_id_from_addresses, reply_address, reply_token
from channels.email_inbound import parse_inbound_email, strip_quotes


def _raw(body: str, *, to="reply@shop.example", sender="bob@example.com", html=None, **headers) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"Bob <{sender}>", to, "Re: How was your visit?"
    msg["Message-ID"] = headers.pop("message_id", "<r1@mail.example.com>")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    if html is not None:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(body)
    return msg.as_bytes()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "2 the strings broke\n\nOn Mon, Nov 23, 2026 at 10:00 AM Shop <no@shop.example> wrote:\n> Reply 1 or 2\n",
            "2 the strings broke",
        ),
        ("1\n\nThanks,\nBob\n", "1"),
        (
            "2 不满意\n\n在 2026年11月23日 10:00，Huifang <noreply@shop.example> 写道：\n> 满意请回复1\n",
            "2 不满意",
        ),
        ("1\n\n------------------ 原始邮件 ------------------\n发件人: Huifang\n满意请回复1\n", "1"),
        ("满意\n\n-----Original Message-----\nFrom: Shop\nReply 1 or 2\n", "满意"),
        ("> quoted first\n2\n", "2"),
    ],
)
def test_strip_quotes(text, expected):
    assert strip_quotes(text) == expected


def test_html_only_reply_is_read():
    parsed = parse_inbound_email(
        _raw("", html="<div><b>2</b> the box was damaged</div><blockquote>Reply 1</blockquote>")
    )
    assert parsed.reply_text.startswith("2") and "damaged" in parsed.reply_text


@pytest.mark.parametrize("raw", [b"", b"   ", b"not an email at all", b"Subject: hi\r\n\r\nno sender"])
def test_unusable_messages_are_refused_plainly(raw):
    with pytest.raises(ValueError):
        parse_inbound_email(raw)


def test_reply_tokens_are_signed():
    token = reply_token("secret", 42)
    address = reply_address("reply@shop.example", token)
    assert message_id_from_addresses("secret", [address]) == 42
    assert message_id_from_addresses("other-secret", [address]) is None
    assert message_id_from_addresses("secret", [address.replace("42-", "43-")]) is None


def _survey(session, factory, member, now, provider_id):
    campaign = factory.campaign(CampaignKind.SURVEY)
    message = Message(
        campaign_id=campaign.id,
        member_id=member.id,
        subject_ref=provider_id,
        channel="email",
        to_address=member.email,
        status=MessageStatus.SENT,
        sent_at=now - dt.timedelta(hours=1),
        provider_id=provider_id,
    )
    session.add(message)
    session.flush()
    return message


def test_matching_order_token_then_in_reply_to_then_sender(session, factory):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    alice, bob = factory.member(email="alice@example.com"), factory.member(email="bob@example.com")
    alices = _survey(session, factory, alice, now, "<s1@shop.example>")
    bobs = _survey(session, factory, bob, now, "<s2@shop.example>")
    # Bob answers from another address; the signed reply address still names his survey.
    by_token = parse_inbound_email(
        _raw(
            "2",
            to=reply_address("reply@shop.example", reply_token("secret", bobs.id)),
            sender="bob.other@example.com",
            message_id="<a@x>",
        )
    )
    by_reference = parse_inbound_email(
        _raw("1", sender="alice.work@example.com", message_id="<b@x>", In_Reply_To="<s1@shop.example>")
    )
    by_sender = parse_inbound_email(_raw("2 broken", sender="nobody@example.com", message_id="<c@x>"))
    results = []
    for parsed in (by_token, by_reference, by_sender):
        row, created = store_email(session, parsed)
        assert created
        results.append(process_inbound(session, row.id, secret_key="secret"))
    assert results[0].member_id == bob.id and results[0].intent == "unsatisfied"
    assert results[1].member_id == alice.id and results[1].intent == "satisfied"
    assert results[2].status is InboundStatus.UNMATCHED  # unknown sender: kept for staff
    answers = {r.message_id: r.answer for r in session.scalars(select(SurveyResponse))}
    assert answers == {bobs.id: "unsatisfied", alices.id: "satisfied"}


def test_webhook_requires_token_and_stores_once(app, client, session):
    raw = _raw("1", message_id="<hook@x>")
    assert client.post("/webhooks/email/inbound", data=raw).status_code == 401
    headers = {"Authorization": "Bearer inbound-secret"}
    first = client.post("/webhooks/email/inbound", data=raw, headers=headers)
    second = client.post("/webhooks/email/inbound", data=raw, headers=headers)
    assert first.status_code == 202 and second.status_code == 200 and second.json["duplicate"] is True
    assert client.post("/webhooks/email/inbound", data=b"", headers=headers).status_code == 400
    rows = session.scalars(select(InboundMessage)).all()
    assert [r.provider_id for r in rows] == ["<hook@x>"]
