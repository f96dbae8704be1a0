"""Every route, as every kind of user; every form without a CSRF token; hostile names escaped.

The matrix is explicit: a new route fails this test until someone decides who may use it.
"""

import pytest

from accounts.staff import Role
from campaigns.campaign import CampaignKind
from campaigns.replies import store_inbound
from membership.importing.service import start_run
from membership.purchase import Purchase
from service.intake import handle_reply
from tests.test_callback_outcomes import _complaint

ANON, AGENT, MARKETER, ADMIN = "anonymous", Role.AGENT, Role.MARKETER, Role.ADMIN
STAFF = {AGENT, MARKETER, ADMIN}
# endpoint → who may use it. "public" routes authenticate by other means (signature, token, signed link).
MATRIX = {
    "campaigns.dashboard": {MARKETER, ADMIN},
    "campaigns.campaign_list": {MARKETER, ADMIN},
    "campaigns.campaign_report": {MARKETER, ADMIN},
    "designer.new": {MARKETER, ADMIN},
    "designer.create": {MARKETER, ADMIN},
    "designer.edit": {MARKETER, ADMIN},
    "designer.save": {MARKETER, ADMIN},
    "designer.status": {MARKETER, ADMIN},
    "designer.audience": {MARKETER, ADMIN},
    "designer.find_members": {MARKETER, ADMIN},
    "designer.live_preview": {MARKETER, ADMIN},
    "designer.preview": {MARKETER, ADMIN},
    "designer.test_send": {MARKETER, ADMIN},
    "designer.forecast_page": {MARKETER, ADMIN},
    "callbacks.queue": {AGENT, ADMIN},
    "callbacks.task": {AGENT, ADMIN},
    "callbacks.outcome": {AGENT, ADMIN},
    "callbacks.reassign_task": {AGENT, ADMIN},
    "callbacks.claim": {AGENT, ADMIN},
    "callbacks.report": STAFF,
    "inbox.inbox": STAFF,
    "inbox.assign": STAFF,
    "inbox.handled": STAFF,
    "members.search": STAFF,
    "members.profile": STAFF,
    "products.index": {MARKETER, ADMIN},
    "products.lock_override": {MARKETER, ADMIN},
    "products.unlock_override": {MARKETER, ADMIN},
    "products.product_prior": {MARKETER, ADMIN},
    "products.category_prior": {MARKETER, ADMIN},
    "imports.index": {ADMIN},
    "imports.upload": {ADMIN},
    "imports.run": {ADMIN},
    "imports.status": {ADMIN},
    "imports.errors_csv": {ADMIN},
    "imports.duplicate_members": {ADMIN},
    "auth.logout": STAFF,
    "i18n.set_language": STAFF,
    "auth.login": "public",
    "static": "public",
    "unsubscribe.one_click": "public",
    "links.follow": "public",
    "advice.advice_list": {MARKETER, ADMIN},
    "advice.save": {MARKETER, ADMIN},
    "advice.delete": {MARKETER, ADMIN},
    "webhooks.email_inbound": "public",
    "api.members": "public",
    "api.purchases": "public",
    "webhooks.twilio_sms": "public",
    "webhooks.twilio_status": "public",
}


def _build(rule, values):
    from flask import url_for

    return url_for(rule.endpoint, **values)


@pytest.fixture
def seeded(session, factory):
    task, message = _complaint(session, factory)
    inbound, _ = store_inbound(
        session, channel="sms", provider_id="SMx", from_address="+10000000000", body="?", raw={}
    )
    handle_reply(session, inbound.id)
    run = start_run(session, "members", "members.csv")
    users = {role: factory.staff(role) for role in (AGENT, MARKETER, ADMIN)}
    purchase = session.get(Purchase, message.purchase_id)
    session.commit()
    ids = {
        "task_id": task.id,
        "campaign_id": message.campaign_id,
        "inbound_id": inbound.id,
        "member_id": task.member_id,
        "run_id": run.id,
        "product_id": purchase.product_id,
        "category_id": purchase.product.category_id,
    }
    return ids, users


def test_every_route_is_in_the_matrix(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints == set(MATRIX), "decide who may use each new route, then list it in MATRIX"


@pytest.mark.parametrize("who", [ANON, AGENT, MARKETER, ADMIN])
def test_role_matrix(app, client, seeded, who):
    ids, users = seeded
    if who != ANON:
        assert (
            client.post("/login", data={"email": users[who].email, "password": "password123"}).status_code
            == 302
        )
    checked = 0
    with app.test_request_context():
        rules = [
            (r, _build(r, {**{a: ids[a] for a in r.arguments if a in ids}, **_special(r)}))
            for r in app.url_map.iter_rules()
        ]
    for rule, url in rules:
        allowed = MATRIX[rule.endpoint]
        if allowed == "public" or rule.endpoint == "auth.logout":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method, data={})
            if who == ANON:
                assert response.status_code == 302 and "/login" in response.location, (method, url)
            elif who in allowed:
                assert response.status_code not in (401, 403), (who, method, url, response.status_code)
                assert not (response.status_code == 302 and "/login" in (response.location or "")), (
                    method,
                    url,
                )
                assert response.status_code < 500, (who, method, url)
            else:
                assert response.status_code == 403, (who, method, url, response.status_code)
            checked += 1
    assert checked >= 14


def _special(rule):
    if rule.endpoint == "static":
        return {"filename": "app.css"}
    if rule.endpoint == "unsubscribe.one_click":
        return {"token": "1-bad"}
    if rule.endpoint == "links.follow":
        return {"token": "forged"}
    if rule.endpoint == "advice.delete":
        return {"advice_id": 1}
    return {}


@pytest.fixture
def csrf_app(app_config):
    from app import create_app

    return create_app({**app_config, "csrf": True, "testing": True})


def test_every_form_refuses_a_post_without_a_csrf_token(csrf_app, seeded):
    ids, users = seeded
    client = csrf_app.test_client()
    # Logging in without a token is refused too; log in the way a browser would, with one.
    assert (
        client.post("/login", data={"email": users[ADMIN].email, "password": "password123"}).status_code
        == 400
    )
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    login = client.post(
        "/login", data={"email": users[ADMIN].email, "password": "password123", "csrf_token": token}
    )
    assert login.status_code == 302
    refused = 0
    with csrf_app.test_request_context():
        posts = [
            _build(r, {**{a: ids[a] for a in r.arguments if a in ids}, **_special(r)})
            for r in csrf_app.url_map.iter_rules()
            if "POST" in r.methods and MATRIX[r.endpoint] != "public"
        ]
    for url in posts:
        response = client.post(url, data={"note": "x", "outcome": "resolved", "member": "C1", "to": "1"})
        assert response.status_code == 400, url
        refused += 1
    assert refused >= 6


def test_hostile_member_name_is_escaped_everywhere(client, session, factory):
    evil = "<script>alert('x')</script>"
    member = factory.member(name=evil)
    task, _ = _complaint(session, factory, member)
    admin = factory.staff(ADMIN)
    factory.campaign(CampaignKind.BROADCAST, name=evil)
    session.commit()
    client.post("/login", data={"email": admin.email, "password": "password123"})
    for url in (
        "/callbacks/",
        f"/callbacks/{task.id}",
        f"/members/{member.id}",
        f"/members/?q={member.card_number}",
        "/campaigns",
        "/",
    ):
        page = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in page, url
    assert "&lt;script&gt;" in client.get("/callbacks/").get_data(as_text=True)
