"""Load and fault: thousands of signed inbound replies (10% redelivered) arrive while the worker is stopped;
when it starts, every reply is stored once and every "2" has exactly one call task. Nothing is lost."""

import datetime as dt
import os
import random

import pytest
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import func, insert, select
from twilio.request_validator import RequestValidator

from campaigns.campaign import CampaignKind
from campaigns.inbound import InboundMessage, InboundStatus, SurveyResponse
from campaigns.message import Message, MessageStatus
from database.base import utcnow
from jobs.connection import QUEUES, queue, redis
from membership.member import Member
from service.task import CallTask

# The suite runs 2,000 to stay fast; HUIFANG_LOAD_REPLIES=10000 runs the full acceptance load.
REPLIES = int(os.environ.get("HUIFANG_LOAD_REPLIES", "2000"))
PATH = "/webhooks/twilio/sms"


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_ten_thousand_replies_with_duplicates_lose_nothing(app, client, session, factory):
    store = factory.store()
    campaign = factory.campaign(CampaignKind.SURVEY)
    now = utcnow()
    phones = [f"+86139{n:08d}" for n in range(REPLIES)]
    session.execute(
        insert(Member),
        [
            {
                "card_number": f"L{n:07d}",
                "name": f"Load {n}",
                "phone": p,
                "locale": "zh-CN",
                "home_store_id": store.id,
                "sms_consent": True,
                "email_consent": False,
            }
            for n, p in enumerate(phones)
        ],
    )
    ids = dict(session.execute(select(Member.phone, Member.id).where(Member.card_number.like("L%"))).all())
    session.execute(
        insert(Message),
        [
            {
                "campaign_id": campaign.id,
                "member_id": ids[p],
                "subject_ref": f"p{n}",
                "step": 0,
                "channel": "sms",
                "to_address": p,
                "status": MessageStatus.SENT,
                "sent_at": now - dt.timedelta(hours=1),
                "transactional": True,
            }
            for n, p in enumerate(phones)
        ],
    )
    session.commit()

    rng = random.Random(7)
    bodies = {p: rng.choice(["1", "2", "2 坏了", "满意", "不满意", "1 thanks"]) for p in phones}
    deliveries = [(f"SM{n:032d}", p) for n, p in enumerate(phones)]
    deliveries += rng.sample(deliveries, REPLIES // 10)  # Twilio redelivers about one in ten
    rng.shuffle(deliveries)
    validator = RequestValidator("test-auth-token")
    for sid, phone in deliveries:  # the worker is stopped: replies only pile up in the outbox of work
        params = {"MessageSid": sid, "From": phone, "To": "+15005550006", "Body": bodies[phone]}
        signature = validator.compute_signature("https://huifang.example.com" + PATH, params)
        assert client.post(PATH, data=params, headers={"X-Twilio-Signature": signature}).status_code == 200

    session.expire_all()
    assert session.scalar(select(func.count()).select_from(InboundMessage)) == REPLIES
    assert (
        session.scalar(select(func.count()).where(InboundMessage.status == InboundStatus.RECEIVED)) == REPLIES
    )

    worker = SimpleWorker([queue(n) for n in QUEUES], connection=redis(app), serializer=JSONSerializer)
    worker.work(burst=True)

    session.expire_all()
    statuses = dict(
        session.execute(select(InboundMessage.status, func.count()).group_by(InboundMessage.status)).all()
    )
    assert statuses == {InboundStatus.PROCESSED: REPLIES}
    unhappy = sum(1 for b in bodies.values() if b.startswith("2") or b == "不满意")
    assert session.scalar(select(func.count()).select_from(SurveyResponse)) == REPLIES
    assert session.scalar(select(func.count()).where(SurveyResponse.answer == "unsatisfied")) == unhappy
    assert session.scalar(select(func.count()).select_from(CallTask)) == unhappy
    per_response = session.scalar(
        select(func.count()).select_from(
            select(CallTask.survey_response_id)
            .group_by(CallTask.survey_response_id)
            .having(func.count() > 1)
            .subquery()
        )
    )
    assert per_response == 0
