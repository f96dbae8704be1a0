"""The products page: priors and where they come from, what was learned, what is used, and the edits."""

import datetime as dt
import math

import numpy as np
import pytest
from sqlalchemy import event, select

from accounts.audit import AuditEvent
from accounts.staff import Role
from membership.catalog import Category, Product
from membership.lifetime import LifetimeEstimate
from membership.lifetime_edit import parse_days
from membership.lifetime_fit import fit_lifetimes
from membership.lifetime_overview import product_lifetimes, weibull_from_quantiles
from tests.test_web import _login
from web.charts import survival_svg

NOW = dt.datetime(2026, 6, 1)


def _tree(session):
    """Racket sports (120 d) > Shuttles (30 d) and Strings (no prior); a product in each way of inheriting."""
    sport = Category(code="racket", name="Racket sports", lifetime_prior_days=120)
    session.add(sport)
    session.flush()
    shuttles = Category(code="shuttle", name="Shuttles", parent_id=sport.id, lifetime_prior_days=30)
    strings = Category(code="string", name="Strings", parent_id=sport.id)
    loose = Category(code="loose", name="Loose")
    session.add_all([shuttles, strings, loose])
    session.flush()
    products = {
        "own": Product(sku="A-OWN", name="Own prior", category_id=shuttles.id, lifetime_prior_days=45),
        "category": Product(sku="B-CAT", name="Category prior", category_id=shuttles.id),
        "parent": Product(sku="C-PAR", name="Parent prior", category_id=strings.id),
        "default": Product(sku="D-DEF", name="Default prior", category_id=loose.id),
    }
    session.add_all(products.values())
    session.flush()
    return products, {"sport": sport, "shuttles": shuttles, "strings": strings}


def _buy_cycles(factory, product, members=60, median=30.0, seed=1):
    """Members repurchasing ``product`` every Weibull(2) interval with the given median, up to NOW."""
    rng = np.random.default_rng(seed)
    scale = median / math.log(2) ** 0.5
    for _ in range(members):
        member = factory.member()
        at = NOW - dt.timedelta(days=float(rng.uniform(150, 200)))
        while at < NOW:
            factory.purchase(member, product, at)
            at += dt.timedelta(days=float(max(2.0, scale * rng.weibull(2.0))))


def test_prior_sources_follow_the_tree(session):
    _tree(session)
    rows = {r.sku: r for r in product_lifetimes(session, per_page=10).rows}
    assert (rows["A-OWN"].prior_days, rows["A-OWN"].prior_source) == (45, "product")
    assert (rows["B-CAT"].prior_days, rows["B-CAT"].prior_source, rows["B-CAT"].prior_source_name) == (
        30,
        "category",
        "Shuttles",
    )
    assert (rows["C-PAR"].prior_days, rows["C-PAR"].prior_source, rows["C-PAR"].prior_source_name) == (
        120,
        "parent category",
        "Racket sports",
    )
    assert (rows["D-DEF"].prior_days, rows["D-DEF"].prior_source) == (180, "default")
    assert all(r.estimate is None and r.in_use == "prior" for r in rows.values())


def test_page_shows_learned_estimate_curve_and_which_value_is_used(client, session, factory):
    products, _ = _tree(session)
    _buy_cycles(factory, products["category"], median=30.0)
    admin = factory.staff(Role.MARKETER)
    report = fit_lifetimes(session, now=NOW)
    session.commit()
    assert report.learned >= 1
    estimate = session.scalar(
        select(LifetimeEstimate).where(LifetimeEstimate.product_id == products["category"].id)
    )
    assert estimate.method == "product" and estimate.shape > 1 and estimate.scale_days > 0
    assert estimate.median_days == pytest.approx(30, rel=0.2)
    _login(client, admin.email)
    page = client.get("/products/").get_data(as_text=True)
    row = page.split(f'id="product-{products["category"].id}"', 1)[1].split("</tr>", 1)[0]
    assert "from category (Shuttles)" in row
    assert f"median {round(estimate.median_days)} d" in row
    assert f"{estimate.n_observed} observed / {estimate.n_censored} censored" in row
    assert 'class="badge learned"' in row and "<svg" in row and "<path" in row
    assert "style=" not in row  # the CSP forbids inline styles; the SVG uses attributes
    parent_row = page.split(f'id="product-{products["parent"].id}"', 1)[1].split("</tr>", 1)[0]
    assert "from parent category (Racket sports)" in parent_row and 'class="badge prior"' in parent_row


def test_lock_and_unlock_an_override_is_audited(client, session, factory):
    products, _ = _tree(session)
    marketer = factory.staff(Role.MARKETER)
    session.commit()
    pid = products["category"].id
    _login(client, marketer.email)
    response = client.post(f"/products/{pid}/override", data={"days": "40", "page": "1"})
    assert response.status_code == 302 and "/products/" in response.location
    session.expire_all()
    estimate = session.scalar(select(LifetimeEstimate).where(LifetimeEstimate.product_id == pid))
    assert estimate.override_days == 40 and estimate.method == "prior"  # created from the prior on demand
    row = product_lifetimes(session, query="B-CAT").rows[0]
    assert (row.in_use, row.in_use_days) == ("override", 40)
    assert "locked at 40 d" in client.get("/products/?q=B-CAT").get_data(as_text=True)

    # A nightly refit keeps the lock.
    fit_lifetimes(session, now=NOW)
    session.commit()
    session.expire_all()
    assert session.get(LifetimeEstimate, estimate.id).override_days == 40

    assert "Not saved" in client.post(
        f"/products/{pid}/override", data={"days": "-3"}, follow_redirects=True
    ).get_data(as_text=True)
    client.post(f"/products/{pid}/unlock", data={})
    session.expire_all()
    assert session.get(LifetimeEstimate, estimate.id).override_days is None
    audits = session.scalars(
        select(AuditEvent).where(AuditEvent.target == f"product:{pid}").order_by(AuditEvent.id)
    ).all()
    assert [(a.action, a.staff_id) for a in audits] == [
        ("lifetime.override", marketer.id),
        ("lifetime.unlock", marketer.id),
    ]
    assert audits[0].detail == {"from": None, "to": 40}


def test_editing_priors_moves_prior_only_estimates_and_is_audited(client, session, factory):
    products, categories = _tree(session)
    marketer = factory.staff(Role.MARKETER)
    fit_lifetimes(session, now=NOW)  # no purchases: every estimate is prior-only
    session.commit()
    _login(client, marketer.email)

    def median(key):
        session.expire_all()
        pid = products[key].id
        found = session.scalar(select(LifetimeEstimate.median_days).where(LifetimeEstimate.product_id == pid))
        return round(found, 6)

    assert median("parent") == 120
    client.post(f"/products/categories/{categories['sport'].id}/prior", data={"days": "200"})
    assert median("parent") == 200 and median("category") == 30  # the sub-category's own prior still wins
    client.post(f"/products/categories/{categories['strings'].id}/prior", data={"days": "90"})
    assert median("parent") == 90
    client.post(f"/products/{products['own'].id}/prior", data={"days": ""})  # empty: inherit again
    assert median("own") == 30
    client.post(f"/products/{products['default'].id}/prior", data={"days": "365"})
    assert median("default") == 365
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["category.prior", "category.prior", "product.prior", "product.prior"]
    assert client.post("/products/999999/prior", data={"days": "5"}).status_code == 302  # flashed, not a 500


def test_pages_and_a_constant_number_of_queries(app, client, session, factory):
    marketer = factory.staff(Role.ADMIN)
    shared = Category(code="bulk", name="Bulk")
    session.add(shared)
    session.flush()
    session.add_all(Product(sku=f"P{i:04d}", name=f"Item {i}", category_id=shared.id) for i in range(120))
    session.commit()
    _login(client, marketer.email)
    from database.appsession import engine

    statements = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine(app), "before_cursor_execute", listen)
    try:
        first = client.get("/products/").get_data(as_text=True)
        n_first = len(statements)
        statements.clear()
        last = client.get("/products/?page=3").get_data(as_text=True)
        n_last = len(statements)
    finally:
        event.remove(engine(app), "before_cursor_execute", listen)
    assert "120 products, page 1 of 3" in first and "P0049" in first and "P0050" not in first
    assert "page 3 of 3" in last and "P0119" in last and "P0099" not in last
    assert n_first == n_last <= 8, statements  # no query per product
    assert "P0007" in client.get("/products/?q=p0007").get_data(as_text=True)


def test_hostile_product_name_is_escaped(client, session, factory):
    factory.product(name="<script>alert(1)</script>")
    admin = factory.staff(Role.ADMIN)
    session.commit()
    _login(client, admin.email)
    page = client.get("/products/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


def test_agents_may_not_see_products(client, session, factory):
    agent = factory.staff(Role.AGENT)
    session.commit()
    _login(client, agent.email)
    assert client.get("/products/").status_code == 403


@pytest.mark.parametrize(
    ("raw", "allow_empty", "expected"),
    [
        ("30", False, 30),
        (" 7 ", False, 7),
        ("", True, None),
        ("", False, ValueError),
        ("0", False, ValueError),
        ("3651", False, ValueError),
        ("2.5", False, ValueError),
        ("abc", True, ValueError),
    ],
)
def test_parse_days(raw, allow_empty, expected):
    if expected is ValueError:
        with pytest.raises(ValueError):
            parse_days(raw, allow_empty)
    else:
        assert parse_days(raw, allow_empty) == expected


def test_shape_recovered_from_stored_quantiles_and_svg_is_plain():
    shape, scale = 2.7, 100.0
    median = scale * math.log(2) ** (1 / shape)
    high = scale * math.log(10) ** (1 / shape)
    assert weibull_from_quantiles(median, high) == pytest.approx((shape, scale))
    svg = str(survival_svg(shape, scale, 0.1, low=40, high=high, mark=median, prior_days=80, label="<x>"))
    assert svg.startswith("<svg") and svg.count("<path") == 2 and "style=" not in svg and "&lt;x&gt;" in svg
