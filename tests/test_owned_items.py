"""The member 360 timeline: the latest purchase of each item with its predicted wear-out dates."""

import datetime as dt

from accounts.staff import Role
from membership.lifetime import LifetimeEstimate
from membership.profile import owned_items
from tests.test_web import _login

NOW = dt.datetime(2026, 6, 1, 12, 0)


def test_latest_purchase_per_item_with_prior_and_override(session, factory):
    member = factory.member()
    paddle, shoes = (
        factory.product(name="Paddle", prior_days=180),
        factory.product(name="Shoes", prior_days=300),
    )
    factory.purchase(member, paddle, NOW - dt.timedelta(days=400))
    factory.purchase(member, paddle, NOW - dt.timedelta(days=150))  # the one that counts
    factory.purchase(member, shoes, NOW - dt.timedelta(days=20))
    factory.estimates()
    session.flush()
    items = {i.product: i for i in owned_items(session, member.id)}
    paddle_item = items["Paddle"]
    assert paddle_item.bought_at == NOW - dt.timedelta(days=150)
    assert paddle_item.wear_out_at == paddle_item.bought_at + dt.timedelta(days=180)
    assert paddle_item.reminder_at < paddle_item.wear_out_at < paddle_item.late_at
    assert paddle_item.state(NOW) == "due soon" and items["Shoes"].state(NOW) == "fresh"

    estimate = session.query(LifetimeEstimate).filter_by(product_id=paddle.id).one()
    ratio = estimate.reminder_days / estimate.median_days
    estimate.override_days = 90.0
    session.flush()
    locked = {i.product: i for i in owned_items(session, member.id)}["Paddle"]
    assert locked.source == "override"
    assert locked.wear_out_at == locked.bought_at + dt.timedelta(days=90)
    assert abs((locked.reminder_at - locked.bought_at).total_seconds() / 86400 - 90 * ratio) < 1e-6
    assert locked.state(NOW) == "overdue" or locked.state(NOW) == "worn out"


def test_member_page_draws_the_timeline(client, session, factory):
    member = factory.member()
    factory.purchase(member, factory.product(name="Goggles", prior_days=365), NOW - dt.timedelta(days=30))
    factory.estimates()
    agent = factory.staff(Role.AGENT)
    session.commit()
    _login(client, agent.email)
    page = client.get(f"/members/{member.id}").get_data(as_text=True)
    assert "predicted worn out" in page.lower() and "Goggles" in page and 'id="owned-title"' in page
