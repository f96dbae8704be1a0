"""Interest advice: marketers edit it on a page; a message shows the member's first interest's advice."""

import pytest
from sqlalchemy import select

from accounts.staff import Role
from campaigns.advice import InterestAdvice, advice_for, pick_advice, save_advice
from campaigns.campaign import CampaignKind
from campaigns.message_extras import message_extras
from campaigns.sending import render_for
from templating.render import validate_template
from tests.test_tracked_links import NOW, set_sms_body

ROWS = [
    ("table tennis", "en", "Rubber loses grip after about 60 hours of play."),
    ("table tennis", "zh-CN", "胶皮打满约60小时会失去粘性。"),
    ("running", "en", "Running shoes last roughly 500-800 km."),
    ("hiking", "zh-CN", "登山前检查鞋底。"),
]


@pytest.mark.parametrize(
    ("interests", "locale", "expected"),
    [
        (["table tennis"], "zh-CN", "胶皮打满约60小时会失去粘性。"),
        (["table tennis"], "en", "Rubber loses grip after about 60 hours of play."),
        (["table tennis"], "zh-TW", "胶皮打满约60小时会失去粘性。"),  # same language
        (["table tennis"], "fr", "Rubber loses grip after about 60 hours of play."),  # any locale
        (["swimming", "running"], "zh-CN", "Running shoes last roughly 500-800 km."),  # first with advice
        (["hiking", "running"], "en", "登山前检查鞋底。"),  # interest order beats locale
        (["swimming"], "en", ""),
        ([], "en", ""),
    ],
)
def test_pick_advice(interests, locale, expected):
    assert pick_advice(interests, locale, ROWS) == expected


def test_save_replaces_and_matching_ignores_case(session):
    save_advice(session, " Table  Tennis ", "en", "old")
    save_advice(session, "table tennis", "en", "new")
    assert [(a.interest, a.text) for a in session.scalars(select(InterestAdvice))] == [
        ("table tennis", "new")
    ]
    assert advice_for(session, ["TABLE TENNIS"], "en") == "new"
    for bad in (("", "en", "x"), ("x", "", "x"), ("x", "en", " "), ("x", "en", "y" * 2001)):
        with pytest.raises(ValueError):
            save_advice(session, *bad)


def test_a_message_shows_advice_next_to_the_category_care_tips(session, factory):
    save_advice(session, "table tennis", "en", "Rubber loses grip after about 60 hours.")
    member = factory.member(interests=["table tennis"])
    campaign = factory.campaign(CampaignKind.BROADCAST, settings={"audience": {}})
    set_sms_body(campaign, "{{ advice }} {{ category.care_tips }}")
    product = factory.product()
    product.category.care_tips = "Wipe the rubber after play."
    purchase = factory.purchase(member, product, NOW)
    from campaigns.context import subject_items

    item = subject_items(session, [purchase.id])[purchase.id]
    extras = message_extras(
        session, campaign, member, message_id=None, public_url="https://x", secret_key="k"
    )
    rendered = render_for(campaign, "sms", member, None, item, NOW, extras)
    assert rendered.text.startswith("Rubber loses grip after about 60 hours. Wipe the rubber after play.")


def test_validation_knows_the_new_names_and_suggests_them():
    ok = validate_template({"body": "{{ advice }} {{ track('https://a.example') }} {{ offer.code }}"}, "sms")
    assert ok == []
    issues = {
        (i.message, i.suggestion) for i in validate_template({"body": "{{ advise }} {{ trak('x') }}"}, "sms")
    }
    assert ("unknown variable 'advise'", "did you mean 'advice'?") in issues
    assert ("unknown variable 'trak'", "did you mean 'track'?") in issues


def _login(client, factory, session, role):
    user = factory.staff(role)
    session.commit()
    assert client.post("/login", data={"email": user.email, "password": "password123"}).status_code == 302


def test_marketers_write_edit_and_delete_advice(client, session, factory):
    _login(client, factory, session, Role.MARKETER)
    response = client.post(
        "/advice/", data={"interest": "Hiking", "locale": "zh-CN", "text": "<b>检查鞋底</b>"}
    )
    assert response.status_code == 302
    row = session.scalar(select(InterestAdvice))
    assert (row.interest, row.locale, row.text) == ("hiking", "zh-CN", "<b>检查鞋底</b>")
    page = client.get(f"/advice/?edit={row.id}").get_data(as_text=True)
    assert "&lt;b&gt;检查鞋底&lt;/b&gt;" in page and "<b>检查" not in page
    bad = client.post("/advice/", data={"interest": "hiking", "locale": "en", "text": ""})
    assert bad.status_code == 400 and "write the advice" in bad.get_data(as_text=True)
    assert client.post(f"/advice/{row.id}/delete").status_code == 302
    session.expire_all()
    assert session.scalars(select(InterestAdvice)).all() == []
    assert client.post("/advice/999/delete").status_code == 404


def test_agents_cannot_edit_advice(client, session, factory):
    _login(client, factory, session, Role.AGENT)
    assert client.get("/advice/").status_code == 403
    assert client.post("/advice/", data={"interest": "x", "locale": "en", "text": "y"}).status_code == 403
