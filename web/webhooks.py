"""Provider webhooks: authenticated by signature, stored before they are acknowledged."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, abort, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from campaigns.acknowledgements import acknowledgement
from campaigns.delivery import apply_provider_status
from campaigns.replies import needs_clarification, store_email, store_sms_replies
from channels.email_inbound import parse_inbound_email
from channels.reply_parser import ReplyIntent, parse_reply
from channels.twilio_inbound import (
    parse_inbound_sms,
    parse_status_callback,
    twiml_message,
    verify_twilio_signature,
)
from database.appsession import autocommit_engine, db_session
from database.base import utcnow
from database.group_commit import GroupWriter, WriteInterrupted

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger(__name__)
_SMS_WRITER = "huifang.sms_replies_writer"


@bp.record_once
def _sms_writer(state) -> None:
    app = state.app

    def write(replies):
        with autocommit_engine(app).connect() as conn:
            return store_sms_replies(conn, replies)

    app.extensions[_SMS_WRITER] = GroupWriter(write)


@bp.errorhandler(SQLAlchemyError)
@bp.errorhandler(WriteInterrupted)
def database_unavailable(exc: SQLAlchemyError | WriteInterrupted):
    """Never acknowledge what was not stored: a 503 makes the provider deliver it again later."""
    log.error("webhook %s could not be stored: %s", request.path, exc)
    try:
        db_session().rollback()
    except SQLAlchemyError:  # the connection is gone too; the session is discarded at teardown
        log.debug("rollback after a database error failed as well", exc_info=True)
    return jsonify(error="temporarily unable to store the request"), 503


def _verified_params() -> dict[str, str]:
    settings = current_app.extensions["huifang.settings"]
    if not settings.twilio_auth_token:
        log.error("Twilio webhook called but HUIFANG_TWILIO_AUTH_TOKEN is not set")
        abort(503)
    params = request.form.to_dict()
    # Twilio signs the public URL it called, which a proxy may have rewritten: rebuild it from config.
    url = settings.public_url.rstrip("/") + request.full_path.rstrip("?")
    if not verify_twilio_signature(
        settings.twilio_auth_token, url, params, request.headers.get("X-Twilio-Signature")
    ):
        log.warning("rejected Twilio webhook with a bad signature from %s to %s", request.remote_addr, url)
        abort(403)
    return params


@bp.post("/twilio/sms")
def twilio_sms():
    params = _verified_params()
    try:
        sms = parse_inbound_sms(params)
    except ValueError as exc:
        log.warning("malformed Twilio SMS webhook: %s", exc)
        return jsonify(error=str(exc)), 400
    # Stored and the sender looked up in one statement on PostgreSQL, durable before the answer: a
    # database error here is a 5xx and Twilio retries. Replies that arrive while another is being
    # written share the next statement (see database.group_commit).
    inbound_id, created, sender = current_app.extensions[_SMS_WRITER].submit(
        {
            "provider_id": sms.provider_id,
            "from_address": sms.from_number,
            "to_address": sms.to_number,
            "body": sms.body,
            "raw": sms.raw,
        }
    )
    if created:
        _enqueue_reply(inbound_id)
    member_id, consented, locale = sender or (None, True, None)
    intent = parse_reply(sms.body, opted_out=not consented).intent
    if intent is ReplyIntent.UNCLEAR and (
        member_id is None or not needs_clarification(db_session(), member_id, utcnow())
    ):
        text = None  # one hint per survey; after that a person reads it (and strangers get nothing)
    else:
        text = acknowledgement(intent, locale)
    return Response(twiml_message(text), mimetype="application/xml")


@bp.post("/twilio/status")
def twilio_status():
    params = _verified_params()
    try:
        callback = parse_status_callback(params)
    except ValueError as exc:
        log.warning("malformed Twilio status callback: %s", exc)
        return jsonify(error=str(exc)), 400
    session = db_session()
    apply_provider_status(session, callback.provider_id, callback.status, callback.error_code)
    session.commit()
    return Response(status=204)


def _enqueue_reply(inbound_id: int) -> None:
    from jobs.tasks import signal_replies

    try:
        signal_replies(coalesce=True)
    except Exception:  # the reply is stored; the tick's sweep starts a drain when Redis is back
        log.exception("could not signal the reply drain for %s; it will be swept later", inbound_id)


@bp.post("/email/inbound")
def email_inbound():
    """A raw RFC 822 message, as an MTA pipe or a provider's inbound route forwards it."""
    settings = current_app.extensions["huifang.settings"]
    supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not settings.inbound_token or not hmac.compare_digest(supplied, settings.inbound_token):
        log.warning("rejected inbound e-mail webhook without a valid token from %s", request.remote_addr)
        return jsonify(error="missing or wrong token"), 401
    try:
        parsed = parse_inbound_email(request.get_data())
    except ValueError as exc:
        log.warning("malformed inbound e-mail: %s", exc)
        return jsonify(error=str(exc)), 400
    session = db_session()
    inbound, created = store_email(session, parsed)
    session.commit()
    if created:
        _enqueue_reply(inbound.id)
    return jsonify(id=inbound.id, duplicate=not created), 202 if created else 200
