"""The campaign designer: create and edit, live audience count, preview, test send, forecast, launch.

Thin views: campaigns.design parses and checks the form, campaigns.forecast computes the forecast,
campaigns.sending.render_for renders previews exactly as the real send does.
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from accounts.audit import record_audit
from accounts.staff import Role
from campaigns.audience_filters import FilterError, audience_preview
from campaigns.campaign import Campaign, CampaignKind, CampaignStatus
from campaigns.context import subject_items
from campaigns.design import (
    LOCALES,
    PARTS,
    TIMING,
    CampaignDesign,
    apply_design,
    audience_from_form,
    change_status,
    design_from_form,
    design_of,
    draft_campaign,
    launch_problems,
)
from campaigns.message_extras import message_extras
from campaigns.sending import render_for
from channels.base import OutboundMessage, SendOutcome
from channels.registry import build_channel
from database.appsession import db_session
from database.base import utcnow
from jobs.forecasts import forecast_state
from membership.catalog import Product
from membership.lifetime import LifetimeEstimate
from membership.member import Member
from membership.profile import search_members
from membership.purchase import Purchase
from templating.render import TemplateError
from templating.sms import count_sms
from web.auth import roles_required
from web.domain_text import label, tr

bp = Blueprint("designer", __name__, url_prefix="/campaigns")

ACTIONS = {
    "launch": CampaignStatus.ACTIVE,
    "resume": CampaignStatus.ACTIVE,
    "pause": CampaignStatus.PAUSED,
    "archive": CampaignStatus.ARCHIVED,
}


def _settings():
    return current_app.extensions["huifang.settings"]


def _campaign(campaign_id: int) -> Campaign:
    campaign = db_session().get(Campaign, campaign_id)
    if campaign is None:
        abort(404)
    return campaign


def _page(values: dict, errors: dict, campaign: Campaign | None, status: int = 200):
    session = db_session()
    return (
        render_template(
            "designer.html",
            values=values,
            errors=errors,
            campaign=campaign,
            kinds=list(CampaignKind),
            timing=TIMING,
            locales=LOCALES,
            parts=PARTS,
            problems=launch_problems(campaign) if campaign is not None else [],
            lifetimes=_lifetime_examples(session),
        ),
        status,
    )


@bp.get("/new")
@roles_required(Role.MARKETER)
def new():
    defaults = CampaignDesign()
    values = {
        "kind": request.args.get("kind", defaults.kind.value),
        "priority": defaults.priority,
        "holdout_pct": defaults.holdout_pct,
        "primary_channel": "sms",
        "fallback": True,
        "expire_days": defaults.expire_days,
        "sms_segment_limit": defaults.sms_segment_limit,
    }
    return _page(values, {}, None)


@bp.post("/new")
@roles_required(Role.MARKETER)
def create():
    session = db_session()
    design, errors = design_from_form(request.form)
    if errors:
        return _page(request.form.to_dict(), errors, None, 400)
    campaign = apply_design(session, Campaign(status=CampaignStatus.DRAFT), design)
    record_audit(
        session, current_user.id, "campaign.create", f"campaign:{campaign.id}", {"name": design.name}
    )
    session.commit()
    flash(_("Saved draft “%(name)s”.", name=campaign.name))
    return redirect(url_for("designer.edit", campaign_id=campaign.id))


@bp.get("/<int:campaign_id>/edit")
@roles_required(Role.MARKETER)
def edit(campaign_id: int):
    campaign = _campaign(campaign_id)
    return _page(design_of(campaign), {}, campaign)


@bp.post("/<int:campaign_id>/edit")
@roles_required(Role.MARKETER)
def save(campaign_id: int):
    session = db_session()
    campaign = _campaign(campaign_id)
    if campaign.status is CampaignStatus.ARCHIVED:
        flash(_("An archived campaign cannot be changed."))
        return redirect(url_for("designer.edit", campaign_id=campaign.id))
    design, errors = design_from_form(request.form)
    if errors:
        return _page(request.form.to_dict(), errors, campaign, 400)
    before = design_of(campaign)
    apply_design(session, campaign, design)
    changed = sorted(k for k, v in design_of(campaign).items() if before.get(k) != v)
    record_audit(session, current_user.id, "campaign.edit", f"campaign:{campaign.id}", {"changed": changed})
    session.commit()
    flash(_("Saved.") if changed else _("No changes."))
    return redirect(url_for("designer.edit", campaign_id=campaign.id))


@bp.post("/<int:campaign_id>/status")
@roles_required(Role.MARKETER)
def status(campaign_id: int):
    session = db_session()
    campaign = _campaign(campaign_id)
    action = request.form.get("action", "")
    target = ACTIONS.get(action)
    if target is None:
        abort(400)
    before = campaign.status
    try:
        change_status(campaign, target, utcnow())
    except ValueError as exc:
        flash(tr(exc))
        return redirect(url_for("designer.edit", campaign_id=campaign.id))
    record_audit(
        session,
        current_user.id,
        f"campaign.{action}",
        f"campaign:{campaign.id}",
        {"from": before.value, "to": target.value},
    )
    session.commit()
    flash(_("Campaign is now %(status)s.", status=label(campaign.status)))
    return redirect(url_for("designer.edit", campaign_id=campaign.id))


@bp.get("/audience")
@roles_required(Role.MARKETER)
def audience():
    """Live count and sample members for the audience fields as currently typed."""
    errors: dict[str, str] = {}
    filters = audience_from_form(request.args, errors)
    if errors:
        return jsonify(error=tr(errors["audience"])), 400
    try:
        count, sample = audience_preview(db_session(), filters, sample=8)
    except FilterError as exc:
        return jsonify(error=tr(exc)), 400
    return jsonify(
        count=count,
        sample=[
            {"id": m.id, "card": m.card_number, "name": m.display_name, "locale": m.locale} for m in sample
        ],
    )


@bp.get("/members")
@roles_required(Role.MARKETER)
def find_members():
    """Members matching a card number, name, phone or e-mail fragment, for choosing a preview member."""
    q = request.args.get("q", "").strip()
    if len(q) < 2:
        return jsonify(members=[])
    rows = search_members(db_session(), q, limit=10)
    return jsonify(
        members=[
            {"id": m.id, "card": m.card_number, "name": m.display_name, "locale": m.locale} for m in rows
        ]
    )


def _preview(campaign: Campaign, member: Member, channel: str) -> dict:
    """The message exactly as ``member`` would get it now, with SMS length and cost."""
    session = db_session()
    item_key = _latest_purchase(session, member.id, campaign)
    item = subject_items(session, [item_key]).get(item_key) if item_key else None
    settings = _settings()
    # test=True: links redirect without recording a click and no pool code is used up.
    extras = message_extras(
        session,
        campaign,
        member,
        message_id=None,
        public_url=settings.public_url,
        secret_key=settings.secret_key,
        test=True,
    )
    rendered = render_for(campaign, channel, member, member.home_store, item, utcnow(), extras)
    result = {
        "member": {"id": member.id, "name": member.display_name, "locale": member.locale},
        "channel": channel,
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "warnings": [],
    }
    if not rendered.text.strip():
        result["warnings"].append(_("renders empty for this member"))
    if channel == "sms":
        counted = count_sms(rendered.text)
        limit = int((campaign.settings or {}).get("sms_segment_limit", 2))
        cost = _settings().sms_segment_cost
        result["sms"] = {
            "encoding": counted.encoding,
            "characters": len(rendered.text),
            "remaining": counted.remaining,
            "segments": counted.segments,
            "cost": round(counted.segments * cost, 4),
        }
        if counted.segments > limit:
            result["warnings"].append(
                _("%(n)s segments: above the limit of %(limit)s", n=counted.segments, limit=limit)
            )
    return result


def _latest_purchase(session, member_id: int, campaign: Campaign) -> int | None:
    """The purchase a replenishment or survey message about this member would most likely be about."""
    if campaign.kind not in (CampaignKind.REPLENISHMENT, CampaignKind.SURVEY, CampaignKind.WINBACK):
        return None
    stmt = select(Purchase.id).where(Purchase.member_id == member_id)
    if category_ids := (campaign.settings or {}).get("category_ids"):
        stmt = stmt.join(Product, Product.id == Purchase.product_id).where(
            Product.category_id.in_(category_ids)
        )
    return session.scalar(stmt.order_by(Purchase.purchased_at.desc()).limit(1))


def _preview_member(default_locale: str | None = None) -> Member:
    session = db_session()
    member_id = request.values.get("member_id", type=int)
    member = session.get(Member, member_id) if member_id else None
    if member is None:
        stmt = select(Member).order_by(Member.id).limit(1)
        if default_locale:
            stmt = stmt.where(Member.locale == default_locale)
        member = session.scalar(stmt) or session.scalar(select(Member).order_by(Member.id).limit(1))
    if member is None:
        abort(404, _("no members to preview with yet"))
    return member


@bp.post("/<int:campaign_id>/preview")
@roles_required(Role.MARKETER)
def live_preview(campaign_id: int):
    """Render the form's unsaved content on a real member (JSON for the designer's live panel)."""
    campaign = _campaign(campaign_id)
    design, errors = design_from_form(request.form)
    content_errors = {k: tr(v) for k, v in errors.items() if k.startswith("content_")}
    if content_errors:
        return jsonify(errors=content_errors), 400
    channel = request.form.get("preview_channel", "sms")
    member = _preview_member(request.form.get("preview_locale"))
    try:
        return jsonify(_preview(draft_campaign(design, campaign), member, channel))
    except TemplateError as exc:
        return jsonify(errors={"preview": str(exc)}), 400


@bp.get("/<int:campaign_id>/preview")
@roles_required(Role.MARKETER)
def preview(campaign_id: int):
    """The saved campaign rendered on a chosen member, as a page."""
    campaign = _campaign(campaign_id)
    channel = request.args.get("channel", (campaign.channels or ["sms"])[0])
    member = _preview_member(request.args.get("locale"))
    try:
        result, error = _preview(campaign, member, channel), None
    except TemplateError as exc:
        result, error = None, str(exc)
    return render_template(
        "preview.html", campaign=campaign, member=member, result=result, error=error, channel=channel
    )


@bp.post("/<int:campaign_id>/test-send")
@roles_required(Role.MARKETER)
def test_send(campaign_id: int):
    """Send the saved campaign, rendered on a chosen member, to the marketer's own phone or e-mail."""
    session = db_session()
    campaign = _campaign(campaign_id)
    channel = request.form.get("channel", "sms")
    to = request.form.get("to", "").strip()
    if channel not in ("sms", "email") or not to:
        flash(_("Test send: choose a channel and give your own phone number or e-mail address."))
        return redirect(url_for("designer.edit", campaign_id=campaign.id))
    member = _preview_member()
    try:
        preview_data = _preview(campaign, member, channel)
    except TemplateError as exc:
        flash(_("Test send: %(error)s", error=exc))
        return redirect(url_for("designer.edit", campaign_id=campaign.id))
    sender = build_channel(channel, _settings())
    try:
        result = sender.send(
            OutboundMessage(
                message_id=0,
                to=to,
                body=preview_data["text"],
                subject=preview_data["subject"],
                html=preview_data["html"],
                headers={"X-Huifang-Test": f"campaign {campaign.id}"} if channel == "email" else {},
            )
        )
    finally:
        sender.close()
    record_audit(
        session,
        current_user.id,
        "campaign.test_send",
        f"campaign:{campaign.id}",
        {
            "channel": channel,
            "to": to,
            "member_id": member.id,
            "outcome": result.outcome.value,
            "error": result.error,
            "body_sha256": hashlib.sha256(preview_data["text"].encode()).hexdigest(),
        },
    )
    session.commit()
    if result.outcome is SendOutcome.SENT:
        flash(
            _(
                "Test %(channel)s sent to %(to)s (rendered for %(name)s).",
                channel=label(channel),
                to=to,
                name=member.display_name,
            )
        )
    else:
        flash(_("Test send failed: %(error)s", error=result.error or result.outcome.value))
    return redirect(url_for("designer.edit", campaign_id=campaign.id))


@bp.get("/<int:campaign_id>/forecast")
@roles_required(Role.MARKETER)
def forecast_page(campaign_id: int):
    campaign = _campaign(campaign_id)
    state = forecast_state(db_session(), campaign, _settings().sms_segment_cost)
    return render_template("forecast.html", campaign=campaign, forecast=state.result, state=state)


def _lifetime_examples(session, limit: int = 8) -> list[tuple[str, float, float, str]]:
    """A few products with their lifetime in use, so the timing step shows what lead days mean."""
    rows = session.execute(
        select(
            Product.name,
            LifetimeEstimate.median_days,
            LifetimeEstimate.reminder_days,
            LifetimeEstimate.override_days,
            LifetimeEstimate.method,
        )
        .join(LifetimeEstimate, LifetimeEstimate.product_id == Product.id)
        .order_by(LifetimeEstimate.n_observed.desc(), Product.id)
        .limit(limit)
    )
    return [
        (name, override, override * reminder / median, "override")
        if override and median
        else (name, median, reminder, method)
        for name, median, reminder, override, method in rows
    ]
