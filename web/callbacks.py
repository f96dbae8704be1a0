"""The agents' callback queue: list, claim next, work a task, log the outcome."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from accounts.staff import Role, StaffUser
from database.appsession import db_session
from database.base import utcnow
from membership.store import Store
from service.queue import claim_next, list_tasks, log_outcome, reassign, task_context
from service.reports import service_report
from service.task import RootCause, TaskOutcome
from web.auth import roles_required
from web.domain_text import label, tr

bp = Blueprint("callbacks", __name__, url_prefix="/callbacks")


@bp.get("/")
@roles_required(Role.AGENT)
def queue():
    session = db_session()
    status = request.args.get("status", "open")
    if status not in {"open", "all", "claimed", "rescheduled", "resolved", "closed"}:
        status = "open"
    mine = current_user.id if request.args.get("mine") else None
    store_id = request.args.get("store", type=int)
    overdue = bool(request.args.get("overdue"))
    tasks = list_tasks(session, status=status, staff_id=mine, store_id=store_id, overdue=overdue)
    stores = session.scalars(select(Store).order_by(Store.name)).all()
    return render_template(
        "queue.html",
        tasks=tasks,
        status=status,
        stores=stores,
        filters={"store": store_id, "overdue": overdue, "mine": bool(mine)},
    )


@bp.post("/claim")
@roles_required(Role.AGENT)
def claim():
    session = db_session()
    task = claim_next(session, current_user.id)
    session.commit()
    if task is None:
        flash(_("No task is waiting right now."))
        return redirect(url_for("callbacks.queue"))
    return redirect(url_for("callbacks.task", task_id=task.id))


@bp.get("/<int:task_id>")
@roles_required(Role.AGENT)
def task(task_id: int):
    session = db_session()
    context = task_context(session, task_id)
    if context is None:
        abort(404)
    colleagues = session.scalars(
        select(StaffUser).where(StaffUser.active.is_(True), StaffUser.role.in_([Role.AGENT, Role.ADMIN]))
    ).all()
    return render_template(
        "task.html", outcomes=list(TaskOutcome), root_causes=list(RootCause), colleagues=colleagues, **context
    )


@bp.post("/<int:task_id>/outcome")
@roles_required(Role.AGENT)
def outcome(task_id: int):
    session = db_session()
    try:
        chosen = TaskOutcome(request.form.get("outcome", ""))
        log_outcome(
            session,
            task_id,
            current_user.id,
            chosen,
            request.form.get("note", "")[:2000],
            root_cause=request.form.get("root_cause") or None,
            resurvey=bool(request.form.get("resurvey")),
        )
    except (ValueError, LookupError) as exc:
        session.rollback()
        flash(tr(exc))
        return redirect(url_for("callbacks.task", task_id=task_id))
    session.commit()
    flash(_("Task %(id)s: %(outcome)s logged.", id=task_id, outcome=label(chosen)))
    return redirect(url_for("callbacks.queue"))


@bp.post("/<int:task_id>/reassign")
@roles_required(Role.AGENT)
def reassign_task(task_id: int):
    session = db_session()
    to_staff = request.form.get("to", type=int)
    colleague = session.get(StaffUser, to_staff) if to_staff else None
    if colleague is None or not colleague.active:
        flash(_("Choose an active colleague to hand the task to."))
        return redirect(url_for("callbacks.task", task_id=task_id))
    try:
        reassign(session, task_id, colleague.id, current_user.id)
    except (ValueError, LookupError) as exc:
        session.rollback()
        flash(tr(exc))
        return redirect(url_for("callbacks.task", task_id=task_id))
    session.commit()
    flash(_("Task %(id)s handed to %(name)s.", id=task_id, name=colleague.name))
    return redirect(url_for("callbacks.queue"))


@bp.get("/report")
@roles_required(Role.AGENT, Role.MARKETER)
def report():
    days = min(max(request.args.get("days", 30, type=int), 1), 730)
    since = utcnow() - dt.timedelta(days=days)
    return render_template("service_report.html", report=service_report(db_session(), since), days=days)
