"""The block reader gives exactly what reading and decoding one line at a time gave: the same rows,
line numbers, bad-byte and too-long-line reports, whatever the block boundaries."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from membership.importing import reading
from membership.importing.reading import CsvSource, EncodingError, Unreadable


class LineByLine(CsvSource):
    """The reader as it was: every line after the header read and decoded on its own."""

    def _blocks(self):
        while (line := self._next_line()) is not None:
            yield [line]


class Parsed(CsvSource):
    """The reader before ``lines``: every line after the header through the CSV parser."""

    def rows(self):
        width, reader = len(self.header), self._reader
        start = reader.line_num + 1
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, Unreadable(f"malformed CSV: {exc}")
                start = reader.line_num + 1
                continue
            end = reader.line_num
            line, start = start, end + 1
            problem = next(
                (self._bad_lines.pop(n) for n in range(line, end + 1) if n in self._bad_lines), None
            )
            if problem:
                yield line, Unreadable(problem)
            elif not values or (len(values) == 1 and not values[0].strip()):
                continue
            elif len(values) > width and any(v.strip() for v in values[width:]):
                yield line, Unreadable(f"row has {len(values)} fields but the header has {width}")
            else:
                yield line, values


def _read(cls, data: bytes, encoding: str):
    try:
        source = cls(io.BytesIO(data), encoding)
    except EncodingError as exc:
        return "refused", str(exc)
    return source.encoding, source.header, list(source.rows())


_PIECES = st.sampled_from(
    [
        "a,b,c\n",
        "1,2\r\n",
        "x,y,z",
        '"quoted\nnewline",2\n',
        '"open quote,3\n',
        "\n",
        "\r\n",
        "会员,手机\n",
        "longlonglonglonglonglong,cell\n",
        "a" * 40,
        "\ufeffbom,1\n",
        "tab\there\n",
    ]
)
_BYTES = st.sampled_from([b"\xff", b"\x81", b"\xe4\xbd", b"\x00", b"\n", b"\x81\x30"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(st.one_of(_PIECES.map(str.encode), _PIECES.map(lambda s: s.encode("gb18030")), _BYTES)),
    block=st.integers(1, 64),
    encoding=st.sampled_from(["utf-8", "gb18030", "auto"]),
)
def test_blocks_read_what_single_lines_read(pieces, block, encoding):
    data = b"card_number,name\n" + b"".join(pieces)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reading, "BLOCK_BYTES", block)
        patch.setattr(reading, "MAX_LINE_BYTES", 30)
        assert _read(CsvSource, data, encoding) == _read(LineByLine, data, encoding)


def test_a_bad_byte_spoils_only_its_own_line():
    data = b"card_number,name\nA1,Ann\nB2,B\xffob\nC3,Cid\n"
    rows = list(CsvSource(io.BytesIO(data), "utf-8").rows())
    assert rows[0] == (2, ["A1", "Ann"])
    assert rows[1] == (3, Unreadable("bytes not valid utf-8 at byte 5 of the line"))
    assert rows[2] == (4, ["C3", "Cid"])


@pytest.mark.parametrize("block", [3, 64, 4096])
def test_a_too_long_line_is_reported_and_skipped_without_losing_its_neighbours(monkeypatch, block):
    monkeypatch.setattr(reading, "BLOCK_BYTES", block)
    monkeypatch.setattr(reading, "MAX_LINE_BYTES", 100)
    data = b"card_number,name\nA1,Ann\n" + b"X" * 1000 + b"\nC3,Cid\nD4,Dee"
    rows = list(CsvSource(io.BytesIO(data), "utf-8").rows())
    assert rows == [
        (2, ["A1", "Ann"]),
        (3, Unreadable("line longer than 100 bytes")),
        (4, ["C3", "Cid"]),
        (5, ["D4", "Dee"]),
    ]


def test_a_header_without_a_line_end_is_the_whole_file():
    source = CsvSource(io.BytesIO(b"card_number,name"), "utf-8")
    assert source.header == ["card_number", "name"]
    assert list(source.rows()) == []


def test_memory_stays_flat_on_a_line_with_no_end(monkeypatch):
    import tracemalloc

    monkeypatch.setattr(reading, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(reading, "MAX_LINE_BYTES", 100)
    stream = io.BytesIO(b"card_number,name\n" + b"X" * 2_000_000 + b"\nA1,Ann\n")
    tracemalloc.start()
    try:
        rows = list(CsvSource(stream, "utf-8").rows())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rows == [(2, Unreadable("line longer than 100 bytes")), (3, ["A1", "Ann"])]
    assert peak < 100_000  # the 2 MB line is never held


_ROW_PIECES = st.sampled_from(
    [
        "a,b",
        "a,b,c",
        "a",
        "",
        "  ",
        ",",
        ",,",
        "a,,",
        "x\ty,z",
        'q"uote,1',
        '"a,b",c',
        '"multi\nline",2',
        "a,b\r",
        "a\rb,c",
        "é,会员",
        "\x00,1",
        "\\N,2",
        "a;b",
        "y" * 40 + ",z",
    ]
)
_ENDS = st.sampled_from(["\n", "\r\n", "\r\n", "\n"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=st.sampled_from(["card_number,name", "card_number", "a,b,c", "a\tb", "a;b;c"]),
    rows=st.lists(st.tuples(_ROW_PIECES, _ENDS), max_size=30),
    last_end=st.booleans(),
    block=st.sampled_from([7, 64, 4096]),
)
def test_lines_give_the_rows_the_csv_parser_gives(header, rows, last_end, block):
    """Lines and blocks taken unsplit (``lines``) read as every line parsed (the reader before)."""
    text = header + "\n" + "".join(row + end for row, end in rows)
    if not last_end:
        text = text.rstrip("\r\n")
    data = text.encode()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reading, "BLOCK_BYTES", block)
        patch.setattr(reading, "MAX_LINE_BYTES", 60)
        assert _read(CsvSource, data, "utf-8") == _read(Parsed, data, "utf-8")


def test_clean_blocks_come_whole_and_split_as_rows():
    data = b"line_id,card_number\r\nL1,C1\r\nL2,C2\r\n\r\nL3,C3,\r\n"
    source = CsvSource(io.BytesIO(data), "utf-8")
    [(first, lines)] = list(source.lines())
    assert first == 2 and lines == reading.Lines("L1,C1\nL2,C2\n\nL3,C3,", 4)
    assert list(source.split(first, lines)) == [(2, "L1,C1"), (3, "L2,C2"), (5, ["L3", "C3", ""])]
