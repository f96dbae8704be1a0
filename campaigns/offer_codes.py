"""Offer codes: imported pools of single-use codes, handed out one per message at send time.

A campaign's offer either carries a static ``code`` or names a ``code_pool``; with a pool each message
gets its own code, assigned by one set-based UPDATE so two workers never hand out the same code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from database.base import Base, utcnow

MAX_CODE_CHARS = 64
_ASSIGN_TRIES = 3


class OfferCodeError(Exception):
    """No code could be given to a message (unknown or exhausted pool): the message must not go out."""


class CodePool(Base):
    """A named batch of codes imported from a partner or the till system."""

    __tablename__ = "code_pools"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OfferCode(Base):
    """One code; free while ``assigned_message_id`` is empty, then bound to that message for good."""

    __tablename__ = "offer_codes"
    __table_args__ = (
        UniqueConstraint("pool_id", "code", name="uq_offer_codes_pool_code"),
        Index("ix_offer_codes_pool_message", "pool_id", "assigned_message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("code_pools.id"))
    code: Mapped[str] = mapped_column(String(MAX_CODE_CHARS))
    assigned_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    assigned_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), unique=True)
    assigned_at: Mapped[dt.datetime | None]


def import_codes(session: Session, pool_name: str, codes: Iterable[str]) -> tuple[int, int]:
    """Add codes to the pool (created if new); returns (added, skipped as blank or already there)."""
    pool = session.scalar(select(CodePool).where(CodePool.name == pool_name))
    if pool is None:
        pool = CodePool(name=pool_name)
        session.add(pool)
        session.flush()
    wanted: list[str] = []
    seen: set[str] = set()
    skipped = 0
    for raw in codes:
        code = raw.strip()
        if not code or code in seen:
            skipped += 1
            continue
        if len(code) > MAX_CODE_CHARS:
            raise ValueError(f"code {code[:20]!r}… is longer than {MAX_CODE_CHARS} characters")
        seen.add(code)
        wanted.append(code)
    before = _count(session, pool.id)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for start in range(0, len(wanted), 1000):
        rows = [{"pool_id": pool.id, "code": code} for code in wanted[start : start + 1000]]
        session.execute(insert(OfferCode).values(rows).on_conflict_do_nothing())
    added = _count(session, pool.id) - before
    return added, skipped + len(wanted) - added


def _count(session: Session, pool_id: int) -> int:
    return session.scalar(select(func.count()).where(OfferCode.pool_id == pool_id)) or 0


def pool_status(session: Session, pool_name: str) -> tuple[int, int] | None:
    """(total, still free) for a pool, or None if there is no such pool."""
    pool = session.scalar(select(CodePool).where(CodePool.name == pool_name))
    if pool is None:
        return None
    free = session.scalar(
        select(func.count()).where(OfferCode.pool_id == pool.id, OfferCode.assigned_message_id.is_(None))
    )
    return _count(session, pool.id), free or 0


def assign_code(
    session: Session, pool_name: str, message_id: int, member_id: int, now: dt.datetime | None = None
) -> str:
    """The message's code from ``pool_name``: the one it already holds, else the next free one.

    One UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED) claims a code: on PostgreSQL a code
    another worker is claiming is skipped, not waited for; SQLite serialises writers (and ignores
    FOR UPDATE), so the single statement is already exclusive there. The caller commits.
    """
    pool_id = session.scalar(select(CodePool.id).where(CodePool.name == pool_name))
    if pool_id is None:
        raise OfferCodeError(f"there is no code pool named {pool_name!r}")
    held = session.scalar(
        select(OfferCode.code).where(
            OfferCode.pool_id == pool_id, OfferCode.assigned_message_id == message_id
        )
    )
    if held is not None:
        return held  # a retry or re-send shows the customer the same code
    free = OfferCode.pool_id == pool_id, OfferCode.assigned_message_id.is_(None)
    values = {
        "assigned_message_id": message_id,
        "assigned_member_id": member_id,
        "assigned_at": now or utcnow(),
    }
    # Skip codes other workers hold; a last try waits for them, in case their transactions roll back.
    for skip_locked in [True] * (_ASSIGN_TRIES - 1) + [False]:
        next_free = select(OfferCode.id).where(*free).order_by(OfferCode.id).limit(1)
        claim = (
            update(OfferCode)
            .where(
                OfferCode.id == next_free.with_for_update(skip_locked=skip_locked).scalar_subquery(), *free
            )
            .values(**values)
            .returning(OfferCode.code)
            .execution_options(synchronize_session=False)
        )
        code = session.scalar(claim)
        if code is not None:
            return code
        if not session.scalar(select(func.count()).where(*free)):
            break
    raise OfferCodeError(f"code pool {pool_name!r} has no free codes left")
