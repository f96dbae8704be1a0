"""Small builders for test data, so each test states only what matters to it."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from accounts.staff import Role, create_staff
from campaigns.campaign import Campaign, CampaignContent, CampaignKind, CampaignStatus
from membership.catalog import Category, Product
from membership.lifetime import store_prior_estimates
from membership.member import Member
from membership.purchase import Purchase
from membership.store import Store

_seq = itertools.count(1)


class Factory:
    def __init__(self, session):
        self.session = session

    def store(self, **kw) -> Store:
        n = next(_seq)
        store = Store(**{"code": f"S{n}", "name": f"Store {n}", "timezone": "Asia/Shanghai", **kw})
        self.session.add(store)
        self.session.flush()
        return store

    def member(self, store: Store | None = None, **kw) -> Member:
        n = next(_seq)
        store = store or self.store()
        values = {
            "card_number": f"C{n:06d}",
            "name": f"Member {n}",
            "phone": f"+86138{n:08d}",
            "email": f"m{n}@example.com",
            "locale": "en",
            "home_store_id": store.id,
            "sms_consent": True,
            "email_consent": True,
            **kw,
        }
        member = Member(**values)
        self.session.add(member)
        self.session.flush()
        return member

    def product(self, prior_days: int = 180, **kw) -> Product:
        n = next(_seq)
        category = Category(code=f"cat{n}", name=f"Category {n}", lifetime_prior_days=prior_days)
        self.session.add(category)
        self.session.flush()
        product = Product(sku=f"SKU{n}", name=kw.pop("name", f"Paddle {n}"), category_id=category.id, **kw)
        self.session.add(product)
        self.session.flush()
        return product

    def purchase(self, member: Member, product: Product, at: dt.datetime, **kw) -> Purchase:
        n = next(_seq)
        purchase = Purchase(
            external_line_id=kw.pop("external_line_id", f"L{n}"),
            member_id=member.id,
            product_id=product.id,
            store_id=member.home_store_id,
            purchased_at=at,
            **{"quantity": 1, "amount": Decimal("100"), **kw},
        )
        self.session.add(purchase)
        self.session.flush()
        return purchase

    def estimates(self) -> None:
        store_prior_estimates(self.session)
        self.session.flush()

    def campaign(self, kind: CampaignKind = CampaignKind.SURVEY, **kw) -> Campaign:
        settings = kw.pop(
            "settings", {"days_after": 3, "window_days": 7, "lead_days": 7, "window_days_r": 14}
        )
        campaign = Campaign(
            name=kw.pop("name", f"{kind.value} campaign"),
            kind=kind,
            status=kw.pop("status", CampaignStatus.ACTIVE),
            holdout_pct=kw.pop("holdout_pct", 0),
            channels=kw.pop("channels", ["sms", "email"]),
            settings=settings,
            **kw,
        )
        campaign.contents = [
            CampaignContent(channel="sms", locale="en", body="Hi {{ member.preferred_name }}, reply 1 or 2"),
            CampaignContent(
                channel="sms", locale="zh-CN", body="{{ member.preferred_name }}您好，满意回复1，不满意回复2"
            ),
            CampaignContent(
                channel="email", locale="en", subject="About {{ product.name }}", body="", html="<p>Hi</p>"
            ),
        ]
        self.session.add(campaign)
        self.session.flush()
        return campaign

    def staff(self, role: Role = Role.AGENT, password: str = "password123", **kw):
        n = next(_seq)
        return create_staff(
            self.session, kw.get("email", f"staff{n}@example.com"), f"Staff {n}", password, role
        )
