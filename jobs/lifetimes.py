"""The nightly product-lifetime refit as an RQ job (``huifang lifetimes fit`` runs the same domain call)."""

from __future__ import annotations

import logging
from dataclasses import asdict

from database.appsession import session_scope
from database.base import utcnow
from membership.lifetime_fit import fit_lifetimes as fit_all

log = logging.getLogger(__name__)


def fit_lifetimes() -> dict:
    """Refit every product's lifetime from all purchases so far, commit, then schedule the next night.

    Idempotent: a second run the same night rewrites the same estimates (overrides are never touched).
    """
    with session_scope() as session:
        report = fit_all(session)
    from jobs.schedule import schedule_nightly_fit

    schedule_nightly_fit(utcnow())
    summary = {**asdict(report), "seconds": round(report.seconds, 2)}
    log.info("lifetimes fit: %s", summary)
    return summary
