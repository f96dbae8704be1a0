"""The encoder's plain-row pattern accepts exactly the rows the SQL checks it replaced accepted.

The SQL conversion trusts the flag (it casts without checking again), so the pattern must take no
row those checks refused; and to stay fast it should refuse none they took. The checks are kept
here as the oracle, evaluated by PostgreSQL itself on the same cells.
"""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from membership.importing import bulk

pytestmark = pytest.mark.postgres

# The SQL checks the encoder's pattern replaced (session 14's conversion), column by column.
_ID = r"^[!-~]([ -~]*[!-~])?$"
_SHAPES = ", ".join(
    f"'9999{sep}99{sep}99{time}'"
    for sep in "-/"
    for time in ("", " 99:99", " 99:99:99", "T99:99", "T99:99:99")
)
_ORACLE = f"""
    SELECT line_id ~ '{_ID}' AND length(line_id) <= 80
       AND card_number ~ '{_ID}' AND length(card_number) <= 64
       AND sku ~ '{_ID}' AND length(sku) <= 64
       AND quantity ~ '^([1-9][0-9]{{0,5}}|1000000)?$'
       AND amount ~ '^([0-9]{{1,10}}(\\.[0-9]{{1,2}})?)?$'
       AND translate(purchased_at, '0123456789', '9999999999') IN ({_SHAPES})
       AND left(purchased_at, 2) = '20'
       AND substr(purchased_at, 12, 2) < '24' AND substr(purchased_at, 18, 2) < '60'
    FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
         WITH ORDINALITY AS t(line_id, card_number, sku, purchased_at, quantity, amount, n)
    ORDER BY n
"""

# Characters near every boundary the checks draw: ASCII digits and others, separators, spaces,
# controls, the edges of printable ASCII, full-width and Arabic-Indic digits, CJK, COPY's specials.
_ALPHABET = "0123456789-/ T:.+,x~!\x01\x1f\x7f\x80３٣行\t\\\n"
_cell = st.text(alphabet=_ALPHABET, max_size=22)
_date = st.one_of(
    _cell,
    st.builds(
        lambda y, sep, m, d, t: f"{y}{sep}{m}{sep}{d}{t}",
        st.sampled_from(["2024", "2000", "1999", "2099", "21xx", "202３"]),
        st.sampled_from(["-", "/", "."]),
        st.sampled_from(["01", "12", "13", "1", "00"]),
        st.sampled_from(["01", "31", "30", "3"]),
        st.sampled_from(["", " 10:30", " 23:59:59", "T00:00", " 24:00", " 10:30:60", " 9:30", "T10:30:5"]),
    ),
)
_id = st.one_of(_cell, st.from_regex(r"[ -~]{0,82}", fullmatch=True))
_number = st.one_of(_cell, st.from_regex(r"[0-9]{0,12}(\.[0-9]{0,3})?", fullmatch=True))
_row = st.tuples(_id, _id, _id, _date, _number, _number)


class _Writer:
    def resolve_in_stage(self):
        pass


_HEADER = ("line_id", "card_number", "sku", "purchased_at", "quantity", "amount")
_ENCODER = bulk.PurchaseBulk(None, None, _Writer(), {c: i for i, c in enumerate(_HEADER)}, ",", len(_HEADER))


def _flag(*cells: str) -> bool:
    """The plain flag the encoder gives the row, staged from its values and, when the row can be
    staged as it stands (no tab, line end, backslash or comma), as a line of a whole block."""
    text = _ENCODER._copy_line(7, list(cells))
    line, plain, _rest = text.split("\t", 2)
    assert line == "7" and plain in ("t", "f")
    if not any(char in cell for cell in cells for char in "\t\n\r\\,"):
        whole = ",".join(cells).replace(",", "\t")
        assert bool(_ENCODER.plain_lines.findall(f"x\n{whole}\ny")) == (plain == "t")
    return plain == "t"


@pytest.fixture(scope="module")
def pg(postgres_url):
    with psycopg.connect(postgres_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        yield conn


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_row, min_size=1, max_size=40))
@example(
    [
        ("L1", "C001", "TT-BALL", "2024-04-01 10:30", "2", "9.90"),
        ("L1", "C001", "TT-BALL", "2024/04/01", "", ""),
        ("L" + "x" * 79, "C" * 64, "S" * 64, "2024-04-01T23:59:59", "1000000", "9999999999.99"),
        ("L" + "x" * 80, "C001", "TT-BALL", "2024-04-01", "1", "1"),
        (" L1", "C001", "TT-BALL", "2024-04-01", "1", "1"),
        ("L1", "C001", "TT-BALL", "2024/04-01", "1", "1"),
        ("L1", "C001", "TT-BALL", "2024-04-01 24:00", "1", "1"),
        ("L1", "C001", "TT-BALL", "2024-04-01 10:00:60", "1", "1"),
        ("L1", "C001", "TT-BALL", "1999-12-31", "1", "1"),
        ("L1", "C001", "TT-BALL", "2024-04-01", "0", "1"),
        ("L1", "C001", "TT-BALL", "2024-04-01", "1000001", "1"),
        ("L1", "C001", "TT-BALL", "2024-04-01", "1", "5.555"),
        ("L1", "C001", "TT-BALL", "2024-04-01", "1", "99999999999"),
        ("L1", "C001", "TT-BALL", "2024-04-01", "1", "12345678901.5"),
        ("L1", "C001", "TT-BALL", "2024-04-01", "1", ".5"),
        ("L1", "C001", "TT-BALL", "2024-04-01", "1", "１"),
        ("L\t1", "C001", "TT-BALL", "2024-04-01", "1", "1"),
        ("L\\1", "C001", "TT-BALL", "2024-04-01", "1", "1"),
    ]
)
def test_the_plain_pattern_accepts_what_the_sql_checks_accepted(pg, rows):
    columns = [list(column) for column in zip(*rows, strict=True)]
    oracle = [plain for (plain,) in pg.execute(_ORACLE, columns)]
    assert [_flag(*row) for row in rows] == oracle
