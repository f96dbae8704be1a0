"""Dashboard and campaign list."""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, abort, render_template, request
from sqlalchemy import func, select

from accounts.staff import Role
from campaigns.campaign import Campaign
from campaigns.dashboard import satisfaction_by_week
from campaigns.dashboard_snapshot import dashboard_figures
from campaigns.measurement import campaign_results
from campaigns.reports import campaign_status_counts, survey_answer_counts, unmatched_replies
from database.appsession import db_session
from membership.member import Member
from service.queue import task_counts
from web.auth import roles_required

bp = Blueprint("campaigns", __name__)


@bp.get("/")
@roles_required(Role.MARKETER)
def dashboard():
    session = db_session()
    figures = dashboard_figures(session)
    session.commit()  # a snapshot computed on this first visit is kept for the next
    return render_template(
        "dashboard.html",
        members=session.scalar(select(func.count()).select_from(Member)),
        campaigns=campaign_status_counts(session),
        tasks=task_counts(session),
        unmatched=len(unmatched_replies(session)),
        by_day=figures.by_day,
        satisfaction=satisfaction_by_week(session),
        repeat=figures.repeat,
        computed_at=figures.computed_at,
    )


@bp.get("/campaigns")
@roles_required(Role.MARKETER)
def campaign_list():
    session = db_session()
    return render_template(
        "campaigns.html", campaigns=campaign_status_counts(session), answers=survey_answer_counts(session)
    )


@bp.get("/campaigns/<int:campaign_id>/report")
@roles_required(Role.MARKETER)
def campaign_report(campaign_id: int):
    session = db_session()
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        abort(404)
    window = min(max(request.args.get("window", 30, type=int), 1), 365)
    results = campaign_results(session, campaign_id, window_days=window)
    if request.args.get("format") == "csv":
        return _results_csv(campaign, results)
    return render_template("campaign_report.html", campaign=campaign, results=results, window=window)


def _results_csv(campaign: Campaign, results) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["campaign", campaign.name])
    writer.writerow(["attribution_window_days", results.window_days])
    for stage, n in results.funnel.items():
        writer.writerow([stage, n])
    lift = results.lift
    writer.writerow(["treated_members", lift.treated_n])
    writer.writerow(["treated_repurchased", lift.treated_x])
    writer.writerow(["held_out_members", lift.control_n])
    writer.writerow(["held_out_repurchased", lift.control_x])
    writer.writerow(["lift_difference", lift.difference])
    writer.writerow(["lift_95ci_low", lift.low])
    writer.writerow(["lift_95ci_high", lift.high])
    writer.writerow(["incremental_revenue", results.incremental_revenue])
    filename = f"campaign-{campaign.id}-report.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
