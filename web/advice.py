"""The interest-advice knowledge base page: marketers write the advice templates show as ``{{ advice }}``."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from accounts.staff import Role
from campaigns.advice import InterestAdvice, list_advice, save_advice
from database.appsession import db_session
from web.auth import roles_required
from web.domain_text import tr

bp = Blueprint("advice", __name__, url_prefix="/advice")
LOCALES = ("zh-CN", "en")


@bp.get("/")
@roles_required(Role.MARKETER)
def advice_list():
    session = db_session()
    editing = session.get(InterestAdvice, request.args.get("edit", type=int) or 0)
    return render_template("advice.html", rows=list_advice(session), editing=editing, locales=LOCALES)


@bp.post("/")
@roles_required(Role.MARKETER)
def save():
    session = db_session()
    form = request.form
    try:
        row = save_advice(session, form.get("interest", ""), form.get("locale", ""), form.get("text", ""))
    except ValueError as exc:
        session.rollback()
        flash(_("Not saved: %(reason)s.", reason=tr(exc)))
        return render_template(
            "advice.html", rows=list_advice(session), editing=None, locales=LOCALES, form=form
        ), 400
    session.commit()
    flash(_("Saved the advice for %(interest)s (%(locale)s).", interest=row.interest, locale=row.locale))
    return redirect(url_for("advice.advice_list"))


@bp.post("/<int:advice_id>/delete")
@roles_required(Role.MARKETER)
def delete(advice_id: int):
    session = db_session()
    row = session.get(InterestAdvice, advice_id)
    if row is None:
        abort(404)
    session.delete(row)
    session.commit()
    flash(_("Deleted the advice for %(interest)s (%(locale)s).", interest=row.interest, locale=row.locale))
    return redirect(url_for("advice.advice_list"))
