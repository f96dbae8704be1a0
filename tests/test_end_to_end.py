"""The whole loop on each database: purchase → tick → outbox → RQ worker → sent → reply "2" → call task."""

import datetime as dt

from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from campaigns.campaign import CampaignKind
from campaigns.inbound import InboundMessage, SurveyResponse
from campaigns.message import Message, MessageStatus
from database.base import utcnow
from jobs.connection import QUEUES, queue, redis
from jobs.tasks import tick
from service.task import CallTask, TaskStatus


def _work(app):
    worker = SimpleWorker([queue(name) for name in QUEUES], connection=redis(app), serializer=JSONSerializer)
    assert worker.work(burst=True)
    return worker


def _signed_post(client, path, params, token="test-auth-token"):
    url = "https://huifang.example.com" + path
    signature = RequestValidator(token).compute_signature(url, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def test_purchase_to_call_task(app, session, factory, client):
    # A Shanghai member bought a paddle four days ago; it is 12:00 in Shanghai (outside quiet hours).
    now = utcnow()
    store = factory.store(timezone="UTC", quiet_start="00:00", quiet_end="00:00")
    member = factory.member(store=store, name="王芳", locale="zh-CN")
    purchase = factory.purchase(member, factory.product(name="Tenergy rubber"), now - dt.timedelta(days=4))
    factory.campaign(CampaignKind.SURVEY, settings={"days_after": 3, "window_days": 7})
    session.commit()

    summary = tick()  # the job itself, in the test's app context
    assert summary["inserted"] == 1 and "sms" in summary["drains"]
    _work(app)

    session.rollback()  # end the test's read snapshot (SQLite WAL) to see what the worker committed
    message = session.scalars(select(Message)).one()
    assert message.status is MessageStatus.SENT, message.error
    assert message.purchase_id == purchase.id and message.provider_id.startswith("file:")
    assert "满意回复1" in message.body
    outbox = list((app.extensions["huifang.settings"].outbox_dir).glob("*-sms.txt"))
    assert len(outbox) == 1 and member.phone in outbox[0].read_text(encoding="utf-8")

    params = {"MessageSid": "SM" + "a" * 32, "From": member.phone, "To": "+15005550006", "Body": "2 坏了"}
    response = _signed_post(client, "/webhooks/twilio/sms", params)
    assert response.status_code == 200 and b"<Response>" in response.data
    assert "客服" in response.get_data(as_text=True)  # the member's language
    again = _signed_post(
        client, "/webhooks/twilio/sms", params
    )  # Twilio retries: acknowledged, not reprocessed
    assert again.status_code == 200
    _work(app)

    session.rollback()
    assert len(session.scalars(select(InboundMessage)).all()) == 1
    answer = session.scalars(select(SurveyResponse)).one()
    assert answer.answer == "unsatisfied" and answer.comment == "坏了" and answer.message_id == message.id
    task = session.scalars(select(CallTask)).one()
    assert task.member_id == member.id and task.status is TaskStatus.OPEN
    assert task.purchase_id == purchase.id and task.survey_response_id == answer.id

    # A second tick sends nothing new.
    assert tick()["inserted"] == 0
