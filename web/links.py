"""The tracked-link redirect: verify the signed token, record the click, send the customer on (302)."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, redirect, request

from campaigns.link_clicks import record_click
from database.appsession import db_session
from templating.links import BadLinkError, read_link_token

bp = Blueprint("links", __name__)
log = logging.getLogger(__name__)


@bp.get("/l/<token>")
def follow(token: str):
    try:
        link = read_link_token(current_app.config["SECRET_KEY"], token)
    except BadLinkError as exc:
        # Never fall back to a URL from the request: that would make us an open redirect.
        log.warning("refused tracked link from %s: %s", request.remote_addr, exc)
        abort(404)
    if request.method == "GET":  # HEAD is a link checker looking, not a customer clicking
        session = db_session()
        record_click(session, link, request.user_agent.string)
        session.commit()
    return redirect(link.url, code=302)
