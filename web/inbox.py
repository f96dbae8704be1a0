"""Replies nobody could attribute automatically: staff assign them to a member or mark them handled."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import or_, select

from accounts.staff import Role
from campaigns.replies import mark_handled
from campaigns.reports import unmatched_replies
from database.appsession import db_session
from membership.member import Member
from service.intake import handle_reply
from web.auth import roles_required
from web.domain_text import label, tr

bp = Blueprint("inbox", __name__, url_prefix="/inbox")


@bp.get("/")
@roles_required(Role.MARKETER, Role.AGENT)
def inbox():
    return render_template("inbox.html", replies=unmatched_replies(db_session()))


@bp.post("/<int:inbound_id>/assign")
@roles_required(Role.MARKETER, Role.AGENT)
def assign(inbound_id: int):
    """Attribute the reply to the member with this card number or phone, then process it as theirs."""
    session = db_session()
    key = request.form.get("member", "").strip()
    member = (
        session.scalars(
            select(Member).where(or_(Member.card_number == key, Member.phone == key)).limit(1)
        ).first()
        if key
        else None
    )
    if member is None:
        flash(_("No member with card number or phone %(key)s.", key=repr(key)))
        return redirect(url_for("inbox.inbox"))
    settings = current_app.extensions["huifang.settings"]
    try:
        outcome, task_id = handle_reply(
            session, inbound_id, secret_key=settings.secret_key, member_id=member.id
        )
        mark_handled(session, inbound_id, current_user.id, f"assigned to member {member.card_number}")
    except LookupError as exc:
        session.rollback()
        flash(tr(exc))
        return redirect(url_for("inbox.inbox"))
    session.commit()
    done = _("; call task %(id)s opened", id=task_id) if task_id else ""
    flash(
        _(
            "Reply %(id)s assigned to %(name)s, read as %(intent)s%(done)s.",
            id=inbound_id,
            name=member.name,
            intent=label(outcome.intent),
            done=done,
        )
    )
    return redirect(url_for("inbox.inbox"))


@bp.post("/<int:inbound_id>/handled")
@roles_required(Role.MARKETER, Role.AGENT)
def handled(inbound_id: int):
    session = db_session()
    try:
        mark_handled(session, inbound_id, current_user.id, request.form.get("note", "")[:2000])
    except LookupError as exc:
        session.rollback()
        flash(tr(exc))
        return redirect(url_for("inbox.inbox"))
    session.commit()
    flash(_("Reply %(id)s marked as handled.", id=inbound_id))
    return redirect(url_for("inbox.inbox"))
