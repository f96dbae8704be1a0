"""The forecast page on a large store: the first request queues the computation, a worker runs it,
the page then shows the result; small stores get it in the request. The JSON round trip is exact."""

import datetime as dt

from rq import SimpleWorker
from rq.serializers import JSONSerializer

import jobs.forecasts
from accounts.staff import Role
from campaigns.campaign import CampaignKind, CampaignStatus
from campaigns.forecast import forecast, forecast_from_dict, forecast_to_dict
from database.base import utcnow
from jobs.connection import QUEUES, queue, redis
from tests.test_web import _login


def _campaign(session, factory):
    store = factory.store()
    product = factory.product(prior_days=30)
    for i in range(8):
        factory.purchase(factory.member(store=store), product, utcnow() - dt.timedelta(days=18 + i))
    factory.estimates()
    campaign = factory.campaign(
        CampaignKind.REPLENISHMENT, status=CampaignStatus.DRAFT, channels=["sms"], settings={"lead_days": 0}
    )
    marketer = factory.staff(Role.MARKETER)
    session.commit()
    return campaign, marketer


def test_round_trip_through_json_is_exact(session, factory):
    campaign, _ = _campaign(session, factory)
    result = forecast(session, campaign, utcnow(), 0.07)
    assert result.totals.sends["sms"] + result.totals.held_out > 0
    again = forecast_from_dict(forecast_to_dict(result))
    assert again == result


def test_a_large_store_gets_the_forecast_from_a_worker(app, client, session, factory, monkeypatch):
    monkeypatch.setattr(jobs.forecasts, "INLINE_MEMBERS", 0)
    campaign, marketer = _campaign(session, factory)
    _login(client, marketer.email)
    url = f"/campaigns/{campaign.id}/forecast"
    first = client.get(url).get_data(as_text=True)
    assert "Computing the forecast" in first and 'http-equiv="refresh"' in first
    assert "Computing the forecast" in client.get(url).get_data(
        as_text=True
    )  # still queued, not queued twice
    assert queue("default", app).count == 1
    job = queue("default", app).jobs[0]
    job.enqueued_at = job.enqueued_at - dt.timedelta(minutes=2)
    job.save()
    assert "is the worker running" in client.get(url).get_data(as_text=True)  # nobody picked it up
    worker = SimpleWorker([queue(name) for name in QUEUES], connection=redis(app), serializer=JSONSerializer)
    assert worker.work(burst=True)
    ready = client.get(url).get_data(as_text=True)
    assert "Computing the forecast" not in ready and "Computed at" in ready
    expected = forecast(session, campaign, utcnow(), app.extensions["huifang.settings"].sms_segment_cost)
    assert f"<td>{expected.totals.sends.get('sms', 0)}</td>" in ready
    # A changed campaign is a different forecast: computed afresh, not the stale one shown.
    campaign.holdout_pct = 50
    session.commit()
    assert "Computing the forecast" in client.get(url).get_data(as_text=True)


def test_a_small_store_gets_the_forecast_in_the_request(client, session, factory):
    campaign, marketer = _campaign(session, factory)
    _login(client, marketer.email)
    page = client.get(f"/campaigns/{campaign.id}/forecast").get_data(as_text=True)
    assert "Computed at" in page and "Computing the forecast" not in page
