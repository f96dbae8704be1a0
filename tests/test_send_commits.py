"""Outcomes are committed in groups; a channel that blows up mid-batch still leaves every outcome
known before it committed, and the message in hand claimed (so it is reconciled, never resent)."""

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.campaign import CampaignKind
from campaigns.message import Message, MessageStatus
from campaigns.scheduler import tick
from campaigns.sending import SendConfig, claim_batch, send_claimed
from channels.base import SendOutcome, SendResult

NOW = dt.datetime(2026, 6, 15, 4, 0)  # 12:00 in Shanghai: outside quiet hours


class BreaksOnFourth:
    name = "sms"

    def __init__(self):
        self.calls = 0

    def send(self, message):
        self.calls += 1
        if self.calls == 4:
            raise RuntimeError("provider client crashed")
        return SendResult(SendOutcome.SENT, provider_id=f"SM{message.message_id}")


def test_a_crash_mid_batch_keeps_the_outcomes_before_it(session, factory):
    for _ in range(6):
        factory.member()
    factory.campaign(CampaignKind.BROADCAST, channels=["sms"], settings={"audience": {}})
    tick(session, NOW)
    ids = claim_batch(session, "sms", 10, NOW)
    session.commit()
    assert len(ids) == 6
    with pytest.raises(RuntimeError, match="crashed"):
        send_claimed(session, BreaksOnFourth(), ids, SendConfig("https://x.example", "s"), now=NOW)
    session.rollback()
    with Session(session.get_bind()) as fresh:  # what another process sees: the committed state
        statuses = [m.status for m in fresh.scalars(select(Message).order_by(Message.id))]
    assert statuses[:3] == [MessageStatus.SENT] * 3
    assert statuses[3:] == [MessageStatus.SENDING] * 3  # claimed: expired to unknown and reconciled later
