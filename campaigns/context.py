"""Plain template contexts for messages, loaded in one query for a whole batch."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from campaigns.campaign import Campaign
from campaigns.message import Message
from membership.catalog import Category, Product
from membership.lifetime import LifetimeEstimate
from membership.member import Member
from membership.purchase import Purchase
from membership.store import Store
from templating.links import untracked


def load_batch(session: Session, ids: list[int]) -> list[tuple[Message, Member, Store | None, Campaign]]:
    """Messages with their member, home store and campaign; one round trip."""
    stmt = (
        select(Message, Member, Store, Campaign)
        .join(Member, Member.id == Message.member_id)
        .outerjoin(Store, Store.id == Member.home_store_id)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(Message.id.in_(ids))
        .order_by(Campaign.priority.desc(), Message.id)  # within a batch, higher priority takes the cap slot
    )
    return [tuple(row) for row in session.execute(stmt)]


def subject_items(session: Session, purchase_ids: list[int]) -> dict[int, dict[str, Any]]:
    """purchase id → item context (product, category, purchase date, lifetime) for a batch."""
    if not purchase_ids:
        return {}
    parent = aliased(Category)
    stmt = (
        select(Purchase, Product, Category, LifetimeEstimate)
        .join(Product, Product.id == Purchase.product_id)
        .outerjoin(Category, Category.id == Product.category_id)
        .outerjoin(parent, parent.id == Category.parent_id)
        .outerjoin(LifetimeEstimate, LifetimeEstimate.product_id == Product.id)
        .where(Purchase.id.in_(purchase_ids))
    )
    items = {}
    for purchase, product, category, estimate in session.execute(stmt):
        items[purchase.id] = {
            "product": {"name": product.name, "sku": product.sku},
            "category": {"name": category.name if category else "", "care_tips": category.care_tips or ""}
            if category
            else {"name": "", "care_tips": ""},
            "purchase": {
                "date": purchase.purchased_at.date(),
                "quantity": purchase.quantity,
                "amount": float(purchase.amount),
            },
            "lifetime": {
                "median_days": round(estimate.override_days or estimate.median_days) if estimate else None,
                "method": estimate.method if estimate else None,
            },
            "_purchased_at": purchase.purchased_at,
        }
    return items


def message_context(
    member: Member, store: Store | None, campaign: Campaign, item: dict[str, Any] | None, now: dt.datetime
) -> dict[str, Any]:
    """Everything a marketer's template may use, as plain values (no ORM objects leak into the sandbox)."""
    context: dict[str, Any] = {
        "member": {
            "name": member.name,
            "preferred_name": member.display_name,
            "tier": member.tier,
            "interests": list(member.interests or []),
        },
        "store": {"name": store.name if store else "", "code": store.code if store else ""},
        "offer": dict(campaign.settings.get("offer") or {}),
        "campaign": {"name": campaign.name, "kind": campaign.kind.value},
        # Stand-ins until message_extras fills them for a message: links untracked, no advice.
        "track": untracked,
        "links": {},
        "advice": "",
    }
    if item:
        purchased_at = item["_purchased_at"]
        context.update({k: v for k, v in item.items() if not k.startswith("_")})
        context["purchase"] = {**item["purchase"], "age_days": (now - purchased_at).days}
    return context
