"""The products page: each product's lifetime prior, what was learned, which one is used, and the curve."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from accounts.staff import Role
from database.appsession import db_session
from membership.lifetime_edit import (
    clear_override,
    parse_days,
    set_category_prior,
    set_override,
    set_product_prior,
)
from membership.lifetime_overview import category_priors_overview, product_lifetimes
from web.auth import roles_required
from web.charts import survival_svg
from web.domain_text import tr

bp = Blueprint("products", __name__, url_prefix="/products")
PER_PAGE = 50


@bp.get("/")
@roles_required(Role.MARKETER)
def index():
    session = db_session()
    q = request.args.get("q", "")[:100]
    category = request.args.get("category", type=int)
    page = product_lifetimes(
        session, page=request.args.get("page", 1, type=int), per_page=PER_PAGE, query=q, category_id=category
    )
    curves = {row.product_id: _curve(row) for row in page.rows}
    return render_template(
        "products.html",
        page=page,
        curves=curves,
        categories=category_priors_overview(session),
        q=q,
        category=category,
    )


@bp.post("/<int:product_id>/override")
@roles_required(Role.MARKETER)
def lock_override(product_id: int):
    return _change(
        lambda s: set_override(s, product_id, parse_days(request.form.get("days")), current_user.id),
        _("Lifetime locked."),
    )


@bp.post("/<int:product_id>/unlock")
@roles_required(Role.MARKETER)
def unlock_override(product_id: int):
    return _change(lambda s: clear_override(s, product_id, current_user.id), _("Lifetime unlocked."))


@bp.post("/<int:product_id>/prior")
@roles_required(Role.MARKETER)
def product_prior(product_id: int):
    return _change(
        lambda s: set_product_prior(
            s, product_id, parse_days(request.form.get("days"), allow_empty=True), current_user.id
        ),
        _("Product prior saved."),
    )


@bp.post("/categories/<int:category_id>/prior")
@roles_required(Role.MARKETER)
def category_prior(category_id: int):
    return _change(
        lambda s: set_category_prior(
            s, category_id, parse_days(request.form.get("days"), allow_empty=True), current_user.id
        ),
        _("Category prior saved."),
    )


def _change(action, done: str):
    """Run one edit, commit it, and go back to the page (and filter) the form was on."""
    session = db_session()
    try:
        action(session)
    except (ValueError, LookupError) as exc:
        session.rollback()
        flash(_("Not saved: %(reason)s", reason=tr(exc)))
    else:
        session.commit()
        flash(done)
    back = {
        "page": request.form.get("page", type=int),
        "q": request.form.get("q") or None,
        "category": request.form.get("category", type=int),
    }
    return redirect(url_for("products.index", **{k: v for k, v in back.items() if v}))


def _curve(row):
    if row.curve is None:
        return None
    shape, scale, lapse = row.curve
    e = row.estimate
    return survival_svg(
        shape,
        scale,
        lapse,
        low=e.low_days,
        high=e.high_days,
        mark=row.in_use_days,
        prior_days=row.prior_days if row.learned else None,
        label=_(
            "survival: median %(median).0f days, 10–90 %% %(low).0f–%(high).0f days",
            median=e.median_days,
            low=e.low_days,
            high=e.high_days,
        ),
    )
