"""The 30-day forecast as a background job, for stores too large to compute it within a page request.

A forecast reads the whole due set (seconds on a million members), so the page asks for it by a key
made of the campaign's settings and the hour: the first request enqueues the job and shows progress,
later ones read the finished result from Redis. Small stores (the demo, most single shops) get it
computed in the request, which takes well under the page budget there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass

from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.campaign import Campaign
from campaigns.forecast import Forecast, forecast, forecast_from_dict, forecast_to_dict
from database.appsession import session_scope
from database.base import utcnow
from jobs.connection import queue
from membership.member import Member

log = logging.getLogger(__name__)
QUEUE = "default"
INLINE_MEMBERS = 20_000  # up to this many members the request computes the forecast itself
RESULT_TTL = 2 * 3600
STALLED_AFTER = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class ForecastState:
    """What the page shows: the forecast, or that it is being computed, or why it failed."""

    result: Forecast | None = None
    pending: bool = False
    error: str | None = None
    stalled: bool = False  # queued for over a minute: probably no worker is running


def forecast_key(campaign: Campaign, segment_cost: float, now) -> str:
    """Changes when anything the forecast reads from the campaign changes, and every hour."""
    content = sorted((c.channel, c.locale, c.subject or "", c.body or "") for c in campaign.contents)
    raw = json.dumps(
        [
            campaign.id,
            campaign.kind.value,
            campaign.status.value,
            campaign.holdout_pct,
            campaign.channels,
            campaign.settings,
            content,
            segment_cost,
            now.strftime("%Y%m%d%H"),
        ],
        sort_keys=True,
        default=str,
    )
    return f"forecast-{campaign.id}-{hashlib.sha1(raw.encode()).hexdigest()[:16]}"


def forecast_state(session: Session, campaign: Campaign, segment_cost: float) -> ForecastState:
    """The campaign's forecast if ready (computing it here for a small store), else the job's state."""
    now = utcnow()
    if (session.scalar(select(func.count()).select_from(Member)) or 0) <= INLINE_MEMBERS:
        return ForecastState(forecast(session, campaign, now, segment_cost))
    key = forecast_key(campaign, segment_cost, now)
    try:
        q = queue(QUEUE)
        job = q.fetch_job(key)
        if job is None:
            q.enqueue(
                compute_forecast,
                campaign.id,
                segment_cost,
                job_id=key,
                job_timeout=1800,
                result_ttl=RESULT_TTL,
                failure_ttl=RESULT_TTL,
            )
            return ForecastState(pending=True)
        if job.is_finished:
            return ForecastState(forecast_from_dict(job.return_value()))
        if job.is_failed:
            result = job.latest_result()
            return ForecastState(
                error=(result.exc_string or "").strip().splitlines()[-1] if result else "failed"
            )
        waiting = utcnow() - (job.enqueued_at or utcnow()).replace(tzinfo=None)
        return ForecastState(pending=True, stalled=job.get_status() == "queued" and waiting > STALLED_AFTER)
    except RedisError as exc:
        # No queue to hand it to: compute here rather than show nothing.
        log.warning("forecast computed in the request, Redis unavailable: %s", exc)
        return ForecastState(forecast(session, campaign, now, segment_cost))


def compute_forecast(campaign_id: int, segment_cost: float) -> dict | None:
    """The job: compute the forecast of one campaign now; its JSON is the job's result."""
    with session_scope() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            return None
        return forecast_to_dict(forecast(session, campaign, utcnow(), segment_cost))
