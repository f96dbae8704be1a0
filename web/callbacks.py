"""The agents' callback queue: list, claim next, work a task, log the outcome."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from accounts.staff import Role
from database.appsession import db_session
from service.queue import claim_next, list_tasks, log_outcome, task_context
from service.task import TaskOutcome
from web.auth import roles_required

bp = Blueprint("callbacks", __name__, url_prefix="/callbacks")


@bp.get("/")
@roles_required(Role.AGENT)
def queue():
    status = request.args.get("status", "open")
    mine = current_user.id if request.args.get("mine") else None
    return render_template(
        "queue.html", tasks=list_tasks(db_session(), status=status, staff_id=mine), status=status
    )


@bp.post("/claim")
@roles_required(Role.AGENT)
def claim():
    session = db_session()
    task = claim_next(session, current_user.id)
    session.commit()
    if task is None:
        flash("No task is waiting right now.")
        return redirect(url_for("callbacks.queue"))
    return redirect(url_for("callbacks.task", task_id=task.id))


@bp.get("/<int:task_id>")
@roles_required(Role.AGENT)
def task(task_id: int):
    context = task_context(db_session(), task_id)
    if context is None:
        abort(404)
    return render_template("task.html", outcomes=list(TaskOutcome), **context)


@bp.post("/<int:task_id>/outcome")
@roles_required(Role.AGENT)
def outcome(task_id: int):
    session = db_session()
    try:
        chosen = TaskOutcome(request.form.get("outcome", ""))
        log_outcome(session, task_id, current_user.id, chosen, request.form.get("note", "")[:2000])
    except (ValueError, LookupError) as exc:
        session.rollback()
        flash(str(exc))
        return redirect(url_for("callbacks.task", task_id=task_id))
    session.commit()
    flash(f"Task {task_id}: {chosen.value.replace('_', ' ')} logged.")
    return redirect(url_for("callbacks.queue"))
