"""Read models for the member 360 page and member search."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import bindparam, literal_column, or_, select
from sqlalchemy.orm import Session

from membership.catalog import Category, Product
from membership.importing.validation import Invalid, phone
from membership.lifetime import LifetimeEstimate
from membership.member import ConsentEvent, Member, search_text
from membership.purchase import Purchase
from membership.store import Store


def search_members(session: Session, query: str, limit: int = 50) -> list[Member]:
    """Members whose card, phone, e-mail or name contains ``query`` (any case), exact matches first.

    An exact card, e-mail or phone (typed in national form for any store's region) comes first
    through the plain indexes; the substring match runs over one combined text that PostgreSQL
    answers from a trigram index (migration 0008).
    """
    query = query.strip()
    if not query:
        return list(session.scalars(select(Member).order_by(Member.id).limit(limit)))
    exact = list(
        session.scalars(
            select(Member)
            .where(
                or_(
                    Member.card_number == query,
                    Member.email.in_(sorted({query, query.lower()})),
                    Member.phone.in_(_phone_forms(session, query)),
                )
            )
            .order_by(Member.id)
            .limit(limit)
        )
    )
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    # Inlined, not bound: a prepared generic plan cannot tell a rare pattern from a common one.
    pattern = bindparam("pattern", f"%{escaped}%", literal_execute=True)
    stmt = (
        select(Member)
        .where(literal_column(search_text("members.")).ilike(pattern, escape="\\"))
        .order_by(Member.id)
        .limit(limit)
    )
    if len(exact) >= limit:
        return exact
    if exact:
        stmt = stmt.where(Member.id.not_in([m.id for m in exact])).limit(limit - len(exact))
    return exact + list(session.scalars(stmt))


def _phone_forms(session: Session, query: str) -> list[str]:
    """``query`` as E.164 for each region the stores are in (an agent types the local form)."""
    if sum(ch.isdigit() for ch in query) < 6:
        return []
    regions = session.scalars(select(Store.region).distinct()).all()
    forms = set()
    for region in [*regions, None]:
        try:
            forms.add(phone(query, region))
        except Invalid:
            continue
    forms.discard(None)
    return sorted(forms)


def purchases_of(session: Session, member_id: int) -> list[Purchase]:
    stmt = select(Purchase).where(Purchase.member_id == member_id).order_by(Purchase.purchased_at.desc())
    return list(session.scalars(stmt))


def consent_history(session: Session, member_id: int) -> list[ConsentEvent]:
    stmt = select(ConsentEvent).where(ConsentEvent.member_id == member_id).order_by(ConsentEvent.at.desc())
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class OwnedItem:
    """An item the member bought and has not bought again, with when it is predicted to wear out."""

    product: str
    category: str
    bought_at: dt.datetime
    reminder_at: dt.datetime | None  # when a replenishment reminder becomes due (before lead days)
    wear_out_at: dt.datetime | None  # the predicted median end of life
    late_at: dt.datetime | None  # the upper quantile: past this, the member probably replaced it elsewhere
    source: str  # override / the fit's method / prior

    def state(self, now: dt.datetime) -> str:
        if self.wear_out_at is None:
            return "unknown"
        if self.late_at and now > self.late_at:
            return "overdue"
        if now >= self.wear_out_at:
            return "worn out"
        if self.reminder_at and now >= self.reminder_at:
            return "due soon"
        return "fresh"


def owned_items(session: Session, member_id: int) -> list[OwnedItem]:
    """The member's latest purchase of each product, with predicted wear-out dates (one query)."""
    stmt = (
        select(Purchase.product_id, Purchase.purchased_at, Product.name, Category.name, LifetimeEstimate)
        .join(Product, Product.id == Purchase.product_id)
        .outerjoin(Category, Category.id == Product.category_id)
        .outerjoin(LifetimeEstimate, LifetimeEstimate.product_id == Purchase.product_id)
        .where(Purchase.member_id == member_id)
        .order_by(Purchase.purchased_at.desc())
    )
    seen: set[int] = set()
    items = []
    for product_id, bought_at, product, category, estimate in session.execute(stmt):
        if product_id in seen:
            continue
        seen.add(product_id)
        if estimate is None:
            items.append(OwnedItem(product, category or "", bought_at, None, None, None, "no estimate"))
            continue
        median, reminder, high = estimate.median_days, estimate.reminder_days, estimate.high_days
        if estimate.override_days and median:
            # An override is the lifetime; the reminder and spread keep the fitted proportions.
            scale = estimate.override_days / median
            median, reminder, high = estimate.override_days, reminder * scale, high * scale
        items.append(
            OwnedItem(
                product,
                category or "",
                bought_at,
                bought_at + dt.timedelta(days=reminder),
                bought_at + dt.timedelta(days=median),
                bought_at + dt.timedelta(days=high),
                "override" if estimate.override_days else estimate.method,
            )
        )
    return sorted(items, key=lambda i: i.wear_out_at or dt.datetime.max)
