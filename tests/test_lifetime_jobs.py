"""The nightly lifetime refit: when it runs, that it is scheduled once however often it is seeded,
and that the job writes estimates through a real worker."""

import datetime as dt

import pytest
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer
from sqlalchemy import select

from database.base import utcnow
from jobs.connection import QUEUES, queue, redis
from jobs.schedule import next_daily_run, schedule_nightly_fit
from membership.lifetime import LifetimeEstimate
from settings import SettingsError, load_settings

UTC = dt.UTC


@pytest.mark.parametrize(
    ("now", "at", "zone", "expected"),
    [
        (dt.datetime(2026, 6, 15, 1, 0), "02:30", "UTC", dt.datetime(2026, 6, 15, 2, 30, tzinfo=UTC)),
        (dt.datetime(2026, 6, 15, 2, 30), "02:30", "UTC", dt.datetime(2026, 6, 16, 2, 30, tzinfo=UTC)),
        (dt.datetime(2026, 6, 15, 4, 0), "02:30", "UTC", dt.datetime(2026, 6, 16, 2, 30, tzinfo=UTC)),
        # 12:00 in Shanghai (UTC+8): the next 02:30 there is 18:30 UTC the same day.
        (
            dt.datetime(2026, 6, 15, 4, 0),
            "02:30",
            "Asia/Shanghai",
            dt.datetime(2026, 6, 15, 18, 30, tzinfo=UTC),
        ),
        # 17:00 UTC is 01:00 on the 16th in Shanghai: 02:30 is 90 minutes away.
        (
            dt.datetime(2026, 6, 15, 17, 0),
            "02:30",
            "Asia/Shanghai",
            dt.datetime(2026, 6, 15, 18, 30, tzinfo=UTC),
        ),
        # London summer time (UTC+1) and winter time (UTC+0).
        (
            dt.datetime(2026, 7, 1, 12, 0),
            "02:30",
            "Europe/London",
            dt.datetime(2026, 7, 2, 1, 30, tzinfo=UTC),
        ),
        (
            dt.datetime(2026, 12, 1, 12, 0),
            "02:30",
            "Europe/London",
            dt.datetime(2026, 12, 2, 2, 30, tzinfo=UTC),
        ),
    ],
)
def test_next_daily_run(now, at, zone, expected):
    assert next_daily_run(now, at, zone) == expected


def test_next_daily_run_survives_a_skipped_hour():
    # 2026-03-08 02:30 does not exist in Los Angeles (clocks jump 02:00 → 03:00): still one run that day.
    now = dt.datetime(2026, 3, 8, 8, 0)  # 00:00 PST
    when = next_daily_run(now, "02:30", "America/Los_Angeles")
    assert now.replace(tzinfo=UTC) < when < now.replace(tzinfo=UTC) + dt.timedelta(hours=5)


def test_settings_refuse_a_bad_zone_or_clock(tmp_path):
    base = {"HUIFANG_INSTANCE_PATH": str(tmp_path)}
    assert load_settings(base).lifetime_fit_at == "02:30" and load_settings(base).timezone == "UTC"
    assert load_settings({**base, "HUIFANG_LIFETIME_FIT_AT": "3:05"}).lifetime_fit_at == "03:05"
    for name, value in (("HUIFANG_TIMEZONE", "Mars/Olympus"), ("HUIFANG_LIFETIME_FIT_AT", "25:00")):
        with pytest.raises(SettingsError, match=name):
            load_settings({**base, name: value})


def test_nightly_fit_is_scheduled_once_however_often_it_is_seeded(app):
    now = dt.datetime(2026, 6, 15, 4, 0)
    assert schedule_nightly_fit(now, app) is True
    # Several workers re-seeding during maintenance, later the same day, find it there.
    assert schedule_nightly_fit(now + dt.timedelta(hours=3), app) is False
    registry = ScheduledJobRegistry(queue=queue("default", app))
    assert registry.get_job_ids() == ["lifetimes-fit-20260616T0230"]
    scheduled = registry.get_scheduled_time("lifetimes-fit-20260616T0230")
    assert scheduled.replace(tzinfo=UTC) == dt.datetime(2026, 6, 16, 2, 30, tzinfo=UTC)


def test_the_job_fits_estimates_and_schedules_the_next_night(app, session, factory):
    now = utcnow()
    product = factory.product(prior_days=60)
    for i in range(40):
        member = factory.member()
        for k in range(4):
            factory.purchase(member, product, now - dt.timedelta(days=200 - 45 * k - i % 7))
    session.commit()
    queue("default", app).enqueue("jobs.lifetimes.fit_lifetimes", job_id="fit-now")
    worker = SimpleWorker([queue(name) for name in QUEUES], connection=redis(app), serializer=JSONSerializer)
    assert worker.work(burst=True)
    job = queue("default", app).fetch_job("fit-now")
    assert job.is_finished, job.latest_result().exc_string if job.latest_result() else job.get_status()
    assert job.return_value()["learned"] == 1
    estimate = session.scalar(select(LifetimeEstimate).where(LifetimeEstimate.product_id == product.id))
    assert estimate.method == "product" and estimate.n_observed == 120 and estimate.n_censored == 40
    assert 45 <= estimate.median_days < 57 and estimate.shape > 2  # pulled from the 60-day prior towards 45
    ids = ScheduledJobRegistry(queue=queue("default", app)).get_job_ids()
    assert len(ids) == 1 and ids[0].startswith("lifetimes-fit-")
