"""Bench: server time of every main page on PostgreSQL with 1M members and 10M purchases (issue: web UI).

Loads the data set, runs a tick so the outbox holds the due replenishment messages, sends a slice
of them and adds survey answers and call tasks, then requests each page repeatedly through the WSGI
app in-process (server time: routing, queries, template rendering) and prints p50 / p95 / max.
Usage: python bench/pages.py [--members N] [--purchases N] [--repeat N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text

from bench._data import load, replenishment_campaign, start_postgres
from campaigns.campaign import Campaign, CampaignContent, CampaignKind, CampaignStatus
from campaigns.replies import store_inbound
from campaigns.scheduler import tick
from database.engine import make_engine, make_sessionmaker
from membership.lifetime import store_prior_estimates
from migrations import load_metadata
from service.intake import handle_reply

TARGET_P95_MS = 300


def _seed(url: str, now: dt.datetime) -> int:
    engine = make_engine(url)
    session = make_sessionmaker(engine)()
    store_prior_estimates(session)
    campaign = replenishment_campaign()
    campaign.contents = [
        CampaignContent(
            channel="sms", locale="en", body="Hi {{ member.preferred_name }}, new {{ product.name }}?"
        ),
        CampaignContent(
            channel="email", locale="en", subject="{{ product.name }}", body="Hi", html="<p>Hi</p>"
        ),
    ]
    survey = Campaign(
        name="bench survey",
        kind=CampaignKind.SURVEY,
        status=CampaignStatus.ACTIVE,
        holdout_pct=0,
        channels=["sms"],
        settings={"days_after": 3, "window_days": 7},
    )
    survey.contents = [CampaignContent(channel="sms", locale="en", body="Happy? Reply 1 or 2")]
    session.add_all([campaign, survey])
    session.commit()
    result = tick(session, now)
    session.commit()
    # A realistic mix: most due messages sent days ago, some answered, some complaints open.
    session.execute(
        text(
            "UPDATE messages SET status = 'sent', sent_at = due_at, provider_id = 'bench-' || id "
            "WHERE status = 'pending' AND id % 10 <> 0"
        )
    )
    # Replies to 2,000 surveys through the real pipeline: answers, and a call task for each "2".
    surveyed = session.execute(
        select(text("id"), text("to_address"))
        .select_from(text("messages"))
        .where(text("campaign_id = :survey AND status = 'sent'"))
        .limit(2000),
        {"survey": survey.id},
    ).all()
    session.commit()
    for i, (message_id, phone) in enumerate(surveyed):
        inbound, _ = store_inbound(
            session,
            channel="sms",
            provider_id=f"bench-in-{message_id}",
            from_address=phone,
            body="2 broke" if i % 5 == 0 else "1",
            raw={},
        )
        session.commit()
        handle_reply(session, inbound.id, now)
        session.commit()
    print(f"  replies: {len(surveyed):,}", flush=True)
    session.commit()
    print(f"  outbox rows: {result.total:,}", flush=True)
    session.close()
    engine.dispose()
    return campaign.id


def _time_pages(url: str, campaign_id: int, repeat: int, pages_filter=None) -> list[tuple[str, list[float]]]:
    from accounts.staff import Role, StaffUser, create_staff
    from app import create_app
    from database.appsession import session_scope

    instance = Path(tempfile.mkdtemp(prefix="huifang-pages-"))
    app = create_app(
        {
            "database_url": url,
            "instance_path": instance,
            "secret_key": "bench",
            "testing": True,
            "csrf": False,
        }
    )
    with app.app_context(), session_scope() as session:
        if session.scalar(select(StaffUser).where(StaffUser.email == "admin@bench.local")) is None:
            create_staff(session, "admin@bench.local", "Admin", "password123", Role.ADMIN)
        member_id = session.scalar(select(text("max(id) / 2")).select_from(text("members")))
        task_id = session.scalar(select(text("id")).select_from(text("call_tasks")).limit(1))
    client = app.test_client()
    client.post("/login", data={"email": "admin@bench.local", "password": "password123"})
    only = set(pages_filter or ())
    pages = [
        ("dashboard", "/"),
        ("campaign list", "/campaigns"),
        ("campaign report", f"/campaigns/{campaign_id}/report"),
        ("campaign designer", f"/campaigns/{campaign_id}/edit"),
        ("audience count (all members)", "/campaigns/audience"),
        ("audience count (interest filter)", "/campaigns/audience?audience_interests=running"),
        ("preview", f"/campaigns/{campaign_id}/preview?member_id={member_id}&channel=sms"),
        ("member search by card", f"/members/?q=C{member_id - 1}"),
        ("member search by name part", f"/members/?q=member {member_id // 10}"),
        ("member search by phone", f"/members/?q=07700{member_id - 1:06d}"),
        ("designer member search", f"/campaigns/members?q=C{member_id // 10}"),
        ("forecast (computed by the worker)", f"/campaigns/{campaign_id}/forecast"),
        ("replies inbox", "/inbox/"),
        ("advice", "/advice/"),
        ("member 360", f"/members/{member_id}"),
        ("callback queue", "/callbacks/"),
        ("service report", "/callbacks/report"),
        ("products", "/products/"),
        ("imports", "/imports/"),
    ]
    if task_id:
        pages.append(("call task", f"/callbacks/{task_id}"))
    # The forecast on a store this size is a worker's job: ask for it, let a worker compute it, then
    # time the page showing the finished forecast (the state a marketer waits a few seconds for).
    client.get(f"/campaigns/{campaign_id}/forecast")
    with app.app_context():
        from rq import SimpleWorker
        from rq.serializers import JSONSerializer

        from jobs.connection import queue, redis

        SimpleWorker([queue("default", app)], connection=redis(app), serializer=JSONSerializer).work(
            burst=True
        )
    if "Computed at" not in client.get(f"/campaigns/{campaign_id}/forecast").get_data(as_text=True):
        print("  forecast: the worker did not produce it", flush=True)
    results = []
    for name, path in pages:
        if only and not any(word in name for word in only):
            continue
        samples = []
        for i in range(repeat + 1):
            started = time.perf_counter()
            response = client.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                print(f"  {name}: HTTP {response.status_code}", flush=True)
                break
            if i:  # the first request warms caches and compiles templates
                samples.append(elapsed)
        if samples:
            results.append((name, samples))
            print(
                f"  {name:34s} p50 {statistics.median(samples):7.1f} ms  p95 {_p95(samples):7.1f} ms",
                flush=True,
            )
    return results


def _time_background(url: str, campaign_id: int, now: dt.datetime) -> None:
    """What the pages hand to the worker on a store this size: the forecast and the dashboard snapshot."""
    from campaigns.dashboard_snapshot import refresh_dashboard
    from campaigns.forecast import forecast

    engine = make_engine(url)
    session = make_sessionmaker(engine)()
    started = time.perf_counter()
    result = forecast(session, session.get(Campaign, campaign_id), now)
    print(
        f"background: forecast {time.perf_counter() - started:.1f} s "
        f"({sum(result.totals.sends.values()):,} sends placed)",
        flush=True,
    )
    started = time.perf_counter()
    refresh_dashboard(session, now)
    session.rollback()
    print(f"background: dashboard snapshot {time.perf_counter() - started:.1f} s", flush=True)
    session.close()
    engine.dispose()


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--purchases", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--url", help="a database already loaded by bench/_data.load (skips the load)")
    parser.add_argument(
        "--campaign", type=int, help="with --url: the seeded campaign to report on (skips seeding)"
    )
    parser.add_argument("--page", action="append", help="time only pages whose name contains this")
    args = parser.parse_args()
    load_metadata()  # every model mapped before the first flush, as the app does
    now = dt.datetime(2026, 11, 23, 12, 0)  # the data generator's clock
    server, url = (None, args.url) if args.url else start_postgres()
    try:
        if not args.url:
            print(f"loading {args.members:,} members and {args.purchases:,} purchases …", flush=True)
            load(url, args.members, args.purchases, now)
        campaign_id = args.campaign if args.url and args.campaign else _seed(url, now)
        print(f"page server time over {args.repeat} requests each (target p95 ≤ {TARGET_P95_MS} ms):")
        results = _time_pages(url, campaign_id, args.repeat, args.page)
        _time_background(url, campaign_id, now)
        slow = [name for name, samples in results if _p95(samples) > TARGET_P95_MS]
        print(f"pages over target: {', '.join(slow) if slow else 'none'}")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
