"""The SMS webhook's combined write and sender lookup, on both databases."""

from campaigns.replies import store_sms_reply


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
