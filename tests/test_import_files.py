"""CSV imports on both databases: idempotent, line-exact error reports, encodings, Chinese headers, dry runs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

import membership.importing.runs
import membership.importing.tokens  # noqa: F401 - the metadata must know every import table
from membership.consent import record_consent
from membership.importing.runs import ImportRowError, ImportRun, ImportStatus, duplicates
from membership.importing.service import import_file
from membership.member import Channel, ConsentEvent, Member
from membership.purchase import Purchase
from tests.spies import recording

MEMBERS = """card_number,name,phone,email,sms_consent,email_consent,interests,joined_at,store
C001,Li Lei,13800138000,li@example.com,yes,no,table-tennis;running,2024-03-05,{store}
C002,Han Meimei,+8613900139000,han@example.com,no,yes,,2024/03/06 10:00,{store}
C003,Wang Fang,139 0013 9001,,,,badminton,2024-03-07,{store}
"""
PRODUCTS = """sku,name,category,category_name,price,lifetime_days
TT-PADDLE,Paddle,tt-paddle,Table-tennis paddles,299.00,180
TT-BALL,Balls (6),tt-ball,Table-tennis balls,"1,029.50",60
"""
PURCHASES = """line_id,card_number,sku,purchased_at,quantity,amount
L1,C001,TT-PADDLE,2024-04-01 10:30,1,299.00
L2,C001,TT-BALL,2024-04-01 10:30,2,59.80
L3,C002,TT-BALL,2024-05-02,1,29.90
"""


def write(tmp_path, name: str, content: str, encoding: str = "utf-8") -> str:
    path = tmp_path / name
    path.write_bytes(content.encode(encoding))
    return str(path)


def snapshot(session, model) -> list[tuple]:
    session.expire_all()
    table = model.__table__
    return [tuple(row) for row in session.execute(select(table).order_by(table.c.id))]


@pytest.fixture
def store(factory, session):
    store = factory.store(code="BJ01", region="CN", timezone="Asia/Shanghai")
    session.commit()
    return store


@pytest.fixture
def loaded(session, store, tmp_path):
    """Members, products and purchases imported once."""
    runs = [
        import_file(session, "members", write(tmp_path, "members.csv", MEMBERS.format(store="BJ01"))),
        import_file(session, "products", write(tmp_path, "products.csv", PRODUCTS)),
        import_file(session, "purchases", write(tmp_path, "purchases.csv", PURCHASES), store_code="BJ01"),
    ]
    assert [(r.inserted, r.failed) for r in runs] == [(3, 0), (2, 0), (3, 0)]
    return runs


def test_first_import_stores_validated_values(session, loaded, store):
    li = session.scalar(select(Member).where(Member.card_number == "C001"))
    assert li.phone == "+8613800138000"
    assert li.email == "li@example.com"
    assert li.interests == ["table-tennis", "running"]
    assert li.home_store_id == store.id
    assert li.joined_at == dt.datetime(2024, 3, 4, 16, 0)  # local midnight in Shanghai, stored as UTC
    assert (li.sms_consent, li.email_consent) == (True, False)
    assert session.scalar(select(Member.phone).where(Member.card_number == "C003")) == "+8613900139001"
    ball = session.scalar(select(Purchase).where(Purchase.external_line_id == "L2"))
    assert (ball.quantity, ball.amount, ball.store_id) == (2, Decimal("59.80"), store.id)
    assert ball.purchased_at == dt.datetime(2024, 4, 1, 2, 30)
    assert ball.product.category.name == "Table-tennis balls"
    assert ball.product.lifetime_prior_days == 60


def test_reimport_changes_nothing(session, loaded, tmp_path):
    before = {m: snapshot(session, m) for m in (Member, Purchase, ConsentEvent)}
    again = [
        import_file(session, "members", write(tmp_path, "members.csv", MEMBERS.format(store="BJ01"))),
        import_file(session, "products", write(tmp_path, "products.csv", PRODUCTS)),
        import_file(session, "purchases", write(tmp_path, "purchases.csv", PURCHASES), store_code="BJ01"),
    ]
    assert [(r.inserted, r.updated, r.unchanged, r.failed) for r in again] == [
        (0, 0, 3, 0),
        (0, 0, 2, 0),
        (0, 0, 3, 0),
    ]
    assert {m: snapshot(session, m) for m in before} == before


def test_corrected_file_updates_only_changed_rows(session, loaded, tmp_path):
    untouched = snapshot(session, Member)[1:]
    members = MEMBERS.format(store="BJ01").replace("li@example.com", "lilei@example.com")
    purchases = PURCHASES.replace("2,59.80", "3,89.70")
    m = import_file(session, "members", write(tmp_path, "members.csv", members))
    p = import_file(session, "purchases", write(tmp_path, "purchases.csv", purchases), store_code="BJ01")
    assert (m.inserted, m.updated, m.unchanged) == (0, 1, 2)
    assert (p.inserted, p.updated, p.unchanged) == (0, 1, 2)
    assert snapshot(session, Member)[1:] == untouched
    assert session.scalar(select(Purchase.amount).where(Purchase.external_line_id == "L2")) == Decimal(
        "89.70"
    )


def test_columns_absent_from_the_file_are_left_alone(session, loaded, tmp_path):
    run = import_file(session, "products", write(tmp_path, "names.csv", "sku,name\nTT-PADDLE,Paddle Pro\n"))
    assert (run.updated, run.unchanged) == (1, 0)
    session.expire_all()
    from membership.catalog import Product

    paddle = session.scalar(select(Product).where(Product.sku == "TT-PADDLE"))
    assert (paddle.name, paddle.price, paddle.lifetime_prior_days) == ("Paddle Pro", Decimal("299.00"), 180)


@pytest.mark.parametrize("in_processes", [False, True], ids=["inline", "validation-processes"])
def test_bad_rows_are_reported_by_line_and_good_rows_kept(
    session, store, tmp_path, monkeypatch, in_processes
):
    if in_processes:  # what a large members file gets: validation in worker processes, 2 rows a task
        from membership.importing import processes, service

        monkeypatch.setattr(service, "POOL_MIN_ROWS", 0)
        monkeypatch.setattr(processes, "PART_ROWS", 2)
    content = (
        b"card_number,name,phone,email,joined_at\n"
        b"G1,Good One,13800000001,g1@example.com,2024-01-01\n"  # line 2
        b'G2,"Two\nLines",13800000002,,2024-01-02\n'  # lines 3-4: a quoted newline
        b"B1,Bad Phone,12345,,2024-01-03\n"  # line 5
        b"B2,Bad Mail,,not-an-email,\n"  # line 6
        b"B3,Bad Date,,,03/04/2024\n"  # line 7: day-first or month-first? refused
        b"\n"  # line 8: blank, skipped
        b"B4,Bad \xff bytes,,,\n"  # line 9: not UTF-8
        b",No Card,,,\n"  # line 10
        b"B5,Too,many,fields,2024-01-01,extra\n"  # line 11
        b"G3,Good Three,,,\n"  # line 12
    )
    path = tmp_path / "mixed.csv"
    path.write_bytes(content)
    run = import_file(session, "members", path)
    assert (run.status, run.rows_read, run.inserted, run.failed) == (ImportStatus.PARTIAL, 9, 3, 6)
    errors = {
        (e.line, e.column)
        for e in session.scalars(select(ImportRowError).where(ImportRowError.run_id == run.id))
    }
    assert errors == {
        (5, "phone"),
        (6, "email"),
        (7, "joined_at"),
        (9, None),
        (10, "card_number"),
        (11, None),
    }
    assert sorted(session.scalars(select(Member.card_number))) == ["G1", "G2", "G3"]
    # Inline or COPY text written by the workers, the rows land the same.
    stored = session.execute(
        select(Member.card_number, Member.name, Member.phone, Member.email, Member.joined_at).order_by(
            Member.card_number
        )
    ).all()
    assert [tuple(row) for row in stored] == [
        ("G1", "Good One", "+8613800000001", "g1@example.com", dt.datetime(2023, 12, 31, 16)),
        ("G2", "Two\nLines", "+8613800000002", None, dt.datetime(2024, 1, 1, 16)),
        ("G3", "Good Three", None, None, stored[2].joined_at),
    ]
    assert session.scalar(select(Member.name).where(Member.card_number == "G2")) == "Two\nLines"


def test_repeated_keys_across_chunks(session, store, tmp_path):
    rows = "".join(f"K{i},Member {i}\n" for i in range(7)) + "K1,Again\n"
    run = import_file(session, "members", write(tmp_path, "m.csv", "card_number,name\n" + rows), chunk_rows=3)
    assert (run.rows_read, run.inserted, run.failed) == (8, 7, 0)
    assert run.updated == 1  # a later chunk repeating a key is applied as a correction
    small = import_file(session, "members", write(tmp_path, "n.csv", "card_number,name\nZ1,A\nZ1,B\n"))
    assert small.failed == 1
    error = session.scalar(select(ImportRowError).where(ImportRowError.run_id == small.id))
    assert (error.line, error.column, error.reason) == (3, "card_number", "repeats line 2")


CHINESE = """会员卡号,姓名,手机,邮箱,短信同意,门店
C100,张伟,13812345678,zhang@example.com,是,BJ01
C101,王芳,13912345678,,否,BJ01
"""


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig", "utf-8"])
def test_chinese_headers_in_every_encoding_import_identically(session, store, tmp_path, encoding):
    run = import_file(session, "members", write(tmp_path, "会员.csv", CHINESE, encoding))
    assert run.encoding == {"gb18030": "gb18030", "utf-8-sig": "utf-8-sig", "utf-8": "utf-8"}[encoding]
    assert (run.inserted, run.failed) == (2, 0)
    rows = session.execute(
        select(Member.card_number, Member.name, Member.phone, Member.sms_consent).order_by(Member.card_number)
    )
    assert [tuple(r) for r in rows] == [
        ("C100", "张伟", "+8613812345678", True),
        ("C101", "王芳", "+8613912345678", False),
    ]
    # The same data in the other encodings is the same data: nothing to change.
    for other in {"gb18030", "utf-8-sig"} - {encoding}:
        again = import_file(session, "members", write(tmp_path, f"again-{other}.csv", CHINESE, other))
        assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)


def test_gb18030_detected_beyond_gbk(session, store, tmp_path):
    # 𠀀 exists only in GB18030 (four-byte): the GBK family is read as GB18030.
    content = "会员卡号,姓名\nC1,张𠀀\n" + "".join(f"C{i},会员{i}号\n" for i in range(2, 200))
    run = import_file(session, "members", write(tmp_path, "gb.csv", content, "gb18030"))
    assert (run.encoding, run.inserted, run.failed) == ("gb18030", 199, 0)
    assert session.scalar(select(Member.name).where(Member.card_number == "C1")) == "张𠀀"


def test_unknown_member_or_product_is_reported_not_created(session, loaded, tmp_path):
    content = (
        "订单行号,会员卡号,商品编码,购买日期,数量,金额\n"
        "L10,C001,TT-BALL,2024-06-01,1,9.90\n"
        "L11,NOBODY,TT-BALL,2024-06-01,1,9.90\n"
        "L12,C002,NO-SUCH-SKU,2024-06-01,1,9.90\n"
    )
    members_before = session.scalar(select(func.count()).select_from(Member))
    run = import_file(session, "purchases", write(tmp_path, "p.csv", content), store_code="BJ01")
    assert (run.inserted, run.failed, run.status) == (1, 2, ImportStatus.PARTIAL)
    errors = [
        (e.line, e.column)
        for e in session.scalars(
            select(ImportRowError).where(ImportRowError.run_id == run.id).order_by(ImportRowError.line)
        )
    ]
    assert errors == [(3, "card_number"), (4, "sku")]
    assert session.scalar(select(func.count()).select_from(Member)) == members_before
    assert session.scalar(select(Purchase.id).where(Purchase.external_line_id == "L11")) is None


def test_consent_is_a_ledger_and_an_import_never_overrides_a_stop(session, loaded, tmp_path):
    events = session.execute(
        select(
            ConsentEvent.channel, ConsentEvent.granted, ConsentEvent.source, ConsentEvent.evidence
        ).order_by(ConsentEvent.id)
    )
    assert [tuple(e) for e in events] == [
        (Channel.SMS, True, "import", "members.csv line 2"),
        (Channel.EMAIL, True, "import", "members.csv line 3"),
    ]
    han = session.scalar(select(Member).where(Member.card_number == "C002"))
    record_consent(session, han.id, Channel.EMAIL, False, source="sms_reply", evidence="STOP")
    session.commit()
    run = import_file(session, "members", write(tmp_path, "members.csv", MEMBERS.format(store="BJ01")))
    assert (run.updated, run.unchanged) == (0, 3)
    session.expire_all()
    assert session.get(Member, han.id).email_consent is False
    # A file that withdraws consent given by an earlier import is applied, with evidence.
    withdrawn = MEMBERS.format(store="BJ01").replace("li@example.com,yes", "li@example.com,no")
    run = import_file(session, "members", write(tmp_path, "withdraw.csv", withdrawn))
    assert (run.updated, run.unchanged) == (1, 2)
    last = session.scalar(select(ConsentEvent).order_by(ConsentEvent.id.desc()))
    assert (last.channel, last.granted, last.evidence) == (Channel.SMS, False, "withdraw.csv line 2")


def test_dry_run_changes_no_data(session, store, tmp_path):
    path = write(tmp_path, "members.csv", MEMBERS.format(store="BJ01") + "BAD,,,,,,,,\n")
    run = import_file(session, "members", path, dry_run=True)
    assert (run.dry_run, run.inserted, run.failed) == (True, 3, 1)
    assert session.scalar(select(func.count()).select_from(Member)) == 0
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0
    stored = session.get(ImportRun, run.id)  # the report is kept so it can be reviewed and downloaded
    assert stored.dry_run and stored.failed == 1


def test_unusable_header_fails_the_run(session, store, tmp_path):
    run = import_file(session, "purchases", write(tmp_path, "p.csv", "foo,bar\n1,2\n"))
    assert run.status == ImportStatus.FAILED
    assert "missing required column" in run.message


def test_duplicate_members_are_flagged_never_merged(session, store, tmp_path):
    content = (
        "card_number,name,phone,email\n"
        "D1,Zhao Lei,13800000001,zl@example.com\n"
        "D2,Zhao Lei,13800000001,other@example.com\n"
        "D3,Lei Zhao,13800000003,ZL@example.com\n"
        "D4,Someone,13800000004,someone@example.com\n"
    )
    import_file(session, "members", write(tmp_path, "d.csv", content))
    groups = {(g.field, g.value): [card for _, card, _ in g.members] for g in duplicates(session)}
    assert groups == {("phone", "+8613800000001"): ["D1", "D2"], ("email", "zl@example.com"): ["D1", "D3"]}
    assert session.scalar(select(func.count()).select_from(Member)) == 4


def test_rows_remember_the_run_that_wrote_them(session, loaded, tmp_path):
    members_run, _, purchases_run = loaded
    member = session.scalar(select(Member).where(Member.card_number == "C001"))
    assert member.last_import_run_id == members_run.id
    purchase = session.scalar(select(Purchase).where(Purchase.external_line_id == "L1"))
    assert purchase.last_import_run_id == purchases_run.id
    again = import_file(session, "members", write(tmp_path, "members.csv", MEMBERS.format(store="BJ01")))
    session.expire_all()
    assert session.get(Member, member.id).last_import_run_id == members_run.id != again.id


def test_cli_prints_errors_writes_the_error_csv_and_exits_non_zero_when_nothing_imported(
    app, store, tmp_path
):
    from membership.importing.cli import import_cmd

    runner = app.test_cli_runner()
    good = write(tmp_path, "members.csv", MEMBERS.format(store="BJ01") + "X1,,,,,,,,\n")
    result = runner.invoke(import_cmd, ["members", good, "--store", "BJ01"])
    assert result.exit_code == 0, result.output
    assert "3 inserted" in result.output and "line 5: name: required" in result.output
    assert (
        (tmp_path / "members.errors.csv").read_text(encoding="utf-8-sig").startswith("line,column,reason,row")
    )
    bad = write(tmp_path, "bad.csv", "card_number,name\n,\n")
    result = runner.invoke(import_cmd, ["members", bad])
    assert result.exit_code == 1
    result = runner.invoke(import_cmd, ["members", good, "--store", "NOPE"])
    assert result.exit_code != 0 and "no store with code" in result.output


@pytest.mark.parametrize("lanes", [1, 2])
def test_postgresql_bulk_path_agrees_with_the_python_path(
    session, loaded, factory, tmp_path, monkeypatch, lanes
):
    """On PostgreSQL purchase files are checked in SQL; odd rows must come out exactly as in Python.

    The file is imported by the Python path, then again by the SQL path (on one connection, and on
    two, each staging the ids that hash to it): every row the first stored must be "unchanged"
    (same values), and both must report the same errors.
    """
    from itertools import cycle

    from membership.importing import bulk

    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the SQL path is PostgreSQL only")
    factory.store(code="NY01", region="US", timezone="America/New_York")  # a zone with DST
    session.commit()
    dates = [
        "2024-04-01 10:30", "2024-04-01", "2024-03-10 02:30", "2024-11-03 01:30", "2024-02-29 23:59:59",
        "2024/02/29 10:00", "2024/02/30", "2024/01-01", "2024-02-30", "2024-01-01 24:00",
        "2024-01-01 23:59:60", "2024-01-01T10:00", "2024/01/01",
        "2024-01-01 10:00:00.5", "20240101", "2024年1月2日", " 2024-01-01", "2024-01-01 10:00+02:00",
        "1999-12-31 23:00", "2100-12-31 23:00", "2999-01-01", "", "x",
    ]  # fmt: skip
    quantities = ["1", "", "2", "0", "01", "2.0", "2.5", "1000000", "1000001", " 3", "abc", "３", "٣"]
    amounts = [
        "9.90", "", "5", "5.555", "5.550", "1,000.00", "¥5", "9999999999.99", "99999999999", "-1", ".5",
        "１２",
    ]  # fmt: skip
    cards = ["C001", "C002", "NOBODY", " C001", "", "C\x01"]
    skus = ["TT-BALL", "TT-PADDLE", "NOPE", "", "TT-BALL "]
    stores = ["", "BJ01", "NY01", "XX", " BJ01", "NY01", "NY01"]  # 7, prime to the 23 dates: each meets each
    ids = ["L{}", "L{}", " L{} ", "行{}", "L{}" + "x" * 80, "", "L{}"]
    columns = zip(cycle(dates), cycle(quantities), cycle(amounts), cycle(cards), cycle(skus), cycle(stores))
    lines = ["line_id,card_number,sku,purchased_at,quantity,amount,store,note"]
    for i, (date, quantity, amount, card, sku, store_code) in zip(range(400), columns, strict=False):
        line_id = ids[i % len(ids)].format(i % 350)  # some ids repeat
        if i % 2:  # every other row is plain apart from its date and store
            quantity, amount, card, sku = str(1 + i % 3), f"{i}.50", ("C001", "C002")[i % 4 // 2], "TT-BALL"
        lines.append(f'{line_id},{card},{sku},"{date}",{quantity},"{amount}",{store_code},"a\tb"')
    path = write(tmp_path, "tricky.csv", "\n".join(lines) + "\n")

    def errors(run):
        stmt = select(ImportRowError).where(ImportRowError.run_id == run.id)
        stmt = stmt.order_by(ImportRowError.line, ImportRowError.id)
        return [(e.line, e.column, e.reason, e.raw) for e in session.scalars(stmt)]

    monkeypatch.setattr(bulk, "LANES", lanes)
    monkeypatch.setattr(bulk, "LANE_MIN_ROWS", 0)
    with monkeypatch.context() as patch:
        patch.setattr(bulk, "usable", lambda *args: False)
        python = import_file(session, "purchases", path, store_code="NY01")
    used = []
    monkeypatch.setattr(bulk.PurchaseBulk, "stage", recording(bulk.PurchaseBulk.stage, used))
    sql = import_file(session, "purchases", path, store_code="NY01")
    assert used, "the SQL path was not taken"
    assert python.inserted > 50 and python.failed > 50  # the file exercises both outcomes
    assert (sql.inserted, sql.updated, sql.unchanged, sql.failed) == (0, 0, python.imported, python.failed)
    assert errors(sql) == errors(python)
