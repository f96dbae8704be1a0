"""Import orchestration: read → validate → stage and merge in chunks → record the run.

Memory stays flat whatever the input size: one chunk of records is held at a time, and bad rows
are written to the run's error table as each chunk completes. Each chunk commits on its own,
so an interrupted import can simply be run again (the merge is idempotent).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from database.base import utcnow
from membership.importing import bulk, foreign_keys, indexes
from membership.importing.formats import FORMATS, HeaderError, match_header
from membership.importing.lanes import run_lanes
from membership.importing.pipeline import read_ahead
from membership.importing.processes import validated_in_processes
from membership.importing.reading import EncodingError, Unreadable, cells_by_key, estimate_rows, open_csv
from membership.importing.runs import ImportKind, ImportRowError, ImportRun
from membership.importing.validation import VALIDATORS, Context, RowError, StoreInfo
from membership.importing.writing import WRITERS, ChunkResult, Target
from membership.member import ConsentEvent, Member
from membership.purchase import Purchase
from membership.store import Store

CHUNK_ROWS = 10_000
# A members file this large is validated in VALIDATORS_AT_ONCE processes (see processes.py).
POOL_MIN_ROWS = 20_000
VALIDATORS_AT_ONCE = 2
MAX_RAW_CHARS = 2000
# A store column lands in a differently named record field per kind.
_FIELD_OF_COLUMN = {"members": {"store": "home_store_id"}, "purchases": {"store": "store_id"}}

Progress = Callable[[ImportRun], None]
_INDEXED_TABLES = {"members": Member.__table__, "purchases": Purchase.__table__}
# The tables a load inserts into, whose foreign keys are checked row by row (purchases have none).
_CHECKED_TABLES = {"members": (Member.__table__, ConsentEvent.__table__), "purchases": (Purchase.__table__,)}


class UnknownStore(LookupError):
    """The store code given for an import does not exist."""


def start_run(
    session: Session,
    kind: str,
    file_name: str,
    *,
    store_code: str | None = None,
    dry_run: bool = False,
    source: str = "file",
) -> ImportRun:
    """Create and commit a run before the work starts, so a page can poll its progress by id."""
    store = _store_by_code(session, store_code) if store_code else None
    run = ImportRun(
        kind=ImportKind(kind),
        file_name=_printable(file_name[:255]),
        store_id=store.id if store else None,
        dry_run=dry_run,
        source=source,
    )
    session.add(run)
    session.commit()
    return run


def import_file(
    session: Session,
    kind: str,
    path: str | os.PathLike,
    *,
    store_code: str | None = None,
    encoding: str = "auto",
    dry_run: bool = False,
    progress: Progress | None = None,
    run: ImportRun | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportRun:
    """Import a members, products or purchases CSV; bad rows are recorded on the run, good ones kept.

    Commits per chunk. With ``dry_run`` every chunk is merged in a savepoint and rolled back, so the
    counts and errors are real but no data changes; the run itself is recorded, marked dry.
    """
    path = Path(path)
    run = run or start_run(session, kind, path.name, store_code=store_code, dry_run=dry_run)
    try:
        stream, source = open_csv(path, encoding)
    except (EncodingError, OSError) as exc:
        return _fail(session, run, str(exc))
    with stream:
        run.encoding = source.encoding
        try:
            keys = match_header(kind, source.header)
        except HeaderError as exc:
            return _fail(session, run, str(exc))
        positions = [(i, key) for i, key in enumerate(keys) if key]
        present = frozenset(key for _, key in positions)
        delimiter = source.delimiter
        batch = _Batch(session, run, kind, present, path.name, dry_run, progress, chunk_rows, delimiter)
        expected = estimate_rows(path)
        if kind == "purchases" and bulk.usable(session, batch.ctx):
            lanes = bulk.LANES if expected >= bulk.LANE_MIN_ROWS else 1
            columns, width = {k: i for i, k in positions}, len(source.header)

            def loader(lane_session: Session) -> bulk.PurchaseBulk:
                writer = WRITERS[kind](lane_session, batch.writer.target)
                return bulk.PurchaseBulk(lane_session, batch.ctx, writer, columns, delimiter, width)

            encoder = loader(session)
            with _initial_load(session, run, kind, expected):
                return batch.process_bulk(encoder.encode(source.lines(), lanes, source.split), loader, lanes)

        workers = VALIDATORS_AT_ONCE if kind == "members" and expected >= POOL_MIN_ROWS else 0

        def rows():
            for line, values in source.rows():
                if isinstance(values, Unreadable):
                    yield line, values, None
                elif workers > 1:  # the workers build the mapping: less to pickle, less for this core
                    yield line, values, values or None
                else:
                    yield line, cells_by_key(values, positions), values or None

        with _initial_load(session, run, kind, expected):
            return batch.process(rows(), workers=workers, positions=positions)


@contextmanager
def _initial_load(session: Session, run: ImportRun, kind: str, expected_rows: int) -> Iterator[None]:
    """Members and purchases on PostgreSQL: secondary indexes and foreign keys dropped for a load
    larger than the table and restored after it, however it ends (see ``indexes``, ``foreign_keys``)."""
    table = _INDEXED_TABLES.get(kind)
    if table is None or session.get_bind().dialect.name != "postgresql":
        yield
        return
    checked = _CHECKED_TABLES[kind]
    indexes.repair(session, ImportKind(kind), table, checked)
    with indexes.loading(session, ImportKind(kind)):
        dropped = [] if run.dry_run else indexes.drop_for_load(session, table, expected_rows)
        keys = foreign_keys.drop(session, checked, indexes.LOCK_TIMEOUT) if dropped else []
        try:
            yield
        finally:
            if dropped or keys:
                session.rollback()  # a failed load leaves the session's transaction aborted
                try:
                    foreign_keys.restore(session, checked)
                finally:
                    indexes.rebuild(session, table, dropped)


def import_rows(
    session: Session, kind: str, rows: list[Mapping], *, store: Store, source_name: str = "api"
) -> ImportRun:
    """Import a batch of JSON objects (the API): the same validation and merge as files.

    Keys are matched like CSV headers. Rows are grouped by the keys they carry, so a key left out
    of one object leaves that column alone for that row only. "Lines" are the 0-based indexes.
    """
    fmt = FORMATS[kind]
    run = start_run(session, kind, source_name, store_code=store.code, source="api")
    groups: dict[frozenset[str], list[tuple[int, dict, None]]] = {}
    for index, item in enumerate(rows):
        if not isinstance(item, Mapping):
            groups.setdefault(frozenset(), []).append((index, Unreadable("not a JSON object"), None))
            continue
        row = {}
        for name, value in item.items():
            key = fmt.resolve(str(name))
            if key is not None:
                row[key] = _as_text(value)
        groups.setdefault(frozenset(row), []).append((index, row, item))
    for present, group in groups.items():
        _Batch(session, run, kind, present, source_name, False, None, CHUNK_ROWS, ",").process(
            group, finish=False
        )
    run.finish()
    session.commit()
    return run


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return ";".join(map(str, value)) if isinstance(value, list) else str(value)
    return str(value)


@dataclass
class _Tally:
    """What one committed batch did."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0


class _Batch:
    """Validates rows and writes them chunk by chunk for one run."""

    def __init__(
        self,
        session: Session,
        run: ImportRun,
        kind: str,
        present: frozenset[str],
        source_name: str,
        dry_run: bool,
        progress: Progress | None,
        chunk_rows: int,
        delimiter: str,
    ) -> None:
        self.session, self.run, self.kind = session, run, kind
        self.dry_run, self.progress, self.chunk_rows, self.delimiter = (
            dry_run,
            progress,
            chunk_rows,
            delimiter,
        )
        self.ctx = _context(session, run)
        renames = _FIELD_OF_COLUMN.get(kind, {})
        fields = frozenset(renames.get(key, key) for key in present)
        default_locale = self.ctx.default_store.locale if self.ctx.default_store else "zh-CN"
        target = Target(run.id, fields, source_name, self.ctx.now, default_locale)
        self.writer = WRITERS[kind](session, target)
        self.validate = VALIDATORS[kind]
        self.key_index = 1  # every record layout starts (line, external id, …)
        self.key_column = FORMATS[kind].key

    def process(
        self,
        rows: Iterable[tuple[int, Mapping | Unreadable, object]],
        finish: bool = True,
        workers: int = 0,
        positions: list[tuple[int, str]] | None = None,
    ) -> ImportRun:
        """Validate and write ``rows`` chunk by chunk; with ``workers`` > 1 they validate in processes.

        With workers, each row is the file's list of values and ``positions`` maps them to keys.
        """
        try:
            # One chunk validated ahead while the last one merges; closed (thread stopped) on failure.
            validated = self._validated(rows, workers, positions)
            with closing(read_ahead(self._chunks(validated), depth=1)) as chunks:
                for read, records, raws, errors in chunks:
                    self.run.rows_read += read
                    self._flush(records, raws, errors)
            self.writer.refresh_statistics()
        except BaseException as exc:
            self.session.rollback()
            _fail(self.session, self.run, f"stopped by {type(exc).__name__}: {exc}"[:1000])
            raise
        if finish:
            self.run.finish()
            self.session.commit()
        return self.run

    def _chunks(self, rows: Iterable[tuple[int, Mapping | Unreadable, object, object]]) -> Iterator[tuple]:
        """(rows read, records by key, raw rows by line, errors) per chunk; the last may be empty."""
        key_index, key_column = self.key_index, self.key_column
        read, records, raws, errors = 0, {}, {}, []
        for line, row, raw, result in rows:
            read += 1
            raws[line] = raw
            if isinstance(row, Unreadable):
                errors.append(RowError(line, None, row.reason))
                continue
            if isinstance(result, list):
                errors.extend(result)
                continue
            key = result[key_index]
            first = records.get(key)
            if first is not None:
                # First occurrence wins within a chunk; a repeat is reported, not merged.
                errors.append(RowError(line, key_column, f"repeats line {first[0]}"))
            else:
                records[key] = result
                if len(records) >= self.chunk_rows:
                    yield read, records, raws, errors
                    read, records, raws, errors = 0, {}, {}, []
        yield read, records, raws, errors

    def _validated(
        self,
        rows: Iterable[tuple[int, Mapping | list[str] | Unreadable, object]],
        workers: int,
        positions: list[tuple[int, str]] | None = None,
    ) -> Iterator[tuple]:
        """(line, row, raw, record or errors) for each row, validated here or by ``workers`` processes."""
        validate, ctx = self.validate, self.ctx
        if workers <= 1:
            for line, row, raw in rows:
                yield line, row, raw, None if isinstance(row, Unreadable) else validate(line, row, ctx)
            return
        if positions is None:
            raise ValueError("validation in processes needs the header's positions")
        yield from validated_in_processes(rows, self.kind, ctx, workers, positions)

    def process_bulk(
        self,
        groups: Iterator[list[bulk.Block]],
        loader: Callable[[Session], bulk.PurchaseBulk],
        lanes: int,
    ) -> ImportRun:
        """The PostgreSQL purchases path: ``lanes`` connections stage and merge, each its own rows.

        Every lane commits batch by batch on its own session; this session only records the run's
        counts as each batch lands.
        """
        self.session.commit()  # nothing of this session's may hold a lock the lanes wait for
        run_id, engine = self.run.id, self.session.get_bind()
        workers = [functools.partial(self._lane, loader, engine, run_id) for _ in range(lanes)]
        try:
            # Each lane's inbox holds a whole batch: a lane merging must not hold up the next one's
            # COPY, nor the reader, which then keeps a core busy throughout.
            with closing(read_ahead(groups, depth=4)) as ahead:
                run_lanes(ahead, workers, self._count, depth=bulk.BATCH_ROWS * lanes // bulk.BLOCK_ROWS + 2)
        except BaseException as exc:
            self.session.rollback()
            _fail(self.session, self.run, f"stopped by {type(exc).__name__}: {exc}"[:1000])
            raise
        self.run.finish()
        self.session.commit()
        self.writer.note_inserted(self.run.inserted)
        self.session.commit()
        return self.run

    def _lane(
        self,
        loader: Callable[[Session], bulk.PurchaseBulk],
        engine,
        run_id: int,
        blocks: Iterator[bulk.Block],
    ) -> Iterator[_Tally]:
        """One lane: stage, merge, record errors and commit batch by batch until ``blocks`` runs out."""
        with Session(bind=engine) as session:
            lane = loader(session)
            while (staged := lane.stage(blocks)) is not None:
                tally = _Tally(read=staged.read)
                errors = staged.errors
                if staged.staged:
                    # No ANALYZE as the table grows: this merge never joins the purchases table
                    # (process_bulk analyzes once at the end, for everyone else's queries).
                    result = self._undone_if_dry(session, lambda: lane.writer.merge(staged.staged))
                    tally.inserted, tally.updated, tally.unchanged = (
                        result.inserted,
                        result.updated,
                        result.unchanged,
                    )
                    errors = errors + result.errors
                tally.failed = len({e.line for e in errors})
                if errors:
                    lane.record_errors(run_id, staged, errors)
                session.commit()
                yield tally

    def _count(self, tally: _Tally) -> None:
        """Add a lane's committed batch to the run, for the progress bar and the final counts."""
        run = self.run
        run.rows_read += tally.read
        run.inserted += tally.inserted
        run.updated += tally.updated
        run.unchanged += tally.unchanged
        run.failed += tally.failed
        self.session.commit()
        if self.progress is not None:
            self.progress(run)

    def _undone_if_dry(self, session: Session, merge: Callable[[], ChunkResult]) -> ChunkResult:
        """Run ``merge``; on a dry run inside a savepoint rolled back after it (the counts stay)."""
        if not self.dry_run:
            return merge()
        nested = session.begin_nested()
        try:
            return merge()
        finally:
            nested.rollback()

    def _flush(self, records: dict[str, tuple], raws: dict[int, object], errors: list[RowError]) -> None:
        if records:
            result = self._undone_if_dry(self.session, lambda: self.writer.write(list(records.values())))
            if not self.dry_run:
                self.writer.note_inserted(result.inserted)
            errors.extend(result.errors)
            self.run.inserted += result.inserted
            self.run.updated += result.updated
            self.run.unchanged += result.unchanged
        self.run.failed += len({e.line for e in errors})
        if errors:
            self.session.execute(
                insert(ImportRowError),
                [
                    {
                        "run_id": self.run.id,
                        "line": e.line,
                        "column": e.column,
                        "reason": _printable(e.reason[:500]),
                        "raw": self._raw(raws.get(e.line)),
                    }
                    for e in sorted(errors, key=lambda e: e.line)
                ],
            )
        self.session.commit()
        if self.progress is not None:
            self.progress(self.run)

    def _raw(self, raw: object) -> str | None:
        if raw is None:
            return None
        if isinstance(raw, list):
            text = self.delimiter.join(raw)
        elif isinstance(raw, Mapping):
            import json

            text = json.dumps(raw, ensure_ascii=False, default=str)
        else:
            text = str(raw)
        return _printable(text[:MAX_RAW_CHARS])


def _printable(text: str) -> str:
    """PostgreSQL text cannot hold NUL; a raw row or a validator's message may quote one."""
    return text.replace("\x00", "\ufffd")


def _context(session: Session, run: ImportRun) -> Context:
    stores = {
        code: StoreInfo(id_, code, region, _zone(tz), locale)
        for id_, code, region, tz, locale in session.execute(
            select(Store.id, Store.code, Store.region, Store.timezone, Store.locale)
        )
    }
    default = None
    if run.source == "api":
        # A store's token writes for that store only: other store codes are "unknown".
        stores = {code: info for code, info in stores.items() if info.id == run.store_id}
    if run.store_id is not None:
        default = next(s for s in stores.values() if s.id == run.store_id)
    elif len(stores) == 1:
        default = next(iter(stores.values()))  # a single-store install needs no --store
    return Context(stores=stores, default_store=default, now=utcnow())


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except Exception:  # a store with a broken zone name still imports, in UTC
        return ZoneInfo("UTC")


def _store_by_code(session: Session, code: str) -> Store:
    store = session.scalar(select(Store).where(Store.code == code))
    if store is None:
        raise UnknownStore(f"no store with code {code!r}")
    return store


def _fail(session: Session, run: ImportRun, message: str) -> ImportRun:
    run.finish(_printable(message))
    session.add(run)
    session.commit()
    return run
