"""Import runs and their bad rows: the record of what each file or API batch did, plus a duplicates report."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from database.base import Base, utcnow
from membership.member import Member, str_enum
from membership.purchase import Purchase


class ImportKind(enum.StrEnum):
    MEMBERS = "members"
    PRODUCTS = "products"
    PURCHASES = "purchases"


class ImportStatus(enum.StrEnum):
    """running → succeeded (no bad rows) | partial (some bad rows) | failed (nothing importable)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"


class ImportRun(Base):
    """One import of a file or an API batch, with its counts; dry runs are recorded but change no data."""

    __tablename__ = "import_runs"
    __table_args__ = (Index("ix_import_runs_started", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ImportKind] = mapped_column(str_enum(ImportKind))
    source: Mapped[str] = mapped_column(String(10), default="file")  # file | api
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    file_name: Mapped[str] = mapped_column(String(255))
    encoding: Mapped[str | None] = mapped_column(String(20))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[ImportStatus] = mapped_column(str_enum(ImportStatus), default=ImportStatus.RUNNING)
    message: Mapped[str | None] = mapped_column(Text)  # why a run failed as a whole (e.g. bad header)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    rows_read: Mapped[int] = mapped_column(default=0)
    inserted: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)

    @property
    def imported(self) -> int:
        """Rows now in the database as the file says (new, changed or already equal)."""
        return self.inserted + self.updated + self.unchanged

    def finish(self, message: str | None = None) -> None:
        """Settle the status from the counts."""
        self.finished_at = utcnow()
        self.message = message or self.message
        if message or (self.failed and not self.imported):
            self.status = ImportStatus.FAILED
        elif self.failed:
            self.status = ImportStatus.PARTIAL
        else:
            self.status = ImportStatus.SUCCEEDED


class ImportRowError(Base):
    """One rejected row: file line (API: batch index), column and reason, with the raw row for the CSV."""

    __tablename__ = "import_errors"
    __table_args__ = (Index("ix_import_errors_run", "run_id", "line"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("import_runs.id", ondelete="CASCADE"))
    line: Mapped[int]
    column: Mapped[str | None] = mapped_column(String(60))
    reason: Mapped[str] = mapped_column(String(500))
    raw: Mapped[str | None] = mapped_column(Text)


def run_errors(session: Session, run_id: int, limit: int | None = None) -> Iterable[ImportRowError]:
    """A run's bad rows in file order, streamed (a bad file can have a million)."""
    stmt = (
        select(ImportRowError)
        .where(ImportRowError.run_id == run_id)
        .order_by(ImportRowError.line, ImportRowError.id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return session.scalars(stmt.execution_options(yield_per=1000))


def recent_runs(session: Session, limit: int = 20) -> list[ImportRun]:
    """The latest runs, newest first, for the import page."""
    return list(session.scalars(select(ImportRun).order_by(ImportRun.id.desc()).limit(limit)))


def purchases_with_runs(session: Session, member_id: int) -> list[tuple[Purchase, ImportRun | None]]:
    """A member's purchases, newest first, each with the import run that last wrote it (one query)."""
    stmt = (
        select(Purchase, ImportRun)
        .outerjoin(ImportRun, ImportRun.id == Purchase.last_import_run_id)
        .where(Purchase.member_id == member_id)
        .order_by(Purchase.purchased_at.desc(), Purchase.id.desc())
    )
    return [(purchase, run) for purchase, run in session.execute(stmt)]


@dataclass(frozen=True)
class DuplicateGroup:
    """Members on different cards that share a phone or e-mail: maybe one person, for a human to decide."""

    field: str
    value: str
    members: list[tuple[int, str, str]]  # (id, card number, name)


def duplicates(session: Session, limit: int = 1000) -> list[DuplicateGroup]:
    """Likely duplicate members by shared phone or (case-insensitive) e-mail; never merges anything."""
    groups: list[DuplicateGroup] = []
    for field, column in (("phone", Member.phone), ("email", func.lower(Member.email))):
        shared = (
            select(column.label("value"))
            .where(column.is_not(None))
            .group_by(column)
            .having(func.count() > 1)
            .order_by(column)
            .limit(limit)
            .subquery()
        )
        rows = session.execute(
            select(shared.c.value, Member.id, Member.card_number, Member.name)
            .join(Member, column == shared.c.value)
            .order_by(shared.c.value, Member.card_number)
        )
        current: DuplicateGroup | None = None
        for value, member_id, card, name in rows:
            if current is None or current.value != value:
                current = DuplicateGroup(field, value, [])
                groups.append(current)
            current.members.append((member_id, card, name))
    return groups
