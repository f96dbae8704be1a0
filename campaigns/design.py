"""The campaign designer's domain side: read a marketer's form into a design, check it, apply it.

A design is plain values; `design_errors` says what is wrong in words a marketer understands, keyed by
form field, and `apply_design` writes a valid design onto a campaign and its per-locale contents.
Launching re-checks everything, because a draft may be saved half-finished.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from campaigns.audience_filters import FilterError, member_conditions
from campaigns.campaign import Campaign, CampaignContent, CampaignKind, CampaignStatus
from templating.render import validate_template

LOCALES = ("zh-CN", "en")
CHANNELS = ("sms", "email")
PARTS = {"sms": ("body",), "email": ("subject", "html", "text")}
# Per kind: the timing knobs a marketer sets, as (setting, label, lowest, highest, default).
TIMING = {
    CampaignKind.REPLENISHMENT: [
        ("lead_days", "days before the predicted wear-out", 0, 90, 7),
        ("window_days", "days the reminder stays due", 1, 60, 14),
    ],
    CampaignKind.SURVEY: [
        ("days_after", "days after the purchase", 0, 60, 3),
        ("window_days", "days the survey stays due", 1, 60, 7),
    ],
    CampaignKind.WINBACK: [
        ("days_without_purchase", "days without a purchase", 30, 1000, 180),
        ("window_days", "days the message stays due", 1, 120, 30),
    ],
    CampaignKind.INTEREST: [],
    CampaignKind.BROADCAST: [],
}
AUDIENCE_LISTS = ("interests", "stores", "tiers", "locales", "bought_categories", "bought_products")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@dataclass
class CampaignDesign:
    name: str = ""
    kind: CampaignKind = CampaignKind.REPLENISHMENT
    priority: int = 50
    holdout_pct: int = 10
    channels: list[str] = field(default_factory=lambda: ["sms", "email"])
    timing: dict[str, object] = field(default_factory=dict)
    audience: dict[str, object] = field(default_factory=dict)
    quiet_hours: tuple[str, str] | None = None
    expire_days: int = 7
    offer: dict[str, str] = field(default_factory=dict)
    sms_segment_limit: int = 2
    contents: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)


def _int(form: Mapping, key: str, default: int, low: int, high: int, label: str, errors: dict) -> int:
    raw = str(form.get(key, "") or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        errors[key] = f"{label}: enter a whole number"
        return default
    if not low <= value <= high:
        errors[key] = f"{label}: between {low} and {high}"
    return value


def _words(raw: object) -> list[str]:
    return [w for w in re.split(r"[,\s，]+", str(raw or "")) if w]


def design_from_form(form: Mapping[str, object]) -> tuple[CampaignDesign, dict[str, str]]:
    """Parse the designer's form fields; returns the design and field → error message."""
    errors: dict[str, str] = {}
    design = CampaignDesign()
    design.name = str(form.get("name", "") or "").strip()
    if not design.name:
        errors["name"] = "Give the campaign a name"
    elif len(design.name) > 200:
        errors["name"] = "Keep the name under 200 characters"
    try:
        design.kind = CampaignKind(str(form.get("kind", "") or "replenishment"))
    except ValueError:
        errors["kind"] = "Choose a campaign kind"
    design.priority = _int(form, "priority", 50, 0, 100, "Priority", errors)
    design.holdout_pct = _int(form, "holdout_pct", 10, 0, 50, "Holdout", errors)
    primary = str(form.get("primary_channel", "") or "sms")
    if primary not in CHANNELS:
        errors["primary_channel"] = "Choose SMS or e-mail"
        primary = "sms"
    other = "email" if primary == "sms" else "sms"
    design.channels = [primary, other] if form.get("fallback") else [primary]
    for key, label, low, high, default in TIMING.get(design.kind, []):
        design.timing[key] = _int(form, key, default, low, high, label.capitalize(), errors)
    if design.kind is CampaignKind.INTEREST:
        design.timing["interests"] = _words(form.get("interest_tags"))
        design.timing["season"] = str(form.get("season", "") or "always").strip()[:40]
        if not design.timing["interests"]:
            errors["interest_tags"] = "Name at least one interest tag, e.g. mountaineering"
    if design.kind is CampaignKind.BROADCAST:
        send_at = str(form.get("send_at", "") or "").strip()
        try:
            design.timing["send_at"] = dt.datetime.fromisoformat(send_at).isoformat() if send_at else None
        except ValueError:
            errors["send_at"] = "Send time: use YYYY-MM-DD HH:MM"
    design.audience = audience_from_form(form, errors)
    quiet_start, quiet_end = str(form.get("quiet_start", "") or ""), str(form.get("quiet_end", "") or "")
    if quiet_start or quiet_end:
        if not (_CLOCK.match(quiet_start) and _CLOCK.match(quiet_end)):
            errors["quiet_start"] = "Quiet hours: two times like 21:00 and 08:00"
        else:
            design.quiet_hours = (quiet_start, quiet_end)
    design.expire_days = _int(form, "expire_days", 7, 1, 60, "Expiry", errors)
    design.sms_segment_limit = _int(form, "sms_segment_limit", 2, 1, 10, "SMS segment limit", errors)
    design.offer = {
        k: str(form.get(f"offer_{k}", "") or "").strip()[:200]
        for k in ("code", "code_pool", "text", "url")
        if form.get(f"offer_{k}")
    }
    for channel in CHANNELS:
        for locale in LOCALES:
            parts = {
                part: str(form.get(f"content_{channel}_{locale}_{part}", "") or "") for part in PARTS[channel]
            }
            if any(v.strip() for v in parts.values()):
                design.contents[(channel, locale)] = parts
                for issue in validate_template(parts, channel):
                    key = f"content_{channel}_{locale}_{issue.part}"
                    hint = f" ({issue.suggestion})" if issue.suggestion else ""
                    line = f"line {issue.lineno}: " if issue.lineno else ""
                    errors.setdefault(key, f"{line}{issue.message}{hint}")
    return design, errors


def audience_from_form(form: Mapping[str, object], errors: dict[str, str]) -> dict[str, object]:
    audience: dict[str, object] = {}
    for key in AUDIENCE_LISTS:
        if values := _words(form.get(f"audience_{key}")):
            audience[key] = values
    if consent := str(form.get("audience_consent", "") or ""):
        audience["consent"] = consent
    for key in ("last_purchase_after", "last_purchase_before"):
        if value := str(form.get(f"audience_{key}", "") or "").strip():
            audience[key] = value
    if form.get("audience_households"):
        audience["households"] = True
    try:
        member_conditions(audience)
    except FilterError as exc:
        errors["audience"] = str(exc)
    return audience


def apply_design(session: Session, campaign: Campaign, design: CampaignDesign) -> Campaign:
    """Write a checked design onto the campaign (new or existing) and its contents."""
    assign_design(campaign, design)
    if campaign.id is None:
        session.add(campaign)
    session.flush()
    return campaign


def draft_campaign(design: CampaignDesign, based_on: Campaign | None = None) -> Campaign:
    """An unsaved campaign carrying ``design``: the live preview renders what the form says now."""
    draft = Campaign(
        status=CampaignStatus.DRAFT, settings=dict((based_on.settings if based_on else None) or {})
    )
    draft.id = based_on.id if based_on else None
    assign_design(draft, design)
    return draft


def assign_design(campaign: Campaign, design: CampaignDesign) -> None:
    """Set the design's values on a campaign object (no session work)."""
    campaign.name, campaign.kind = design.name, design.kind
    campaign.priority, campaign.holdout_pct, campaign.channels = (
        design.priority,
        design.holdout_pct,
        design.channels,
    )
    settings = {k: v for k, v in design.timing.items() if v is not None}
    settings["audience"] = design.audience
    settings["expire_days"] = design.expire_days
    settings["sms_segment_limit"] = design.sms_segment_limit
    if design.quiet_hours:
        settings["quiet_hours"] = list(design.quiet_hours)
    if design.offer:
        settings["offer"] = design.offer
    # Keys the designer does not edit (e.g. category_ids set by import) survive an edit.
    keep = {k: v for k, v in (campaign.settings or {}).items() if k in ("category_ids",)}
    campaign.settings = {**keep, **settings}
    existing = {(c.channel, c.locale): c for c in campaign.contents}
    for key, parts in design.contents.items():
        content = existing.pop(key, None) or CampaignContent(channel=key[0], locale=key[1], body="")
        content.subject = parts.get("subject") or None
        content.body = parts.get("body") or parts.get("text") or ""
        content.html = parts.get("html") or None
        if content not in campaign.contents:
            campaign.contents.append(content)
    for stale in existing.values():
        campaign.contents.remove(stale)


def design_of(campaign: Campaign) -> dict[str, object]:
    """The campaign as form field values, for editing."""
    settings = campaign.settings or {}
    audience = settings.get("audience") or {}
    channels = list(campaign.channels or ["sms"])
    values: dict[str, object] = {
        "name": campaign.name,
        "kind": campaign.kind.value,
        "priority": campaign.priority,
        "holdout_pct": campaign.holdout_pct,
        "primary_channel": channels[0],
        "fallback": len(channels) > 1,
        "expire_days": settings.get("expire_days", 7),
        "sms_segment_limit": settings.get("sms_segment_limit", 2),
        "interest_tags": ", ".join(settings.get("interests") or []),
        "season": settings.get("season", ""),
        "send_at": settings.get("send_at") or "",
    }
    for key, *_ in [t for ts in TIMING.values() for t in ts]:
        if key in settings:
            values[key] = settings[key]
    if quiet := settings.get("quiet_hours"):
        values["quiet_start"], values["quiet_end"] = quiet
    for key in AUDIENCE_LISTS:
        values[f"audience_{key}"] = ", ".join(audience.get(key) or [])
    for key in ("consent", "last_purchase_after", "last_purchase_before"):
        values[f"audience_{key}"] = audience.get(key) or ""
    values["audience_households"] = bool(audience.get("households"))
    for k, v in (settings.get("offer") or {}).items():
        values[f"offer_{k}"] = v
    for content in campaign.contents:
        prefix = f"content_{content.channel}_{content.locale}_"
        if content.channel == "sms":
            values[prefix + "body"] = content.body
        else:
            values[prefix + "subject"] = content.subject or ""
            values[prefix + "html"] = content.html or ""
            values[prefix + "text"] = content.body
    return values


def launch_problems(campaign: Campaign) -> list[str]:
    """What stops a campaign from going live: missing content for a channel it uses, bad templates."""
    problems = []
    for channel in campaign.channels or []:
        variants = [c for c in campaign.contents if c.channel == channel]
        if not variants:
            problems.append(f"no {channel} content: write at least one language")
        for c in variants:
            parts = (
                {"body": c.body}
                if channel == "sms"
                else {"subject": c.subject or "", "html": c.html or "", "text": c.body}
            )
            problems += [
                f"{channel} {c.locale} {i.part}: {i.message}" for i in validate_template(parts, channel)
            ]
    if campaign.kind is CampaignKind.BROADCAST and not (campaign.settings or {}).get("send_at"):
        problems.append("a broadcast needs a send time")
    return problems


ALLOWED_MOVES = {
    CampaignStatus.DRAFT: {CampaignStatus.ACTIVE, CampaignStatus.ARCHIVED},
    CampaignStatus.ACTIVE: {CampaignStatus.PAUSED, CampaignStatus.ARCHIVED},
    CampaignStatus.PAUSED: {CampaignStatus.ACTIVE, CampaignStatus.ARCHIVED},
    CampaignStatus.ARCHIVED: set(),
}


def change_status(campaign: Campaign, target: CampaignStatus, now: dt.datetime) -> None:
    """Launch, pause, resume or archive; ValueError with the reason when the move is not allowed."""
    if target not in ALLOWED_MOVES[campaign.status]:
        raise ValueError(f"a {campaign.status.value} campaign cannot become {target.value}")
    if target is CampaignStatus.ACTIVE:
        problems = launch_problems(campaign)
        if problems:
            raise ValueError("cannot launch: " + "; ".join(problems))
        campaign.activated_at = campaign.activated_at or now
        campaign.paused_reason = None
    campaign.status = target
