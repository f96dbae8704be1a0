"""The intake API for POS systems: ``POST /api/v1/members`` and ``/purchases`` with ``{"rows": [...]}``.

Authenticated by a per-store bearer token (no session, so CSRF-exempt). Rows go through the same
validation and idempotent merge as CSV imports; the answer lists each bad row by its index.
"""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge, Unauthorized

from database.appsession import db_session
from membership.importing.runs import run_errors
from membership.importing.service import import_rows
from membership.importing.tokens import store_for_token

bp = Blueprint("api", __name__, url_prefix="/api/v1")
log = logging.getLogger(__name__)

MAX_ROWS = 5000
MAX_BODY_BYTES = 8 * 1024 * 1024  # 5,000 generous member rows


@bp.errorhandler(HTTPException)
def json_error(exc: HTTPException):
    """API clients get JSON errors, never HTML pages."""
    response = jsonify(error=exc.name, detail=exc.description)
    if isinstance(exc, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="huifang"'
    return response, exc.code


@bp.errorhandler(SQLAlchemyError)
def database_unavailable(exc: SQLAlchemyError):
    log.error("API write to %s failed: %s", request.path, exc)
    try:
        db_session().rollback()
    except SQLAlchemyError:
        log.debug("rollback after a database error failed as well", exc_info=True)
    return jsonify(error="Service Unavailable", detail="temporarily unable to store the rows"), 503


@bp.post("/members")
def members():
    return _ingest("members")


@bp.post("/purchases")
def purchases():
    return _ingest("purchases")


def _ingest(kind: str):
    session = db_session()
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    store = store_for_token(session, token.strip()) if scheme.lower() == "bearer" else None
    if store is None:
        raise Unauthorized("a valid store API token is required (Authorization: Bearer …)")
    rows = _rows()
    run = import_rows(session, kind, rows, store=store, source_name=f"api:{store.code}")
    errors = [{"index": e.line, "column": e.column, "reason": e.reason} for e in run_errors(session, run.id)]
    status = 200 if not run.failed else 207 if run.imported else 400
    body = {
        "run": run.id,
        "received": run.rows_read,
        "inserted": run.inserted,
        "updated": run.updated,
        "unchanged": run.unchanged,
        "rejected": run.failed,
        "errors": errors,
    }
    return jsonify(body), status


def _rows() -> list:
    """The batch's rows, or a 400/413 before anything is stored."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise RequestEntityTooLarge(f"bodies are limited to {MAX_BODY_BYTES:,} bytes")
    # A chunked body has no length: read at most one byte past the limit, so a body cut off at
    # the limit is told apart from one that fits (Werkzeug truncates silently rather than raise).
    request.max_content_length = MAX_BODY_BYTES + 1
    if len(request.get_data(cache=True)) > MAX_BODY_BYTES:
        raise RequestEntityTooLarge(f"bodies are limited to {MAX_BODY_BYTES:,} bytes")
    body = request.get_json(force=True, silent=True)
    if body is None:
        raise BadRequest('the body must be JSON: {"rows": [...]}')
    rows = body.get("rows") if isinstance(body, dict) else None
    if not isinstance(rows, list) or not rows:
        raise BadRequest('the body must be {"rows": [...]} with at least one row')
    if len(rows) > MAX_ROWS:
        raise RequestEntityTooLarge(f"at most {MAX_ROWS:,} rows per request")
    return rows
