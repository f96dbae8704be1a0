"""Tracked links: signed tokens naming message and URL, a recorded click, a 302, and no open redirect."""

import datetime as dt

import pytest
from sqlalchemy import select

from campaigns.campaign import CampaignKind
from campaigns.link_clicks import LinkClick
from campaigns.measurement import campaign_results
from campaigns.message import Message, MessageStatus
from campaigns.message_extras import message_extras
from campaigns.sending import SendConfig, claim_batch, render_for, send_claimed
from channels.file_channel import FileChannel
from membership.member import Member
from templating.links import VALID_FOR, BadLinkError, LinkTracker, link_token, read_link_token
from templating.render import TemplateError, render_message

SECRET = "test-secret"  # the app fixture's secret key
BASE = "https://huifang.example.com"
NOW = dt.datetime(2026, 6, 15, 4, 0)
SHOP = "https://shop.example/paddles?utm=sms&x=1"


def test_token_round_trips_and_names_message_and_url():
    link = read_link_token(SECRET, link_token(SECRET, 42, SHOP))
    assert (link.message_id, link.url, link.test) == (42, SHOP, False)
    assert read_link_token(SECRET, link_token(SECRET, 42, SHOP, test=True)).test is True


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature tampered
        lambda t: "x" + t,
        lambda t: "",
        lambda t: "not-a-token",
    ],
)
def test_mangled_tokens_are_refused(mangle):
    with pytest.raises(BadLinkError):
        read_link_token(SECRET, mangle(link_token(SECRET, 1, SHOP)))


def test_a_token_signed_with_another_key_is_refused():
    with pytest.raises(BadLinkError):
        read_link_token(SECRET, link_token("someone-else", 1, "https://evil.example/"))


def test_tokens_work_for_well_over_thirty_days_then_expire():
    token = link_token(SECRET, 7, SHOP)
    signed = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert read_link_token(SECRET, token, now=signed + dt.timedelta(days=31)).message_id == 7
    assert read_link_token(SECRET, token, now=signed + VALID_FOR - dt.timedelta(days=1)).url == SHOP
    with pytest.raises(BadLinkError, match="expired"):
        read_link_token(SECRET, token, now=signed + VALID_FOR + dt.timedelta(days=1))


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "//evil.example",
        "/relative",
        "mailto:a@b.c",
        "https://",
        "https://a.example/\r\nSet-Cookie: x",
        "https://a.example/" + "x" * 2000,
    ],
)
def test_only_web_urls_are_signed(url):
    with pytest.raises(BadLinkError):
        link_token(SECRET, 1, url)
    assert LinkTracker(BASE, SECRET, 1)(url) == url  # left as written, not wrapped


def test_track_in_a_template_rewrites_to_our_domain_and_escapes_in_html():
    track = LinkTracker(BASE, SECRET, 9)
    sms = render_message("sms", {"body": 'Paddles: {{ track("' + SHOP + '") }}'}, {"track": track})
    url = sms.text.split("Paddles: ", 1)[1].split()[0]
    assert url.startswith(f"{BASE}/l/")
    assert read_link_token(SECRET, url.rsplit("/", 1)[1]).url == SHOP
    email = render_message(
        "email",
        {"subject": "Hi", "html": "<a href=\"{{ track('" + SHOP + "') }}\">go</a>"},
        {"track": track},
    )
    assert f'href="{BASE}/l/' in email.html


@pytest.mark.parametrize(
    "source", ["{{ track._secret }}", "{{ track.__call__ }}", "{{ track.__class__.__init__.__globals__ }}"]
)
def test_the_tracker_leaks_nothing_to_templates(source):
    with pytest.raises(TemplateError):
        render_message("sms", {"body": source}, {"track": LinkTracker(BASE, SECRET, 1)})


def _message(session, factory, **kw):
    member = kw.pop("member", None) or factory.member()
    campaign = kw.pop("campaign", None) or factory.campaign(CampaignKind.BROADCAST, settings={"audience": {}})
    message = Message(
        campaign_id=campaign.id,
        member_id=member.id,
        subject_ref=kw.pop("subject_ref", "b1"),
        channel="sms",
        to_address=member.phone,
        status=kw.pop("status", MessageStatus.SENT),
        due_at=NOW,
        send_after=NOW,
        **kw,
    )
    session.add(message)
    session.flush()
    return message


def test_click_is_recorded_then_redirected(client, session, factory):
    message = _message(session, factory)
    session.commit()
    token = link_token(SECRET, message.id, SHOP)
    response = client.get(f"/l/{token}", headers={"User-Agent": "Phone/1.0"})
    assert response.status_code == 302 and response.location == SHOP
    clicks = session.scalars(select(LinkClick)).all()
    assert [(c.message_id, c.member_id, c.url, c.user_agent) for c in clicks] == [
        (message.id, message.member_id, SHOP, "Phone/1.0")
    ]
    assert client.head(f"/l/{token}").status_code == 302  # link checkers look without clicking
    assert len(session.scalars(select(LinkClick)).all()) == 1
    assert campaign_results(session, message.campaign_id).funnel["clicked"] == 1


def test_test_sends_redirect_without_a_click(client, session, factory):
    flagged = _message(session, factory, is_test=True)
    plain = _message(session, factory, subject_ref="b2")
    session.commit()
    for token in (link_token(SECRET, flagged.id, SHOP), link_token(SECRET, plain.id, SHOP, test=True)):
        response = client.get(f"/l/{token}")
        assert response.status_code == 302 and response.location == SHOP
    assert session.scalars(select(LinkClick)).all() == []


def test_forged_links_are_404_and_never_redirect_anywhere(client, session, caplog):
    forged = link_token("not-our-key", 1, "https://evil.example/")
    for token in (forged, "garbage", forged + "x"):
        response = client.get(f"/l/{token}?next=https://evil.example/")
        assert response.status_code == 404
        assert "evil.example" not in (response.location or "")
    assert "refused tracked link" in caplog.text
    assert session.scalars(select(LinkClick)).all() == []


def test_real_send_tracks_links_and_test_context_marks_them(session, factory, tmp_path):
    campaign = factory.campaign(
        CampaignKind.BROADCAST, settings={"audience": {}, "links": {"shop": SHOP}}, channels=["sms"]
    )
    set_sms_body(campaign, "{{ links.shop }} {{ track('https://shop.example/a') }}")
    message = _message(session, factory, campaign=campaign, status=MessageStatus.PENDING)
    session.commit()
    ids = claim_batch(session, "sms", 10, NOW)
    session.commit()
    send_claimed(session, FileChannel("sms", tmp_path / "out"), ids, SendConfig(BASE, SECRET), now=NOW)
    session.refresh(message)
    assert message.status is MessageStatus.SENT, message.error
    urls = message.body.split()[:2]
    links = [read_link_token(SECRET, u.rsplit("/", 1)[1]) for u in urls]
    assert [(link.message_id, link.url, link.test) for link in links] == [
        (message.id, SHOP, False),
        (message.id, "https://shop.example/a", False),
    ]
    member = session.get(Member, message.member_id)
    preview = message_extras(
        session, campaign, member, message_id=None, public_url=BASE, secret_key=SECRET, test=True
    )
    rendered = render_for(campaign, "sms", member, None, None, NOW, preview)
    assert all(read_link_token(SECRET, u.rsplit("/", 1)[1]).test for u in rendered.text.split()[:2])


def set_sms_body(campaign, body):
    """Replace the factory campaign's English SMS text."""
    for content in campaign.contents:
        if (content.channel, content.locale) == ("sms", "en"):
            content.body = body
