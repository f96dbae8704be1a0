"""The documented formats and sample files stay true: the samples import cleanly, every alias is listed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from membership.importing.formats import FORMATS
from membership.importing.runs import ImportStatus
from membership.importing.service import import_file
from membership.member import Member
from membership.purchase import Purchase

DOCS = Path(__file__).resolve().parent.parent / "docs"
SAMPLES = [
    ("members", "members.csv", 4),
    ("members", "members-gb18030.csv", 3),
    ("products", "products.csv", 3),
    ("purchases", "purchases.csv", 4),
]


def test_sample_files_import_without_a_bad_row(session, factory):
    factory.store(code="SH01", region="CN", timezone="Asia/Shanghai")
    session.commit()
    for kind, name, rows in SAMPLES:
        run = import_file(session, kind, DOCS / "samples" / name, store_code="SH01")
        assert (run.status, run.inserted, run.failed, run.message) == (
            ImportStatus.SUCCEEDED,
            rows,
            0,
            None,
        ), name
    assert import_file(session, "members", DOCS / "samples" / "members-gb18030.csv").encoding == "gb18030"
    wang = session.scalar(select(Member).where(Member.card_number == "C20001"))
    assert (wang.name, wang.phone, wang.interests, wang.sms_consent) == (
        "王芳",
        "+8613900139001",
        ["乒乓球", "羽毛球"],
        True,
    )
    again = [import_file(session, kind, DOCS / "samples" / name) for kind, name, _ in SAMPLES]
    assert [r.inserted + r.updated for r in again] == [0, 0, 0, 0]
    assert session.scalar(
        select(Purchase.amount).where(Purchase.external_line_id.like("%0001-2"))
    ) == Decimal("59.80")


@pytest.mark.parametrize("kind", FORMATS)
def test_every_column_and_alias_is_documented(kind):
    text = (DOCS / "import-formats.md").read_text(encoding="utf-8")
    section = text.split(f"### {kind}", 1)[1].split("\n### ", 1)[0]
    for column in FORMATS[kind].columns:
        assert f"`{column.key}`" in section, column.key
        for alias in column.aliases:
            assert alias in section, (column.key, alias)
