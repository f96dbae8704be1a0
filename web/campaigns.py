"""Dashboard and campaign list."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import func, select

from accounts.staff import Role
from campaigns.reports import campaign_status_counts, survey_answer_counts, unmatched_replies
from database.appsession import db_session
from membership.member import Member
from service.queue import list_tasks
from web.auth import roles_required

bp = Blueprint("campaigns", __name__)


@bp.get("/")
@roles_required(Role.MARKETER)
def dashboard():
    session = db_session()
    return render_template(
        "dashboard.html",
        members=session.scalar(select(func.count()).select_from(Member)),
        campaigns=campaign_status_counts(session),
        open_tasks=len(list_tasks(session, status="open")),
        unmatched=len(unmatched_replies(session)),
    )


@bp.get("/campaigns")
@roles_required(Role.MARKETER)
def campaign_list():
    session = db_session()
    return render_template(
        "campaigns.html", campaigns=campaign_status_counts(session), answers=survey_answer_counts(session)
    )
