"""The upload page's import job: runs a saved CSV through the importer, progress kept on the run row.

The view commits the run and saves the file before enqueueing; the job only takes the run id and
the file's path. The importer commits the run's counts after every chunk, which is what the page
polls. Re-running the job after a crash starts the run's counts afresh: the merge is idempotent.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rq import Retry
from sqlalchemy import delete

from database.appsession import session_scope
from jobs.connection import queue
from membership.importing.runs import ImportRowError, ImportRun, ImportStatus

log = logging.getLogger(__name__)
QUEUE = "default"
JOB_TIMEOUT = 3 * 3600  # a million-line file takes seconds; a slow disk or database must not kill it


def job_id(run_id: int) -> str:
    return f"import-{run_id}"


def enqueue_import(run_id: int, path: str, encoding: str = "auto", total_lines: int | None = None):
    """Queue the import of a committed run; one job per run (its id is the run's)."""
    return queue(QUEUE).enqueue(
        run_import,
        run_id,
        path,
        encoding,
        job_id=job_id(run_id),
        meta={"total_lines": total_lines},
        job_timeout=JOB_TIMEOUT,
        retry=Retry(max=2, interval=30),  # a worker that died mid-file: the merge is idempotent
        result_ttl=86400,
        failure_ttl=7 * 86400,
    )


def total_lines(run_id: int) -> int | None:
    """The line count the view measured on upload, while the run's job is kept; None if unknown."""
    from redis.exceptions import RedisError

    try:
        job = queue(QUEUE).fetch_job(job_id(run_id))
    except RedisError:
        return None  # the bar shows "busy" instead of a percentage; the counts still come from the run
    return job.meta.get("total_lines") if job is not None else None


def run_import(run_id: int, path: str, encoding: str = "auto") -> dict:
    """Import the file of run ``run_id``; a run that already finished is left alone."""
    from membership.importing.service import import_file

    with session_scope() as session:
        run = session.get(ImportRun, run_id)
        if run is None or run.status is not ImportStatus.RUNNING:
            return {"run": run_id, "status": run.status.value if run else "missing"}
        if run.rows_read:  # an earlier attempt died half-way: count again from the start
            session.execute(delete(ImportRowError).where(ImportRowError.run_id == run_id))
            run.rows_read = run.inserted = run.updated = run.unchanged = run.failed = 0
            session.commit()
        try:
            run = import_file(session, run.kind.value, path, encoding=encoding, dry_run=run.dry_run, run=run)
        finally:
            _remove(path)
        summary = {
            "run": run.id,
            "status": run.status.value,
            "rows_read": run.rows_read,
            "failed": run.failed,
        }
        changed = (run.inserted or 0) + (run.updated or 0)
        refresh = run.kind.value == "purchases" and changed and not run.dry_run
    if refresh:
        from jobs.dashboard import refresh_dashboard

        # New purchases move the repeat-purchase chart: refresh now rather than at the next slot.
        queue(QUEUE).enqueue(refresh_dashboard, job_timeout=1800, result_ttl=3600, failure_ttl=86400)
    log.info("import %s", summary)
    return summary


def _remove(path: str) -> None:
    try:
        Path(path).unlink(missing_ok=True)
    except OSError:
        log.warning("could not remove the uploaded file %s", path, exc_info=True)
