"""Pages render for the right roles; the member page shows messages, replies and tasks."""

import datetime as dt

import pytest

from accounts.staff import Role
from campaigns.campaign import CampaignKind
from campaigns.scheduler import tick


def _login(client, user_email, password="password123"):
    return client.post("/login", data={"email": user_email, "password": password})


def test_login_required_and_wrong_password_refused(client, factory, session):
    factory.staff(Role.MARKETER, email="mei@example.com")
    session.commit()
    assert client.get("/").status_code == 302
    assert b"Wrong e-mail or password" in _login(client, "mei@example.com", "nope-nope").data
    assert _login(client, "mei@example.com").status_code == 302
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    ("role", "path", "allowed"),
    [
        (Role.AGENT, "/", False),
        (Role.AGENT, "/campaigns", False),
        (Role.AGENT, "/callbacks/", True),
        (Role.MARKETER, "/campaigns", True),
        (Role.MARKETER, "/callbacks/", False),
        (Role.ADMIN, "/callbacks/", True),
        (Role.ADMIN, "/campaigns", True),
    ],
)
def test_role_checks(client, factory, session, role, path, allowed):
    user = factory.staff(role)
    session.commit()
    _login(client, user.email)
    assert client.get(path).status_code == (200 if allowed else 403)


def test_member_page_shows_the_whole_story_escaped(client, factory, session, now):
    admin = factory.staff(Role.ADMIN)
    member = factory.member(name="<script>alert(1)</script>")
    factory.purchase(member, factory.product(name="Tenergy rubber"), now - dt.timedelta(days=4))
    factory.campaign(CampaignKind.SURVEY, settings={"days_after": 3, "window_days": 7})
    tick(session, now)
    session.commit()
    _login(client, admin.email)
    page = client.get(f"/members/{member.id}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "Tenergy rubber" in page and "due: survey" in page
    assert client.get("/members/999999").status_code == 404
    assert client.get("/inbox/").status_code == 200
    assert "survey campaign" in client.get("/campaigns").get_data(as_text=True)
