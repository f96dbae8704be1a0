"""The admin's import page: upload a POS CSV, watch the run's progress, download its bad rows.

The file is saved under the instance folder, the run committed, then a job enqueued (commit
before enqueue); the run page polls a JSON status endpoint. Admins only: an import rewrites
members and consent for every store.
"""

from __future__ import annotations

import csv
import io
import logging
import uuid
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from redis.exceptions import RedisError
from sqlalchemy import select

from accounts.staff import Role
from database.appsession import db_session
from jobs.imports import enqueue_import, total_lines
from membership.importing.formats import KINDS
from membership.importing.reading import ENCODINGS
from membership.importing.runs import ImportRun, ImportStatus, duplicates, recent_runs, run_errors
from membership.importing.service import UnknownStore, start_run
from membership.store import Store
from web import csrf
from web.auth import roles_required
from web.domain_text import label

bp = Blueprint("imports", __name__, url_prefix="/imports")
log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 512 * 1024 * 1024  # a million purchase lines is ~80 MB
SHOWN_ERRORS = 50


@bp.get("/")
@roles_required(Role.ADMIN)
def index():
    return _form()


@bp.post("/")
@csrf.exempt  # checked below, once the body limit is raised: the automatic check parses it first
@roles_required(Role.ADMIN)
def upload():
    request.max_content_length = MAX_UPLOAD_BYTES  # the app-wide limit is for forms, not exports
    if current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()
    form = request.form
    kind, encoding = form.get("kind", ""), form.get("encoding", "auto")
    store_code = form.get("store") or None
    upload = request.files.get("file")
    problem = (
        "choose what the file holds" if kind not in KINDS
        else "choose an encoding" if encoding not in ENCODINGS
        else "choose a CSV file" if upload is None or not upload.filename
        else None
    )  # fmt: skip
    if problem:
        return _form(problem), 400
    try:
        run_id = _start_import(kind, upload, store_code, encoding, dry_run="dry_run" in form)
    except UnknownStore as exc:
        return _form(str(exc)), 400
    except RedisError:
        log.exception("could not queue an uploaded import")
        return _form("The job queue is unavailable; nothing was imported. Try again shortly."), 503
    return redirect(url_for("imports.run", run_id=run_id))


@bp.get("/<int:run_id>")
@roles_required(Role.ADMIN)
def run(run_id: int):
    session = db_session()
    run = _run_or_404(run_id)
    errors = list(run_errors(session, run_id, limit=SHOWN_ERRORS))
    return render_template("import_run.html", run=run, errors=errors, status=_status(run))


@bp.get("/<int:run_id>/status")
@roles_required(Role.ADMIN)
def status(run_id: int):
    return jsonify(_status(_run_or_404(run_id)))


@bp.get("/<int:run_id>/errors.csv")
@roles_required(Role.ADMIN)
def errors_csv(run_id: int):
    run = _run_or_404(run_id)
    session = db_session()

    def generate():
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["line", "column", "reason", "row"])
        yield "\ufeff" + _drain(out)  # a BOM so Excel opens Chinese text as UTF-8
        for n, error in enumerate(run_errors(session, run.id), 1):
            writer.writerow([error.line, error.column or "", error.reason, error.raw or ""])
            if n % 500 == 0:
                yield _drain(out)
        yield _drain(out)

    filename = f"import-{run.id}-errors.csv"
    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/duplicates")
@roles_required(Role.ADMIN)
def duplicate_members():
    return render_template("import_duplicates.html", groups=duplicates(db_session(), limit=500))


def _form(problem: str | None = None) -> str:
    session = db_session()
    stores = session.scalars(select(Store).order_by(Store.code)).all()
    return render_template(
        "imports.html",
        kinds=KINDS,
        encodings=ENCODINGS,
        stores=stores,
        runs=recent_runs(session),
        problem=problem,
    )


def _start_import(kind: str, upload, store_code: str | None, encoding: str, dry_run: bool) -> int:
    """Save the file, commit its run, then queue the job (a worker never looks for a missing run)."""
    path, lines = _save(upload)
    session = db_session()
    try:
        run = start_run(session, kind, Path(upload.filename).name, store_code=store_code, dry_run=dry_run)
    except UnknownStore:
        path.unlink(missing_ok=True)
        raise
    try:
        enqueue_import(run.id, str(path), encoding, total_lines=max(lines - 1, 0))
    except RedisError:  # committed but never queued: say so rather than leave it "running" forever
        path.unlink(missing_ok=True)
        run.finish("the job queue was unavailable; nothing was imported")
        session.commit()
        raise
    return run.id


def _run_or_404(run_id: int) -> ImportRun:
    run = db_session().get(ImportRun, run_id)
    if run is None:
        abort(404)
    return run


def _status(run: ImportRun) -> dict:
    """What the progress bar needs; ``total`` is the file's line count, known while the job lives."""
    finished = run.status is not ImportStatus.RUNNING
    total = None if finished else total_lines(run.id)
    percent = 100 if finished else min(99, run.rows_read * 100 // total) if total else None
    return {
        "id": run.id,
        "status": run.status.value,
        "status_label": label(run.status),
        "finished": finished,
        "rows_read": run.rows_read,
        "total": total,
        "percent": percent,
        "inserted": run.inserted,
        "updated": run.updated,
        "unchanged": run.unchanged,
        "failed": run.failed,
        "message": run.message,
    }


def _save(upload) -> tuple[Path, int]:
    """Stream the upload to ``instance/imports/`` under a fresh name; returns the path and line count."""
    folder = Path(current_app.instance_path) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.csv"
    lines = 0
    with open(path, "wb") as out:
        while chunk := upload.stream.read(1024 * 1024):
            lines += chunk.count(b"\n")
            out.write(chunk)
    return path, lines


def _drain(out: io.StringIO) -> str:
    text = out.getvalue()
    out.seek(0)
    out.truncate(0)
    return text
