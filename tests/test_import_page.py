"""The admin import page: upload → job → progress JSON → error CSV; the member page names the run."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

from accounts.staff import Role
from jobs.connection import QUEUES, queue, redis
from membership.importing.runs import ImportRun, ImportStatus
from membership.member import Member
from tests.test_web import _login

MEMBERS = (
    "会员卡号,姓名,手机,邮箱,短信同意\n"
    "P001,李雷,13800138000,li@example.com,是\n"
    "P002,韩梅梅,12345,,否\n"  # bad phone
    "P003,王芳,13900139001,bad-mail,\n"  # bad e-mail
    "P004,张伟,13900139002,,\n"
)


@pytest.fixture
def admin(session, factory):
    user = factory.staff(Role.ADMIN)
    factory.store(code="BJ01", region="CN", timezone="Asia/Shanghai")
    session.commit()
    return user


def _work(app) -> None:
    SimpleWorker([queue(n) for n in QUEUES], connection=redis(app), serializer=JSONSerializer).work(
        burst=True
    )


def _upload(client, content: bytes, **fields):
    data = {"kind": "members", "store": "BJ01", "encoding": "auto", **fields}
    data["file"] = (io.BytesIO(content), "会员.csv")
    return client.post("/imports/", data=data, content_type="multipart/form-data")


def test_admin_uploads_a_file_and_the_run_completes(app, client, session, admin):
    _login(client, admin.email)
    response = _upload(client, MEMBERS.encode("gb18030"))
    assert response.status_code == 302
    run_id = int(response.location.rstrip("/").rsplit("/", 1)[1])
    run = session.get(ImportRun, run_id)
    assert (run.status, run.file_name) == (ImportStatus.RUNNING, "会员.csv")
    waiting = client.get(f"/imports/{run_id}/status").get_json()
    assert waiting["finished"] is False and waiting["total"] == 4 and waiting["percent"] == 0
    page = client.get(f"/imports/{run_id}").get_data(as_text=True)
    assert "<progress" in page and "imports.js" in page

    _work(app)

    status = client.get(f"/imports/{run_id}/status").get_json()
    assert status["status"] == "partial" and status["finished"] is True and status["percent"] == 100
    assert (status["rows_read"], status["inserted"], status["failed"]) == (4, 2, 2)
    session.rollback()
    assert session.get(ImportRun, run_id).encoding == "gb18030"
    assert session.scalar(select(func.count()).select_from(Member)) == 2
    page = client.get(f"/imports/{run_id}").get_data(as_text=True)
    assert "<progress" not in page and "errors.csv" in page and "phone" in page
    assert "会员.csv" in client.get("/imports/").get_data(as_text=True)  # in the recent runs

    download = client.get(f"/imports/{run_id}/errors.csv")
    assert download.mimetype == "text/csv" and "attachment" in download.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(download.get_data().decode("utf-8-sig"))))
    assert rows[0] == ["line", "column", "reason", "row"]
    assert [(r[0], r[1]) for r in rows[1:]] == [("3", "phone"), ("4", "email")]
    assert rows[1][3] == "P002,韩梅梅,12345,,否"


def test_dry_run_changes_nothing_and_files_are_cleaned_up(app, client, session, admin):
    _login(client, admin.email)
    response = _upload(client, MEMBERS.encode("utf-8-sig"), dry_run="1")
    run_id = int(response.location.rsplit("/", 1)[1])
    _work(app)
    session.rollback()
    run = session.get(ImportRun, run_id)
    assert run.dry_run and (run.inserted, run.failed) == (2, 2)
    assert session.scalar(select(func.count()).select_from(Member)) == 0
    assert not list((Path(app.instance_path) / "imports").iterdir())  # the upload is removed once imported


def test_running_the_job_twice_imports_once(app, client, session, admin):
    from jobs.imports import run_import

    _login(client, admin.email)
    run_id = int(_upload(client, MEMBERS.encode()).location.rsplit("/", 1)[1])
    _work(app)
    assert run_import(run_id, "/nonexistent.csv")["status"] == "partial"  # finished runs are left alone
    session.rollback()
    assert session.get(ImportRun, run_id).inserted == 2


def test_bad_uploads_are_refused_with_a_reason(client, session, admin):
    _login(client, admin.email)
    assert _upload(client, b"x", kind="coupons").status_code == 400
    refused = _upload(client, MEMBERS.encode(), store="NOPE")
    assert refused.status_code == 400 and "NOPE" in refused.get_data(as_text=True)
    no_file = client.post("/imports/", data={"kind": "members"})
    assert no_file.status_code == 400 and "choose a CSV file" in no_file.get_data(as_text=True)


def test_broken_header_fails_the_run_with_its_message(app, client, session, admin):
    _login(client, admin.email)
    run_id = int(_upload(client, b"foo,bar\n1,2\n").location.rsplit("/", 1)[1])
    _work(app)
    status = client.get(f"/imports/{run_id}/status").get_json()
    assert status["status"] == "failed" and "card_number" in status["message"]
    assert "card_number" in client.get(f"/imports/{run_id}").get_data(as_text=True)


@pytest.mark.parametrize("role", [Role.MARKETER, Role.AGENT])
def test_non_admins_are_refused(client, session, factory, role):
    user = factory.staff(role)
    session.commit()
    _login(client, user.email)
    assert client.get("/imports/").status_code == 403
    assert _upload(client, MEMBERS.encode()).status_code == 403
    assert client.get("/imports/duplicates").status_code == 403
    assert session.scalar(select(func.count()).select_from(ImportRun)) == 0


def test_duplicates_page_lists_shared_phones(client, session, factory, admin):
    store = factory.store()
    factory.member(store, card_number="D1", phone="+8613800000001", name="Twin A")
    factory.member(store, card_number="D2", phone="+8613800000001", name="Twin B")
    factory.member(store, card_number="D3", name="Alone")
    session.commit()
    _login(client, admin.email)
    page = client.get("/imports/duplicates").get_data(as_text=True)
    assert "Twin A" in page and "Twin B" in page and "Alone" not in page


def test_member_page_names_the_run_that_wrote_it_in_one_query(app, client, session, admin):
    from sqlalchemy import event

    from database.appsession import engine

    _login(client, admin.email)
    members_run = int(_upload(client, MEMBERS.encode()).location.rsplit("/", 1)[1])
    _work(app)
    products = "sku,name\nSKU1,Paddle\nSKU2,Balls\n"
    purchases = (
        "line_id,card_number,sku,purchased_at\nL1,P001,SKU1,2024-04-01\nL2,P001,SKU2,2024-04-02\n"
        "L3,P001,SKU2,2024-04-03\n"
    )
    _upload(client, products.encode(), kind="products")
    _work(app)
    purchases_run = int(_upload(client, purchases.encode(), kind="purchases").location.rsplit("/", 1)[1])
    _work(app)
    member = session.scalar(select(Member).where(Member.card_number == "P001"))
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine(app), "before_cursor_execute", listener)
    try:
        page = client.get(f"/members/{member.id}").get_data(as_text=True)
    finally:
        event.remove(engine(app), "before_cursor_execute", listener)
    assert f"run {members_run}</a>, 会员.csv" in page
    assert page.count(f"run {purchases_run}</a>, 会员.csv") == 3
    # The purchase list and the owned-items timeline: one query each, whatever the number of purchases.
    assert sum("FROM purchases" in s for s in statements) == 2
    assert sum("import_runs" in s for s in statements) == 2  # the member's run, then joined to purchases


def test_large_upload_passes_the_csrf_check_and_the_size_limit(app_config, session, admin):
    """The app-wide body limit (2 MB) is for forms; an export of several MB must still upload."""
    from app import create_app

    app = create_app({**app_config, "csrf": True})
    client = app.test_client()
    token = _csrf_token(client.get("/login"))
    client.post("/login", data={"email": admin.email, "password": "password123", "csrf_token": token})
    rows = "".join(f"B{i:07d},Member {i},,,\n" for i in range(120_000))
    content = ("card_number,name,phone,email,tier\n" + rows).encode()
    assert len(content) > app.config["MAX_CONTENT_LENGTH"]
    data = {"kind": "members", "encoding": "auto", "file": (io.BytesIO(content), "big.csv")}
    assert client.post("/imports/", data=dict(data), content_type="multipart/form-data").status_code == 400
    token = _csrf_token(client.get("/imports/"))
    data["file"] = (io.BytesIO(content), "big.csv")
    response = client.post(
        "/imports/", data={**data, "csrf_token": token}, content_type="multipart/form-data"
    )
    assert response.status_code == 302
    run_id = int(response.location.rsplit("/", 1)[1])
    with app.app_context():
        assert client.get(f"/imports/{run_id}/status").get_json()["total"] == 120_000


def _csrf_token(response) -> str:
    return response.get_data(as_text=True).split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def test_a_queue_outage_fails_the_run_instead_of_leaving_it_running(client, session, admin, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    import web.imports

    def refuse(*args, **kwargs):
        raise RedisConnectionError("redis is down")

    monkeypatch.setattr(web.imports, "enqueue_import", refuse)
    _login(client, admin.email)
    response = _upload(client, MEMBERS.encode())
    assert response.status_code == 503 and "job queue is unavailable" in response.get_data(as_text=True)
    session.rollback()
    run = session.scalar(select(ImportRun))
    assert run.status is ImportStatus.FAILED and "queue" in run.message
    assert not list((Path(client.application.instance_path) / "imports").iterdir())
