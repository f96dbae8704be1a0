"""Translating what the domain says in English: state names and the messages of validation errors.

The domain packages stay free of Flask and speak English; their English text is the msgid. The web
layer translates at render time with the ``label`` and ``tr`` template filters, which return plain
strings so that anything a marketer typed inside a message is still escaped.
"""

from __future__ import annotations

import re

from flask_babel import get_locale, gettext


def N_(text: str) -> str:
    """Mark a msgid for pybabel without translating it here."""
    return text


# Stored enum values → the words staff see. The English words are the msgids.
LABELS = {
    # campaign kinds and statuses
    "replenishment": N_("replenishment"),
    "survey": N_("survey"),
    "winback": N_("winback"),
    "interest": N_("interest"),
    "broadcast": N_("broadcast"),
    "draft": N_("draft"),
    "active": N_("active"),
    "paused": N_("paused"),
    "archived": N_("archived"),
    # call tasks: statuses, outcomes, root causes
    "open": N_("open"),
    "claimed": N_("claimed"),
    "rescheduled": N_("rescheduled"),
    "resolved": N_("resolved"),
    "closed": N_("closed"),
    "all": N_("all"),
    "no_answer": N_("no answer"),
    "wrong_number": N_("wrong number"),
    "no_contact": N_("no contact"),
    "escalated": N_("escalated"),
    "product_defect": N_("product defect"),
    "wore_out_early": N_("wore out early"),
    "wrong_product": N_("wrong product"),
    "size_or_fit": N_("size or fit"),
    "staff_service": N_("staff service"),
    "price": N_("price"),
    "delivery": N_("delivery"),
    "misunderstanding": N_("misunderstanding"),
    "other": N_("other"),
    # replies: statuses and how they were read
    "received": N_("received"),
    "processed": N_("processed"),
    "unmatched": N_("unmatched"),
    "triage": N_("triage"),
    "handled": N_("handled"),
    "failed": N_("failed"),
    "satisfied": N_("satisfied"),
    "unsatisfied": N_("unsatisfied"),
    "unclear": N_("unclear"),
    "opt_out": N_("opt out"),
    "opt_in": N_("opt in"),
    "help": N_("help"),
    # messages, channels, roles
    "pending": N_("pending"),
    "sending": N_("sending"),
    "sent": N_("sent"),
    "delivered": N_("delivered"),
    "undelivered": N_("undelivered"),
    "deferred": N_("deferred"),
    "suppressed": N_("suppressed"),
    "held_out": N_("held out"),
    "cancelled": N_("cancelled"),
    "unknown": N_("unknown"),
    "sms": N_("sms"),
    "email": N_("email"),
    "admin": N_("admin"),
    "marketer": N_("marketer"),
    "agent": N_("agent"),
    # imports
    "running": N_("running"),
    "succeeded": N_("succeeded"),
    "partial": N_("partial"),
    "members": N_("members"),
    "products": N_("products"),
    "purchases": N_("purchases"),
    "auto": N_("auto"),
    # owned items on the member page: state of wear, and a duplicate group's shared field
    "overdue": N_("overdue"),
    "worn out": N_("worn out"),
    "due soon": N_("due soon"),
    "fresh": N_("fresh"),
    "phone": N_("phone"),
    # lifetimes: which value is in use and where a prior comes from
    "override": N_("override"),
    "learned": N_("learned"),
    "prior": N_("prior"),
    "product": N_("product"),
    "category": N_("category"),
    "parent category": N_("parent category"),
    "default": N_("default"),
    # message parts
    "body": N_("body"),
    "subject": N_("subject"),
    "html": N_("html"),
    "text": N_("text"),
}

# Fixed sentences and labels the domain uses inside its messages.
MESSAGES = (
    N_("Give the campaign a name"),
    N_("Keep the name under 200 characters"),
    N_("Choose a campaign kind"),
    N_("Choose SMS or e-mail"),
    N_("Name at least one interest tag, e.g. mountaineering"),
    N_("Send time: use YYYY-MM-DD HH:MM"),
    N_("Quiet hours: two times like 21:00 and 08:00"),
    N_("Priority"),
    N_("Holdout"),
    N_("Expiry"),
    N_("SMS segment limit"),
    N_("Days before the predicted wear-out"),
    N_("Days the reminder stays due"),
    N_("Days after the purchase"),
    N_("Days the survey stays due"),
    N_("Days without a purchase"),
    N_("Days the message stays due"),
    N_("an SMS needs a body"),
    N_("an e-mail needs a subject"),
    N_("syntax error"),
    N_("a broadcast needs a send time"),
    N_("consent: expected sms, email or any"),
    N_("a resolved task needs a root cause"),
    N_("unsatisfied survey reply"),
    N_("open complaint"),
    N_("promotions paused: open complaint"),
    N_("any channel"),
    # imports: the upload form, and why a row was rejected
    N_("choose what the file holds"),
    N_("choose an encoding"),
    N_("choose a CSV file"),
    N_("The job queue is unavailable; nothing was imported. Try again shortly."),
    N_("required"),
    N_("contains control characters"),
    N_("date out of range"),
    N_("amount too large"),
    N_("more than two decimal places"),
    N_("in the future"),
    N_("an interest is longer than 60 characters or has control characters"),
    N_("worker stopped mid-send; reconcile with the provider"),
    N_("enter a number of days"),
    N_("name the interest (up to 80 characters)"),
    N_("choose a locale"),
    N_("write the advice"),
)

# Messages with values in them: the pattern, and the msgid that rebuilds them. Named groups listed in
# _LABEL_GROUPS are state names, those in _TEXT_GROUPS are messages in turn; the rest pass unchanged.
_PATTERNS = [
    (r"cannot launch: (?P<problems>.+)", N_("cannot launch: %(problems)s")),
    (r"no store with code (?P<code>.+)", N_("no store with code %(code)s")),
    (r"unknown store code (?P<code>.+)", N_("unknown store code %(code)s")),
    (r"unknown member card (?P<card>.+)", N_("unknown member card %(card)s")),
    (r"unknown product SKU (?P<sku>.+)", N_("unknown product SKU %(sku)s")),
    (r"repeats line (?P<n>\d+)", N_("repeats line %(n)s")),
    (r"not a date in a supported format: (?P<value>.+)", N_("not a date in a supported format: %(value)s")),
    (r"not a real date: (?P<detail>.+)", N_("not a real date: %(detail)s")),
    (r"not an amount: (?P<value>.+)", N_("not an amount: %(value)s")),
    (r"not a whole number: (?P<value>.+)", N_("not a whole number: %(value)s")),
    (r"must be between (?P<low>-?\d+) and (?P<high>-?\d+)", N_("must be between %(low)s and %(high)s")),
    (r"not yes/no: (?P<value>.+)", N_("not yes/no: %(value)s")),
    (r"unknown locale (?P<value>.+)", N_("unknown locale %(value)s")),
    (r"unknown time zone (?P<value>.+)", N_("unknown time zone %(value)s")),
    (r"not a phone number \((?P<detail>.+)\)", N_("not a phone number (%(detail)s)")),
    (
        r"not a valid phone number \(default region (?P<region>.+)\)",
        N_("not a valid phone number (default region %(region)s)"),
    ),
    (
        r"column (?P<key>'.+') appears twice \(header (?P<cell>.+)\)",
        N_("column %(key)s appears twice (header %(cell)s)"),
    ),
    (
        r"missing required column\(s\) for (?P<kind>\w+): (?P<columns>.+)",
        N_("missing required column(s) for %(kind)s: %(columns)s"),
    ),
    # why a message was or was not sent (the member page's why-trace)
    (
        r"held out: (?P<pct>\d+)% control group of campaign (?P<id>\d+)",
        N_("held out: %(pct)s%% control group of campaign %(id)s"),
    ),
    (r"no consented contact on (?P<channels>.+)", N_("no consented contact on %(channels)s")),
    (r"due: (?P<kind>\w+) campaign (?P<id>\d+)", N_("due: %(kind)s campaign %(id)s")),
    (
        r"(?P<channel>sms|email) consent withdrawn before sending",
        N_("%(channel)s consent withdrawn before sending"),
    ),
    (
        r"quiet hours (?P<start>\S+)–(?P<end>\S+) in (?P<zone>\S+)",
        N_("quiet hours %(start)s–%(end)s in %(zone)s"),
    ),
    (
        r"stale: still unsent (?P<n>\d+) days after it was due",
        N_("stale: still unsent %(n)s days after it was due"),
    ),
    (
        r"frequency cap: (?P<n>\d+) per (?P<days>\d+) days reached",
        N_("frequency cap: %(n)s per %(days)s days reached"),
    ),
    (
        r"frequency cap: last slot kept for a higher-priority campaign \((?P<top>\d+) > (?P<own>\d+)\)",
        N_("frequency cap: last slot kept for a higher-priority campaign (%(top)s > %(own)s)"),
    ),
    (
        r"paused automatically: (?P<failed>\d+) of (?P<n>\d+) sends failed in the last hour",
        N_("paused automatically: %(failed)s of %(n)s sends failed in the last hour"),
    ),
    (r"unsatisfied survey reply: (?P<comment>.+)", N_("unsatisfied survey reply: %(comment)s")),
    (
        r"re-survey after call task (?P<id>\d+) was resolved",
        N_("re-survey after call task %(id)s was resolved"),
    ),
    (r"(?P<message>.+) \((?P<hint>did you mean .+\?)\)", N_("%(message)s (%(hint)s)")),
    (r"did you mean (?P<name>.+)\?", N_("did you mean %(name)s?")),
    (r"line (?P<n>\d+): (?P<message>.+)", N_("line %(n)s: %(message)s")),
    (r"unknown variable (?P<name>.+)", N_("unknown variable %(name)s")),
    (r"unknown filter (?P<name>.+)", N_("unknown filter %(name)s")),
    (r"unknown field of (?P<object>\w+) (?P<name>.+)", N_("unknown field of %(object)s %(name)s")),
    (r"longer than (?P<n>\d+) characters", N_("longer than %(n)s characters")),
    (
        r"no (?P<channel>sms|email) content: write at least one language",
        N_("no %(channel)s content: write at least one language"),
    ),
    (
        r"(?P<channel>sms|email) (?P<locale>\S+) (?P<part>body|subject|html|text): (?P<message>.+)",
        N_("%(channel)s %(locale)s %(part)s: %(message)s"),
    ),
    (
        r"a (?P<status>\w+) campaign cannot become (?P<target>\w+)",
        N_("a %(status)s campaign cannot become %(target)s"),
    ),
    (r"call task (?P<id>\d+) is already (?P<status>\w+)", N_("call task %(id)s is already %(status)s")),
    (r"call task (?P<id>\d+) does not exist", N_("call task %(id)s does not exist")),
    (r"inbound message (?P<id>\d+) does not exist", N_("inbound message %(id)s does not exist")),
    (r"member (?P<id>\d+) does not exist", N_("member %(id)s does not exist")),
    (r"no product (?P<id>\d+)", N_("no product %(id)s")),
    (r"no category (?P<id>\d+)", N_("no category %(id)s")),
    (r"(?P<text>.+) is not a whole number of days", N_("%(text)s is not a whole number of days")),
    (r"days must be between (?P<low>\d+) and (?P<high>\d+)", N_("days must be between %(low)s and %(high)s")),
    (r"advice is limited to (?P<n>\d+) characters", N_("advice is limited to %(n)s characters")),
    (
        r"(?P<key>\w+): expected a date like 2026-01-31, got (?P<value>.*)",
        N_("%(key)s: expected a date like 2026-01-31, got %(value)s"),
    ),
    (r"(?P<key>\w+): expected a list of names", N_("%(key)s: expected a list of names")),
    (r"unknown audience filter (?P<keys>.+)", N_("unknown audience filter %(keys)s")),
    (r"(?P<label>[^:]+): enter a whole number", N_("%(label)s: enter a whole number")),
    (
        r"(?P<label>[^:]+): between (?P<low>-?\d+) and (?P<high>-?\d+)",
        N_("%(label)s: between %(low)s and %(high)s"),
    ),
]
_COMPILED = [(re.compile(pattern, re.DOTALL), msgid) for pattern, msgid in _PATTERNS]
_LABEL_GROUPS = {"channel", "part", "status", "target", "kind"}
_TEXT_GROUPS = {"message", "hint", "label"}


def label(value: object) -> str:
    """The translated name of a stored state such as ``no_answer``; unknown values pass unchanged."""
    raw = getattr(value, "value", value)
    if raw is None:
        return ""
    msgid = LABELS.get(str(raw))
    return gettext(msgid) if msgid else str(raw)


def tr(message: object) -> str:
    """Translate an English message from the domain; English users get it back exactly as written."""
    text = str(message)
    locale = get_locale()
    if locale is None or locale.language == "en":
        return text
    return _translate(text)


def _translate(text: str) -> str:
    translated = gettext(text)
    if translated != text:
        return translated
    for pattern, msgid in _COMPILED:
        match = pattern.fullmatch(text)
        if match:
            return gettext(msgid, **{k: _part(k, v) for k, v in match.groupdict().items()})
    return text


def _part(name: str, value: str) -> str:
    if name == "problems":
        return "；".join(_translate(p) for p in value.split("; "))
    if name == "channels":
        return "/".join(label(c) for c in value.split("/")) if value != "any channel" else _translate(value)
    if name in _LABEL_GROUPS:
        return label(value)
    if name in _TEXT_GROUPS:
        return _translate(value)
    return value
