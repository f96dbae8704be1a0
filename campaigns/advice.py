"""Interest advice: a small knowledge base marketers edit ("table tennis: rubber loses grip after…").

Templates read it as ``{{ advice }}``: the text for the member's first interest that has advice, in
their locale if written, else in any locale, so an advice-first message always has something to say.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from database.base import Base, utcnow
from templating.locales import language

MAX_ADVICE_CHARS = 2000


class InterestAdvice(Base):
    """Advice for one interest in one locale."""

    __tablename__ = "interest_advice"
    __table_args__ = (UniqueConstraint("interest", "locale", name="uq_interest_advice_interest_locale"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    interest: Mapped[str] = mapped_column(String(80))
    locale: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def normalise_interest(interest: str) -> str:
    """Interests match case-insensitively and ignore surrounding space ("Table Tennis " = "table tennis")."""
    return " ".join(interest.split()).casefold()


def save_advice(session: Session, interest: str, locale: str, text: str) -> InterestAdvice:
    """Create or replace the advice for (interest, locale); ValueError with a marketer-readable reason."""
    interest, locale, text = normalise_interest(interest), locale.strip(), text.strip()
    if not interest or len(interest) > 80:
        raise ValueError("name the interest (up to 80 characters)")
    if not locale or len(locale) > 16:
        raise ValueError("choose a locale")
    if not text:
        raise ValueError("write the advice")
    if len(text) > MAX_ADVICE_CHARS:
        raise ValueError(f"advice is limited to {MAX_ADVICE_CHARS} characters")
    row = session.scalar(
        select(InterestAdvice).where(InterestAdvice.interest == interest, InterestAdvice.locale == locale)
    )
    if row is None:
        row = InterestAdvice(interest=interest, locale=locale, text=text)
        session.add(row)
    else:
        row.text = text
    session.flush()
    return row


def list_advice(session: Session) -> list[InterestAdvice]:
    return list(
        session.scalars(select(InterestAdvice).order_by(InterestAdvice.interest, InterestAdvice.locale))
    )


def advice_for(session: Session, interests: Sequence[str], locale: str | None) -> str:
    """The advice a message to this member shows: first interest with any advice; their locale first."""
    wanted = [normalise_interest(str(i)) for i in interests or [] if str(i).strip()]
    if not wanted:
        return ""
    rows = session.execute(
        select(InterestAdvice.interest, InterestAdvice.locale, InterestAdvice.text).where(
            InterestAdvice.interest.in_(wanted)
        )
    ).all()
    return pick_advice(wanted, locale, [tuple(r) for r in rows])


def pick_advice(interests: Sequence[str], locale: str | None, rows: Sequence[tuple[str, str, str]]) -> str:
    """From (interest, locale, text) rows: exact locale, then same language, then any, by interest order."""
    by_interest: dict[str, list[tuple[str, str]]] = {}
    for interest, row_locale, text in sorted(rows, key=lambda r: r[1]):
        by_interest.setdefault(interest, []).append((row_locale, text))
    for interest in interests:
        options = by_interest.get(interest)
        if not options:
            continue
        for matches in (
            lambda loc: loc == locale,
            lambda loc: language(loc) == language(locale),
            lambda loc: True,
        ):
            for row_locale, text in options:
                if matches(row_locale):
                    return text
    return ""
