"""Twilio webhooks with real signatures: valid, forged, altered, wrong URL, unsigned, replayed,
malformed; the database down gives a 5xx; an unclear reply gets one clarification."""

import datetime as dt
import logging
import time

import pytest
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from campaigns.campaign import CampaignKind
from campaigns.inbound import InboundMessage
from campaigns.message import Message, MessageStatus
from database.base import utcnow
from jobs.connection import QUEUES, queue, redis
from service.task import CallTask

TOKEN = "test-auth-token"
BASE = "https://huifang.example.com"
SMS = "/webhooks/twilio/sms"


def _sign(path, params, token=TOKEN, base=BASE):
    return RequestValidator(token).compute_signature(base + path, params)


def _params(sender="+8613800000001", body="2 坏了", sid="SM" + "a" * 32):
    return {
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+15005550006",
        "Body": body,
    }


def _count(session):
    session.rollback()
    return session.scalar(select(func.count()).select_from(InboundMessage))


def test_valid_signature_is_stored_and_answered_with_twiml(client, session):
    params = _params()
    response = client.post(SMS, data=params, headers={"X-Twilio-Signature": _sign(SMS, params)})
    assert response.status_code == 200 and response.mimetype == "application/xml"
    assert response.get_data(as_text=True).startswith('<?xml version="1.0" encoding="UTF-8"?><Response>')
    assert _count(session) == 1
    row = session.scalars(select(InboundMessage)).one()
    assert row.raw["Body"] == "2 坏了" and row.provider_id == params["MessageSid"]


@pytest.mark.parametrize(
    "tamper",
    ["forged", "altered", "wrong_url", "unsigned", "added_param"],
)
def test_bad_signatures_get_403_store_nothing_and_are_logged(client, session, caplog, tamper):
    params = _params()
    signature = _sign(SMS, params)
    if tamper == "forged":
        signature = _sign(SMS, params, token="someone-elses-token")
    elif tamper == "altered":
        params = {**params, "Body": "1"}
    elif tamper == "wrong_url":
        signature = _sign(SMS, params, base="https://evil.example.com")
    elif tamper == "added_param":
        params = {**params, "Extra": "x"}
    headers = {} if tamper == "unsigned" else {"X-Twilio-Signature": signature}
    with caplog.at_level(logging.WARNING, logger="web.webhooks"):
        response = client.post(SMS, data=params, headers=headers)
    assert response.status_code == 403
    assert _count(session) == 0
    assert any("bad signature" in r.getMessage() for r in caplog.records)


def test_replayed_delivery_is_acknowledged_and_stored_once(client, session):
    params = _params()
    headers = {"X-Twilio-Signature": _sign(SMS, params)}
    assert client.post(SMS, data=params, headers=headers).status_code == 200
    assert client.post(SMS, data=params, headers=headers).status_code == 200
    assert _count(session) == 1


def test_signed_but_malformed_payload_is_a_400_and_logged(client, session, caplog):
    params = {"MessageSid": "SM" + "b" * 32, "Body": "2"}  # no From
    with caplog.at_level(logging.WARNING, logger="web.webhooks"):
        response = client.post(SMS, data=params, headers={"X-Twilio-Signature": _sign(SMS, params)})
    assert response.status_code == 400 and "From" in response.get_json()["error"]
    assert _count(session) == 0
    assert any("malformed" in r.getMessage() for r in caplog.records)


def test_status_callbacks_move_forward_only(client, session, factory):
    member = factory.member()
    campaign = factory.campaign(CampaignKind.SURVEY)
    message = Message(
        campaign_id=campaign.id,
        member_id=member.id,
        subject_ref="p1",
        channel="sms",
        to_address=member.phone,
        status=MessageStatus.SENT,
        sent_at=utcnow(),
        provider_id="SM" + "c" * 32,
    )
    session.add(message)
    session.commit()
    path = "/webhooks/twilio/status"
    for status in ("delivered", "sent", "delivered"):  # late and duplicate callbacks change nothing
        params = {"MessageSid": message.provider_id, "MessageStatus": status}
        assert (
            client.post(path, data=params, headers={"X-Twilio-Signature": _sign(path, params)}).status_code
            == 204
        )
    session.expire_all()
    assert session.get(Message, message.id).status is MessageStatus.DELIVERED
    bad = {"MessageSid": message.provider_id, "MessageStatus": "exploded"}
    assert client.post(path, data=bad, headers={"X-Twilio-Signature": _sign(path, bad)}).status_code == 400


def test_database_down_answers_5xx_never_200(app_config, tmp_path, caplog):
    from app import create_app

    broken = dict(app_config)
    if app_config["database_url"].startswith("sqlite"):
        broken["database_url"] = f"sqlite:///{tmp_path}/no-such-dir/huifang.db"
    else:  # a PostgreSQL nobody listens on: as if the server had stopped
        broken["database_url"] = "postgresql+psycopg://huifang@127.0.0.1:9/huifang?connect_timeout=2"
    params = _params()
    with caplog.at_level(logging.ERROR, logger="web.webhooks"):
        response = (
            create_app(broken)
            .test_client()
            .post(SMS, data=params, headers={"X-Twilio-Signature": _sign(SMS, params)})
        )
    assert response.status_code == 503
    assert any("could not be stored" in r.getMessage() for r in caplog.records)


def _replies_and_tasks(app, session) -> tuple[int, int]:
    """Run the worker until the queue is empty; then count stored replies and call tasks."""
    SimpleWorker([queue(n) for n in QUEUES], connection=redis(app), serializer=JSONSerializer).work(
        burst=True
    )
    return _count(session), session.scalar(select(func.count()).select_from(CallTask))


def _survey(session, factory, member):
    campaign = factory.campaign(CampaignKind.SURVEY)
    session.add(
        Message(
            campaign_id=campaign.id,
            member_id=member.id,
            subject_ref="p1",
            channel="sms",
            to_address=member.phone,
            status=MessageStatus.SENT,
            sent_at=utcnow() - dt.timedelta(hours=1),
        )
    )
    session.commit()


def test_unclear_reply_gets_one_clarification_then_silence(app, client, session, factory):
    member = factory.member(locale="en")
    _survey(session, factory, member)
    worker = SimpleWorker([queue(n) for n in QUEUES], connection=redis(app), serializer=JSONSerializer)
    texts = []
    for n, body in enumerate(["what is this?", "huh"]):
        params = _params(sender=member.phone, body=body, sid=f"SM{n:032d}")
        texts.append(
            client.post(SMS, data=params, headers={"X-Twilio-Signature": _sign(SMS, params)}).get_data(
                as_text=True
            )
        )
        worker.work(burst=True)
    assert "Reply 1" in texts[0] and "<Message>" not in texts[1]
    session.rollback()
    statuses = [r.status.value for r in session.scalars(select(InboundMessage).order_by(InboundMessage.id))]
    assert statuses == ["processed", "triage"]


def test_duplicate_complaints_make_one_reply_and_one_task(app, client, session, factory):
    member = factory.member()
    _survey(session, factory, member)
    params = _params(sender=member.phone, body="2")
    headers = {"X-Twilio-Signature": _sign(SMS, params)}
    for _ in range(3):
        assert client.post(SMS, data=params, headers=headers).status_code == 200
    assert _replies_and_tasks(app, session) == (1, 1)


def test_the_machine_app_serves_webhooks_and_the_api_and_nothing_else(app_config, session, factory):
    """create_machine_app: what the README's webhook server runs."""
    from app import create_machine_app
    from database.appsession import engine

    machine = create_machine_app(app_config)
    try:
        client = machine.test_client()
        params = _params(sid="SM" + "m" * 32)
        response = client.post(SMS, data=params, headers={"X-Twilio-Signature": _sign(SMS, params)})
        assert response.status_code == 200 and response.mimetype == "application/xml"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "Set-Cookie" not in response.headers
        assert _count(session) == 1
        forged = client.post(SMS, data=params, headers={"X-Twilio-Signature": _sign(SMS, params, token="x")})
        assert forged.status_code == 403
        unauthorised = client.post("/api/v1/purchases", json={"rows": []})
        assert unauthorised.status_code == 401 and unauthorised.is_json
        assert client.get("/login").status_code == 404  # no pages
        assert client.get("/callbacks/").status_code == 404
    finally:
        engine(machine).dispose()


def test_concurrent_replies_share_writes_and_duplicates_among_them_count_once(app, session, factory):
    """Replies posted at once are written together (database.group_commit); a MessageSid repeated
    inside one write is still one reply and one task."""
    from concurrent.futures import ThreadPoolExecutor

    from web.webhooks import _SMS_WRITER

    members = [factory.member() for _ in range(4)]
    for member in members:
        _survey(session, factory, member)
    writer = app.extensions[_SMS_WRITER]
    real_write, sizes = writer._write, []

    def write(replies):
        if not sizes:  # hold the first write until the other requests have queued behind it
            deadline = time.monotonic() + 10
            while len(writer._queue) < 11 and time.monotonic() < deadline:
                time.sleep(0.005)
        sizes.append(len(replies))
        return real_write(replies)

    writer._write = write
    posts = [_params(sender=m.phone, body="2 坏了", sid=f"SM{n:032d}") for n, m in enumerate(members)] * 3

    def post(params):
        response = app.test_client().post(
            SMS, data=params, headers={"X-Twilio-Signature": _sign(SMS, params)}
        )
        return response.status_code, response.get_data(as_text=True)

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(post, posts))
    assert all(status == 200 and "<Message>" in body for status, body in answers)
    assert sizes[0] == 1 and max(sizes) > 1 and sum(sizes) == 12
    assert _replies_and_tasks(app, session) == (4, 4)


def test_a_reply_whose_shared_write_was_interrupted_answers_503(app, client, caplog):
    """Another request's write held this reply and was cut short: Twilio must deliver it again."""
    from database.group_commit import WriteInterrupted
    from web.webhooks import _SMS_WRITER

    def interrupted(replies):
        raise WriteInterrupted("the shared write was interrupted: KeyboardInterrupt()")

    app.extensions[_SMS_WRITER]._write = interrupted
    params = _params()
    with caplog.at_level(logging.ERROR, logger="web.webhooks"):
        response = client.post(SMS, data=params, headers={"X-Twilio-Signature": _sign(SMS, params)})
    assert response.status_code == 503
    assert any("could not be stored" in r.getMessage() for r in caplog.records)
