"""Audience filters: a marketer's JSON filter becomes SQL conditions on members, never a Python loop.

The filter is stored on the campaign as ``settings["audience"]``, e.g.
``{"interests": ["mountaineering"], "stores": ["SH01"], "tiers": ["gold"], "locales": ["zh-CN"],
"bought_categories": ["tt-rubber"], "bought_products": ["TT-R-TENERGY"], "consent": "sms",
"last_purchase_after": "2026-01-01", "last_purchase_before": "2026-06-01", "households": true}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, or_, select
from sqlalchemy.orm import Session

from database.sql import json_array_contains
from membership.catalog import Category, Product
from membership.member import Member
from membership.purchase import Purchase
from membership.store import Store

KNOWN_KEYS = {
    "interests",
    "stores",
    "tiers",
    "locales",
    "bought_categories",
    "bought_products",
    "consent",
    "last_purchase_after",
    "last_purchase_before",
    "households",
}


class FilterError(ValueError):
    """A filter the marketer wrote cannot be applied; the message says which key and why."""


def _date(value: Any, key: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise FilterError(f"{key}: expected a date like 2026-01-31, got {value!r}") from None


def _list(filters: dict, key: str) -> list[str]:
    value = filters.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FilterError(f"{key}: expected a list of names")
    return value


def member_conditions(filters: dict | None) -> list[ColumnElement[bool]]:
    """SQL conditions on ``Member`` for a filter dict; raises FilterError for anything unknown."""
    filters = filters or {}
    unknown = set(filters) - KNOWN_KEYS
    if unknown:
        raise FilterError(f"unknown audience filter {', '.join(sorted(unknown))}")
    conditions: list[ColumnElement[bool]] = []
    if interests := _list(filters, "interests"):
        conditions.append(or_(*[json_array_contains(Member.interests, i) for i in interests]))
    if stores := _list(filters, "stores"):
        conditions.append(Member.home_store_id.in_(select(Store.id).where(Store.code.in_(stores))))
    if tiers := _list(filters, "tiers"):
        conditions.append(Member.tier.in_(tiers))
    if locales := _list(filters, "locales"):
        conditions.append(Member.locale.in_(locales))
    if categories := _list(filters, "bought_categories"):
        conditions.append(
            _bought(Product.category_id.in_(select(Category.id).where(Category.code.in_(categories))))
        )
    if skus := _list(filters, "bought_products"):
        conditions.append(_bought(Product.sku.in_(skus)))
    consent = filters.get("consent")
    if consent == "sms":
        conditions.append(Member.sms_consent.is_(True) & Member.phone.is_not(None))
    elif consent == "email":
        conditions.append(Member.email_consent.is_(True) & Member.email.is_not(None))
    elif consent not in (None, "", "any"):
        raise FilterError("consent: expected sms, email or any")
    last = select(func.max(Purchase.purchased_at)).where(Purchase.member_id == Member.id).scalar_subquery()
    if after := filters.get("last_purchase_after"):
        conditions.append(last >= _date(after, "last_purchase_after"))
    if before := filters.get("last_purchase_before"):
        conditions.append(last < _date(before, "last_purchase_before"))
    if filters.get("households") is True:
        conditions.append(Member.household_id.is_not(None))
    return conditions


def _bought(product_condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists(
        select(1)
        .select_from(Purchase)
        .join(Product, Product.id == Purchase.product_id)
        .where(Purchase.member_id == Member.id, product_condition)
    )


def audience_query(filters: dict | None) -> Select:
    """SELECT of matching member ids."""
    return select(Member.id).where(*member_conditions(filters))


def audience_preview(session: Session, filters: dict | None, sample: int = 10) -> tuple[int, list[Member]]:
    """The live count and a sample of matching members, for the campaign designer."""
    conditions = member_conditions(filters)
    count = session.scalar(select(func.count()).select_from(Member).where(*conditions)) or 0
    members = session.scalars(select(Member).where(*conditions).order_by(Member.id).limit(sample)).all()
    return count, list(members)
