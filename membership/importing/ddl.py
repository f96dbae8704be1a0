"""Schema changes an import makes on the fly, which must never queue behind other work."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


def within(session: Session, statements: Iterable[str], lock_timeout: str) -> bool:
    """Run ``statements`` in one transaction and commit; False (all rolled back) if a lock they
    need is not granted within ``lock_timeout``, so an import never waits behind a long report."""
    try:
        session.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
        for statement in statements:
            session.execute(text(statement))
        session.commit()
    except OperationalError as exc:
        session.rollback()
        log.debug("gave up on a lock: %s", exc.orig)
        return False
    return True
