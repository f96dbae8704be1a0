"""The one-click unsubscribe page and its RFC 8058 POST endpoint (no login: the link is the credential)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from campaigns.unsubscribe import unsubscribe
from database.appsession import db_session

bp = Blueprint("unsubscribe", __name__)


@bp.route("/u/<token>", methods=["GET", "POST"])
def one_click(token: str):
    # GET only shows a confirmation button: mail scanners prefetch links, and must not unsubscribe anyone.
    if request.method == "GET":
        return render_template("unsubscribe.html", token=token, done=False)
    session = db_session()
    try:
        unsubscribe(session, current_app.config["SECRET_KEY"], token)
    except ValueError as exc:
        session.rollback()
        return render_template("unsubscribe.html", token=token, done=False, error=str(exc)), 400
    session.commit()
    return render_template("unsubscribe.html", token=token, done=True)
