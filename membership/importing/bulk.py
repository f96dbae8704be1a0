"""PostgreSQL fast path for purchase files: COPY the raw text in, check the plain rows in SQL.

Per-row Python validation costs far more than the database's work, so here Python only maps the
header's columns and numbers the lines. Each batch is COPYed as text into a temporary table and one
``INSERT … SELECT`` converts the rows whose every field has a plain, unambiguous form (printable
ASCII ids, a Y-M-D or Y/M/D date not near a clock change, plain quantities and amounts, a known store) into
the writer's typed staging table. Every other row — anything wrong, odd or merely unusual — is read
back and goes through the ordinary Python validator, so what is accepted, and every error message,
is exactly what the Python path gives. The writer then merges the staging table as usual.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from membership.importing.reading import Unreadable
from membership.importing.validation import _CONTROL, Context, RowError, validate_purchase
from membership.importing.writing import Writer

BATCH_ROWS = 50_000
MAX_RAW_CHARS = 2000
# The file's columns as staged text; a column the file lacks is staged as "".
COLUMNS = ("line_id", "card_number", "sku", "store", "purchased_at", "quantity", "amount")
_RAW, _STORES, _ERRORS = "import_raw_purchases", "import_raw_stores", "import_raw_errors"
_COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")
_BLOCK_ROWS = 2000  # rows per COPY write: few calls, little memory

# What SQL accepts without asking Python; anything else is validated in Python.
_ID = r"^[!-~]([ -~]*[!-~])?$"  # printable ASCII, no surrounding spaces
# Dates: 20YY-MM-DD or 20YY/MM/DD (Excel), then optionally HH:MM or HH:MM:SS, by the digits'
# shape (cheaper than a regex; one shape per separator, so "2024/01-05" is not plain); the parser
# then checks the day exists. It would also take hour 24 and second 60, which Python refuses, so
# those go to Python, as do dates before 2000: old zone histories are where PostgreSQL's and
# Python's time zone data may disagree.
_SHAPES = ", ".join(
    f"'9999{sep}99{sep}99{time}'"
    for sep in "-/"
    for time in ("", " 99:99", " 99:99:99", "T99:99", "T99:99:99")
)
_ISO = "replace(r.purchased_at, '/', '-')"
_PLAIN_DATE = (
    f"translate(r.purchased_at, '0123456789', '9999999999') IN ({_SHAPES}) "
    "AND left(r.purchased_at, 2) = '20' "
    "AND substr(r.purchased_at, 12, 2) < '24' AND substr(r.purchased_at, 18, 2) < '60' "
    f"AND pg_input_is_valid({_ISO}, 'timestamp')"
)
# [0-9], not \d: in a UTF-8 database \d may also match other scripts' digits, which the casts refuse.
_QUANTITY = r"^([1-9][0-9]{0,5}|1000000)?$"
_AMOUNT = r"^([0-9]{1,10}(\.[0-9]{1,2})?)?$"
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
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        self.session, self.ctx, self.writer = session, ctx, writer
        self.delimiter, self.batch_rows = delimiter, batch_rows
        self.present = [key for key in COLUMNS if key in positions]
        # Values are read from [""] + row, so index 0 is the "" of a column the file lacks.
        self.indexes = [positions[key] + 1 if key in positions else 0 for key in COLUMNS]
        self.pick = operator.itemgetter(*self.indexes)
        self.need = max(self.indexes)  # a shorter row is padded with "" up to here

    # -- one batch ---------------------------------------------------------------------------------

    def encode(self, rows: Iterator[tuple[int, list[str] | Unreadable]]) -> Iterator[Block]:
        """``rows`` as blocks of COPY text for the raw table (no database work: ``stage`` writes them)."""
        pick, need, delimiter = self.pick, self.need, self.delimiter
        block = Block()
        out: list[str] = []
        for line, values in rows:
            block.read += 1
            if isinstance(values, Unreadable):
                block.errors.append(RowError(line, None, values.reason))
            else:
                raw = delimiter.join(values)
                if "\x00" in raw:  # COPY cannot carry NUL; Python reports the row
                    block.held.append((line, values))
                else:
                    cells = ["", *values]
                    if len(cells) <= need:
                        cells.extend([""] * (need + 1 - len(cells)))
                    out.append(_copy_line(line, pick(cells), raw))
            if block.read >= _BLOCK_ROWS:
                block.text = "".join(out)
                yield block
                block, out = Block(), []
        if block.read:
            block.text = "".join(out)
            yield block

    def stage(self, blocks: Iterator[Block]) -> Staged | None:
        """Stage about one batch of ``blocks`` (see ``encode``); None when ``blocks`` is exhausted."""
        self._create_tables()
        staged = Staged()
        held: list[tuple[int, list[str]]] = []
        conn = self.session.connection().connection.driver_connection
        with conn.cursor() as cur, cur.copy(f"COPY {_RAW} FROM STDIN") as cp:
            for block in blocks:
                staged.read += block.read
                staged.errors.extend(block.errors)
                held.extend(block.held)
                if block.text:
                    cp.write(block.text)
                if staged.read >= self.batch_rows:
                    break
        if not staged.read:
            return None
        fast = self._convert_plain_rows()
        records = self._validate_in_python(held, staged)
        self.writer.copy_records(records)
        repeats = self._drop_repeats()
        staged.errors.extend(repeats)
        staged.staged = fast + len(records) - len(repeats)
        return staged

    def _create_tables(self) -> None:
        columns = ", ".join(f"{c} text" for c in COLUMNS)
        # ON COMMIT DROP: a batch is one transaction, so nothing outlives it.
        self._sql(f"CREATE TEMP TABLE {_RAW} (line integer, {columns}, raw text) ON COMMIT DROP")
        self._sql(f"CREATE TEMP TABLE {_STORES} (code text, id integer, tz text) ON COMMIT DROP")
        self._sql(
            f"CREATE TEMP TABLE {_ERRORS} (seq integer, line integer, col text, reason text, raw text) "
            f"ON COMMIT DROP"
        )
        self.writer.create_stage()
        self._copy(_STORES, ("code", "id", "tz"), self._store_rows())

    def _store_rows(self) -> list[tuple]:
        """The store codes SQL may resolve itself ("" is a row without a store code)."""
        default = self.ctx.default_store
        rows = [("", default.id, default.timezone.key) if default else ("", None, "UTC")]
        for code, info in self.ctx.stores.items():
            # Only codes a cell can name verbatim; Python's trimming handles the rest.
            if code and code == code.strip() and len(code) <= 40 and not _CONTROL.search(code):
                rows.append((code, info.id, info.timezone.key))
        return rows

    def _convert_plain_rows(self) -> int:
        """Typed rows for every plainly valid raw row, in SQL; returns how many were staged."""
        limit = self.ctx.now + dt.timedelta(days=1) if self.ctx.now else dt.datetime(9999, 1, 1)
        # OFFSET 0 keeps the inner query a separate step, so each conversion runs once per row;
        # its CASEs make sure no cast sees a value its check refused.
        sql = f"""
            INSERT INTO {self.writer.stage} (line, line_id, card_number, sku, store_id, purchased_at,
                                             quantity, amount)
            SELECT line, line_id, card_number, sku, store_id, utc, quantity, amount FROM (
                SELECT r.line, r.line_id, r.card_number, r.sku, st.id AS store_id, st.tz,
                       CASE WHEN r.quantity ~ '{_QUANTITY}'
                            THEN COALESCE(CAST(NULLIF(r.quantity, '') AS integer), 1) END AS quantity,
                       CASE WHEN r.amount ~ '{_AMOUNT}'
                            THEN COALESCE(CAST(NULLIF(r.amount, '') AS numeric(12, 2)), 0) END AS amount,
                       (CASE WHEN {_PLAIN_DATE} THEN CAST({_ISO} AS timestamp) END
                        AT TIME ZONE st.tz) AT TIME ZONE 'UTC' AS utc
                FROM {_RAW} r JOIN {_STORES} st ON st.code = r.store
                WHERE r.line_id ~ '{_ID}' AND length(r.line_id) <= 80
                  AND r.card_number ~ '{_ID}' AND length(r.card_number) <= 64
                  AND r.sku ~ '{_ID}' AND length(r.sku) <= 64
                OFFSET 0
            ) plain
            WHERE quantity IS NOT NULL AND amount IS NOT NULL
              AND utc >= TIMESTAMP '1900-01-01' AND utc < TIMESTAMP '2101-01-01' AND utc <= :limit
              AND (utc - {_NEAR_CHANGE}) AT TIME ZONE 'UTC' AT TIME ZONE tz - (utc - {_NEAR_CHANGE})
                = (utc + {_NEAR_CHANGE}) AT TIME ZONE 'UTC' AT TIME ZONE tz - (utc + {_NEAR_CHANGE})
        """
        return self._sql(sql, limit=limit).rowcount

    def _validate_in_python(self, held: list, staged: Staged) -> list[tuple]:
        """The rows SQL left alone, validated one by one; returns the valid ones' records."""
        ctx, present = self.ctx, self.present
        records = []
        leftovers = self._sql(
            f"SELECT r.line, {', '.join('r.' + c for c in self.present)} FROM {_RAW} r "
            f"WHERE NOT EXISTS (SELECT FROM {self.writer.stage} s WHERE s.line = r.line) ORDER BY r.line"
        )
        for line, *values in leftovers:
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

    def _drop_repeats(self) -> list[RowError]:
        """Within a batch the first line of an id wins; later ones are reported, as in Python."""
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
        self._sql(
            f'INSERT INTO import_errors (run_id, line, "column", reason, raw) '
            f"SELECT :run_id, e.line, e.col, e.reason, COALESCE(e.raw, left(r.raw, {MAX_RAW_CHARS})) "
            f"FROM {_ERRORS} e LEFT JOIN {_RAW} r ON r.line = e.line ORDER BY e.line, e.seq",
            run_id=run_id,
        )

    # -- helpers -----------------------------------------------------------------------------------

    def _sql(self, sql: str, **params):
        return self.session.execute(text(sql), params)

    def _copy(self, table: str, columns: Sequence[str], rows) -> None:
        conn = self.session.connection().connection.driver_connection
        with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)


def _copy_line(line: int, cells: tuple[str, ...], raw: str) -> str:
    """One row of COPY text: line, cells, raw; escaped only when a value needs it."""
    body = "\t".join(cells)
    if _NEEDS_ESCAPE.search(body):
        body = "\t".join(cell.translate(_COPY_ESCAPE) for cell in cells)
    if _NEEDS_ESCAPE.search(raw):
        raw = raw.translate(_COPY_ESCAPE)
    return f"{line}\t{body}\t{raw}\n"


def _raw(text_: str | None) -> str | None:
    return None if text_ is None else _printable(text_[:MAX_RAW_CHARS])


def _printable(value: str) -> str:
    """PostgreSQL text cannot hold NUL; a raw row or a validator's message may quote one."""
    return value.replace("\x00", "\ufffd")
