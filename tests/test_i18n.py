"""The UI in English and Simplified Chinese: complete catalogue, per-user choice, browser fallback, switching."""

import re
from pathlib import Path

from babel.messages.pofile import read_po

from accounts.staff import Role, StaffUser
from tests.test_callback_outcomes import _complaint
from tests.test_designer import FORM
from tests.test_web import _login
from web.i18n import TRANSLATIONS, compile_catalogues

CATALOGUE = TRANSLATIONS / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
TEMPLATES = Path(__file__).parent.parent / "web" / "templates"
# Words that read the same in both languages: the brand, the language switch, units and codes.
SAME_IN_BOTH = {"Huifang", "English", "UTC", "SKU", "CSV", "HTML", "TESTCODE"}


def _user(session, factory, role, locale):
    user = factory.staff(role)
    user.locale = locale
    session.commit()
    return user


def test_every_msgid_has_a_chinese_translation():
    with CATALOGUE.open("rb") as handle:
        catalog = read_po(handle, locale="zh_Hans_CN")
    missing = [
        m.id
        for m in catalog
        if m.id and (m.fuzzy or not all(m.string if isinstance(m.string, tuple) else [m.string]))
    ]
    assert len(catalog) > 300
    assert missing == [], "translate these in messages.po"


def test_catalogue_compiles_when_missing_or_stale_and_falls_back_when_read_only(tmp_path):
    source = tmp_path / "translations"
    po = source / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_bytes(CATALOGUE.read_bytes())
    assert compile_catalogues(source, tmp_path / "fallback") == source
    mo = po.with_suffix(".mo")
    first = mo.stat().st_mtime_ns
    assert compile_catalogues(source, tmp_path / "fallback") == source
    assert mo.stat().st_mtime_ns == first  # up to date: not rewritten
    mo.unlink()
    po.parent.chmod(0o555)
    try:
        if _writable(po.parent):  # running as root: permissions do not stop us, nothing to check
            return
        assert compile_catalogues(source, tmp_path / "fallback") == tmp_path / "fallback"
        assert (tmp_path / "fallback" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.mo").exists()
    finally:
        po.parent.chmod(0o755)


def _writable(directory: Path) -> bool:
    try:
        (directory / ".probe").touch()
    except OSError:
        return False
    (directory / ".probe").unlink()
    return True


def test_chinese_user_sees_chinese_and_english_user_english(client, session, factory):
    task, _ = _complaint(session, factory)
    zh = _user(session, factory, Role.ADMIN, "zh-CN")
    en = _user(session, factory, Role.ADMIN, "en")
    _login(client, zh.email)
    dashboard = client.get("/").get_data(as_text=True)
    assert 'lang="zh-CN"' in dashboard
    assert "待处理回访任务" in dashboard and "每日发送消息数" in dashboard
    assert "open call tasks" not in dashboard
    queue = client.get("/callbacks/").get_data(as_text=True)
    assert "领取下一个任务" in queue and "Claim next task" not in queue
    assert "回访任务" in client.get(f"/callbacks/{task.id}").get_data(as_text=True)
    designer = client.get("/campaigns/new").get_data(as_text=True)
    assert "新建活动" in designer and "保存草稿" in designer and "New campaign" not in designer

    client.post("/logout")
    _login(client, en.email)
    dashboard = client.get("/").get_data(as_text=True)
    assert 'lang="en"' in dashboard and "open call tasks" in dashboard and "待处理" not in dashboard
    assert "Claim next task" in client.get("/callbacks/").get_data(as_text=True)
    assert "Save draft" in client.get("/campaigns/new").get_data(as_text=True)


def test_designer_errors_are_translated_but_member_text_is_not(client, session, factory):
    user = _user(session, factory, Role.MARKETER, "zh-CN")
    _login(client, user.email)
    bad = {**FORM, "name": "", "holdout_pct": "90", "content_sms_en_body": "Hi {{ member.nmae }}"}
    page = client.post("/campaigns/new", data=bad).get_data(as_text=True)
    assert "请为活动命名" in page
    assert "对照组比例：应在 0 到 50 之间" in page
    assert "第 1 行：member 没有字段 &#39;nmae&#39;（您是不是想写 &#39;name&#39;？）" in page
    assert "您是不是想写" in page
    assert "Hi {{ member.nmae }}" in page  # what the marketer typed stays as typed
    assert "Holdout: between" not in page


def test_switching_language_stores_the_choice(client, session, factory):
    agent = _user(session, factory, Role.AGENT, "en")
    _login(client, agent.email)
    assert "Claim next task" in client.get("/callbacks/").get_data(as_text=True)
    response = client.post(
        "/language", data={"locale": "zh-CN"}, headers={"Referer": "http://localhost/callbacks/"}
    )
    assert response.status_code == 302 and response.location.endswith("/callbacks/")
    session.expire_all()
    assert session.get(StaffUser, agent.id).locale == "zh-CN"
    assert "领取下一个任务" in client.get("/callbacks/").get_data(as_text=True)
    response = client.post("/language", data={"locale": "en"}, headers={"Referer": "https://evil.example/x"})
    assert response.location.endswith("/callbacks/")  # never back to another site
    session.expire_all()
    assert session.get(StaffUser, agent.id).locale == "en"
    assert client.post("/language", data={"locale": "fr"}).status_code == 302
    assert session.get(StaffUser, agent.id).locale == "en"


def test_login_page_follows_the_browser_language(client):
    zh = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}).get_data(as_text=True)
    assert "登录" in zh and 'lang="zh-CN"' in zh
    assert "登录" in client.get("/login", headers={"Accept-Language": "zh-TW"}).get_data(as_text=True)
    english = client.get("/login", headers={"Accept-Language": "fr-FR,de;q=0.8"}).get_data(as_text=True)
    assert "Log in" in english and 'lang="en"' in english
    assert "Log in" in client.get("/login").get_data(as_text=True)


def test_domain_messages_are_translated_with_their_values(app):
    from flask_babel import force_locale

    from web.domain_text import label, tr

    launch = "cannot launch: no sms content: write at least one language; a broadcast needs a send time"
    with app.test_request_context():
        assert tr(launch) == launch  # English: exactly as the domain wrote it
        assert label("no_answer") == "no answer"
        with force_locale("zh_Hans_CN"):
            assert tr(launch) == "无法上线：没有短信内容：请至少用一种语言撰写；群发活动需要设置发送时间"
            assert tr("held out: 10% control group of campaign 3") == "对照组：活动 3 的 10% 对照组"
            assert tr("no consented contact on sms/email") == "短信/邮件 渠道均无已同意的联系方式"
            assert tr("unsatisfied survey reply: 鞋底开胶了") == "问卷回复不满意：鞋底开胶了"
            assert tr("a sentence nobody translated") == "a sentence nobody translated"
            assert label("no_answer") == "无人接听" and label("not-a-state") == "not-a-state"


def _untranslated_words(source: str) -> list[str]:
    """English words in a template's text and labelling attributes outside _() and {% trans %}."""
    s = re.sub(r"\{#.*?#\}", " ", source, flags=re.S)
    s = re.sub(r"\{%-?\s*trans\b.*?\{%-?\s*endtrans\s*-?%\}", " ", s, flags=re.S)
    s = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", "\x00", s, flags=re.S)
    s = re.sub(r"<(script|style|code)\b.*?</\1>", " ", s, flags=re.S)
    attributes = re.findall(r'\b(?:placeholder|aria-label|title|alt)="([^"]*)"', s)
    text = re.sub(r"<[^>]*>", " ", s)
    words = [w for chunk in [text, *attributes] for w in re.findall(r"[A-Za-z][A-Za-z’']+", chunk)]
    return [w for w in words if w not in SAME_IN_BOTH]


def test_no_template_has_text_outside_the_catalogue():
    # unsubscribe.html is for members, not staff, and always shows both languages side by side.
    found = {
        path.name: words
        for path in sorted(TEMPLATES.glob("*.html"))
        if path.name != "unsubscribe.html"
        and (words := _untranslated_words(path.read_text(encoding="utf-8")))
    }
    assert found == {}, "wrap these in _() or {% trans %} and translate them in messages.po"
