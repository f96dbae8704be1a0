"""The campaign designer: form → campaign, inline errors, live audience, preview = test send = real send,
launch rules with an audit trail, and a forecast computed from the real data."""

import datetime as dt

from sqlalchemy import select

from accounts.audit import AuditEvent
from accounts.staff import Role
from campaigns.campaign import Campaign, CampaignKind, CampaignStatus
from campaigns.forecast import forecast
from campaigns.message import Message, MessageStatus
from campaigns.scheduler import tick
from campaigns.sending import SendConfig, claim_batch, send_claimed
from channels.file_channel import FileChannel
from database.base import utcnow
from tests.test_web import _login

SMS_ZH = (
    "{{ member.preferred_name }}您好，您的{{ product.name }}大约用了{{ purchase.age_days }}天，该换新胶皮了。"
)
FORM = {
    "name": "Rubber replenishment",
    "kind": "replenishment",
    "lead_days": "7",
    "window_days": "14",
    "primary_channel": "sms",
    "holdout_pct": "0",
    "priority": "60",
    "content_sms_zh-CN_body": SMS_ZH,
    "content_sms_en_body": "Hi {{ member.preferred_name }}, your {{ product.name }} is about worn out.",
}


def _marketer(client, factory, session):
    user = factory.staff(Role.MARKETER)
    session.commit()
    _login(client, user.email)
    return user


def _outbox_body(path):
    """The body of a file-channel message: everything after the first blank line, before any html part."""
    text = path.read_text(encoding="utf-8")
    return text.split("\n\n", 1)[1].split("\n\n--- html ---", 1)[0].rstrip("\n")


def test_form_errors_are_inline_and_nothing_is_saved(client, session, factory):
    _marketer(client, factory, session)
    bad = {**FORM, "name": "", "holdout_pct": "90", "content_sms_en_body": "Hi {{ member.nmae }}"}
    response = client.post("/campaigns/new", data=bad)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Give the campaign a name" in page
    assert "Holdout: between 0 and 50" in page
    assert "did you mean" in page and "name" in page
    assert session.scalar(select(Campaign)) is None


def test_create_edit_and_audit(client, session, factory):
    user = _marketer(client, factory, session)
    response = client.post("/campaigns/new", data=FORM)
    assert response.status_code == 302
    campaign = session.scalars(select(Campaign)).one()
    assert campaign.status is CampaignStatus.DRAFT and campaign.kind is CampaignKind.REPLENISHMENT
    assert campaign.settings["lead_days"] == 7 and campaign.priority == 60
    assert {(c.channel, c.locale) for c in campaign.contents} == {("sms", "zh-CN"), ("sms", "en")}
    page = client.get(f"/campaigns/{campaign.id}/edit").get_data(as_text=True)
    assert "Rubber replenishment" in page and "大约用了" in page

    client.post(f"/campaigns/{campaign.id}/edit", data={**FORM, "lead_days": "10"})
    session.expire_all()
    assert session.get(Campaign, campaign.id).settings["lead_days"] == 10
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.staff_id, e.action) for e in events] == [
        (user.id, "campaign.create"),
        (user.id, "campaign.edit"),
    ]
    assert "lead_days" in events[1].detail["changed"]


def test_launch_needs_content_for_every_channel_and_is_audited(client, session, factory):
    _marketer(client, factory, session)
    client.post("/campaigns/new", data={**FORM, "fallback": "1"})  # sms + e-mail fallback, no e-mail content
    campaign = session.scalars(select(Campaign)).one()
    page = client.get(f"/campaigns/{campaign.id}/edit").get_data(as_text=True)
    assert "no email content" in page
    client.post(f"/campaigns/{campaign.id}/status", data={"action": "launch"})
    session.expire_all()
    assert session.get(Campaign, campaign.id).status is CampaignStatus.DRAFT

    client.post(f"/campaigns/{campaign.id}/edit", data=FORM)  # SMS only now
    client.post(f"/campaigns/{campaign.id}/status", data={"action": "launch"})
    session.expire_all()
    assert session.get(Campaign, campaign.id).status is CampaignStatus.ACTIVE
    client.post(f"/campaigns/{campaign.id}/status", data={"action": "pause"})
    session.expire_all()
    assert session.get(Campaign, campaign.id).status is CampaignStatus.PAUSED
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[-2:] == ["campaign.launch", "campaign.pause"]
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "campaign.launch")).one().detail == {
        "from": "draft",
        "to": "active",
    }


def test_live_audience_count_and_sample(client, session, factory):
    _marketer(client, factory, session)
    factory.member(interests=["table-tennis"], name="Li")
    factory.member(interests=["running"], name="Wang")
    session.commit()
    data = client.get("/campaigns/audience?audience_interests=table-tennis").get_json()
    assert data["count"] == 1 and [m["name"] for m in data["sample"]] == ["Li"]
    assert client.get("/campaigns/audience").get_json()["count"] == 2
    bad = client.get("/campaigns/audience?audience_last_purchase_after=yesterday")
    assert bad.status_code == 400 and "error" in bad.get_json()


def test_preview_test_send_and_real_send_are_byte_identical(app, client, session, factory):
    _marketer(client, factory, session)
    now = utcnow()
    store = factory.store(timezone="UTC", quiet_start="00:00", quiet_end="00:00")
    member = factory.member(store=store, name="王芳", locale="zh-CN")
    factory.purchase(member, factory.product(name="Tenergy 05", prior_days=60), now - dt.timedelta(days=38))
    factory.estimates()
    session.commit()
    client.post("/campaigns/new", data=FORM)
    campaign = session.scalars(select(Campaign)).one()

    live = client.post(
        f"/campaigns/{campaign.id}/preview", data={**FORM, "member_id": member.id, "preview_channel": "sms"}
    ).get_json()
    assert "王芳" in live["text"] and "Tenergy 05" in live["text"] and live["sms"]["encoding"] == "UCS-2"
    page = client.get(f"/campaigns/{campaign.id}/preview?member_id={member.id}&channel=sms").get_data(
        as_text=True
    )
    assert "Tenergy 05" in page

    response = client.post(
        f"/campaigns/{campaign.id}/test-send",
        data={"channel": "sms", "to": "+8613800000000", "member_id": member.id},
    )
    assert response.status_code == 302
    outbox = app.extensions["huifang.settings"].outbox_dir
    test_body = _outbox_body(outbox / "000000000-sms.txt")
    audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "campaign.test_send")).one()
    assert audit.detail["to"] == "+8613800000000" and audit.detail["outcome"] == "sent"
    assert session.scalar(select(Message)) is None  # a test send is not an outbox row: no tracking, no report

    client.post(f"/campaigns/{campaign.id}/status", data={"action": "launch"})
    session.expire_all()
    assert tick(session, now).total == 1
    session.commit()
    ids = claim_batch(session, "sms", 10, now)
    session.commit()
    send_claimed(
        session, FileChannel("sms", outbox), ids, SendConfig("https://huifang.example.com", "s"), now
    )
    message = session.scalars(select(Message)).one()
    assert message.status is MessageStatus.SENT
    real_body = _outbox_body(outbox / f"{message.id:09d}-sms.txt")
    assert live["text"].encode() == test_body.encode() == real_body.encode() == message.body.encode()


def test_forecast_counts_what_the_scheduler_would_send(session, factory):
    now = dt.datetime(2026, 3, 1, 4, 0)  # 12:00 in Shanghai
    store = factory.store(timezone="Asia/Shanghai", quiet_start="21:00", quiet_end="08:00")
    product = factory.product(prior_days=100)
    members = [factory.member(store=store, locale="zh-CN") for _ in range(6)]
    # Median life 100 days, reminder at day 71.7 (the 30% quantile): one purchase is already due, the others fall due on
    # different days over the next two weeks.
    for i, member in enumerate(members):
        factory.purchase(member, product, now - dt.timedelta(days=73 - 3 * i))
    no_consent = factory.member(store=store, sms_consent=False, email_consent=False)
    factory.purchase(no_consent, product, now - dt.timedelta(days=73))
    factory.estimates()
    campaign = factory.campaign(
        CampaignKind.REPLENISHMENT,
        status=CampaignStatus.DRAFT,
        channels=["sms"],
        settings={"lead_days": 0, "window_days": 30},
    )
    session.commit()
    result = forecast(session, campaign, now, segment_cost=0.1)
    total = result.totals
    assert total.sends["sms"] + total.suppressed + total.held_out + total.deferred_cap == 7
    assert total.suppressed == 1
    assert total.segments >= total.sends["sms"] and abs(total.cost - total.segments * 0.1) < 1e-9
    due_days = [d.date for d in result.days if d.sends.get("sms")]
    assert len(due_days) >= 3  # spread over several days, not all on day one

    # Launched and ticked: what the tick inserted on day one is no longer forecast.
    campaign.status = CampaignStatus.ACTIVE
    session.commit()
    inserted = tick(session, now).total
    session.commit()
    assert inserted == 2  # the member due now, and the one without consent (recorded as suppressed)
    again = forecast(session, campaign, now).totals
    assert again.sends["sms"] + again.suppressed + again.held_out + again.deferred_cap == 7 - inserted
