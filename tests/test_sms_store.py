"""The SMS webhook's combined write and sender lookup, on both databases."""

from sqlalchemy import select

from campaigns.inbound import InboundMessage
from campaigns.replies import store_sms_replies, store_sms_reply


def test_stores_once_and_finds_the_sender(session, factory):
    member = factory.member(phone="+8613800000077", locale="zh-CN", sms_consent=False)
    session.commit()
    kwargs = dict(from_address=member.phone, to_address="+15005550006", body="1", raw={"Body": "1"})
    first_id, created, sender = store_sms_reply(session, provider_id="SM-a", **kwargs)
    assert created and sender == (member.id, False, "zh-CN")
    again_id, created_again, sender_again = store_sms_reply(session, provider_id="SM-a", **kwargs)
    assert (again_id, created_again, sender_again) == (first_id, False, sender)
    stranger = store_sms_reply(session, provider_id="SM-b", **{**kwargs, "from_address": "+447700900000"})
    assert stranger[1] is True and stranger[2] is None and stranger[0] != first_id


def test_a_batch_answers_as_the_replies_would_one_after_another(session, factory):
    known = factory.member(phone="+8613800000078", locale="en", sms_consent=True)
    session.commit()
    base = dict(to_address="+15005550006", body="2", raw={"Body": "2"})
    earlier_id, _, _ = store_sms_reply(session, provider_id="SM-old", from_address=known.phone, **base)
    session.commit()
    batch = [
        dict(provider_id="SM-new", from_address=known.phone, **base),
        dict(provider_id="SM-old", from_address=known.phone, **base),  # stored before the batch
        dict(provider_id="SM-new", from_address=known.phone, **base),  # twice in the same batch
        dict(
            provider_id="SM-stranger",
            from_address="+447700900001",
            to_address=None,
            body="2 坏了",
            raw={"Body": "2 坏了", "NumMedia": "0"},
        ),
    ]
    with session.get_bind().connect() as conn:
        answers = store_sms_replies(conn, batch)
        conn.commit()
    sender = (known.id, True, "en")
    new_id = answers[0][0]
    assert answers == [
        (new_id, True, sender),
        (earlier_id, False, sender),
        (new_id, False, sender),
        (answers[3][0], True, None),
    ]
    assert len({new_id, earlier_id, answers[3][0]}) == 3
    rows = session.execute(select(InboundMessage.provider_id, InboundMessage.from_address)).all()
    assert sorted(rows) == [
        ("SM-new", known.phone),
        ("SM-old", known.phone),
        ("SM-stranger", "+447700900001"),
    ]
    stranger = session.get(InboundMessage, answers[3][0])
    assert (stranger.to_address, stranger.body, stranger.raw) == (
        None,
        "2 坏了",
        {"Body": "2 坏了", "NumMedia": "0"},
    )
    assert (
        stranger.status.value == "received" and stranger.channel == "sms" and stranger.received_at is not None
    )
