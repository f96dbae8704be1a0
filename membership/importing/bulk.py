"""PostgreSQL fast path for purchase files: COPY the raw text in, convert the plain rows in SQL.

Per-row Python validation costs far more than the database's work, so here Python only maps the
header's columns, numbers the lines and marks each row whose every field has a plain, unambiguous
form (printable ASCII ids, a Y-M-D or Y/M/D date, plain quantities and amounts): one regular
expression over the row, a quarter of what the same checks cost in SQL. Each batch is COPYed as text
into a temporary table and one ``INSERT … SELECT`` converts the marked rows that also name a known
store and a date that exists, not near a clock change, into the writer's typed staging table. Every
other row — anything wrong, odd or merely unusual — is read back and goes through the ordinary
Python validator, so what is accepted, and every error message, is exactly what the Python path
gives. The writer then merges the staging table as usual.

The raw table holds the file's cells in the file's order, so a line CSV parsing would only split is
staged as it stands, its delimiters turned into COPY's tabs, and its raw text for an error report is
its cells joined again. A whole block of such lines that are all plain costs Python no step per line
but numbering it: one pattern search over the block checks every line and finds its id (measured on
the bench's 1M lines: 2.7–3.1 s of Python CPU for the import, against 5.3–5.6 s a row at a time).
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import text
from sqlalchemy.orm import Session

from membership.importing.reading import Lines, Unreadable
from membership.importing.validation import _CONTROL, Context, RowError, validate_purchase
from membership.importing.writing import Writer

BATCH_ROWS = 100_000
# A lane's first batches are smaller (this, then doubling up to BATCH_ROWS): the database starts
# converting while Python still encodes. With full batches from the start one core sat idle until
# both lanes' first 100,000 rows were encoded.
FIRST_BATCH_ROWS = 12_500
# Connections that stage and merge a large file at once (PostgreSQL runs a statement on one core);
# a file estimated smaller than LANE_MIN_ROWS is not worth a second connection.
LANES = 2
LANE_MIN_ROWS = 20_000
WORK_MEM = "64MB"  # per sort or hash, per lane
MAX_RAW_CHARS = 2000
# The file's columns as staged text; a column the file lacks is staged as "".
COLUMNS = ("line_id", "card_number", "sku", "store", "purchased_at", "quantity", "amount")
_RAW, _STORES, _ERRORS = "import_raw_purchases", "import_raw_stores", "import_raw_errors"
_COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")
BLOCK_ROWS = 2000  # rows per COPY write: few calls, little memory
_PLAIN_COPY_LINE = "{}\tt\t{}\t\\N\n"  # a plain line staged as it stands: line, plain, cells, no raw

# A cell SQL reads as it is (a store's code, a column no key maps): anything but a tab or a line
# end, within the CSV parser's field limit, beyond which a row is unreadable.
_ANY_CELL = rf"[^\t\n]{{0,{csv.field_size_limit()}}}"
# What SQL converts without asking Python, one pattern per staged column (COLUMNS' order); any
# other row is validated in Python. [0-9], not \d: \d also matches other scripts' digits.
_PLAIN_CELLS = {
    # printable ASCII, no surrounding spaces, within the column's length (the lookbehind: a third
    # faster than a group for the last character)
    "line_id": r"[!-~][ -~]{0,79}(?<=[!-~])",
    "card_number": r"[!-~][ -~]{0,63}(?<=[!-~])",
    "sku": r"[!-~][ -~]{0,63}(?<=[!-~])",
    "store": _ANY_CELL,  # the store's code is looked up in SQL
    # 20YY-MM-DD or 20YY/MM/DD (Excel), then optionally HH:MM or HH:MM:SS; PostgreSQL then checks
    # that the day exists. Hour 24 and second 60, which PostgreSQL would take and Python refuses, go
    # to Python, as do dates before 2000: old zone histories are where PostgreSQL's and Python's
    # time zone data may disagree.
    "purchased_at": r"20[0-9]{2}(?:-[0-9]{2}-[0-9]{2}|/[0-9]{2}/[0-9]{2})"
    r"(?:[ T](?:[01][0-9]|2[0-3]):[0-9]{2}(?::[0-5][0-9])?)?",
    "quantity": r"(?:[1-9][0-9]{0,5}|1000000)?",
    "amount": r"(?:[0-9]{1,10}(?:\.[0-9]{1,2})?)?",
}
_ISO = "replace(r.purchased_at, '/', '-')"
# A local time within this distance of a zone's offset change goes to Python, whose reading of
# ambiguous and skipped times (fold=0) then decides; no zone moves its clock by more than this.
_NEAR_CHANGE = "interval '3 hours'"


def usable(session: Session, ctx: Context) -> bool:
    """True on a PostgreSQL that has ``pg_input_is_valid`` (16+) and knows every store's zone."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    if int(session.execute(text("SHOW server_version_num")).scalar_one()) < 160000:
        return False
    server = str(session.get_bind().url)
    zones = {info.timezone.key for info in ctx.stores.values()} | {"UTC"}
    unknown = sorted(zone for zone in zones if (server, zone) not in _KNOWN_ZONES)
    if unknown:
        # pg_timezone_names reads the zone files (tens of ms), so each answer is remembered.
        found = session.scalars(
            text("SELECT name FROM pg_timezone_names WHERE name = ANY(:zones)"), {"zones": unknown}
        )
        _KNOWN_ZONES.update((server, zone) for zone in found)
    return all((server, zone) in _KNOWN_ZONES for zone in zones)


_KNOWN_ZONES: set[tuple[str, str]] = set()  # (server URL, zone) pairs the server knows


@dataclass
class Block:
    """A few thousand rows as COPY text, with the rows that cannot be COPYed."""

    read: int = 0
    text: str = ""
    errors: list[RowError] = field(default_factory=list)  # unreadable rows
    held: list[tuple[int, list[str]]] = field(default_factory=list)  # rows with NUL, for Python
    ids: set[int] = field(default_factory=set)  # hashes of its rows' trimmed line ids
    repeats: bool = False  # some line id is in two of its rows


@dataclass
class Staged:
    """One batch in the writer's staging table: rows read, rows staged, and the rows refused so far."""

    read: int = 0
    staged: int = 0
    errors: list[RowError] = field(default_factory=list)
    raws: dict[int, str] = field(default_factory=dict)  # raw text of rows never COPYed (held back)


class PurchaseBulk:
    """Stages purchase rows batch by batch for ``writer`` (a PurchaseWriter on PostgreSQL)."""

    def __init__(
        self,
        session: Session,
        ctx: Context,
        writer: Writer,
        positions: Mapping[str, int],
        delimiter: str,
        width: int,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        self.session, self.ctx, self.writer = session, ctx, writer
        writer.resolve_in_stage()  # the conversion looks the ids up as it stages
        self.delimiter, self.width, self.batch_rows = delimiter, width, batch_rows
        self.batches = 0  # staged so far
        self.present = [key for key in COLUMNS if key in positions]
        # Values are read from [""] + row, so index 0 is the "" of a column the file lacks.
        self.indexes = [positions[key] + 1 if key in positions else 0 for key in COLUMNS]
        self.need = max(self.indexes)  # a shorter row is padded with "" up to here
        # The raw table's columns in the file's order (a column no key maps is staged as extra_N):
        # a line is staged as it stands, its delimiters turned into COPY's tabs.
        self.file_columns = tuple(
            next((key for key, i in positions.items() if i == index and key in COLUMNS), f"extra_{index}")
            for index in range(width)
        )
        self.plain_line = _plain_line(self.file_columns)
        self.plain_lines = re.compile(f"^{self.plain_line.pattern}$", re.MULTILINE)
        self.id_index = positions.get("line_id")

    # -- one batch ---------------------------------------------------------------------------------

    def encode(
        self,
        lines: Iterable[tuple[int, Lines | str | list[str] | Unreadable]],
        lanes: int = 1,
        split: Callable[[int, Lines], Iterable[tuple[int, str | list[str] | Unreadable]]] | None = None,
    ) -> Iterator[list[Block]]:
        """``lines`` (see ``CsvSource.lines``, whose ``split`` takes apart the ``Lines`` this cannot
        stage whole) as blocks of COPY text for the raw table, one block per lane (see ``lanes``).

        A row goes to the lane its trimmed line id hashes to, so every line of an id is staged by
        the same connection, in file order. No database work here: ``stage`` writes the blocks.
        """
        blocks = [Block() for _ in range(lanes)]
        outs: list[list[str]] = [[] for _ in range(lanes)]
        read = 0
        for line, item in self._units(lines, split):
            if line is None:  # lines staged as they stand
                keys, rows = item
                _deal(blocks, outs, keys, rows)
                read += len(keys)
            else:
                self._encode_one(line, item, blocks, outs)
                read += 1
            if read >= BLOCK_ROWS:
                yield _finish(blocks, outs)
                blocks, outs, read = [Block() for _ in range(lanes)], [[] for _ in range(lanes)], 0
        if read:
            yield _finish(blocks, outs)

    def _units(self, lines, split) -> Iterator[tuple]:
        """Each line or row of ``lines`` on its own, except the ``Lines`` staged whole: those come
        as (None, (line id hashes, COPY rows)), at most BLOCK_ROWS at a time."""
        for line, item in lines:
            if item.__class__ is not Lines:
                yield line, item
            elif (whole := self._whole(line, item)) is not None:
                keys, rows = whole
                for start in range(0, len(keys), BLOCK_ROWS):
                    yield None, (keys[start : start + BLOCK_ROWS], rows[start : start + BLOCK_ROWS])
            elif split is None:
                raise ValueError("Lines to take apart, and no split")
            else:
                yield from split(line, item)

    def _whole(self, first: int, lines: Lines) -> tuple[list[int], list[str]] | None:
        """Each line's id hash and COPY text, staging ``lines`` (numbered from ``first``) as they
        stand; None unless every one is plain and needs no COPY escape.

        The common case, done a block at a time: one pattern search finds every line's id, and the
        lines are numbered without a Python step per line.
        """
        text = lines.text
        if "\\" in text:  # COPY would read it as an escape
            return None
        if self.delimiter != "\t":
            if "\t" in text:
                return None
            text = text.replace(self.delimiter, "\t")
        ids = self.plain_lines.findall(text)  # one per line that is plain
        if len(ids) != lines.count:
            return None
        rows = list(map(_PLAIN_COPY_LINE.format, range(first, first + lines.count), text.split("\n")))
        return list(map(hash, ids)), rows

    def _encode_one(
        self, line: int, item: str | list[str] | Unreadable, blocks: list[Block], outs: list[list[str]]
    ) -> None:
        """One line or row (see ``CsvSource.lines``) into its lane's block."""
        delimiter = self.delimiter
        if item.__class__ is str and "\\" not in item and (delimiter == "\t" or "\t" not in item):
            # Staged as it stands. A plain line's id is the pattern's group: no spaces to trim.
            tabbed = item if delimiter == "\t" else item.replace(delimiter, "\t")
            match = self.plain_line.fullmatch(tabbed)
            lane = _count_in_lane(blocks, hash(match[1] if match else self._line_id(tabbed.split("\t"))))
            outs[lane].append(f"{line}\t{'t' if match else 'f'}\t{tabbed}\t\\N\n")
        elif isinstance(item, Unreadable):
            blocks[0].read += 1
            blocks[0].errors.append(RowError(line, None, item.reason))
        else:
            values = item.split(delimiter) if isinstance(item, str) else item
            lane = _count_in_lane(blocks, hash(self._line_id(values)))
            if any("\x00" in value for value in values):  # COPY cannot carry NUL; Python reports the row
                blocks[lane].held.append((line, values))
            else:
                outs[lane].append(self._copy_line(line, values))

    def _line_id(self, values: Sequence[str]) -> str:
        """The row's line id as validation trims it ("" when the row or the file has none)."""
        index = self.id_index
        return values[index].strip() if index is not None and index < len(values) else ""

    def _copy_line(self, line: int, values: list[str]) -> str:
        """One row of COPY text from its values: line, plain, the cells in file order, raw.

        A short row's missing cells are ""; raw is sent only when the cells joined do not give it
        back (a row with more values than the header, all blank). The pattern sees the cells joined
        by tabs, unescaped: no cell's pattern takes a tab, so a cell holding one cannot shift the
        others.
        """
        width = self.width
        cells = values[:width] if len(values) >= width else [*values, *[""] * (width - len(values))]
        body = "\t".join(cells)
        plain = "t" if self.plain_line.fullmatch(body) else "f"
        raw = "\\N" if len(values) == width else self.delimiter.join(values).translate(_COPY_ESCAPE)
        if _NEEDS_ESCAPE.search(body):
            body = "\t".join(cell.translate(_COPY_ESCAPE) for cell in cells)
        return f"{line}\t{plain}\t{body}\t{raw}\n"

    def stage(self, blocks: Iterator[Block]) -> Staged | None:
        """Stage about one batch of ``blocks`` (see ``encode``); None when ``blocks`` is exhausted."""
        self._create_tables()
        staged = Staged()
        limit = min(self.batch_rows, FIRST_BATCH_ROWS << min(self.batches, 16))
        self.batches += 1
        held: list[tuple[int, list[str]]] = []
        seen: set[int] = set()  # the batch's line id hashes, while none has repeated
        repeats = False
        conn = self.session.connection().connection.driver_connection
        columns = ", ".join(("line", "plain", *self.file_columns, "raw"))
        with conn.cursor() as cur, cur.copy(f"COPY {_RAW} ({columns}) FROM STDIN") as cp:
            for block in blocks:
                staged.read += block.read
                staged.errors.extend(block.errors)
                held.extend(block.held)
                if not repeats:
                    repeats = block.repeats or not seen.isdisjoint(block.ids)
                    seen |= block.ids
                if block.text:
                    cp.write(block.text)
                if staged.read >= limit:
                    break
        if not staged.read:
            return None
        copied = staged.read - len(staged.errors) - len(held)  # each unreadable row has one error
        fast = self._convert_plain_rows()
        records = self._validate_in_python(held, staged, leftovers=fast < copied)
        if records:
            self.writer.copy_records(records)
            self.writer.resolve_staged()
        # Only a batch whose file lines repeat an id can stage one twice (staged ids are the trimmed
        # ids the encoder saw); the others skip the check's scan of the stage (10% of the import's
        # time, measured). Two ids with one hash only cost that check.
        dropped = self._drop_repeats() if repeats else []
        staged.errors.extend(dropped)
        staged.staged = fast + len(records) - len(dropped)
        return staged

    def _create_tables(self) -> None:
        # A key the file lacks reads as "" (the validator's view of a missing cell).
        columns = ", ".join(
            [f"{c} text DEFAULT ''" for c in COLUMNS]
            + [f"{c} text" for c in self.file_columns if c not in COLUMNS]
        )
        # A batch's hashes and sorts fit in memory with this; the default 4 MB spilled them to disk.
        self._sql(f"SET LOCAL work_mem = '{WORK_MEM}'")
        # A batch's commit need not wait for its WAL to reach the disk (measured: 93.7k against 90.5k
        # rows/s, median of 6 alternating rounds): the run's progress commit that counts the batch
        # comes after it and is synchronous, and flushing the WAL to that point makes the batch
        # durable too. So a batch the run counts is never lost; a crash loses only uncounted ones.
        self._sql("SET LOCAL synchronous_commit = off")
        # ON COMMIT DROP: a batch is one transaction, so nothing outlives it.
        self._sql(
            f"CREATE TEMP TABLE {_RAW} (line integer, plain boolean, {columns}, raw text) ON COMMIT DROP"
        )
        self._sql(
            f"CREATE TEMP TABLE {_STORES} (code text, id integer, tz text, fixed interval) ON COMMIT DROP"
        )
        self._sql(
            f"CREATE TEMP TABLE {_ERRORS} (seq integer, line integer, col text, reason text, raw text) "
            f"ON COMMIT DROP"
        )
        self.writer.create_stage()
        self._copy(_STORES, ("code", "id", "tz", "fixed"), self._store_rows())

    def _store_rows(self) -> list[tuple]:
        """The store codes SQL may resolve itself ("" is a row without a store code), with their zones."""
        default = self.ctx.default_store
        rows = [("", default.id, default.timezone.key) if default else ("", None, "UTC")]
        for code, info in self.ctx.stores.items():
            # Only codes a cell can name verbatim; Python's trimming handles the rest.
            if code and code == code.strip() and len(code) <= 40 and not _CONTROL.search(code):
                rows.append((code, info.id, info.timezone.key))
        return [(code, id_, tz, fixed_offset(tz)) for code, id_, tz in rows]

    def _convert_plain_rows(self) -> int:
        """Typed rows, member and product ids resolved, for every plainly valid raw row, in SQL.

        Returns how many were staged. A store whose zone keeps one offset over the dates SQL takes
        (Asia/Shanghai, most of China's stores) is converted by subtracting that offset, Python's
        own figure: no zone lookups and no check for nearby clock changes.
        """
        limit = self.ctx.now + dt.timedelta(days=1) if self.ctx.now else dt.datetime(9999, 1, 1)
        # Each OFFSET 0 keeps a step apart. The lookups come first, unfiltered: on a fresh temporary
        # table the planner cannot estimate a filter, took the batch for one row and probed products
        # once per row (3x slower). The conversions then run once per row, and their CASEs make sure
        # no cast sees a value the encoder's pattern (the plain flag) or the date check refused.
        sql = f"""
            INSERT INTO {self.writer.stage} (line, line_id, card_number, sku, store_id, purchased_at,
                                             quantity, amount, member_id, product_id)
            SELECT line, line_id, card_number, sku, store_id, utc, quantity, amount, member_id, product_id
            FROM (
                SELECT r.line, r.line_id, r.card_number, r.sku, r.store_id, r.tz, r.fixed,
                       r.member_id, r.product_id,
                       CASE WHEN r.plain
                            THEN COALESCE(CAST(NULLIF(r.quantity, '') AS integer), 1) END AS quantity,
                       CASE WHEN r.plain
                            THEN COALESCE(CAST(NULLIF(r.amount, '') AS numeric(12, 2)), 0) END AS amount,
                       CASE WHEN NOT (r.plain AND pg_input_is_valid({_ISO}, 'timestamp')) THEN NULL
                            WHEN r.fixed IS NOT NULL THEN CAST({_ISO} AS timestamp) - r.fixed
                            ELSE (CAST({_ISO} AS timestamp) AT TIME ZONE r.tz) AT TIME ZONE 'UTC'
                       END AS utc
                FROM (
                    SELECT r.line, r.plain, r.line_id, r.card_number, r.sku, r.purchased_at, r.quantity,
                           r.amount, st.id AS store_id, st.tz, st.fixed, m.id AS member_id,
                           p.id AS product_id
                    FROM {_RAW} r JOIN {_STORES} st ON st.code = r.store
                         LEFT JOIN members m ON m.card_number = r.card_number
                         LEFT JOIN products p ON p.sku = r.sku
                    OFFSET 0
                ) r
                WHERE r.plain
                OFFSET 0
            ) plain
            WHERE quantity IS NOT NULL AND amount IS NOT NULL
              AND utc >= TIMESTAMP '1900-01-01' AND utc < TIMESTAMP '2101-01-01' AND utc <= :limit
              AND CASE WHEN fixed IS NOT NULL THEN true
                       ELSE (utc - {_NEAR_CHANGE}) AT TIME ZONE 'UTC' AT TIME ZONE tz - (utc - {_NEAR_CHANGE})
                          = (utc + {_NEAR_CHANGE}) AT TIME ZONE 'UTC' AT TIME ZONE tz - (utc + {_NEAR_CHANGE})
                  END
        """
        return self._sql(sql, limit=limit).rowcount

    def _validate_in_python(self, held: list, staged: Staged, leftovers: bool) -> list[tuple]:
        """The rows SQL left alone, validated one by one; returns the valid ones' records.

        ``leftovers``: whether SQL left some COPYed rows unstaged (else only ``held`` remain).
        """
        ctx, present = self.ctx, self.present
        records = []
        rows = self._leftovers() if leftovers else ()
        for line, *values in rows:
            result = validate_purchase(line, dict(zip(present, values, strict=True)), ctx)
            if isinstance(result, list):
                staged.errors.extend(result)
            else:
                records.append(result)
        for line, values in held:
            staged.raws[line] = self.delimiter.join(values)
            cells = [""] * (self.need + 1)
            cells[: len(values) + 1] = ["", *values]
            row = {key: cells[i] for key, i in zip(COLUMNS, self.indexes, strict=True) if key in present}
            result = validate_purchase(line, row, ctx)
            if isinstance(result, list):
                staged.errors.extend(result)
            else:
                records.append(result)
        return records

    def _leftovers(self):
        return self._sql(
            f"SELECT r.line, {', '.join('r.' + c for c in self.present)} FROM {_RAW} r "
            f"WHERE NOT EXISTS (SELECT FROM {self.writer.stage} s WHERE s.line = r.line) ORDER BY r.line"
        )

    def _drop_repeats(self) -> list[RowError]:
        """Within a batch the first line of an id wins; later ones are reported, as in Python."""
        # Few batches with repeated lines stage a repeat (the first may have been refused): a hash
        # count is cheaper than sorting the batch for the window.
        if (
            self._sql(f"SELECT FROM {self.writer.stage} GROUP BY line_id HAVING count(*) > 1 LIMIT 1").first()
            is None
        ):
            return []
        repeats = self._sql(
            f"WITH d AS (SELECT line, min(line) OVER (PARTITION BY line_id) AS first "
            f"FROM {self.writer.stage}) "
            f"DELETE FROM {self.writer.stage} s USING d WHERE s.line = d.line AND d.line > d.first "
            f"RETURNING s.line, d.first"
        )
        return [RowError(line, "line_id", f"repeats line {first}") for line, first in repeats]

    # -- errors ------------------------------------------------------------------------------------

    def record_errors(self, run_id: int, staged: Staged, errors: Sequence[RowError]) -> None:
        """Write the batch's errors to the run in file order, each with its raw row from the stage."""
        rows = (
            (seq, e.line, e.column, _printable(e.reason[:500]), _raw(staged.raws.get(e.line)))
            for seq, e in enumerate(errors)
        )
        self._copy(_ERRORS, ("seq", "line", "col", "reason", "raw"), rows)
        # A staged row's raw text is its cells joined again (see ``_copy_line``).
        raw = f"concat_ws(CAST(:delimiter AS text), {', '.join('r.' + c for c in self.file_columns)})"
        self._sql(
            f'INSERT INTO import_errors (run_id, line, "column", reason, raw) '
            f"SELECT :run_id, e.line, e.col, e.reason, "
            f"COALESCE(e.raw, left(COALESCE(r.raw, {raw}), {MAX_RAW_CHARS})) "
            f"FROM {_ERRORS} e LEFT JOIN {_RAW} r ON r.line = e.line ORDER BY e.line, e.seq",
            run_id=run_id,
            delimiter=self.delimiter,
        )

    # -- helpers -----------------------------------------------------------------------------------

    def _sql(self, sql: str, **params):
        return self.session.execute(text(sql), params)

    def _copy(self, table: str, columns: Sequence[str], rows) -> None:
        conn = self.session.connection().connection.driver_connection
        with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)


@functools.lru_cache(maxsize=64)
def _plain_line(file_columns: tuple[str, ...]) -> re.Pattern:
    """The plain-row pattern (_PLAIN_CELLS) for cells in the file's order, joined by tabs; group 1
    is the line id. A column no key maps takes anything but a tab. If a key the file lacks could
    not be plain as "" (a required one), no row is plain: Python reports them.
    """
    for key in COLUMNS:
        if key not in file_columns and not re.fullmatch(_PLAIN_CELLS[key], ""):
            return re.compile(r"(?!)")
    cells = [
        f"({_PLAIN_CELLS[c]})" if c == "line_id" else _PLAIN_CELLS.get(c, _ANY_CELL) for c in file_columns
    ]
    return re.compile("\t".join(cells))


def _count_in_lane(blocks: list[Block], key: int) -> int:
    """The lane of a row whose line id hashes to ``key``, the row counted in that lane's block."""
    lane = key % len(blocks)
    blocks[lane].read += 1
    blocks[lane].ids.add(key)  # the hash: the ids themselves need not stay in memory
    return lane


def _deal(blocks: list[Block], outs: list[list[str]], keys: list[int], rows: list[str]) -> None:
    """Rows (with their line id hashes) to the lanes their hashes choose, in order."""
    lanes = len(blocks)
    if lanes == 1:
        dealt = [(keys, rows)]
    else:
        lane_of = list(map(lanes.__rmod__, keys))
        chosen = [list(map(k.__eq__, lane_of)) for k in range(lanes)]
        dealt = [(list(compress(keys, mine)), compress(rows, mine)) for mine in chosen]
    for block, out, (block_keys, block_rows) in zip(blocks, outs, dealt, strict=True):
        block.read += len(block_keys)
        block.ids.update(block_keys)
        out.extend(block_rows)


def _finish(blocks: list[Block], outs: list[list[str]]) -> list[Block]:
    for block, out in zip(blocks, outs, strict=True):
        block.text = "".join(out)
        block.repeats = len(block.ids) < block.read - len(block.errors)  # unreadable rows have no id
    return blocks


def _raw(text_: str | None) -> str | None:
    return None if text_ is None else _printable(text_[:MAX_RAW_CHARS])


def _printable(value: str) -> str:
    """PostgreSQL text cannot hold NUL; a raw row or a validator's message may quote one."""
    return value.replace("\x00", "\ufffd")


@functools.lru_cache(maxsize=256)
def fixed_offset(zone: str) -> dt.timedelta | None:
    """The one UTC offset ``zone`` has at every date SQL converts itself (2000–2100), else None.

    Sampled daily at noon UTC: no zone has changed its clock and back within a day.
    """
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    day = dt.datetime(1999, 12, 30, 12, tzinfo=dt.UTC)
    offset = day.astimezone(tz).utcoffset()
    while day.year < 2101:
        day += dt.timedelta(days=1)
        if day.astimezone(tz).utcoffset() != offset:
            return None
    return offset
