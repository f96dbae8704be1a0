"""Member search and the member 360 page."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from accounts.staff import Role
from campaigns.reports import member_messages, member_replies
from database.appsession import db_session
from database.base import utcnow
from membership.importing.runs import ImportRun, purchases_with_runs
from membership.member import Member
from membership.profile import consent_history, owned_items, search_members
from service.queue import list_tasks
from web.auth import roles_required

bp = Blueprint("members", __name__, url_prefix="/members")


@bp.get("/")
@roles_required(Role.MARKETER, Role.AGENT)
def search():
    query = request.args.get("q", "")
    return render_template("members.html", members=search_members(db_session(), query), q=query)


@bp.get("/<int:member_id>")
@roles_required(Role.MARKETER, Role.AGENT)
def profile(member_id: int):
    session = db_session()
    member = session.get(Member, member_id)
    if member is None:
        abort(404)
    tasks = [task for task, _member, _store in list_tasks(session, status="all", member_id=member_id)]
    return render_template(
        "member.html",
        member=member,
        member_run=session.get(ImportRun, member.last_import_run_id) if member.last_import_run_id else None,
        purchases=purchases_with_runs(session, member_id),
        owned=owned_items(session, member_id),
        now=utcnow(),
        messages=member_messages(session, member_id),
        replies=member_replies(session, member_id),
        consents=consent_history(session, member_id),
        tasks=tasks,
    )
