"""Per-channel rendering: SMS footer, e-mail parts, CSS inlining, locales, validation, determinism."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest

from channels.base import OutboundMessage
from channels.smtp_email import SmtpEmailChannel
from templating.locales import choose_locale, opt_out_footer
from templating.render import RenderedMessage, TemplateError, render_message, validate_template

CONTEXT = {
    "member": {"name": "Li Wei", "preferred_name": "Wei", "tier": "gold", "interests": ["hiking"]},
    "store": {"name": "Chengdu Outdoor", "code": "CD"},
    "product": {"name": "Trekking pole", "sku": "TP-1"},
    "category": {"name": "Poles", "care_tips": "Dry the joints after rain."},
    "purchase": {"date": dt.date(2024, 3, 5), "quantity": 1, "amount": 1234.5, "age_days": 400},
    "lifetime": {"median_days": 730, "method": "kaplan-meier"},
    "offer": {"code": "SPRING", "text": "20% off"},
}


# -- SMS footer ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "body", "expected"),
    [
        ("en", "Hi {{ member.preferred_name }}", "Hi Wei\nReply STOP to opt out"),
        ("en-US", "Hi", "Hi\nReply STOP to opt out"),
        ("zh-CN", "{{ member.preferred_name }}您好", "Wei您好\n回T退订"),
        ("zh", "您好", "您好\n回T退订"),
        ("zh_TW", "您好", "您好\n回T退订"),
        ("fr", "Bonjour", "Bonjour\nReply STOP to opt out"),
        (None, "Hi", "Hi\nReply STOP to opt out"),
        # already present: not added twice
        ("en", "Hi Wei. Reply STOP to opt out", "Hi Wei. Reply STOP to opt out"),
        ("en", "Hi Wei. reply stop to opt out", "Hi Wei. reply stop to opt out"),
        ("en", "Deals inside. Text STOP to quit", "Deals inside. Text STOP to quit"),
        ("zh-CN", "新品上市，回T退订", "新品上市，回T退订"),
        ("zh-CN", "新品上市，回复TD退订", "新品上市，回复TD退订"),
        ("zh-CN", "新品上市 回Ｔ退订", "新品上市 回Ｔ退订"),
        # the word "stop" alone is not an opt-out instruction
        ("en", "Hi, stop by our store", "Hi, stop by our store\nReply STOP to opt out"),
        ("en", "Non-stop savings", "Non-stop savings\nReply STOP to opt out"),
    ],
)
def test_sms_gets_the_locale_footer_unless_present(locale, body, expected):
    rendered = render_message("sms", {"body": body}, CONTEXT, locale=locale)
    assert rendered == RenderedMessage(subject=None, text=expected, html=None)


def test_sms_footer_can_be_left_off_for_transactional_messages():
    rendered = render_message("sms", {"body": "Your code is {{ offer.code }}"}, CONTEXT, opt_out_footer=False)
    assert rendered.text == "Your code is SPRING"


def test_footer_text_per_locale():
    assert opt_out_footer("en") == "Reply STOP to opt out"
    assert opt_out_footer("zh-CN") == "回T退订"


def test_sms_squashes_blank_lines_left_by_tags():
    body = (
        "Hi {{ member.preferred_name }}\n{% if offer.code %}\n\nCode: {{ offer.code }}\n{% endif %}\n\n\nBye"
    )
    assert render_message("sms", {"body": body}, CONTEXT, opt_out_footer=False).text == (
        "Hi Wei\n\nCode: SPRING\n\nBye"
    )


@pytest.mark.parametrize(
    ("channel", "parts", "part"),
    [
        ("sms", {"body": ""}, "body"),
        ("sms", {"body": "   \n  "}, "body"),
        ("sms", {"body": "{% if member.tier == 'platinum' %}Hi{% endif %}"}, "body"),
        ("sms", {"body": "{{ member.nickname }}"}, "body"),
        ("sms", {}, "body"),
        ("email", {"subject": "", "html": "<p>Hi</p>"}, "subject"),
        ("email", {"subject": "{{ member.nickname }}", "html": "<p>Hi</p>"}, "subject"),
        ("email", {"subject": "Hi", "html": "<p>{% if false %}x{% endif %}</p>"}, "html"),
        ("email", {"subject": "Hi", "html": "", "text": " "}, "text"),
        ("email", {"subject": "Hi"}, "html"),
        ("email", {"subject": "Hi", "text": "{{ member.nickname }}"}, "text"),
    ],
)
def test_empty_render_raises(channel, parts, part):
    with pytest.raises(TemplateError, match="renders empty") as caught:
        render_message(channel, parts, CONTEXT, locale="en")
    assert caught.value.part == part


# -- e-mail parts ----------------------------------------------------------------------------------


def test_email_text_is_generated_from_html_when_not_written():
    html = (
        "<h1>Hi {{ member.preferred_name }}</h1><p>Your <b>{{ product.name }}</b> is "
        "{{ purchase.age_days }} days old.</p><ul><li>{{ category.care_tips }}</li></ul>"
        '<p><a href="https://shop.example/offer?c={{ offer.code }}">Shop now</a></p><img src="x.png" alt="">'
    )
    rendered = render_message("email", {"subject": "About your {{ product.name }}", "html": html}, CONTEXT)
    assert rendered.subject == "About your Trekking pole"
    assert "<" not in rendered.text.replace("<https://", "")
    assert "Hi Wei" in rendered.text
    assert "Trekking pole" in rendered.text and "400 days old" in rendered.text
    assert "Dry the joints after rain." in rendered.text
    assert "https://shop.example/offer?c=SPRING" in rendered.text
    assert "x.png" not in rendered.text


def test_written_text_part_is_used_as_is():
    parts = {"subject": "Hi", "html": "<p>HTML {{ member.name }}</p>", "text": "Plain {{ member.name }}"}
    rendered = render_message("email", parts, CONTEXT)
    assert rendered.text == "Plain Li Wei"
    assert "HTML Li Wei" in rendered.html


def test_text_only_email_has_no_html():
    rendered = render_message("email", {"subject": "Hi", "text": "Plain {{ member.name }}"}, CONTEXT)
    assert rendered.html is None and rendered.text == "Plain Li Wei"


def test_html_autoescapes_member_data_but_text_does_not():
    context = {**CONTEXT, "member": {**CONTEXT["member"], "preferred_name": "<script>x</script> & Co"}}
    rendered = render_message(
        "email",
        {"subject": "Hi {{ member.preferred_name }}", "html": "<p>{{ member.preferred_name }}</p>"},
        context,
    )
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;x&lt;/script&gt; &amp; Co" in rendered.html
    assert rendered.subject == "Hi <script>x</script> & Co"


def test_subject_cannot_inject_headers():
    rendered = render_message(
        "email", {"subject": "Hi\r\nBcc: victim@example.com\n{{ member.name }}", "html": "<p>x</p>"}, CONTEXT
    )
    assert "\n" not in rendered.subject and "\r" not in rendered.subject


def test_css_is_inlined_and_style_block_removed():
    html = (
        "<html><head><style>p.note { color: #cc0000; font-weight: bold } h1 { margin: 0 }</style></head>"
        '<body><h1>Hi</h1><p class="note">{{ category.care_tips }}</p></body></html>'
    )
    rendered = render_message("email", {"subject": "Hi", "html": html}, CONTEXT)
    assert "<style" not in rendered.html
    assert 'style="color: #cc0000;font-weight: bold;"' in rendered.html.replace("; ", ";")
    assert 'style="margin: 0;"' in rendered.html


def test_preheader_is_hidden_inside_the_body():
    html = "<html><head></head><body><p>Hi</p></body></html>"
    rendered = render_message(
        "email", {"subject": "Hi", "preheader": "Your {{ product.name }} tips", "html": html}, CONTEXT
    )
    assert rendered.preheader == "Your Trekking pole tips"
    body_at = rendered.html.index("<body>")
    hidden_at = rendered.html.index("display:none")
    assert body_at < hidden_at < rendered.html.index("<p>Hi</p>")
    assert "Your Trekking pole tips" not in rendered.text


# -- locales ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "source", "expected"),
    [
        ("en", "{{ purchase.date|date }}", "Mar 5, 2024"),
        ("en", "{{ purchase.date|date('long') }}", "March 5, 2024"),
        ("en", "{{ purchase.date|date('short') }}", "3/5/24"),
        ("zh-CN", "{{ purchase.date|date }}", "2024年3月5日"),
        ("zh-CN", "{{ purchase.date|date('long') }}", "2024年3月5日"),
        ("zh-CN", "{{ purchase.date|date('short') }}", "2024/3/5"),
        ("en", "{{ purchase.amount|currency }}", "$1,234.50"),
        ("zh-CN", "{{ purchase.amount|currency }}", "¥1,234.50"),
        ("en", "{{ purchase.amount|currency('EUR') }}", "€1,234.50"),
        ("en", "{{ 1234567.891|number }}", "1,234,567.891"),
        ("de", "{{ 1234567.891|number }}", "1.234.567,891"),
        ("en", "{{ purchase.date|date('bogus') }}", "Mar 5, 2024"),
        ("en", "{{ 'not a date'|date }}", "not a date"),
        ("en", "[{{ None|date }}]", "[]"),
        ("xx-YY", "{{ purchase.date|date }}", "Mar 5, 2024"),
    ],
)
def test_locale_aware_filters(locale, source, expected):
    rendered = render_message("sms", {"body": source}, CONTEXT, locale=locale, opt_out_footer=False)
    assert rendered.text == expected


def test_datetime_is_formatted_as_its_date():
    context = {**CONTEXT, "purchase": {**CONTEXT["purchase"], "date": dt.datetime(2024, 3, 5, 23, 59)}}
    assert render_message(
        "sms", {"body": "{{ purchase.date|date }}"}, context, opt_out_footer=False
    ).text == ("Mar 5, 2024")


@pytest.mark.parametrize(
    ("wanted", "available", "chosen"),
    [
        ("zh-CN", ["en", "zh-CN"], "zh-CN"),
        ("zh-TW", ["en", "zh-CN"], "zh-CN"),
        ("zh", ["en", "zh-CN"], "zh-CN"),
        ("fr", ["zh-CN", "en"], "en"),
        (None, ["zh-CN", "en"], "en"),
        ("fr", ["zh-CN"], "zh-CN"),
        ("en", [], None),
    ],
)
def test_choose_locale(wanted, available, chosen):
    assert choose_locale(wanted, available) == chosen


# -- validation ------------------------------------------------------------------------------------


def test_syntax_error_has_a_line_number():
    issues = validate_template(
        {"body": "Hi {{ member.name }}\nline two\n{% if member.tier %}\nno end"}, "sms"
    )
    assert len(issues) == 1
    assert issues[0].part == "body" and issues[0].lineno == 4
    assert "endif" in issues[0].message or "end of template" in issues[0].message


def test_unclosed_expression_is_reported_on_its_line():
    [issue] = validate_template({"subject": "ok", "html": "<p>\n\n{{ member.name </p>"}, "email")
    assert issue.part == "html" and issue.lineno == 3


def test_unknown_variable_field_and_filter_get_suggestions():
    source = "Hi {{ membr.name }}\n{{ member.nmae }}\n{{ member.name|uper }}\n{{ purchase.dat|date }}"
    issues = {(i.message, i.lineno, i.suggestion) for i in validate_template({"body": source}, "sms")}
    assert ("unknown variable 'membr'", 1, "did you mean 'member'?") in issues
    assert ("unknown field of member 'nmae'", 2, "did you mean 'name'?") in issues
    assert ("unknown filter 'uper'", 3, "did you mean 'upper'?") in issues
    assert ("unknown field of purchase 'dat'", 4, "did you mean 'date'?") in issues


def test_removed_filters_are_flagged():
    [issue] = validate_template({"body": "{{ member.name|attr('x') }}"}, "sms")
    assert issue.message == "unknown filter 'attr'"


def test_loader_tags_are_flagged_with_their_line():
    [issue] = validate_template({"body": "Hi\n{% include 'other' %}"}, "sms")
    assert issue.lineno == 2 and "include" in issue.message


def test_a_valid_template_has_no_issues():
    parts = {
        "body": "{% set n = member.preferred_name %}{% for i in member.interests %}{{ loop.index }}{{ i }}"
        "{% endfor %}{% macro hi(x) %}{{ x }}{% endmacro %}{{ hi(n) }} {{ offer.anything }} {{ links.shop }}"
    }
    assert validate_template(parts, "sms") == []


def test_required_parts():
    assert [i.message for i in validate_template({"body": " "}, "sms")] == ["an SMS needs a body"]
    assert [i.message for i in validate_template({"html": "<p>x</p>"}, "email")] == [
        "an e-mail needs a subject"
    ]


def test_too_long_template_is_flagged_and_refused():
    from templating.sandbox import MAX_TEMPLATE_CHARS

    source = "x" * (MAX_TEMPLATE_CHARS + 1)
    [issue] = validate_template({"body": source}, "sms")
    assert "longer than" in issue.message
    with pytest.raises(TemplateError, match="longer than"):
        render_message("sms", {"body": source}, CONTEXT)


# -- byte-identical rendering ----------------------------------------------------------------------

EMAIL_PARTS = {
    "subject": "{{ member.preferred_name }}，您的{{ product.name }}还好用吗？",
    "preheader": "{{ category.care_tips }}",
    "html": "<html><head><style>p { color: #333 }</style></head><body>"
    "<p>{{ member.preferred_name }}您好：您在{{ purchase.date|date }}购买了{{ product.name }}，"
    "已使用{{ purchase.age_days }}天。</p><p>{{ category.care_tips }}</p>"
    "<p>优惠码 <b>{{ offer.code }}</b>，{{ purchase.amount|currency }}</p></body></html>",
}


def test_render_is_byte_identical_every_time():
    first = render_message("email", EMAIL_PARTS, CONTEXT, locale="zh-CN")
    for _ in range(3):
        again = render_message("email", dict(EMAIL_PARTS), {**CONTEXT}, locale="zh-CN")
        assert again == first
        assert again.html.encode() == first.html.encode() and again.text.encode() == first.text.encode()
    sms = [render_message("sms", {"body": EMAIL_PARTS["html"]}, CONTEXT, locale="zh-CN") for _ in range(3)]
    assert len({m.text.encode() for m in sms}) == 1


def test_render_from_the_real_message_context_is_byte_identical():
    from campaigns.campaign import Campaign, CampaignKind
    from campaigns.context import message_context
    from membership.member import Member
    from membership.store import Store

    member = Member(name="李伟", preferred_name="伟", tier="gold", interests=["登山"], locale="zh-CN")
    store = Store(name="成都店", code="CD")
    campaign = Campaign(name="换新提醒", kind=CampaignKind.REPLENISHMENT, settings={"offer": {"code": "X1"}})
    now = dt.datetime(2025, 4, 9, 10, 0)
    body = "{{ member.preferred_name }}您好，{{ store.name }}提醒：{{ campaign.name }} {{ offer.code }}"
    preview = render_message(
        "sms", {"body": body}, message_context(member, store, campaign, None, now), locale="zh-CN"
    )
    sent = render_message(
        "sms", {"body": body}, message_context(member, store, campaign, None, now), locale="zh-CN"
    )
    assert preview.text.encode() == sent.text.encode()
    assert preview.text == "伟您好，成都店提醒：换新提醒 X1\n回T退订"


def test_smtp_message_carries_exactly_the_rendered_parts():
    rendered = render_message("email", EMAIL_PARTS, CONTEXT, locale="zh-CN")
    channel = SmtpEmailChannel("smtp://127.0.0.1:1", from_address="Huifang <news@shop.example>")
    built = channel.build(
        OutboundMessage(1, "li@example.com", rendered.text, subject=rendered.subject, html=rendered.html)
    )
    parsed = email.message_from_bytes(built.as_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == rendered.subject
    assert parsed.get_body(("plain",)).get_content().rstrip("\n") == rendered.text
    assert parsed.get_body(("html",)).get_content().rstrip("\n") == rendered.html


def test_a_new_locales_data_is_read_before_the_render_budget_starts(monkeypatch):
    """Reading CLDR data is not the template's cost: a German number once failed CI by the budget."""
    import babel.localedata

    from templating.limits import BUDGET
    from templating.locales import load_locale

    real_load, reads = babel.localedata.load, []

    def load(name, merge_inherited=True):
        if name not in babel.localedata._cache:  # a read of the files, not a cache hit
            reads.append((name, BUDGET.get() is not None))
        return real_load(name, merge_inherited)

    monkeypatch.setattr(babel.localedata, "load", load)
    monkeypatch.setattr(babel.localedata, "_cache", {})  # as in a fresh worker
    load_locale.cache_clear()
    try:
        rendered = render_message(
            "sms",
            {"body": "{{ 1234567.891|number }} {{ purchase.date|date }} {{ 12|currency }}"},
            CONTEXT,
            locale="fr-CA",
            opt_out_footer=False,
        )
    finally:
        load_locale.cache_clear()  # what it loaded went to the stand-in cache
    assert rendered.text == "1\xa0234\xa0567,891 5 mars 2024 12,00\xa0$\xa0US"
    assert ("fr_CA", False) in reads and not [name for name, in_budget in reads if in_budget]
