"""Headless Chromium (Debian's, driven by Playwright) through the two journeys that matter most:
a marketer designs, previews, forecasts, launches and measures a campaign; an agent works a callback.

Screenshots of every step land in test-output/browser/ for a human to look at.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from accounts.staff import Role
from campaigns.campaign import Campaign
from campaigns.message import Message, MessageStatus
from database.base import utcnow
from service.task import CallTask, TaskStatus
from tests.test_callback_outcomes import _complaint
from tests.test_end_to_end import _work

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]

SHOTS = Path(__file__).resolve().parent.parent / "test-output" / "browser"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    """Debian's Chromium; installed here when missing (the test command owns its dependencies)."""
    found = shutil.which("chromium")
    if found:
        return found
    install = "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium"
    result = subprocess.run(["sh", "-c", install], capture_output=True, text=True, timeout=900)
    found = shutil.which("chromium")
    if not found:
        pytest.fail(
            f"Debian's chromium is needed for the browser tests and could not be installed:\n{result.stderr[-2000:]}"
        )
    return found


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    path = _chromium()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def live(app):
    """The app served on a loopback port in a thread, as a browser would reach it."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(10_000)
    folder = SHOTS / request.node.name.replace("[", "-").rstrip("]")
    folder.mkdir(parents=True, exist_ok=True)
    page.shot = lambda name: page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    yield page
    context.close()


def _login(page, base, email):
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "password123")
    page.click("button[type=submit]")


def test_marketer_designs_previews_forecasts_launches_and_measures(app, live, page, session, factory):
    now = utcnow()
    store = factory.store(timezone="UTC", quiet_start="00:00", quiet_end="00:00")
    product = factory.product(name="Tenergy 05 rubber", prior_days=60)
    buyers = []
    for i in range(4):
        member = factory.member(store=store, name=f"王芳{i}", locale="zh-CN", interests=["table-tennis"])
        factory.purchase(member, product, now - dt.timedelta(days=38))
        buyers.append(member)
    runner = factory.member(store=store, name="Runner", interests=["running"])
    factory.purchase(runner, product, now - dt.timedelta(days=38))
    factory.estimates()
    marketer = factory.staff(Role.MARKETER)
    session.commit()

    _login(page, live, marketer.email)
    page.goto(f"{live}/campaigns")
    page.click("text=New campaign")
    page.fill("#name", "Rubber wears out")
    page.select_option("#kind", "replenishment")
    page.fill("#audience_interests", "table-tennis")
    expect(page.locator("#audience-live [data-count]")).to_have_text("4")
    page.shot("1-audience")
    page.uncheck("#fallback")  # SMS only: no e-mail content in this campaign
    page.fill("#holdout_pct", "0")
    page.fill("#lead_days", "7")
    page.fill(
        "#content_sms_zh-CN_body",
        "{{ member.preferred_name }}您好，您的{{ product.name }}用了{{ purchase.age_days }}天了。",
    )
    page.fill("#content_sms_en_body", "Hi {{ member.preferred_name }}, time for new rubber?")
    page.click("#designer button[type=submit]")
    page.wait_for_url("**/edit")
    assert "Saved draft" in page.content()

    # Live preview on a member found by name, in Chinese, with the segment counter.
    page.fill("#preview_member_q", "王芳2")
    expect(page.locator("#live-preview [data-text]")).to_contain_text("王芳2")
    preview = page.text_content("#live-preview [data-text]")
    assert "Tenergy 05 rubber" in preview and "您好" in preview
    assert "UCS-2" in page.text_content("#live-preview [data-sms-count]")
    page.shot("2-preview-zh")

    page.click("text=30-day forecast")
    page.wait_for_selector("h1:has-text('30-day forecast')")
    totals = page.text_content("table")
    assert "SMS" in totals
    sms_row = page.locator("tr:has(th:text-is('SMS')) td").text_content()
    assert int(sms_row) == 4
    page.shot("3-forecast")

    page.go_back()
    page.click("button[value=launch]")
    page.wait_for_selector("text=Campaign is now active")
    page.shot("4-launched")

    from jobs.tasks import tick

    campaign_id = session.scalar(select(Campaign.id).where(Campaign.name == "Rubber wears out"))
    tick()  # the tick job, then a burst worker drains the SMS queue
    _work(app)
    session.rollback()
    sent = session.scalars(
        select(Message).where(Message.campaign_id == campaign_id, Message.status == MessageStatus.SENT)
    ).all()
    assert len(sent) == 4

    page.goto(f"{live}/campaigns/{campaign_id}/report")
    funnel = page.text_content("svg title")
    assert "sent 4" in funnel
    page.shot("5-report")


def test_agent_claims_reschedules_and_resolves(live, page, session, factory):
    agent = factory.staff(Role.AGENT)
    task, _ = _complaint(session, factory)
    session.commit()

    _login(page, live, agent.email)
    page.goto(f"{live}/callbacks/")
    page.shot("1-queue")
    page.click("#claim-next")
    page.wait_for_url(f"**/callbacks/{task.id}")
    page.select_option("#outcome", "no_answer")
    page.fill("#note", "rang twice, voicemail")
    page.click("text=Log outcome")
    page.goto(f"{live}/callbacks/?status=rescheduled")
    assert page.locator(f"a:text-is('#{task.id}')").count() == 1
    page.shot("2-rescheduled")

    # The retry back-off passes.
    session.execute(update(CallTask).where(CallTask.id == task.id).values(next_attempt_at=utcnow()))
    session.commit()
    page.goto(f"{live}/callbacks/")
    page.click("#claim-next")
    page.wait_for_url(f"**/callbacks/{task.id}")
    assert "voicemail" in page.content()
    page.select_option("#outcome", "resolved")
    page.select_option("#root_cause", index=1)
    page.fill("#note", "sent a replacement")
    page.click("text=Log outcome")
    page.goto(f"{live}/callbacks/?status=resolved")
    assert page.locator(f"a:text-is('#{task.id}')").count() == 1
    page.shot("3-resolved")
    session.expire_all()
    assert session.get(CallTask, task.id).status is TaskStatus.RESOLVED
