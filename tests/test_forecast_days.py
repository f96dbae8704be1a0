"""The forecast's one-query placement of due rows equals evaluating the due query day by day."""

import datetime as dt
import random

import pytest

from campaigns.audiences import AUDIENCES
from campaigns.campaign import CampaignKind, CampaignStatus
from campaigns.forecast import DAYS, _due_rows, due_by_day

NOW = dt.datetime(2026, 3, 1, 4, 0)


def _daily(session, campaign):
    """The reference: the due query at each day's end, keeping rows due within that day."""
    audience = AUDIENCES[campaign.kind]
    days = []
    for d in range(DAYS):
        start, end = NOW + dt.timedelta(days=d), NOW + dt.timedelta(days=d + 1)
        days.append(_due_rows(session, campaign, audience(campaign, end), start if d else None, end))
    return days


def _key(rows):
    return sorted((r.member_id, r.purchase_id, r.due_at, r.status, r.channel) for r in rows)


@pytest.mark.parametrize(
    "kind, settings",
    [
        (CampaignKind.REPLENISHMENT, {"lead_days": 5, "window_days": 10}),
        (CampaignKind.REPLENISHMENT, {"lead_days": 0}),  # the kind's default window
        (CampaignKind.SURVEY, {"days_after": 3, "window_days": 2}),
        (CampaignKind.WINBACK, {"days_without_purchase": 60, "window_days": 5}),
    ],
)
def test_one_query_places_rows_on_the_same_days_as_thirty(session, factory, kind, settings):
    rng = random.Random(5)
    store = factory.store()
    products = [factory.product(prior_days=days) for days in (20, 45, 90)]
    for _ in range(60):
        member = factory.member(store=store, sms_consent=rng.random() < 0.8)
        for _ in range(rng.randint(1, 4)):
            # Some recent shopping too: surveys fall due only for the last few days' purchases.
            at = NOW - dt.timedelta(days=rng.uniform(0, 150) if rng.random() < 0.6 else rng.uniform(0, 6))
            factory.purchase(member, rng.choice(products), at)
    factory.estimates()
    campaign = factory.campaign(kind, status=CampaignStatus.DRAFT, channels=["sms"], settings=settings)
    session.commit()
    expected = _daily(session, campaign)
    got = due_by_day(session, campaign, AUDIENCES[kind], NOW)
    assert sum(map(len, expected)) >= 5  # the data really exercises the query
    assert [_key(day) for day in got] == [_key(day) for day in expected]
