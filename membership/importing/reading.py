"""Streaming CSV reading: detect the encoding on a sample, then yield rows with their file line numbers.

The file is read in blocks of whole lines, each decoded at once; a block that does not decode is
decoded again line by line, so a stray byte spoils only its own row. Memory stays flat whatever the
file size: a line longer than MAX_LINE_BYTES is reported and skipped, never held.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import charset_normalizer

SAMPLE_BYTES = 256 * 1024
MAX_LINE_BYTES = 1024 * 1024  # a "line" longer than this is not a POS export row
# Read and decoded at once: reading the bench's 1,000,000-line purchases file a line at a time
# (readline, then decode) took 1.6 s of CPU, against 1.3 s in blocks.
BLOCK_BYTES = 256 * 1024
ENCODINGS = ("auto", "utf-8", "gb18030")
_CANDIDATES = ("utf_8", "gb18030")  # in order of preference on a tie
_GB_FAMILY = {"gb2312", "gbk", "gb18030", "cp936", "hz", "iso2022_cn"}
# What makes a line's values more than its text split at the delimiter: quotes, a carriage return
# that is not the line end, NUL. Such lines go through the CSV parser.
_PARSED = re.compile('["\r\x00]')


class EncodingError(ValueError):
    """The file's encoding cannot be detected or is not one we can read line by line."""


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A row the CSV layer could not turn into values; ``reason`` says why."""

    reason: str


def detect_encoding(sample: bytes) -> str:
    """A codec name for ``sample``: a BOM decides, else charset-normalizer among the encodings POS
    exports use (UTF-8, the GB family read as GB18030, its superset).

    When a few corrupt bytes make every candidate fail, the candidate that decodes the most lines
    wins and the corrupt lines become row errors, rather than the whole file being misread.
    """
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if not sample.strip():
        return "utf-8"
    cut = sample.rfind(b"\n")
    if len(sample) >= SAMPLE_BYTES and cut > 0:
        sample = sample[: cut + 1]  # do not let a character cut in half at the end mislead the guess
    try:  # text that is valid UTF-8 is UTF-8: GB18030 Chinese almost never is, by accident
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(sample, cp_isolation=list(_CANDIDATES)).best()
    if best is not None:
        return checked_encoding(best.encoding)
    lines = sample.splitlines()
    scores = {codec: sum(_decodes(line, codec) for line in lines) for codec in _CANDIDATES}
    if not any(scores.values()):
        raise EncodingError("cannot detect the file's encoding (binary data?); pass --encoding")
    return checked_encoding(max(_CANDIDATES, key=lambda codec: scores[codec]))


def _decodes(line: bytes, codec: str) -> bool:
    try:
        line.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def checked_encoding(name: str) -> str:
    """The canonical codec for ``name``, refusing encodings that are not ASCII-compatible line by line."""
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        raise EncodingError(f"unknown encoding {name!r}") from None
    if codec in {"ascii", "utf-8"}:
        return "utf-8"
    if codec in _GB_FAMILY:
        return "gb18030"
    if codec.startswith(("utf-16", "utf-32")) or "\n".encode(codec) != b"\n":
        raise EncodingError(f"{codec} files are not supported; save the file as UTF-8 or GB18030")
    return codec


class CsvSource:
    """One CSV file opened for streaming: ``header`` first, then ``rows()`` yields (line, values)."""

    def __init__(self, stream: BinaryIO, encoding: str = "auto") -> None:
        self._stream = stream
        if encoding == "auto":
            sample = stream.read(SAMPLE_BYTES)
            stream.seek(0)
            encoding = detect_encoding(sample)
        elif encoding.replace("_", "-").lower() in {"utf-8", "utf8"}:
            # An explicit UTF-8 still tolerates a BOM: Excel writes one.
            encoding = "utf-8-sig"
        else:
            encoding = checked_encoding(encoding)
        self.encoding = encoding
        self._bad_lines: dict[int, str] = {}
        self._lines_read = 0
        first = self._next_line()
        self.delimiter = _delimiter(first or "")
        # After the header the lines come block by block (_blocks); the header's own line may be the
        # file's last, with no line end.
        self._left = self._blocks() if first and first.endswith("\n") else iter(())
        self._pending: deque[str] = deque()  # lines of the current block not yet read
        self._handed: list[str] = []  # a line ``lines`` gives the CSV parser
        self._reader = csv.reader(
            itertools.chain((first,) if first is not None else (), self._feed()),
            delimiter=self.delimiter,
            strict=False,
        )
        try:
            header = next(self._reader) if first is not None else []
        except csv.Error as exc:
            raise EncodingError(f"cannot read the header row: {exc}") from None
        if 1 in self._bad_lines:
            raise EncodingError(f"header row: {self._bad_lines[1]}; pass --encoding")
        self.header = [cell.strip() for cell in header]

    def _next_line(self) -> str | None:
        """The next line, read and decoded on its own: the header (the rest come in ``_blocks``)."""
        raw = self._stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return None
        self._lines_read += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest without holding it in memory
                raw = self._stream.readline(MAX_LINE_BYTES + 1)
            return self._too_long(self._lines_read)
        return self._line_text(self._lines_read, raw)

    def _line_text(self, number: int, raw: bytes) -> str:
        """One line's text; one not in the encoding is noted as bad and read with replacements."""
        try:
            return raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            name = "utf-8" if self.encoding == "utf-8-sig" else self.encoding
            self._bad_lines[number] = f"bytes not valid {name} at byte {exc.start + 1} of the line"
            return raw.decode(self.encoding, "replace")

    def _too_long(self, number: int) -> str:
        """Line ``number`` noted as too long; it reads as a blank line."""
        self._bad_lines[number] = f"line longer than {MAX_LINE_BYTES} bytes"
        return "\n"

    def _blocks(self) -> Iterator[str | list[str]]:
        """The lines after the header, decoded a block at a time: a block that decodes as a whole
        comes as its text (whole lines; only the file's last may lack its line end), any other as
        its lines, each decoded alone."""
        read, pending, skipping = self._stream.read, b"", False
        while chunk := read(BLOCK_BYTES):
            if skipping:  # the rest of a line already reported as too long
                end = chunk.find(b"\n")
                if end < 0:
                    continue
                chunk, skipping = chunk[end + 1 :], False
            data = pending + chunk if pending else chunk
            cut = data.rfind(b"\n") + 1
            pending = data[cut:]
            if cut:
                yield self._decoded(data[: cut - 1], ended=True)
            if len(pending) > MAX_LINE_BYTES:
                self._lines_read += 1
                yield [self._too_long(self._lines_read)]
                pending, skipping = b"", True
        if pending:  # the last line, with no line end
            yield self._decoded(pending, ended=False)

    def _decoded(self, data: bytes, ended: bool) -> str | list[str]:
        """``data`` (lines joined by "\\n", the last without its line end) as text, numbered on."""
        start = self._lines_read
        self._lines_read += data.count(b"\n") + 1
        end = "\n" if ended else ""
        parts = None if len(data) <= MAX_LINE_BYTES else data.split(b"\n")
        if parts is None or max(map(len, parts)) <= MAX_LINE_BYTES:
            try:
                text = data.decode(self.encoding)
            except UnicodeDecodeError:
                pass  # some line is not in the encoding: find it below
            else:
                # "\n" is never part of a multibyte character in UTF-8 or GB18030: lines stay apart
                if self.encoding == "utf-8-sig" and "\n\ufeff" in text:
                    text = text.replace("\n\ufeff", "\n")  # as decoding each line alone drops a BOM
                return text + end
        end_bytes = b"\n" if ended else b""
        return [
            self._too_long(number)
            if len(part) > MAX_LINE_BYTES
            else self._line_text(number, part + end_bytes)
            for number, part in enumerate(data.split(b"\n") if parts is None else parts, start + 1)
        ]

    def _take(self) -> str | None:
        """The next line after those read, block after block; None at the end of the file."""
        while not self._pending:
            block = next(self._left, None)
            if block is None:
                return None
            self._pending.extend(_split(block) if isinstance(block, str) else block)
        return self._pending.popleft()

    def _feed(self) -> Iterator[str]:
        """The CSV parser's input: a line handed to it, then (a quoted field's) next lines."""
        while True:
            if self._handed:
                yield self._handed.pop()
            elif (line := self._take()) is not None:
                yield line
            else:
                return

    def rows(self) -> Iterator[tuple[int, list[str] | Unreadable]]:
        """Each data row with the file line it starts on; blank lines are skipped."""
        delimiter = self.delimiter
        for line, item in self.lines():
            if isinstance(item, Lines):
                for number, one in self.split(line, item):
                    yield number, one.split(delimiter) if isinstance(one, str) else one
            else:
                yield line, item.split(delimiter) if isinstance(item, str) else item

    def lines(self) -> Iterator[tuple[int, Lines | str | list[str] | Unreadable]]:
        """``rows``, except that lines CSV parsing would only split at the delimiter come unsplit.

        A whole block of lines without quotes, carriage returns (but their line ends) and NUL comes
        as ``Lines``, numbered from the line given; ``split`` turns it into lines and rows. Any other
        line with the header's number of fields and none of those characters comes as its text,
        without its line end. The caller splits them, or stages them as they stand (the bulk path).
        """
        width, delimiter = len(self.header), self.delimiter
        reader, bad, pending = self._reader, self._bad_lines, self._pending
        number = reader.line_num  # the last line read
        while True:
            if not pending:
                block = next(self._left, None)
                if block is None:
                    return
                if isinstance(block, str) and (lines := _unparsed(block)) is not None:
                    yield number + 1, lines
                    number += lines.count
                    continue
                pending.extend(_split(block) if isinstance(block, str) else block)
            text = pending.popleft()
            number += 1
            body = text[:-1] if text.endswith("\n") else text
            if body.endswith("\r"):
                body = body[:-1]
            if (
                not _PARSED.search(body)
                and not (bad and number in bad)
                and _split_only(body, width, delimiter)
            ):
                yield number, body
                continue
            self._handed.append(text)
            before = reader.line_num
            try:
                values = next(reader)
            except StopIteration:  # cannot happen: the parser has the line just handed to it
                return
            except csv.Error as exc:
                yield number, Unreadable(f"malformed CSV: {exc}")
                number += reader.line_num - before - 1
                continue
            end = number + reader.line_num - before - 1
            line, number = number, end
            if bad:
                problem = next((bad.pop(n) for n in range(line, end + 1) if n in bad), None)
                if problem:
                    yield line, Unreadable(problem)
                    continue
            if (row := self._row(values)) is not None:
                yield line, row

    def split(self, first: int, lines: Lines) -> Iterator[tuple[int, str | list[str] | Unreadable]]:
        """``lines`` one by one, numbered from ``first``, as ``lines()`` would give them one by one."""
        width, delimiter = len(self.header), self.delimiter
        for number, body in enumerate(lines.text.split("\n"), first):
            if _split_only(body, width, delimiter):
                yield number, body
                continue
            try:  # no quotes: the line is a row of its own
                values = next(csv.reader([body], delimiter=delimiter, strict=False), [])
            except csv.Error as exc:
                yield number, Unreadable(f"malformed CSV: {exc}")
                continue
            if (row := self._row(values)) is not None:
                yield number, row

    def _row(self, values: list[str]) -> list[str] | Unreadable | None:
        """A parsed row as ``rows`` gives it; None for a blank line, which is skipped."""
        if not values or (len(values) == 1 and not values[0].strip()):
            return None
        width = len(self.header)
        if len(values) > width and any(v.strip() for v in values[width:]):
            return Unreadable(f"row has {len(values)} fields but the header has {width}")
        return values


@dataclass(frozen=True, slots=True)
class Lines:
    """Consecutive lines that need no CSV parsing, joined by "\\n" (no final line end): CRLF line
    ends are "\\n" here, and no line holds a quote, a carriage return or NUL."""

    text: str
    count: int


def _split_only(body: str, width: int, delimiter: str) -> bool:
    """Whether CSV parsing of ``body`` (a line without quotes, carriage returns or NUL) would only
    split it: the header's number of fields, none past the parser's field limit, not blank."""
    return (
        body.count(delimiter) == width - 1
        and len(body) <= min(csv.field_size_limit(), MAX_LINE_BYTES)
        and (width > 1 or bool(body.strip()))
    )


def _unparsed(block: str) -> Lines | None:
    """A decoded block (see ``_blocks``) as ``Lines``, unless some line needs CSV parsing."""
    text = block[:-1] if block.endswith("\n") else block
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if text.endswith("\r"):  # the file's last line: CSV reads it as a line end too
            text = text[:-1]
    if _PARSED.search(text):
        return None
    return Lines(text, text.count("\n") + 1)


def _split(block: str) -> list[str]:
    """A decoded block's lines, each with its line end (the file's last may have none)."""
    lines = block.split("\n")
    last = lines.pop()  # "" after a final line end
    return [line + "\n" for line in lines] + ([last] if last else [])


def _delimiter(header_line: str) -> str:
    """Comma unless the header plainly uses tabs or semicolons (spreadsheet "CSV" variants)."""
    counts = {d: header_line.count(d) for d in (",", "\t", ";")}
    return max(counts, key=lambda d: (counts[d], d == ","))


def open_csv(path: str | Path, encoding: str = "auto") -> tuple[BinaryIO, CsvSource]:
    """Open ``path`` for streaming; the caller closes the returned stream."""
    stream = open(path, "rb")  # noqa: SIM115 - handed to the caller, who closes it
    try:
        return stream, CsvSource(stream, encoding)
    except BaseException:
        stream.close()
        raise


def estimate_rows(path: str | Path, sample: int = 1 << 16) -> int:
    """About how many lines ``path`` holds, from its size and the line length of its first 64 KiB."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(sample)
    except OSError:
        return 0
    if not head:
        return 0
    return round(size * max(head.count(b"\n"), 1) / len(head))


def cells_by_key(values: list[str], positions: list[tuple[int, str]]) -> dict[str, str]:
    """A row's cells under the keys its header mapped (``positions``: (column index, key) pairs)."""
    size = len(values)
    return {key: values[i] for i, key in positions if i < size}
