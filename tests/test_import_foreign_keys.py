"""Members loads on PostgreSQL drop the foreign keys of members and consent events with the indexes
and restore them (NOT VALID, then VALIDATE) after; a key someone broke meanwhile stays NOT VALID,
still enforced, until a later repair validates it."""

from __future__ import annotations

import itertools
import logging
import time
from types import SimpleNamespace

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

import membership.importing.tokens  # noqa: F401 - the metadata must know every import table
from membership.importing import foreign_keys, indexes, writing
from membership.importing.runs import ImportKind, ImportRun, ImportStatus
from membership.importing.service import import_file
from membership.member import Channel, ConsentEvent, Member

MEMBERS = Member.__table__
TABLES = (Member.__table__, ConsentEvent.__table__)
CONSENT_KEY = "fk_consent_events_member_id_members"
KEYS = sorted(
    [
        CONSENT_KEY,
        "fk_members_home_store_id_stores",
        "fk_members_household_id_households",
        "fk_members_last_import_run_id_import_runs",
    ]
)
ALL_VALID = dict.fromkeys(KEYS, True)
ORPHAN = 2_000_000_000  # no member has this id
FK_LOG = "membership.importing.foreign_keys"


def members_csv(count: int, store: str = "BJ01") -> str:
    """``count`` members of ``store``: every other one says yes to SMS, every third to e-mail."""
    lines = ["card_number,name,sms_consent,email_consent,store\n"]
    for i in range(1, count + 1):
        sms = "yes" if i % 2 else "no"
        email = "yes" if i % 3 == 0 else "no"
        lines.append(f"C{i:04d},Member {i},{sms},{email},{store}\n")
    return "".join(lines)


def consents_stated(count: int) -> int:
    return sum(1 for i in range(1, count + 1) if i % 2) + sum(1 for i in range(1, count + 1) if i % 3 == 0)


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def postgres_only(session):
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("foreign keys are dropped for loads on PostgreSQL only (SQLite: see the SQLite test)")


def key_state(bind) -> dict[str, bool]:
    """The foreign keys of members and consent events in the database, name → validated, read on
    a connection of its own (what every other session sees)."""
    with bind.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.conname, c.convalidated FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
                "WHERE c.contype = 'f' AND t.relnamespace = current_schema()::regnamespace "
                "AND t.relname IN ('members', 'consent_events')"
            )
        )
        return {name: valid for name, valid in rows}


def member_indexes(bind) -> set[str]:
    with bind.connect() as conn:
        return set(
            conn.scalars(
                text(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'members'"
                )
            )
        )


def remove_orphans(bind) -> None:
    """Whatever breaks one of the four keys, gone (the database is shared by every test)."""
    with bind.begin() as conn:
        conn.execute(
            text(
                "DELETE FROM consent_events c WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.id = c.member_id)"
            )
        )
        for column, table in (
            ("home_store_id", "stores"),
            ("household_id", "households"),
            ("last_import_run_id", "import_runs"),
        ):
            conn.execute(
                text(
                    f"UPDATE members SET {column} = NULL WHERE {column} IS NOT NULL "
                    f"AND NOT EXISTS (SELECT 1 FROM {table} r WHERE r.id = members.{column})"
                )
            )


@pytest.fixture
def pg_keys(session):
    """PostgreSQL only; whatever a test drops is restored and validated in teardown, orphans first."""
    postgres_only(session)
    bind = session.get_bind()
    assert key_state(bind) == ALL_VALID
    indexes_before = member_indexes(bind)
    yield bind
    session.rollback()
    remove_orphans(bind)
    foreign_keys.restore(session, TABLES)
    indexes.rebuild(session, MEMBERS)
    session.commit()
    assert key_state(bind) == ALL_VALID
    assert member_indexes(bind) == indexes_before


@pytest.fixture
def store(session, factory):
    store = factory.store(code="BJ01", region="CN", timezone="Asia/Shanghai")
    session.commit()
    return store


@pytest.fixture
def merges(monkeypatch, session):
    """Spies on MemberWriter.merge: per call, the keys every other session sees at that moment.

    ``merges.before`` (a callable or None) runs first on each call with the call's number.
    """

    spy = SimpleNamespace(seen=[], before=None)
    count = itertools.count(1)
    merge = writing.MemberWriter.merge

    def spying(self, staged):
        n = next(count)
        spy.seen.append(key_state(session.get_bind()))
        if spy.before is not None:
            spy.before(n)
        return merge(self, staged)

    monkeypatch.setattr(writing.MemberWriter, "merge", spying)
    return spy


def consent_events(session) -> list[tuple[str, str, bool]]:
    session.expire_all()
    rows = session.execute(
        select(Member.card_number, ConsentEvent.channel, ConsentEvent.granted)
        .join(Member, Member.id == ConsentEvent.member_id)
        .order_by(Member.card_number, ConsentEvent.channel)
    )
    return [(card, str(channel), granted) for card, channel, granted in rows]


def expected_events(count: int) -> list[tuple[str, str, bool]]:
    events = []
    for i in range(1, count + 1):
        if i % 3 == 0:
            events.append((f"C{i:04d}", "email", True))
        if i % 2:
            events.append((f"C{i:04d}", "sms", True))
    return sorted(events)


# -- SQLite: nothing to drop ----------------------------------------------------------------------------


def test_sqlite_initial_load_keeps_its_keys_and_restore_is_a_no_op(session, store, tmp_path, monkeypatch):
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("the SQLite side of initial loads")
    monkeypatch.setattr(indexes, "MIN_ROWS", 0)
    run = import_file(session, "members", write(tmp_path, "m.csv", members_csv(6)))
    assert (run.status, run.inserted, run.failed) == (ImportStatus.SUCCEEDED, 6, 0)
    assert consent_events(session) == expected_events(6)
    assert foreign_keys.restore(session, TABLES) == []
    assert indexes.repair(session, ImportKind.MEMBERS, MEMBERS, TABLES) == []
    # SQLite still checks the key (PRAGMA foreign_keys=ON): nothing was turned off.
    with pytest.raises(IntegrityError):
        session.execute(
            insert(ConsentEvent).values(member_id=ORPHAN, channel=Channel.SMS, granted=True, source="web")
        )
        session.flush()
    session.rollback()


# -- the model's keys ----------------------------------------------------------------------------------


def test_the_model_names_the_four_keys_checked_on_a_members_load():
    assert [fk.name for fk in foreign_keys.foreign_keys(TABLES)] == KEYS


# -- PostgreSQL: initial loads --------------------------------------------------------------------------


def test_an_initial_load_drops_the_keys_and_restores_them_valid(
    session, pg_keys, store, merges, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(indexes, "MIN_ROWS", 0)
    caplog.set_level(logging.INFO, logger=FK_LOG)
    run = import_file(session, "members", write(tmp_path, "m.csv", members_csv(9)), chunk_rows=4)
    assert (run.status, run.rows_read, run.inserted, run.failed) == (ImportStatus.SUCCEEDED, 9, 9, 0)
    assert len(merges.seen) == 3  # three chunks, every one merged with the keys off
    for seen in merges.seen:
        assert set(seen) & set(KEYS) == set(), seen
    assert key_state(pg_keys) == ALL_VALID
    assert not [r for r in caplog.records if r.name == FK_LOG and r.levelno >= logging.ERROR]

    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Member)) == 9
    assert set(session.scalars(select(Member.home_store_id))) == {store.id}
    assert set(session.scalars(select(Member.last_import_run_id))) == {run.id}
    assert consent_events(session) == expected_events(9)
    assert len(consent_events(session)) == consents_stated(9)

    # The restored keys are enforced again.
    with pytest.raises(IntegrityError):
        session.execute(
            insert(ConsentEvent).values(member_id=ORPHAN, channel=Channel.SMS, granted=True, source="web")
        )
    session.rollback()


def test_a_load_that_is_not_initial_keeps_the_keys(session, pg_keys, store, merges, tmp_path):
    # Default MIN_ROWS: a 5-line file is too small to bother.
    run = import_file(session, "members", write(tmp_path, "m.csv", members_csv(5)))
    assert run.status == ImportStatus.SUCCEEDED
    assert merges.seen == [ALL_VALID]
    assert key_state(pg_keys) == ALL_VALID


def test_a_load_failing_mid_way_still_restores_every_key(
    session, pg_keys, store, merges, tmp_path, monkeypatch
):
    monkeypatch.setattr(indexes, "MIN_ROWS", 0)

    def fail_second(n):
        if n == 2:
            raise RuntimeError("disk full")

    merges.before = fail_second
    path = write(tmp_path, "m.csv", members_csv(6))
    with pytest.raises(RuntimeError, match="disk full"):
        import_file(session, "members", path, chunk_rows=2)
    assert len(merges.seen) == 2
    assert all(set(seen) & set(KEYS) == set() for seen in merges.seen)  # the keys were off
    assert key_state(pg_keys) == ALL_VALID

    session.expire_all()
    run = session.scalars(select(ImportRun).where(ImportRun.kind == ImportKind.MEMBERS)).one()
    assert run.status == ImportStatus.FAILED
    assert run.message == "stopped by RuntimeError: disk full"
    assert run.finished_at is not None
    assert sorted(session.scalars(select(Member.card_number))) == ["C0001", "C0002"]  # the first chunk


def test_an_orphan_written_during_the_load_leaves_that_key_not_valid_until_repaired(
    session, pg_keys, store, merges, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(indexes, "MIN_ROWS", 0)

    def orphan(n):
        if n == 1:  # another session writes a consent event for a member that does not exist
            with pg_keys.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO consent_events (member_id, channel, granted, source, at) "
                        "VALUES (:m, 'sms', true, 'web', now())"
                    ),
                    {"m": ORPHAN},
                )

    merges.before = orphan
    caplog.set_level(logging.INFO, logger=FK_LOG)
    run = import_file(session, "members", write(tmp_path, "m.csv", members_csv(4)))
    assert (run.status, run.inserted) == (ImportStatus.SUCCEEDED, 4)
    assert set(merges.seen[0]) & set(KEYS) == set()
    assert key_state(pg_keys) == {**ALL_VALID, CONSENT_KEY: False}  # present, NOT VALID
    errors = [r for r in caplog.records if r.name == FK_LOG and r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert CONSENT_KEY in errors[0].getMessage() and "NOT VALID" in errors[0].getMessage()
    assert consent_events(session) == expected_events(4)  # the load's own events are all there

    # NOT VALID still checks every new row.
    with pytest.raises(IntegrityError):
        session.execute(
            insert(ConsentEvent).values(member_id=ORPHAN + 1, channel=Channel.SMS, granted=True, source="web")
        )
    session.rollback()

    # While the orphan is there, repair cannot validate it either (and says so).
    caplog.clear()
    assert indexes.repair(session, ImportKind.MEMBERS, MEMBERS, TABLES) == []
    assert key_state(pg_keys) == {**ALL_VALID, CONSENT_KEY: False}
    assert [r.levelno for r in caplog.records if r.name == FK_LOG and r.levelno >= logging.ERROR] == [
        logging.ERROR
    ]

    with pg_keys.begin() as conn:
        deleted = conn.execute(text("DELETE FROM consent_events WHERE member_id = :m"), {"m": ORPHAN})
        assert deleted.rowcount == 1
    assert indexes.repair(session, ImportKind.MEMBERS, MEMBERS, TABLES) == [CONSENT_KEY]
    assert key_state(pg_keys) == ALL_VALID
    assert indexes.repair(session, ImportKind.MEMBERS, MEMBERS, TABLES) == []


def test_keys_left_dropped_by_a_killed_load_are_restored_by_the_next_load(
    session, pg_keys, store, merges, tmp_path
):
    dropped = foreign_keys.drop(session, TABLES, "5s")
    assert [fk.name for fk in dropped] == KEYS
    assert key_state(pg_keys) == {}
    assert foreign_keys.drop(session, TABLES, "5s") == []  # nothing left to drop

    # A small load (not initial): its repair restores the keys before it merges.
    run = import_file(session, "members", write(tmp_path, "m.csv", members_csv(3)))
    assert (run.status, run.inserted) == (ImportStatus.SUCCEEDED, 3)
    assert merges.seen == [ALL_VALID]
    assert key_state(pg_keys) == ALL_VALID
    assert consent_events(session) == expected_events(3)


def test_repair_leaves_the_keys_to_a_running_load(session, pg_keys):
    assert len(foreign_keys.drop(session, TABLES, "5s")) == 4
    with indexes.loading(session, ImportKind.MEMBERS):
        # That load dropped them on purpose: they are its to restore.
        assert indexes.repair(session, ImportKind.MEMBERS, MEMBERS, checked=TABLES) == []
        assert key_state(pg_keys) == {}
        # A load of another kind holds nothing back.
        with indexes.loading(session, ImportKind.PURCHASES):
            pass
    assert indexes.repair(session, ImportKind.MEMBERS, MEMBERS, checked=TABLES) == KEYS
    assert key_state(pg_keys) == ALL_VALID


def test_a_load_whose_process_died_holds_nothing_back(session, pg_keys):
    """The lock belongs to the dead load's connection: PostgreSQL releases it when that goes."""
    assert len(foreign_keys.drop(session, TABLES, "5s")) == 4
    killed = session.get_bind().connect()
    killed.execute(text("SELECT pg_advisory_lock_shared(:c, :k)"), {"c": indexes._LOCK_CLASS, "k": 1})
    killed.commit()
    assert indexes.repair(session, ImportKind.MEMBERS, MEMBERS, checked=TABLES) == []
    killed.invalidate()  # the connection closes without unlocking, as a killed process's does
    killed.close()
    for _ in range(50):  # the server notices the closed socket at once, but give it a moment
        restored = indexes.repair(session, ImportKind.MEMBERS, MEMBERS, checked=TABLES)
        if restored:
            break
        time.sleep(0.05)
    assert restored == KEYS
    assert key_state(pg_keys) == ALL_VALID


def test_a_dry_run_never_drops_the_keys(session, pg_keys, store, merges, tmp_path, monkeypatch):
    monkeypatch.setattr(indexes, "MIN_ROWS", 0)
    drops = []
    drop = foreign_keys.drop

    def spy_drop(*args, **kwargs):
        drops.append(args)
        return drop(*args, **kwargs)

    monkeypatch.setattr(foreign_keys, "drop", spy_drop)
    indexes_before = member_indexes(pg_keys)
    run = import_file(
        session, "members", write(tmp_path, "m.csv", members_csv(6)), dry_run=True, chunk_rows=3
    )
    assert (run.status, run.dry_run, run.inserted) == (ImportStatus.SUCCEEDED, True, 6)
    assert drops == []
    assert merges.seen == [ALL_VALID, ALL_VALID]
    assert key_state(pg_keys) == ALL_VALID
    assert member_indexes(pg_keys) == indexes_before
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Member)) == 0
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0


def test_drop_gives_up_on_a_busy_table_and_keeps_every_key(session, pg_keys, caplog):
    caplog.set_level(logging.WARNING, logger=FK_LOG)
    with pg_keys.connect() as other:
        other.execute(text("LOCK TABLE members IN ACCESS SHARE MODE"))  # a long report, say
        try:
            assert foreign_keys.drop(session, TABLES, "200ms") == []
            assert key_state(pg_keys) == ALL_VALID
        finally:
            other.rollback()
    assert any(
        r.name == FK_LOG and r.levelno == logging.WARNING and "busy" in r.getMessage() for r in caplog.records
    )
    # Nothing of the failed attempt lingers: the session works, and the table is free again.
    assert session.scalar(text("SELECT 1")) == 1
    dropped = foreign_keys.drop(session, TABLES, "5s")
    assert [fk.name for fk in dropped] == KEYS
    assert foreign_keys.restore(session, TABLES) == KEYS
    assert key_state(pg_keys) == ALL_VALID
