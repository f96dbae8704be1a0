"""Read models for the member 360 page and member search."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from membership.member import ConsentEvent, Member
from membership.purchase import Purchase


def search_members(session: Session, query: str, limit: int = 50) -> list[Member]:
    """Members whose card, phone, e-mail or name contains ``query``."""
    stmt = select(Member).order_by(Member.id).limit(limit)
    query = query.strip()
    if query:
        like = f"%{query}%"
        stmt = stmt.where(
            or_(
                Member.card_number.like(like),
                Member.phone.like(like),
                Member.email.like(like),
                Member.name.like(like),
            )
        )
    return list(session.scalars(stmt))


def purchases_of(session: Session, member_id: int) -> list[Purchase]:
    stmt = select(Purchase).where(Purchase.member_id == member_id).order_by(Purchase.purchased_at.desc())
    return list(session.scalars(stmt))


def consent_history(session: Session, member_id: int) -> list[ConsentEvent]:
    stmt = select(ConsentEvent).where(ConsentEvent.member_id == member_id).order_by(ConsentEvent.at.desc())
    return list(session.scalars(stmt))
