"""Purchase imports on several connections: the lanes' threads, the bulk path's routing by line id,
the purchase indexes dropped for a large load and rebuilt, and the whole thing end to end."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import re
import threading
import time
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

import membership.importing.tokens  # noqa: F401 - the metadata must know every import table
from membership.catalog import Product
from membership.importing import bulk, indexes, lanes, reading, writing
from membership.importing.reading import CsvSource, Unreadable
from membership.importing.runs import ImportKind, ImportRowError, ImportRun, ImportStatus
from membership.importing.service import import_file
from membership.member import Member
from membership.purchase import Purchase
from tests.spies import recording

PURCHASES = Purchase.__table__
SECONDARY = ["ix_purchases_member_product", "ix_purchases_product_time", "ix_purchases_time"]
ALL_INDEXES = sorted(["pk_purchases", "uq_purchases_external_line_id", *SECONDARY])


def lane_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("import-lane-")}


def endless(width: int):
    """Groups of ``width`` items, forever: the lanes never get their end, only a cancellation."""
    for i in itertools.count():
        yield [(k, i) for k in range(width)]


def watching(seen: list, body=None):
    """A worker that records what its iterator raised (``Cancelled``, say) and re-raises it."""

    def worker(items):
        try:
            for item in items:
                if body is not None:
                    body(item)
                yield item
        except BaseException as exc:
            seen.append(type(exc))
            raise

    return worker


def run_guarded(*args, **kwargs) -> BaseException | None:
    """``run_lanes`` on a thread of its own, returning what it raised: a hang fails, not stalls, the test."""
    outcome: list = []

    def run():
        try:
            lanes.run_lanes(*args, **kwargs)
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    caller = threading.Thread(target=run, name="lanes-caller", daemon=True)
    caller.start()
    caller.join(timeout=10)
    assert not caller.is_alive(), "run_lanes hung"
    return outcome[0]


# -- run_lanes ---------------------------------------------------------------------------------------


def test_every_result_arrives_and_each_lane_keeps_its_order():
    received: list[list] = [[], [], []]
    results: list = []
    caller = threading.get_ident()
    threads_on_result: set[int] = set()

    def worker(k):
        def run(items):
            for item in items:
                received[k].append(item)
                if item[1] % 37 == 0:
                    time.sleep(0.001)  # lanes drift apart
                yield (k, item[1])

        return run

    def on_result(result):
        threads_on_result.add(threading.get_ident())
        results.append(result)

    groups = [[(k, i) for k in range(3)] for i in range(500)]
    before = lane_threads()
    lanes.run_lanes(iter(groups), [worker(k) for k in range(3)], on_result, depth=2)
    assert received == [[(k, i) for i in range(500)] for k in range(3)]
    assert sorted(results) == sorted((k, i) for k in range(3) for i in range(500))
    for k in range(3):  # each lane's results reach on_result in the order the lane produced them
        assert [i for lane, i in results if lane == k] == list(range(500))
    assert threads_on_result == {caller}
    assert lane_threads() - before == set()


def test_a_lane_that_fails_cancels_the_others_and_its_error_is_raised():
    seen: list = []

    def failing(items):
        for _k, i in items:
            if i == 3:
                raise ValueError("lane 0 broke")
            yield i

    before = lane_threads()
    error = run_guarded(endless(2), [failing, watching(seen)], lambda r: None, depth=2)
    assert isinstance(error, ValueError) and str(error) == "lane 0 broke"
    assert seen == [lanes.Cancelled]
    assert lane_threads() - before == set()  # every lane thread was joined before run_lanes returned


def test_an_error_reading_the_groups_cancels_every_lane():
    seen: list = []

    def groups():
        for i in range(10):
            yield [("a", i), ("b", i)]
        raise OSError("file vanished")

    before = lane_threads()
    error = run_guarded(groups(), [watching(seen), watching(seen)], lambda r: None)
    assert isinstance(error, OSError) and str(error) == "file vanished"
    assert seen == [lanes.Cancelled, lanes.Cancelled]
    assert lane_threads() - before == set()


def test_a_group_of_the_wrong_width_is_an_error_not_a_lost_item():
    seen: list = []
    before = lane_threads()
    error = run_guarded(iter([[1, 2], [3]]), [watching(seen), watching(seen)], lambda r: None)
    assert isinstance(error, ValueError)
    assert seen == [lanes.Cancelled, lanes.Cancelled]
    assert lane_threads() - before == set()


def test_an_error_in_on_result_propagates_and_cancels_the_lanes():
    seen: list = []
    handled: list = []

    def on_result(result):
        handled.append(result)
        if len(handled) == 5:
            raise KeyError("progress page gone")

    before = lane_threads()
    error = run_guarded(endless(2), [watching(seen), watching(seen)], on_result, depth=3)
    assert isinstance(error, KeyError) and error.args == ("progress page gone",)
    assert len(handled) == 5  # nothing is handed on after the failure
    assert seen == [lanes.Cancelled, lanes.Cancelled]
    assert lane_threads() - before == set()


def test_a_lane_failing_while_the_feeder_waits_on_its_full_inbox_does_not_deadlock():
    seen: list = []

    def slow_then_failing(items):
        next(items)
        time.sleep(0.2)  # meanwhile the feeder fills this lane's one-item inbox and waits on it
        raise RuntimeError("merge failed")
        yield  # a generator, like the real workers

    before = lane_threads()
    groups = iter([[("a", i), ("b", i)] for i in range(10_000)])
    error = run_guarded(groups, [slow_then_failing, watching(seen)], lambda r: None, depth=1)
    assert isinstance(error, RuntimeError) and str(error) == "merge failed"
    assert next(groups)[0][1] < 100  # the feeder stopped where it waited, not after reading everything
    assert seen == [lanes.Cancelled]
    assert lane_threads() - before == set()


def test_a_lane_that_returns_before_its_input_ends_is_an_error_not_a_hang():
    seen: list = []

    def quits_early(items):
        yield next(items)  # then returns, leaving the rest of its input unread

    before = lane_threads()
    groups = iter([[("a", i), ("b", i)] for i in range(1000)])
    error = run_guarded(groups, [quits_early, watching(seen)], lambda r: None, depth=1)
    assert isinstance(error, RuntimeError) and "stopped before its input ended" in str(error)
    assert seen == [lanes.Cancelled]
    assert lane_threads() - before == set()


# -- the bulk path: zones and routing ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "offset"),
    [
        ("Asia/Shanghai", dt.timedelta(hours=8)),
        ("UTC", dt.timedelta(0)),
        ("Asia/Kolkata", dt.timedelta(hours=5, minutes=30)),
        ("America/New_York", None),  # daylight saving time
        ("Africa/Casablanca", None),  # the clock moves back for Ramadan
        ("Not/AZone", None),
        ("", None),
    ],
)
def test_fixed_offset(zone, offset):
    assert bulk.fixed_offset(zone) == offset


class _Writer:
    def __init__(self):
        self.resolving = False

    def resolve_in_stage(self):
        self.resolving = True


def _encoder() -> bulk.PurchaseBulk:
    # The file's columns in an order unlike COLUMNS, without a store column.
    header = ["card_number", "line_id", "sku", "purchased_at", "amount", "quantity", "note"]
    writer = _Writer()
    encoder = bulk.PurchaseBulk(
        None, None, writer, {key: i for i, key in enumerate(header) if key != "note"}, ",", len(header)
    )
    assert writer.resolving
    return encoder


def _lines(block: bulk.Block) -> list[list[str]]:
    return [line.split("\t") for line in block.text.splitlines()]


def test_encode_sends_every_line_of_an_id_to_the_same_lane_in_file_order(monkeypatch):
    monkeypatch.setattr(bulk, "BLOCK_ROWS", 7)
    rows: list[tuple[int, list[str] | Unreadable]] = []
    line = 1
    for i in range(60):
        for line_id in (f"L{i}", f" L{i} ", f"L{i}\t"):  # one id, spelled with and without spaces
            line += 1
            rows.append((line, ["C001", line_id, "TT-BALL", "2024-04-01", "9.90", str(i % 3 + 1), "x"]))
    rows.insert(10, (999, Unreadable("bad quoting")))
    rows.insert(20, (1000, ["C001", "L0", "TT-BALL", "2024-04-01\x00", "1"]))  # NUL: held for Python

    groups = list(_encoder().encode(iter(rows), lanes=2))
    assert all(len(group) == 2 for group in groups)
    assert [sum(b.read for b in group) for group in groups][:-1] == [7] * (len(groups) - 1)
    assert sum(b.read for group in groups for b in group) == len(rows)

    lane_of: dict[int, int] = {}
    order: list[list[int]] = [[], []]
    for group in groups:
        for k, block in enumerate(group):
            copied = _lines(block)
            assert block.read == len(copied) + len(block.held) + len(block.errors)
            for cells in copied:
                lane_of[int(cells[0])] = k
                order[k].append(int(cells[0]))
            for held_line, _values in block.held:
                lane_of[held_line] = k
            assert [e.line for e in block.errors] == ([999] if block.errors else [])
            assert k == 0 or not block.errors  # unreadable rows have no id: lane 0 reports them
    assert sorted(lane_of) == sorted(n for n, values in rows if not isinstance(values, Unreadable))
    for k in range(2):
        assert order[k] == sorted(order[k], key=[n for n, _ in rows].index)  # in file order
    by_id: dict[str, set[int]] = {}
    for n, values in rows:
        if not isinstance(values, Unreadable):
            by_id.setdefault(values[1].strip(), set()).add(lane_of[n])
    assert all(len(used) == 1 for used in by_id.values()), "an id was split over lanes"
    assert {lane for used in by_id.values() for lane in used} == {0, 1}  # both lanes get work
    assert lane_of[1000] == next(iter(by_id["L0"]))


def test_encode_writes_the_cells_in_file_order_and_escapes_copy_text():
    rows = [
        (2, ["C001", "L1", "TT-BALL", "2024-04-01 10:30", "9.90", "2", "plain"]),
        (3, ["C002", "L2", "TT-PADDLE", "2024-04-02", "1", "1", "tab\there"]),
        (4, ["C003", "L3"]),  # a short row: the missing cells are ""
        (5, "C004,L4,TT-BALL,2024-04-03,1,1,as it stands"),  # a line CSV parsing would only split
        (6, ["C005", "L5", "TT-BALL", "2024-04-04", "1", "1", "x", "", " "]),  # blank extra values
    ]
    [group] = list(_encoder().encode(iter(rows), lanes=1))
    [block] = group
    assert block.read == 5 and not block.errors and not block.held
    assert block.text.splitlines() == [
        # line, plain, card_number, line_id, sku, purchased_at, amount, quantity, note, raw
        "2\tt\tC001\tL1\tTT-BALL\t2024-04-01 10:30\t9.90\t2\tplain\t\\N",
        # a tab in any cell, even one no key maps, leaves the row to Python (the pattern sees tabs)
        "3\tf\tC002\tL2\tTT-PADDLE\t2024-04-02\t1\t1\ttab\\there\t\\N",
        "4\tf\tC003\tL3\t\t\t\t\t\tC003,L3",  # no sku: Python reports it; raw as it was
        "5\tt\tC004\tL4\tTT-BALL\t2024-04-03\t1\t1\tas it stands\t\\N",
        "6\tt\tC005\tL5\tTT-BALL\t2024-04-04\t1\t1\tx\tC005,L5,TT-BALL,2024-04-04,1,1,x,, ",
    ]


_ODD_CELLS = st.sampled_from(
    [" L1", "L3 ", "", "x y", "a\\b", "a\tb", "会员", "\x00", "2024-02-30", "1,5", "L1"]
)
# Plain rows (card_number, line_id, sku, purchased_at, amount, quantity, note), one id in several
# rows, and now and then an odd cell, a missing one or one too many.
_ROW = st.tuples(
    st.integers(0, 12).map(lambda i: f"L{i}"),
    st.sampled_from(["2024-04-01", "2024/04/01 10:30", "2025-12-31T23:59:59"]),
    st.lists(st.tuples(st.integers(0, 7), _ODD_CELLS), max_size=1),
    st.sampled_from([7, 7, 7, 6, 8]),
).map(
    lambda t: [
        *[
            dict(t[2]).get(i, cell)
            for i, cell in enumerate(["C001", t[0], "TT-BALL", t[1], "9.90", "2", "note"])
        ],
        "extra",
    ][: t[3]]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(_ROW, max_size=40),
    delimiter=st.sampled_from([",", "\t", ";"]),
    lanes=st.sampled_from([1, 2, 3]),
    block=st.sampled_from([5, 64, 300, 100_000]),
)
def test_encode_stages_whole_blocks_as_it_stages_their_lines_one_by_one(rows, delimiter, lanes, block):
    """``Lines`` taken whole give exactly the COPY text, ids and counts their lines give one by one."""
    _encoded_both_ways(rows, delimiter, lanes, block)


def test_a_clean_block_is_staged_whole():
    rows = [["C001", f"L{i}", "TT-BALL", "2024-04-01", "9.90", "2", "note"] for i in range(50)]
    for count in (1, 2):
        assert _encoded_both_ways(rows, ",", count, 100_000) == [True]
    assert _encoded_both_ways(
        [*rows, ["C001", " L1", "TT-BALL", "2024-04-01", "9.90", "2", "n"]], ",", 2, 100_000
    ) == [False]


def test_a_field_past_the_csv_limit_is_unreadable_in_a_block_too():
    """A huge cell in a column no key maps: the CSV parser refuses the row, so the block is split."""
    rows = [["C001", f"L{i}", "TT-BALL", "2024-04-01", "9.90", "2", "n"] for i in range(3)]
    rows[1][6] = "x" * (csv.field_size_limit() + 1)
    assert not all(_encoded_both_ways(rows, ",", 1, 1 << 20))
    rows[1][6] = "x" * csv.field_size_limit()
    assert all(_encoded_both_ways(rows, ",", 1, 1 << 20))


def _encoded_both_ways(rows: list[list[str]], delimiter: str, lanes: int, block: int) -> list[bool]:
    """Encode ``rows`` as a file both ways, assert the same outcome; whether each Lines was whole."""
    header = ["card_number", "line_id", "sku", "purchased_at", "amount", "quantity", "note"]
    text = (
        delimiter.join(header)
        + "\n"
        + "".join(delimiter.join(cell for cell in row if delimiter not in cell) + "\n" for row in rows)
    )
    whole: list[tuple] = []
    positions = {key: i for i, key in enumerate(header) if key != "note"}

    def encoded(at_once: bool):
        source = CsvSource(io.BytesIO(text.encode()), "utf-8")
        assert source.delimiter == delimiter
        items = source.lines()
        if not at_once:
            items = (
                one
                for line, item in items
                for one in (source.split(line, item) if isinstance(item, reading.Lines) else [(line, item)])
            )
        encoder = bulk.PurchaseBulk(None, None, _Writer(), positions, delimiter, len(header))
        take_whole = encoder._whole
        encoder._whole = lambda first, lines: whole.append(took := take_whole(first, lines)) or took
        blocks = [block for group in encoder.encode(items, lanes, source.split) for block in group]
        return [(b.read, b.text, b.ids, b.errors, b.held, b.repeats) for b in blocks]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reading, "BLOCK_BYTES", block)
        assert encoded(at_once=True) == encoded(at_once=False)
    return [took is not None for took in whole]


# -- purchase indexes (PostgreSQL) -------------------------------------------------------------------


def postgres_only(session):
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the purchase indexes are dropped for loads on PostgreSQL only")


def present(session) -> list[str]:
    session.commit()
    return sorted(
        session.scalars(
            text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = :t"),
            {"t": "purchases"},
        )
    )


@pytest.fixture
def pg_indexes(session):
    """PostgreSQL only; whatever a test drops is rebuilt, as the database is shared by all tests."""
    postgres_only(session)
    assert present(session) == ALL_INDEXES
    yield
    session.rollback()
    indexes.rebuild(session, PURCHASES)
    assert present(session) == ALL_INDEXES


def test_secondary_indexes_leave_the_unique_ones_alone():
    assert [ix.name for ix in indexes.secondary_indexes(PURCHASES)] == SECONDARY


def test_drop_for_load_only_for_loads_larger_than_the_table(session, pg_indexes, monkeypatch):
    monkeypatch.setattr(indexes, "MIN_ROWS", 10)
    assert indexes.drop_for_load(session, PURCHASES, 9) == []  # too small to bother
    assert present(session) == ALL_INDEXES
    session.execute(
        text(
            "INSERT INTO purchases (external_line_id, member_id, product_id, purchased_at, quantity, amount) "
            "SELECT 'X' || g, 1, 1, now(), 1, 0 FROM generate_series(1, 20) g"
        )
    )
    session.commit()
    session.execute(text("ANALYZE purchases"))
    session.commit()
    assert indexes.drop_for_load(session, PURCHASES, 20) == []  # no larger than the table
    assert present(session) == ALL_INDEXES

    dropped = indexes.drop_for_load(session, PURCHASES, 21)
    assert [ix.name for ix in dropped] == SECONDARY
    assert present(session) == ["pk_purchases", "uq_purchases_external_line_id"]
    assert indexes.drop_for_load(session, PURCHASES, 21) == []  # nothing left to drop
    assert indexes.rebuild(session, PURCHASES, dropped) == SECONDARY
    assert present(session) == ALL_INDEXES
    assert indexes.rebuild(session, PURCHASES, dropped) == []


def test_repair_waits_for_a_running_load(session, pg_indexes):
    session.execute(text("DROP INDEX ix_purchases_time"))
    session.commit()
    with indexes.loading(session, ImportKind.PURCHASES), indexes.loading(session, ImportKind.PURCHASES):
        # Two loads of a kind may run at once; while either does, what is missing may be theirs.
        assert indexes.repair(session, ImportKind.PURCHASES, PURCHASES) == []
        assert "ix_purchases_time" not in present(session)
        with indexes.loading(session, ImportKind.MEMBERS):
            pass  # a load of another kind takes its own lock
    assert indexes.repair(session, ImportKind.PURCHASES, PURCHASES) == ["ix_purchases_time"]
    assert present(session) == ALL_INDEXES


def test_repair_after_a_finished_load(session, pg_indexes):
    for name in SECONDARY[:2]:
        session.execute(text(f'DROP INDEX "{name}"'))
    session.commit()
    done = ImportRun(kind=ImportKind.PURCHASES, file_name="x.csv")
    done.finish()
    session.add(done)
    session.commit()
    assert indexes.repair(session, ImportKind.PURCHASES, PURCHASES) == SECONDARY[:2]
    assert present(session) == ALL_INDEXES
    assert indexes.repair(session, ImportKind.PURCHASES, PURCHASES) == []


def _rebuilt_with_settings(session, table, names: list[str]) -> dict[str, tuple[str, str]]:
    """Drop ``names``, rebuild ``table``'s indexes; the (workers, memory) each CREATE INDEX ran with."""
    from sqlalchemy import event

    seen = {}

    def settings_at_build(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("CREATE INDEX"):
            show = conn.connection.dbapi_connection.execute
            name = next(n for n in names if n in statement)
            seen[name] = (
                show("SHOW max_parallel_maintenance_workers").fetchone()[0],
                show("SHOW maintenance_work_mem").fetchone()[0],
            )

    for name in names:
        session.execute(text(f'DROP INDEX "{name}"'))
    session.commit()
    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", settings_at_build)
    try:
        assert indexes.rebuild(session, table) == sorted(names)
    finally:
        event.remove(engine, "before_cursor_execute", settings_at_build)
    assert session.scalar(text("SHOW max_parallel_maintenance_workers")) != "0"  # set for the builds only
    return seen


def test_each_rebuild_runs_with_its_memory_and_without_parallel_workers(session, pg_indexes):
    """The builds run side by side, one per core: a build's own parallel workers would compete."""
    seen = _rebuilt_with_settings(session, PURCHASES, SECONDARY)
    assert seen == {name: ("0", indexes.BUILD_MEMORY) for name in SECONDARY}


def test_a_gin_rebuild_keeps_a_parallel_worker(session, pg_indexes):
    """The members' GIN builds (trigram search, interests) outlast their B-trees by far: they get
    a worker, and the B-trees none."""
    gin = ["ix_members_interests", "ix_members_search"]
    seen = _rebuilt_with_settings(session, Member.__table__, ["ix_members_email", *gin, "ix_members_phone"])
    assert seen == {
        "ix_members_email": ("0", indexes.BUILD_MEMORY),
        "ix_members_interests": (str(indexes.GIN_BUILD_WORKERS), indexes.BUILD_MEMORY),
        "ix_members_phone": ("0", indexes.BUILD_MEMORY),
        "ix_members_search": (str(indexes.GIN_BUILD_WORKERS), indexes.BUILD_MEMORY),
    }
    assert indexes.GIN_BUILD_WORKERS > 0


# -- end to end on PostgreSQL ------------------------------------------------------------------------

MEMBERS = "card_number,name\nC001,Li Lei\nC002,Han Meimei\nC003,Wang Fang\n"
PRODUCTS = "sku,name,category,price\nTT-PADDLE,Paddle,tt-paddle,299.00\nTT-BALL,Balls,tt-ball,9.90\n"
CARDS, SKUS = ["C001", "C002", "C003"], ["TT-PADDLE", "TT-BALL"]


def purchase_line(i: int, amount: str | None = None) -> str:
    card, sku = CARDS[i % 3], SKUS[i % 2]
    return f"L{i},{card},{sku},2024-04-{1 + i % 28:02d} {i % 24:02d}:15,{1 + i % 4},{amount or f'{i}.50'}\n"


HEADER = "line_id,card_number,sku,purchased_at,quantity,amount\n"
BAD = ["LX1,NOBODY,TT-BALL,2024-04-01,1,1.00\n", "LX2,C001,TT-BALL,2024-04-01,lots,1.00\n"]


def write(tmp_path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return str(path)


def stored(session) -> dict[str, tuple]:
    session.expire_all()
    rows = session.execute(
        select(
            Purchase.external_line_id,
            Member.card_number,
            Product.sku,
            Purchase.store_id,
            Purchase.purchased_at,
            Purchase.quantity,
            Purchase.amount,
        )
        .join(Member, Member.id == Purchase.member_id)
        .join(Product, Product.id == Purchase.product_id)
    )
    return {row[0]: tuple(row[1:]) for row in rows}


def expected(store_id: int, lines: list[str]) -> dict[str, tuple]:
    """What the file's lines should store: Shanghai local times as UTC, amounts as decimals."""
    rows = {}
    for line in lines:
        line_id, card, sku, at, quantity, amount = line.strip().split(",")
        utc = dt.datetime.strptime(at, "%Y-%m-%d %H:%M") - dt.timedelta(hours=8)
        rows[line_id] = (card, sku, store_id, utc, int(quantity), Decimal(amount))
    return rows


class SmallBatches(bulk.PurchaseBulk):
    """Three rows a batch: PurchaseBulk takes its batch size as a default argument, bound at import."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "batch_rows": 3})


@pytest.fixture
def two_lanes(session, pg_indexes, factory, tmp_path, monkeypatch):
    """A store, members and products; any purchase file takes the two-lane path and drops the indexes."""
    store = factory.store(code="BJ01", region="CN", timezone="Asia/Shanghai")
    session.commit()
    assert import_file(session, "members", write(tmp_path, "m.csv", MEMBERS)).inserted == 3
    assert import_file(session, "products", write(tmp_path, "p.csv", PRODUCTS)).inserted == 2
    monkeypatch.setattr(bulk, "LANE_MIN_ROWS", 0)
    monkeypatch.setattr(bulk, "LANES", 2)
    monkeypatch.setattr(indexes, "MIN_ROWS", 0)
    calls = {"dropped": [], "stage": set(), "upserts": []}
    drop, stage, upsert = indexes.drop_for_load, bulk.PurchaseBulk.stage, writing.Writer._upsert

    def spy_drop(*args, **kwargs):
        dropped = drop(*args, **kwargs)
        calls["dropped"].append([ix.name for ix in dropped])
        return dropped

    def spy_stage(self, blocks):
        calls["stage"].add(threading.current_thread().name)
        return stage(self, blocks)

    def spy_upsert(self, *args, merge=True):
        outcome = "merge" if merge else "insert"
        try:
            return upsert(self, *args, merge=merge)
        except IntegrityError:
            outcome = "insert refused"
            raise
        finally:
            calls["upserts"].append((threading.current_thread().name, outcome))

    monkeypatch.setattr(indexes, "drop_for_load", spy_drop)
    monkeypatch.setattr(bulk.PurchaseBulk, "stage", spy_stage)
    monkeypatch.setattr(writing.Writer, "_upsert", spy_upsert)
    calls["store_id"] = store.id
    return calls


def test_two_lanes_with_indexes_dropped_store_the_file_exactly(session, two_lanes, tmp_path):
    good = [purchase_line(i) for i in range(1, 31)]
    path = write(tmp_path, "purchases.csv", HEADER + "".join(good[:12] + BAD + good[12:]))
    run = import_file(session, "purchases", path, store_code="BJ01")
    assert (run.status, run.rows_read, run.inserted, run.updated, run.failed) == (
        ImportStatus.PARTIAL,
        32,
        30,
        0,
        2,
    )
    assert two_lanes["stage"] == {"import-lane-0", "import-lane-1"}  # both lanes staged rows
    assert two_lanes["dropped"] == [SECONDARY]
    assert present(session) == ALL_INDEXES  # rebuilt
    assert stored(session) == expected(two_lanes["store_id"], good)

    two_lanes["stage"].clear()
    again = import_file(session, "purchases", path, store_code="BJ01")
    assert (again.inserted, again.updated, again.unchanged, again.failed) == (0, 0, 30, 2)
    assert two_lanes["stage"] == {"import-lane-0", "import-lane-1"}
    assert present(session) == ALL_INDEXES
    assert stored(session) == expected(two_lanes["store_id"], good)
    assert not lane_threads()


def test_lane_batches_commit_without_waiting_for_the_disk_and_the_run_count_waits(
    session, two_lanes, tmp_path, monkeypatch
):
    # A lane's commit does not wait for its WAL to be flushed; the run's progress commit that counts
    # the batch waits, and flushes the batch with it. Were the count asynchronous too, a crash could
    # lose rows the run says it stored.
    from membership.importing import service

    settings = {"lane": set(), "run": set()}
    merge, count = writing.PurchaseWriter.merge, service._Batch._count

    def spy_merge(self, staged):
        settings["lane"].add(self.session.execute(text("SHOW synchronous_commit")).scalar_one())
        return merge(self, staged)

    def spy_count(self, tally):
        settings["run"].add(self.session.execute(text("SHOW synchronous_commit")).scalar_one())
        return count(self, tally)

    monkeypatch.setattr(writing.PurchaseWriter, "merge", spy_merge)
    monkeypatch.setattr(service._Batch, "_count", spy_count)
    path = write(tmp_path, "purchases.csv", HEADER + "".join(purchase_line(i) for i in range(1, 11)))
    assert import_file(session, "purchases", path, store_code="BJ01").inserted == 10
    assert settings == {"lane": {"off"}, "run": {"on"}}


def test_batches_insert_plainly_until_one_meets_a_stored_line(session, two_lanes, tmp_path, monkeypatch):
    first = [purchase_line(i) for i in range(1, 11)]
    run = import_file(session, "purchases", write(tmp_path, "day1.csv", HEADER + "".join(first)))
    assert (run.inserted, run.failed) == (10, 0)
    assert {outcome for _, outcome in two_lanes["upserts"]} == {"insert"}  # no merge on a first load

    monkeypatch.setattr(bulk, "PurchaseBulk", SmallBatches)
    monkeypatch.setattr(bulk, "BATCH_ROWS", 3)
    monkeypatch.setattr(bulk, "BLOCK_ROWS", 1)  # a block per row, so a lane's batches hold 3 rows
    two_lanes["upserts"].clear()
    new = [purchase_line(i) for i in range(11, 31)]
    changed = purchase_line(5, amount="123.45")
    second = [*new[:14], changed, first[6], *new[14:]]  # L5 amended, L7 the same as before
    run = import_file(session, "purchases", write(tmp_path, "day2.csv", HEADER + "".join(second)))
    assert (run.rows_read, run.inserted, run.updated, run.unchanged, run.failed) == (22, 20, 1, 1, 0)
    # Per lane: plain INSERTs until a batch meets L5 or L7, that batch's INSERT refused and the batch
    # merged, then only merges.
    upserts = two_lanes["upserts"]
    outcomes = {
        lane: " ".join(outcome for name, outcome in upserts if name == lane)
        for lane in ("import-lane-0", "import-lane-1")
    }
    for sequence in outcomes.values():
        assert re.fullmatch(r"(insert ?)*(insert refused merge( merge)*)?", sequence), sequence
    batches = sum(outcome != "insert refused" for _, outcome in upserts)
    assert batches >= 8  # 22 rows, three a batch
    refused = sum(outcome == "insert refused" for _, outcome in upserts)
    assert 1 <= refused <= 2  # once in each lane that met a stored line
    assert "insert" in " ".join(outcomes.values()).replace("insert refused", "")
    assert present(session) == ALL_INDEXES

    assert stored(session) == expected(two_lanes["store_id"], [changed, *first[:4], *first[5:], *new])
    assert session.scalar(select(Purchase.amount).where(Purchase.external_line_id == "L5")) == Decimal(
        "123.45"
    )


def test_a_repeated_line_is_found_across_the_blocks_of_a_batch_and_only_there(
    session, two_lanes, tmp_path, monkeypatch
):
    """Batches whose file lines repeat no id skip the stage's repeat check; the others keep it."""
    monkeypatch.setattr(bulk, "LANES", 1)
    monkeypatch.setattr(bulk, "PurchaseBulk", SmallBatches)
    monkeypatch.setattr(bulk, "BLOCK_ROWS", 1)  # a block per row: the repeat is two blocks apart
    checks = []
    monkeypatch.setattr(
        bulk.PurchaseBulk, "_drop_repeats", recording(bulk.PurchaseBulk._drop_repeats, checks)
    )
    lines = [
        purchase_line(1),
        purchase_line(2),
        " " + purchase_line(1, amount="7.00"),  # the same id once trimmed: refused, line 2 wins
        purchase_line(3),
        purchase_line(4),
        purchase_line(1, amount="8.00"),  # a later batch: a correction
        purchase_line(5),
        purchase_line(6),
        purchase_line(7),
    ]
    run = import_file(session, "purchases", write(tmp_path, "repeats.csv", HEADER + "".join(lines)))
    assert (run.rows_read, run.inserted, run.updated, run.failed) == (9, 7, 1, 1)
    error = session.scalar(select(ImportRowError).where(ImportRowError.run_id == run.id))
    assert (error.line, error.column, error.reason) == (4, "line_id", "repeats line 2")
    assert session.scalar(select(Purchase.amount).where(Purchase.external_line_id == "L1")) == Decimal("8.00")
    assert len(checks) == 1  # three batches, one with a repeated id


def test_a_lanes_first_batches_ramp_up_to_the_batch_size(session, two_lanes, tmp_path, monkeypatch):
    """Small first batches let the database start while Python still encodes; then full ones."""
    monkeypatch.setattr(bulk, "LANES", 1)
    monkeypatch.setattr(bulk, "FIRST_BATCH_ROWS", 2)
    monkeypatch.setattr(bulk, "BLOCK_ROWS", 1)

    class EightRows(bulk.PurchaseBulk):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "batch_rows": 8})

    monkeypatch.setattr(bulk, "PurchaseBulk", EightRows)
    sizes = []
    stage = EightRows.stage

    def spy_stage(self, blocks):
        staged = stage(self, blocks)
        if staged is not None:
            sizes.append(staged.read)
        return staged

    monkeypatch.setattr(EightRows, "stage", spy_stage)
    path = write(tmp_path, "ramp.csv", HEADER + "".join(purchase_line(i) for i in range(1, 31)))
    run = import_file(session, "purchases", path)
    assert (run.inserted, run.failed) == (30, 0)
    assert sizes == [2, 4, 8, 8, 8]


def test_encode_marks_the_blocks_whose_rows_repeat_an_id():
    rows = [
        (2, ["C001", "L1", "TT-BALL", "2024-04-01", "9.90", "1", ""]),
        (3, Unreadable("bad quoting")),
        (4, ["C001", "L2", "TT-BALL", "2024-04-01", "9.90", "1", ""]),
        (5, ["C001", " L1", "TT-BALL", "2024-04-01", "9.90", "1", ""]),
        (6, ["C001", "L3", "TT-BALL", "2024-04-01\x00", "9.90", "1", ""]),  # held, still counted
    ]
    [[first]] = list(_encoder().encode(iter(rows[:3]), lanes=1))
    assert (first.ids, first.repeats) == ({hash("L1"), hash("L2")}, False)
    [[block]] = list(_encoder().encode(iter(rows), lanes=1))
    assert (block.ids, block.repeats, len(block.held)) == ({hash("L1"), hash("L2"), hash("L3")}, True, 1)


def test_a_lane_failing_mid_import_fails_the_run_and_keeps_the_indexes(
    session, two_lanes, tmp_path, monkeypatch
):
    monkeypatch.setattr(bulk, "PurchaseBulk", SmallBatches)
    monkeypatch.setattr(bulk, "BLOCK_ROWS", 1)
    merges = itertools.count(1)
    merge = writing.PurchaseWriter.merge

    def failing_merge(self, staged):
        if next(merges) == 2:
            raise RuntimeError("disk full")
        return merge(self, staged)

    monkeypatch.setattr(writing.PurchaseWriter, "merge", failing_merge)
    path = write(tmp_path, "purchases.csv", HEADER + "".join(purchase_line(i) for i in range(1, 41)))
    with pytest.raises(RuntimeError, match="disk full"):
        import_file(session, "purchases", path, store_code="BJ01")
    session.expire_all()
    run = session.scalars(select(ImportRun).where(ImportRun.kind == ImportKind.PURCHASES)).one()
    assert run.status == ImportStatus.FAILED
    assert run.message == "stopped by RuntimeError: disk full"
    assert run.finished_at is not None
    assert two_lanes["dropped"] == [SECONDARY]
    assert present(session) == ALL_INDEXES
    assert not lane_threads()
    assert len(stored(session)) < 40
